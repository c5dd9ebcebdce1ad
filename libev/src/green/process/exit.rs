//! Waiting for a child's exit, parking only the greenlet: libev's own
//! child watcher on the default loop's hub, a pidfd on other hubs, and a
//! polled `waitpid` where there are no pidfds (see the module docs).

use super::reaped::{self, Claim, Ticket};
#[cfg(target_os = "linux")]
use crate::Io;
use crate::green::hub::try_with_hub;
use crate::green::{Wakeup, sleep, wait_readable, wait_watcher};
use crate::{Events, Loop, Timer};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
#[cfg(target_os = "linux")]
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::rc::Rc;
use std::time::Duration;

/// The longest pause between two polls of a child's state.
const POLL_AT_MOST: Duration = Duration::from_millis(50);

/// Taken before a spawn, on the hub that spawns.
pub(super) enum BeforeSpawn {
    DefaultLoop(Loop),
    Elsewhere(Ticket),
}

/// What to take before spawning on this thread's hub, whose loop is `lp`.
pub(super) fn before_spawn(lp: Loop) -> BeforeSpawn {
    if lp.is_default() { BeforeSpawn::DefaultLoop(lp) } else { BeforeSpawn::Elsewhere(reaped::ticket()) }
}

impl BeforeSpawn {
    /// Starts watching child `pid`, just spawned: before this hub runs its
    /// loop again, so that libev cannot reap it unseen.
    pub(super) fn spawned(self, pid: libc::pid_t) -> io::Result<Exit> {
        let how = match self {
            BeforeSpawn::DefaultLoop(lp) => How::Libev(Libev::watch(&lp, pid)?),
            BeforeSpawn::Elsewhere(ticket) => {
                let claim = ticket.claim(pid);
                match pidfd_open(pid) {
                    // Still our unreaped child: the pidfd names it, not a
                    // process that reused the pid after another hub's
                    // default loop reaped it in between.
                    #[cfg(target_os = "linux")]
                    Ok(fd) if still_our_child(&fd) => How::Pidfd { fd, claim },
                    _ => How::Poll { claim },
                }
            }
        };
        Ok(Exit { pid, status: None, how })
    }
}

/// A child's exit: how to learn it, and the status once known.
pub(super) struct Exit {
    pid: libc::pid_t,
    status: Option<ExitStatus>,
    how: How,
}

enum How {
    /// On the default loop, which reaps every child: libev hands the
    /// status to a child watcher.
    Libev(Libev),
    /// Elsewhere: the child's pidfd becomes readable when it exits.
    #[cfg(target_os = "linux")]
    Pidfd { fd: OwnedFd, claim: Claim },
    /// Elsewhere, where pidfds are missing: `waitpid(pid, WNOHANG)` with a
    /// growing pause.
    Poll { claim: Claim },
}

/// A child watcher and what it received.
struct Libev {
    watcher: crate::Child,
    state: Rc<LibevState>,
}

#[derive(Default)]
struct LibevState {
    status: Cell<Option<i32>>,
    /// The greenlet in `wait`.
    waiter: Cell<Option<Wakeup>>,
}

impl Libev {
    fn watch(lp: &Loop, pid: libc::pid_t) -> io::Result<Libev> {
        reaped::own_child(lp, pid)?;
        let state = Rc::new(LibevState::default());
        let got = state.clone();
        let watcher = crate::Child::new(lp, pid, false, move |c, _| {
            got.status.set(Some(c.rstatus()));
            c.stop();
            if let Some(w) = got.waiter.take() {
                w.wake(Events::CHILD);
            }
        })?;
        // Only a waiting greenlet keeps the hub running for the child.
        watcher.set_keeps_loop_alive(false);
        watcher.start();
        Ok(Libev { watcher, state })
    }

    fn wait(&self) -> io::Result<i32> {
        /// Ends the wait however it ends.
        struct Waiting<'a>(&'a Libev);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.state.waiter.take();
                self.0.watcher.set_keeps_loop_alive(false);
            }
        }
        loop {
            if let Some(status) = self.state.status.get() {
                return Ok(status);
            }
            wait_watcher(None, |wake| {
                self.state.waiter.set(Some(wake));
                self.watcher.set_keeps_loop_alive(true);
                Ok(Waiting(self))
            })?;
        }
    }
}

