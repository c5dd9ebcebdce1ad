//! Synchronisation between greenlets of one thread (gevent's
//! `gevent.event`, `gevent.queue` and `gevent.lock`).
//!
//! [`Event`], [`AsyncResult`], the queues ([`Queue`], [`LifoQueue`],
//! [`PriorityQueue`], [`JoinableQueue`]), [`Channel`] and [`Semaphore`]
//! are cheap handles: clone one to share it with another greenlet.
//! [`Mutex`] and [`RLock`] own their value, like std's locks; share them
//! (and a [`Condvar`]) with an `Rc`.
//!
//! Every blocking call parks only the calling greenlet (from the root
//! too, running the hub meanwhile) and takes part in
//! [`with_timeout`](super::with_timeout) and [`kill`](super::Greenlet::kill).
//! Waiters are served in arrival order. A waiter that is interrupted
//! leaves the primitive as if it had never waited: no wake-up, permit or
//! item is lost or handed out twice. One that was served just before
//! the interrupt arrived keeps what it got, and the interrupt is raised at
//! its next blocking call. A root greenlet that waits on something that
//! nothing can complete gets a panic naming the wait (gevent's
//! `LoopExit`), not a hang.
//!
//! These types belong to their thread, like the greenlets using them:
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<libev::green::sync::Event>();
//! ```
//!
//! ```
//! use libev::green::{self, sync::Queue};
//!
//! let q = Queue::bounded(2);
//! let producer = {
//!     let q = q.clone();
//!     green::spawn(move || for i in 0..5 { q.put(i) })
//! };
//! let got: Vec<i32> = (0..5).map(|_| q.get()).collect();
//! assert_eq!(got, [0, 1, 2, 3, 4]);
//! producer.join().unwrap();
//! ```

mod async_result;
mod channel;
mod condvar;
mod event;
mod mutex;
mod queue;
mod rlock;
mod semaphore;
mod waiting;

pub use async_result::AsyncResult;
pub use channel::Channel;
pub use condvar::{Condvar, WaitTimeoutResult};
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use queue::{
    Fifo, JoinableQueue, Lifo, LifoQueue, Order, OrderedQueue, Priority, PriorityQueue, Queue, QueueIter,
    TaskDoneError,
};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{ReleaseError, Semaphore, SemaphorePermit};
