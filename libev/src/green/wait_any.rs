//! Waiting on several things at once: [`wait`] and [`iwait`] (gevent's
//! `gevent.wait` and `gevent.iwait`) over any mix of [`Waitable`]s.
//!
//! See [`Waitable`] for what each object waits for.

use super::hub::{try_with_hub, with_hub};
use super::task::{Task, Wake};
use super::wait::{Watchers, park_until};
use crate::{Events, Io};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(crate) use sealed::{Sealed, Watch, Watcher};

mod sealed {
    use super::*;

    /// What every [`Waitable`] implements, out of users' reach.
    pub trait Sealed {
        /// Whether the matching call would not block now.
        fn is_ready(&self) -> bool;
        /// Wakes `watcher` whenever the object may have become ready, for
        /// as long as the returned [`Watch`] lives.
        fn watch(&self, watcher: &Watcher) -> Watch;
    }

    /// The greenlet a [`Sealed::watch`] wakes.
    pub struct Watcher(pub(crate) Rc<Task>);

    /// A registration; dropping it ends it.
    pub struct Watch {
        /// Ends the registration when dropped.
        pub(crate) _guard: Option<Box<dyn std::any::Any>>,
    }
}

impl Watcher {
    /// Wakes the watching greenlet (it then looks at every object again).
    pub(crate) fn wake(&self) {
        try_with_hub(|h| h.wake(&self.0, Wake::Normal));
    }
}

impl Watch {
    /// Ends with `f` when dropped.
    pub(crate) fn on_drop(f: impl FnOnce() + 'static) -> Watch {
        struct OnDrop<F: FnOnce()>(Option<F>);
        impl<F: FnOnce()> Drop for OnDrop<F> {
            fn drop(&mut self) {
                if let Some(f) = self.0.take() {
                    f();
                }
            }
        }
        Watch { _guard: Some(Box::new(OnDrop(Some(f)))) }
    }

    /// Keeps `guard` (a watcher, ...) for as long as the watch.
    pub(crate) fn holding(guard: impl std::any::Any) -> Watch {
        Watch { _guard: Some(Box::new(guard)) }
    }
}

/// Registers `watcher` with the [`Watchers`] `list` finds in `owner`,
/// until the returned watch drops.
pub(crate) fn watch_in<X: 'static>(owner: &Rc<X>, list: fn(&X) -> &Watchers, watcher: &Watcher) -> Watch {
    let token = list(owner).add(watcher.0.clone());
    let owner = owner.clone();
    Watch::on_drop(move || list(&owner).remove(token))
}

/// Implements [`Waitable`] for a type whose field `$field: Rc<..>` has a
/// `watchers: Watchers` field, notified whenever it may become ready.
macro_rules! waitable_by_watchers {
    ([$($generics:tt)*] $ty:ty, $field:ident, |$this:ident| $ready:expr) => {
        impl<$($generics)*> $crate::green::wait_any::Sealed for $ty {
            fn is_ready(&self) -> bool {
                let $this = self;
                $ready
            }

            fn watch(&self, watcher: &$crate::green::wait_any::Watcher) -> $crate::green::wait_any::Watch {
                $crate::green::wait_any::watch_in(&self.$field, |i| &i.watchers, watcher)
            }
        }
    };
}
pub(crate) use waitable_by_watchers;

/// Something [`wait`] and [`iwait`] can wait for without consuming it.
/// Implemented by this crate's green types only.
///
/// Nothing is taken from the objects: a queue keeps its items, a semaphore
/// its permits. An object counts as ready when the matching call would not
/// block now:
///
/// | object | ready when |
/// | --- | --- |
/// | [`Greenlet`](crate::green::Greenlet) | it has ended |
/// | [`Event`](crate::green::sync::Event) | it is set |
/// | [`AsyncResult`](crate::green::sync::AsyncResult) | a value or an error is set |
/// | a queue ([`OrderedQueue`](crate::green::sync::OrderedQueue): `Queue`, `LifoQueue`, ...) | `get` would not wait: it holds an item (or, bounded to 0, a putter waits), or is shut down |
/// | [`Channel`](crate::green::sync::Channel) | `get` would not wait: a putter waits |
/// | [`Semaphore`](crate::green::sync::Semaphore) | a permit is free |
/// | [`readable`]`(&fd)` / [`writable`]`(&fd)` (a green socket, any fd) | reading / writing would not block |
///
/// Several greenlets may see the same object ready; only one of them may
/// get its item or permit (use the non-blocking `try_` calls after a
/// wait). The waits park only the calling greenlet.
pub trait Waitable: Sealed {}

impl<W: Sealed + ?Sized> Waitable for W {}

