//! Servers on every core: [`ThreadedStreamServer`] and
//! [`ThreadedDatagramServer`] run one [`StreamServer`] (or
//! [`DatagramServer`]) per OS thread, each thread with its own hub and its
//! own socket.
//!
//! # Design
//!
//! - **One socket per thread, `SO_REUSEPORT`.** `bind` makes N sockets
//!   bound to the same address with `SO_REUSEPORT` (Linux, Android); the
//!   kernel spreads new connections (and UDP flows) across them by a hash
//!   of the peer's address and port, so each thread accepts only its own
//!   connections: no lock, no cross-thread wake-up, no connection handed
//!   from one hub to another. The alternative, one listener shared by
//!   every thread, needs `EPOLLEXCLUSIVE` to wake one thread per
//!   connection; libev's epoll backend registers fds with the events
//!   alone (it cannot be asked for the flag) and its poll and select
//!   backends have no such flag, so through libev a shared listener wakes
//!   every hub for every connection and all but one find nothing to
//!   accept. `docs/scaling.md` has the measurements behind the choice.
//!   Elsewhere (BSDs, macOS: their `SO_REUSEPORT` does not balance) the
//!   threads share one listener that way.
//! - **Port in use.** Before binding its sockets, `bind` binds a probe
//!   socket without `SO_REUSEPORT` to the address: if anything holds the
//!   port, even another `SO_REUSEPORT` group of the same user (which the
//!   kernel would let join and silently take a share of the
//!   connections), `bind` fails with `AddrInUse`. For port 0 the probe's
//!   port is the one the group binds.
//! - **Threads.** `start` spawns the threads; each calls the factory (on
//!   its own thread, so the handler it returns needs not be `Send`),
//!   builds its server on its socket and serves. `start` returns once
//!   every thread serves or has died. Threads are spawned with
//!   asynchronous signals blocked, so a signal goes to a thread that
//!   handles it (`green::signal` on the main thread), never to a worker
//!   with no handler whose default action would end the process.
//! - **Stopping.** Each thread keeps a greenlet waiting on a
//!   [`oneshot`](super::super::oneshot); `stop` sends the timeout to each,
//!   which stops its server (closing its socket, giving its handlers the
//!   timeout), then waits (parking only the calling greenlet) until every
//!   thread has ended, and joins them.
//! - **Failures.** A handler's panic ends its greenlet only, reported on
//!   its thread by the unjoined-panic handler (set it from the factory,
//!   which runs on that thread). A thread that dies (the factory panics,
//!   or its socket becomes unusable) is reported to the error handler;
//!   the others go on, and `stop` still stops and joins them all.

use super::{DatagramServer, StreamServer};
use crate::green::net::{TcpListener, TcpStream, UdpSocket, resolve, sys};
use crate::green::remote::{OneshotReceiver, OneshotSender, oneshot};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::panic::{self, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the handlers of a thread whose socket failed get to finish.
const FAILED_GRACE: Duration = Duration::from_secs(1);
/// How many times a port-0 bind is retried when the port the probe found
/// is taken before the group binds it.
#[cfg(any(target_os = "linux", target_os = "android"))]
const PORT0_TRIES: u32 = 3;

/// How many threads a threaded server runs: a count, or one per core.
///
/// Parses from `"all"` or a positive number, as a `--threads` option
/// would give it.
///
/// ```
/// use libev::green::server::Threads;
///
/// assert_eq!("3".parse::<Threads>()?, Threads::Count(3));
/// assert_eq!("all".parse::<Threads>()?.get()?, std::thread::available_parallelism()?.get());
/// assert!("0".parse::<Threads>().is_err());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Threads {
    /// Exactly this many (at least 1).
    Count(usize),
    /// One per core the process may use
    /// ([`std::thread::available_parallelism`]; 1 where that is unknown).
    All,
}

impl Threads {
    /// The number of threads; fails with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for `Count(0)`.
    pub fn get(self) -> io::Result<usize> {
        match self {
            Threads::Count(0) => {
                Err(io::Error::new(io::ErrorKind::InvalidInput, "a threaded server needs at least 1 thread"))
            }
            Threads::Count(n) => Ok(n),
            Threads::All => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        }
    }
}

impl From<usize> for Threads {
    fn from(n: usize) -> Threads {
        Threads::Count(n)
    }
}

impl FromStr for Threads {
    type Err = io::Error;

