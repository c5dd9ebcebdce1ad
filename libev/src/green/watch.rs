//! Parking a greenlet on any libev watcher: [`wait_watcher`] and its
//! [`Wakeup`], and on them [`wait_readable`] / [`wait_writable`] (gevent's
//! `wait_read` / `wait_write`): what it takes to make any non-blocking C
//! API green.

use super::hub::{can_switch, try_with_hub, with_hub};
use super::task::{Task, Wake};
use super::wait::park_until;
use crate::{Events, Io};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

/// Wakes the greenlet parked in [`wait_watcher`]: call
/// [`wake`](Wakeup::wake) from a watcher's callback. Cheap to clone; stays
/// on the hub's thread.
#[derive(Clone)]
pub struct Wakeup {
    inner: Rc<WakeupInner>,
}

struct WakeupInner {
    task: Rc<Task>,
    events: Cell<Option<Events>>,
    /// Whether the wait is still on.
    waiting: Cell<bool>,
}

impl Wakeup {
    /// Ends the wait with `events` (what the callback received, typically).
    /// Later calls add their events to the first's until the greenlet runs;
    /// calls after the wait ended do nothing.
    pub fn wake(&self, events: Events) {
        if !self.inner.waiting.get() {
            return;
        }
        let was = self.inner.events.get();
        self.inner.events.set(Some(was.unwrap_or(Events::empty()) | events));
        if was.is_none() {
            try_with_hub(|hub| hub.wake(&self.inner.task, Wake::Normal));
        }
    }
}

impl fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wakeup").field("woken", &self.inner.events.get().is_some()).finish_non_exhaustive()
    }
}

/// Parks the current greenlet until a watcher wakes it, or `timeout`
/// passes (gevent's `hub.wait(watcher)`): `start` receives a [`Wakeup`],
/// builds and starts a watcher (on [`hub_loop`](super::hub_loop)) whose
/// callback calls [`Wakeup::wake`], and returns it; the watcher is kept
/// for the wait and dropped (so stopped) afterwards, however the wait
/// ends. Returns the events passed to `wake`, or `None` on timeout.
///
/// Any libev watcher works this way (a [`Stat`](crate::Stat) for a file
/// to change, a [`Signal`](crate::Signal), an [`Io`] on a C library's fd,
/// a [`Child`](crate::Child), an [`Async`](crate::Async) woken from
/// another thread), and several at once (return a tuple).
///
/// Fails with `start`'s error, and with
/// [`WouldBlock`](io::ErrorKind::WouldBlock) where green calls do not wait
/// (in a destructor during an unwind, see the crate docs).
///
/// # Panics
///
/// Unwinds if the greenlet is killed or its [`Timeout`](super::Timeout)
/// expires meanwhile (the watcher is dropped on the way); panics as other
/// blocking green calls do inside a raw watcher callback.
///
/// ```
/// use libev::{Events, Timer, green};
/// use std::time::Duration;
///
/// // A watcher of any kind: here a timer, in a few lines.
/// let got = green::wait_watcher(None, |wake| {
///     let t = Timer::new(&green::hub_loop(), Duration::from_millis(1), Duration::ZERO, move |_, ev| {
///         wake.wake(ev)
///     });
///     t.start();
///     Ok(t)
/// })?;
/// assert_eq!(got, Some(Events::TIMER));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_watcher<W>(
    timeout: Option<Duration>,
    start: impl FnOnce(Wakeup) -> io::Result<W>,
) -> io::Result<Option<Events>> {
    if !can_switch() {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "green calls do not wait here"));
    }
    let inner = Rc::new(WakeupInner {
        task: with_hub(|h| h.current()),
        events: Cell::new(None),
        waiting: Cell::new(true),
    });
    // However the wait ends (a kill unwinds through here too): no wake-up
    // after it, then the watcher goes.
    struct End<W>(Rc<WakeupInner>, Option<W>);
    impl<W> Drop for End<W> {
        fn drop(&mut self) {
            self.0.waiting.set(false);
            drop(self.1.take());
        }
    }
    let watcher = start(Wakeup { inner: inner.clone() })?;
    let _end = End(inner.clone(), Some(watcher));
    park_until(timeout, &"a watcher", || inner.events.get().is_some());
    Ok(inner.events.get())
}

