//! [`Embed`]: one loop inside another.

use crate::event_loop::{Loop, LoopInner};
use crate::watcher::{plain_start, raw_watchers, watcher_type};
use libev_sys as sys;
use std::io;
use std::rc::Rc;

// libev's own functions; `release` drops only the handle to the
// embedded loop we leaked into `data`.
raw_watchers! {
    ev_embed => ev_embed_start, ev_embed_stop {
        unsafe fn release(w: *mut Self) {
            // SAFETY: `data` is null or an `Rc<LoopInner>` we leaked; the
            // watcher is stopped, so libev no longer touches the embedded loop
            // through it.
            unsafe {
                let data = (*w).data.cast::<LoopInner>();
                if !data.is_null() {
                    (*w).data = std::ptr::null_mut();
                    drop(Rc::from_raw(data));
                }
            }
        }
    };
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
    /// backend cannot be embedded (see [`Loop::embeddable_backends`]), and
    /// with [`InvalidInput`](io::ErrorKind::InvalidInput) if both are the
    /// same loop.
    pub fn new<F>(lp: &Loop, embedded: &Loop, callback: F) -> io::Result<Embed>
    where
        F: FnMut(&Embed, crate::Events) + 'static,
    {
        if lp.ptr_eq(embedded) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a loop cannot embed itself"));
        }
        if (embedded.backend() & Loop::embeddable_backends()).is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("a loop with backend {:?} cannot be embedded here", embedded.backend()),
            ));
        }
        let other = embedded.raw();
        let keep = Rc::into_raw(embedded.inner.clone());
        Ok(Embed::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` drops `keep`.
            unsafe {
                sys::ev_embed_set(w, other);
                (*w).data = keep.cast_mut().cast();
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
        // SAFETY: our watcher on its live loop; `embedded` keeps the other
        // loop alive for the call, whatever its callbacks drop.
        unsafe { sys::ev_embed_sweep(lp.raw(), self.node.raw()) };
        embedded.shared().rethrow();
    }

    /// The embedded loop.
    pub fn embedded(&self) -> Loop {
        // SAFETY: `data` holds a leaked strong count of the embedded loop's
        // Rc for as long as the watcher exists; we add one for the handle.
        let inner = unsafe {
            let data = (*self.node.raw()).data.cast::<LoopInner>();
            Rc::increment_strong_count(data);
            Rc::from_raw(data)
        };
        Loop { inner }
    }
}
