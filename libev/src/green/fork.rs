//! Green threads across `fork(2)` (gevent's `reinit`).
//!
//! A forked child has one thread: the one that called `fork`. Its hub and
//! greenlets are copied over, but the hub's loop shares its kernel state
//! (the epoll instance, the wake-up pipe) with the parent's, and the
//! blocking pool's threads are gone while its counters say they exist.
//! The `pthread_atfork` handler registered here fixes both in every child,
//! however `fork` was called (`libc::fork`, a library): it tells the
//! calling thread's hub loop to recreate its kernel state
//! ([`Loop::reinit_after_fork`](crate::Loop::reinit_after_fork), applied
//! at the loop's next iteration) and makes the next `spawn_blocking` (or
//! name lookup) start a pool of its own. The handler only stores to
//! memory, as code in a forked child of a threaded process must.
//!
//! What cannot carry over: blocking-pool jobs that were queued or running
//! at the fork never finish in the child (their greenlets wait for good),
//! loops of this thread other than the hub's need their own
//! `reinit_after_fork`, and other threads' hubs do not exist in the child.

use std::sync::Once;

/// Registers the fork handler, once per process.
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a child handler that only performs atomic and
        // plain stores (see `in_child`); the other two are none.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// Runs in the child, on the thread that forked, right after `fork`.
extern "C" fn in_child() {
    super::blocking::forked();
    super::hub::reinit_after_fork();
}
