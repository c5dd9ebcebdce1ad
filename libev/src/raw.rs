//! The escape hatch to C: [`Loop::as_raw`], [`Loop::from_raw`] (a loop
//! that C code created and owns), and the registry that lets a raw loop
//! pointer find the Rust handle already wrapping it.
//!
//! What a Rust loop puts into its C loop, all of which must be undone when
//! the Rust side lets go of a loop C owns: the loop's userdata (our
//! `Shared`), the callback queue's two internal watchers, `Loop::once`
//! watchers, and started cleanup watchers (tracked in `Shared::cleanups`,
//! because libev only runs them when the loop is destroyed, which C does,
//! later). Every other watcher holds a loop handle, so none is left once
//! the last handle is gone.

use crate::event_loop::{Loop, LoopInner, Shared, report_orphan_panic};
use crate::watcher::NodeRef;
use libev_sys as sys;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};

thread_local! {
    /// The C loops wrapped by a Rust `Loop` on this thread.
    static WRAPPED: RefCell<Vec<(usize, Weak<LoopInner>)>> = const { RefCell::new(Vec::new()) };
}

/// Records that `inner` wraps `raw` (see [`Loop::from_raw`]).
pub(crate) fn register(raw: *mut sys::ev_loop, inner: &Rc<LoopInner>) {
    // Gone only while the thread's thread-locals are destroyed: no
    // `from_raw` can run on this thread any more then.
    let _ = WRAPPED.try_with(|w| w.borrow_mut().push((raw as usize, Rc::downgrade(inner))));
}

/// Forgets `raw`, whose Rust side is being dropped.
pub(crate) fn unregister(raw: *mut sys::ev_loop) {
    let _ = WRAPPED.try_with(|w| w.borrow_mut().retain(|(r, _)| *r != raw as usize));
}

fn wrapped(raw: *mut sys::ev_loop) -> Option<Loop> {
    let inner = WRAPPED
        .try_with(|w| w.borrow().iter().find(|(r, _)| *r == raw as usize).and_then(|(_, w)| w.upgrade()))
        .ok()
        .flatten()?;
    Some(Loop { inner })
}

