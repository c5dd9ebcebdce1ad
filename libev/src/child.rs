//! [`Child`]: status changes of child processes.

use crate::event_loop::Loop;
use crate::watcher::{plain_start, watcher_type};
use libev_sys as sys;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

watcher_type! {
    /// Reports when a child process exits (or, with `trace`, stops or
    /// continues) (libev's `ev_child`). Only on the default loop, which
    /// reaps children with `waitpid` on SIGCHLD: once it exists, the
    /// process's children are reaped by libev (so `std::process::Child::wait`
    /// on them may fail with ECHILD).
    Child, ev_child, ChildCallback
}
plain_start!(Child);

impl Child {
    /// A stopped watcher for process `pid` (0: any child). With `trace`,
    /// stops and continues are reported too.
    ///
    /// Fails with [`Unsupported`](io::ErrorKind::Unsupported) on a loop
    /// other than the default loop, and with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a negative pid.
    pub fn new<F>(lp: &Loop, pid: i32, trace: bool, callback: F) -> io::Result<Child>
    where
        F: FnMut(&Child, crate::Events) + 'static,
    {
        if !lp.is_default() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "child watchers only work on the default loop (Loop::default_loop)",
            ));
        }
        check_pid(pid)?;
        Ok(Child::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher.
            unsafe { sys::ev_child_set(w, pid, i32::from(trace)) }
        }))
    }

    /// Watches `pid` (0: any child) and `trace` instead; an active watcher
    /// is restarted with them, keeping a pending event. Fails as
    /// [`Child::new`] does for a negative pid, leaving it unchanged.
    pub fn set(&self, pid: i32, trace: bool) -> io::Result<()> {
        check_pid(pid)?;
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { sys::ev_child_set(w, pid, i32::from(trace)) }
        });
        Ok(())
    }

    /// The pid watched (0: any).
    pub fn pid(&self) -> i32 {
        // SAFETY: reads a field of our watcher.
        unsafe { (*self.node.raw()).pid }
    }

    /// The pid whose status changed (after the callback was called).
    pub fn rpid(&self) -> i32 {
        // SAFETY: reads a field of our watcher.
        unsafe { (*self.node.raw()).rpid }
    }

    /// The raw status from `waitpid` (see `WIFEXITED` and friends).
    pub fn rstatus(&self) -> i32 {
        // SAFETY: reads a field of our watcher.
        unsafe { (*self.node.raw()).rstatus }
    }

    /// Sets the `rpid` member, as C may (libev overwrites it at the next
    /// status change): to fake a status before
    /// [`feed_event`](Child::feed_event), say.
    pub fn set_rpid(&self, rpid: i32) {
        // SAFETY: a plain field of our watcher, written on its thread.
        unsafe { (*self.node.raw()).rpid = rpid }
    }

    /// Sets the `rstatus` member (see [`set_rpid`](Child::set_rpid)).
    pub fn set_rstatus(&self, rstatus: i32) {
        // SAFETY: a plain field of our watcher, written on its thread.
        unsafe { (*self.node.raw()).rstatus = rstatus }
    }

    /// [`rstatus`](Child::rstatus) as std's `ExitStatus`.
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::from_raw(self.rstatus())
    }
}

fn check_pid(pid: i32) -> io::Result<()> {
    if pid < 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid pid {pid}")));
    }
    Ok(())
}
