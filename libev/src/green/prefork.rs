//! Servers on worker processes: [`PreforkServer`] binds the listening
//! sockets, forks N workers that each serve one with a hub and a
//! [`StreamServer`] of their own, and supervises them (gunicorn's
//! `-w N -k gevent`).
//!
//! The design is in [`PreforkServer`]'s docs, where users read it.

use super::StreamServer;
use super::threaded::{bind_sockets, parse_count};
use crate::green::net::{TcpListener, TcpStream};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitStatus;
use std::ptr::NonNull;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a stopping worker may run past its graceful timeout before
/// the parent kills it.
const KILL_MARGIN: Duration = Duration::from_secs(1);
/// The default graceful timeout (the examples' grace).
const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// The default restart limit: systemd's `StartLimitBurst` in its
/// `StartLimitIntervalSec`.
const DEFAULT_BURST: u32 = 5;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// A worker's exit status when its factory or server panicked (Rust's
/// status for a panicking `main`).
const PANICKED: i32 = 101;

/// How many worker processes a [`PreforkServer`] runs: a count, or one
/// per core.
///
/// Parses from `"all"` or a positive number, as a `--processes` option
/// would give it.
///
/// ```
/// use libev::green::server::Processes;
///
/// assert_eq!("2".parse::<Processes>()?, Processes::Count(2));
/// assert_eq!("all".parse::<Processes>()?.get()?, std::thread::available_parallelism()?.get());
/// assert!("0".parse::<Processes>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Processes {
    /// Exactly this many (at least 1).
    Count(usize),
    /// One per core the process may use
    /// ([`std::thread::available_parallelism`]; 1 where that is unknown).
    All,
}

impl Processes {
    /// The number of processes; fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for `Count(0)`.
    pub fn get(self) -> io::Result<usize> {
        match self {
            Processes::Count(0) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "a prefork server needs at least 1 worker"))
            }
            Processes::Count(n) => Ok(n),
            Processes::All => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

impl From<usize> for Processes {
    fn from(n: usize) -> Processes {
        Processes::Count(n)
    }
}

impl FromStr for Processes {
    type Err = io::Error;

    /// `"all"` or a positive number.
    fn from_str(s: &str) -> io::Result<Processes> {
        Ok(parse_count(s, "processes")?.map_or(Processes::All, Processes::Count))
    }
}

impl fmt::Display for Processes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Processes::Count(n) => write!(f, "{n}"),
            Processes::All => f.write_str("all"),
        }
    }
}

/// What the parent of a [`PreforkServer`] saw or did, for its [event
/// handler](PreforkServer::event_handler). Workers are numbered by slot,
/// from 0; a restarted worker takes the slot of the one it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// Worker `worker` started as process `pid`.
    Started {
        /// The slot.
        worker: usize,
        /// The worker's process id.
        pid: u32,
    },
    /// Worker `worker` (process `pid`) ended with `status`. Unless the
    /// server is stopping, a `Started` (a restart) or a `GaveUp` follows.
    Exited {
        /// The slot.
        worker: usize,
        /// The worker's process id.
        pid: u32,
        /// How it ended; `None` if something else in the process reaped
        /// it first (`SIGCHLD` set to `SIG_IGN`, a `waitpid(-1)`).
        status: Option<ExitStatus>,
    },
    /// Signal `signal` asked the server to stop: every worker was sent
    /// `SIGTERM`.
    Stopping {
        /// `SIGTERM` or `SIGINT`.
        signal: i32,
    },
    /// Worker `worker` (process `pid`) still ran after its graceful
    /// timeout: it was sent `SIGKILL`.
    Killed {
        /// The slot.
        worker: usize,
        /// The worker's process id.
        pid: u32,
    },
    /// A worker died after `restarts` restarts within `interval`: the
    /// server stops its other workers and fails.
    GaveUp {
        /// The restart limit's burst.
        restarts: u32,
        /// The restart limit's interval.
        interval: Duration,
    },
}