impl Exit {
    pub(super) fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Parks the greenlet until the child exits; its status.
    pub(super) fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let raw = match &self.how {
            How::Libev(l) => l.wait()?,
            #[cfg(target_os = "linux")]
            How::Pidfd { fd, claim } => loop {
                match reap_pidfd(fd.as_raw_fd(), self.pid) {
                    Ok(Some(raw)) => break raw,
                    Ok(None) => wait_readable(fd, None)?,
                    Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                        if let Some(raw) = claim.rescue(true)? {
                            break raw;
                        }
                    }
                    Err(e) => return Err(e),
                }
            },
            How::Poll { claim } => {
                let mut pause = Duration::from_millis(1);
                loop {
                    match reap_pid(self.pid) {
                        Ok(Some(raw)) => break raw,
                        Ok(None) => {
                            sleep(pause);
                            pause = (pause * 2).min(POLL_AT_MOST);
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                            if let Some(raw) = claim.rescue(true)? {
                                break raw;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        Ok(self.settle(raw))
    }

    /// The status if the child has exited, without waiting.
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let raw = match &self.how {
            How::Libev(l) => match l.state.status.get() {
                Some(raw) => Some(raw),
                // The hub has not run libev's SIGCHLD handling since the
                // child exited (a greenlet polling here in a loop may keep
                // it from running): reap it here. Until the handling ran
                // and called our watcher, libev has not reaped it.
                None => match reap_pid(self.pid) {
                    Ok(Some(raw)) => {
                        l.watcher.stop();
                        reaped::forget_own(self.pid);
                        Some(raw)
                    }
                    Ok(None) => None,
                    Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Err(reaped::lost(self.pid)),
                    Err(e) => return Err(e),
                },
            },
            #[cfg(target_os = "linux")]
            How::Pidfd { fd, claim } => match reap_pidfd(fd.as_raw_fd(), self.pid) {
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => claim.rescue(false)?,
                r => r?,
            },
            How::Poll { claim } => match reap_pid(self.pid) {
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => claim.rescue(false)?,
                r => r?,
            },
        };
        Ok(raw.map(|raw| self.settle(raw)))
    }

    /// Sends SIGKILL, unless the child is known to have exited.
    pub(super) fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        let r = match &self.how {
            // Not reaped (so its pid not recycled) unless the watcher got
            // its status: libev calls the watcher in the same loop
            // iteration as it reaps, before any greenlet runs again.
            How::Libev(l) if l.state.status.get().is_some() => return Ok(()),
            How::Libev(_) | How::Poll { .. } => {
                // SAFETY: kill has no memory effects.
                cvt(unsafe { libc::kill(self.pid, libc::SIGKILL) } as libc::c_long)
            }
            #[cfg(target_os = "linux")]
            How::Pidfd { fd, .. } => {
                // SAFETY: a pidfd we own, a valid signal and no siginfo.
                cvt(unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        fd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0,
                    )
                })
            }
        };
        match r {
            // Exited and reaped already (by someone else): as std, Ok.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Keeps the status found.
    fn settle(&mut self, raw: i32) -> ExitStatus {
        let status = ExitStatus::from_raw(raw);
        self.status = Some(status);
        status
    }
}

impl Drop for Exit {
    /// A child that outlives its handle is reaped in the background when
    /// it exits (see the module docs).
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // Reaped here if it has exited; an error leaves nothing to reap.
        if matches!(self.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        let how = std::mem::replace(&mut self.how, How::Poll { claim: Claim::none() });
        orphan(self.pid, how);
    }
}

/// The watchers that reap children dropped while running, by number.
#[derive(Default)]
struct Orphans {
    next: u64,
    watchers: HashMap<u64, Box<dyn Any>>,
}

thread_local! {
    static ORPHANS: RefCell<Orphans> = RefCell::new(Orphans::default());
}

/// Reaps `pid` when it exits, on this thread's hub, without keeping the
/// hub running for it.
fn orphan(pid: libc::pid_t, how: How) {
    // No hub (the thread is exiting; a child's spawn made it): the child is
    // left to the process.
    let Some(lp) = try_with_hub(|hub| hub.lp.clone()) else { return };
    let Ok(key) = ORPHANS.try_with(|o| {
        let mut o = o.borrow_mut();
        o.next += 1;
        o.next
    }) else {
        return;
    };
    /// Takes the watcher off the table, then drops it (it may be the one
    /// running this).
    fn done(key: u64) {
        let me = ORPHANS.try_with(|o| o.borrow_mut().watchers.remove(&key));
        drop(me);
    }
    let watcher: Box<dyn Any> = match how {
        // libev reaps it.
        How::Libev(_) => return,
        #[cfg(target_os = "linux")]
        How::Pidfd { fd, claim } => {
            let claim = Cell::new(Some(claim));
            let Ok(io) = Io::owning(&lp, fd, Events::READ, move |io, _| {
                if !matches!(reap_pidfd(io.fd(), pid), Ok(None)) {
                    drop(claim.take());
                    done(key);
                }
            }) else {
                return;
            };
            io.set_keeps_loop_alive(false);
            io.start();
            Box::new(io)
        }
        How::Poll { claim } => {
            let claim = Cell::new(Some(claim));
            let timer = Timer::new(&lp, POLL_AT_MOST, POLL_AT_MOST, move |_, _| {
                if !matches!(reap_pid(pid), Ok(None)) {
                    drop(claim.take());
                    done(key);
                }
            });
            timer.set_keeps_loop_alive(false);
            timer.start();
            Box::new(timer)
        }
    };
    let _ = ORPHANS.try_with(|o| o.borrow_mut().watchers.insert(key, watcher));
}

/// `-1` as the OS error.
fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r == -1 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// A pidfd for child `pid`.
#[cfg(target_os = "linux")]
/// Whether the pidfd's process is still an unreaped child of ours
/// (`waitid` with `WNOWAIT` reaps nothing). Kernels without `P_PIDFD`
/// (Linux 5.3) cannot tell: a pidfd opened right after the spawn is then
/// trusted, as before a reap the pid cannot be reused.
#[cfg(target_os = "linux")]
fn still_our_child(fd: &OwnedFd) -> bool {
    // SAFETY: all-zero is a valid siginfo_t for waitid to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a live pidfd and a valid siginfo_t; WNOHANG never blocks.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            fd.as_raw_fd() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD)
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a new fd (close-on-exec, as every pidfd), ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(not(target_os = "linux"))]
fn pidfd_open(_pid: libc::pid_t) -> io::Result<std::convert::Infallible> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Reaps the child of pidfd `fd` if it has exited: its raw wait status.
#[cfg(target_os = "linux")]
fn reap_pidfd(fd: RawFd, pid: libc::pid_t) -> io::Result<Option<i32>> {
    loop {
        // SAFETY: all-zero is a valid siginfo_t (a plain C struct).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a live siginfo_t for the kernel to fill.
        let r = unsafe {
            libc::waitid(libc::P_PIDFD, fd as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG)
        };
        if r == -1 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                // Linux 5.3 has pidfd_open but not P_PIDFD; the pid cannot
                // be recycled while the child is unreaped.
                Some(libc::EINVAL) => return reap_pid(pid),
                _ => return Err(e),
            }
        }
        // SAFETY: waitid filled `info` for a child's state change, or left
        // it zeroed (si_pid 0) if there was none.
        let (rpid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if rpid == 0 {
            return Ok(None);
        }
        return Ok(Some(match code {
            libc::CLD_KILLED => status & 0x7f,
            libc::CLD_DUMPED => (status & 0x7f) | 0x80,
            // CLD_EXITED: WEXITED reports nothing else.
            _ => (status & 0xff) << 8,
        }));
    }
}

/// Reaps child `pid` if it has exited: its raw wait status.
fn reap_pid(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live int for waitpid to fill.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
            _ => return Ok(Some(status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// An `Exit` for a std child, waited for by polling (the path for
    /// kernels without pidfds).
    fn polled(script: &str) -> Exit {
        // As `Command::spawn` does: the thread has a hub from here on.
        let _ = crate::green::hub_loop();
        #[allow(clippy::zombie_processes)] // the Exit reaps it
        let child = std::process::Command::new("sh").args(["-c", script]).spawn().unwrap();
        Exit { pid: child.id() as libc::pid_t, status: None, how: How::Poll { claim: Claim::none() } }
    }

    fn exists(pid: libc::pid_t) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn polling_waits_tries_and_kills() {
        let mut exit = polled("sleep 0.03; exit 3");
        assert_eq!(exit.try_wait().unwrap(), None);
        assert_eq!(exit.wait().unwrap().code(), Some(3));
        assert_eq!(exit.try_wait().unwrap().unwrap().code(), Some(3));

        let mut exit = polled("exec sleep 60");
        exit.kill().unwrap();
        assert_eq!(exit.wait().unwrap().signal(), Some(libc::SIGKILL));
        exit.kill().unwrap();
    }

    #[test]
    fn a_dropped_polled_child_is_reaped_by_a_timer() {
        let exit = polled("sleep 0.03");
        let pid = exit.pid();
        drop(exit);
        assert!(exists(pid));
        let start = Instant::now();
        while exists(pid) {
            assert!(start.elapsed() < Duration::from_secs(10), "the dropped child was never reaped");
            sleep(Duration::from_millis(5));
        }
        // The timer went with the reap.
        assert!(ORPHANS.with(|o| o.borrow().watchers.is_empty()));
    }

    #[test]
    fn a_status_someone_else_took_is_an_error_not_a_hang() {
        let mut exit = polled("exit 0");
        let mut status = 0;
        // SAFETY: waits for our own child, into a live int.
        assert_eq!(unsafe { libc::waitpid(exit.pid, &mut status, 0) }, exit.pid);
        let err = exit.wait().unwrap_err();
        assert!(err.to_string().contains("another waiter"), "{err}");
    }
}