/// Parks the current greenlet until `fd` is readable (gevent's
/// `wait_read`): the way to make a non-blocking C API green. Does not read.
///
/// Fails with [`TimedOut`](io::ErrorKind::TimedOut) when `timeout` passes
/// first, with `EBADF` for a closed fd (or one closed while waiting), and
/// with [`WouldBlock`](io::ErrorKind::WouldBlock) where green calls do not
/// wait.
///
/// # Panics
///
/// As [`wait_watcher`].
///
/// ```
/// use libev::green;
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
///
/// let (mut a, mut b) = UnixStream::pair()?;
/// b.set_nonblocking(true)?;
/// let writer = green::spawn(move || a.write_all(b"ping"));
/// green::wait_readable(&b, None)?;
/// let mut buf = [0; 4];
/// b.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// writer.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_readable(fd: &impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Events::READ, timeout)
}

/// Parks the current greenlet until `fd` is writable (gevent's
/// `wait_write`). Fails and panics as [`wait_readable`].
pub fn wait_writable(fd: &impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Events::WRITE, timeout)
}

thread_local! {
    /// The greenlets in `wait_readable` / `wait_writable`, by fd, for
    /// [`cancel_wait`].
    static FD_WAITS: RefCell<HashMap<RawFd, Vec<Wakeup>>> = RefCell::new(HashMap::new());
}

/// Wakes every greenlet of this thread waiting in [`wait_readable`] or
/// [`wait_writable`] on `fd`, which then fail with `EBADF` (gevent's
/// `cancel_wait`). Call it before closing an fd that other greenlets may
/// be waiting on: libev cannot notice that an fd was closed under its
/// watcher (the kernel reports nothing), and the number may be reused by
/// the next fd opened. Returns how many greenlets it woke.
///
/// ```
/// use libev::green;
/// use std::os::unix::net::UnixStream;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let (_a, b) = UnixStream::pair()?;
/// let b = Rc::new(b);
/// let b2 = b.clone();
/// let waiter = green::spawn(move || green::wait_readable(&*b2, None));
/// green::sleep(Duration::from_millis(1));
/// assert_eq!(green::cancel_wait(&*b), 1);
/// drop(b); // now safe to close
/// assert_eq!(waiter.join().unwrap().unwrap_err().raw_os_error(), Some(libc::EBADF));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn cancel_wait(fd: &impl AsFd) -> usize {
    let fd = fd.as_fd().as_raw_fd();
    let waiting: Vec<Wakeup> =
        FD_WAITS.try_with(|w| w.borrow().get(&fd).cloned().unwrap_or_default()).unwrap_or_default();
    for w in &waiting {
        w.cancel();
    }
    waiting.len()
}

impl Wakeup {
    /// Ends the wait as if the fd had been found closed.
    fn cancel(&self) {
        self.wake(Events::ERROR);
    }
}

fn wait_fd(fd: &impl AsFd, events: Events, timeout: Option<Duration>) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    /// Unlists the wait however it ends.
    struct Unlist(RawFd, Option<Rc<WakeupInner>>);
    impl Drop for Unlist {
        fn drop(&mut self) {
            if let Some(inner) = self.1.take() {
                let _ = FD_WAITS.try_with(|w| {
                    let mut waits = w.borrow_mut();
                    if let Some(list) = waits.get_mut(&self.0) {
                        list.retain(|w| !Rc::ptr_eq(&w.inner, &inner));
                        if list.is_empty() {
                            waits.remove(&self.0);
                        }
                    }
                });
            }
        }
    }
    let mut unlist = Unlist(fd, None);
    let got = wait_watcher(timeout, |wake| {
        let io = Io::new(&super::hub_loop(), fd, events, {
            let wake = wake.clone();
            move |_, ev| wake.wake(ev)
        })?;
        io.start();
        unlist.1 = Some(wake.inner.clone());
        FD_WAITS.with(|w| w.borrow_mut().entry(fd).or_default().push(wake));
        Ok(io)
    })?;
    drop(unlist);
    match got {
        None => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the fd")),
        Some(ev) if ev.contains(Events::ERROR) => Err(io::Error::from_raw_os_error(libc::EBADF)),
        Some(_) => Ok(()),
    }
}