    /// `"all"` or a positive number.
    fn from_str(s: &str) -> io::Result<Threads> {
        Ok(parse_count(s, "threads")?.map_or(Threads::All, Threads::Count))
    }
}

/// A `--threads` or `--processes` value: `Some(n)` for a positive number,
/// `None` for `"all"`; `InvalidInput` naming `what` otherwise.
pub(super) fn parse_count(s: &str, what: &str) -> io::Result<Option<usize>> {
    if s.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    match s.parse::<usize>() {
        Ok(n @ 1..) => Ok(Some(n)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: expected `all` or a positive number, got {s:?}"),
        )),
    }
}

impl fmt::Display for Threads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threads::Count(n) => write!(f, "{n}"),
            Threads::All => f.write_str("all"),
        }
    }
}

/// What a thread's server does: the calls the threads make on it.
trait Served: Clone + 'static {
    fn start(&self) -> io::Result<()>;
    fn serve_forever(&self) -> io::Result<()>;
    fn stop(&self, timeout: Duration);
}

impl Served for StreamServer {
    fn start(&self) -> io::Result<()> {
        StreamServer::start(self)
    }
    fn serve_forever(&self) -> io::Result<()> {
        StreamServer::serve_forever(self)
    }
    fn stop(&self, timeout: Duration) {
        StreamServer::stop(self, timeout)
    }
}

impl Served for DatagramServer {
    fn start(&self) -> io::Result<()> {
        DatagramServer::start(self)
    }
    fn serve_forever(&self) -> io::Result<()> {
        DatagramServer::serve_forever(self)
    }
    fn stop(&self, timeout: Duration) {
        DatagramServer::stop(self, timeout)
    }
}

/// Receives a thread's index and an error: a socket error the thread's
/// server survives or ends on, or the thread's death.
type ErrorHandler = Arc<dyn Fn(usize, &io::Error) + Send + Sync>;

/// What a thread runs once spawned: build its server on the socket and
/// serve until stopped. It holds the user's factory.
type Body = Arc<dyn Fn(&Arc<Group>, usize, OwnedFd) -> io::Result<()> + Send + Sync>;

/// A per-thread count on its own cache line (only its thread writes it).
#[repr(align(64))]
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Bound, not started.
    Idle,
    /// Threads serve (some may have died).
    Running,
    /// `stop` was called; threads are ending.
    Stopping,
    /// Every thread has ended (or the server was stopped before `start`).
    Stopped,
}

/// One thread's mailboxes, while it runs.
#[derive(Default)]
struct Slot {
    /// `start` waits on the other half until the thread serves or dies.
    ready: Option<OneshotSender<()>>,
    /// The thread's stop greenlet waits on the other half.
    stop: Option<OneshotSender<Duration>>,
}

struct Control {
    phase: Phase,
    /// The bound sockets, until `start` hands them to the threads.
    sockets: Vec<OwnedFd>,
    /// Until every thread has ended (or a stop before `start`): then it
    /// is dropped, so a factory that holds the server (to stop it from
    /// a handler) does not keep it alive in a cycle.
    body: Option<Body>,
    max_connections: Option<usize>,
    on_error: ErrorHandler,
    /// `stop` was called (so ending is not a failure).
    stop_asked: Option<Duration>,
    slots: Vec<Slot>,
    /// Threads started and not yet ended.
    running: usize,
    /// Why the first thread that died did.
    first_death: Option<String>,
    /// `stop` and `serve_forever` callers waiting for every thread's end.
    waiters: Vec<OneshotSender<()>>,
    joins: Vec<JoinHandle<()>>,
}

/// What both threaded servers share.
struct Group {
    kind: &'static str,
    /// Thread `i` is named `{thread_prefix}-{i}`.
    thread_prefix: &'static str,
    local: SocketAddr,
    threads: usize,
    counts: Box<[Counter]>,
    control: Mutex<Control>,
}

