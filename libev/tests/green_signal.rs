//! `green::signal`: waiting for signals in a greenlet, and gevent's
//! `signal_handler` (gevent's `test__signal.py`: the handler runs on each
//! delivery, on a greenlet of its own, and `cancel` stops it).
//!
//! Every test here raises real signals at this process: they use signals
//! no other test binary's tests touch, one signal per test.

use libev::green;
use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

fn raise(signum: i32) {
    // SAFETY: raising a signal this process handles (libev's handler is
    // installed while the watcher is active).
    assert_eq!(unsafe { libc::raise(signum) }, 0);
}

#[test]
fn wait_parks_until_the_signal_and_wakes_every_waiter() {
    let waiters: Vec<_> = (0..3).map(|_| green::spawn(|| green::signal::wait(libc::SIGUSR1, None))).collect();
    green::sleep(Duration::from_millis(1));
    raise(libc::SIGUSR1);
    for w in waiters {
        w.join().unwrap().unwrap();
    }
}

#[test]
fn wait_times_out_and_rejects_bad_signals() {
    let err = green::signal::wait(libc::SIGWINCH, Some(Duration::from_millis(5))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(green::signal::wait(0, None).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(green::signal::wait(libc::SIGKILL, None).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn the_handler_runs_on_each_delivery_on_its_own_greenlet_until_cancelled() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let handler = green::signal::signal_handler(libc::SIGUSR2, move || {
        // On a greenlet of its own: it may block.
        green::sleep(Duration::from_millis(1));
        r.set(r.get() + 1);
    })
    .unwrap();
    assert!(handler.is_active());
    assert_eq!(handler.signum(), libc::SIGUSR2);
    for n in 1..=3 {
        raise(libc::SIGUSR2);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while runs.get() < n {
            assert!(std::time::Instant::now() < deadline, "delivery {n}");
            green::sleep(Duration::from_millis(1));
        }
    }
    handler.cancel();
    assert!(!handler.is_active());
    // Cancelled, the watcher is stopped and libev's handler gone: the
    // default action would kill the process, so block the signal first.
    // SAFETY: a plain sigprocmask on this thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    assert_eq!(runs.get(), 3);
}

/// gevent's signal watchers do not keep the hub running: the root
/// waiting on something nothing can set is told so (LoopExit) instead of
/// waiting for signals for ever. (A referenced watcher would hang here.)
#[test]
fn a_handler_does_not_keep_the_hub_running() {
    let _handler = green::signal::signal_handler(libc::SIGPWR, || {}).unwrap();
    let never = green::sync::AsyncResult::<u8>::new();
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| never.wait())).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("LoopExit"), "{msg}");
}
