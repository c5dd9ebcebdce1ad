//! [`Condvar`]: waiting for a condition on a green [`Mutex`]'s value.

use super::mutex::{Mutex, MutexGuard};
use crate::green::greenlet::cannot_wait;
use crate::green::hub::can_switch;
use crate::green::wait::{WaitList, Waiter, wait_on};
use std::fmt;
use std::time::{Duration, Instant};

/// A condition variable for greenlets (std's `Condvar` over the green
/// [`Mutex`]; `threading.Condition` under gevent's monkey patching):
/// [`wait`](Condvar::wait) releases the lock, blocks until notified and
/// takes the lock back. Waiters are notified in arrival order.
///
/// ```
/// use libev::green::{self, sync::{Condvar, Mutex}};
/// use std::rc::Rc;
///
/// let state = Rc::new((Mutex::new(false), Condvar::new()));
/// let waiter = {
///     let state = state.clone();
///     green::spawn(move || {
///         let (ready, cv) = &*state;
///         let guard = cv.wait_while(ready.lock(), |ready| !*ready);
///         *guard
///     })
/// };
/// green::yield_now(); // the waiter blocks
/// *state.0.lock() = true;
/// state.1.notify_one();
/// assert!(waiter.join().unwrap());
/// ```
///
/// Where this differs from std and Python: no poisoning (so no
/// `LockResult`); a condvar may be used with several mutexes (greenlets
/// of one thread cannot race between the unlock and the wait); notifying
/// needs no lock, and Python's `notify(n)` is `n` calls of
/// [`notify_one`](Condvar::notify_one). A kill or timeout that interrupts
/// a wait unwinds without the lock (the guard was given to `wait`); a
/// notification taken by a waiter that is interrupted while it takes
/// the lock back is passed on to the next waiter, so none is lost.
#[derive(Default)]
pub struct Condvar {
    waiters: WaitList<()>,
}

/// Whether a timed [`Condvar`] wait returned because its time ran out
/// (std's `WaitTimeoutResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its time ran out.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub fn new() -> Condvar {
        Condvar::default()
    }

    /// Releases the lock of `guard`, blocks the calling greenlet until
    /// notified, and takes the lock back. Returns at once (a spurious
    /// wake-up, which callers must allow for anyway) where no green call
    /// waits (in a destructor during an unwind).
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (without the lock); panics in the root greenlet if nothing
    /// could ever notify it.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_for(guard, None).0
    }

    /// As [`wait`](Condvar::wait), for at most `timeout`.
    ///
    /// ```
    /// use libev::green::sync::{Condvar, Mutex};
    /// use std::time::Duration;
    ///
    /// let (m, cv) = (Mutex::new(0), Condvar::new());
    /// let (guard, r) = cv.wait_timeout(m.lock(), Duration::from_millis(1));
    /// assert!(r.timed_out());
    /// assert_eq!(*guard, 0); // the lock is held again
    /// ```
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let (guard, notified) = self.wait_for(guard, Some(timeout));
        (guard, WaitTimeoutResult(!notified))
    }

    /// Waits (as [`wait`](Condvar::wait)) while `condition` holds for the
    /// value, and returns the guard once it does not.
    ///
    /// # Panics
    ///
    /// As `wait`; also if the condition holds where no green call waits
    /// (in a destructor during an unwind).
    pub fn wait_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> MutexGuard<'a, T> {
        while condition(&mut guard) {
            if !can_switch() {
                cannot_wait("Condvar::wait_while");
            }
            guard = self.wait(guard);
        }
        guard
    }

    /// As [`wait_while`](Condvar::wait_while), for at most `timeout` in
    /// all; the result says whether the time ran out with the condition
    /// still holding.
    ///
    /// ```
    /// use libev::green::{self, sync::{Condvar, Mutex}};
    /// use std::rc::Rc;
    /// use std::time::Duration;
    ///
    /// let pair = Rc::new((Mutex::new(0), Condvar::new()));
    /// let counter = {
    ///     let pair = pair.clone();
    ///     green::spawn(move || {
    ///         for _ in 0..3 {
    ///             *pair.0.lock() += 1;
    ///             pair.1.notify_all();
    ///             green::yield_now();
    ///         }
    ///     })
    /// };
    /// let (n, r) = pair.1.wait_timeout_while(pair.0.lock(), Duration::from_secs(10), |n| *n < 3);
    /// assert!(!r.timed_out());
    /// assert_eq!(*n, 3);
    /// drop(n);
    /// counter.join().unwrap();
    /// ```
    pub fn wait_timeout_while<'a, T: ?Sized>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> (MutexGuard<'a, T>, WaitTimeoutResult) {
        let start = Instant::now();
        loop {
            if !condition(&mut guard) {
                return (guard, WaitTimeoutResult(false));
            }
            let Some(left) = timeout.checked_sub(start.elapsed()).filter(|d| !d.is_zero()) else {
                return (guard, WaitTimeoutResult(true));
            };
            guard = self.wait_timeout(guard, left).0;
        }
    }

    /// Wakes the greenlet that has waited longest, if any.
    pub fn notify_one(&self) {
        if let Some(w) = self.waiters.pop() {
            w.fill(());
        }
    }

    /// Wakes every waiting greenlet.
    ///
    /// ```
    /// use libev::green::{self, sync::{Condvar, Mutex}};
    /// use std::rc::Rc;
    ///
    /// let pair = Rc::new((Mutex::new(false), Condvar::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let pair = pair.clone();
    ///         green::spawn(move || drop(pair.1.wait_while(pair.0.lock(), |go| !*go)))
    ///     })
    ///     .collect();
    /// green::yield_now();
    /// *pair.0.lock() = true;
    /// pair.1.notify_all();
    /// green::joinall(waiters);
    /// ```
    pub fn notify_all(&self) {
        for w in self.waiters.take_all() {
            w.fill(());
        }
    }

    /// Returns with the lock held and whether a notification came.
    fn wait_for<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Option<Duration>,
    ) -> (MutexGuard<'a, T>, bool) {
        if !can_switch() {
            return (guard, false);
        }
        let mutex: &'a Mutex<T> = guard.mutex;
        let w = Waiter::new();
        self.waiters.push(w.clone());
        // No switch between joining the list and unlocking: no
        // notification can slip in between.
        drop(guard);
        let notified = wait_on(&self.waiters, &w, timeout, &"Condvar::wait");
        /// Passes the notification on if taking the lock back unwinds.
        struct PassOn<'c>(Option<&'c Condvar>);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if let Some(cv) = self.0 {
                    cv.notify_one();
                }
            }
        }
        let mut pass_on = PassOn(notified.then_some(self));
        let guard = mutex.lock();
        pass_on.0 = None;
        (guard, notified)
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").field("waiters", &self.waiters.len()).finish()
    }
}
