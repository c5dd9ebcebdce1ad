//! [`with_timeout`]: interrupting a blocking computation.

use super::hub::with_hub;
use super::task::{Interrupt, Task};
use crate::Timer;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// The error of [`with_timeout`]: the deadline passed first. Also the
/// panic payload a greenlet unwinds with when a [`Timeout`] expires, so
/// code can catch it (`payload.downcast_ref::<Elapsed>()`). All values
/// compare equal.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed {
    /// The expired scope (private: tells nested timeouts apart).
    id: u64,
}

impl Elapsed {
    pub(crate) fn new(id: u64) -> Elapsed {
        Elapsed { id }
    }
}

impl PartialEq for Elapsed {
    fn eq(&self, _: &Elapsed) -> bool {
        true
    }
}

impl Eq for Elapsed {}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Runs `f` in the current greenlet, interrupting it if it is still
/// blocked (or blocks) after `timeout`: its stack unwinds up to here,
/// running destructors, and the result is `Err(Elapsed)`. A computation
/// that never blocks is not interrupted. Nested timeouts each resolve at
/// their own call.
///
/// ```
/// use libev::green;
/// use std::time::Duration;
///
/// let r = green::with_timeout(Duration::from_millis(5), || green::sleep(Duration::from_secs(10)));
/// assert!(r.is_err());
/// assert_eq!(green::with_timeout(Duration::from_secs(10), || 7), Ok(7));
/// ```
pub fn with_timeout<T>(timeout: Duration, f: impl FnOnce() -> T) -> Result<T, Elapsed> {
    let scope = Timeout::start(timeout);
    let id = scope.id;
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // The scope is over: its timer must not fire, nor an expiry that came
    // in after the last blocking call linger.
    drop(scope);
    match result {
        Ok(v) => Ok(v),
        Err(p) if p.downcast_ref::<Elapsed>().is_some_and(|e| e.id == id) => Err(Elapsed::new(id)),
        Err(p) => panic::resume_unwind(p),
    }
}

/// A deadline for the current greenlet, until the guard is dropped
/// (gevent's `Timeout.start_new`). If the greenlet is still blocked (or
/// blocks) in the guard's scope after the deadline, it unwinds with an
/// [`Elapsed`] payload: catch it with `catch_unwind`, or let it end the
/// greenlet ([`GreenletError::TimedOut`](super::GreenletError::TimedOut)).
/// [`with_timeout`] is the usual, catching form.
///
/// ```
/// use libev::green::{self, GreenletError, Timeout};
/// use std::time::Duration;
///
/// let g = green::spawn(|| {
///     let _deadline = Timeout::start(Duration::from_millis(5));
///     green::sleep(Duration::from_secs(10));
/// });
/// assert!(matches!(g.join(), Err(GreenletError::TimedOut)));
/// ```
#[must_use = "the deadline is cancelled when the guard is dropped"]
pub struct Timeout {
    id: u64,
    task: Rc<Task>,
    timer: Timer,
}

impl Timeout {
    /// Arms a deadline `timeout` from now for the current greenlet.
    pub fn start(timeout: Duration) -> Timeout {
        with_hub(|hub| {
            let id = hub.next_id();
            let task = hub.current();
            let target = task.clone();
            let timer = Timer::new(&hub.lp, timeout, Duration::ZERO, move |_, _| {
                with_hub(|h| h.interrupt(&target, Interrupt::Timeout(id)));
            });
            hub.lp.update_now();
            timer.start();
            Timeout { id, task, timer }
        })
    }

    /// Whether the deadline has passed (the interrupt may not have been
    /// delivered yet, if the greenlet has not blocked since).
    pub fn expired(&self) -> bool {
        !self.timer.is_active()
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        self.timer.stop();
        self.task.remove_timeout(self.id);
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout").field("expired", &self.expired()).finish()
    }
}