impl fmt::Display for WorkerEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerEvent::Started { worker, pid } => write!(f, "worker {worker} started (pid {pid})"),
            WorkerEvent::Exited { worker, pid, status: Some(status) } => {
                write!(f, "worker {worker} (pid {pid}) ended: {status}")
            }
            WorkerEvent::Exited { worker, pid, status: None } => {
                write!(f, "worker {worker} (pid {pid}) ended, reaped by something else: status unknown")
            }
            WorkerEvent::Stopping { signal } => write!(f, "signal {signal}: stopping the workers gracefully"),
            WorkerEvent::Killed { worker, pid } => {
                write!(f, "worker {worker} (pid {pid}) outlived its graceful timeout: killed")
            }
            WorkerEvent::GaveUp { restarts, interval } => write!(
                f,
                "a worker died after {restarts} restarts within {interval:?}: giving up, stopping the others"
            ),
        }
    }
}

/// Per-slot connection counters in memory shared with the workers (an
/// anonymous `MAP_SHARED` mapping, which `fork` shares, not copies).
struct SharedCounts {
    ptr: NonNull<Counter>,
    len: usize,
}

/// A counter on its own cache line (one worker writes it).
#[repr(align(64))]
struct Counter(AtomicU64);

impl SharedCounts {
    fn new(len: usize) -> io::Result<SharedCounts> {
        let bytes = len * size_of::<Counter>();
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<Counter>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(SharedCounts { ptr, len })
    }

    fn get(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len);
        // SAFETY: `i` is in bounds of the mapping, which is page-aligned
        // (so each Counter is aligned), zero-filled by the kernel (a valid
        // AtomicU64) and mapped until `self` drops; other processes touch
        // it only through atomics.
        unsafe { &(*self.ptr.as_ptr().add(i)).0 }
    }

    fn load(&self) -> Vec<u64> {
        (0..self.len).map(|i| self.get(i).load(Ordering::Relaxed)).collect()
    }
}

impl Drop for SharedCounts {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; no
        // reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len * size_of::<Counter>()) };
    }
}

type Handler = Box<dyn Fn(TcpStream, SocketAddr)>;

