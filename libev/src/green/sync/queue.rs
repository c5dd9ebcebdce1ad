//! [`Queue`] and [`Channel`]: passing items between greenlets.

use crate::green::greenlet::cannot_wait;
use crate::green::hub::can_switch;
use crate::green::wait::{WaitList, Waiter, wait_on};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The state shared by [`Queue`] and [`Channel`].
///
/// Invariants: greenlets wait in `getters` only while `items` is empty,
/// and in `putters` only while `items` is full, so at most one of the two
/// lists is non-empty. A `put` that finds a getter hands the item
/// straight to it; a `get` that frees a slot moves the first blocked
/// putter's item in. Items therefore leave in the order their puts
/// started, and waiters are served in arrival order.
struct Core<T> {
    items: RefCell<VecDeque<T>>,
    /// `None`: unbounded; `Some(0)`: rendezvous.
    capacity: Option<usize>,
    getters: WaitList<T>,
    putters: WaitList<T>,
}

impl<T> Core<T> {
    fn new(capacity: Option<usize>) -> Rc<Core<T>> {
        Rc::new(Core {
            items: RefCell::new(VecDeque::new()),
            capacity,
            getters: WaitList::default(),
            putters: WaitList::default(),
        })
    }

    /// Puts `item`, waiting at most `timeout` for room (`None`: forever);
    /// gives it back if there is still no room.
    fn put(&self, item: T, timeout: Option<Duration>, what: &'static str) -> Result<(), T> {
        if let Some(getter) = self.getters.pop() {
            getter.fill(item);
            return Ok(());
        }
        {
            let mut items = self.items.borrow_mut();
            if self.capacity.is_none_or(|c| items.len() < c) {
                items.push_back(item);
                return Ok(());
            }
        }
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(item);
        }
        if !can_switch() {
            // No waiting here (a destructor during an unwind): a put
            // without a deadline queues past the bound rather than lose
            // the item; one with a deadline times out.
            if timeout.is_some() {
                return Err(item);
            }
            self.items.borrow_mut().push_back(item);
            return Ok(());
        }
        let w = Waiter::with(Some(item));
        self.putters.push(w.clone());
        if wait_on(&self.putters, &w, timeout, &what) {
            Ok(())
        } else {
            Err(w.take().expect("an unserved putter still holds its item"))
        }
    }

    /// Takes the oldest item, waiting at most `timeout` (`None`: forever).
    fn get(&self, timeout: Option<Duration>, what: &'static str) -> Option<T> {
        let head = self.items.borrow_mut().pop_front();
        if let Some(item) = head {
            // A slot is free: the first blocked putter's item moves in.
            if let Some(putter) = self.putters.pop() {
                let moved = putter.drain().expect("a blocked putter holds its item");
                self.items.borrow_mut().push_back(moved);
            }
            return Some(item);
        }
        // Nothing queued: only a rendezvous has putters waiting now.
        if let Some(putter) = self.putters.pop() {
            return putter.drain();
        }
        if timeout.is_some_and(|t| t.is_zero()) || !can_switch() {
            return None;
        }
        let w = Waiter::new();
        self.getters.push(w.clone());
        if wait_on(&self.getters, &w, timeout, &what) { w.take() } else { None }
    }
}

/// A FIFO queue between greenlets (gevent's `Queue`), unbounded or
/// bounded. `get` blocks while it is empty; a bounded queue's `put`
/// blocks while it is full.
///
/// ```
/// use libev::green::{self, sync::Queue};
///
/// let q = Queue::new();
/// let worker = {
///     let q = q.clone();
///     green::spawn(move || (0..3).map(|_| q.get()).sum::<u32>())
/// };
/// for i in 1..=3 {
///     q.put(i);
/// }
/// assert_eq!(worker.join().unwrap(), 6);
/// ```
pub struct Queue<T> {
    core: Rc<Core<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { core: self.core.clone() }
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue::new()
    }
}

impl<T> Queue<T> {
    /// An unbounded queue: `put` never blocks.
    pub fn new() -> Queue<T> {
        Queue { core: Core::new(None) }
    }

