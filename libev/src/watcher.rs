//! The machinery shared by all watcher types.
//!
//! A watcher is a [`Node`] in an `Rc`: the `ev_*` struct (in [`Core`]),
//! bookkeeping, and the user's closure as the (possibly unsized) last
//! field. The public types (`Io`, `Timer`, ...) are unique owners of such an
//! `Rc` whose `Drop` stops the watcher.
//!
//! libev calls [`dispatch`] through a trampoline generic over the concrete
//! closure type `F`; it recovers the node from the `ev_*` pointer with
//! `offset_of!` (gevent's `GET_OBJECT`). While the callback runs:
//!
//! - the trampoline holds its own strong reference, so the callback may
//!   drop the watcher's owner (or anything else) without freeing the memory
//!   it is running in; the owner's `Drop` still stops the watcher at once;
//! - the node is marked busy, so the same closure is never entered twice
//!   (no aliased `&mut F`): an event for a busy watcher (nested `run`,
//!   `invoke` from its own callback) is remembered and fed back to libev
//!   once the callback returns, if the watcher is still active;
//! - panics are caught and handed to the loop (see [`Loop`]).
//!
//! Per-type resources (a `Stat` path, a periodic's reschedule closure, an
//! embedded loop, an async watcher's shared state) hang off the watcher's
//! `data` field and are freed by [`RawWatcher::release`] after the watcher
//! is stopped for good.

use crate::event_loop::{Loop, LoopInner, Shared};
use crate::flags::Events;
use libev_sys as sys;
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_int;
use std::io;
use std::marker::PhantomPinned;
use std::mem::{ManuallyDrop, MaybeUninit, offset_of};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};

/// An `ev_*` watcher struct with its start and stop functions.
///
/// # Safety
///
/// `start` and `stop` must be libev's functions for `Self`, and `release`
/// must only free what this crate put in the watcher's `data` field.
pub(crate) unsafe trait RawWatcher: sys::Watcher + 'static {
    /// `ev_TYPE_start`.
    ///
    /// # Safety
    ///
    /// `l` and `w` valid, `w` initialised and not moving while active.
    unsafe fn start(l: *mut sys::ev_loop, w: *mut Self);

    /// `ev_TYPE_stop`.
    ///
    /// # Safety
    ///
    /// `l` valid and the loop `w` was started on, if it is active.
    unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self);

    /// Frees what the crate keeps in `data`; called once, on a stopped
    /// watcher, when its node is dropped.
    ///
    /// # Safety
    ///
    /// `w` valid, stopped, never started again.
    unsafe fn release(_w: *mut Self) {}
}

macro_rules! raw_watchers {
    ($($t:ident => $start:ident, $stop:ident;)*) => {
        $(
            // SAFETY: these are libev's own start/stop functions for the type.
            unsafe impl RawWatcher for sys::$t {
                unsafe fn start(l: *mut sys::ev_loop, w: *mut Self) {
                    // SAFETY: forwarded from the caller.
                    unsafe { sys::$start(l, w) }
                }
                unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self) {
                    // SAFETY: forwarded from the caller.
                    unsafe { sys::$stop(l, w) }
                }
            }
        )*
    };
}
raw_watchers! {
    ev_io => ev_io_start, ev_io_stop;
    ev_timer => ev_timer_start, ev_timer_stop;
    ev_child => ev_child_start, ev_child_stop;
    ev_idle => ev_idle_start, ev_idle_stop;
    ev_prepare => ev_prepare_start, ev_prepare_stop;
    ev_check => ev_check_start, ev_check_stop;
    ev_fork => ev_fork_start, ev_fork_stop;
    ev_cleanup => ev_cleanup_start, ev_cleanup_stop;
}

/// How a watcher holds its loop: strongly (every type but `Cleanup`), or
/// weakly (`Cleanup`, whose whole point is to run while the loop is being
/// destroyed, which a strong handle would prevent).
pub(crate) enum LoopLink {
    Strong(Loop),
    Weak {
        inner: Weak<LoopInner>,
        live: Rc<Cell<Option<NonNull<Shared>>>>,
    },
}

impl LoopLink {
    /// A weak link to `lp`.
    pub(crate) fn weak(lp: &Loop) -> LoopLink {
        LoopLink::Weak {
            inner: Rc::downgrade(&lp.inner),
            live: lp.inner.live.clone(),
        }
    }
}

