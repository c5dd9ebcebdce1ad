//! [`AsyncResult`]: a value (or an error) that arrives later.

use super::waiting::wait_in;
use crate::green::greenlet::cannot_wait;
use crate::green::wait::{WaitList, Watchers};
use crate::green::wait_any::waitable_by_watchers;
use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A result set once by one greenlet and awaited by others (gevent's
/// `AsyncResult`): a one-shot value with any number of readers.
///
/// The error type defaults to a shared `Rc<dyn Error>`, so that every
/// reader can get its own copy.
///
/// ```
/// use libev::green::{self, sync::AsyncResult};
///
/// let answer: AsyncResult<u32> = AsyncResult::new();
/// let reader = {
///     let answer = answer.clone();
///     green::spawn(move || answer.get())
/// };
/// answer.set(42).unwrap();
/// assert_eq!(reader.join().unwrap().unwrap(), 42);
/// assert!(answer.set(7).is_err(), "set only once");
/// ```
pub struct AsyncResult<T, E = Rc<dyn Error>> {
    inner: Rc<Inner<T, E>>,
}

struct Inner<T, E> {
    value: RefCell<Option<Result<T, E>>>,
    /// Set once, even if [`AsyncResult::take`] empties `value` later.
    ready: Cell<bool>,
    waiters: WaitList<()>,
    /// Greenlets in `green::wait` on it.
    watchers: Watchers,
}

impl<T, E> Clone for AsyncResult<T, E> {
    fn clone(&self) -> Self {
        AsyncResult { inner: self.inner.clone() }
    }
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult {
            inner: Rc::new(Inner {
                value: RefCell::new(None),
                ready: Cell::new(false),
                waiters: WaitList::default(),
                watchers: Watchers::default(),
            }),
        }
    }
}

impl<T, E> AsyncResult<T, E> {
    /// A result not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the value and wakes every waiter. Fails, giving `value` back,
    /// if a value or an error was set before.
    pub fn set(&self, value: T) -> Result<(), T> {
        self.complete(Ok(value)).map_err(|r| r.ok().expect("handed back what was given"))
    }

    /// Sets an error and wakes every waiter. Fails, giving `error` back,
    /// if a value or an error was set before.
    pub fn set_error(&self, error: E) -> Result<(), E> {
        self.complete(Err(error)).map_err(|r| r.err().expect("handed back what was given"))
    }

    fn complete(&self, r: Result<T, E>) -> Result<(), Result<T, E>> {
        if self.inner.ready.get() {
            return Err(r);
        }
        *self.inner.value.borrow_mut() = Some(r);
        self.inner.ready.set(true);
        for w in self.inner.waiters.take_all() {
            w.fill(());
        }
        self.inner.watchers.notify();
        Ok(())
    }

    /// Whether a value or an error has been set.
    pub fn ready(&self) -> bool {
        self.inner.ready.get()
    }

    /// Whether a value (not an error) has been set.
    pub fn successful(&self) -> bool {
        matches!(*self.inner.value.borrow(), Some(Ok(_)))
    }

    /// Blocks the calling greenlet until the result is set (returns at
    /// once where no green call waits: in a destructor during an unwind).
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires meanwhile;
    /// panics in the root greenlet if nothing else could ever set it.
    pub fn wait(&self) {
        self.wait_for(None);
    }

    /// As [`wait`](AsyncResult::wait), for at most `timeout`; returns
    /// whether the result is set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_for(Some(timeout))
    }

    fn wait_for(&self, timeout: Option<Duration>) -> bool {
        self.ready() || wait_in(&self.inner.waiters, timeout, &"AsyncResult::wait").is_some()
    }

    /// Moves the result out, if it is set and was not taken before: for a
    /// single reader of a value that is not `Clone`. Does not block.
    pub fn take(&self) -> Option<Result<T, E>> {
        self.inner.value.borrow_mut().take()
    }
}

impl<T: Clone, E: Clone> AsyncResult<T, E> {
    /// Blocks until the result is set and returns a copy of it.
    ///
    /// # Panics
    ///
    /// As [`wait`](AsyncResult::wait); also if the result was moved out
    /// with [`take`](AsyncResult::take), and if it is not set where no
    /// green call waits (in a destructor during an unwind: use
    /// [`peek`](AsyncResult::peek) there).
    pub fn get(&self) -> Result<T, E> {
        if !self.wait_for(None) {
            cannot_wait("AsyncResult::get");
        }
        self.peek().expect("AsyncResult::get after the result was taken")
    }

    /// As [`get`](AsyncResult::get), waiting at most `timeout`; `None` if
    /// the result is still not set.
    pub fn get_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        if self.wait_timeout(timeout) { self.peek() } else { None }
    }

    /// A copy of the result if it is set, without blocking (gevent's
    /// `get_nowait`).
    pub fn peek(&self) -> Option<Result<T, E>> {
        self.inner.value.borrow().clone()
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .field("successful", &self.successful())
            .finish_non_exhaustive()
    }
}

waitable_by_watchers!([T: 'static, E: 'static] AsyncResult<T, E>, inner, |r| r.ready());
