//! The choke point: every green socket operation runs through
//! [`Source::do_io`], which tries the operation on the non-blocking fd and,
//! on `WouldBlock`, parks the calling greenlet until the hub's loop reports
//! the fd ready, then tries again (mio's `do_io`, gevent's `_wait`).
//!
//! Per socket and direction there is at most one io watcher, created on the
//! first `WouldBlock` and kept for the socket's life: started while a
//! greenlet waits, stopped as soon as it fires. libev batches fd changes
//! and removes fds from epoll lazily, so a stop followed by a start in the
//! same loop iteration costs no system call. The watchers are dropped with
//! the [`Source`], which the socket types declare before the std socket,
//! so they are gone before the fd is closed.

use crate::green::hub::with_hub;
use crate::green::task::{Task, Wake};
use crate::green::wait::park_until;
use crate::{Events, Io};
use std::cell::{Cell, OnceCell};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A direction of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// Who waits on one direction, shared with the watcher's callback.
#[derive(Default)]
struct Slot {
    /// The parked greenlet; `Some` exactly while a greenlet waits.
    waiter: Cell<Option<Rc<Task>>>,
    /// Set by the callback (or an explicit wake) since the wait began.
    fired: Cell<bool>,
}

impl Slot {
    /// Marks the slot fired and makes its waiter ready, if there is one.
    fn fire(&self) {
        self.fired.set(true);
        let waiter = self.waiter.take();
        if let Some(task) = &waiter {
            with_hub(|hub| hub.wake(task, Wake::Normal));
        }
        self.waiter.set(waiter);
    }

    fn is_waited_on(&self) -> bool {
        let waiter = self.waiter.take();
        let busy = waiter.is_some();
        self.waiter.set(waiter);
        busy
    }
}

/// The watcher of one direction, created on its first wait.
struct Armed {
    io: Io,
    slot: Rc<Slot>,
}

/// The waiting side of one green socket handle: its fd's watchers, the
/// non-blocking flag and the timeouts.
pub(crate) struct Source {
    fd: RawFd,
    read: OnceCell<Armed>,
    write: OnceCell<Armed>,
    nonblocking: Cell<bool>,
    /// The last stream read came back short: see [`Source::read_stream`].
    drained: Cell<bool>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

/// Names a wait in diagnostics (formatted only if one is printed).
struct Waiting(RawFd, Interest);

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.1 == Interest::Read { "readable" } else { "writable" };
        write!(f, "socket fd {} to become {dir}", self.0)
    }
}

impl Source {
    /// A source for `fd`, which must already be in non-blocking mode.
    pub(crate) fn new(fd: RawFd) -> Source {
        Source {
            fd,
            read: OnceCell::new(),
            write: OnceCell::new(),
            nonblocking: Cell::new(false),
            drained: Cell::new(false),
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
        }
    }

    /// A source for `fd` (a clone of this handle's socket) with the same
    /// settings and no watchers.
    pub(crate) fn clone_for(&self, fd: RawFd) -> Source {
        let s = Source::new(fd);
        s.nonblocking.set(self.nonblocking.get());
        s.read_timeout.set(self.read_timeout.get());
        s.write_timeout.set(self.write_timeout.get());
        s
    }

    /// Runs `op` until it does not report `WouldBlock`, parking the
    /// greenlet until the fd is ready for `interest` in between. With the
    /// non-blocking flag set, `WouldBlock` is returned instead. The
    /// direction's timeout bounds the whole call (`TimedOut`).
    #[inline]
    pub(crate) fn do_io<R>(&self, interest: Interest, op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
        self.do_io_from(interest, true, op)
    }

    /// [`do_io`](Source::do_io) for a stream read into `len` bytes. A read
    /// that returns fewer bytes than asked for has most likely emptied the
    /// socket's receive buffer, so the next read waits for readiness
    /// before its first attempt instead of spending a system call to learn
    /// `WouldBlock` (tokio does the same). The watcher is level-triggered:
    /// if data is there after all, the wait ends in the loop's next
    /// iteration.
    #[inline]
    pub(crate) fn read_stream(&self, len: usize, op: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        let drained = self.drained.replace(false) && !self.nonblocking.get();
        let r = self.do_io_from(Interest::Read, !drained, op);
        if let Ok(n) = r {
            self.drained.set(n > 0 && n < len);
        }
        r
    }

