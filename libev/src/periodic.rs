//! [`Periodic`]: wall-clock (UTC) schedules.

use crate::event_loop::{Loop, Shared, tstamp};
use crate::watcher::{DataSlot, raw_watchers, watcher_type};
use libev_sys as sys;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::Duration;

watcher_type! {
    /// Fires at wall-clock times (libev's `ev_periodic`), in one of three
    /// modes: once at an absolute time ([`Periodic::at`]), on a fixed grid
    /// ([`Periodic::interval`]), or wherever a closure says
    /// ([`Periodic::reschedule`]). Unlike [`Timer`](crate::Timer), it
    /// follows changes of the system clock.
    Periodic, ev_periodic, PeriodicCallback
}

impl Periodic {
    /// Starts watching (libev's `ev_periodic_start`); does nothing if
    /// active. While active it keeps [`Loop::run`] going, unless
    /// [`set_keeps_loop_alive(false)`](Self::set_keeps_loop_alive).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from the reschedule closure, which libev calls
    /// here.
    pub fn start(&self) {
        self.node.start();
        self.rethrow();
    }

    /// The loop this watcher belongs to.
    pub fn loop_handle(&self) -> Loop {
        self.node.loop_handle().expect("a periodic watcher holds its loop")
    }

    fn rethrow(&self) {
        if let Some(lp) = self.node.shared() {
            lp.rethrow();
        }
    }
}

/// The reschedule closure and where to report its panics, kept in the `DataSlot`.
struct Reschedule {
    f: Box<dyn FnMut(f64) -> f64 + Send>,
    loop_shared: NonNull<Shared>,
}

// libev's own functions; `release` frees only the `Reschedule` we
// boxed into the `DataSlot`.
raw_watchers! {
    ev_periodic => ev_periodic_start, ev_periodic_stop, DataSlot {
        const GUARDED: bool = true;
        unsafe fn release(w: *mut Self) {
            // SAFETY: the `DataSlot` is null or a Box<Reschedule> we leaked; the watcher
            // is stopped, so libev will not call the reschedule callback again.
            unsafe {
                let data = DataSlot::of(w).take().cast::<Reschedule>();
                if !data.is_null() {
                    drop(Box::from_raw(data));
                }
            }
        }
    };
}

/// libev's reschedule callback: runs the closure with libev locked,
/// catching panics, and never returns a time in the past.
unsafe extern "C" fn reschedule(w: *mut sys::ev_periodic, now: f64) -> f64 {
    // SAFETY: only installed together with a live `Reschedule` in the `DataSlot`;
    // libev does not re-enter it (the loop is locked while it runs).
    let r = unsafe { &mut *DataSlot::of(w).get().cast::<Reschedule>() };
    // SAFETY: the watcher holds its loop, so its Shared is alive.
    let lp = unsafe { r.loop_shared.as_ref() };
    let result = lp.locked(|| panic::catch_unwind(AssertUnwindSafe(|| (r.f)(now))));
    match result {
        Ok(t) if t >= now => t,
        // NaN or the past: libev requires a time >= now.
        Ok(_) => now,
        Err(payload) => {
            lp.handle_panic(payload);
            // Park it far in the future; the loop is breaking anyway.
            now + 1e9
        }
    }
}

/// Takes the reschedule closure out of a stopped watcher's the `DataSlot`.
///
/// # Safety
///
/// `w` is one of our periodic watchers, stopped.
unsafe fn take_reschedule(w: *mut sys::ev_periodic) -> Option<Box<Reschedule>> {
    // SAFETY: the `DataSlot` is null or a Box<Reschedule> we leaked.
    unsafe {
        let data = DataSlot::of(w).take().cast::<Reschedule>();
        (!data.is_null()).then(|| Box::from_raw(data))
    }
}

fn finite(what: &str, t: f64) -> io::Result<f64> {
    if t.is_finite() {
        Ok(t)
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{what} must be finite, not {t}")))
    }
}

