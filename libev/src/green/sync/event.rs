//! [`Event`]: a flag greenlets wait for.

use super::waiting::wait_in;
use crate::green::wait::{WaitList, Watchers};
use crate::green::wait_any::waitable_by_watchers;
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A flag that greenlets can wait for (gevent's `Event`). [`set`]
/// wakes every waiter; it stays set until [`clear`].
///
/// ```
/// use libev::green::{self, sync::Event};
///
/// let ready = Event::new();
/// let waiter = {
///     let ready = ready.clone();
///     green::spawn(move || { ready.wait(); "woken" })
/// };
/// green::yield_now(); // the waiter runs and parks
/// ready.set();
/// assert_eq!(waiter.join().unwrap(), "woken");
/// ```
///
/// [`set`]: Event::set
/// [`clear`]: Event::clear
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    flag: Cell<bool>,
    waiters: WaitList<()>,
    /// Greenlets in `green::wait` on it.
    watchers: Watchers,
}

impl Event {
    /// A new event, not set.
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and wakes every waiting greenlet, in the order they
    /// started waiting. Each of them returns from its wait even if the
    /// flag is cleared again before it runs.
    pub fn set(&self) {
        self.inner.flag.set(true);
        for w in self.inner.waiters.take_all() {
            w.fill(());
        }
        self.inner.watchers.notify();
    }

    /// Clears the flag; later waits block until the next [`set`](Event::set).
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Blocks the calling greenlet until the flag is set (returns at once
    /// if it is, and where no green call waits: in a destructor during an
    /// unwind).
    ///
    /// A wait on a set event never switches, even while greenlets woken
    /// by the [`set`](Event::set) have not run yet: they run at the
    /// caller's next switch. gevent's `wait` lets them run first there
    /// (its `test_wait_while_notifying`); here a set event costs one flag
    /// check, as std's primitives do when they need not wait.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires meanwhile;
    /// panics in the root greenlet if nothing else could ever set it.
    pub fn wait(&self) {
        self.wait_for(None);
    }

    /// As [`wait`](Event::wait), for at most `timeout`; returns whether
    /// the event was set.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_for(Some(timeout))
    }

    fn wait_for(&self, timeout: Option<Duration>) -> bool {
        self.is_set() || wait_in(&self.inner.waiters, timeout, &"Event::wait").is_some()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("is_set", &self.is_set())
            .field("waiters", &self.inner.waiters.len())
            .finish()
    }
}

waitable_by_watchers!([] Event, inner, |e| e.is_set());
