//! [`Queue`] and its orders ([`LifoQueue`], [`PriorityQueue`]): passing
//! items between greenlets, with gevent's task tracking
//! ([`JoinableQueue`]) and Python 3.13's shutdown.

pub(crate) mod core;
mod order;

use self::core::{Core, Failure};
use crate::green::greenlet::cannot_wait;
use order::sealed::Sealed;
pub use order::{Fifo, Lifo, Order, Priority};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The queue type behind [`Queue`], [`LifoQueue`] and [`PriorityQueue`],
/// generic over the [`Order`] it hands items out in; its methods are
/// theirs. Name it by those aliases: each has its own `new` and
/// `bounded`.
pub struct OrderedQueue<T, O: Order<T>> {
    core: Rc<Core<T, O>>,
}

/// A queue between greenlets (gevent's `Queue`), unbounded or bounded,
/// handing out its items oldest first (the default [`Fifo`] order; see
/// [`LifoQueue`] and [`PriorityQueue`] for the others). `get` blocks
/// while it is empty; a bounded queue's `put` blocks while it is full.
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
///
/// Every queue counts the items put and not yet marked done with
/// [`task_done`](OrderedQueue::task_done), so that [`join`](OrderedQueue::join) can
/// wait for all of them (gevent's `JoinableQueue`, which gevent 25 made
/// its `Queue`). [`shutdown`](OrderedQueue::shutdown) closes it: consumers that
/// iterate over it stop once it is drained.
///
/// Where this differs from gevent:
/// - `bounded(0)` is a rendezvous (as [`Channel`](super::Channel)); gevent's
///   `Queue(0)` is unbounded.
/// - Iteration ends when the queue is shut down and drained, not at a
///   `StopIteration` item: Rust has no sentinel value of every type.
/// - A `put` on a shut-down queue panics (gevent raises `ShutDown`);
///   [`try_put`](OrderedQueue::try_put) and [`put_timeout`](OrderedQueue::put_timeout)
///   give the item back instead, as they do when the queue is full.
/// - [`peek`](OrderedQueue::peek) returns a copy (`T: Clone`): a reference into
///   the queue would stop every other greenlet from using it meanwhile.
/// - [`task_done`](OrderedQueue::task_done) called once too often returns an
///   error (gevent raises `ValueError`).
pub type Queue<T> = OrderedQueue<T, Fifo>;

/// A queue handing out the newest item first (gevent's `LifoQueue`): a
/// queue in the [`Lifo`] order, with [`Queue`]'s methods.
///
/// ```
/// use libev::green::sync::LifoQueue;
///
/// let q = LifoQueue::bounded(3);
/// for i in 1..=3 {
///     q.put(i);
/// }
/// assert_eq!([q.get(), q.get(), q.get()], [3, 2, 1]);
/// ```
pub type LifoQueue<T> = OrderedQueue<T, Lifo>;

/// A queue handing out the smallest item first (gevent's
/// `PriorityQueue`, built on `heapq`): a [`Queue`] in the [`Priority`]
/// order, with the same methods. Equal items come out in no particular
/// order; put `(priority, sequence number, item)` tuples to keep those
/// first in, first out. This is the opposite of std's `BinaryHeap`, which
/// hands out the largest first: put [`std::cmp::Reverse`] items in for
/// that order.
///
/// ```
/// use libev::green::sync::PriorityQueue;
///
/// let q = PriorityQueue::new();
/// q.put((2, "write"));
/// q.put((1, "read"));
/// q.put((3, "close"));
/// assert_eq!(q.peek(), (1, "read"));
/// assert_eq!([q.get().1, q.get().1, q.get().1], ["read", "write", "close"]);
/// ```
pub type PriorityQueue<T> = OrderedQueue<T, Priority>;

/// gevent's `JoinableQueue`: every [`Queue`] tracks its tasks (gevent 25
/// made the same change, keeping `JoinableQueue` as an alias).
///
/// ```
/// use libev::green::{self, sync::JoinableQueue};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let jobs = JoinableQueue::new();
/// let total = Rc::new(Cell::new(0));
/// let workers: Vec<_> = (0..2)
///     .map(|_| {
///         let (jobs, total) = (jobs.clone(), total.clone());
///         green::spawn(move || {
///             for n in &jobs {
///                 total.set(total.get() + n);
///                 jobs.task_done().unwrap();
///             }
///         })
///     })
///     .collect();
/// for n in 1..=10 {
///     jobs.put(n);
/// }
/// jobs.join(); // every job was taken and marked done
/// assert_eq!(total.get(), 55);
/// jobs.shutdown(); // the workers' loops end
/// green::joinall(workers);
/// ```
pub type JoinableQueue<T> = Queue<T>;