thread_local! {
    /// On a server's thread: the address of its `Group` (so `stop` called
    /// there does not wait for its own thread).
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

impl Group {
    fn new(
        kind: &'static str,
        thread_prefix: &'static str,
        sockets: Vec<OwnedFd>,
        local: SocketAddr,
        body: Body,
    ) -> Arc<Group> {
        let threads = sockets.len();
        let on_error: ErrorHandler = Arc::new(move |i: usize, e: &io::Error| {
            eprintln!("libev::green::server: {kind} on {local}, thread {i}: {e}");
        });
        Arc::new(Group {
            kind,
            thread_prefix,
            local,
            threads,
            counts: (0..threads).map(|_| Counter::default()).collect(),
            control: Mutex::new(Control {
                phase: Phase::Idle,
                sockets,
                body: Some(body),
                max_connections: None,
                on_error,
                stop_asked: None,
                slots: (0..threads).map(|_| Slot::default()).collect(),
                running: 0,
                first_death: None,
                waiters: Vec::new(),
                joins: Vec::new(),
            }),
        })
    }

    /// The control block. No user code runs under this lock, so a poison
    /// can only come from a bug here; the state stays consistent anyway.
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn counts(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.0.load(Ordering::Relaxed)).collect()
    }

    fn running(&self) -> usize {
        self.lock().running
    }

    /// Reports `e` for thread `i` to the error handler (to stderr if the
    /// handler panics).
    fn report(&self, i: usize, e: &io::Error) {
        let handler = self.lock().on_error.clone();
        if panic::catch_unwind(AssertUnwindSafe(|| handler(i, e))).is_err() {
            eprintln!("libev::green::server: {} error handler panicked on: thread {i}: {e}", self.kind);
        }
    }

    fn start(self: &Arc<Self>) -> io::Result<()> {
        let mut ready = Vec::with_capacity(self.threads);
        let (sockets, body) = {
            let mut c = self.lock();
            match c.phase {
                Phase::Idle => {}
                Phase::Running | Phase::Stopping => {
                    return Err(io::Error::other(format!("{}: already started", self.kind)));
                }
                Phase::Stopped => return Err(stopped_error(self.kind)),
            }
            c.phase = Phase::Running;
            // Every thread counts as running from here: one that dies at
            // once must not make the server look ended before the next
            // one is spawned.
            c.running = self.threads;
            for slot in &mut c.slots {
                let (tx, rx) = oneshot();
                ready.push(rx);
                *slot = Slot { ready: Some(tx), stop: None };
            }
            let body = c.body.clone().expect("the body stays until the threads have ended");
            (mem::take(&mut c.sockets), body)
        };
        for (i, fd) in sockets.into_iter().enumerate() {
            let (group, body) = (self.clone(), body.clone());
            let name = format!("{}-{i}", self.thread_prefix);
            match spawn_with_signals_blocked(name, move || run_thread(group, body, i, fd)) {
                Ok(handle) => self.lock().joins.push(handle),
                Err(e) => {
                    // The threads not spawned never run: end them here,
                    // then stop (and join) those that were.
                    for j in i..self.threads {
                        self.thread_ended(j);
                    }
                    self.stop(Duration::ZERO);
                    return Err(e);
                }
            }
        }
        for rx in ready {
            // Err: the thread died before serving (already reported).
            let _ = rx.recv();
        }
        Ok(())
    }

    /// Called on thread `i` once its server serves: keeps the sender that
    /// stops it and tells `start`. Returns the stop's timeout if `stop`
    /// came first.
    fn register(&self, i: usize, stop: OneshotSender<Duration>) -> Option<Duration> {
        let (ready, asked) = {
            let mut c = self.lock();
            let asked = c.stop_asked;
            if asked.is_none() {
                c.slots[i].stop = Some(stop);
            }
            (c.slots[i].ready.take(), asked)
        };
        if let Some(r) = ready {
            r.send(());
        }
        asked
    }

    /// Thread `i` has ended, however it ended.
    fn thread_ended(&self, i: usize) {
        let (slot, waiters, body) = {
            let mut c = self.lock();
            let slot = mem::take(&mut c.slots[i]);
            c.running -= 1;
            if c.running == 0 {
                c.phase = Phase::Stopped;
                (slot, mem::take(&mut c.waiters), c.body.take())
            } else {
                (slot, Vec::new(), None)
            }
        };
        // Outside the lock: senders reach other threads' loops, and the
        // factory's captures have destructors of their own.
        drop(slot);
        drop(body);
        for w in waiters {
            w.send(());
        }
    }

    fn died(&self, i: usize, e: io::Error) {
        {
            let mut c = self.lock();
            if c.first_death.is_none() {
                c.first_death = Some(format!("thread {i}: {e}"));
            }
        }
        self.report(i, &e);
    }

    fn stop(self: &Arc<Self>, timeout: Duration) {
        let stops: Vec<_> = {
            let mut c = self.lock();
            match c.phase {
                Phase::Idle => {
                    c.phase = Phase::Stopped;
                    c.stop_asked = Some(timeout);
                    let dropped = (mem::take(&mut c.sockets), c.body.take());
                    drop(c);
                    drop(dropped);
                    return;
                }
                Phase::Running => {
                    c.phase = Phase::Stopping;
                    c.stop_asked = Some(timeout);
                    c.slots.iter_mut().filter_map(|s| s.stop.take()).collect()
                }
                Phase::Stopping | Phase::Stopped => Vec::new(),
            }
        };
        for s in stops {
            s.send(timeout);
        }
        // On one of this server's threads: waiting would wait for itself.
        if WORKER_OF.with(Cell::get) == Arc::as_ptr(self) as usize {
            return;
        }
        self.wait_ended();
    }

    /// Waits (parking only the calling greenlet) until every thread has
    /// ended, then joins those nobody joined yet.
    fn wait_ended(&self) {
        let rx: Option<OneshotReceiver<()>> = {
            let (tx, rx) = oneshot();
            let mut c = self.lock();
            if c.running > 0 {
                c.waiters.push(tx);
                Some(rx)
            } else {
                None
            }
        };
        if let Some(rx) = rx {
            // Err only if the last thread could not reach this one: it
            // has ended either way.
            let _ = rx.recv();
        }
        let joins = mem::take(&mut self.lock().joins);
        for j in joins {
            // Every thread has finished serving; this waits for its exit
            // (the hub's teardown). A panic there was reported already.
            let _ = j.join();
        }
    }

    fn serve_forever(self: &Arc<Self>) -> io::Result<()> {
        struct StopOnUnwind<'a>(&'a Arc<Group>);
        impl Drop for StopOnUnwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    let group = self.0.clone();
                    // Nothing may wait during an unwind: stop from a new
                    // greenlet (or not at all, with no stack to have).
                    let _ = crate::green::Builder::new().spawn(move || group.stop(Duration::from_secs(1)));
                }
            }
        }
        let phase = self.lock().phase;
        if phase == Phase::Stopped {
            return Err(stopped_error(self.kind));
        }
        // Armed before `start`, which waits for the threads too.
        let _guard = StopOnUnwind(self);
        if phase == Phase::Idle {
            self.start()?;
        }
        self.wait_ended();
        let c = self.lock();
        match (&c.stop_asked, &c.first_death) {
            (Some(_), _) => Ok(()),
            (None, death) => Err(io::Error::other(format!(
                "every thread of the {} ended without stop (first: {})",
                self.kind,
                death.as_deref().unwrap_or("none reported")
            ))),
        }
    }
}

