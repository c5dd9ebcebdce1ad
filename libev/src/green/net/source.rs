//! The choke point: every green socket operation runs through
//! [`Source::do_io`], which tries the operation on the non-blocking fd and,
//! on `WouldBlock`, parks the calling greenlet until the hub's loop reports
//! the fd ready, then tries again (mio's `do_io`, gevent's `_wait`).
//!
//! Per socket and direction there is at most one io watcher, created on the
//! first `WouldBlock` and kept for the socket's life. It is started by the
//! first wait and stays started while the socket is in use, as a C libev
//! program keeps its `ev_io` (see [`Source::wait`]): a busy connection's
//! round trip, where the greenlet wakes, answers and waits again, costs
//! libev no `ev_io_stop`/`ev_io_start` pair and no fd-table update. It is
//! stopped when a wait ends without the fd being ready (a timeout, a kill)
//! and when it fires while nobody waits. The watchers are dropped with
//! the [`Source`], which the socket types declare before the std socket,
//! so they are gone before the fd is closed.

use crate::green::hub::{can_switch, try_with_hub, with_hub};
use crate::green::task::{Task, Wake};
use crate::green::wait::park_until;
use crate::{Events, Io};
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::RawFd;
use std::rc::{Rc, Weak};
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
    /// Marks the slot fired and makes its waiter ready, if there is one;
    /// returns whether there was.
    fn fire(&self) -> bool {
        self.fired.set(true);
        let waiter = self.waiter.take();
        let waited = waiter.is_some();
        if let Some(task) = &waiter {
            try_with_hub(|hub| hub.wake(task, Wake::Normal));
        }
        self.waiter.set(waiter);
        waited
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

/// One wait on a direction, from the waiter's registration to its end.
///
/// Starting: the watcher may still be started from the last wait; it
/// counts for the loop again while a greenlet waits on it. Ending (the
/// drop, however the wait ends): the slot is left free. A wait that ended
/// with the fd ready leaves the watcher started for the next one (the
/// greenlet most likely waits again after it has answered), but no longer
/// counted as keeping the loop alive: a socket that nobody waits on must
/// not hide a LoopExit. Any other end (a timeout, a kill, `with_timeout`)
/// stops it.
struct Disarm<'a>(&'a Armed);

impl<'a> Disarm<'a> {
    #[inline(always)]
    fn arm(armed: &'a Armed) -> Disarm<'a> {
        armed.io.set_keeps_loop_alive(true);
        armed.io.start();
        Disarm(armed)
    }
}

impl Drop for Disarm<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        let slot = &self.0.slot;
        slot.waiter.take();
        if slot.fired.get() {
            self.0.io.set_keeps_loop_alive(false);
        } else {
            self.0.io.stop();
        }
    }
}

/// Unwinds with the current greenlet's pending interrupt, if it has one
/// (out of line: the wait's frame stays small).
#[cold]
#[inline(never)]
fn raise_interrupt(hub: &crate::green::hub::Hub) {
    let me = hub.current();
    if me.interrupt_pending() {
        let payload = me.pending_payload();
        drop(me);
        std::panic::resume_unwind(payload);
    }
}

/// What the handles of one socket (a handle and its `try_clone`s) share:
/// the waiting slots of all of them, so that a shutdown through any handle
/// wakes the waiters of every handle. The kernel does not always do it: an
/// `AF_UNIX` stream whose buffer is full is never reported writable after
/// `SHUT_WR`, so a writer parked on a clone would wait for ever. Made on
/// the first `try_clone` or `shutdown`; most sockets never have one.
#[derive(Default)]
struct Family {
    slots: RefCell<Vec<(Interest, Weak<Slot>)>>,
    /// Reading was shut down through one of the handles.
    read_shut: Cell<bool>,
}

impl Family {
    fn join(&self, interest: Interest, slot: &Rc<Slot>) {
        let mut slots = self.slots.borrow_mut();
        slots.retain(|(_, s)| s.strong_count() > 0);
        slots.push((interest, Rc::downgrade(slot)));
    }