/// The error of [`OrderedQueue::task_done`]: every item put was already marked
/// done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskDoneError;

impl fmt::Display for TaskDoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task_done called more times than items were put")
    }
}

impl std::error::Error for TaskDoneError {}

/// `Queue::get` and the like, for messages.
struct Op(&'static str, &'static str);

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.0, self.1)
    }
}

impl<T, O: Order<T>> Clone for OrderedQueue<T, O> {
    fn clone(&self) -> Self {
        OrderedQueue { core: self.core.clone() }
    }
}

/// `new`, `bounded` and `Default` for one order.
macro_rules! constructors {
    ($order:ident $(, $bound:path)?) => {
        impl<T $(: $bound)?> OrderedQueue<T, $order> {
            /// An unbounded queue: `put` never blocks.
            pub fn new() -> Self {
                OrderedQueue { core: Core::new(None) }
            }

            /// A queue holding at most `capacity` items. `bounded(0)` holds
            /// none: each `put` waits for a `get` to take its item and run,
            /// as [`Channel`](super::Channel) does.
            pub fn bounded(capacity: usize) -> Self {
                OrderedQueue { core: Core::new(Some(capacity)) }
            }
        }

        impl<T $(: $bound)?> Default for OrderedQueue<T, $order> {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

constructors!(Fifo);
constructors!(Lifo);
constructors!(Priority, Ord);

impl<T, O: Order<T>> OrderedQueue<T, O> {
    fn op(what: &'static str) -> Op {
        Op(<O as Sealed<T>>::NAME, what)
    }

    /// Adds `item`, blocking the calling greenlet while the queue is
    /// full.
    ///
    /// # Panics
    ///
    /// If the queue is shut down, before or while this waits (gevent's
    /// `ShutDown`; [`put_timeout`](OrderedQueue::put_timeout) gives the item back
    /// instead). Unwinds if the greenlet is killed or its timeout expires
    /// while it waits (the item is then dropped, never queued); panics in
    /// the root greenlet if nothing could ever make room, and on a
    /// `bounded(0)` queue inside a libev callback (where
    /// [`try_put`](OrderedQueue::try_put) works). Where no green call
    /// waits (in a destructor during an unwind) a full queue takes the
    /// item anyway, past its bound; a shut-down one still panics (an abort
    /// there: use `try_put`).
    pub fn put(&self, item: T) {
        if self.core.put(item, None, &Self::op("put")).is_err() {
            refused(Self::op("put"));
        }
    }

    /// Adds `item` if there is room now; otherwise (or if the queue is
    /// shut down) gives it back.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        self.core.put(item, Some(Duration::ZERO), &Self::op("put"))
    }

    /// As [`put`](OrderedQueue::put), waiting at most `timeout` for room; gives
    /// the item back if there is still none, or if the queue is (or gets)
    /// shut down.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.core.put(item, Some(timeout), &Self::op("put"))
    }

    /// Removes and returns the next item, blocking the calling greenlet
    /// while the queue is empty.
    ///
    /// # Panics
    ///
    /// If the queue is shut down and empty, before or while this waits
    /// (gevent's `ShutDown`; iterate over the queue to stop there
    /// instead). Unwinds if the greenlet is killed or its timeout expires
    /// while it waits (no item is taken); panics in the root greenlet if
    /// nothing could ever put one, and if the queue is empty where no
    /// green call waits (in a destructor during an unwind: use
    /// [`try_get`](OrderedQueue::try_get) there).
    pub fn get(&self) -> T {
        let what = Self::op("get");
        self.core.get(None, &what).unwrap_or_else(|f| failed(f, what))
    }

    /// The next item, if there is one now.
    pub fn try_get(&self) -> Option<T> {
        self.core.get(Some(Duration::ZERO), &Self::op("get")).ok()
    }

    /// As [`get`](OrderedQueue::get), waiting at most `timeout`; `None` if no
    /// item came, or if the queue is shut down and empty.
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.core.get(Some(timeout), &Self::op("get")).ok()
    }

    /// An iterator that takes items with [`get`](OrderedQueue::get) until the
    /// queue is shut down and drained (gevent iterates until it gets a
    /// `StopIteration` item). `for item in &queue` does the same.
    ///
    /// Where no green call waits (in a destructor during an unwind) it
    /// ends at the first moment the queue is empty.
    ///
    /// ```
    /// use libev::green::{self, sync::Queue};
    ///
    /// let q = Queue::bounded(1);
    /// let producer = {
    ///     let q = q.clone();
    ///     green::spawn(move || {
    ///         for word in ["a", "b", "c"] {
    ///             q.put(word);
    ///         }
    ///         q.shutdown(); // what is queued is still delivered
    ///     })
    /// };
    /// let words: Vec<&str> = q.iter().collect();
    /// assert_eq!(words, ["a", "b", "c"]);
    /// producer.join().unwrap();
    /// ```
    ///
    /// # Panics
    ///
    /// As `get`, but for the shutdown, which ends the iteration.
    pub fn iter(&self) -> QueueIter<T, O> {
        QueueIter { queue: self.clone() }
    }

    /// The number of items held (not counting those of blocked puts).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would block now.
    pub fn is_full(&self) -> bool {
        self.core.is_full()
    }

    /// The bound given to [`bounded`](OrderedQueue::bounded); `None` if unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.core.capacity()
    }

    /// Shuts the queue down (Python 3.13's `shutdown()`): later puts
    /// fail, and gets fail once the items held are taken. Every greenlet
    /// blocked in `put` gets its item back (or panics, in
    /// [`put`](OrderedQueue::put)); every one blocked in `get` or `peek` finds the
    /// queue shut down (its iteration ends). There is no way back.
    ///
    /// ```
    /// use libev::green::sync::Queue;
    ///
    /// let q = Queue::new();
    /// q.put(1);
    /// q.shutdown();
    /// assert!(q.is_shutdown());
    /// assert_eq!(q.try_put(2), Err(2));
    /// assert_eq!(q.try_get(), Some(1)); // drained first
    /// assert_eq!(q.try_get(), None);
    /// assert_eq!(q.iter().next(), None);
    /// ```
    pub fn shutdown(&self) {
        self.core.shut_down();
    }

    /// Shuts the queue down and removes every item it holds, marking each
    /// done (Python 3.13's `shutdown(immediate=True)`, which discards
    /// them; they are returned here, in the queue's order).
    ///
    /// ```
    /// use libev::green::sync::LifoQueue;
    ///
    /// let q = LifoQueue::new();
    /// q.put('a');
    /// q.put('b');
    /// assert_eq!(q.shutdown_immediate(), ['b', 'a']);
    /// assert_eq!(q.try_get(), None);
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// q.join(); // nothing left to wait for
    /// ```
    pub fn shutdown_immediate(&self) -> Vec<T> {
        self.core.shut_down();
        self.core.take_all()
    }

    /// Whether [`shutdown`](OrderedQueue::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.core.is_shut_down()
    }

    /// Marks one item taken from the queue as processed (gevent's
    /// `task_done`). Fails if every item put was already marked done.
    ///
    /// ```
    /// use libev::green::sync::Queue;
    ///
    /// let q = Queue::new();
    /// q.put("job");
    /// assert_eq!(q.unfinished_tasks(), 1);
    /// let _job = q.get();
    /// assert_eq!(q.unfinished_tasks(), 1, "taken, not yet done");
    /// q.task_done().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// assert!(q.task_done().is_err());
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneError> {
        if self.core.task_done() { Ok(()) } else { Err(TaskDoneError) }
    }

    /// Items put and not yet marked done (gevent's `unfinished_tasks`).
    pub fn unfinished_tasks(&self) -> usize {
        self.core.unfinished()
    }

    /// Blocks the calling greenlet until every item put has been marked
    /// done with [`task_done`](OrderedQueue::task_done) (returns at once if none
    /// is unfinished, and where no green call waits: in a destructor
    /// during an unwind).
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires meanwhile;
    /// panics in the root greenlet if nothing could ever finish the tasks.
    pub fn join(&self) {
        self.core.all_done().wait();
    }

    /// As [`join`](OrderedQueue::join), for at most `timeout`; returns whether
    /// every item was marked done.
    ///
    /// ```
    /// use libev::green::sync::Queue;
    /// use std::time::Duration;
    ///
    /// let q = Queue::new();
    /// q.put(1);
    /// assert!(!q.join_timeout(Duration::from_millis(1)));
    /// q.get();
    /// q.task_done().unwrap();
    /// assert!(q.join_timeout(Duration::ZERO));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.core.all_done().wait_timeout(timeout)
    }
}