/// The non-generic part of a watcher: the `ev_*` struct and bookkeeping.
pub(crate) struct Core<W: RawWatcher> {
    raw: UnsafeCell<W>,
    link: LoopLink,
    /// The user asked that this watcher not keep the loop alive.
    unref: Cell<bool>,
    /// We called `ev_unref` for it and owe an `ev_ref`.
    unref_applied: Cell<bool>,
    /// Its callback is running.
    busy: Cell<bool>,
    /// Events that arrived while busy, to be fed again afterwards.
    missed: Cell<c_int>,
    _pinned: PhantomPinned,
}

/// A watcher node: `Core` plus the closure, last so it may be unsized.
pub(crate) struct Node<W: RawWatcher, C: ?Sized> {
    pub(crate) core: Core<W>,
    pub(crate) cb: UnsafeCell<C>,
}

impl<W: RawWatcher> Core<W> {
    /// A new, inactive watcher whose callback is the trampoline `tramp`.
    pub(crate) fn new(link: LoopLink, tramp: sys::Callback<W>) -> Core<W> {
        // SAFETY: every `ev_*` struct is plain data for which all-zero is a
        // valid, inactive value; ev_init then sets the header.
        let mut raw: W = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `raw` is a local, inactive watcher.
        unsafe { sys::ev_init(&mut raw, tramp) };
        Core {
            raw: UnsafeCell::new(raw),
            link,
            unref: Cell::new(false),
            unref_applied: Cell::new(false),
            busy: Cell::new(false),
            missed: Cell::new(0),
            _pinned: PhantomPinned,
        }
    }

    /// The `ev_*` struct. Only ever used as a raw pointer: libev holds
    /// pointers to it too.
    #[inline]
    pub(crate) fn raw(&self) -> *mut W {
        self.raw.get()
    }

    /// The loop's shared state while the C loop exists (always, except for
    /// a `Cleanup` whose loop was destroyed). Callers must not run user code
    /// while they hold it, unless they also hold a strong handle.
    #[inline]
    pub(crate) fn shared(&self) -> Option<&Shared> {
        match &self.link {
            LoopLink::Strong(lp) => Some(lp.shared()),
            // SAFETY: `live` is `Some` exactly while the Shared is allocated;
            // it can only be freed by dropping the last `Loop`, which takes
            // user code, and callers run none while holding the reference.
            LoopLink::Weak { live, .. } => live.get().map(|p| unsafe { &*p.as_ptr() }),
        }
    }

    /// The loop handle (`None` only for a `Cleanup` whose loop is gone or
    /// being destroyed).
    pub(crate) fn loop_handle(&self) -> Option<Loop> {
        match &self.link {
            LoopLink::Strong(lp) => Some(lp.clone()),
            LoopLink::Weak { inner, .. } => inner.upgrade().map(|inner| Loop { inner }),
        }
    }

    /// The raw loop, after checking we may call libev.
    #[inline]
    fn usable_loop(&self) -> Option<*mut sys::ev_loop> {
        let lp = self.shared()?;
        lp.check_unlocked();
        Some(lp.raw())
    }

    #[inline]
    pub(crate) fn start(&self) {
        let Some(lp) = self.shared() else { return };
        lp.check_unlocked();
        // libev forbids starting cleanup watchers while it destroys the loop.
        if self.is_active() || lp.destroying() {
            return;
        }
        let l = lp.raw();
        // SAFETY: the node is pinned in its Rc and outlives its activity
        // (dropping it stops it); `l` is its live loop.
        unsafe { W::start(l, self.raw()) };
        if self.unref.get() && !self.unref_applied.get() {
            // SAFETY: live loop; balanced by `ev_ref` in stop/fix_ref.
            unsafe { sys::ev_unref(l) };
            self.unref_applied.set(true);
        }
    }

    #[inline]
    pub(crate) fn stop(&self) {
        let Some(l) = self.usable_loop() else { return };
        self.restore_ref(l);
        // SAFETY: `l` is the loop the watcher was started on; stopping an
        // inactive watcher only clears a pending event.
        unsafe { W::stop(l, self.raw()) };
    }