/// A TCP server on worker processes: the parent binds a listening socket
/// per worker (`SO_REUSEPORT`) and forks `workers` processes, each with
/// its own hub and its own [`StreamServer`] on its inherited socket,
/// running the handler the factory builds in that worker; the parent
/// supervises them (gunicorn's `-w N -k gevent`).
///
/// - [`serve_forever`](PreforkServer::serve_forever) forks the workers
///   and supervises them until `SIGTERM` or `SIGINT`: it restarts a
///   worker that dies (within a [limit](PreforkServer::restart_limit)),
///   and on the signal stops every worker gracefully.
/// - It must be called while the process has one thread (see below); it
///   fails with [`InvalidInput`](io::ErrorKind::InvalidInput)
///   otherwise.
/// - Workers share nothing but the port: state the factory builds is
///   per process.
///
/// ```
/// use libev::green::server::{PreforkServer, Processes, WorkerEvent};
/// use std::cell::RefCell;
/// use std::io::{Read, Write};
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// // In `main`, before any thread: 2 workers, each with its own hub.
/// let server = PreforkServer::bind("127.0.0.1:0", Processes::Count(2), || {
///     let pid = std::process::id(); // the worker's
///     move |mut stream: libev::green::net::TcpStream, _peer| {
///         let _ = write!(stream, "hello from {pid}");
///     }
/// })?
/// .graceful_timeout(Duration::from_secs(10));
///
/// // Here the parent itself, once both workers run, is a client (the
/// // handler runs in the parent), then stops the server as `kill -TERM`
/// // would.
/// let addr = server.local_addr()?;
/// let reply = Rc::new(RefCell::new(String::new()));
/// let seen = reply.clone();
/// let server = server.event_handler(move |event| {
///     if let WorkerEvent::Started { worker: 1, .. } = event {
///         let mut client = std::net::TcpStream::connect(addr).unwrap();
///         client.read_to_string(&mut seen.borrow_mut()).unwrap();
///         // SAFETY: raising a signal the server handles.
///         unsafe { libc::raise(libc::SIGTERM) };
///     }
/// });
/// // Until SIGTERM or SIGINT; then every worker has stopped.
/// server.serve_forever()?;
/// assert!(reply.borrow().starts_with("hello from "));
/// assert_eq!(server.connections_served().iter().sum::<u64>(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Design
///
/// - **Bind once, fork.** The parent binds every socket before any fork,
///   one per worker slot, all on the same address with `SO_REUSEPORT`,
///   as [`ThreadedStreamServer`](super::ThreadedStreamServer) does (with
///   its probe, so a port in use fails `bind`); each worker inherits them
///   and serves its slot's. The kernel spreads connections over the
///   sockets by a hash of the peer's address and port, so no worker wakes
///   for another's connection: one listener shared by the workers would
///   wake every worker for every connection, because libev cannot
///   register it with `EPOLLEXCLUSIVE` (`docs/scaling.md` in the
///   repository measures both, on threads). The parent keeps its copy of
///   each socket open while it serves, so connections hashed to a slot
///   whose worker died wait in that socket's backlog for the replacement
///   instead of being reset. Workers share nothing else: no memory but
///   the counters below, no lock, no hub.
/// - **Only a single-threaded process forks.** A forked child has one
///   thread, the one that called `fork`; a lock another thread held at
///   the fork (the allocator's, stdout's, a pool's queue) stays held in
///   the child for good, and the worker goes on running Rust, not `exec`.
///   So before each fork the parent counts its threads
///   (`/proc/self/status`) and refuses with
///   [`InvalidInput`](io::ErrorKind::InvalidInput) if it has more than
///   one. Threads of this crate count too: the blocking pool's (started
///   by [`spawn_blocking`](crate::green::spawn_blocking) and name
///   lookups; idle ones exit after 10 s), the
///   [monitor](crate::green::monitor)'s and a
///   [`ThreadedStreamServer`](super::ThreadedStreamServer)'s. [`bind`]
///   resolves a name with std's blocking lookup for that reason. Linux
///   and Android only: elsewhere a process cannot count its threads.
/// - **The parent runs no greenlets while it supervises.**
///   [`serve_forever`](PreforkServer::serve_forever) blocks the calling
///   thread (not only the greenlet) in `sigtimedwait`, with `SIGCHLD`,
///   `SIGTERM` and `SIGINT` blocked (and `SIGCHLD` set back to its
///   default meanwhile if it was ignored, which would make the kernel
///   reap the workers unseen). So the parent's hub, if it has one,
///   is the same at every fork, restarts included: each worker starts
///   from the state the parent had when `serve_forever` was called.
///   Greenlets alive then go on in every worker too; start none. Best,
///   use nothing green in the parent before `serve_forever` (the
///   examples do not): libev keeps a `signalfd` across `fork` (its
///   manual says nothing needs doing), so where the parent's hub opened
///   one, parent and workers share it, and a worker starting or stopping
///   a signal watcher changes the set of signals it reports for the
///   parent too.
/// - **A worker** restores the signal mask, closes its copies of the
///   other slots' sockets (else they would listen on through its
///   graceful stop), wraps its own in a green [`TcpListener`], calls the
///   factory for its
///   handler, serves on a [`StreamServer`] and stops it gracefully on
///   `SIGTERM` or `SIGINT` (no new connections, the [graceful
///   timeout](PreforkServer::graceful_timeout) for those in flight), then
///   leaves with `_exit`: 0 after a stop, 1 if serving failed, 101 if the
///   factory or the server panicked. `_exit` skips destructors and
///   `atexit` handlers, which are the parent's to run. A worker also
///   gets `SIGTERM` if the parent dies (`PR_SET_PDEATHSIG`).
/// - **Restarts.** A worker that exits while the server is not stopping
///   (whatever its status, a `kill -9` included) is replaced at once by
///   a new one in the same slot. To keep a worker that crashes as it
///   starts from forking in a tight loop, at most `burst` restarts may
///   happen within any `interval` ([`restart_limit`], by default 5 in
///   10 s, systemd's `StartLimitBurst` and `StartLimitIntervalSec`): the
///   next death within it makes the parent give up, stop the other
///   workers gracefully, and return an error that says so.
/// - **Stopping.** On `SIGTERM` or `SIGINT` the parent closes its copies
///   of the sockets, sends `SIGTERM` to every worker, waits for them,
///   and sends `SIGKILL` to those still running one second after their
///   graceful timeout; then
///   `serve_forever` returns `Ok`. Further signals while stopping are
///   taken and ignored.
/// - **Counters.** Each worker slot counts the connections it accepted in
///   a page of memory shared by the parent and the workers
///   ([`connections_served`](PreforkServer::connections_served)).
///
/// [`bind`]: PreforkServer::bind
/// [`restart_limit`]: PreforkServer::restart_limit
pub struct PreforkServer {
    /// One listening socket per worker slot, until the stop.
    sockets: RefCell<Vec<OwnedFd>>,
    local: SocketAddr,
    workers: usize,
    factory: Box<dyn Fn() -> Handler>,
    grace: Duration,
    max_connections: Option<usize>,
    burst: u32,
    interval: Duration,
    on_event: Box<dyn Fn(&WorkerEvent)>,
    counts: Rc<SharedCounts>,
    restarts: Cell<u64>,
    serving: Cell<bool>,
}

