//! [`Io`]: readiness of a file descriptor.

use crate::event_loop::Loop;
use crate::flags::Events;
use crate::watcher::{plain_start, watcher_type};
use libev_sys as sys;
use std::io;
use std::os::fd::RawFd;

watcher_type! {
    /// Watches a file descriptor for readability and/or writability
    /// (libev's `ev_io`); level-triggered: the callback runs every
    /// iteration while the fd stays ready.
    ///
    /// The watcher does not own the fd. Stop (or drop) the watcher before
    /// closing the fd: libev's manual explains why ("the special problem of
    /// disappearing file descriptors"). If the fd turns out to be invalid
    /// once the loop uses it, libev stops the watcher and the callback
    /// receives [`Events::ERROR`].
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

    /// Changes the fd and events; an active watcher is restarted with them.
    /// Fails as [`Io::new`] does, leaving the watcher unchanged.
    pub fn set(&self, fd: RawFd, events: Events) -> io::Result<()> {
        check(fd, events)?;
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_io_set(w, fd, events.to_revents()) }
        });
        Ok(())
    }

    /// Changes only the events (libev's `ev_io_modify`); an active watcher
    /// is restarted with them.
    pub fn set_events(&self, events: Events) -> io::Result<()> {
        check_events(events)?;
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_io_modify(w, events.to_revents()) }
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

fn check(fd: RawFd, events: Events) -> io::Result<()> {
    check_events(events)?;
    // SAFETY: F_GETFD only queries the descriptor table.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(())
}

fn check_events(events: Events) -> io::Result<()> {
    if (Events::READ | Events::WRITE).contains(events) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("an io watcher takes only READ and WRITE, not {events:?}"),
        ))
    }
}