fn stopped_error(kind: &str) -> io::Error {
    io::Error::other(format!("the {kind} was stopped; make a new one to serve again"))
}

/// A server thread: run the body, report how it ended.
fn run_thread(group: Arc<Group>, body: Body, i: usize, fd: OwnedFd) {
    WORKER_OF.with(|w| w.set(Arc::as_ptr(&group) as usize));
    struct Ended<'a>(&'a Group, usize);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            self.0.thread_ended(self.1);
        }
    }
    let _ended = Ended(&group, i);
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(&group, i, fd)));
    // The factory goes before the thread counts as ended (see `body`).
    drop(body);
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => group.died(i, e),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            group.died(i, io::Error::other(format!("the thread panicked: {msg}")));
        }
    }
}

/// Runs `server` on thread `i` until stopped: a greenlet waits for the
/// stop, the thread's root serves.
fn serve_thread<S: Served>(group: &Group, i: usize, server: S) -> io::Result<()> {
    server.start()?;
    let (tx, rx) = oneshot::<Duration>();
    if let Some(timeout) = group.register(i, tx) {
        server.stop(timeout);
        return Ok(());
    }
    let s = server.clone();
    let stopper = crate::green::Builder::new().name("threaded server stop").spawn(move || {
        if let Ok(timeout) = rx.recv() {
            s.stop(timeout);
        }
    })?;
    match server.serve_forever() {
        // Stopped by the stopper, which may still be finishing its `stop`
        // (a DatagramServer's wakes `serve_forever` before it returns): a
        // greenlet still alive when its thread ends is never resumed.
        Ok(()) => {
            let _ = stopper.join();
            Ok(())
        }
        Err(e) => {
            stopper.kill();
            server.stop(FAILED_GRACE);
            Err(e)
        }
    }
}

