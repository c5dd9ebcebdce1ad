//! Exit statuses that libev's default loop took from other hubs' children.
//!
//! Once libev's default loop exists, its SIGCHLD handler reaps every child
//! of the process (`waitpid(-1, ..)`) whenever that loop runs, children of
//! other threads included, and hands each status only to the default
//! loop's [`Child`] watchers. A hub on another thread that waits for its
//! child through a pidfd then finds it exited but gone (`ECHILD`).
//!
//! So the default loop's hub keeps a recorder: a `Child` watcher for any
//! pid, started on that hub's first [`spawn`](super::Command::spawn), that
//! copies each status it sees into a process-wide table, where the other
//! hubs' children find theirs. A child of another hub registers a claim
//! right after its spawn if a recorder was running before the spawn began,
//! and then may wait for its entry (a [`oneshot`] wakes it); a child
//! spawned before any recorder ran looks its status up once, and fails
//! when it is not there (see the module docs).
//!
//! The default loop's hub's own children have watchers of their own: the
//! recorder skips them. Entries nobody registered a claim for (children of
//! code that does not use this module, or a child spawned before the
//! recorder started) are dropped after [`UNCLAIMED_FOR`]. A claim only
//! takes an entry recorded after its spawn began, so a recycled pid never
//! receives an older child's status.

use crate::green::{OneshotSender, oneshot};
use crate::{Child, Loop};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an unclaimed status is kept (gevent keeps the statuses its
/// SIGCHLD handling collects as long).
const UNCLAIMED_FOR: Duration = Duration::from_secs(60);

/// How often unclaimed statuses are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The process-wide table.
struct Table {
    /// The running recorder's number, if one runs.
    recorder: Option<u64>,
    /// Recorders started so far.
    recorders: u64,
    /// Statuses the recorder saw, with when, by pid.
    reaped: BTreeMap<libc::pid_t, (i32, Instant)>,
    /// Children of other hubs whose end a running recorder will see, by
    /// pid, with when their spawn began (a recycled pid's newer child
    /// replaces an older one) and the wake-up of the greenlet waiting for
    /// the entry.
    claims: BTreeMap<libc::pid_t, (Instant, Option<OneshotSender<()>>)>,
    /// When unclaimed entries were last looked for.
    pruned: Option<Instant>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    recorder: None,
    recorders: 0,
    reaped: BTreeMap::new(),
    claims: BTreeMap::new(),
    pruned: None,
});

fn table() -> MutexGuard<'static, Table> {
    // Every update leaves the table consistent, so a lock poisoned by a
    // panic elsewhere is used as is.
    TABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Taken just before a spawn on a hub off the default loop.
pub(super) struct Ticket {
    recorder: Option<u64>,
    at: Instant,
}

/// A [`Ticket`] for a spawn about to begin.
pub(super) fn ticket() -> Ticket {
    let recorder = table().recorder;
    Ticket { recorder, at: Instant::now() }
}

impl Ticket {
    /// The claim of `pid`, the child the spawn made.
    pub(super) fn claim(self, pid: libc::pid_t) -> Claim {
        let mut t = table();
        // A recorder that ran before the spawn and still runs sees the
        // child's end, if libev reaps it.
        let recorder = self.recorder.filter(|&r| t.recorder == Some(r));
        if recorder.is_some() {
            t.claims.insert(pid, (self.at, None));
        }
        Claim { pid, since: self.at, recorder }
    }
}

/// A child's way to the status libev's default loop took from it.
pub(super) struct Claim {
    pid: libc::pid_t,
    /// When its spawn began.
    since: Instant,
    /// The recorder that will see its end (the claim is registered).
    recorder: Option<u64>,
}

impl Claim {
    /// A claim that finds nothing (for a child that needs none).
    pub(super) fn none() -> Claim {
        Claim { pid: 0, since: Instant::now(), recorder: None }
    }