    #[inline]
    fn restore_ref(&self, l: *mut sys::ev_loop) {
        if self.unref_applied.replace(false) {
            // SAFETY: live loop; pays back our earlier ev_unref.
            unsafe { sys::ev_ref(l) };
        }
    }

    /// libev stops some watchers itself (a non-repeating timer that fired,
    /// an io watcher with a bad fd): pay back our `ev_unref` then.
    #[inline]
    fn fix_ref(&self, l: *mut sys::ev_loop) {
        if self.unref_applied.get() && !self.is_active() {
            self.restore_ref(l);
        }
    }

    /// Restores the reference bookkeeping after libev itself started or
    /// stopped the watcher (`ev_timer_again`, `ev_periodic_again`).
    pub(crate) fn after_external_change(&self, was_active: bool) {
        let Some(lp) = self.shared() else { return };
        let l = lp.raw();
        if !self.is_active() {
            self.restore_ref(l);
        } else if !was_active && self.unref.get() && !self.unref_applied.get() {
            // SAFETY: live loop; balanced by restore_ref.
            unsafe { sys::ev_unref(l) };
            self.unref_applied.set(true);
        }
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        // SAFETY: reads the header of our live watcher.
        unsafe { sys::ev_is_active(self.raw()) }
    }

    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        // SAFETY: reads the header of our live watcher.
        unsafe { sys::ev_is_pending(self.raw()) }
    }

    pub(crate) fn priority(&self) -> i32 {
        // SAFETY: reads the header of our live watcher.
        unsafe { sys::ev_priority(self.raw()) }
    }

    /// Sets the priority; an active or pending watcher is stopped first and
    /// restarted (with its pending events fed again) afterwards, since libev
    /// forbids changing it in those states.
    pub(crate) fn set_priority(&self, priority: i32) -> io::Result<()> {
        if !(sys::EV_MINPRI..=sys::EV_MAXPRI as i32).contains(&priority) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("priority {priority} is outside libev's range -2..=2"),
            ));
        }
        self.while_stopped(|| {
            // SAFETY: the watcher is neither active nor pending here.
            unsafe { sys::ev_set_priority(self.raw(), priority) }
        });
        Ok(())
    }

    /// Runs `f` with the watcher stopped and not pending, then restores
    /// both states (libev forbids changing most parameters otherwise).
    pub(crate) fn while_stopped<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(l) = self.usable_loop() else {
            return f();
        };
        let was_active = self.is_active();
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(l, self.raw().cast()) };
        if was_active {
            self.stop();
        }
        let r = f();
        if was_active {
            self.start();
        }
        if pending != 0 {
            // SAFETY: feeding an event to our own (pinned) watcher.
            unsafe { sys::ev_feed_event(l, self.raw().cast(), pending) };
        }
        r
    }

    pub(crate) fn set_keeps_loop_alive(&self, keep: bool) {
        self.unref.set(!keep);
        let Some(l) = self.usable_loop() else { return };
        if keep {
            self.restore_ref(l);
        } else if self.is_active() && !self.unref_applied.get() {
            // SAFETY: live loop; balanced by restore_ref.
            unsafe { sys::ev_unref(l) };
            self.unref_applied.set(true);
        }
    }

    pub(crate) fn keeps_loop_alive(&self) -> bool {
        !self.unref.get()
    }

    pub(crate) fn feed_event(&self, events: Events) {
        let Some(l) = self.usable_loop() else { return };
        // SAFETY: our pinned watcher; dropping it clears the pending event.
        unsafe { sys::ev_feed_event(l, self.raw().cast(), events.to_revents()) }
    }

    pub(crate) fn clear_pending(&self) -> Events {
        let Some(l) = self.usable_loop() else {
            return Events::empty();
        };
        // SAFETY: our watcher on its live loop.
        Events::from_revents(unsafe { sys::ev_clear_pending(l, self.raw().cast()) })
    }

    pub(crate) fn invoke(&self, events: Events) {
        // A strong handle: the callback may drop every other one.
        let Some(lp) = self.loop_handle() else { return };
        lp.shared().check_unlocked();
        // SAFETY: calls our trampoline with our own watcher, like libev does.
        unsafe { sys::ev_invoke(lp.raw(), self.raw().cast(), events.to_revents()) };
        lp.shared().rethrow();
    }
}