impl PreforkServer {
    /// Binds one listening socket per worker to `addr` (each address it
    /// resolves to in turn, with std's blocking lookup, which starts no
    /// thread; port 0 picks one free port for all), not yet serving.
    /// `factory` runs once in each worker as it starts and returns that
    /// worker's handler. Fails with `AddrInUse` if anything else holds
    /// the port, and with [`InvalidInput`](io::ErrorKind::InvalidInput)
    /// for `Processes::Count(0)`.
    pub fn bind<A, F, H>(addr: A, workers: Processes, factory: F) -> io::Result<PreforkServer>
    where
        A: ToSocketAddrs,
        F: Fn() -> H + 'static,
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let n = workers.get()?;
        let mut last = None;
        let mut bound = None;
        for a in addr.to_socket_addrs()? {
            match bind_sockets(&a, n, true) {
                Ok(r) => {
                    bound = Some(r);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let (sockets, local) = match (bound, last) {
            (Some(r), _) => r,
            (None, Some(e)) => return Err(e),
            (None, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "could not resolve to any addresses",
                ));
            }
        };
        let on_event: Box<dyn Fn(&WorkerEvent)> =
            Box::new(move |e: &WorkerEvent| eprintln!("libev::green::server: PreforkServer on {local}: {e}"));
        Ok(PreforkServer {
            sockets: RefCell::new(sockets),
            local,
            workers: n,
            factory: Box::new(move || Box::new(factory()) as Handler),
            grace: DEFAULT_GRACE,
            max_connections: None,
            burst: DEFAULT_BURST,
            interval: DEFAULT_INTERVAL,
            on_event,
            counts: Rc::new(SharedCounts::new(n)?),
            restarts: Cell::new(0),
            serving: Cell::new(false),
        })
    }

    /// How long a stopping worker gives the connections in flight before
    /// it kills their greenlets (see [`StreamServer::stop`]); default
    /// 5 s. The parent kills a worker still running one second later.
    pub fn graceful_timeout(mut self, timeout: Duration) -> PreforkServer {
        self.grace = timeout;
        self
    }

    /// Runs at most `n` handlers at once in each worker (see
    /// [`StreamServer::max_connections`]).
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn max_connections(mut self, n: usize) -> PreforkServer {
        assert!(n > 0, "PreforkServer::max_connections: the cap must be at least 1");
        self.max_connections = Some(n);
        self
    }

    /// Allows at most `burst` worker restarts within any `interval`; the
    /// next death within it makes the server give up (see
    /// [`PreforkServer`]). Default: 5 within 10 s. `burst` 0 never restarts.
    pub fn restart_limit(mut self, burst: u32, interval: Duration) -> PreforkServer {
        self.burst = burst;
        self.interval = interval;
        self
    }

    /// Replaces what the parent does with each [`WorkerEvent`]; the
    /// default prints one line to stderr. It runs in the parent, between
    /// waits (a slow one delays the supervision).
    pub fn event_handler(mut self, handler: impl Fn(&WorkerEvent) + 'static) -> PreforkServer {
        self.on_event = Box::new(handler);
        self
    }

    /// The address the workers listen on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// The number of worker processes.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many connections each worker slot has accepted so far (the
    /// workers that held the slot, restarts included), by slot: how the
    /// kernel spread them.
    pub fn connections_served(&self) -> Vec<u64> {
        self.counts.load()
    }