impl<T: Clone, O: Order<T>> OrderedQueue<T, O> {
    /// A copy of the item [`get`](OrderedQueue::get) would return, left in the
    /// queue; blocks the calling greenlet while the queue is empty. Every
    /// greenlet blocked here is shown the next item put, even one that a
    /// greenlet blocked in `get` takes at once.
    ///
    /// ```
    /// use libev::green::{self, sync::Queue};
    ///
    /// let q = Queue::new();
    /// let watcher = {
    ///     let q = q.clone();
    ///     green::spawn(move || q.peek())
    /// };
    /// green::yield_now(); // the watcher waits
    /// q.put("first");
    /// assert_eq!(watcher.join().unwrap(), "first");
    /// assert_eq!(q.len(), 1, "still there");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`get`](OrderedQueue::get); also at once on a `bounded(0)` queue, which
    /// never holds an item.
    pub fn peek(&self) -> T {
        let what = Self::op("peek");
        if self.capacity() == Some(0) {
            panic!("libev::green: {what} on a bounded(0) queue, which never holds an item");
        }
        self.core.peek(None, &what).unwrap_or_else(|f| failed(f, what))
    }

    /// A copy of the next item, if there is one now.
    pub fn try_peek(&self) -> Option<T> {
        self.core.peek(Some(Duration::ZERO), &Self::op("peek")).ok()
    }

