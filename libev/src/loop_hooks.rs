//! Hooks into `ev_run` itself: [`Loop::invoke_pending`], the
//! invoke-pending hook (libev's `ev_set_invoke_pending_cb`) and the
//! release/acquire hooks around the blocking poll
//! (`ev_set_loop_release_cb`).
//!
//! libev's "loop in another thread" pattern uses these to run the poll on
//! one thread and the callbacks on another, under a lock. That cannot be
//! offered safely here, because watchers and their callbacks belong to
//! the loop's thread (`Loop` is neither `Send` nor `Sync`); the hooks run
//! on the loop's thread, and the nearest safe pattern for other threads
//! is an [`Async`](crate::Async) watcher (or the green hub's handle) that
//! hands work to the loop's thread.

use crate::event_loop::{Loop, Shared};
use libev_sys as sys;
use std::cell::Cell;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

type InvokeHook = Box<dyn FnMut(&Loop)>;
type PollHook = Box<dyn FnMut()>;

/// The hooks a loop has installed. Each is taken out while it runs, so a
/// re-entrant call (a nested `run` from the invoke hook) finds none and
/// does what libev does by default.
#[derive(Default)]
pub(crate) struct Hooks {
    invoke: Cell<Option<InvokeHook>>,
    release: Cell<Option<(PollHook, PollHook)>>,
    /// Bumped by every set or clear of `invoke` / `release`: a hook that
    /// ran while its slot changed is not put back.
    invoke_gen: Cell<u64>,
    release_gen: Cell<u64>,
    /// Whether libev's callbacks point at ours (reset before destruction).
    installed: Cell<bool>,
}

impl Loop {
    /// Runs the callbacks of every pending watcher now, highest priority
    /// first (libev's `ev_invoke_pending`). What `run` does after each
    /// poll; the one thing an [invoke hook](Loop::set_invoke_pending_hook)
    /// must do.
    ///
    /// # Panics
    ///
    /// Re-raises a panic from a callback (when no error handler is set), and
    /// panics inside a periodic's reschedule callback or a release hook.
    pub fn invoke_pending(&self) {
        let lp = self.clone();
        lp.shared().check_unlocked();
        // SAFETY: the loop is alive (we hold a handle) and used on its
        // thread; callbacks catch their panics.
        unsafe { sys::ev_invoke_pending(lp.raw()) };
        lp.shared().rethrow();
    }

    /// Replaces how `run` invokes pending callbacks (libev's
    /// `ev_set_invoke_pending_cb`): instead of calling them itself, each
    /// iteration calls `hook`, which must call
    /// [`invoke_pending`](Loop::invoke_pending) (at once, or later in the
    /// iteration; pending watchers stay pending until then, and the loop
    /// does not poll any faster for them). Useful to bracket the callbacks
    /// with work of your own: take a lock, time them, batch writes.
    ///
    /// A panic in `hook` is handled like a callback's. Fails with
    /// [`Unsupported`](io::ErrorKind::Unsupported) on a loop borrowed from
    /// C ([`Loop::from_raw`]), whose own hook libev cannot report back.
    ///
    /// ```
    /// use libev::{Loop, Timer};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    ///
    /// let lp = Loop::new()?;
    /// let batches = Rc::new(Cell::new(0));
    /// let b = batches.clone();
    /// lp.set_invoke_pending_hook(move |lp| {
    ///     if lp.pending_count() > 0 {
    ///         b.set(b.get() + 1);
    ///     }
    ///     lp.invoke_pending();
    /// })?;
    /// let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    /// t.start();
    /// lp.run();
    /// assert_eq!(batches.get(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_invoke_pending_hook(&self, hook: impl FnMut(&Loop) + 'static) -> io::Result<()> {
        self.check_hookable()?;
        let hooks = &self.shared().hooks;
        hooks.invoke_gen.set(hooks.invoke_gen.get() + 1);
        drop(hooks.invoke.replace(Some(Box::new(hook))));
        hooks.installed.set(true);
        // SAFETY: live loop; `on_invoke` is valid for as long as the loop
        // (Drop resets it).
        unsafe { sys::ev_set_invoke_pending_cb(self.raw(), Some(on_invoke)) };
        Ok(())
    }

    /// Goes back to libev's own invocation of pending callbacks.
    pub fn clear_invoke_pending_hook(&self) {
        if self.shared().borrowed {
            return;
        }
        // SAFETY: live loop; libev's default.
        unsafe { sys::ev_set_invoke_pending_cb(self.raw(), Some(sys::ev_invoke_pending)) };
        let hooks = &self.shared().hooks;
        hooks.invoke_gen.set(hooks.invoke_gen.get() + 1);
        // Dropped outside the cell: its destructor may reach the loop.
        drop(hooks.invoke.take());
    }

    /// Calls `release` just before the loop blocks in its poll and
    /// `acquire` just after (libev's `ev_set_loop_release_cb`): to release
    /// and retake a lock that other code takes to change the loop, or to
    /// account for idle time.
    ///
    /// The hooks run in the middle of libev's poll, where libev must not
    /// be re-entered: calls that would (running the loop, invoking
    /// callbacks, updating its time, periodic watchers) panic there, and
    /// the panic is handled like a callback's. Starting, stopping and
    /// feeding other watchers is allowed, but takes effect only in the
    /// next iteration (libev's manual: wake the loop with an
    /// [`Async`](crate::Async) if it must notice sooner). Fails with
    /// [`Unsupported`](io::ErrorKind::Unsupported) on a loop borrowed from
    /// C.
    pub fn set_release_hooks(
        &self,
        release: impl FnMut() + 'static,
        acquire: impl FnMut() + 'static,
    ) -> io::Result<()> {
        self.check_hookable()?;
        let hooks = &self.shared().hooks;
        hooks.release_gen.set(hooks.release_gen.get() + 1);
        drop(hooks.release.replace(Some((Box::new(release), Box::new(acquire)))));
        hooks.installed.set(true);
        // SAFETY: live loop; the callbacks are valid for as long as the
        // loop (Drop resets them).
        unsafe { sys::ev_set_loop_release_cb(self.raw(), Some(on_release), Some(on_acquire)) };
        Ok(())
    }

    /// Removes the release and acquire hooks.
    pub fn clear_release_hooks(&self) {
        if self.shared().borrowed {
            return;
        }
        // SAFETY: live loop; no callbacks is libev's default.
        unsafe { sys::ev_set_loop_release_cb(self.raw(), None, None) };
        let hooks = &self.shared().hooks;
        hooks.release_gen.set(hooks.release_gen.get() + 1);
        drop(hooks.release.take());
    }

    fn check_hookable(&self) -> io::Result<()> {
        if self.shared().borrowed {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a loop borrowed from C keeps its own invoke-pending and release callbacks",
            ));
        }
        Ok(())
    }
}