    /// How many workers were restarted so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.get()
    }

    /// Forks the workers and supervises them until `SIGTERM` or `SIGINT`
    /// (blocking the calling thread: see [`PreforkServer`]), then stops
    /// them gracefully and returns `Ok` once every worker has ended.
    ///
    /// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) if the
    /// process has more than one thread (nothing is forked then), with
    /// the error of `fork` (the workers already started are stopped
    /// first), and with an error saying the server gave up when workers
    /// died faster than the [restart limit](PreforkServer::restart_limit)
    /// allows (after the others are stopped). The stop closes the
    /// listening sockets: calling it again afterwards (or from the event
    /// handler while serving) fails at once.
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.serving.replace(true) {
            return Err(io::Error::other("PreforkServer: already serving"));
        }
        struct Done<'a>(&'a Cell<bool>);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _done = Done(&self.serving);
        if self.sockets.borrow().is_empty() {
            return Err(io::Error::other(format!(
                "the PreforkServer on {} was stopped; make a new one to serve again",
                self.local
            )));
        }
        check_single_threaded()?;
        let mask = SignalMask::block()?;
        let mut sup = Supervisor {
            server: self,
            mask: &mask,
            slots: vec![None; self.workers],
            restarts: VecDeque::new(),
            deadline: None,
            killed: false,
            failure: None,
        };
        sup.run();
        match sup.failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The worker's whole life, in the forked child: never returns.
    fn worker_main(&self, slot: usize, mask: &SignalMask, parent: libc::pid_t) -> ! {
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            mask.restore();
            self.serve_worker(slot, parent)
        }));
        let code = match r {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("libev::green::server: PreforkServer on {}, worker {slot}: {e}", self.local);
                1
            }
            // The panic hook has reported it.
            Err(_) => PANICKED,
        };
        let _ = io::stdout().flush();
        // SAFETY: ends this (forked) process without running the parent's
        // destructors or atexit handlers; nothing runs after it.
        unsafe { libc::_exit(code) }
    }

    fn serve_worker(&self, slot: usize, parent: libc::pid_t) -> io::Result<()> {
        // SAFETY: plain system calls with integer arguments.
        let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // The parent died before the call: nobody supervises this one.
        // SAFETY: as above.
        if unsafe { libc::getppid() } != parent {
            return Ok(());
        }
        // This worker's socket; the others' copies close here, or they
        // would keep listening until this worker exits.
        let sockets = std::mem::take(&mut *self.sockets.borrow_mut());
        let mine = sockets.into_iter().nth(slot).ok_or_else(|| io::Error::other("no socket for the slot"))?;
        let listener = TcpListener::from(mine);
        let handler = (self.factory)();
        let counts = self.counts.clone();
        let mut server = StreamServer::new(listener, move |stream, peer| {
            counts.get(slot).fetch_add(1, Ordering::Relaxed);
            handler(stream, peer)
        });
        if let Some(max) = self.max_connections {
            server = server.max_connections(max);
        }
        let grace = self.grace;
        let stop = {
            let server = server.clone();
            move || server.stop(grace)
        };
        let _term = crate::green::signal::signal_handler(libc::SIGTERM, stop.clone())?;
        let _int = crate::green::signal::signal_handler(libc::SIGINT, stop)?;
        server.serve_forever()
    }
}

impl fmt::Debug for PreforkServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreforkServer")
            .field("local_addr", &self.local)
            .field("workers", &self.workers)
            .field("serving", &self.serving.get())
            .field("served", &self.connections_served())
            .field("restarts", &self.restarts.get())
            .finish()
    }
}

/// A running worker.
#[derive(Clone, Copy)]
struct Worker {
    pid: libc::pid_t,
}

/// The parent's state while it supervises.
struct Supervisor<'a> {
    server: &'a PreforkServer,
    mask: &'a SignalMask,
    slots: Vec<Option<Worker>>,
    /// When the restarts within the limit's interval happened.
    restarts: VecDeque<Instant>,
    /// Once stopping: when the workers left are killed.
    deadline: Option<Instant>,
    killed: bool,
    /// Why `serve_forever` fails, once it is decided.
    failure: Option<io::Error>,
}

