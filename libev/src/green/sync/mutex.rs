//! [`Mutex`]: exclusive access across blocking calls.

use super::waiting::{fmt_lock, wait_in};
use crate::green::greenlet::cannot_wait;
use crate::green::wait::WaitList;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

/// A lock for a value that greenlets use across blocking calls (gevent's
/// `Semaphore(1)`/`RLock` use, with std's guard API). Fair: when the lock
/// is released it goes to the greenlet that has waited longest, never to
/// one that comes later. Not reentrant: a greenlet that locks it twice
/// waits for itself (see [`RLock`](super::RLock) for one that is). Wait
/// for a condition on its value with a [`Condvar`](super::Condvar).
/// There is no poisoning: a greenlet that panics or is killed while
/// holding the guard releases the lock as it unwinds.
///
/// Share it between greenlets with an `Rc` (or a `thread_local!`).
///
/// ```
/// use libev::green::{self, sync::Mutex};
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let log = Rc::new(Mutex::new(Vec::new()));
/// let gs: Vec<_> = (0..3)
///     .map(|i| {
///         let log = log.clone();
///         green::spawn(move || {
///             let mut guard = log.lock();
///             guard.push(i);
///             green::sleep(Duration::from_millis(1)); // still holding it
///             guard.push(i);
///         })
///     })
///     .collect();
/// green::joinall(gs);
/// assert_eq!(*log.lock(), [0, 0, 1, 1, 2, 2]);
/// ```
pub struct Mutex<T: ?Sized> {
    locked: Cell<bool>,
    waiters: WaitList<()>,
    value: UnsafeCell<T>,
}

/// Access to a [`Mutex`]'s value; unlocks when dropped.
#[must_use = "the lock is released at once if the guard is not kept"]
pub struct MutexGuard<'a, T: ?Sized> {
    /// Read by [`Condvar`](super::Condvar) to take the lock back.
    pub(super) mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Mutex<T> {
        Mutex { locked: Cell::new(false), waiters: WaitList::default(), value: UnsafeCell::new(value) }
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, blocking the calling greenlet while another holds the lock.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (it then does not hold the lock); panics in the root greenlet
    /// if the lock could never be released, and if the lock is held where
    /// no green call waits (in a destructor during an unwind: use
    /// [`try_lock`](Mutex::try_lock) there).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        match self.lock_for(None) {
            Some(guard) => guard,
            None => cannot_wait("Mutex::lock"),
        }
    }

    /// Locks if the lock is free now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.lock_for(Some(Duration::ZERO))
    }

    /// As [`lock`](Mutex::lock), waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.lock_for(Some(timeout))
    }

    fn lock_for(&self, timeout: Option<Duration>) -> Option<MutexGuard<'_, T>> {
        if !self.locked.get() {
            self.locked.set(true);
            return Some(MutexGuard { mutex: self });
        }
        // Served means the unlocking guard handed the lock over (it stays
        // locked in between, so nobody can barge in). The guard is built
        // only then: a guard's drop unlocks, so one made "just in case"
        // would free a lock held by someone else.
        wait_in(&self.waiters, timeout, &"Mutex::lock").map(|_| MutexGuard { mutex: self })
    }

    /// Whether some greenlet holds the lock.
    pub fn is_locked(&self) -> bool {
        self.locked.get()
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    fn unlock(&self) {
        match self.waiters.pop() {
            Some(w) => w.fill(()),
            None => self.locked.set(false),
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while the mutex is locked, and the
        // lock has one holder at a time (it passes straight from one guard
        // to the next waiter's), so no other reference to the value exists.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this borrow unique.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_lock(f, "Mutex", self.try_lock().as_deref())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
