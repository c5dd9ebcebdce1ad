//! The blocking monitor (gevent's `monitor_thread` with
//! `max_blocking_time`, Tornado's `set_blocking_signal_threshold`): notices
//! when a hub has gone longer than a threshold without switching
//! greenlets, and reports which greenlet was running.
//!
//! A greenlet that blocks its thread (a `std::thread::sleep`, a blocking
//! syscall, a long computation without a green call) stops every other
//! greenlet of its hub. [`start`] watches the calling thread's hub from a
//! process-wide monitor thread; the first time in an episode that the hub
//! has run the same greenlet for longer than the threshold, without a
//! switch and without waiting in its loop, the monitor calls the report
//! handler ([`set_handler`]; by default a line on stderr) with a
//! [`BlockingReport`]: the greenlet's id, name, the place it was spawned
//! (`#[track_caller]` on [`spawn`](super::spawn) and the other spawning
//! calls) and how long it has held the hub so far. The episode ends at the
//! hub's next switch.
//!
//! What the hub does for it: nothing more per switch than it does anyway
//! (its scheduler counts resumptions and points at the running greenlet;
//! both are atomics the monitor thread reads), plus marking the time it
//! waits in its loop as idle. The monitor thread samples each watched hub
//! four times per threshold, so a report comes between one and one and a
//! quarter thresholds into the episode. The hub's own callbacks (raw
//! watchers on [`hub_loop`](super::hub_loop)) run inside its loop
//! iteration and count as idle, as gevent's monitor does not see them
//! either.
//!
//! The report handler runs on the monitor thread, while the blocking goes
//! on: it must not wait for the blocked hub. A panic in it is printed and
//! the monitor goes on.
//!
//! After `fork` the child has no monitor thread and its hub is not
//! watched: call [`start`] there again (the report handler is kept).
//!
//! ```
//! use libev::green::{self, monitor};
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let s = seen.clone();
//! monitor::set_handler(move |r: &monitor::BlockingReport| s.lock().unwrap().push(r.greenlet_name.clone()));
//! monitor::start(Duration::from_millis(50))?;
//! let g = green::Builder::new()
//!     .name("sleeper")
//!     .spawn(|| std::thread::sleep(Duration::from_millis(200)))?;
//! g.join().unwrap();
//! monitor::stop();
//! assert_eq!(*seen.lock().unwrap(), [Some("sleeper".to_owned())]);
//! # Ok::<(), std::io::Error>(())
//! ```

use super::hub::with_hub;
use super::task::Task;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

/// gevent's default `max_blocking_time`: 100 ms.
pub const DEFAULT_MAX_BLOCKING_TIME: Duration = Duration::from_millis(100);

/// What the monitor found: a hub that ran one greenlet (or its root) for
/// longer than its threshold without switching.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlockingReport {
    /// The name of the hub's thread, if it has one.
    pub thread_name: Option<String>,
    /// The running greenlet's id ([`Greenlet::id`](super::Greenlet::id));
    /// 0 for the thread's own stack (the root).
    pub greenlet_id: u64,
    /// Its name ([`Builder::name`](super::Builder::name)); `"root"` for the
    /// thread's own stack.
    pub greenlet_name: Option<String>,
    /// Where it was spawned; `None` for the root.
    pub spawned_at: Option<&'static Location<'static>>,
    /// How long the hub had gone without a switch when the monitor noticed
    /// (at least the threshold).
    pub blocked_for: Duration,
}

impl fmt::Display for BlockingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the hub of thread '{}' ", self.thread_name.as_deref().unwrap_or("<unnamed>"))?;
        write!(f, "has not switched for {} ms: greenlet {}", self.blocked_for.as_millis(), self.greenlet_id)?;
        if let Some(name) = &self.greenlet_name {
            write!(f, " ({name})")?;
        }
        match self.spawned_at {
            Some(at) => write!(f, ", spawned at {at},")?,
            None => write!(f, " (the thread's own stack)")?,
        }
        write!(f, " is blocking it")
    }
}