/// Waits (blocking only the caller) until `count` of `objects` are ready
/// (all of them if `None`), or `timeout` passes, and returns the indices
/// of those ready then, in order (gevent's `gevent.wait(objects, timeout,
/// count)`). Where green calls do not wait (in a destructor during an
/// unwind), returns those ready now.
///
/// ```
/// use libev::green::{self, sync::{Event, Queue}};
/// use std::time::Duration;
///
/// let event = Event::new();
/// let queue: Queue<u32> = Queue::new();
/// let q = queue.clone();
/// let worker = green::spawn(move || { green::sleep(Duration::from_millis(1)); q.put(7) });
/// // Whichever comes first: here the queue's item.
/// let ready = green::wait(&[&event, &queue, &worker], Some(Duration::from_secs(5)), Some(1));
/// assert!(ready.contains(&1));
/// assert_eq!(queue.try_get(), Some(7), "wait took nothing");
/// ```
///
/// # Panics
///
/// Unwinds if the caller is killed or its timeout expires meanwhile; in
/// the root, panics if nothing could ever make them ready (LoopExit).
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>, count: Option<usize>) -> Vec<usize> {
    let need = count.unwrap_or(objects.len()).min(objects.len());
    let ready_now = || objects.iter().filter(|o| o.is_ready()).count() >= need;
    if !ready_now() {
        let _watches = watch_all(objects.iter().copied());
        park_until(timeout, &"green::wait", ready_now);
    }
    (0..objects.len()).filter(|&i| objects[i].is_ready()).collect()
}

/// Watches every object for the current greenlet.
fn watch_all<'a>(objects: impl Iterator<Item = &'a dyn Waitable>) -> Vec<Watch> {
    let me = Watcher(with_hub(|h| h.current()));
    objects.map(|o| o.watch(&me)).collect()
}

/// Yields the index of each of `objects` as it becomes ready, each once,
/// until all have been yielded or `timeout` (for the whole iteration)
/// passes (gevent's `gevent.iwait`). Several that are ready at the same
/// look come in index order.
///
/// ```
/// use libev::green::{self, sync::AsyncResult};
/// use std::time::Duration;
///
/// let slow = green::spawn(|| green::sleep(Duration::from_millis(5)));
/// let result: AsyncResult<u32> = AsyncResult::new();
/// let r = result.clone();
/// green::spawn(move || r.set(1).unwrap());
/// let order: Vec<usize> = green::iwait(&[&slow, &result], None).collect();
/// assert_eq!(order, [1, 0]);
/// ```
///
/// # Panics
///
/// As [`wait`], from `next`.
pub fn iwait<'a>(objects: &[&'a dyn Waitable], timeout: Option<Duration>) -> Iwait<'a> {
    Iwait {
        objects: objects.to_vec(),
        yielded: vec![false; objects.len()],
        deadline: timeout.map(|t| Instant::now() + t),
    }
}

/// The iterator of [`iwait`].
pub struct Iwait<'a> {
    objects: Vec<&'a dyn Waitable>,
    yielded: Vec<bool>,
    deadline: Option<Instant>,
}

impl Iwait<'_> {
    fn next_ready(&self) -> Option<usize> {
        (0..self.objects.len()).find(|&i| !self.yielded[i] && self.objects[i].is_ready())
    }
}

impl Iterator for Iwait<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if !self.yielded.contains(&false) {
            return None;
        }
        if self.next_ready().is_none() {
            let left = self.deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let pending = (0..self.objects.len()).filter(|&i| !self.yielded[i]).map(|i| self.objects[i]);
            let _watches = watch_all(pending);
            park_until(left, &"green::iwait", || self.next_ready().is_some());
        }
        let i = self.next_ready()?;
        self.yielded[i] = true;
        Some(i)
    }
}

impl fmt::Debug for Iwait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait").field("left", &self.yielded.iter().filter(|y| !**y).count()).finish()
    }
}

/// An fd becoming readable, for [`wait`] and [`iwait`]: `readable(&socket)`.
pub fn readable<F: AsFd + ?Sized>(fd: &F) -> FdReady<'_> {
    FdReady { fd: fd.as_fd(), events: Events::READ }
}

/// An fd becoming writable, for [`wait`] and [`iwait`]: `writable(&socket)`.
pub fn writable<F: AsFd + ?Sized>(fd: &F) -> FdReady<'_> {
    FdReady { fd: fd.as_fd(), events: Events::WRITE }
}

/// An fd becoming readable or writable ([`readable`], [`writable`]).
#[derive(Debug, Clone, Copy)]
pub struct FdReady<'a> {
    fd: BorrowedFd<'a>,
    events: Events,
}

impl Sealed for FdReady<'_> {
    fn is_ready(&self) -> bool {
        let events = if self.events.contains(Events::READ) { libc::POLLIN } else { libc::POLLOUT };
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events, revents: 0 };
        // SAFETY: one valid pollfd; a zero timeout never blocks. An error,
        // a hang-up or a bad fd counts as ready: the read or write would
        // not block (it fails at once).
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        n != 0
    }

    fn watch(&self, watcher: &Watcher) -> Watch {
        let me = Watcher(watcher.0.clone());
        let lp = super::hub_loop();
        // The watch lives inside the wait, which the fd's borrow outlives.
        match Io::borrowing(&lp, &self.fd, self.events, move |_, _| me.wake()) {
            Ok(io) => {
                io.start();
                Watch::holding(io)
            }
            // A bad fd: `is_ready` says ready, so nobody parks on it.
            Err(_) => Watch { _guard: None },
        }
    }
}

impl<T> Sealed for super::Greenlet<T> {
    fn is_ready(&self) -> bool {
        self.is_finished()
    }

    fn watch(&self, watcher: &Watcher) -> Watch {
        let task = self.task().clone();
        task.joiners.push(watcher.0.clone());
        let me = watcher.0.clone();
        Watch::on_drop(move || {
            if !task.ended() {
                task.joiners.remove(&me);
            }
        })
    }
}
