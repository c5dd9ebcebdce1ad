//! [`Channel`]: a rendezvous between greenlets.

use super::queue::Fifo;
use super::queue::core::Core;
use crate::green::greenlet::cannot_wait;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A rendezvous between greenlets (gevent's `Channel`): `put` blocks
/// until a `get` has taken the item and run, and `get` until a `put`
/// brings one. So each side sees the other's work done when it goes on:
///
/// ```
/// use libev::green::{self, sync::Channel};
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// let ch: Channel<&str> = Channel::new();
/// let events = Rc::new(RefCell::new(Vec::new()));
/// let receiver = {
///     let (ch, events) = (ch.clone(), events.clone());
///     green::spawn(move || {
///         for _ in 0..2 {
///             let word = ch.get();
///             events.borrow_mut().push(word.to_owned());
///         }
///     })
/// };
/// events.borrow_mut().push("sending".to_owned());
/// for word in ["hello", "world"] {
///     ch.put(word);
///     events.borrow_mut().push(format!("sent {word}"));
/// }
/// receiver.join().unwrap();
/// assert_eq!(*events.borrow(), ["sending", "hello", "sent hello", "world", "sent world"]);
/// ```
///
/// A channel has no shutdown and no iteration (gevent's stops at a
/// `StopIteration` item); a [`Queue::bounded(0)`](super::Queue::bounded)
/// is the same rendezvous with both.
pub struct Channel<T> {
    core: Rc<Core<T, Fifo>>,
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
    /// has taken it and run (until it blocks or yields). A kill or timeout
    /// that arrives once the item is taken is raised at the greenlet's
    /// next blocking call, not here: the item was delivered.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires before a
    /// getter takes the item (the item is then dropped, never delivered);
    /// panics in the root greenlet if no getter could ever come, and
    /// inside a libev callback (use [`try_put`](Channel::try_put) there).
    /// Where no green call waits (in a destructor during an unwind) the
    /// item is left for the next `get` instead.
    pub fn put(&self, item: T) {
        if self.core.put(item, None, &"Channel::put").is_err() {
            unreachable!("a channel is never shut down, and a put without a deadline only returns once done");
        }
    }

    /// Hands `item` to a greenlet blocked in `get`, if there is one,
    /// without waiting for it to run; otherwise gives the item back.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        self.core.put(item, Some(Duration::ZERO), &"Channel::put")
    }

    /// As [`put`](Channel::put), waiting at most `timeout` for a getter;
    /// gives the item back if none came.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.core.put(item, Some(timeout), &"Channel::put")
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
        self.core.get(None, &"Channel::get").unwrap_or_else(|_| cannot_wait("Channel::get"))
    }

    /// Takes the item of a greenlet blocked in `put`, if there is one.
    pub fn try_get(&self) -> Option<T> {
        self.core.get(Some(Duration::ZERO), &"Channel::get").ok()
    }

    /// As [`get`](Channel::get), waiting at most `timeout`.
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.core.get(Some(timeout), &"Channel::get").ok()
    }

    /// Greenlets blocked in `put` minus those blocked in `get` (gevent's
    /// `balance`).
    pub fn balance(&self) -> isize {
        self.core.putters() as isize - self.core.getters() as isize
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel").field("balance", &self.balance()).finish()
    }
}

// Ready: `get` would not wait (a putter waits to hand an item over).
crate::green::wait_any::waitable_by_watchers!([T: 'static] Channel<T>, core, |c| c.core.putters() > 0);