type Handler = Arc<dyn Fn(&BlockingReport) + Send + Sync>;

/// The report handler; `None`: print to stderr.
static HANDLER: RwLock<Option<Handler>> = RwLock::new(None);

/// Sets the process-wide report handler, which the monitor thread calls
/// once per blocking episode of any watched hub (see the module docs).
pub fn set_handler(handler: impl Fn(&BlockingReport) + Send + Sync + 'static) {
    let old = HANDLER.write().unwrap_or_else(PoisonError::into_inner).replace(Arc::new(handler));
    drop(old);
}

/// Goes back to the default report handler, which prints the report to
/// stderr.
pub fn reset_handler() {
    let old = HANDLER.write().unwrap_or_else(PoisonError::into_inner).take();
    drop(old);
}

/// Starts watching the calling thread's hub (creating it if needed) with
/// `threshold` as its longest allowed time without a switch (gevent's
/// `max_blocking_time`; [`DEFAULT_MAX_BLOCKING_TIME`] is gevent's
/// default), starting the monitor thread on first use. Called again, it
/// changes the threshold.
///
/// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) for a zero
/// threshold, or if the monitor thread cannot be started.
pub fn start(threshold: Duration) -> io::Result<()> {
    if threshold.is_zero() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the blocking threshold must be above zero"));
    }
    let beat = with_hub(|hub| hub.beat().clone());
    // The threshold first: `watch` wakes the monitor thread, which must
    // see it (a hub seen unwatched gives it no reason to wake again).
    with_hub(|hub| hub.set_watched(true, threshold));
    match monitor() {
        Ok(m) => m.watch(&beat),
        Err(e) => {
            stop();
            return Err(e);
        }
    }
    Ok(())
}

/// Stops watching the calling thread's hub (nothing if it was not).
pub fn stop() {
    with_hub(|hub| hub.set_watched(false, Duration::ZERO));
}

/// Whether the calling thread's hub is watched.
pub fn is_started() -> bool {
    with_hub(|hub| hub.beat().threshold().is_some())
}

/// A hub's heartbeat, shared with the monitor thread: what the hub's
/// scheduler does anyway (count resumptions, point at the running
/// greenlet), in atomics that only the hub's thread writes, with plain
/// stores; so watching costs the hub nothing per switch.
pub(crate) struct Beat {
    /// Resumptions so far.
    resumes: AtomicU64,
    /// The running task (the root's while the root runs).
    pub(crate) current: AtomicPtr<Task>,
    /// The root's task, which is never read through: it dies with the hub,
    /// which the beat may outlive.
    root: usize,
    /// The hub waits in its loop's poll.
    idle: AtomicBool,
    /// The threshold in nanoseconds; 0 while not watched.
    threshold_ns: AtomicU64,
    /// The monitor reads the running task's record (see `before_free`).
    inspecting: AtomicBool,
    thread_name: Option<String>,
}

impl Beat {
    pub(crate) fn new(root: &Rc<Task>) -> Beat {
        Beat {
            resumes: AtomicU64::new(0),
            current: AtomicPtr::new(Rc::as_ptr(root).cast_mut()),
            root: Rc::as_ptr(root) as usize,
            idle: AtomicBool::new(false),
            threshold_ns: AtomicU64::new(0),
            inspecting: AtomicBool::new(false),
            thread_name: std::thread::current().name().map(str::to_owned),
        }
    }

    /// Counts a resumption; returns the count. Only the hub's thread
    /// writes it: a plain load and store, no read-modify-write.
    #[inline(always)]
    pub(crate) fn count_resume(&self) -> u64 {
        let n = self.resumes.load(Ordering::Relaxed).wrapping_add(1);
        self.resumes.store(n, Ordering::Relaxed);
        n
    }

    /// Resumptions so far.
    #[inline(always)]
    pub(crate) fn resumes(&self) -> u64 {
        self.resumes.load(Ordering::Relaxed)
    }

