//! [`Tstamp`]: libev's `ev_tstamp` as a type, with `Duration` arithmetic.

use crate::event_loop::{Loop, duration, tstamp};
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in libev's time: seconds since the Unix epoch, as an `f64`
/// (libev's `ev_tstamp`, what [`Loop::now`] and [`crate::time`] return).
///
/// The typed form of those `f64`s: add and subtract [`Duration`]s, take
/// the `Duration` between two of them, convert to and from
/// [`SystemTime`]. An `f64` holds microseconds exactly for the next few
/// centuries, finer than libev's clock.
///
/// ```
/// use libev::{Loop, Tstamp};
/// use std::time::Duration;
///
/// let lp = Loop::new()?;
/// let start = lp.now_tstamp();
/// let deadline = start + Duration::from_millis(1500);
/// assert_eq!(deadline - start, Duration::from_millis(1500));
/// assert_eq!(start - deadline, Duration::ZERO); // saturates, like Instant
/// assert_eq!(f64::from(start), lp.now());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, Default, PartialEq, PartialOrd)]
pub struct Tstamp(f64);

impl Tstamp {
    /// The epoch itself (0.0).
    pub const EPOCH: Tstamp = Tstamp(0.0);

    /// A timestamp of `secs` seconds since the epoch.
    pub const fn from_secs_f64(secs: f64) -> Tstamp {
        Tstamp(secs)
    }

    /// Seconds since the epoch: the `ev_tstamp` libev takes.
    pub const fn as_secs_f64(self) -> f64 {
        self.0
    }

    /// libev's clock now ([`crate::time`]), not the loop's cached time.
    pub fn now() -> Tstamp {
        Tstamp(crate::time())
    }

    /// How long after `earlier` this is; zero if it is not later (as
    /// `Instant::duration_since`).
    pub fn duration_since(self, earlier: Tstamp) -> Duration {
        duration(self.0 - earlier.0)
    }

    /// How long after `earlier` this is, or `None` if it is earlier.
    pub fn checked_duration_since(self, earlier: Tstamp) -> Option<Duration> {
        (self >= earlier).then(|| duration(self.0 - earlier.0))
    }

    /// This time as a `SystemTime` (`None` if not finite, or out of its
    /// range).
    pub fn to_system_time(self) -> Option<SystemTime> {
        if !self.0.is_finite() {
            return None;
        }
        let d = Duration::try_from_secs_f64(self.0.abs()).ok()?;
        if self.0 >= 0.0 { UNIX_EPOCH.checked_add(d) } else { UNIX_EPOCH.checked_sub(d) }
    }
}

impl From<f64> for Tstamp {
    fn from(secs: f64) -> Tstamp {
        Tstamp(secs)
    }
}

impl From<Tstamp> for f64 {
    fn from(t: Tstamp) -> f64 {
        t.0
    }
}

impl From<SystemTime> for Tstamp {
    fn from(t: SystemTime) -> Tstamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(after) => Tstamp(after.as_secs_f64()),
            Err(before) => Tstamp(-before.duration().as_secs_f64()),
        }
    }
}

impl Add<Duration> for Tstamp {
    type Output = Tstamp;
    fn add(self, d: Duration) -> Tstamp {
        Tstamp(self.0 + tstamp(d))
    }
}

impl Sub<Duration> for Tstamp {
    type Output = Tstamp;
    fn sub(self, d: Duration) -> Tstamp {
        Tstamp(self.0 - tstamp(d))
    }
}

impl AddAssign<Duration> for Tstamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl SubAssign<Duration> for Tstamp {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

/// The time from `earlier` to `self`, saturating at zero (as `Instant`'s).
impl Sub<Tstamp> for Tstamp {
    type Output = Duration;
    fn sub(self, earlier: Tstamp) -> Duration {
        self.duration_since(earlier)
    }
}

impl fmt::Debug for Tstamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tstamp({:.6})", self.0)
    }
}

impl Loop {
    /// [`now`](Loop::now) as a [`Tstamp`].
    pub fn now_tstamp(&self) -> Tstamp {
        Tstamp(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::Tstamp;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    #[test]
    fn arithmetic_with_durations() {
        let t = Tstamp::from_secs_f64(1000.0);
        assert_eq!((t + Duration::from_millis(250)).as_secs_f64(), 1000.25);
        assert_eq!((t - Duration::from_secs(1000)), Tstamp::EPOCH);
        let mut u = t;
        u += Duration::from_secs(5);
        u -= Duration::from_secs(2);
        assert_eq!(u - t, Duration::from_secs(3));
        assert_eq!(t - u, Duration::ZERO, "saturates");
        assert_eq!(t.checked_duration_since(u), None);
        assert_eq!(u.checked_duration_since(t), Some(Duration::from_secs(3)));
        assert!(t < u);
    }

    #[test]
    fn system_time_round_trip() {
        let now = SystemTime::now();
        let back = Tstamp::from(now).to_system_time().unwrap();
        let diff = back.duration_since(now).unwrap_or_else(|e| e.duration());
        assert!(diff < Duration::from_micros(1), "{diff:?}");
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(Tstamp::from(before).as_secs_f64(), -10.0);
        assert_eq!(Tstamp::from(before).to_system_time(), Some(before));
        assert_eq!(Tstamp::from_secs_f64(f64::NAN).to_system_time(), None);
        assert_eq!(Tstamp::from_secs_f64(f64::INFINITY).to_system_time(), None);
    }

    #[test]
    fn now_is_libevs_clock() {
        let a = crate::time();
        let t = Tstamp::now();
        let b = crate::time();
        assert!(a <= f64::from(t) && f64::from(t) <= b);
    }
}
