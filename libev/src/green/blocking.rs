//! [`spawn_blocking`]: running blocking work on a thread pool.
//!
//! One process-wide pool of worker threads, started on demand up to a
//! bound ([`set_blocking_threads`]), idle ones exiting after a while. The
//! calling greenlet parks on an [`Async`](crate::Async) watcher of its
//! hub, which the worker sends to when the job is done.
//!
//! Why not a pool crate (`blocking`, `threadpool`, rayon): the pool must
//! start afresh in a forked child, whose copy of any pool says threads
//! exist that do not (see fork.rs: a pool made at another fork
//! generation is dropped); scoped jobs must borrow the caller's stack,
//! which needs the submit to report a job that never ran (no worker could
//! start) so that the caller can refuse instead of leaving a job behind
//! that points into its frame; and the wake-up goes to a libev watcher of
//! the caller's hub, not to a future or a channel. The well-kept crates
//! offer none of the three; this one is about 100 lines.

use super::hub::with_hub;
use super::task::Wake;
use super::wait::park_until;
use crate::{Async, AsyncSender};
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Default bound on the pool's threads (gevent's threadpool default).
pub const DEFAULT_BLOCKING_THREADS: usize = 10;

/// How long an idle worker waits for a job before it exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// The pool: its queue, and how many threads it has and how many idle.
struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
    /// The fork count (`fork.rs`) when this pool was made: a forked child
    /// has none of its parent's threads, so it makes a pool of its own.
    generation: u64,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

/// The current pool (null until first used). Pools are never freed: a
/// forked child leaves its parent's pool (whose lock another thread may
/// have held at the fork) untouched and makes a new one.
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());
static MAX: AtomicUsize = AtomicUsize::new(DEFAULT_BLOCKING_THREADS);

/// The pool of this process.
fn pool() -> &'static Pool {
    let generation = super::fork::generation();
    let p = POOL.load(Ordering::Acquire);
    // SAFETY: pools are leaked boxes, never freed.
    if let Some(pool) = unsafe { p.as_ref() }
        && pool.generation == generation
    {
        return pool;
    }
    new_pool(p, generation)
}

#[cold]
fn new_pool(old: *mut Pool, generation: u64) -> &'static Pool {
    let fresh = Box::leak(Box::new(Pool {
        state: Mutex::new(PoolState { jobs: VecDeque::new(), threads: 0, idle: 0 }),
        work: Condvar::new(),
        generation,
    }));
    match POOL.compare_exchange(old, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(current) => {
            // Another thread made one first: use it, free ours.
            // SAFETY: `fresh` was never published.
            drop(unsafe { Box::from_raw(fresh) });
            // SAFETY: pools are leaked boxes, never freed.
            unsafe { &*current }
        }
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sets the most threads [`spawn_blocking`] may use at once (at least 1;
/// default [`DEFAULT_BLOCKING_THREADS`]). Jobs beyond it wait their turn.
pub fn set_blocking_threads(max: usize) {
    MAX.store(max.max(1), Ordering::Relaxed);
}

/// Queues `job`, starting a worker if none is idle and the bound allows.
/// Fails, with the job taken back out, if no worker runs and none can be
/// started. The lock is held while a worker starts (it waits for the lock
/// before its first job), so the job taken back is this call's own, and a
/// job left queued always has a worker to run it.
fn submit(job: Job) -> std::io::Result<()> {
    let pool = pool();
    let mut st = pool.lock();
    st.jobs.push_back(job);
    if st.idle > 0 {
        pool.work.notify_one();
    } else if st.threads < MAX.load(Ordering::Relaxed) {
        match thread::Builder::new().name("libev-blocking".into()).spawn(move || worker(pool)) {
            Ok(_) => st.threads += 1,
            // With no worker at all, nothing would ever run it.
            Err(e) if st.threads == 0 => {
                st.jobs.pop_back();
                return Err(e);
            }
            // A running worker takes it in turn.
            Err(_) => {}
        }
    }
    Ok(())
}

fn worker(pool: &'static Pool) {
    let mut st = pool.lock();
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = pool.lock();
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = pool.work.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

/// An async watcher of this hub that wakes the current greenlet, and its
/// sender for the worker thread.
fn waker() -> (Async, AsyncSender) {
    with_hub(|hub| {
        let me = hub.current();
        let w = Async::new(&hub.lp, move |_, _| with_hub(|h| h.wake(&me, Wake::Normal)));
        w.start();
        let sender = w.sender();
        (w, sender)
    })
}

/// Runs `f` on the blocking thread pool and parks only the calling
/// greenlet until it returns (gevent's threadpool). Use it for work that
/// would block the whole thread: file I/O, CPU-heavy computation, C
/// libraries that block.
///
/// ```
/// let n = libev::green::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()).unwrap_or(0));
/// assert!(n > 0);
/// ```
///
/// Where no green call waits (in a destructor during an unwind) `f` runs
/// on the calling thread instead.
///
/// # Panics
///
/// Re-raises a panic of `f` in the caller; panics if no worker thread
/// can be started. If the greenlet is killed or times out while waiting,
/// `f` still runs to completion on its thread and its result is dropped.
pub fn spawn_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    if !super::hub::can_switch() {
        return f();
    }
    let result: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let (watcher, sender) = waker();
    let slot = result.clone();
    submit(Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        sender.send();
    }))
    .unwrap_or_else(|e| panic!("libev::green::spawn_blocking: cannot start a worker thread: {e}"));
    let lock = || result.lock().unwrap_or_else(|e| e.into_inner());
    park_until(None, &"spawn_blocking", || lock().is_some());
    drop(watcher);
    let r = lock().take().expect("a finished job stored its result");
    r.unwrap_or_else(|p| panic::resume_unwind(p))
}