impl Hooks {
    /// Puts libev's defaults back and drops the hooks; called before the
    /// loop is destroyed, whose cleanup phase invokes pending callbacks.
    pub(crate) fn shutdown(&self, l: *mut sys::ev_loop) {
        if !self.installed.get() {
            return;
        }
        // SAFETY: live loop; libev's defaults.
        unsafe {
            sys::ev_set_invoke_pending_cb(l, Some(sys::ev_invoke_pending));
            sys::ev_set_loop_release_cb(l, None, None);
        }
        drop(self.invoke.take());
        drop(self.release.take());
    }
}

/// A handle to the loop whose `Shared` is `lp`, for a hook: `run` holds
/// one for as long as libev calls hooks.
fn handle(lp: &Shared) -> Loop {
    // SAFETY: `inner` points at the live Rc payload (a `run` holds it);
    // this adds the count the new handle gives back.
    unsafe {
        Rc::increment_strong_count(lp.inner.get());
        Loop { inner: Rc::from_raw(lp.inner.get()) }
    }
}

unsafe extern "C" fn on_invoke(l: *mut sys::ev_loop) {
    // SAFETY: installed only on loops made by `Loop::wrap`, and reset
    // before they are destroyed.
    let lp = unsafe { Shared::from_raw(l) };
    let Some(mut hook) = lp.hooks.invoke.take() else {
        // Re-entered from the hook itself (a nested run): libev's default.
        // SAFETY: live loop, on its thread.
        unsafe { sys::ev_invoke_pending(l) };
        return;
    };
    let generation = lp.hooks.invoke_gen.get();
    let this = handle(lp);
    let result = panic::catch_unwind(AssertUnwindSafe(|| hook(&this)));
    // Put it back unless it was replaced or cleared meanwhile.
    let stale = if lp.hooks.invoke_gen.get() == generation {
        lp.hooks.invoke.set(Some(hook));
        None
    } else {
        Some(hook)
    };
    settle(lp, result, stale);
}

/// Drops a hook that was replaced while it ran, and hands the panics of
/// the hook and of that drop to the loop.
fn settle<T>(lp: &Shared, result: std::thread::Result<()>, stale: Option<T>) {
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(stale)));
    for payload in [result.err(), dropped.err()].into_iter().flatten() {
        lp.handle_panic(payload);
    }
}

unsafe extern "C" fn on_release(l: *mut sys::ev_loop) {
    // SAFETY: installed only on loops made by `Loop::wrap`.
    unsafe { poll_hook(l, |(release, _)| release()) }
}

unsafe extern "C" fn on_acquire(l: *mut sys::ev_loop) {
    // SAFETY: installed only on loops made by `Loop::wrap`.
    unsafe { poll_hook(l, |(_, acquire)| acquire()) }
}

/// Runs a release or acquire hook with libev locked (it is inside its
/// poll), catching its panic.
///
/// # Safety
///
/// `l` is a live loop made by `Loop::wrap`.
unsafe fn poll_hook(l: *mut sys::ev_loop, f: impl FnOnce(&mut (PollHook, PollHook))) {
    // SAFETY: per the contract.
    let lp = unsafe { Shared::from_raw(l) };
    let Some(mut hooks) = lp.hooks.release.take() else { return };
    let generation = lp.hooks.release_gen.get();
    let result = lp.locked(|| panic::catch_unwind(AssertUnwindSafe(|| f(&mut hooks))));
    // Put them back unless replaced or cleared meanwhile.
    let stale = if lp.hooks.release_gen.get() == generation {
        lp.hooks.release.set(Some(hooks));
        None
    } else {
        Some(hooks)
    };
    settle(lp, result, stale);
}