    /// The child's status, for a child found exited and already reaped.
    /// With `wait`, parks until the recorder's entry arrives, if it may
    /// still come (libev reaped the child, the default loop's hub has not
    /// run its callback yet); without, `Ok(None)` then.
    ///
    /// Fails when the status is not in the table and no recorder will put
    /// it there.
    ///
    /// # Panics
    ///
    /// As other blocking green calls (a kill unwinds from the wait).
    pub(super) fn rescue(&self, wait: bool) -> io::Result<Option<i32>> {
        loop {
            let (tx, rx) = if wait { Some(oneshot()).unzip() } else { (None, None) };
            // A waiter of an earlier, interrupted wait: dropped unlocked.
            let _earlier = {
                let mut t = table();
                if let Some(&(status, at)) = t.reaped.get(&self.pid)
                    && at >= self.since
                {
                    t.reaped.remove(&self.pid);
                    return Ok(Some(status));
                }
                if self.recorder.is_none() || t.recorder != self.recorder {
                    return Err(lost(self.pid));
                }
                let Some(tx) = tx else { return Ok(None) };
                t.claims.insert(self.pid, (self.since, Some(tx)))
            };
            // Woken by the recorder, or by its end (the sender dropped):
            // the table says which.
            if let Some(rx) = rx {
                let _ = rx.recv();
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.recorder.is_none() {
            return;
        }
        let mut t = table();
        // Unless a newer child with the same pid claimed it since.
        if t.claims.get(&self.pid).is_some_and(|(since, _)| *since == self.since) {
            t.claims.remove(&self.pid);
            if t.reaped.get(&self.pid).is_some_and(|&(_, at)| at >= self.since) {
                t.reaped.remove(&self.pid);
            }
        }
    }
}

/// The error for a child whose status someone else took.
pub(super) fn lost(pid: libc::pid_t) -> io::Error {
    io::Error::other(format!(
        "libev::green::process: child {pid} exited, but another waiter in this process reaped it \
         (libev's default loop reaps every child once it runs; see the libev::green::process docs)"
    ))
}

/// The recorder of the default loop's hub, with the pids of that hub's
/// own children (which have watchers of their own).
struct Recorder {
    _watcher: Child,
    own: Rc<RefCell<HashSet<libc::pid_t>>>,
    number: u64,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// On the default loop's hub, before its child `pid` can be reaped: starts
/// the recorder if it does not run, and tells it to leave `pid` to the
/// caller's own watcher.
pub(super) fn own_child(lp: &Loop, pid: libc::pid_t) -> io::Result<()> {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = Some(Recorder::start(lp)?);
        }
        if let Some(r) = r.as_ref() {
            r.own.borrow_mut().insert(pid);
        }
        Ok(())
    })
}

/// On the default loop's hub, as it is created: starts the recorder, so
/// that the children of other hubs keep their statuses from the start.
/// Without a recorder (it could not be started), such children fail
/// their `wait` with [`lost`]'s error instead of hanging.
pub(crate) fn record_for_other_hubs(lp: &Loop) {
    RECORDER.with(|r| {
        let mut r = r.borrow_mut();
        if r.is_none() {
            *r = Recorder::start(lp).ok();
        }
    });
}

/// On the default loop's hub: its child `pid` was reaped by the module
/// itself, so the recorder will not see it.
pub(super) fn forget_own(pid: libc::pid_t) {
    let _ = RECORDER.try_with(|r| {
        if let Some(r) = r.borrow().as_ref() {
            r.own.borrow_mut().remove(&pid);
        }
    });
}

impl Recorder {
    fn start(lp: &Loop) -> io::Result<Recorder> {
        let own: Rc<RefCell<HashSet<libc::pid_t>>> = Rc::default();
        let mine = own.clone();
        let watcher = Child::new(lp, 0, false, move |c, _| {
            let pid = c.rpid();
            if !mine.borrow_mut().remove(&pid) {
                record(pid, c.rstatus());
            }
        })?;
        // It watches for other hubs' sake: it does not keep this one running.
        watcher.set_keeps_loop_alive(false);
        watcher.start();
        let mut t = table();
        t.recorders += 1;
        let number = t.recorders;
        t.recorder = Some(number);
        Ok(Recorder { _watcher: watcher, own, number })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let waiting: Vec<OneshotSender<()>> = {
            let mut t = table();
            if t.recorder == Some(self.number) {
                t.recorder = None;
            }
            t.claims.values_mut().filter_map(|(_, w)| w.take()).collect()
        };
        // Woken by their senders' drop, the waiters find no recorder.
        drop(waiting);
    }
}

/// Puts a status libev reaped into the table, and wakes its claim's
/// waiter.
fn record(pid: libc::pid_t, status: i32) {
    let now = Instant::now();
    let waiter = {
        let mut t = table();
        t.reaped.insert(pid, (status, now));
        if t.pruned.is_none_or(|p| now.duration_since(p) >= PRUNE_EVERY) {
            t.pruned = Some(now);
            let Table { reaped, claims, .. } = &mut *t;
            reaped.retain(|pid, (_, at)| claims.contains_key(pid) || now.duration_since(*at) < UNCLAIMED_FOR);
        }
        t.claims.get_mut(&pid).and_then(|(_, w)| w.take())
    };
    if let Some(w) = waiter {
        w.send(());
    }
}
