//! [`Timer`]: relative timeouts on the loop's monotonic clock.

use crate::event_loop::{Loop, duration, tstamp};
use crate::watcher::{plain_start, watcher_type};
use libev_sys as sys;
use std::time::Duration;

watcher_type! {
    /// Fires after a delay, then optionally every `repeat` (libev's
    /// `ev_timer`). Based on the loop's cached time ([`Loop::now`]); a
    /// non-repeating timer stops itself before its callback runs.
    ///
    /// Each `Timer` is a handle to its own node: the `ev_timer`, then the
    /// closure (a timer whose closure captures nothing is 48 bytes, as in
    /// C), packed with its neighbours in the loop's memory.
    ///
    /// # `Timer` or [`TimerArray`](crate::TimerArray)
    ///
    /// Up to about 10,000 timers, a `Vec<Timer>` costs 1.05 to 1.1 times
    /// C's array of `ev_timer`s per stop, set and start: the wrapper's few
    /// checks. To move a started timer, [`restart`](Self::restart) does
    /// what the stop, set and start do with one libev call that moves the
    /// timer within libev's heap in one step: about 0.8 times what C's
    /// three calls cost up to 10,000 timers. From about 100,000 the
    /// operation waits on memory, and a handle per timer is one more
    /// dependent load before libev's own: a `Vec<Timer>` then costs 1.3
    /// times C's array or more, what C itself costs with a pointer per
    /// timer, or less. A
    /// [`TimerArray`](crate::TimerArray) stores the `ev_timer`s in one
    /// array, as C does, within a tenth of C's cost at every size, with one
    /// callback that receives the index: choose it for tens of thousands of
    /// timers with hot operations (per-connection timeouts on a busy
    /// server). The figures are on the repository's benchmark page
    /// (`docs/benchmarks.md`).
    Timer, ev_timer, TimerCallback
}
plain_start!(Timer);