/// What a scoped job shares with its caller: completion, under a lock
/// the caller can also wait on with the OS thread.
struct Done {
    flag: Mutex<bool>,
    cond: Condvar,
}

/// Like [`spawn_blocking`], but `f` may borrow from the caller's stack
/// (name resolution takes `impl ToSocketAddrs`, often a `&str`; file I/O
/// a buffer). The caller does not leave until `f` has finished and been
/// dropped, and then returns its result: a kill or timeout that arrives
/// meanwhile stays pending for the caller's next blocking call (as a
/// waiter served just before an interrupt keeps what it got), so what `f`
/// read or wrote is not lost. `what` names the wait in diagnostics.
pub(crate) fn spawn_blocking_scoped<'a, T: Send + 'a>(
    what: &'static str,
    f: impl FnOnce() -> T + Send + 'a,
) -> T {
    if !super::hub::can_switch() {
        return f();
    }
    with_hub(|hub| hub.check_can_block(&what));
    let mut result: Option<thread::Result<T>> = None;
    let done = Arc::new(Done { flag: Mutex::new(false), cond: Condvar::new() });
    let (watcher, sender) = waker();

    /// The result slot's address, sent to the worker.
    struct SlotPtr<T>(*mut Option<thread::Result<T>>);
    // SAFETY: the slot is written by the worker only, while the caller
    // waits without touching it (it reads only after `done` is set).
    unsafe impl<T: Send> Send for SlotPtr<T> {}

    let slot = SlotPtr(&mut result);
    let finished = done.clone();
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let slot = slot;
        // `f` is consumed (and whatever it borrowed released) in here.
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        // SAFETY: the caller keeps `result` alive and untouched until
        // `done` is set below (see the guard in the caller).
        unsafe { *slot.0 = Some(r) };
        *finished.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        finished.cond.notify_one();
        sender.send();
    });
    // SAFETY: the job borrows for `'a`; the caller does not return or
    // unwind past this frame before the job has set `done` (the `Wait`
    // guard blocks the thread if the green wait unwinds), and after that
    // the job touches only its own `'static` captures.
    let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) };
    submit(job).unwrap_or_else(|e| panic!("libev::green: cannot start a blocking worker thread: {e}"));

    /// Blocks the OS thread until the job is done, if the green wait
    /// below ends early (it cannot, but soundness must not rely on it).
    struct Wait<'d>(&'d Done);
    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            let mut flag = self.0.flag.lock().unwrap_or_else(|e| e.into_inner());
            while !*flag {
                flag = self.0.cond.wait(flag).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
    let guard = Wait(&done);
    let is_done = || *done.flag.lock().unwrap_or_else(|e| e.into_inner());
    with_hub(|hub| {
        let me = hub.current();
        while !is_done() {
            // An interrupt stays pending (see the docs above).
            hub.park(&me, &what);
        }
    });
    drop(guard);
    drop(watcher);
    let r = result.take().expect("a finished job stored its result");
    r.unwrap_or_else(|p| panic::resume_unwind(p))
}