    /// `do_io`, optionally waiting for readiness before the first try.
    #[inline]
    fn do_io_from<R>(
        &self,
        interest: Interest,
        mut try_now: bool,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let mut deadline: Option<Instant> = None;
        loop {
            if try_now {
                match op() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if self.nonblocking.get() {
                            return Err(e);
                        }
                    }
                    r => return r,
                }
            }
            try_now = true;
            let timeout = match self.timeout(interest) {
                None => None,
                Some(t) => {
                    let now = Instant::now();
                    let end = *deadline.get_or_insert(now + t);
                    Some(end.saturating_duration_since(now))
                }
            };
            if timeout.is_some_and(|t| t.is_zero()) || !self.wait(interest, timeout)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
    }

    /// Parks the current greenlet until the fd is ready for `interest`
    /// (or a [`wake`](Source::wake) for that direction) or `timeout`
    /// passes; returns whether it became ready. Errors if another greenlet
    /// already waits on this direction.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its `with_timeout` expires;
    /// panics inside a libev callback (see `park_until`).
    pub(crate) fn wait(&self, interest: Interest, timeout: Option<Duration>) -> io::Result<bool> {
        let armed = self.armed(interest)?;
        let slot = &*armed.slot;
        if slot.is_waited_on() {
            return Err(concurrent_use(self.fd, interest));
        }
        slot.fired.set(false);
        slot.waiter.set(Some(with_hub(|hub| hub.current())));
        armed.io.start();

        /// Leaves the slot free and the watcher stopped however the wait
        /// ends (ready, timeout, kill, `with_timeout`).
        struct Disarm<'a>(&'a Armed);
        impl Drop for Disarm<'_> {
            fn drop(&mut self) {
                self.0.io.stop();
                self.0.slot.waiter.take();
            }
        }
        let _disarm = Disarm(armed);
        Ok(park_until(timeout, &Waiting(self.fd, interest), || slot.fired.get()))
    }

    /// Wakes the greenlet waiting on `interest`, if any, so that it tries
    /// its operation again (and sees what the OS reports now).
    pub(crate) fn wake(&self, interest: Interest) {
        if let Some(armed) = self.cell(interest).get() {
            armed.slot.fire();
        }
    }

    /// Wakes the waiters of the directions `how` shut down, so that they
    /// retry and see what the OS reports (end of file, `BrokenPipe`)
    /// without relying on the OS to report readiness for a shut socket.
    pub(crate) fn wake_shut(&self, how: Shutdown) {
        if how != Shutdown::Write {
            self.wake(Interest::Read);
        }
        if how != Shutdown::Read {
            self.wake(Interest::Write);
        }
    }

    fn cell(&self, interest: Interest) -> &OnceCell<Armed> {
        match interest {
            Interest::Read => &self.read,
            Interest::Write => &self.write,
        }
    }

    /// The direction's watcher, created on first use on this thread's hub.
    fn armed(&self, interest: Interest) -> io::Result<&Armed> {
        let cell = self.cell(interest);
        if let Some(a) = cell.get() {
            return Ok(a);
        }
        let slot = Rc::new(Slot::default());
        let events = if interest == Interest::Read { Events::READ } else { Events::WRITE };
        let fired = slot.clone();
        let io = with_hub(|hub| {
            Io::new(&hub.lp, self.fd, events, move |io, _| {
                // One wake-up per wait: the watcher is level-triggered,
                // and the woken greenlet retries its operation anyway.
                io.stop();
                fired.fire();
            })
        })?;
        Ok(cell.get_or_init(|| Armed { io, slot }))
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.set(nonblocking);
    }

    pub(crate) fn timeout(&self, interest: Interest) -> Option<Duration> {
        match interest {
            Interest::Read => self.read_timeout.get(),
            Interest::Write => self.write_timeout.get(),
        }
    }

    /// Sets a direction's timeout; a zero duration is refused, as std does.
    pub(crate) fn set_timeout(&self, interest: Interest, timeout: Option<Duration>) -> io::Result<()> {
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        match interest {
            Interest::Read => self.read_timeout.set(timeout),
            Interest::Write => self.write_timeout.set(timeout),
        }
        Ok(())
    }
}

/// gevent's ConcurrentObjectUseError, as an `io::Error`.
fn concurrent_use(fd: RawFd, interest: Interest) -> io::Error {
    let what = if interest == Interest::Read { "read from" } else { "write to" };
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        format!(
            "libev::green: another greenlet is already waiting to {what} this socket (fd {fd}); \
             one direction of a socket serves one greenlet at a time (ConcurrentObjectUseError)"
        ),
    )
}
