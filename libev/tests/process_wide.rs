//! libev's process-wide functions: `sleep` and `feed_signal`.

mod util;

use libev::{Loop, Signal};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn sleep_sleeps() {
    let start = Instant::now();
    libev::sleep(Duration::from_millis(20));
    assert!(start.elapsed() >= Duration::from_millis(19));
    let start = Instant::now();
    libev::sleep(Duration::ZERO);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn feed_signal_rejects_numbers_out_of_range() {
    for bad in [0, -1, 65, i32::MAX] {
        assert_eq!(libev::feed_signal(bad).unwrap_err().raw_os_error(), Some(libc::EINVAL), "{bad}");
    }
    // A signal nobody watches is fine.
    libev::feed_signal(libc::SIGURG).unwrap();
}

extern "C" fn own_handler(signum: libc::c_int) {
    // Async-signal-safe: no allocation, no lock.
    let _ = libev::feed_signal(signum);
}

#[test]
fn a_handler_of_the_programs_own_feeds_libevs_watchers() {
    let lp = Loop::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let w = Signal::new(&lp, libc::SIGUSR1, move |w, _| {
        g.set(g.get() + 1);
        w.stop();
    })
    .unwrap();
    w.start().unwrap();
    // Replace libev's handler with the program's own.
    // SAFETY: a plain sigaction with an async-signal-safe handler.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = own_handler as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
    }
    util::run_until(&lp, "the fed signal", || got.get() == 1);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
