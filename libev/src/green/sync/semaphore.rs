//! [`Semaphore`]: a bounded number of permits.

use super::waiting::wait_in;
use crate::green::greenlet::cannot_wait;
use crate::green::wait::{WaitList, Watchers};
use crate::green::wait_any::waitable_by_watchers;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A counting semaphore for greenlets (gevent's `BoundedSemaphore`).
/// [`acquire`](Semaphore::acquire) returns a permit that gives itself
/// back when dropped; greenlets that wait get permits in arrival order.
///
/// ```
/// use libev::green::{self, sync::Semaphore};
///
/// let sem = Semaphore::new(2);
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert!(sem.try_acquire().is_some());
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Rc<Inner>,
}

struct Inner {
    /// Free permits. A released permit goes straight to the first waiter,
    /// so this is zero whenever someone waits.
    free: Cell<usize>,
    /// The count given to `new`: releases never raise `free` above it.
    max: usize,
    waiters: WaitList<()>,
    /// Greenlets in `green::wait` on it.
    watchers: Watchers,
}

/// The error of [`Semaphore::release`]: every permit is already free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseError;

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("semaphore released more times than acquired")
    }
}

impl std::error::Error for ReleaseError {}

/// A permit of a [`Semaphore`], given back when dropped.
#[must_use = "the permit is given back at once if the guard is not kept"]
pub struct SemaphorePermit {
    sem: Option<Semaphore>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            inner: Rc::new(Inner {
                free: Cell::new(permits),
                max: permits,
                waiters: WaitList::default(),
                watchers: Watchers::default(),
            }),
        }
    }

    /// Takes a permit, blocking the calling greenlet until one is free.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (no permit is taken); panics in the root greenlet if no permit
    /// could ever come back, and if none is free where no green call waits
    /// (in a destructor during an unwind: use
    /// [`try_acquire`](Semaphore::try_acquire) there).
    pub fn acquire(&self) -> SemaphorePermit {
        match self.acquire_for(None) {
            Some(permit) => permit,
            None => cannot_wait("Semaphore::acquire"),
        }
    }

    /// Takes a permit if one is free now.
    pub fn try_acquire(&self) -> Option<SemaphorePermit> {
        self.acquire_for(Some(Duration::ZERO))
    }

    /// As [`acquire`](Semaphore::acquire), waiting at most `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit> {
        self.acquire_for(Some(timeout))
    }

    fn acquire_for(&self, timeout: Option<Duration>) -> Option<SemaphorePermit> {
        let free = self.inner.free.get();
        if free > 0 {
            self.inner.free.set(free - 1);
            return Some(self.permit());
        }
        wait_in(&self.inner.waiters, timeout, &"Semaphore::acquire").map(|_| self.permit())
    }

    fn permit(&self) -> SemaphorePermit {
        SemaphorePermit { sem: Some(self.clone()) }
    }

    /// Gives back a permit kept with [`SemaphorePermit::forget`]. Fails if
    /// every permit is already free (gevent's `BoundedSemaphore` raises
    /// `ValueError` there).
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.inner.free.get() >= self.inner.max {
            return Err(ReleaseError);
        }
        self.give_back();
        Ok(())
    }

    fn give_back(&self) {
        match self.inner.waiters.pop() {
            Some(w) => w.fill(()),
            None => {
                self.inner.free.set(self.inner.free.get() + 1);
                self.inner.watchers.notify();
            }
        }
    }

    /// The number of free permits.
    pub fn available_permits(&self) -> usize {
        self.inner.free.get()
    }

    /// The number of greenlets waiting for a permit.
    pub fn waiters(&self) -> usize {
        self.inner.waiters.len()
    }
}

impl SemaphorePermit {
    /// Keeps the permit taken without a guard; give it back with
    /// [`Semaphore::release`].
    pub fn forget(mut self) {
        self.sem = None;
    }
}

impl Drop for SemaphorePermit {
    fn drop(&mut self) {
        if let Some(sem) = self.sem.take() {
            sem.give_back();
        }
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available_permits", &self.available_permits())
            .field("waiters", &self.waiters())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

waitable_by_watchers!([] Semaphore, inner, |s| s.available_permits() > 0);

#[cfg(test)]
mod tests {
    use super::*;

    /// gevent's `test__iwait.py` `test_iwait_nogarbage`: an `iwait`
    /// dropped part way, one timed out and one killed leave no watcher
    /// registered (gevent checks `linkcount()`).
    #[test]
    fn waits_leave_no_watcher_behind() {
        let (sem1, sem2) = (Semaphore::new(1), Semaphore::new(1));
        let (held1, _held2) = (sem1.acquire(), sem2.acquire());
        let releaser = crate::green::spawn(move || drop(held1));
        let mut it = crate::green::iwait(&[&sem1, &sem2], None);
        assert_eq!(it.next(), Some(0));
        assert_eq!(sem2.inner.watchers.len(), 0, "dropped with the wait that registered it");
        drop(it);
        releaser.join().unwrap();
        assert!(crate::green::wait(&[&sem2], Some(Duration::from_millis(1)), None).is_empty());
        assert_eq!(sem2.inner.watchers.len(), 0, "timed out");
        let s2 = sem2.clone();
        let waiter = crate::green::spawn(move || crate::green::wait(&[&s2], None, None));
        crate::green::yield_now();
        assert_eq!(sem2.inner.watchers.len(), 1);
        waiter.kill();
        assert_eq!(sem2.inner.watchers.len(), 0, "killed");
    }
}
