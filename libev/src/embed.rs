//! [`Embed`]: one loop inside another.

use crate::event_loop::Shared;
use crate::event_loop::{Loop, LoopInner};
use crate::watcher::{plain_start, raw_watchers, watcher_type};
use libev_sys as sys;
use std::io;
use std::ptr::NonNull;
use std::rc::Rc;

/// Undoes the parent/child link `Embed::new` made for `embedded`.
fn unlink(embedded: &Shared) {
    if let Some(parent) = embedded.parent.take() {
        // SAFETY: the parent outlives the Embed watcher being released.
        let parent = unsafe { parent.as_ref() };
        parent.children.borrow_mut().retain(|c| !std::ptr::eq(c.as_ptr(), embedded));
    }
}

// libev's own functions; `release` drops only the handle to the
// embedded loop we leaked into `data`.
raw_watchers! {
    ev_embed => ev_embed_start, ev_embed_stop {
        unsafe fn release(w: *mut Self) {
            // SAFETY: `data` is null or an `Rc<LoopInner>` we leaked; the
            // watcher is stopped, so libev no longer touches the embedded loop
            // through it. Its parent (this watcher's loop) is still alive:
            // the watcher holds it until after `release`.
            unsafe {
                let data = (*w).data.cast::<LoopInner>();
                if !data.is_null() {
                    (*w).data = std::ptr::null_mut();
                    let inner = Rc::from_raw(data);
                    unlink(inner.shared());
                    drop(inner);
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
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "this loop is already embedded in a loop",
            ));
        }
        // No cycles: `lp` must not itself be embedded, at any depth, in
        // `embedded`.
        let mut up = lp.shared().parent.get();
        while let Some(p) = up {
            if std::ptr::eq(p.as_ptr(), embedded.shared()) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "embedding would make a cycle of loops",
                ));
            }
            // SAFETY: parents are alive while their Embed watchers exist.
            up = unsafe { p.as_ref() }.parent.get();
        }
        let other = embedded.raw();
        // Link the two so that panics in the embedded loop's callbacks,
        // which libev may run from inside the outer loop, surface there.
        embedded.shared().parent.set(Some(NonNull::from(lp.shared())));
        lp.shared().children.borrow_mut().push(NonNull::from(embedded.shared()));
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