impl Timer {
    /// A stopped timer that fires `after` its start, then every `repeat`
    /// (zero: once).
    pub fn new<F>(lp: &Loop, after: Duration, repeat: Duration, callback: F) -> Timer
    where
        F: FnMut(&Timer, crate::Events) + 'static,
    {
        Timer::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_timer_set(w, tstamp(after), tstamp(repeat)) }
        })
    }

    /// Sets delay and repeat; an active timer is restarted with them
    /// (keeping a pending event).
    #[inline]
    pub fn set(&self, after: Duration, repeat: Duration) {
        let (after, repeat) = (tstamp(after), tstamp(repeat));
        // Only `active` is read, what libev requires: reading `pending` and
        // the deferred-event flag here as well cost a stop, set and start
        // 5 to 8% (see the benchmark page).
        if !self.node.is_active() {
            // SAFETY: not active: libev allows setting it, pending or not
            // (`ev_TYPE_set` in its manual). A pending or deferred event
            // stays, as through `while_stopped`.
            unsafe { sys::ev_timer_set(self.node.raw(), after, repeat) }
        } else {
            self.set_active(after, repeat);
        }
    }

    /// [`set`](Self::set) for an active timer: with nothing pending to
    /// keep, the move of [`restart`](Self::restart); else stopped, set and
    /// started again with its events kept. Out of line and marked cold so
    /// that the stopped case (a stop, set and start) stays straight-line
    /// code: without `cold` its store was moved behind a taken branch,
    /// which cost that sequence 4% at 10,000 timers.
    #[cold]
    #[inline(never)]
    fn set_active(&self, after: f64, repeat: f64) {
        if after > 0.0
            && !self.is_pending()
            && let Some(l) = self.node.loop_if_plain()
        {
            return self.move_by_again(l, after, repeat);
        }
        let w = self.node.raw();
        self.node.while_stopped(move || {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_timer_set(w, after, repeat) }
        });
    }

    /// [`move_by_again`] for this timer. `l` is its loop from
    /// `loop_if_plain` (no reference or deferred event for the wrapper to
    /// settle), and `after` is above zero.
    #[inline(always)]
    fn move_by_again(&self, l: *mut sys::ev_loop, after: f64, repeat: f64) {
        // SAFETY: our watcher on its live loop, neither pending (`set`
        // checks) nor needing bookkeeping (`loop_if_plain`), or a restart,
        // which discards a pending event anyway; `after` is above zero.
        unsafe { move_by_again(l, self.node.raw(), after, repeat) }
    }

    /// Stops the timer (discarding its pending event), sets its delay and
    /// repeat, and starts it: [`stop`](Self::stop), [`set`](Self::set) and
    /// [`start`](Self::start) in one call. Unlike `set`, which keeps a
    /// pending event, this is a fresh start.
    ///
    /// The way to move a started timer: with a delay above zero it is
    /// libev's `ev_timer_again` with the delay as the repeat, which moves
    /// the timer within libev's heap in one step where a stop and a start
    /// take it out and put it back: up to 10,000 timers, a fifth cheaper
    /// than C's three calls and about a quarter cheaper than the
    /// wrapper's (see the repository's benchmark page, `docs/benchmarks.md`).
    ///
    /// ```
    /// # use libev::{Loop, Timer};
    /// # use std::time::Duration;
    /// let lp = Loop::new()?;
    /// let t = Timer::new(&lp, Duration::from_secs(5), Duration::ZERO, |_, _| {});
    /// t.restart(Duration::from_secs(30), Duration::ZERO);
    /// assert!(t.is_active() && t.remaining() > Duration::from_secs(29));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn restart(&self, after: Duration, repeat: Duration) {
        let (after, repeat) = (tstamp(after), tstamp(repeat));
        match self.node.loop_if_plain() {
            Some(l) if after > 0.0 => self.move_by_again(l, after, repeat),
            _ => self.restart_settled(after, repeat),
        }
    }

    /// [`restart`](Self::restart) through stop, set and start: for a zero
    /// delay (`ev_timer_again` would stop the timer), and for a timer with
    /// bookkeeping to settle (not keeping its loop alive, or with events
    /// deferred while its callback runs).
    #[inline(never)]
    fn restart_settled(&self, after: f64, repeat: f64) {
        self.node.stop();
        debug_assert!(!self.is_active() && !self.is_pending());
        // SAFETY: a timer's loop is always reachable (it is neither a
        // weak-loop nor a guarded watcher), so `stop` stopped it and
        // cleared its pending event: libev allows setting it.
        unsafe { sys::ev_timer_set(self.node.raw(), after, repeat) };
        self.node.start();
    }

    /// libev's `ev_timer_again`: a repeating timer restarts to fire
    /// `repeat` from now (starting it if stopped); a non-repeating active
    /// timer stops. Either way a pending event is cancelled. The idiom for
    /// inactivity timeouts.
    #[inline]
    pub fn again(&self) {
        let Some(l) = self.node.hot_loop() else { return };
        let was_active = self.is_active();
        // SAFETY: our watcher on its live loop.
        unsafe { sys::ev_timer_again(l, self.node.raw()) };
        self.node.after_external_change(was_active);
    }

    /// Time until the timer fires (zero if it is not active or overdue).
    pub fn remaining(&self) -> Duration {
        let Some(l) = self.node.hot_loop() else { return Duration::ZERO };
        if !self.is_active() {
            return Duration::ZERO;
        }
        // SAFETY: our watcher on its live loop; only reads.
        let secs = unsafe { sys::ev_timer_remaining(l, self.node.raw()) };
        duration(secs)
    }

    /// The repeat interval.
    pub fn repeat(&self) -> Duration {
        // SAFETY: reads a field of our watcher.
        duration(unsafe { (*self.node.raw()).repeat })
    }

    /// Sets the repeat interval, used the next time the timer fires or
    /// [`again`](Timer::again) is called (libev allows this while active).
    pub fn set_repeat(&self, repeat: Duration) {
        // SAFETY: `repeat` is a read-write field in libev, even while active.
        unsafe { (*self.node.raw()).repeat = tstamp(repeat) }
    }
}

/// What stop, set and start do to a timer, in one libev call:
/// `ev_timer_again` with `after` as the repeat clears a pending event and
/// moves an active timer to fire `after` from now within libev's heap in
/// one step (where a stop and a start take it out and put it back), or
/// starts a stopped one with that delay; then the real repeat, for the
/// next firing. Used by [`Timer`] and [`TimerArray`](crate::TimerArray).
///
/// # Safety
///
/// `w` is a live, initialised timer of loop `l`, whose owner has no
/// bookkeeping to settle around a stop and start (a loop reference or
/// deferred events), and `after` is above zero (`ev_timer_again` stops a
/// timer whose repeat is zero).
#[inline(always)]
pub(crate) unsafe fn move_by_again(l: *mut sys::ev_loop, w: *mut sys::ev_timer, after: f64, repeat: f64) {
    debug_assert!(after > 0.0);
    // SAFETY: per the contract; `repeat` is a read-write field in libev,
    // even while the timer is active.
    unsafe {
        (*w).repeat = after;
        sys::ev_timer_again(l, w);
        (*w).repeat = repeat;
    }
}
