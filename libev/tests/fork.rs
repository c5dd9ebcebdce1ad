//! A real `fork()`: in the child, `Loop::reinit_after_fork` recreates the
//! kernel state, the `Fork` watcher runs and io watchers keep working.
//!
//! One test at a time (`ONE_AT_A_TIME`): forking a multi-threaded process
//! is safe only while no other thread can hold a lock the child needs, so
//! the tests of this binary must not run in parallel.

mod util;

use libev::{Events, Fork, Io, Loop, Timer};
use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use util::{pipe, read_byte, write_byte};

/// Held by every test of this binary for its whole run.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long the child waits for the events before giving up.
const LIMIT: Duration = Duration::from_secs(5);

/// The child's part: true if the fork watcher ran first and the parent's
/// byte arrived.
fn child(lp: &Loop, forked: &Rc<Cell<u32>>, got: &Rc<Cell<Option<(u8, u32)>>>) -> bool {
    lp.reinit_after_fork();
    let expired = Rc::new(Cell::new(false));
    let e = expired.clone();
    let safety = Timer::new(lp, LIMIT, Duration::ZERO, move |_, _| e.set(true));
    safety.start();
    while (forked.get() == 0 || got.get().is_none()) && !expired.get() {
        lp.run_once();
    }
    // The fork watcher ran exactly once, before the io callback.
    forked.get() == 1 && matches!(got.get(), Some((7, 1))) && !expired.get()
}

#[test]
fn fork_watcher_and_io_in_a_forked_child() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let forked = Rc::new(Cell::new(0u32));
    let f = forked.clone();
    let fork = Fork::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::FORK);
        f.set(f.get() + 1);
    });
    fork.start();
    // Records the byte and how many fork callbacks had run by then.
    let got = Rc::new(Cell::new(None));
    let (g, f) = (got.clone(), forked.clone());
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
        assert!(ev.contains(Events::READ));
        if let Some(b) = read_byte(io.fd()) {
            g.set(Some((b, f.get())));
            io.stop();
        }
    })
    .unwrap();
    io.start();
    // Register the fd with the kernel (epoll) before forking, so the child
    // really depends on reinit_after_fork to get a backend of its own.
    lp.run_nowait();
    assert_eq!(forked.get(), 0);

    // SAFETY: the child only runs this crate's code and then `_exit`s; no
    // other test of this binary runs meanwhile, so no other thread holds a
    // lock.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let ok = catch_unwind(AssertUnwindSafe(|| child(&lp, &forked, &got)));
        let code = match ok {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(_) => 2,
        };
        // SAFETY: ends the child at once, without running the test
        // harness's code (or destructors) in it.
        unsafe { libc::_exit(code) };
    }

    // Parent: wake the child's io watcher.
    write_byte(&w, 7);
    let mut status = 0;
    // SAFETY: waits for our own child, writing into a live local.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child did not exit normally: status {status:#x}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "child failed (1: fork watcher or io event missing within {LIMIT:?}; 2: panicked)"
    );
    // The parent's loop did not see the fork.
    assert_eq!(forked.get(), 0);
    assert!(got.get().is_none());
    drop((io, fork));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    util::run_suite_on_every_backend("suite_on_every_backend");
}
