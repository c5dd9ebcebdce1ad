//! [`Signal`]: Unix signals, delivered synchronously in the loop.

use crate::event_loop::Loop;
use crate::watcher::{RawWatcher, watcher_type};
use libev_sys as sys;
use std::io;
use std::sync::Mutex;

use crate::global::EV_NSIG;

/// Which loop holds each signal (libev allows one loop per signal and
/// aborts otherwise), by loop address, with its number of active watchers.
static OWNERS: Mutex<[(usize, u32); EV_NSIG as usize]> = Mutex::new([(0, 0); EV_NSIG as usize]);

/// Checks that `signum` is a signal libev can watch.
pub(crate) fn check_signum(signum: i32) -> io::Result<()> {
    if signum <= 0 || signum >= EV_NSIG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal number {signum} is outside 1..{EV_NSIG}"),
        ));
    }
    Ok(())
}

fn owners() -> std::sync::MutexGuard<'static, [(usize, u32); EV_NSIG as usize]> {
    OWNERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Claims `signum` for loop `l`; false if another loop holds it.
fn claim(signum: i32, l: *mut sys::ev_loop) -> bool {
    let mut owners = owners();
    let slot = &mut owners[signum as usize];
    if slot.1 > 0 && slot.0 != l as usize {
        return false;
    }
    *slot = (l as usize, slot.1 + 1);
    true
}

fn release(signum: i32) {
    let mut owners = owners();
    let slot = &mut owners[signum as usize];
    slot.1 = slot.1.saturating_sub(1);
    if slot.1 == 0 {
        slot.0 = 0;
    }
}

/// Creates the default loop with `create`, which libev makes watch
/// SIGCHLD (for child watchers) while it exists. Fails with
/// [`ResourceBusy`](io::ErrorKind::ResourceBusy), without calling `create`,
/// if another loop watches SIGCHLD: libev would mix the two loops' watchers.
pub(crate) fn create_default_loop(
    create: impl FnOnce() -> io::Result<*mut sys::ev_loop>,
) -> io::Result<*mut sys::ev_loop> {
    let mut owners = owners();
    let slot = &mut owners[libc::SIGCHLD as usize];
    if slot.1 > 0 {
        return Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            "another loop watches SIGCHLD, which the default loop needs for child watchers",
        ));
    }
    let l = create()?;
    *slot = (l as usize, 1);
    Ok(l)
}

/// Undoes [`create_default_loop`]'s claim when the default loop is destroyed.
pub(crate) fn release_sigchld() {
    release(libc::SIGCHLD);
}

// SAFETY: libev's own functions, with our ownership bookkeeping around them.
unsafe impl RawWatcher for sys::ev_signal {
    type Extra = ();
    unsafe fn start(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: forwarded from the caller; `signum` was checked at creation.
        unsafe {
            if claim((*w).signum, l) {
                sys::ev_signal_start(l, w);
            }
        }
    }
    unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self) {
        // SAFETY: forwarded from the caller.
        unsafe {
            let was_active = sys::ev_is_active(w);
            sys::ev_signal_stop(l, w);
            if was_active {
                release((*w).signum);
            }
        }
    }
}

watcher_type! {
    /// Runs its callback in the loop when the process receives a signal
    /// (libev's `ev_signal`), however many times it arrived in between.
    ///
    /// A signal can be watched by one loop at a time (any number of
    /// watchers on that loop); prefer the default loop.
    Signal, ev_signal, SignalCallback
}

impl Signal {
    /// A stopped watcher for `signum`. Fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a number libev
    /// cannot watch, SIGKILL or SIGSTOP.
    pub fn new<F>(lp: &Loop, signum: i32, callback: F) -> io::Result<Signal>
    where
        F: FnMut(&Signal, crate::Events) + 'static,
    {
        check_catchable(signum)?;
        Ok(Signal::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_signal_set(w, signum) }
        }))
    }

    /// Starts watching. Fails with
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) if another loop
    /// watches this signal (SIGCHLD belongs to the default loop).
    pub fn start(&self) -> io::Result<()> {
        self.node.start();
        if self.is_active() { Ok(()) } else { Err(busy(self.signum())) }
    }

    /// Watches `signum` instead; an active watcher is restarted on it,
    /// keeping a pending event. Fails as [`Signal::new`] does, leaving the
    /// watcher unchanged, and with
    /// [`ResourceBusy`](io::ErrorKind::ResourceBusy) (the watcher then
    /// stopped) if it was active and another loop watches the new signal.
    pub fn set(&self, signum: i32) -> io::Result<()> {
        check_catchable(signum)?;
        let was_active = self.is_active();
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_signal_set(w, signum) }
        });
        if was_active && !self.is_active() {
            return Err(busy(signum));
        }
        Ok(())
    }

    /// The signal number.
    pub fn signum(&self) -> i32 {
        // SAFETY: reads a field of our watcher.
        unsafe { (*self.node.raw()).signum }
    }

    /// The loop this watcher belongs to.
    pub fn loop_handle(&self) -> Loop {
        self.node.loop_handle().expect("a signal watcher holds its loop")
    }
}

fn check_catchable(signum: i32) -> io::Result<()> {
    check_signum(signum)?;
    if signum == libc::SIGKILL || signum == libc::SIGSTOP {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "SIGKILL and SIGSTOP cannot be caught"));
    }
    Ok(())
}

fn busy(signum: i32) -> io::Error {
    io::Error::new(io::ErrorKind::ResourceBusy, format!("signal {signum} is already watched by another loop"))
}