impl Loop {
    /// The C loop (`struct ev_loop *`), for C code and [`crate::sys`]
    /// calls. It stays valid while any handle to this loop exists.
    ///
    /// What C code may do with it, on this loop's thread: start, stop and
    /// feed its own watchers (they are invoked from [`Loop::run`] like
    /// ours), and call the functions this crate offers safely (`ev_now`,
    /// `ev_break`, `ev_ref`/`ev_unref` in balanced pairs, …). What it must
    /// not do: destroy the loop, change its userdata
    /// (`ev_set_userdata`: the crate keeps its state there), its
    /// invoke-pending or release callbacks, or touch watchers of this crate
    /// other than through the rules on their `as_raw`.
    ///
    /// ```
    /// let lp = libev::Loop::new()?;
    /// // SAFETY: reading a counter of a live loop.
    /// let depth = unsafe { libev::sys::ev_depth(lp.as_raw()) };
    /// assert_eq!(depth, lp.depth());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_raw(&self) -> *mut sys::ev_loop {
        self.raw()
    }

    /// A Rust handle to a loop that C code created and owns, to start
    /// watchers on it from Rust. Dropping the last Rust handle does not
    /// destroy the loop: it stops what the crate started there, runs the
    /// [`Cleanup`](crate::Cleanup) watchers started from Rust (as if the
    /// loop were destroyed, since to Rust it is), and gives the loop back
    /// to C with the userdata C had set. If the loop is already wrapped by
    /// a Rust handle on this thread (it came from [`Loop::as_raw`], or from
    /// an earlier `from_raw`), that handle is returned.
    ///
    /// libev's default loop can be borrowed too; it then belongs to this
    /// thread as [`Loop::default_loop`] describes (which returns it while
    /// borrowed), and child watchers work on it.
    ///
    /// A panic in a Rust callback while C code runs the loop breaks it
    /// (C's `ev_run` returns) and is re-raised by the next [`Loop::run`]
    /// from Rust, or reported on stderr if the Rust side lets go first.
    ///
    /// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) for a null
    /// pointer, and with [`ResourceBusy`](io::ErrorKind::ResourceBusy) for
    /// the default loop while another thread holds it.
    ///
    /// Not offered on a borrowed loop: the invoke-pending and release
    /// hooks (C may have its own, which libev cannot report back).
    ///
    /// # Safety
    ///
    /// `raw` must be a live libev loop of this process's libev (the one
    /// [`crate::sys`] links), which:
    ///
    /// - stays alive until the last Rust handle to it and every watcher
    ///   started on it from Rust are dropped;
    /// - is used only on this thread while a Rust handle exists;
    /// - C code does not destroy, nor give other userdata to, while a Rust
    ///   handle exists, and whose userdata C does not read meanwhile;
    /// - while C code runs it (`ev_run`, `ev_invoke_pending`, …), a Rust
    ///   handle stays alive outside that call: the Rust side must not let
    ///   go of the loop from inside a callback that C's run invoked (a
    ///   Rust `run` holds a handle itself; C's cannot);
    /// - once borrowed, if it is libev's default loop, stays C's: the
    ///   process never makes it again with [`Loop::default_loop`] (which
    ///   fails with `ResourceBusy` once the Rust side has let go of it).
    ///
    /// ```
    /// use libev::{Loop, Timer, sys};
    /// use std::time::Duration;
    ///
    /// // A loop as a C library would make it.
    /// // SAFETY: no preconditions.
    /// let raw = unsafe { sys::ev_loop_new(0) };
    /// {
    ///     // SAFETY: `raw` is live until ev_loop_destroy below, after the
    ///     // Rust handles and watchers are gone, and stays on this thread.
    ///     let lp = unsafe { Loop::from_raw(raw) }?;
    ///     let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    ///     t.start();
    ///     lp.run();
    /// }
    /// // SAFETY: C's loop, no Rust handle left.
    /// unsafe { sys::ev_loop_destroy(raw) };
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub unsafe fn from_raw(raw: *mut sys::ev_loop) -> io::Result<Loop> {
        let Some(ptr) = NonNull::new(raw) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "Loop::from_raw: null loop pointer"));
        };
        if let Some(lp) = wrapped(raw) {
            return Ok(lp);
        }
        // SAFETY: a live loop, per the contract.
        let userdata = unsafe { sys::ev_userdata(raw) };
        // SAFETY: as above.
        if unsafe { sys::ev_is_default_loop(raw) } {
            return Loop::adopt_default(ptr, userdata);
        }
        crate::global::loop_created();
        Ok(Loop::wrap(ptr, false, Some(userdata)))
    }
}

/// The end of the Rust side of a loop C owns (from `LoopInner::drop`,
/// with the callback queue and `once` watchers already stopped): runs and
/// stops our cleanup watchers, then gives C its userdata back.
pub(crate) fn let_go(shared: &Shared, userdata: *mut c_void) {
    let raw = shared.raw();
    // One at a time: a callback may drop (so unlist) other cleanup watchers.
    loop {
        let Some(w) = shared.cleanups.borrow_mut().pop() else { break };
        // SAFETY: a listed cleanup watcher is the `ev_cleanup` of a live
        // node (stopping it, which dropping does, unlists it); the
        // reference keeps it alive across its callback.
        let node = unsafe { NodeRef::hold(w.as_ptr()) };
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            if node.is_active() {
                // SAFETY: calls our trampoline with our watcher, as
                // ev_loop_destroy would; callbacks may not start watchers
                // (the loop is marked as being destroyed).
                unsafe { sys::ev_invoke(raw, w.as_ptr().cast(), sys::EV_CLEANUP as c_int) };
            }
            node.stop();
            drop(node);
        }));
        if let Err(p) = result {
            report_orphan_panic(&p);
        }
    }
    // SAFETY: the loop is alive (C owns it); nothing of ours uses the
    // userdata any more.
    unsafe { sys::ev_set_userdata(raw, userdata) };
}