/// Spawns a thread that starts with every asynchronous signal blocked
/// (the fault signals stay deliverable): the mask is set on this thread
/// around the spawn, so the new thread has it from its first instruction.
fn spawn_with_signals_blocked(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    // SAFETY: sigset_t is plain old data; sigfillset initialises it.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `old` is written by pthread_sigmask before it is read.
    let mut old: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: the sets are valid for the calls; pthread_sigmask changes
    // only this thread's mask, restored below whatever the spawn does.
    unsafe {
        libc::sigfillset(&mut set);
        for s in [
            libc::SIGSEGV,
            libc::SIGBUS,
            libc::SIGFPE,
            libc::SIGILL,
            libc::SIGTRAP,
            libc::SIGSYS,
            libc::SIGABRT,
        ] {
            libc::sigdelset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
    }
    let r = std::thread::Builder::new().name(name).spawn(f);
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

/// The address a bound socket has.
fn bound_addr(fd: &OwnedFd, tcp: bool) -> io::Result<SocketAddr> {
    let fd = fd.try_clone()?;
    if tcp {
        std::net::TcpListener::from(fd).local_addr()
    } else {
        std::net::UdpSocket::from(fd).local_addr()
    }
}

/// `n` sockets for the threads, bound to `addr` (and listening, for TCP),
/// with their address: `SO_REUSEPORT` siblings, after a probe without
/// it has found the port free (see the module docs).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn bind_sockets(addr: &SocketAddr, n: usize, tcp: bool) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    use socket2::{Domain, Type};
    let ty = if tcp { Type::STREAM } else { Type::DGRAM };
    let one = |a: &SocketAddr, reuseport: bool| -> io::Result<OwnedFd> {
        let sock = sys::socket(Domain::for_address(*a), ty)?;
        if tcp {
            // As std does: a restarted server can rebind while old
            // connections linger in TIME_WAIT.
            sock.set_reuse_address(true)?;
        }
        if reuseport {
            sock.set_reuse_port(true)?;
        }
        sock.bind(&(*a).into())?;
        Ok(sock.into())
    };
    let mut tries = 0;
    loop {
        tries += 1;
        // The probe: fails if anything holds the port, and picks port 0's.
        let local = bound_addr(&one(addr, false)?, tcp)?;
        let group = (0..n)
            .map(|_| {
                let fd = one(&local, true)?;
                if tcp {
                    sys::relisten(&fd)?;
                }
                Ok(fd)
            })
            .collect::<io::Result<Vec<_>>>();
        match group {
            // Port 0: the port the probe found was taken before the group
            // bound it; find another.
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && addr.port() == 0 && tries < PORT0_TRIES => {}
            r => return r.map(|fds| (fds, local)),
        }
    }
}

/// `n` handles of one socket bound to `addr` (and listening, for TCP),
/// with its address: where `SO_REUSEPORT` does not spread connections
/// (the last socket bound gets them all), the threads share one.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_sockets(addr: &SocketAddr, n: usize, tcp: bool) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    let fd = if tcp {
        let fd = OwnedFd::from(std::net::TcpListener::bind(addr)?);
        sys::relisten(&fd)?;
        fd
    } else {
        OwnedFd::from(std::net::UdpSocket::bind(addr)?)
    };
    let local = bound_addr(&fd, tcp)?;
    let mut fds = Vec::with_capacity(n);
    for _ in 1..n {
        fds.push(fd.try_clone()?);
    }
    fds.push(fd);
    Ok((fds, local))
}

