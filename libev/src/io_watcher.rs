//! [`Io`]: readiness of a file descriptor.

use crate::event_loop::Loop;
use crate::flags::Events;
use crate::watcher::{Header, OWNS_FD, plain_start, raw_watchers, watcher_type};
use libev_sys as sys;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

// libev's own functions; `release` closes only an fd the watcher owns
// (its node's `OWNS_FD` flag says whether it owns the one it watches).
raw_watchers! {
    ev_io => ev_io_start, ev_io_stop {
        const START_CHECKS_ACTIVE: bool = true;
        unsafe fn release(w: *mut Self) {
            // SAFETY: `w` is one of our io watchers, stopped for good.
            if let Some(fd) = unsafe { take_owned(w) } {
                drop(fd);
            }
        }
    };
}

/// Takes the fd the watcher owns, if any: afterwards it owns none.
///
/// # Safety
///
/// `w` is one of our io watchers.
unsafe fn take_owned(w: *mut sys::ev_io) -> Option<OwnedFd> {
    // SAFETY: per the contract, `w` starts a live node.
    let header = unsafe { Header::of(w) };
    if !header.flag(OWNS_FD) {
        return None;
    }
    header.set_flag(OWNS_FD, false);
    // SAFETY: with the flag set, the watcher owns the fd it watches (set
    // together in `owning`, and `set` gives it up before changing fds).
    Some(unsafe { OwnedFd::from_raw_fd((*w).fd) })
}

watcher_type! {
    /// Watches a file descriptor for readability and/or writability
    /// (libev's `ev_io`); level-triggered: the callback runs every
    /// iteration while the fd stays ready.
    ///
    /// Made with [`Io::new`] or [`Io::borrowing`], the watcher does not own
    /// the fd: stop (or drop) the watcher before closing the fd, as libev's
    /// manual explains ("the special problem of disappearing file
    /// descriptors"). Made with [`Io::owning`], it owns the fd and closes it
    /// when dropped, after stopping.
    ///
    /// If the fd is closed under an active watcher anyway, nothing unsafe
    /// happens: when the loop next polls and finds the fd invalid, libev
    /// stops the watcher and calls it with [`Events::ERROR`] (with `READ`
    /// and `WRITE` set too, whatever it watched). But if the number was reused by
    /// a new fd meanwhile, the watcher silently watches that one instead:
    /// hence the rule.
    Io, ev_io, IoCallback
}
plain_start!(Io);

impl Io {
    /// A stopped watcher for `events` (`READ`, `WRITE` or both) on `fd`.
    ///
    /// Fails with `EBADF` if `fd` is negative or not open, and with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `events` has other
    /// bits than `READ | WRITE`.
    pub fn new<F>(lp: &Loop, fd: RawFd, events: Events, callback: F) -> io::Result<Io>
    where
        F: FnMut(&Io, Events) + 'static,
    {
        check(fd, events)?;
        Ok(Io::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_io_set(w, fd, events.to_revents()) }
        }))
    }

    /// As [`Io::new`], for a file descriptor the caller keeps open for as
    /// long as the watcher is active (a socket, a pipe end, an `OwnedFd`):
    /// the typed way to hand over its number.
    ///
    /// ```
    /// use libev::{Events, Io, Loop};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let lp = Loop::new()?;
    /// let (a, _b) = UnixStream::pair()?;
    /// let w = Io::borrowing(&lp, &a, Events::WRITE, |w, _| w.stop())?;
    /// w.start();
    /// lp.run();
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn borrowing<F>(lp: &Loop, fd: &impl AsFd, events: Events, callback: F) -> io::Result<Io>
    where
        F: FnMut(&Io, Events) + 'static,
    {
        Io::new(lp, fd.as_fd().as_raw_fd(), events, callback)
    }

    /// A stopped watcher that owns `fd`: dropping the watcher stops it,
    /// then closes the fd. [`take_fd`](Io::take_fd) gives it back.
    ///
    /// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) for events
    /// other than `READ | WRITE` (the fd is closed then).
    pub fn owning<F>(lp: &Loop, fd: OwnedFd, events: Events, callback: F) -> io::Result<Io>
    where
        F: FnMut(&Io, Events) + 'static,
    {
        check_events(events)?;
        let raw = fd.into_raw_fd();
        let io = Io::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_io_set(w, raw, events.to_revents()) }
        });
        // The node now owns `raw`: `release` closes it.
        io.node.set_flag(OWNS_FD, true);
        Ok(io)
    }

    /// Whether the watcher owns its fd ([`Io::owning`]).
    pub fn owns_fd(&self) -> bool {
        self.node.flag(OWNS_FD)
    }

    /// Stops the watcher and gives back the fd it owns, if it owns one;
    /// afterwards it owns none (it still watches that fd number when
    /// started again, so [`set`](Io::set) another first).
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.stop();
        // SAFETY: our io watcher, stopped.
        unsafe { take_owned(self.node.raw()) }
    }

    /// Changes the fd and events; an active watcher is restarted with them.
    /// Fails as [`Io::new`] does, leaving the watcher unchanged. A watcher
    /// that owns its fd ([`Io::owning`]) closes it when set to another fd,
    /// as dropping would, and owns none afterwards.
    pub fn set(&self, fd: RawFd, events: Events) -> io::Result<()> {
        check(fd, events)?;
        let w = self.node.raw();
        let closed = self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`, so an
            // owned fd it lets go of can be closed.
            unsafe {
                let old = if (*w).fd != fd { take_owned(w) } else { None };
                sys::ev_io_set(w, fd, events.to_revents());
                old
            }
        });
        drop(closed);
        Ok(())
    }

    /// Changes only the events (libev's `ev_io_modify`); an active watcher
    /// is restarted with them.
    #[inline]
    pub fn set_events(&self, events: Events) -> io::Result<()> {
        check_events(events)?;
        let (w, revents) = (self.node.raw(), events.to_revents());
        // A `move` closure: one that borrowed its captures would need them
        // in memory, stored on every call for `while_stopped`'s slow path.
        self.node.while_stopped(move || {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_io_modify(w, revents) }
        });
        Ok(())
    }

    /// The watched fd.
    pub fn fd(&self) -> RawFd {
        // SAFETY: reads a field of our watcher; libev never writes `fd`.
        unsafe { (*self.node.raw()).fd }
    }

    /// The events watched for.
    pub fn events(&self) -> Events {
        // SAFETY: reads a field of our watcher; libev sets and clears an
        // internal flag in it, which we mask off.
        let ev = unsafe { (*self.node.raw()).events };
        Events::from_revents(ev) & (Events::READ | Events::WRITE)
    }
}

pub(crate) fn check(fd: RawFd, events: Events) -> io::Result<()> {
    check_events(events)?;
    // SAFETY: F_GETFD only queries the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

#[inline]
fn check_events(events: Events) -> io::Result<()> {
    if (Events::READ | Events::WRITE).contains(events) { Ok(()) } else { Err(bad_events(events)) }
}

#[cold]
#[inline(never)]
fn bad_events(events: Events) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("an io watcher takes only READ and WRITE, not {events:?}"),
    )
}
