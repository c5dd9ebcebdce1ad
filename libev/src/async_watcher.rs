//! [`Async`] and [`AsyncSender`]: waking a loop from another thread.

use crate::event_loop::Loop;
use crate::watcher::{DataSlot, plain_start, raw_watchers, watcher_type};
use libev_sys as sys;
use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

/// Where `send` goes: the loop and watcher addresses while the watcher
/// exists, `None` after. The lock is held across `ev_async_send`, so the
/// watcher cannot be freed in the middle of a send.
struct Target {
    target: Mutex<Option<(usize, usize)>>,
}

impl Target {
    fn send(&self) -> bool {
        let target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        match *target {
            Some((l, w)) => {
                // SAFETY: while `target` is Some, the loop and the watcher are
                // alive (release clears it, under this lock, before either
                // goes); ev_async_send is libev's one thread-safe call.
                unsafe { sys::ev_async_send(l as *mut sys::ev_loop, w as *mut sys::ev_async) };
                drop(target);
                // A failed wake-up write reaches the syserr handler on this
                // thread, which may run no loop to re-raise its panic.
                crate::global::rethrow_syserr_panic();
                true
            }
            None => false,
        }
    }
}

// libev's own functions; `release` drops only the `Arc<Target>`
// we leaked into the `DataSlot`, after disconnecting it.
raw_watchers! {
    ev_async => ev_async_start, ev_async_stop, DataSlot {
        unsafe fn replace_locked(
            l: *mut libev_sys::ev_loop,
            old: *mut Self,
            make: &mut dyn FnMut() -> *mut Self,
        ) {
            // SAFETY: the `DataSlot` holds our leaked `Arc<Target>` until
            // `make` moves it to the new watcher; the clone keeps it.
            let target = unsafe { Arc::clone(&std::mem::ManuallyDrop::new(Arc::from_raw(DataSlot::of(old).get().cast::<Target>()))) };
            // Senders wait on this lock: none writes `old` while it is
            // copied, and none reaches it afterwards.
            let mut t = target.target.lock().unwrap_or_else(|e| e.into_inner());
            let new = make();
            if let Some((_, w)) = t.as_mut() {
                *w = new as usize;
            }
            // A send that reached the old watcher before the lock (stopped,
            // so libev would never deliver it) goes to the new one.
            // SAFETY: `old` is still allocated (its node outlives this
            // call); `new` is our watcher on `l`, started if `old` was.
            unsafe {
                if (*old).sent != 0 && libev_sys::ev_is_active(new) {
                    libev_sys::ev_async_send(l, new);
                }
            }
        }
        unsafe fn release(w: *mut Self) {
            // SAFETY: the `DataSlot` is null or an `Arc<Target>` we leaked.
            unsafe {
                let data = DataSlot::of(w).take().cast::<Target>();
                if !data.is_null() {
                    let target = Arc::from_raw(data);
                    *target.target.lock().unwrap_or_else(|e| e.into_inner()) = None;
                }
            }
        }
    };
}

watcher_type! {
    /// Wakes the loop from any thread (libev's `ev_async`): after
    /// [`AsyncSender::send`] (or [`Async::send`]) the callback runs once in
    /// the loop's thread, however many sends came in between.
    Async, ev_async, AsyncCallback
}
plain_start!(Async);

impl Async {
    /// A stopped async watcher.
    pub fn new<F>(lp: &Loop, callback: F) -> Async
    where
        F: FnMut(&Async, crate::Events) + 'static,
    {
        let l = lp.raw() as usize;
        Async::from_closure(lp, callback, |w| {
            let target = Arc::new(Target { target: Mutex::new(Some((l, w as usize))) });
            // SAFETY: a fresh, inactive watcher at its final address;
            // `release` drops the Arc.
            unsafe { DataSlot::of(w).set(Arc::into_raw(target).cast_mut().cast()) };
        })
    }

    /// A handle that can send to this watcher from any thread.
    pub fn sender(&self) -> AsyncSender {
        // SAFETY: the `DataSlot` holds our leaked Arc for as long as the watcher
        // exists; we add one count for the new handle.
        let target = unsafe {
            let data = DataSlot::of(self.node.raw()).get().cast::<Target>();
            Arc::increment_strong_count(data);
            Arc::from_raw(data)
        };
        AsyncSender { target }
    }

    /// Sends from the loop's own thread (same as through a sender).
    pub fn send(&self) {
        let Some(l) = self.node.hot_loop() else { return };
        // SAFETY: our live watcher on its live loop.
        unsafe { sys::ev_async_send(l, self.node.raw()) }
    }

    /// Whether a send is waiting to be delivered (libev's
    /// `ev_async_pending`).
    pub fn is_sent(&self) -> bool {
        // SAFETY: `sent` is an aligned int that other threads write through
        // ev_async_send; read it atomically.
        let sent = unsafe { AtomicI32::from_ptr(std::ptr::addr_of_mut!((*self.node.raw()).sent)) };
        sent.load(Ordering::Acquire) != 0
    }
}

/// Sends to an [`Async`] watcher from any thread. Cheap to clone.
///
/// Sending after the watcher (or its loop) is gone does nothing and
/// returns `false`.
#[derive(Clone)]
pub struct AsyncSender {
    target: Arc<Target>,
}

impl AsyncSender {
    /// Wakes the watcher's loop and makes its callback run; returns `false`
    /// (and does nothing) if the watcher no longer exists. Safe from any
    /// thread; cheap when a send is already pending.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the [syserr handler](crate::set_syserr_handler)
    /// if libev's wake-up write failed and the handler panicked.
    pub fn send(&self) -> bool {
        self.target.send()
    }
}

impl fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connected = self.target.target.lock().map(|t| t.is_some()).unwrap_or(false);
        f.debug_struct("AsyncSender").field("connected", &connected).finish()
    }
}