    /// The hub starts or stops waiting in its loop.
    #[inline(always)]
    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    pub(crate) fn start(&self, threshold: Duration) {
        let ns = threshold.as_nanos().clamp(1, u64::MAX as u128) as u64;
        self.threshold_ns.store(ns, Ordering::SeqCst);
    }

    /// Stops the watching; returns once no inspection runs, and none can
    /// start (an inspection checks the threshold after raising its flag,
    /// this waits for the flag after clearing the threshold).
    pub(crate) fn stop(&self) {
        self.threshold_ns.store(0, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.wait_inspection();
    }

    /// Waits while the monitor reads a task (a few loads; its thread may
    /// be descheduled meanwhile, so spinning gives way after a while).
    fn wait_inspection(&self) {
        let mut spins = 0u32;
        while self.inspecting.load(Ordering::SeqCst) {
            if spins < 100 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// In a forked child (the monitor thread is gone, possibly in the
    /// middle of an inspection): not watched, no inspection running.
    /// Only stores, as a fork handler must.
    pub(crate) fn reset_after_fork(&self) {
        self.threshold_ns.store(0, Ordering::SeqCst);
        self.inspecting.store(false, Ordering::SeqCst);
    }

    /// Called by the hub, while watched, before it may free a task that
    /// just ended (after `current` points away from it): waits while the
    /// monitor reads a task. With the fences on both sides, either the
    /// monitor's read of `current` sees the hub's store (not this task),
    /// or the hub sees the monitor's flag and waits for it to drop.
    #[cold]
    pub(crate) fn before_free(&self) {
        fence(Ordering::SeqCst);
        self.wait_inspection();
    }

    fn threshold(&self) -> Option<Duration> {
        let ns = self.threshold_ns.load(Ordering::Relaxed);
        (ns != 0).then(|| Duration::from_nanos(ns))
    }

    /// The report for a hub stuck at `resumes`, unless it moved on or
    /// stopped being watched meanwhile. Runs on the monitor thread.
    fn report(&self, resumes: u64, blocked_for: Duration) -> Option<BlockingReport> {
        self.inspecting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // The threshold first: read non-zero, it orders after this read
        // everything the hub did before its `start` (tasks it freed while
        // not watched included), so `current` below is not older.
        let watched = self.threshold_ns.load(Ordering::SeqCst) != 0;
        let running = self.current.load(Ordering::Acquire);
        let still =
            watched && self.resumes.load(Ordering::SeqCst) == resumes && !self.idle.load(Ordering::SeqCst);
        let who = still.then(|| {
            if running as usize == self.root {
                (0, Some("root".to_owned()), None)
            } else {
                // SAFETY: `running` was the hub's current task after this
                // thread raised `inspecting` and saw the hub watched: the
                // hub frees such a task only after `before_free` (or
                // `stop`) saw the flag down, and the hub itself is alive
                // while watched (its teardown stops the watching first).
                // The task's fields were written before the hub's release
                // store of `current`, which the acquire load above read;
                // only fields that never change after that are read.
                let t = unsafe { &*running };
                (t.id, t.name.clone(), t.spawned_at)
            }
        });
        self.inspecting.store(false, Ordering::SeqCst);
        let (greenlet_id, greenlet_name, spawned_at) = who?;
        Some(BlockingReport {
            thread_name: self.thread_name.clone(),
            greenlet_id,
            greenlet_name,
            spawned_at,
            blocked_for,
        })
    }
}

/// The monitor thread's state. One per process; a forked child starts a
/// new one (the parent's may be locked by a thread the child does not
/// have), see [`forget_after_fork`].
struct Monitor {
    watched: Mutex<Watched>,
    wake: Condvar,
}

#[derive(Default)]
struct Watched {
    hubs: Vec<Watch>,
    thread_started: bool,
}

/// One hub as the monitor thread last saw it.
struct Watch {
    beat: Weak<Beat>,
    switches: u64,
    since: Instant,
    reported: bool,
}

static MONITOR: AtomicPtr<Monitor> = AtomicPtr::new(ptr::null_mut());

/// Called in a forked child (it only stores): the next `start` makes a new
/// monitor and thread there; the parent's is leaked in the child.
pub(crate) fn forget_after_fork() {
    MONITOR.store(ptr::null_mut(), Ordering::Release);
}

/// The process's monitor, made on first use.
fn monitor() -> io::Result<&'static Monitor> {
    let mut m = MONITOR.load(Ordering::Acquire);
    if m.is_null() {
        let fresh = Box::into_raw(Box::new(Monitor { watched: Mutex::default(), wake: Condvar::new() }));
        m = match MONITOR.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh,
            Err(won) => {
                // SAFETY: ours, never shared.
                drop(unsafe { Box::from_raw(fresh) });
                won
            }
        };
    }
    // SAFETY: monitors are leaked, never freed.
    let m: &'static Monitor = unsafe { &*m };
    let mut w = m.watched.lock().unwrap_or_else(PoisonError::into_inner);
    if !w.thread_started {
        std::thread::Builder::new().name("libev-green-monitor".into()).spawn(move || m.run())?;
        w.thread_started = true;
    }
    Ok(m)
}

impl Monitor {
    fn watch(&self, beat: &Arc<Beat>) {
        let mut w = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if !w.hubs.iter().any(|h| ptr::eq(h.beat.as_ptr(), Arc::as_ptr(beat))) {
            let switches = beat.resumes.load(Ordering::Relaxed);
            w.hubs.push(Watch {
                beat: Arc::downgrade(beat),
                switches,
                since: Instant::now(),
                reported: false,
            });
        }
        drop(w);
        // A shorter threshold may need a shorter tick.
        self.wake.notify_one();
    }

