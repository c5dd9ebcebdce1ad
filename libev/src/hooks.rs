//! The loop-phase watchers: [`Idle`], [`Prepare`], [`Check`], [`Fork`],
//! [`Cleanup`].

use crate::event_loop::{Loop, Shared};
use crate::watcher::{DataSlot, RawWatcher, plain_start, watcher_type};
use libev_sys as sys;
use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;

/// What a cleanup watcher keeps in the `DataSlot`: the loop's `live` cell, `Some`
/// while the C loop exists (including while it is being destroyed).
type LiveCell = Cell<Option<NonNull<Shared>>>;

// SAFETY: libev's own start and stop functions, plus the bookkeeping of
// loops borrowed from C; `release` drops only the `Rc<LiveCell>` we leaked
// into the `DataSlot`.
unsafe impl RawWatcher for sys::ev_cleanup {
    type Extra = DataSlot;
    const WEAK_LOOP: bool = true;

    unsafe fn start(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: forwarded from the caller; `l` is a loop made by
        // `Loop::wrap`, whose Shared is alive while it exists.
        unsafe {
            sys::ev_cleanup_start(l, w);
            let lp = Shared::from_raw(l);
            if lp.borrowed {
                // C owns the loop: the Rust side runs these when it lets go.
                lp.cleanups.borrow_mut().push(NonNull::new_unchecked(w));
            }
        }
    }

    unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: as in `start`.
        unsafe {
            sys::ev_cleanup_stop(l, w);
            let lp = Shared::from_raw(l);
            if lp.borrowed {
                lp.cleanups.borrow_mut().retain(|c| c.as_ptr() != w);
            }
        }
    }

    unsafe fn release(w: *mut Self) {
        // SAFETY: the `DataSlot` is the Rc we leaked in `Cleanup::new`.
        unsafe {
            let data = DataSlot::of(w).take().cast::<LiveCell>();
            if !data.is_null() {
                drop(Rc::from_raw(data));
            }
        }
    }

    unsafe fn weak_shared(w: *const Self) -> Option<NonNull<Shared>> {
        // SAFETY: the `DataSlot` holds our Rc<LiveCell> until `release`.
        unsafe {
            let data = DataSlot::of(w).get().cast::<LiveCell>();
            if data.is_null() { None } else { (*data).get() }
        }
    }
}

watcher_type! {
    /// Runs when the loop has nothing else to do (libev's `ev_idle`): while
    /// an idle watcher is active the loop polls without blocking, and runs
    /// it whenever no watcher of a higher priority is pending.
    Idle, ev_idle, IdleCallback
}
plain_start!(Idle);

watcher_type! {
    /// Runs in every iteration just before the loop blocks for events
    /// (libev's `ev_prepare`).
    Prepare, ev_prepare, PrepareCallback
}
plain_start!(Prepare);

watcher_type! {
    /// Runs in every iteration just after the loop polled for events
    /// (libev's `ev_check`).
    Check, ev_check, CheckCallback
}
plain_start!(Check);

watcher_type! {
    /// Runs in the child, in the first iteration after
    /// [`Loop::reinit_after_fork`] (libev's `ev_fork`), before any other
    /// callback.
    Fork, ev_fork, ForkCallback
}
plain_start!(Fork);

watcher_type! {
    /// Runs when the loop is destroyed, that is when its last handle is
    /// dropped (libev's `ev_cleanup`); for a loop borrowed from C
    /// ([`Loop::from_raw`]), when the Rust side lets go of it. It holds its loop weakly, or the loop
    /// could never go; while the loop is being destroyed the callback may
    /// stop watchers, but cannot start any or reach the loop.
    Cleanup, ev_cleanup, CleanupCallback
}

impl Cleanup {
    /// A stopped cleanup watcher. It does not keep the loop alive, and
    /// libev never counts it for [`Loop::run`].
    pub fn new<F>(lp: &Loop, callback: F) -> Cleanup
    where
        F: FnMut(&Cleanup, crate::Events) + 'static,
    {
        let live = Rc::into_raw(lp.inner.live.clone());
        Cleanup::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` drops the Rc.
            unsafe { DataSlot::of(w).set(live.cast_mut().cast()) }
        })
    }

    /// Starts watching); does nothing if active or if the loop is gone or
    /// being destroyed.
    pub fn start(&self) {
        self.node.start()
    }

    /// The loop, unless it was destroyed (or is being destroyed).
    pub fn loop_handle(&self) -> Option<Loop> {
        self.node.loop_handle()
    }
}

macro_rules! simple_new {
    ($($name:ident),*) => {
        $(
            impl $name {
                #[doc = concat!("A stopped [`", stringify!($name), "`] watcher.")]
                pub fn new<F>(lp: &Loop, callback: F) -> $name
                where
                    F: FnMut(&$name, crate::Events) + 'static,
                {
                    $name::from_closure(lp, callback, |_| {})
                }
            }
        )*
    };
}
simple_new!(Idle, Prepare, Check, Fork);