/// Binds each address `addr` resolves to in turn until one works (as
/// std's `bind` does); the last error otherwise.
fn bind_any<A: ToSocketAddrs + Send>(addr: A, n: usize, tcp: bool) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    let mut last = None;
    for a in resolve(addr)? {
        match bind_sockets(&a, n, tcp) {
            Ok(r) => return Ok(r),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// A TCP server on several OS threads: each thread has its own hub, its
/// own listening socket (bound with `SO_REUSEPORT` to the same address)
/// and its own [`StreamServer`], whose handler it builds by calling the
/// factory. The handler runs on a new greenlet per connection, on the
/// thread that accepted it, and needs not be `Send`; the factory is
/// called once per thread.
///
/// - [`bind`](ThreadedStreamServer::bind) binds every thread's socket
///   (so an address in use fails there, before anything serves);
///   [`start`](ThreadedStreamServer::start) spawns the threads;
///   [`serve_forever`](ThreadedStreamServer::serve_forever) blocks the
///   calling greenlet until [`stop`](ThreadedStreamServer::stop), which
///   any thread may call: the server is `Send + Sync` and cheap to clone.
/// - The kernel spreads connections across the threads by a hash of the
///   peer's address and port, not by load: a thread busy with slow
///   handlers still gets its share, and a few long-lived connections may
///   split unevenly. Connections waiting in a socket's backlog when its
///   thread stops or dies are reset. One listener shared by every thread
///   would balance by who is free, but libev cannot register it with
///   `EPOLLEXCLUSIVE`, so every thread would wake for every connection;
///   `docs/scaling.md` in the repository measures both.
/// - A handler that panics ends its own greenlet only, reported by its
///   thread's [unjoined-panic
///   handler](crate::green::set_unjoined_panic_handler) (call that from
///   the factory: it runs on the thread). A thread that dies (the factory
///   panics, its socket fails) is reported to the
///   [error handler](ThreadedStreamServer::error_handler); the other
///   threads go on serving.
/// - The threads start with asynchronous signals blocked, so signals go
///   to the thread that handles them (for instance `green::signal` on the
///   main thread, calling `stop`).
/// - Once every thread has ended, the server drops the factory and what
///   it captured, so a factory holding the server itself (to stop it
///   from a handler) makes no reference cycle.
/// - Where `SO_REUSEPORT` does not spread connections (outside Linux and
///   Android) the threads share one listener instead, and every thread
///   wakes for each connection.
///
/// ```
/// use libev::green::{net::TcpStream, server::{Threads, ThreadedStreamServer}};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), || {
///     // Runs on each server thread: per-thread state needs not be Send.
///     let greeting = std::rc::Rc::new(format!("hello from {}\r\n", std::thread::current().name().unwrap()));
///     move |mut stream: TcpStream, _peer| {
///         let _ = stream.write_all(greeting.as_bytes());
///     }
/// })?;
/// server.start()?;
/// let mut reply = String::new();
/// TcpStream::connect(server.local_addr()?)?.read_to_string(&mut reply)?;
/// assert!(reply.starts_with("hello from green-tcp-"));
/// server.stop(Duration::from_secs(1));
/// assert_eq!(server.connections_served().iter().sum::<u64>(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ThreadedStreamServer {
    group: Arc<Group>,
}

impl ThreadedStreamServer {
    /// Binds `threads` listening sockets to `addr` (each address it
    /// resolves to is tried in turn, as std's `bind` does; port 0 picks
    /// one free port for all), not yet serving. Fails with `AddrInUse` if
    /// anything else holds the port, and with `InvalidInput` for
    /// `Threads::Count(0)`.
    ///
    /// `factory` runs once on each server thread as it starts and returns
    /// that thread's handler.
    pub fn bind<A, F, H>(addr: A, threads: Threads, factory: F) -> io::Result<ThreadedStreamServer>
    where
        A: ToSocketAddrs + Send,
        F: Fn() -> H + Send + Sync + 'static,
        H: Fn(TcpStream, SocketAddr) + 'static,
    {
        let n = threads.get()?;
        let (sockets, local) = bind_any(addr, n, true)?;
        let body: Body = Arc::new(move |group: &Arc<Group>, i: usize, fd: OwnedFd| {
            let handler = factory();
            let (max, on_error) = {
                let c = group.lock();
                (c.max_connections, c.on_error.clone())
            };
            let g = group.clone();
            let listener = TcpListener::from(std::net::TcpListener::from(fd));
            let mut server = StreamServer::new(listener, move |stream, peer| {
                g.counts[i].bump();
                handler(stream, peer)
            })
            .error_handler(move |e| on_error(i, e));
            if let Some(max) = max {
                server = server.max_connections(max);
            }
            serve_thread(group, i, server)
        });
        Ok(ThreadedStreamServer {
            group: Group::new("ThreadedStreamServer", "green-tcp", sockets, local, body),
        })
    }

    /// Runs at most `n` handlers at once on each thread (see
    /// [`StreamServer::max_connections`]). Takes effect at `start`.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn max_connections(self, n: usize) -> ThreadedStreamServer {
        assert!(n > 0, "ThreadedStreamServer::max_connections: the cap must be at least 1");
        self.group.lock().max_connections = Some(n);
        self
    }

    /// Replaces what happens with errors: `handler(thread, error)` runs on
    /// the server thread `thread` (0-based) for an accept error its
    /// server survives or ends on (see [`StreamServer::error_handler`]),
    /// and for the thread's death (its factory panicked, its socket
    /// failed). The default prints one line to stderr. Takes effect at
    /// `start` for accept errors.
    pub fn error_handler(
        self,
        handler: impl Fn(usize, &io::Error) + Send + Sync + 'static,
    ) -> ThreadedStreamServer {
        self.group.lock().on_error = Arc::new(handler);
        self
    }

    /// The address every thread listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.group.local)
    }

    /// The number of server threads.
    pub fn threads(&self) -> usize {
        self.group.threads
    }

    /// Spawns the threads and returns once each serves (or has died,
    /// which is reported). Fails if the server was started or stopped
    /// before, or if a thread cannot be spawned (those spawned are then
    /// stopped). Waiting parks only the calling greenlet.
    pub fn start(&self) -> io::Result<()> {
        self.group.start()
    }

    /// Serves until [`stop`](ThreadedStreamServer::stop) (starting first
    /// unless started), blocking the calling greenlet. Returns `Ok` once
    /// stopped, or an error if every thread died without a stop. If the
    /// calling greenlet is killed or times out meanwhile, the server is
    /// stopped (with a 1 s grace period for its handlers).
    pub fn serve_forever(&self) -> io::Result<()> {
        self.group.serve_forever()
    }

    /// Stops every thread's server as [`StreamServer::stop`] does (stops
    /// accepting and closes the sockets, gives running handlers `timeout`,
    /// kills those left), waits for every thread to end, parking only the
    /// calling greenlet, and joins the threads. Any thread may call it.
    /// Called from one of the server's own threads (a handler), it only
    /// begins the stop and returns; `serve_forever` or a `stop` elsewhere
    /// waits for the end. Stopping twice waits again, and does nothing
    /// more. Greenlets that handlers spawned and left running are not
    /// waited for: a thread that ends leaves them blocked for good (see
    /// the crate docs on threads that exit with greenlets alive).
    pub fn stop(&self, timeout: Duration) {
        self.group.stop(timeout)
    }

    /// How many connections each thread has accepted so far, by thread:
    /// how the kernel spread them.
    ///
    /// ```
    /// use libev::green::{net::TcpStream, server::{Threads, ThreadedStreamServer}};
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), || |_stream, _peer| {})?;
    /// server.start()?;
    /// for _ in 0..10 {
    ///     TcpStream::connect(server.local_addr()?)?.read_to_end(&mut Vec::new())?;
    /// }
    /// let served = server.connections_served();
    /// assert_eq!(served.len(), 2);
    /// assert_eq!(served.iter().sum::<u64>(), 10);
    /// server.stop(Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connections_served(&self) -> Vec<u64> {
        self.group.counts()
    }

    /// How many server threads are running: started, and not yet ended
    /// by a stop or their death.
    pub fn running_threads(&self) -> usize {
        self.group.running()
    }
}