    /// The monitor thread.
    fn run(&self) {
        let mut w = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let (reports, tick) = w.sample(Instant::now());
            if !reports.is_empty() {
                drop(w);
                reports.iter().for_each(deliver);
                w = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
            }
            w = match tick {
                Some(t) => self.wake.wait_timeout(w, t).unwrap_or_else(PoisonError::into_inner).0,
                None => self.wake.wait(w).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

impl Watched {
    /// One look at every watched hub: the reports due, and how long to
    /// sleep until the next look (`None`: no hub is watched).
    fn sample(&mut self, now: Instant) -> (Vec<BlockingReport>, Option<Duration>) {
        self.hubs.retain(|h| h.beat.strong_count() > 0);
        let mut reports = Vec::new();
        let mut tick: Option<Duration> = None;
        for h in &mut self.hubs {
            let Some(beat) = h.beat.upgrade() else { continue };
            let switches = beat.resumes.load(Ordering::Relaxed);
            let Some(threshold) = beat.threshold() else {
                h.switches = switches;
                h.since = now;
                continue;
            };
            let every = (threshold / 4).max(Duration::from_micros(500));
            tick = Some(tick.map_or(every, |t| t.min(every)));
            if switches != h.switches || beat.idle.load(Ordering::Relaxed) {
                (h.switches, h.since, h.reported) = (switches, now, false);
                continue;
            }
            let blocked_for = now.duration_since(h.since);
            if blocked_for >= threshold
                && !h.reported
                && let Some(r) = beat.report(switches, blocked_for)
            {
                h.reported = true;
                reports.push(r);
            }
        }
        (reports, tick)
    }
}

/// Hands `report` to the handler, on the monitor thread.
fn deliver(report: &BlockingReport) {
    let handler = HANDLER.read().unwrap_or_else(PoisonError::into_inner).clone();
    let run = panic::catch_unwind(AssertUnwindSafe(|| match handler {
        Some(h) => h(report),
        None => eprintln!("libev::green: {report}"),
    }));
    if run.is_err() {
        eprintln!("libev::green: the blocking monitor's report handler panicked (the monitor goes on)");
    }
}