impl<W: RawWatcher> Drop for Core<W> {
    fn drop(&mut self) {
        if let Some(lp) = self.shared() {
            let l = lp.raw();
            self.restore_ref(l);
            // SAFETY: stops (and clears any pending event of) our watcher on
            // its live loop, so libev keeps no pointer to it.
            unsafe { W::stop(l, self.raw()) };
        }
        // SAFETY: the watcher is stopped (or its loop is gone) for good.
        unsafe { W::release(self.raw()) };
    }
}

/// Implemented by each public watcher type, owner of an `Rc<Node<..>>`.
pub(crate) trait Owner: Sized {
    type Raw: RawWatcher;
    type Cb: ?Sized;
    fn node(&self) -> &Rc<Node<Self::Raw, Self::Cb>>;
}

/// The body of every trampoline: runs the closure of the node that owns
/// `w`, with the re-entrancy, lifetime and panic rules described above.
///
/// # Safety
///
/// `w` must be the `raw` field of the `Core` of a live `Node<W, F>` held in
/// an `Rc`, and `wrap` must build the owner type around that same node.
pub(crate) unsafe fn dispatch<W, F, T>(
    l: *mut sys::ev_loop,
    w: *mut W,
    revents: c_int,
    wrap: impl FnOnce(Rc<Node<W, F>>) -> T,
) where
    W: RawWatcher,
    F: FnMut(&T, Events) + 'static,
    T: Owner<Raw = W>,
{
    let offset = offset_of!(Node<W, F>, core) + offset_of!(Core<W>, raw);
    // SAFETY: per the contract, `w` lies `offset` bytes into a Node<W, F>.
    let node = unsafe { w.cast::<u8>().sub(offset).cast::<Node<W, F>>() };
    // SAFETY: the node lives in an Rc (contract); this extra strong count
    // keeps it alive for the whole callback, whatever the callback drops.
    let guard = unsafe {
        Rc::increment_strong_count(node);
        Rc::from_raw(node)
    };
    // SAFETY: libev calls back only for loops made by `Loop`, while they
    // exist. The Shared outlives this call even after `guard` is dropped:
    // whoever entered libev (`run`, `invoke`, or the loop's own Drop) holds
    // the loop for the duration.
    let lp = unsafe { Shared::from_raw(l) };
    let core = &guard.core;
    core.fix_ref(l);
    if core.busy.replace(true) {
        // Re-entered (nested run or invoke from its own callback): keep the
        // events for later rather than alias the running closure.
        core.missed.set(core.missed.get() | revents);
        return;
    }
    let cb = guard.cb.get();
    // The owner type as the callback's view; never dropped as an owner (that
    // would stop the watcher), only as the Rc it wraps.
    let view = ManuallyDrop::new(wrap(guard.clone()));
    // SAFETY: `busy` guarantees this is the only live reference to the
    // closure, which the node keeps alive.
    let result = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
        (*cb)(&view, Events::from_revents(revents))
    }));
    core.busy.set(false);
    let missed = core.missed.replace(0);
    if missed != 0 && core.is_active() {
        core.feed_event(Events::from_revents(missed));
    }
    // SAFETY: `view` is never used again; take its Rc without running the
    // owner's Drop.
    drop(unsafe { std::ptr::read(view.node()) });
    if let Err(payload) = result {
        lp.handle_panic(payload);
    }
    // Releasing the guard may free the node (its owner is gone), running
    // user destructors: keep their panics out of C as well.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || drop(guard))) {
        lp.handle_panic(payload);
    }
}