    /// Fires the slots of `interest` of every handle.
    fn fire(&self, interest: Interest) {
        let slots: Vec<Rc<Slot>> = self
            .slots
            .borrow()
            .iter()
            .filter(|(i, _)| *i == interest)
            .filter_map(|(_, s)| s.upgrade())
            .collect();
        for slot in slots {
            slot.fire();
        }
    }
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
    /// Shared with the socket's other handles, once it has any.
    family: OnceCell<Rc<Family>>,
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
            family: OnceCell::new(),
        }
    }

    /// A source for `fd` (a clone of this handle's socket) with the same
    /// settings and no watchers.
    /// The two join one family: a shutdown through either wakes both.
    pub(crate) fn clone_for(&self, fd: RawFd) -> Source {
        let s = Source::new(fd);
        s.nonblocking.set(self.nonblocking.get());
        s.read_timeout.set(self.read_timeout.get());
        s.write_timeout.set(self.write_timeout.get());
        let _ = s.family.set(self.family().clone());
        s
    }

    /// The socket's family, made now (with this handle's slots) if needed.
    fn family(&self) -> &Rc<Family> {
        self.family.get_or_init(|| {
            let f = Rc::new(Family::default());
            for interest in [Interest::Read, Interest::Write] {
                if let Some(armed) = self.cell(interest).get() {
                    f.join(interest, &armed.slot);
                }
            }
            f
        })
    }

    /// Whether reading was shut down through any handle of the socket:
    /// an `AF_UNIX` datagram socket keeps answering `WouldBlock` then,
    /// where std's blocking receive returns an empty datagram.
    pub(crate) fn read_shut(&self) -> bool {
        self.family.get().is_some_and(|f| f.read_shut.get())
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
        let mut deadline: Option<Option<Instant>> = None;
        // Where no green call waits, the operation gets its one try.
        try_now = try_now || !can_switch();
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
                    // A deadline past what an Instant can hold is none.
                    (*deadline.get_or_insert_with(|| now.checked_add(t)))
                        .map(|end| end.saturating_duration_since(now))
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
        if !can_switch() {
            return Err(cannot_wait(self.fd, interest));
        }
        let armed = self.armed(interest)?;
        let slot = &*armed.slot;
        if slot.is_waited_on() {
            return Err(concurrent_use(self.fd, interest));
        }
        slot.fired.set(false);
        if timeout.is_some() {
            return Ok(self.wait_timed(armed, interest, timeout));
        }
        // The round trip's path, in one frame: `park_until` without the
        // deadline, the task's `Rc` taken once (the slot holds it).
        with_hub(|hub| {
            let me = hub.current();
            if me.interrupt_pending() {
                std::panic::resume_unwind(me.pending_payload());
            }
            slot.waiter.set(Some(me));
            let _disarm = Disarm::arm(armed);
            loop {
                let interrupted = hub.park_running(&Waiting(self.fd, interest));
                if slot.fired.get() {
                    return Ok(true);
                }
                if interrupted {
                    raise_interrupt(hub);
                }
            }
        })
    }

    /// [`wait`](Source::wait) with a timeout.
    #[inline(never)]
    fn wait_timed(&self, armed: &Armed, interest: Interest, timeout: Option<Duration>) -> bool {
        let slot = &*armed.slot;
        slot.waiter.set(Some(with_hub(|hub| hub.current())));
        let _disarm = Disarm::arm(armed);
        park_until(timeout, &Waiting(self.fd, interest), || slot.fired.get())
    }

    /// Wakes the greenlet waiting on `interest`, if any, so that it tries
    /// its operation again (and sees what the OS reports now).
    pub(crate) fn wake(&self, interest: Interest) {
        if let Some(armed) = self.cell(interest).get() {
            armed.slot.fire();
        }
    }

    /// Wakes the waiters of the directions `how` shut down, on this
    /// handle and the socket's other handles, so that they retry and see
    /// what the OS reports (end of file, `BrokenPipe`) without relying on
    /// the OS to report readiness for a shut socket.
    pub(crate) fn wake_shut(&self, how: Shutdown) {
        let family = self.family();
        if how != Shutdown::Write {
            family.read_shut.set(true);
            family.fire(Interest::Read);
        }
        if how != Shutdown::Read {
            family.fire(Interest::Write);
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
                // The watcher stays started while a greenlet waits or is
                // about to wait again (see `Source::wait`); ready with
                // nobody waiting, it stops, or the level-triggered fd
                // would be reported at every iteration until the socket
                // is used again.
                if !fired.fire() {
                    io.stop();
                }
            })
        })?;
        if let Some(family) = self.family.get() {
            family.join(interest, &slot);
        }
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

/// The error of an operation that would have to wait where no green call
/// waits (in a destructor during an unwind): it had its one try.
fn cannot_wait(fd: RawFd, interest: Interest) -> io::Error {
    let what = if interest == Interest::Read { "read from" } else { "write to" };
    io::Error::new(
        io::ErrorKind::WouldBlock,
        format!(
            "libev::green: cannot wait to {what} socket fd {fd}: no green call waits while its \
             greenlet unwinds (a kill, a timeout or a panic running destructors) or its thread exits"
        ),
    )
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