impl Supervisor<'_> {
    fn emit(&self, e: WorkerEvent) {
        let handler = &self.server.on_event;
        if panic::catch_unwind(AssertUnwindSafe(|| handler(&e))).is_err() {
            eprintln!("libev::green::server: PreforkServer event handler panicked on: {e}");
        }
    }

    fn stopping(&self) -> bool {
        self.deadline.is_some()
    }

    fn run(&mut self) {
        for slot in 0..self.slots.len() {
            if let Err(e) = self.fork(slot) {
                self.failure = Some(e);
                self.begin_stop();
                break;
            }
        }
        while self.slots.iter().any(Option::is_some) {
            let timeout =
                self.deadline.filter(|_| !self.killed).map(|d| d.saturating_duration_since(Instant::now()));
            match self.mask.wait(timeout) {
                Some(sig @ (libc::SIGTERM | libc::SIGINT)) if !self.stopping() => {
                    self.emit(WorkerEvent::Stopping { signal: sig });
                    self.begin_stop();
                }
                // SIGCHLD, a signal while stopping, the deadline.
                _ => {}
            }
            self.reap();
            if let Some(d) = self.deadline
                && !self.killed
                && Instant::now() >= d
            {
                self.kill_all();
            }
        }
    }

    /// Forks the worker of `slot`.
    fn fork(&mut self, slot: usize) -> io::Result<()> {
        check_single_threaded()?;
        // Output buffered now would be written by the child as well.
        let _ = io::stdout().flush();
        // SAFETY: plain system call.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the process has one thread (checked just above; the
        // supervisor starts none), so the child has every lock free; the
        // child runs `worker_main`, which never returns here.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => self.server.worker_main(slot, self.mask, parent),
            pid => {
                self.slots[slot] = Some(Worker { pid });
                self.emit(WorkerEvent::Started { worker: slot, pid: pid as u32 });
                Ok(())
            }
        }
    }

    /// Collects the workers that ended; restarts them unless stopping.
    fn reap(&mut self) {
        for slot in 0..self.slots.len() {
            let Some(w) = self.slots[slot] else { continue };
            let mut status = 0;
            // SAFETY: waits (without blocking) for our own child only.
            let r = unsafe { libc::waitpid(w.pid, &mut status, libc::WNOHANG) };
            let status = match r {
                0 => continue,
                // ECHILD: someone else reaped it (SIGCHLD ignored, a
                // waitpid(-1) elsewhere); gone, status unknown.
                -1 if io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) => None,
                -1 => continue,
                _ => Some(ExitStatus::from_raw(status)),
            };
            self.slots[slot] = None;
            self.emit(WorkerEvent::Exited { worker: slot, pid: w.pid as u32, status });
            if !self.stopping() {
                self.restart(slot);
            }
        }
    }

    fn restart(&mut self, slot: usize) {
        let now = Instant::now();
        let interval = self.server.interval;
        while self.restarts.front().is_some_and(|&t| now.duration_since(t) >= interval) {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= self.server.burst as usize {
            let burst = self.server.burst;
            self.emit(WorkerEvent::GaveUp { restarts: burst, interval });
            self.failure = Some(io::Error::other(format!(
                "PreforkServer on {}: worker {slot} died after {burst} restarts within {interval:?}; gave up",
                self.server.local
            )));
            return self.begin_stop();
        }
        self.restarts.push_back(now);
        self.server.restarts.set(self.server.restarts.get() + 1);
        if let Err(e) = self.fork(slot) {
            self.failure = Some(e);
            self.begin_stop();
        }
    }

    /// Closes the parent's sockets, sends SIGTERM to every worker and
    /// sets the kill deadline.
    fn begin_stop(&mut self) {
        if self.stopping() {
            return;
        }
        self.server.sockets.borrow_mut().clear();
        self.deadline = Some(Instant::now() + self.server.grace + KILL_MARGIN);
        for w in self.slots.iter().flatten() {
            // SAFETY: signals our own unreaped child (its pid cannot have
            // been reused).
            unsafe { libc::kill(w.pid, libc::SIGTERM) };
        }
    }

    fn kill_all(&mut self) {
        self.killed = true;
        for (slot, w) in self.slots.clone().iter().enumerate() {
            if let Some(w) = w {
                // SAFETY: as in `begin_stop`.
                unsafe { libc::kill(w.pid, libc::SIGKILL) };
                self.emit(WorkerEvent::Killed { worker: slot, pid: w.pid as u32 });
            }
        }
    }
}

