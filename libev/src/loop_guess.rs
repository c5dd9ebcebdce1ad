//! The loop a watcher's hot path passes to libev, known before the
//! watcher's node arrives from memory.
//!
//! A watcher finds its loop in its node, so a libev call on it would wait
//! for the node, then for the loop pointer in it, before libev could read
//! the loop; C code holds the loop in a variable. [`confirm`] compares the
//! node's loop with the loop last used on this thread and, when they are
//! the same, passes on the thread's copy. The comparison is a branch, which
//! the processor predicts, so libev starts on the loop while the node is
//! still on its way: a `Vec<Timer>`'s stop, set and start cost 5 to 7%
//! less at 1,000 and 10,000 timers, and a quarter less at 100,000 (the
//! repository's benchmark page, `docs/benchmarks.md`). The value passed is
//! always the node's own loop.
//!
//! A thread that switches between two loops at random on every operation
//! pays for the mispredicted branches instead (about a fifth more per
//! stop, set and start, measured); runs of operations on one loop, and
//! strict turns, cost nothing more.

use libev_sys as sys;
use std::cell::Cell;

thread_local! {
    /// The loop of the last watcher whose hot path ran on this thread. No
    /// destructor, so it stays usable while the thread's other
    /// thread-locals are destroyed (which may drop watchers).
    static LAST: Cell<*mut sys::ev_loop> = const { Cell::new(std::ptr::null_mut()) };
}

/// `l`, the loop read from a watcher's node; the thread's copy of it when
/// it is the loop last used here, which does not depend on the node.
#[inline(always)]
pub(crate) fn confirm(l: *mut sys::ev_loop) -> *mut sys::ev_loop {
    match matches(l) {
        Some(guess) => guess,
        None => remember(l),
    }
}

/// The thread's copy of the loop last used here when `word` (a loop read
/// from a watcher's node, perhaps tagged: see `watcher::Prefix::link`)
/// is that loop, untagged; else `None`, and the caller takes its slow
/// path, which calls [`confirm`].
#[inline(always)]
pub(crate) fn matches(word: *mut sys::ev_loop) -> Option<*mut sys::ev_loop> {
    // `try_with` cannot fail for a thread-local without a destructor; it
    // keeps any panic out of the hot path all the same.
    let guess = LAST.try_with(Cell::get).unwrap_or(std::ptr::null_mut());
    // The comparison goes through `opaque` so that the compiler cannot
    // substitute `word` for `guess` (which would bring back the wait for
    // the node). A null guess (nothing used yet) matches no node.
    if opaque(guess.addr()) == word.addr() { Some(guess) } else { None }
}

/// A new loop on this thread's hot path: remembered for the next calls.
#[cold]
#[inline(never)]
fn remember(l: *mut sys::ev_loop) -> *mut sys::ev_loop {
    let _ = LAST.try_with(|c| c.set(l));
    l
}

/// A loop at its end: no longer offered as the guess, so that a loop
/// made later at the same address is learnt from its own watchers.
pub(crate) fn forget(l: *mut sys::ev_loop) {
    let _ = LAST.try_with(|c| {
        if c.get() == l {
            c.set(std::ptr::null_mut());
        }
    });
}

/// `v`, through code the compiler cannot see into.
#[inline(always)]
fn opaque(mut v: usize) -> usize {
    #[cfg(all(
        not(miri),
        any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm")
    ))]
    // SAFETY: an empty instruction sequence that leaves the register as it
    // is; it touches no memory, stack or flags.
    unsafe {
        std::arch::asm!("/* {0} */", inlateout(reg) v, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(any(
        miri,
        not(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64", target_arch = "arm"))
    ))]
    {
        v = std::hint::black_box(v);
    }
    v
}