impl Periodic {
    /// A stopped watcher that fires once at `time` (seconds since the
    /// epoch, as [`crate::time`] and [`Loop::now`]).
    pub fn at<F>(lp: &Loop, time: f64, callback: F) -> io::Result<Periodic>
    where
        F: FnMut(&Periodic, crate::Events) + 'static,
    {
        let time = finite("time", time)?;
        Ok(Periodic::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_periodic_set(w, time, 0.0, None) }
        }))
    }

    /// A stopped watcher that fires at every `offset + k * interval` (e.g.
    /// `offset` 0 and `interval` one hour: on the full hour, UTC).
    /// `interval` must not be zero.
    pub fn interval<F>(lp: &Loop, offset: f64, interval: Duration, callback: F) -> io::Result<Periodic>
    where
        F: FnMut(&Periodic, crate::Events) + 'static,
    {
        let offset = finite("offset", offset)?;
        if interval.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a periodic interval must not be zero"));
        }
        Ok(Periodic::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_periodic_set(w, offset, tstamp(interval), None) }
        }))
    }

    /// A stopped watcher whose next time is whatever `schedule(now)`
    /// returns (a result before `now`, or NaN, counts as `now`).
    ///
    /// `schedule` runs inside libev's scheduling, where libev must not be
    /// called: it is `Send`, so it cannot hold a [`Loop`] or a watcher, and
    /// any libev call reached from it anyway panics (the panic is handled
    /// like a callback's).
    pub fn reschedule<S, F>(lp: &Loop, schedule: S, callback: F) -> Periodic
    where
        S: FnMut(f64) -> f64 + Send + 'static,
        F: FnMut(&Periodic, crate::Events) + 'static,
    {
        let data = Box::into_raw(Box::new(Reschedule {
            f: Box::new(schedule),
            loop_shared: NonNull::from(lp.shared()),
        }));
        Periodic::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` frees the `DataSlot`.
            unsafe {
                sys::ev_periodic_set(w, 0.0, 0.0, Some(reschedule));
                DataSlot::of(w).set(data.cast());
            }
        })
    }

    /// libev's `ev_periodic_again`: recomputes the next time (after a
    /// change of offset or interval) and (re)starts the watcher, cancelling
    /// a pending event.
    ///
    /// # Panics
    ///
    /// As [`start`](Periodic::start).
    pub fn again(&self) {
        let Some(lp) = self.node.shared() else {
            return;
        };
        lp.check_unlocked();
        let was_active = self.is_active();
        // SAFETY: our watcher on its live loop.
        unsafe { sys::ev_periodic_again(lp.raw(), self.node.raw()) };
        self.node.after_external_change(was_active);
        lp.rethrow();
    }

    /// Re-sets the watcher to [`Periodic::at`]'s mode (`interval` zero: once
    /// at `offset`, an absolute time) or [`Periodic::interval`]'s (every
    /// `offset + k * interval`), dropping a reschedule closure (libev's
    /// `ev_periodic_set`). An active watcher is restarted with the new
    /// schedule, keeping a pending event, as [`Timer::set`](crate::Timer::set)
    /// does. Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) for a
    /// non-finite `offset`, leaving the watcher unchanged.
    ///
    /// # Panics
    ///
    /// Inside a periodic's reschedule callback.
    pub fn set(&self, offset: f64, interval: Duration) -> io::Result<()> {
        // libev calls a reschedule closure with the watcher inactive, so
        // `while_stopped` alone would not notice: check here.
        if let Some(lp) = self.node.shared() {
            lp.check_unlocked();
        }
        let offset = finite("offset", offset)?;
        let w = self.node.raw();
        let old = self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`; the old
            // reschedule closure is taken out of the `DataSlot` before libev forgets
            // it, and dropped below.
            unsafe {
                let old = take_reschedule(w);
                sys::ev_periodic_set(w, offset, tstamp(interval), None);
                old
            }
        });
        drop(old);
        self.rethrow();
        Ok(())
    }

    /// Re-sets the watcher to [`Periodic::reschedule`]'s mode, with
    /// `schedule`; an active watcher is restarted with it (which calls it).
    ///
    /// # Panics
    ///
    /// Inside a periodic's reschedule callback; re-raises a panic of
    /// `schedule` when the restart calls it.
    pub fn set_reschedule<S>(&self, schedule: S)
    where
        S: FnMut(f64) -> f64 + Send + 'static,
    {
        let Some(lp) = self.node.shared() else { return };
        // As in `set`: the closure being replaced may be the one running.
        lp.check_unlocked();
        let data =
            Box::into_raw(Box::new(Reschedule { f: Box::new(schedule), loop_shared: NonNull::from(lp) }));
        let w = self.node.raw();
        let old = self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`;
            // `release` frees the new the `DataSlot`.
            unsafe {
                let old = take_reschedule(w);
                sys::ev_periodic_set(w, 0.0, 0.0, Some(reschedule));
                DataSlot::of(w).set(data.cast());
                old
            }
        });
        drop(old);
        self.rethrow();
    }

    /// Sets the offset (libev's `offset` member). As in C, the change takes
    /// effect when the watcher next fires, or at [`again`](Periodic::again).
    /// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) if not finite.
    pub fn set_offset(&self, offset: f64) -> io::Result<()> {
        let offset = finite("offset", offset)?;
        // SAFETY: a plain field of our watcher; libev reads it on this
        // thread only, when it reschedules.
        unsafe { (*self.node.raw()).offset = offset };
        Ok(())
    }

    /// Sets the interval (libev's `interval` member; zero: no repetition).
    /// As in C, the change takes effect when the watcher next fires, or at
    /// [`again`](Periodic::again).
    pub fn set_interval(&self, interval: Duration) {
        // SAFETY: as in `set_offset`.
        unsafe { (*self.node.raw()).interval = tstamp(interval) };
    }

    /// The absolute time the watcher fires next (meaningful while active).
    pub fn next_time(&self) -> f64 {
        // SAFETY: reads a field of our watcher.
        unsafe { sys::ev_periodic_at(self.node.raw()) }
    }

    /// The offset (the absolute time, for [`Periodic::at`]).
    pub fn offset(&self) -> f64 {
        // SAFETY: reads a field of our watcher.
        unsafe { (*self.node.raw()).offset }
    }

    /// The interval (zero for [`Periodic::at`] and [`Periodic::reschedule`]).
    pub fn interval_duration(&self) -> Duration {
        // SAFETY: reads a field of our watcher.
        crate::event_loop::duration(unsafe { (*self.node.raw()).interval })
    }
}