    /// A queue holding at most `capacity` items. `bounded(0)` holds none:
    /// each `put` waits for a `get` to take its item, as [`Channel`] does.
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue { core: Core::new(Some(capacity)) }
    }

    /// Appends `item`, blocking the calling greenlet while the queue is
    /// full.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (the item is then dropped, never queued); panics in the root
    /// greenlet if nothing could ever make room. Where no green call waits
    /// (in a destructor during an unwind) a full queue takes the item
    /// anyway, past its bound.
    pub fn put(&self, item: T) {
        if self.core.put(item, None, "Queue::put").is_err() {
            unreachable!("a put without a deadline only returns once done");
        }
    }

    /// Appends `item` if there is room now; otherwise gives it back.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        self.core.put(item, Some(Duration::ZERO), "Queue::put")
    }

    /// As [`put`](Queue::put), waiting at most `timeout` for room;
    /// gives the item back if there is still none.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.core.put(item, Some(timeout), "Queue::put")
    }

    /// Removes and returns the oldest item, blocking the calling greenlet
    /// while the queue is empty.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires while it
    /// waits (no item is taken); panics in the root greenlet if nothing
    /// could ever put one, and if the queue is empty where no green call
    /// waits (in a destructor during an unwind: use
    /// [`try_get`](Queue::try_get) there).
    pub fn get(&self) -> T {
        self.core.get(None, "Queue::get").unwrap_or_else(|| cannot_wait("Queue::get"))
    }

    /// The oldest item, if there is one now.
    pub fn try_get(&self) -> Option<T> {
        self.core.get(Some(Duration::ZERO), "Queue::get")
    }

    /// As [`get`](Queue::get), waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.core.get(Some(timeout), "Queue::get")
    }

    /// The number of items queued (not counting those of blocked puts).
    pub fn len(&self) -> usize {
        self.core.items.borrow().len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would block now.
    pub fn is_full(&self) -> bool {
        self.core.capacity.is_some_and(|c| self.len() >= c && self.core.getters.is_empty())
    }

    /// The bound given to [`bounded`](Queue::bounded); `None` if unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.core.capacity
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.core.capacity)
            .field("getters", &self.core.getters.len())
            .field("putters", &self.core.putters.len())
            .finish()
    }
}

/// A rendezvous between greenlets (gevent's `Channel`): `put` blocks
/// until a `get` takes the item, and `get` until a `put` brings one.
///
/// ```
/// use libev::green::{self, sync::Channel};
///
/// let ch = Channel::new();
/// let sender = {
///     let ch = ch.clone();
///     green::spawn(move || { ch.put("hi"); "delivered" })
/// };
/// assert_eq!(ch.get(), "hi");
/// assert_eq!(sender.join().unwrap(), "delivered");
/// ```
pub struct Channel<T> {
    core: Rc<Core<T>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel { core: self.core.clone() }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> Channel<T> {
    /// A new channel.
    pub fn new() -> Channel<T> {
        Channel { core: Core::new(Some(0)) }
    }

    /// Hands `item` to a getter, blocking the calling greenlet until one
    /// takes it.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires first
    /// (the item is then dropped, never delivered); panics in the root
    /// greenlet if no getter could ever come. Where no green call waits
    /// (in a destructor during an unwind) the item is left for the next
    /// `get` instead.
    pub fn put(&self, item: T) {
        if self.core.put(item, None, "Channel::put").is_err() {
            unreachable!("a put without a deadline only returns once done");
        }
    }

    /// Hands `item` to a greenlet blocked in `get`, if there is one;
    /// otherwise gives it back.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        self.core.put(item, Some(Duration::ZERO), "Channel::put")
    }

    /// As [`put`](Channel::put), waiting at most `timeout` for a getter;
    /// gives the item back if none came.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.core.put(item, Some(timeout), "Channel::put")
    }

    /// Takes an item from a putter, blocking the calling greenlet until one
    /// comes.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires first;
    /// panics in the root greenlet if no putter could ever come, and if
    /// none waits where no green call waits (in a destructor during an
    /// unwind: use [`try_get`](Channel::try_get) there).
    pub fn get(&self) -> T {
        self.core.get(None, "Channel::get").unwrap_or_else(|| cannot_wait("Channel::get"))
    }

    /// Takes the item of a greenlet blocked in `put`, if there is one.
    pub fn try_get(&self) -> Option<T> {
        self.core.get(Some(Duration::ZERO), "Channel::get")
    }

    /// As [`get`](Channel::get), waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.core.get(Some(timeout), "Channel::get")
    }

    /// Greenlets blocked in `put` minus those blocked in `get` (gevent's
    /// `balance`).
    pub fn balance(&self) -> isize {
        self.core.putters.len() as isize - self.core.getters.len() as isize
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("balance", &self.balance()).finish()
    }
}