/// Generates a public watcher type: the owner struct, its `Drop`, `Debug`,
/// the trampoline, and the methods every watcher has.
macro_rules! watcher_type {
    (
        $(#[$meta:meta])*
        $name:ident, $raw:ident, $cb:ident
    ) => {
        $(#[$meta])*
        pub struct $name {
            node: std::rc::Rc<crate::watcher::Node<libev_sys::$raw, $cb>>,
        }

        #[doc = concat!("The closure type a [`", stringify!($name), "`] calls: it receives the watcher and the events.")]
        pub type $cb = dyn FnMut(&$name, crate::Events) + 'static;

        impl crate::watcher::Owner for $name {
            type Raw = libev_sys::$raw;
            type Cb = $cb;
            fn node(&self) -> &std::rc::Rc<crate::watcher::Node<libev_sys::$raw, $cb>> {
                &self.node
            }
        }

        impl $name {
            /// Builds the node around a concrete closure.
            fn from_closure<F>(link: crate::watcher::LoopLink, f: F, init: impl FnOnce(*mut libev_sys::$raw)) -> $name
            where
                F: FnMut(&$name, crate::Events) + 'static,
            {
                unsafe extern "C" fn trampoline<F>(
                    l: *mut libev_sys::ev_loop,
                    w: *mut libev_sys::$raw,
                    revents: std::ffi::c_int,
                ) where
                    F: FnMut(&$name, crate::Events) + 'static,
                {
                    // SAFETY: libev passes back the watcher we started, which
                    // is the core of a live `Node<_, F>` built below.
                    unsafe { crate::watcher::dispatch::<libev_sys::$raw, F, $name>(l, w, revents, |node| $name { node }) }
                }
                let node = std::rc::Rc::new(crate::watcher::Node {
                    core: crate::watcher::Core::new(link, Some(trampoline::<F>)),
                    cb: std::cell::UnsafeCell::new(f),
                });
                init(node.core.raw());
                $name { node }
            }

            /// Stops watching (libev's `ev_*_stop`) and cancels a pending event;
            /// does nothing if inactive.
            pub fn stop(&self) {
                self.node.core.stop()
            }

            /// Whether the watcher was started and not yet stopped (by you, or
            /// by libev: a non-repeating timer stops when it fires).
            pub fn is_active(&self) -> bool {
                self.node.core.is_active()
            }

            /// Whether an event is waiting for the callback to run.
            pub fn is_pending(&self) -> bool {
                self.node.core.is_pending()
            }

            /// The priority, -2 (lowest) to 2 (highest); default 0.
            pub fn priority(&self) -> i32 {
                self.node.core.priority()
            }

            /// Sets the priority, -2..=2: among pending watchers, higher ones run
            /// first. Allowed in any state (an active or pending watcher is
            /// stopped and restarted around the change, keeping its events).
            /// Fails with [`InvalidInput`](std::io::ErrorKind::InvalidInput) out of range.
            pub fn set_priority(&self, priority: i32) -> std::io::Result<()> {
                self.node.core.set_priority(priority)
            }

            /// gevent's `ref`: whether this watcher, while active, keeps
            /// [`Loop::run`](crate::Loop::run) from returning (default `true`).
            pub fn set_keeps_loop_alive(&self, keep: bool) {
                self.node.core.set_keeps_loop_alive(keep)
            }

            /// See [`set_keeps_loop_alive`](Self::set_keeps_loop_alive).
            pub fn keeps_loop_alive(&self) -> bool {
                self.node.core.keeps_loop_alive()
            }

            /// Makes the watcher pending with `events`, as if they had happened;
            /// the callback runs in the loop's next pending-processing phase.
            /// Works on inactive watchers too.
            pub fn feed_event(&self, events: crate::Events) {
                self.node.core.feed_event(events)
            }

            /// Cancels a pending event; returns the events it had (empty if none).
            pub fn clear_pending(&self) -> crate::Events {
                self.node.core.clear_pending()
            }

            /// Calls the callback now with `events` (libev's `ev_invoke`). From
            /// inside the watcher's own callback the call is deferred until that
            /// callback returns.
            ///
            /// # Panics
            ///
            /// Re-raises a panic from the callback.
            pub fn invoke(&self, events: crate::Events) {
                self.node.core.invoke(events)
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.node.core.stop();
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("active", &self.is_active())
                    .field("pending", &self.is_pending())
                    .field("priority", &self.priority())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use watcher_type;

/// Adds the usual `start` and `loop_handle` for types whose start cannot fail.
macro_rules! plain_start {
    ($name:ident) => {
        impl $name {
            /// Starts watching (libev's `ev_*_start`); does nothing if already
            /// active. While active it keeps [`Loop::run`](crate::Loop::run)
            /// going, unless [`set_keeps_loop_alive(false)`](Self::set_keeps_loop_alive).
            pub fn start(&self) {
                self.node.core.start()
            }

            /// The loop this watcher belongs to.
            pub fn loop_handle(&self) -> crate::Loop {
                self.node
                    .core
                    .loop_handle()
                    .expect("only Cleanup watchers outlive their loop")
            }
        }
    };
}
pub(crate) use plain_start;