/// SIGCHLD, SIGTERM and SIGINT blocked on this thread while the parent
/// supervises, and the mask from before; and SIGCHLD's disposition, if it
/// had to change.
struct SignalMask {
    set: libc::sigset_t,
    old: libc::sigset_t,
    /// SIGCHLD's action before, if it was `SIG_IGN` or had
    /// `SA_NOCLDWAIT`: then the kernel reaps children itself and sends no
    /// SIGCHLD, so the parent would never learn of a death. It is
    /// `SIG_DFL` while the parent supervises.
    sigchld: Option<libc::sigaction>,
}

impl SignalMask {
    fn block() -> io::Result<SignalMask> {
        // SAFETY: sigset_t is plain old data, initialised by sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: written by pthread_sigmask before any read.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: the sets are valid; this changes this thread's mask,
        // restored when the SignalMask drops.
        let r = unsafe {
            libc::sigemptyset(&mut set);
            for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT] {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old)
        };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        let mut mask = SignalMask { set, old, sigchld: None };
        // SAFETY: sigaction is plain old data; `act` is written by the
        // first call, `dfl` is a valid default action.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGCHLD, std::ptr::null(), &mut act) != 0 {
                return Err(io::Error::last_os_error());
            }
            if act.sa_sigaction == libc::SIG_IGN || act.sa_flags & libc::SA_NOCLDWAIT != 0 {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                if libc::sigaction(libc::SIGCHLD, &dfl, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                mask.sigchld = Some(act);
            }
        }
        Ok(mask)
    }

    /// Waits up to `timeout` (`None`: for ever) for one of the blocked
    /// signals; which one, if any came.
    fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `set` is valid, `info` may be null, `tsp` is null or
        // points to `ts`, alive for the call.
        let r = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), tsp) };
        // -1: the timeout (EAGAIN) or another signal's handler (EINTR).
        (r > 0).then_some(r)
    }

    /// Puts back the mask from before `block` (in a worker).
    fn restore(&self) {
        if let Some(act) = &self.sigchld {
            // SAFETY: puts back the action read in `block`.
            unsafe { libc::sigaction(libc::SIGCHLD, act, std::ptr::null_mut()) };
        }
        // SAFETY: restores a mask read by pthread_sigmask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

impl Drop for SignalMask {
    fn drop(&mut self) {
        // A SIGTERM or SIGINT still pending would end the process as the
        // mask comes off: take them first (the stop is done).
        let zero = Some(Duration::ZERO);
        while self.wait(zero).is_some() {}
        self.restore();
    }
}

/// How many threads this process has (`Threads:` in `/proc/self/status`).
fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no thread count in /proc/self/status"))
}

/// Refuses to fork a process with more than one thread (see
/// [`PreforkServer`]).
fn check_single_threaded() -> io::Result<()> {
    let n = thread_count().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("PreforkServer: cannot count this process's threads, so cannot fork safely: {e}"),
        )
    })?;
    if n == 1 {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "PreforkServer: this process has {n} threads; a forked worker keeps only the calling one, \
             and locks the others hold stay held in it. Serve before starting any thread (the blocking \
             pool's threads, started by spawn_blocking or a name lookup, exit after 10 s idle)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_parse_and_resolve() {
        assert_eq!("all".parse::<Processes>().unwrap(), Processes::All);
        assert_eq!("3".parse::<Processes>().unwrap(), Processes::Count(3));
        for bad in ["0", "-1", "", "two"] {
            assert_eq!(bad.parse::<Processes>().unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(Processes::Count(0).get().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(Processes::All.to_string(), "all");
        assert_eq!(Processes::from(4).to_string(), "4");
    }

    #[test]
    fn a_multithreaded_process_is_refused() {
        // The test harness runs tests on threads of its own.
        let keep = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(200)));
        let e = check_single_threaded().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("threads"), "{e}");
        let server = PreforkServer::bind("127.0.0.1:0", Processes::Count(1), || |_s, _p| ()).unwrap();
        assert_eq!(server.serve_forever().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(server.connections_served(), [0]);
        keep.join().unwrap();
    }

    #[test]
    fn events_read_as_sentences() {
        let e = WorkerEvent::Exited { worker: 1, pid: 42, status: Some(ExitStatus::from_raw(9)) };
        assert_eq!(e.to_string(), "worker 1 (pid 42) ended: signal: 9 (SIGKILL)");
        let counts = SharedCounts::new(3).unwrap();
        counts.get(2).fetch_add(5, Ordering::Relaxed);
        assert_eq!(counts.load(), [0, 0, 5]);
    }
}
