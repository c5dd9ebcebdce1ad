//! [`with_timeout`]: interrupting a blocking computation.

use super::hub::with_hub;
use super::task::{Interrupt, TimeoutSignal};
use crate::Timer;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// The error of [`with_timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

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
    let (id, task, timer) = with_hub(|hub| {
        let id = hub.next_id();
        let task = hub.current();
        let target = task.clone();
        let timer = Timer::new(&hub.lp, timeout, Duration::ZERO, move |_, _| {
            with_hub(|h| h.interrupt(&target, Interrupt::Timeout(id)));
        });
        hub.lp.update_now();
        timer.start();
        (id, task, timer)
    });
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    // The scope is over: its timer must not fire, nor an expiry that came
    // in after the last blocking call linger.
    drop(timer);
    task.remove_timeout(id);
    match result {
        Ok(v) => Ok(v),
        Err(p) if p.downcast_ref::<TimeoutSignal>().is_some_and(|s| s.0 == id) => Err(Elapsed(())),
        Err(p) => panic::resume_unwind(p),
    }
}