impl fmt::Debug for ThreadedStreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_group(&self.group, "ThreadedStreamServer", f)
    }
}

fn debug_group(g: &Group, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let c = g.lock();
    f.debug_struct(name)
        .field("local_addr", &g.local)
        .field("threads", &g.threads)
        .field("phase", &c.phase)
        .field("running", &c.running)
        .field("served", &g.counts())
        .finish()
}

/// A UDP server on several OS threads: each thread has its own hub, its
/// own socket (bound with `SO_REUSEPORT` to the same address) and its own
/// [`DatagramServer`], with the handler the factory builds on that
/// thread. The kernel sends each peer's datagrams (by a hash of its
/// address and port) to one thread, so one peer's datagrams are handled
/// in order. Otherwise as [`ThreadedStreamServer`].
///
/// ```
/// use libev::green::{net::UdpSocket, server::{Threads, ThreadedDatagramServer}};
/// use std::time::Duration;
///
/// let server = ThreadedDatagramServer::bind("127.0.0.1:0", Threads::Count(2), || {
///     |data: &[u8], peer, socket: &UdpSocket| {
///         let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
///     }
/// })?;
/// server.start()?;
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"ping", server.local_addr()?)?;
/// let mut buf = [0; 16];
/// let (n, _) = client.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"PING");
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ThreadedDatagramServer {
    group: Arc<Group>,
}

