//! [`Embed`]: one loop inside another.

use crate::event_loop::Shared;
use crate::event_loop::{Loop, LoopInner};
use crate::watcher::{DataSlot, NodeRef, RawWatcher, plain_start, watcher_type};
use libev_sys as sys;
use std::ffi::c_int;
use std::io;
use std::mem::offset_of;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::OnceLock;

/// Undoes the parent/child link `Embed::new` made for `embedded`.
fn unlink(embedded: &Shared) {
    if let Some(parent) = embedded.parent.take() {
        // SAFETY: the parent outlives the Embed watcher being released.
        let parent = unsafe { parent.as_ref() };
        parent.children.borrow_mut().retain(|c| !std::ptr::eq(c.as_ptr(), embedded));
    }
}

// SAFETY: libev's own start and stop functions; `start` also puts guards
// around two of the watcher's internal callbacks (see `guard_internals`),
// and `release` drops only the handle to the embedded loop we leaked into
// the `DataSlot`.
unsafe impl RawWatcher for sys::ev_embed {
    type Extra = DataSlot;
    #[inline]
    unsafe fn start(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: forwarded from the caller; then `w` is initialised.
        unsafe {
            sys::ev_embed_start(l, w);
            guard_internals(w);
        }
    }

    #[inline]
    unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: forwarded from the caller.
        unsafe { sys::ev_embed_stop(l, w) }
    }

    unsafe fn release(w: *mut Self) {
        // SAFETY: the `DataSlot` is null or an `Rc<LoopInner>` we leaked; the
        // watcher is stopped, so libev no longer touches the embedded loop
        // through it. Its parent (this watcher's loop) is still alive:
        // the watcher holds it until after `release`.
        unsafe {
            let data = DataSlot::of(w).take().cast::<LoopInner>();
            if !data.is_null() {
                let inner = Rc::from_raw(data);
                unlink(inner.shared());
                drop(inner);
            }
        }
    }
}

type PrepareCb = unsafe extern "C" fn(*mut sys::ev_loop, *mut sys::ev_prepare, c_int);
type ForkCb = unsafe extern "C" fn(*mut sys::ev_loop, *mut sys::ev_fork, c_int);

/// libev's own `embed_prepare_cb` and `embed_fork_cb` (static in ev.c),
/// read from the first embed watcher started.
static LIBEV_CBS: OnceLock<(PrepareCb, ForkCb)> = OnceLock::new();

/// Wraps libev's callbacks of the prepare and fork watchers inside `w`.
///
/// libev runs the embedded loop from them on its own (`embed_prepare_cb`
/// runs it while it has fd changes to apply; `embed_fork_cb` runs it
/// after a fork, then restarts `w`). Nobody who entered libev holds the
/// embedded loop or the `Embed` then, so a callback of the embedded loop
/// that drops the last `Embed` would destroy the loop libev is running, or
/// free the watcher libev restarts. The guards hold both for the call.
/// `ev_embed_start` sets those callbacks afresh, so this follows every
/// start.
///
/// # Safety
///
/// `w` is the initialised `ev_embed` of a live node.
unsafe fn guard_internals(w: *mut sys::ev_embed) {
    // SAFETY: per the contract, `w` is valid; libev allows changing a
    // watcher's callback at any time from the loop's thread.
    unsafe {
        let prepare = &mut (*w).prepare;
        let fork = &mut (*w).fork;
        // The first time, they are libev's: a watcher whose callbacks are
        // already the guards was started (and guarded) before.
        if let (Some(p), Some(f)) = (prepare.cb, fork.cb) {
            LIBEV_CBS.get_or_init(|| (p, f));
        }
        prepare.cb = Some(guarded_prepare);
        fork.cb = Some(guarded_fork);
    }
}

/// Holds the `Embed` node around `w` and the loop it embeds while `run`
/// calls into libev; drops them afterwards, handing a panic from a
/// destructor to the outer loop `l`.
///
/// # Safety
///
/// `w` is the `ev_embed` of a live `Embed` node on the live loop `l`.
unsafe fn holding(l: *mut sys::ev_loop, w: *mut sys::ev_embed, run: impl FnOnce()) {
    // SAFETY: per the contract.
    let node = unsafe { NodeRef::hold(w) };
    // SAFETY: the `DataSlot` of a started embed watcher is the embedded loop's Rc
    // (set in `Embed::new`, cleared only by `release` after a stop).
    let embedded = unsafe {
        let data = DataSlot::of(w).get().cast::<LoopInner>();
        (!data.is_null()).then(|| {
            Rc::increment_strong_count(data);
            Rc::from_raw(data)
        })
    };
    run();
    // The node first: releasing it may drop its count of the embedded
    // loop, whose last one (ours) then destroys it, outside libev.
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || {
        drop(node);
        drop(embedded);
    })) {
        // SAFETY: `l` is alive: whoever runs it holds it.
        unsafe { Shared::from_raw(l) }.handle_panic(p);
    }
}

unsafe extern "C" fn guarded_prepare(l: *mut sys::ev_loop, p: *mut sys::ev_prepare, revents: c_int) {
    let (libev_prepare, _) = *LIBEV_CBS.get().expect("set before this guard is installed");
    // SAFETY: `p` is the prepare watcher inside a live node's `ev_embed`
    // (libev calls this only for it, while it is started).
    unsafe {
        let w = p.byte_sub(offset_of!(sys::ev_embed, prepare)).cast::<sys::ev_embed>();
        holding(l, w, || libev_prepare(l, p, revents));
    }
}

