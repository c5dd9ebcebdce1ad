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
//! at the loop's next iteration) and counts the fork, which makes the
//! blocking pool start afresh (`blocking.rs`). The handler only stores to
//! memory, as code in a forked child of a threaded process must.
//!
//! What cannot carry over: blocking-pool jobs that were queued or running
//! at the fork never finish in the child (their greenlets wait for good),
//! loops of this thread other than the hub's need their own
//! `reinit_after_fork`, and other threads' hubs do not exist in the child.

use super::monitor::Beat;
use libev_sys as sys;
use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many forks this process descends from since the handler was
/// registered (it counts in the child).
static FORKS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's hub loop, while the hub exists (set by the hub). A
    /// const thread-local without a destructor: readable from the handler.
    static HUB_LOOP: Cell<*mut sys::ev_loop> = const { Cell::new(std::ptr::null_mut()) };
    /// This thread's hub's heartbeat for the blocking monitor, likewise.
    static HUB_BEAT: Cell<*const Beat> = const { Cell::new(std::ptr::null()) };
}

/// Registers the fork handler, once per process.
pub(crate) fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a child handler that only performs an atomic
        // add and a store into a live loop (see `in_child`).
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// The number of forks so far, as the child sees it: a pool made at
/// another count belongs to an ancestor process.
pub(crate) fn generation() -> u64 {
    FORKS.load(Ordering::Acquire)
}

/// Records the calling thread's hub loop and heartbeat (null when the
/// hub goes).
pub(crate) fn set_hub_loop(l: *mut sys::ev_loop, beat: *const Beat) {
    HUB_LOOP.set(l);
    HUB_BEAT.set(beat);
}

/// Runs in the child, on the thread that forked, right after `fork`.
extern "C" fn in_child() {
    FORKS.fetch_add(1, Ordering::AcqRel);
    super::monitor::forget_after_fork();
    let beat = HUB_BEAT.get();
    // SAFETY: the hub's live heartbeat (cleared before the hub goes); the
    // reset only stores to atomics.
    if let Some(beat) = unsafe { beat.as_ref() } {
        beat.reset_after_fork();
    }
    let l = HUB_LOOP.get();
    if !l.is_null() {
        // SAFETY: the hub's live loop (cleared before the hub goes);
        // ev_loop_fork only sets a flag in it.
        unsafe { sys::ev_loop_fork(l) };
    }
}