impl ThreadedDatagramServer {
    /// Binds `threads` UDP sockets to `addr`, not yet serving; fails as
    /// [`ThreadedStreamServer::bind`] does. `factory` runs once on each
    /// server thread and returns that thread's handler (see
    /// [`DatagramServer`]).
    pub fn bind<A, F, H>(addr: A, threads: Threads, factory: F) -> io::Result<ThreadedDatagramServer>
    where
        A: ToSocketAddrs + Send,
        F: Fn() -> H + Send + Sync + 'static,
        H: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        let n = threads.get()?;
        let (sockets, local) = bind_any(addr, n, false)?;
        let body: Body = Arc::new(move |group: &Arc<Group>, i: usize, fd: OwnedFd| {
            let handler = factory();
            let on_error = group.lock().on_error.clone();
            let g = group.clone();
            let socket = UdpSocket::from(std::net::UdpSocket::from(fd));
            let server = DatagramServer::new(socket, move |data, peer, socket| {
                g.counts[i].bump();
                handler(data, peer, socket)
            })
            .error_handler(move |e| on_error(i, e));
            serve_thread(group, i, server)
        });
        Ok(ThreadedDatagramServer {
            group: Group::new("ThreadedDatagramServer", "green-udp", sockets, local, body),
        })
    }

    /// As [`ThreadedStreamServer::error_handler`], for receive errors.
    pub fn error_handler(
        self,
        handler: impl Fn(usize, &io::Error) + Send + Sync + 'static,
    ) -> ThreadedDatagramServer {
        self.group.lock().on_error = Arc::new(handler);
        self
    }

    /// The address every thread receives on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.group.local)
    }

    /// The number of server threads.
    pub fn threads(&self) -> usize {
        self.group.threads
    }

    /// As [`ThreadedStreamServer::start`].
    pub fn start(&self) -> io::Result<()> {
        self.group.start()
    }

    /// As [`ThreadedStreamServer::serve_forever`].
    pub fn serve_forever(&self) -> io::Result<()> {
        self.group.serve_forever()
    }

    /// Stops every thread's server as [`DatagramServer::stop`] does, then
    /// waits for the threads as [`ThreadedStreamServer::stop`] does.
    pub fn stop(&self, timeout: Duration) {
        self.group.stop(timeout)
    }

    /// How many datagrams each thread has handled so far, by thread.
    pub fn datagrams_received(&self) -> Vec<u64> {
        self.group.counts()
    }

    /// As [`ThreadedStreamServer::running_threads`].
    pub fn running_threads(&self) -> usize {
        self.group.running()
    }
}

impl fmt::Debug for ThreadedDatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_group(&self.group, "ThreadedDatagramServer", f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_parse_and_resolve() {
        assert_eq!("all".parse::<Threads>().unwrap(), Threads::All);
        assert_eq!("ALL".parse::<Threads>().unwrap(), Threads::All);
        assert_eq!("2".parse::<Threads>().unwrap(), Threads::Count(2));
        for bad in ["0", "-1", "", "two", "1.5"] {
            let e = bad.parse::<Threads>().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        assert_eq!(Threads::Count(0).get().unwrap_err().kind(), io::ErrorKind::InvalidInput);
        assert_eq!(Threads::from(5).get().unwrap(), 5);
        assert_eq!(Threads::All.to_string(), "all");
        assert_eq!(Threads::Count(7).to_string(), "7");
    }

    #[test]
    fn a_group_shares_one_port_and_a_probe_sees_it_taken() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (fds, local) = bind_sockets(&any, 3, true).unwrap();
        assert_eq!(fds.len(), 3);
        assert_ne!(local.port(), 0);
        for fd in &fds {
            let l = std::net::TcpListener::from(fd.try_clone().unwrap());
            assert_eq!(l.local_addr().unwrap(), local);
        }
        // A second group on the same port is refused, though the kernel
        // would let its SO_REUSEPORT sockets join the first.
        let e = bind_sockets(&local, 2, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        let (udp, ulocal) = bind_sockets(&any, 2, false).unwrap();
        assert_eq!(udp.len(), 2);
        assert_eq!(bind_sockets(&ulocal, 2, false).unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }
}