unsafe extern "C" fn guarded_fork(l: *mut sys::ev_loop, f: *mut sys::ev_fork, revents: c_int) {
    let (_, libev_fork) = *LIBEV_CBS.get().expect("set before this guard is installed");
    // SAFETY: as for the prepare watcher; libev's callback restarts the
    // watcher, which resets both callbacks: put the guards back.
    unsafe {
        let w = f.byte_sub(offset_of!(sys::ev_embed, fork)).cast::<sys::ev_embed>();
        holding(l, w, || {
            libev_fork(l, f, revents);
            guard_internals(w);
        });
    }
}

watcher_type! {
    /// Embeds another loop in this one (libev's `ev_embed`): while active,
    /// the outer loop notices when the embedded loop has events, and the
    /// callback should then call [`sweep`](Embed::sweep) to run one
    /// non-blocking iteration of it. The watcher keeps the embedded loop
    /// alive.
    ///
    /// Typical use: a loop with a backend that suits a few special fds
    /// (say kqueue for sockets) embedded in a portable default loop.
    Embed, ev_embed, EmbedCallback
}
plain_start!(Embed);

impl Embed {
    /// A stopped watcher embedding `embedded` in `lp`. Fails with
    /// [`Unsupported`](io::ErrorKind::Unsupported) if the embedded loop's
    /// backend cannot be embedded (see [`Loop::embeddable_backends`]), with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if both are the same
    /// loop or if `lp` is itself embedded in `embedded`, and with
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) if `embedded` is
    /// already embedded somewhere. A panic in a callback of
    /// the embedded loop comes out of `lp`'s [`Loop::run`] (or `sweep`).
    pub fn new<F>(lp: &Loop, embedded: &Loop, callback: F) -> io::Result<Embed>
    where
        F: FnMut(&Embed, crate::Events) + 'static,
    {
        check(lp, embedded)?;
        let other = embedded.raw();
        let keep = link(lp, embedded);
        Ok(Embed::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` drops `keep`.
            unsafe {
                sys::ev_embed_set(w, other);
                DataSlot::of(w).set(keep.cast_mut().cast());
            }
        }))
    }

    /// Runs one non-blocking iteration of the embedded loop (libev's
    /// `ev_embed_sweep`).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from a callback of the embedded loop.
    pub fn sweep(&self) {
        let Some(lp) = self.node.shared() else {
            return;
        };
        lp.check_unlocked();
        let embedded = self.embedded();
        embedded.shared().check_run();
        // SAFETY: our watcher on its live loop; `embedded` keeps the other
        // loop alive for the call, whatever its callbacks drop.
        unsafe { sys::ev_embed_sweep(lp.raw(), self.node.raw()) };
        embedded.shared().rethrow();
    }

    /// Embeds `embedded` instead (libev's `ev_embed_set`); an active
    /// watcher is restarted on it, keeping a pending event. The loop
    /// embedded before is let go (and destroyed if this watcher held its
    /// last handle). Fails as [`Embed::new`] does, leaving the watcher
    /// unchanged; setting the loop already embedded does nothing.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from a cleanup watcher of the loop let go.
    pub fn set(&self, embedded: &Loop) -> io::Result<()> {
        let lp = self.loop_handle();
        if self.embedded().ptr_eq(embedded) {
            return Ok(());
        }
        check(&lp, embedded)?;
        let other = embedded.raw();
        let w = self.node.raw();
        let old = self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`, so libev
            // no longer runs the old loop through it; we take our count of
            // it out of the `DataSlot` (dropped below, outside libev), and `release`
            // drops the new one.
            unsafe {
                let old = Rc::from_raw(DataSlot::of(w).get().cast::<LoopInner>().cast_const());
                unlink(old.shared());
                let keep = link(&lp, embedded);
                sys::ev_embed_set(w, other);
                DataSlot::of(w).set(keep.cast_mut().cast());
                old
            }
        });
        drop(old);
        Ok(())
    }

    /// The embedded loop.
    pub fn embedded(&self) -> Loop {
        // SAFETY: the `DataSlot` holds a leaked strong count of the embedded loop's
        // Rc for as long as the watcher exists; we add one for the handle.
        let inner = unsafe {
            let data = DataSlot::of(self.node.raw()).get().cast::<LoopInner>();
            Rc::increment_strong_count(data);
            Rc::from_raw(data)
        };
        Loop { inner }
    }
}

/// Why `embedded` cannot be embedded in `lp`, if it cannot.
fn check(lp: &Loop, embedded: &Loop) -> io::Result<()> {
    if lp.ptr_eq(embedded) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a loop cannot embed itself"));
    }
    if (embedded.backend() & Loop::embeddable_backends()).is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("a loop with backend {:?} cannot be embedded here", embedded.backend()),
        ));
    }
    if embedded.shared().parent.get().is_some() {
        return Err(io::Error::new(io::ErrorKind::ResourceBusy, "this loop is already embedded in a loop"));
    }
    // No cycles: `lp` must not itself be embedded, at any depth, in
    // `embedded`.
    let mut up = lp.shared().parent.get();
    while let Some(p) = up {
        if std::ptr::eq(p.as_ptr(), embedded.shared()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "embedding would make a cycle of loops"));
        }
        // SAFETY: parents are alive while their Embed watchers exist.
        up = unsafe { p.as_ref() }.parent.get();
    }
    Ok(())
}

/// Links the two loops so that panics in the embedded loop's callbacks,
/// which libev may run from inside the outer loop, surface there; returns
/// the strong count of `embedded` that the watcher keeps in the `DataSlot`.
fn link(lp: &Loop, embedded: &Loop) -> *const LoopInner {
    embedded.shared().parent.set(Some(NonNull::from(lp.shared())));
    lp.shared().children.borrow_mut().push(NonNull::from(embedded.shared()));
    Rc::into_raw(embedded.inner.clone())
}
