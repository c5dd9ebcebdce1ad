//! [`RLock`]: a lock its holder may take again.

use super::waiting::{fmt_lock, wait_in};
use crate::green::greenlet::cannot_wait;
use crate::green::hub::try_with_hub;
use crate::green::wait::WaitList;
use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::time::Duration;

/// A lock that the greenlet holding it can take again (gevent's `RLock`,
/// with the shape of std's `ReentrantLock`): each [`lock`](RLock::lock)
/// returns a guard, and the lock is free again once every guard of its
/// holder is dropped. Fair, as [`Mutex`](super::Mutex) is: a released
/// lock goes to the greenlet that has waited longest. No poisoning.
///
/// Because the holder may have several guards at once, a guard gives
/// shared access only (`&T`): put what must change in a `Cell` or a
/// `RefCell`. Share the lock between greenlets with an `Rc`.
///
/// ```
/// use libev::green::{self, sync::RLock};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let log = Rc::new(RLock::new(RefCell::new(Vec::new())));
/// fn record(log: &RLock<RefCell<Vec<&'static str>>>, what: &'static str) {
///     let guard = log.lock(); // taken again when called under the lock
///     guard.borrow_mut().push(what);
/// }
/// let outer = log.lock();
/// record(&log, "nested");
/// let other = {
///     let log = log.clone();
///     green::spawn(move || record(&log, "other greenlet"))
/// };
/// green::yield_now(); // the other greenlet waits: we hold the lock
/// record(&log, "still ours");
/// drop(outer);
/// other.join().unwrap();
/// assert_eq!(*log.lock().borrow(), ["nested", "still ours", "other greenlet"]);
/// ```
///
/// A guard is a proof of holding, so there is no `release` to call from
/// the wrong greenlet (gevent raises `RuntimeError` there). A guard moved
/// to another greenlet and dropped there still releases its hold.
pub struct RLock<T: ?Sized> {
    /// The holder's greenlet id; `None` while the lock is free, or handed
    /// to a woken waiter that has not run yet.
    owner: Cell<Option<u64>>,
    /// Guards alive (kept at 1 while the lock is handed over).
    count: Cell<usize>,
    waiters: WaitList<()>,
    value: T,
}

/// Shared access to an [`RLock`]'s value; releases one hold when dropped.
#[must_use = "the hold is released at once if the guard is not kept"]
pub struct RLockGuard<'a, T: ?Sized> {
    lock: &'a RLock<T>,
}

/// The current greenlet's id. Without a hub (none yet, or the thread's
/// exit) only the thread's root runs, whose id is 0.
fn current_id() -> u64 {
    try_with_hub(|h| h.current().id).unwrap_or(0)
}

impl<T> RLock<T> {
    /// A free lock holding `value`.
    pub fn new(value: T) -> RLock<T> {
        RLock { owner: Cell::new(None), count: Cell::new(0), waiters: WaitList::default(), value }
    }

    /// The value, consuming the lock.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: ?Sized> RLock<T> {
    /// Locks, or takes the lock again if the calling greenlet holds it;
    /// blocks the calling greenlet while another holds it.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (it then does not hold the lock); panics in the root greenlet
    /// if the lock could never be released, and if another greenlet holds
    /// it where no green call waits (in a destructor during an unwind:
    /// use [`try_lock`](RLock::try_lock) there).
    pub fn lock(&self) -> RLockGuard<'_, T> {
        match self.lock_for(None) {
            Some(guard) => guard,
            None => cannot_wait("RLock::lock"),
        }
    }

    /// Locks if the lock is free or the calling greenlet holds it.
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        self.lock_for(Some(Duration::ZERO))
    }

    /// As [`lock`](RLock::lock), waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
        self.lock_for(Some(timeout))
    }

    fn lock_for(&self, timeout: Option<Duration>) -> Option<RLockGuard<'_, T>> {
        let me = current_id();
        if self.count.get() == 0 {
            self.owner.set(Some(me));
            self.count.set(1);
            return Some(RLockGuard { lock: self });
        }
        if self.owner.get() == Some(me) {
            let n = self.count.get().checked_add(1).expect("RLock taken again more than usize::MAX times");
            self.count.set(n);
            return Some(RLockGuard { lock: self });
        }
        // Served: the last guard handed the lock over (count kept at 1).
        wait_in(&self.waiters, timeout, &"RLock::lock").map(|_| {
            self.owner.set(Some(me));
            RLockGuard { lock: self }
        })
    }

    /// Whether some greenlet holds the lock (gevent's `locked()`).
    pub fn is_locked(&self) -> bool {
        self.count.get() > 0
    }

    /// Whether the calling greenlet holds the lock (gevent's
    /// `_is_owned()`).
    ///
    /// ```
    /// use libev::green::{self, sync::RLock};
    /// use std::rc::Rc;
    ///
    /// let lock = Rc::new(RLock::new(()));
    /// let _guard = lock.lock();
    /// assert!(lock.is_held_by_current());
    /// let l = lock.clone();
    /// let elsewhere = green::spawn(move || l.is_held_by_current());
    /// assert!(!elsewhere.join().unwrap());
    /// ```
    pub fn is_held_by_current(&self) -> bool {
        self.count.get() > 0 && self.owner.get() == Some(current_id())
    }

    /// The value, through a unique borrow (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    fn unlock(&self) {
        let n = self.count.get() - 1;
        if n > 0 {
            self.count.set(n);
            return;
        }
        self.owner.set(None);
        match self.waiters.pop() {
            // Stays locked (count 1) for the waiter, so nobody barges in.
            Some(w) => w.fill(()),
            None => self.count.set(0),
        }
    }
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        RLock::new(T::default())
    }
}

impl<T: ?Sized> Deref for RLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T: ?Sized> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_lock(f, "RLock", self.try_lock().as_deref())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
