//! The loop a watcher's hot path passes to libev, known before the
//! watcher's node arrives from memory.
//!
//! A watcher finds its loop in its node, so a libev call on it would wait
//! for the node, then for the loop pointer in it, before libev could read
//! the loop; C code holds the loop in a variable. So the hot paths
//! (`Header::stop`, `start`, `loop_if_plain` in `watcher.rs`) compare the
//! node's loop word with the loop last used on this thread ([`matches`])
//! and, when they are the same, pass on the thread's copy. The comparison
//! is a branch, which the processor predicts, so libev starts on the loop
//! while the node is still on its way. The value passed is always the
//! node's own loop.
//!
//! The node's word carries a tag bit while the watcher has bookkeeping to
//! settle (`watcher::Prefix::link`); the guess never does, so the same
//! comparison also fails for such a watcher, and the caller's slow path
//! does the whole work and learns the loop ([`confirm`]). On the benchmark
//! page (`docs/benchmarks.md`), the two together made a `Vec<Timer>`'s
//! stop, set and start 7% cheaper at 1,000 and 10,000 timers and a tenth
//! at 100,000.
//!
//! What takes the slow path pays for it: a thread that switches between
//! two loops at random on every operation about a fifth more per stop,
//! set and start (the mispredicted branches), in strict turns 5% more,
//! and timers that do not keep their loop alive 5 to 7% more; runs of
//! operations on one loop cost less than before (all measured, on the
//! benchmark page).

use libev_sys as sys;
use std::cell::Cell;

thread_local! {
    /// The loop of the last watcher whose hot path ran on this thread. No
    /// destructor, so it stays usable while the thread's other
    /// thread-locals are destroyed (which may drop watchers).
    static LAST: Cell<*mut sys::ev_loop> = const { Cell::new(std::ptr::null_mut()) };
}

/// `l`, the loop read from a watcher's node (untagged); the thread's copy
/// of it when it is the loop last used here, which does not depend on the
/// node. Remembers `l` otherwise.
#[inline(always)]
pub(crate) fn confirm(l: *mut sys::ev_loop) -> *mut sys::ev_loop {
    match matches(l) {
        Some(guess) => guess,
        None => remember(l),
    }
}

/// The thread's copy of the loop last used here when `word` (a loop word
/// read from a watcher's node, perhaps tagged: see
/// `watcher::Prefix::link`) is that loop, untagged; else `None`, and the
/// caller takes its slow path (which, for an ordinary watcher, calls
/// [`confirm`] with the untagged loop).
#[inline(always)]
pub(crate) fn matches(word: *mut sys::ev_loop) -> Option<*mut sys::ev_loop> {
    // `try_with` fails only after the thread-local is destroyed, which
    // one without a destructor never is where TLS is native; elsewhere, a
    // null guess sends the caller to its slow path. No panic either way.
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
    // A tagged guess would match tagged nodes, whose bookkeeping the fast
    // paths would then skip.
    debug_assert!(l.addr() & 1 == 0, "the guess is an untagged loop");
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