    /// As [`peek`](OrderedQueue::peek), waiting at most `timeout`; `None` if no
    /// item came, if the queue is shut down and empty, or at once on a
    /// `bounded(0)` queue.
    ///
    /// ```
    /// use libev::green::sync::Queue;
    /// use std::time::Duration;
    ///
    /// let q: Queue<u8> = Queue::new();
    /// assert_eq!(q.peek_timeout(Duration::from_millis(1)), None);
    /// q.put(7);
    /// assert_eq!(q.peek_timeout(Duration::from_millis(1)), Some(7));
    /// ```
    pub fn peek_timeout(&self, timeout: Duration) -> Option<T> {
        self.core.peek(Some(timeout), &Self::op("peek")).ok()
    }
}

/// Panics for a put refused by a shut-down queue.
#[cold]
fn refused(what: Op) -> ! {
    panic!(
        "libev::green: {what} on a queue that was shut down \
         (try_put and put_timeout give the item back instead)"
    )
}

/// Panics for a get or peek that found nothing.
#[cold]
fn failed(f: Failure, what: Op) -> ! {
    match f {
        Failure::ShutDown => panic!(
            "libev::green: {what} on a queue that was shut down and is empty \
             (iterate over the queue to stop there)"
        ),
        Failure::Empty => cannot_wait(&what.to_string()),
    }
}

impl<T, O: Order<T>> fmt::Debug for OrderedQueue<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(<O as Sealed<T>>::NAME)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("getters", &self.core.getters())
            .field("putters", &self.core.putters())
            .field("unfinished_tasks", &self.unfinished_tasks())
            .field("is_shutdown", &self.is_shutdown())
            .finish()
    }
}

/// Takes items from a [`Queue`] until it is shut down and drained: see
/// [`OrderedQueue::iter`].
pub struct QueueIter<T, O: Order<T> = Fifo> {
    queue: OrderedQueue<T, O>,
}

impl<T, O: Order<T>> Iterator for QueueIter<T, O> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.core.get(None, &OrderedQueue::<T, O>::op("iter")).ok()
    }
}

impl<T, O: Order<T>> fmt::Debug for QueueIter<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueIter").field("queue", &self.queue).finish()
    }
}

impl<T, O: Order<T>> IntoIterator for &OrderedQueue<T, O> {
    type Item = T;
    type IntoIter = QueueIter<T, O>;

    fn into_iter(self) -> QueueIter<T, O> {
        self.iter()
    }
}

impl<T, O: Order<T>> IntoIterator for OrderedQueue<T, O> {
    type Item = T;
    type IntoIter = QueueIter<T, O>;

    fn into_iter(self) -> QueueIter<T, O> {
        QueueIter { queue: self }
    }
}

// Ready: `get` would not wait (an item held, or a rendezvous putter
// waiting, or shut down).
crate::green::wait_any::waitable_by_watchers!(
    [T: 'static, O: Order<T> + 'static] OrderedQueue<T, O>,
    core,
    |q| !q.is_empty() || q.is_shutdown() || q.core.putters() > 0
);
