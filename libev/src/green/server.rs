//! Servers on green sockets (gevent's `gevent.server`): [`StreamServer`]
//! runs a handler on its own greenlet for each TCP connection;
//! [`DatagramServer`] runs a handler for each UDP datagram.
//! [`ThreadedStreamServer`] runs one per OS thread, [`PreforkServer`]
//! one per worker process (Linux and Android).
//!
//! ```
//! use libev::green::{net::TcpStream, server::StreamServer};
//! use std::io::{Read, Write};
//! use std::time::Duration;
//!
//! let server = StreamServer::bind("127.0.0.1:0", |mut stream, _peer| {
//!     let _ = stream.write_all(b"hello world\r\n");
//! })?;
//! server.start()?;
//! let mut reply = String::new();
//! TcpStream::connect(server.local_addr()?)?.read_to_string(&mut reply)?;
//! assert_eq!(reply, "hello world\r\n");
//! server.stop(Duration::from_secs(1));
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **Memory per connection.** A handler parked in `read` keeps the stack
//! pages its greenlet has touched, so the largest buffer it ever put on
//! its stack sets what each idle connection costs. A 2 KiB stack buffer
//! (the `echo_server` example) keeps an idle connection at 6.6 KiB of
//! RSS; a 16 KiB one at 21 KiB, since the first read zeroes four pages.
//! Large buffers belong on the heap, and to the connections that are busy.

use super::greenlet::{
    Builder, Greenlet, is_interrupt, kill_task, report_caught_panic, wait_done, wait_done_timeout,
};
use super::hub::{try_with_hub, with_hub};
use super::net::{Interest, TcpListener, TcpStream, UdpSocket};
use super::task::{Task, Wake};
use super::wait::{WaitList, Waiter, park_until, wait_on};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

#[path = "threaded.rs"]
mod threaded;
pub use threaded::{ThreadedDatagramServer, ThreadedStreamServer, Threads};

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "prefork.rs"]
mod prefork;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub use prefork::{PreforkServer, Processes, WorkerEvent};

/// The first pause after an accept (or receive) error that more attempts
/// cannot fix at once (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`, ...).
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Pauses double after each such error in a row, up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Connections accepted in a row before the acceptor lets the handlers
/// it spawned run (gevent's `max_accept`).
const ACCEPT_BATCH: u32 = 64;

/// How the serving loop treats an error of `accept` or `recv_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnError {
    /// The connection (or datagram) went wrong, not the server: go on.
    Retry,
    /// Out of a resource that comes back (fds, buffers, memory): report,
    /// pause, try again.
    Backoff,
    /// The socket itself is unusable: report and end the loop.
    Fatal,
}

fn classify(e: &io::Error) -> OnError {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => OnError::Backoff,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT) => OnError::Fatal,
        // accept(2): errors of the new connection, "treat them like EAGAIN
        // by retrying"; and for UDP, ICMP errors of earlier sends.
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::ECONNREFUSED
            | libc::EINTR
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENOPROTOOPT,
        ) => OnError::Retry,
        #[cfg(any(target_os = "linux", target_os = "android"))]
        Some(libc::ENONET) => OnError::Retry,
        // Unknown: never spin on it, never give up on it.
        _ => OnError::Backoff,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Made, not started.
    Idle,
    /// The serving loop runs.
    Serving,
    /// The serving loop ended with an error; handlers may still run.
    Failed,
    /// `stop` is at work.
    Stopping,
    /// Stopped for good.
    Stopped,
}

type ErrorHandler = Rc<dyn Fn(&io::Error)>;

/// What both servers share: the life cycle, the serving greenlet, the
/// error handler and the greenlets in `serve_forever`.
struct Core {
    kind: &'static str,
    state: Cell<State>,
    local: Option<SocketAddr>,
    on_error: RefCell<ErrorHandler>,
    /// The greenlet running the accept (or receive) loop.
    worker: RefCell<Option<Greenlet<()>>>,
    /// Its id, kept after `stop` takes the handle.
    worker_id: Cell<Option<u64>>,
    /// Greenlets in `serve_forever`.
    done: WaitList<()>,
    /// Why the serving loop failed, for `serve_forever`.
    error: RefCell<Option<io::Error>>,
    /// The greenlet in `stop` waiting for handlers to end.
    stopper: RefCell<Option<Rc<Task>>>,
}

impl Core {
    fn new(kind: &'static str, local: Option<SocketAddr>) -> Core {
        let on_error: ErrorHandler = Rc::new(move |e: &io::Error| match local {
            Some(a) => eprintln!("libev::green::server: {kind} on {a}: {e}"),
            None => eprintln!("libev::green::server: {kind}: {e}"),
        });
        Core {
            kind,
            state: Cell::new(State::Idle),
            local,
            on_error: RefCell::new(on_error),
            worker: RefCell::new(None),
            worker_id: Cell::new(None),
            done: WaitList::default(),
            error: RefCell::new(None),
            stopper: RefCell::new(None),
        }
    }

    /// Begins a stop: `close` takes the server's socket (waking the
    /// serving loop if it waits on it). Returns whether a stop of a
    /// started server is now under way; stopping an idle server just
    /// closes it, and stopping twice does nothing.
    fn begin_stop(&self, close: impl FnOnce()) -> bool {
        match self.state.get() {
            State::Idle => {
                self.state.set(State::Stopped);
                close();
                false
            }
            State::Serving | State::Failed => {
                self.state.set(State::Stopping);
                close();
                self.wake_worker();
                true
            }
            State::Stopping | State::Stopped => false,
        }
    }

    /// Parks the calling greenlet, as the stopper that [`wake_stopper`]
    /// wakes, until `done()` or `timeout`; returns `done()`.
    ///
    /// [`wake_stopper`]: Core::wake_stopper
    fn park_stopper(&self, timeout: Duration, what: &dyn fmt::Display, done: impl Fn() -> bool) -> bool {
        *self.stopper.borrow_mut() = Some(with_hub(|hub| hub.current()));
        struct Clear<'a>(&'a RefCell<Option<Rc<Task>>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.borrow_mut().take();
            }
        }
        let _clear = Clear(&self.stopper);
        park_until(Some(timeout), what, done)
    }

    /// A handler ended (or the serving loop did): the stopper, if any,
    /// re-checks what it waits for.
    fn wake_stopper(&self) {
        if let Some(t) = self.stopper.borrow().as_ref() {
            try_with_hub(|hub| hub.wake(t, Wake::Normal));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.local
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the server's socket has no address"))
    }

    fn stopping(&self) -> bool {
        matches!(self.state.get(), State::Stopping | State::Stopped)
    }

    fn report(&self, e: &io::Error) {
        let handler = self.on_error.borrow().clone();
        handler(e);
    }

    /// Pauses the serving loop for `pause`, or until `stop`.
    fn pause(&self, pause: Duration) {
        park_until(Some(pause), &format_args!("{} pause after an error", self.kind), || self.stopping());
    }

    /// Wakes the serving loop from a pause or a slot wait.
    fn wake_worker(&self) {
        if let Some(w) = self.worker.borrow().as_ref() {
            try_with_hub(|hub| hub.wake(w.task(), Wake::Normal));
        }
    }

    /// Runs when the serving loop ends, however it ends.
    fn worker_ended(&self, result: Option<io::Error>) {
        if self.state.get() == State::Serving {
            self.state.set(State::Failed);
            let e = result
                .unwrap_or_else(|| io::Error::other(format!("the {} loop ended by a panic", self.kind)));
            *self.error.borrow_mut() = Some(e);
            self.wake_serve_forever();
        }
    }

    fn wake_serve_forever(&self) {
        for w in self.done.take_all() {
            w.fill(());
        }
    }

    /// Waits until the serving loop's greenlet has ended (unless it is the
    /// caller), then drops its handle, which reports a panic it ended in.
    fn wait_worker(&self) {
        let Some(worker) = self.worker.borrow_mut().take() else { return };
        if worker.id() != with_hub(|hub| hub.current().id) {
            wait_done(worker.task());
        }
    }

    /// Reports `e` and pauses the serving loop, doubling `backoff` for the
    /// next time (gevent's answer to EMFILE and friends).
    fn back_off(&self, e: &io::Error, backoff: &mut Duration) {
        self.report(e);
        self.pause(*backoff);
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }

    /// What the serving loop does about the accept or receive error `e`:
    /// retry at once, back off, or give up with it.
    fn on_error(&self, e: io::Error, backoff: &mut Duration) -> io::Result<()> {
        match classify(&e) {
            OnError::Retry => Ok(()),
            OnError::Backoff => {
                self.back_off(&e, backoff);
                Ok(())
            }
            OnError::Fatal => {
                self.report(&e);
                Err(e)
            }
        }
    }

    /// `serve_forever`: start if needed, then wait for the end.
    fn serve_forever(&self, start: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        match self.state.get() {
            State::Idle => start()?,
            State::Stopping | State::Stopped => return Err(stopped_error(self.kind)),
            State::Serving | State::Failed => {}
        }
        while matches!(self.state.get(), State::Serving | State::Stopping) {
            if !super::hub::can_switch() {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("libev::green: {} serve_forever cannot wait during an unwind", self.kind),
                ));
            }
            let w = Waiter::new();
            self.done.push(w.clone());
            wait_on(&self.done, &w, None, &format_args!("{} serve_forever", self.kind));
        }
        match self.error.borrow_mut().take() {
            Some(e) => Err(e),
            None if self.state.get() == State::Failed => Err(io::Error::other(format!(
                "the {} loop failed (reported to an earlier caller)",
                self.kind
            ))),
            None => Ok(()),
        }
    }
}

fn stopped_error(kind: &str) -> io::Error {
    io::Error::other(format!("the {kind} was stopped; make a new one to serve again"))
}

/// Stops a server whose `serve_forever` caller unwinds (killed, timed
/// out): in a new greenlet, since nothing may block during an unwind.
struct StopOnUnwind<F: Fn() + 'static>(Option<F>);

impl<F: Fn() + 'static> Drop for StopOnUnwind<F> {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(stop) = self.0.take()
        {
            // If no stack can be had, the server keeps serving; there
            // is no way to report that from inside an unwind.
            let _ = Builder::new().spawn(stop);
        }
    }
}

/// A TCP server that runs `handler(stream, peer)` on a new greenlet for
/// every connection (gevent's `StreamServer`).
///
/// - [`serve_forever`](StreamServer::serve_forever) serves until
///   [`stop`](StreamServer::stop) (blocking the calling greenlet);
///   [`start`](StreamServer::start) serves in a background greenlet and
///   returns at once.
/// - [`max_connections`](StreamServer::max_connections) caps the
///   handlers running at once: at the cap the server stops accepting, and
///   new connections wait in the listen backlog.
/// - Accept errors that mean "out of fds or memory for now" (`EMFILE`,
///   `ENFILE`, `ENOBUFS`, `ENOMEM`) do not end the server: it reports
///   them to the [error handler](StreamServer::error_handler) and pauses,
///   5 ms at first, doubling up to 1 s while they go on, then keeps
///   serving. Errors of a single connection (`ECONNABORTED`, ...) are
///   skipped. Only errors that say the listener itself is unusable
///   (`EBADF`, `EINVAL`, `ENOTSOCK`) end it, and `serve_forever` returns
///   them.
/// - A handler that panics ends only its own greenlet; the panic goes to
///   the [unjoined-panic handler](super::set_unjoined_panic_handler).
///
/// `StreamServer` is a cheap handle (clone it to stop the server from a
/// handler). Dropping the handles does not stop a started server.
///
/// ```
/// use libev::green::{net::TcpStream, server::StreamServer};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// // An echo server, at most 100 connections at a time.
/// let server = StreamServer::bind("127.0.0.1:0", |stream, _peer| {
///     let _ = std::io::copy(&mut &stream, &mut &stream);
/// })?
/// .max_connections(100);
/// server.start()?;
///
/// let mut client = TcpStream::connect(server.local_addr()?)?;
/// client.write_all(b"ping")?;
/// let mut buf = [0; 4];
/// client.read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// drop(client);
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct StreamServer {
    inner: Rc<StreamInner>,
}

struct StreamInner {
    core: Core,
    /// Until `stop`; the accept loop holds another reference while it runs.
    listener: RefCell<Option<Rc<TcpListener>>>,
    handler: Box<dyn Fn(TcpStream, SocketAddr)>,
    max: Cell<Option<usize>>,
    /// Handlers running (or spawned and not yet ended).
    active: Cell<usize>,
    handlers: RefCell<Handlers>,
    /// The accept loop waits for a free slot.
    waiting_for_slot: Cell<bool>,
    /// Accepting is paused (`stop_accepting`).
    paused: Cell<bool>,
    /// Handlers run on the accept loop's greenlet (`handle_inline`).
    inline: Cell<bool>,
}

/// The handlers' greenlets, in slots reused as they end.
#[derive(Default)]
struct Handlers {
    slots: Vec<Option<Greenlet<()>>>,
    free: Vec<usize>,
}

/// Owned by a handler's closure: frees its slot when the handler ends
/// (returns, panics, is killed) or never runs.
struct HandlerGuard {
    inner: Rc<StreamInner>,
    slot: usize,
}

impl Drop for HandlerGuard {
    fn drop(&mut self) {
        let inner = &self.inner;
        let handle = {
            let mut h = inner.handlers.borrow_mut();
            if self.slot < h.slots.len() {
                h.free.push(self.slot);
                h.slots[self.slot].take()
            } else {
                None
            }
        };
        // Outside the borrow: dropping the handle may report a panic to
        // user code.
        drop(handle);
        inner.active.set(inner.active.get() - 1);
        if inner.waiting_for_slot.get() {
            inner.core.wake_worker();
        }
        inner.core.wake_stopper();
    }
}

impl StreamServer {
    /// A server on a new listener bound to `addr` (see
    /// [`TcpListener::bind`]), not yet serving.
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<StreamServer>
    where
        A: ToSocketAddrs + Send,
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        Ok(StreamServer::new(TcpListener::bind(addr)?, handler))
    }

    /// A server accepting on `listener`, not yet serving. The server
    /// closes the listener when it stops.
    pub fn new<F>(listener: TcpListener, handler: F) -> StreamServer
    where
        F: Fn(TcpStream, SocketAddr) + 'static,
    {
        let local = listener.local_addr().ok();
        StreamServer {
            inner: Rc::new(StreamInner {
                core: Core::new("StreamServer", local),
                listener: RefCell::new(Some(Rc::new(listener))),
                handler: Box::new(handler),
                max: Cell::new(None),
                active: Cell::new(0),
                handlers: RefCell::new(Handlers::default()),
                waiting_for_slot: Cell::new(false),
                paused: Cell::new(false),
                inline: Cell::new(false),
            }),
        }
    }

    /// Runs at most `n` handlers at once; at the cap the server stops
    /// accepting until one ends (connections wait in the listen backlog).
    /// Takes effect for the next connection, started or not.
    ///
    /// # Panics
    ///
    /// If `n` is zero.
    pub fn max_connections(self, n: usize) -> StreamServer {
        assert!(n > 0, "StreamServer::max_connections: the cap must be at least 1");
        self.inner.max.set(Some(n));
        if self.inner.waiting_for_slot.get() {
            self.inner.core.wake_worker();
        }
        self
    }

    /// Runs each connection's handler on the accept loop's own greenlet
    /// (gevent's `StreamServer(..., spawn=None)`): one connection at a
    /// time, accepting only between handlers, and no greenlet spawned per
    /// connection. A handler's panic is reported (as a spawned handler's
    /// is) and the loop goes on; [`stop`](StreamServer::stop) gives the
    /// running handler its timeout, then kills it.
    /// [`max_connections`](StreamServer::max_connections) has no effect,
    /// and neither has this once the server has started.
    ///
    /// ```
    /// use libev::green::{net::TcpStream, server::StreamServer};
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |mut s, _| {
    ///     let _ = s.write_all(b"one at a time");
    /// })?
    /// .handle_inline();
    /// server.start()?;
    /// let mut reply = String::new();
    /// TcpStream::connect(server.local_addr()?)?.read_to_string(&mut reply)?;
    /// assert_eq!(reply, "one at a time");
    /// server.stop(Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn handle_inline(self) -> StreamServer {
        // Not once serving: its handlers were spawned the other way, and
        // `stop` must treat them alike.
        if self.inner.core.state.get() == State::Idle {
            self.inner.inline.set(true);
        }
        self
    }

    /// Pauses accepting (gevent's `stop_accepting`): the listener stays
    /// open, new connections wait in its backlog, running handlers go on.
    /// [`start_accepting`](StreamServer::start_accepting) resumes.
    ///
    /// ```
    /// use libev::green::{net::TcpStream, server::StreamServer};
    /// use std::io::Read;
    /// use std::time::Duration;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_, _| ())?;
    /// server.start()?;
    /// server.stop_accepting();
    /// let mut client = TcpStream::connect(server.local_addr()?)?; // waits in the backlog
    /// client.set_read_timeout(Some(Duration::from_millis(20)))?;
    /// assert!(client.read(&mut [0; 1]).is_err(), "not served while paused");
    /// server.start_accepting();
    /// assert_eq!(client.read(&mut [0; 1])?, 0, "served (and closed) once resumed");
    /// server.stop(Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_accepting(&self) {
        self.inner.paused.set(true);
    }

    /// Resumes accepting after
    /// [`stop_accepting`](StreamServer::stop_accepting) (gevent's
    /// `start_accepting`).
    pub fn start_accepting(&self) {
        if self.inner.paused.replace(false) {
            self.inner.core.wake_worker();
        }
    }

    /// Whether the server accepts connections now: started, not stopped,
    /// and not paused.
    pub fn is_accepting(&self) -> bool {
        self.inner.core.state.get() == State::Serving && !self.inner.paused.get()
    }

    /// Replaces what happens with accept errors the server survives
    /// (after which it pauses) or ends on. The default prints one line to
    /// stderr. The handler runs on the accept loop's greenlet.
    pub fn error_handler(self, handler: impl Fn(&io::Error) + 'static) -> StreamServer {
        *self.inner.core.on_error.borrow_mut() = Rc::new(handler);
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.core.local_addr()
    }

    /// The number of handlers running now.
    pub fn connection_count(&self) -> usize {
        self.inner.active.get()
    }

    /// Starts serving in a background greenlet and returns. Fails if the
    /// server was started before.
    pub fn start(&self) -> io::Result<()> {
        let core = &self.inner.core;
        if core.state.get() != State::Idle {
            return Err(io::Error::other("StreamServer: already started"));
        }
        let listener = self.inner.listener.borrow().clone().ok_or_else(|| stopped_error(core.kind))?;
        let inner = self.inner.clone();
        let worker = Builder::new().name("StreamServer accept loop").spawn(move || {
            struct Ended(Rc<StreamInner>, Option<io::Error>);
            impl Drop for Ended {
                fn drop(&mut self) {
                    self.0.core.worker_ended(self.1.take());
                }
            }
            let mut ended = Ended(inner.clone(), None);
            if let Err(e) = accept_loop(&inner, &listener) {
                ended.1 = Some(e);
            }
            // The listener closes here, unless `stop` has not taken
            // the server's reference yet.
            drop(listener);
        })?;
        core.state.set(State::Serving);
        core.worker_id.set(Some(worker.id()));
        *core.worker.borrow_mut() = Some(worker);
        Ok(())
    }

    /// Serves until [`stop`](StreamServer::stop) (starting first unless
    /// started), blocking the calling greenlet. Returns `Ok` once stopped,
    /// or the error that made the accept loop give up. If the calling
    /// greenlet is killed or times out meanwhile, the server is stopped
    /// (with a 1 s grace period for its handlers).
    pub fn serve_forever(&self) -> io::Result<()> {
        let me = self.clone();
        let _stop = StopOnUnwind(Some(move || me.stop(Duration::from_secs(1))));
        self.inner.core.serve_forever(|| self.start())
    }

    /// Stops the server: stops accepting and closes the listener, waits up
    /// to `timeout` for running handlers to end, kills those left, and then
    /// wakes `serve_forever`. Called from one of the server's handlers, it
    /// returns once accepting has stopped, and the waiting (the caller's
    /// own handler included) goes on in a new greenlet. Stopping twice
    /// does nothing.
    pub fn stop(&self, timeout: Duration) {
        let inner = &self.inner;
        let core = &inner.core;
        let close = || {
            if let Some(l) = inner.listener.borrow_mut().take() {
                l.source().wake(Interest::Read);
            }
        };
        if !core.begin_stop(close) {
            return;
        }
        // Killed or timed out below, the stop still completes, at once,
        // in a new greenlet: no server is left half stopped.
        let _complete = {
            let inner = inner.clone();
            StopOnUnwind(Some(move || {
                if inner.inline.get() {
                    inner.finish_inline(Duration::ZERO)
                } else {
                    inner.finish_stop(Duration::ZERO)
                }
            }))
        };
        if inner.inline.get() {
            return inner.stop_inline(timeout);
        }
        core.wait_worker();

        let me = with_hub(|hub| hub.current().id);
        let in_handler = inner.handlers.borrow().slots.iter().flatten().any(|g| g.id() == me);
        if in_handler {
            let inner = inner.clone();
            // Without a stack the handlers are left to end by themselves.
            let _ = Builder::new().spawn(move || inner.finish_stop(timeout));
        } else {
            inner.finish_stop(timeout);
        }
    }
}

impl StreamInner {
    /// `stop` of a server whose handlers run on the accept loop: gives the
    /// running handler (if any) `timeout`, then kills the loop. From the
    /// handler itself, the waiting goes on in a new greenlet.
    fn stop_inline(self: &Rc<Self>, timeout: Duration) {
        let me = with_hub(|hub| hub.current().id);
        let from_worker = self.core.worker_id.get() == Some(me);
        if from_worker {
            let inner = self.clone();
            // Without a stack the loop is left to end by itself.
            let _ = Builder::new().spawn(move || inner.finish_inline(timeout));
        } else {
            self.finish_inline(timeout);
        }
    }

    /// Waits up to `timeout` for the accept loop (running a handler) to
    /// end, kills it if it has not, and ends the stop.
    fn finish_inline(&self, timeout: Duration) {
        let worker = self.core.worker.borrow().as_ref().map(|w| w.task().clone());
        if let Some(w) = worker
            && !wait_done_timeout(&w, Some(timeout))
        {
            kill_task(&w);
        }
        self.core.worker.borrow_mut().take();
        self.core.state.set(State::Stopped);
        self.core.wake_serve_forever();
    }

    /// Runs the handler on the accept loop (`handle_inline`); a panic is
    /// reported, a kill or timeout of the loop goes on.
    fn run_inline(&self, stream: TcpStream, peer: SocketAddr) {
        self.active.set(self.active.get() + 1);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.handler)(stream, peer)));
        self.active.set(self.active.get() - 1);
        if let Err(p) = r {
            if super::greenlet::is_interrupt(&p) {
                std::panic::resume_unwind(p);
            }
            super::greenlet::report_caught_panic(&p);
        }
    }

    /// Waits for the handlers, kills those left, and ends the stop.
    fn finish_stop(&self, timeout: Duration) {
        if self.active.get() > 0 {
            self.core.park_stopper(timeout, &"StreamServer handlers to end", || self.active.get() == 0);
        }
        // One at a time: a caller interrupted here leaves the rest listed
        // for the stop's completion (see `stop`).
        loop {
            let next = self.handlers.borrow_mut().slots.iter_mut().find_map(Option::take);
            let Some(g) = next else { break };
            g.kill();
        }
        self.core.state.set(State::Stopped);
        self.core.wake_serve_forever();
    }

    fn spawn_handler(self: &Rc<Self>, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
        let slot = {
            let mut h = self.handlers.borrow_mut();
            match h.free.pop() {
                Some(s) => s,
                None => {
                    h.slots.push(None);
                    h.slots.len() - 1
                }
            }
        };
        self.active.set(self.active.get() + 1);
        let guard = HandlerGuard { inner: self.clone(), slot };
        let g = Builder::new().spawn(move || {
            let guard = guard;
            (guard.inner.handler)(stream, peer);
        })?;
        self.handlers.borrow_mut().slots[slot] = Some(g);
        Ok(())
    }
}

fn accept_loop(inner: &Rc<StreamInner>, listener: &TcpListener) -> io::Result<()> {
    let core = &inner.core;
    let mut backoff = MIN_BACKOFF;
    let mut batch = 0;
    loop {
        if core.stopping() {
            return Ok(());
        }
        if inner.paused.get() {
            park_until(None, &"StreamServer to start accepting again", || {
                !inner.paused.get() || core.stopping()
            });
            continue;
        }
        if let Some(max) = inner.max.get()
            && inner.active.get() >= max
        {
            inner.waiting_for_slot.set(true);
            park_until(None, &"a free StreamServer connection slot", || {
                inner.active.get() < max || core.stopping() || inner.max.get() != Some(max)
            });
            inner.waiting_for_slot.set(false);
            continue;
        }
        match listener.accept_now() {
            Ok((stream, peer)) if inner.inline.get() => inner.run_inline(stream, peer),
            Ok((stream, peer)) => {
                match inner.spawn_handler(stream, peer) {
                    Ok(()) => backoff = MIN_BACKOFF,
                    // No stack for a greenlet: the connection is dropped.
                    Err(e) => core.back_off(&e, &mut backoff),
                }
                batch += 1;
                if batch == ACCEPT_BATCH {
                    batch = 0;
                    super::yield_now();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                batch = 0;
                listener.source().wait(Interest::Read, None)?;
            }
            Err(e) => core.on_error(e, &mut backoff)?,
        }
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("local_addr", &self.inner.core.local)
            .field("state", &self.inner.core.state.get())
            .field("connections", &self.inner.active.get())
            .field("max_connections", &self.inner.max.get())
            .finish()
    }
}

/// A UDP server that runs `handler(datagram, peer, socket)` for every
/// datagram received (gevent's `DatagramServer`); reply with
/// `socket.send_to(reply, peer)`.
///
/// The handler runs on the server's receiving greenlet, one datagram at a
/// time, with the datagram borrowed from the server's 64 KiB buffer: no
/// greenlet and no copy per datagram. While a handler blocks, datagrams
/// queue in the socket's receive buffer; to handle them concurrently,
/// copy the datagram and [`spawn`](super::spawn) from the handler. Receive
/// errors are treated as [`StreamServer`] treats accept errors. A handler
/// that panics is reported as a greenlet nobody joins is (see
/// [`set_unjoined_panic_handler`](super::set_unjoined_panic_handler)) and
/// the server goes on with the next datagram.
///
/// ```
/// use libev::green::{net::UdpSocket, server::DatagramServer};
/// use std::time::Duration;
///
/// let server = DatagramServer::bind("127.0.0.1:0", |data, peer, socket| {
///     let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
/// })?;
/// server.start()?;
///
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"ping", server.local_addr()?)?;
/// let mut buf = [0; 16];
/// let (n, _) = client.recv_from(&mut buf)?;
/// assert_eq!(&buf[..n], b"PING");
/// server.stop(Duration::from_secs(1));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct DatagramServer {
    inner: Rc<DatagramInner>,
}

/// What a [`DatagramServer`] runs for each datagram.
type DatagramHandler = dyn Fn(&[u8], SocketAddr, &UdpSocket);

struct DatagramInner {
    core: Core,
    socket: RefCell<Option<Rc<UdpSocket>>>,
    handler: Box<DatagramHandler>,
    /// The receiving greenlet is inside the handler.
    in_handler: Cell<bool>,
}

/// The largest UDP payload (IPv4: 65535 - 20 - 8 bytes) fits.
const DATAGRAM_BUFFER: usize = 64 * 1024;

impl DatagramServer {
    /// A server on a new socket bound to `addr` (see
    /// [`UdpSocket::bind`]), not yet serving.
    pub fn bind<A, F>(addr: A, handler: F) -> io::Result<DatagramServer>
    where
        A: ToSocketAddrs + Send,
        F: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        Ok(DatagramServer::new(UdpSocket::bind(addr)?, handler))
    }

    /// A server receiving on `socket`, not yet serving. The server closes
    /// the socket when it stops.
    pub fn new<F>(socket: UdpSocket, handler: F) -> DatagramServer
    where
        F: Fn(&[u8], SocketAddr, &UdpSocket) + 'static,
    {
        let local = socket.local_addr().ok();
        DatagramServer {
            inner: Rc::new(DatagramInner {
                core: Core::new("DatagramServer", local),
                socket: RefCell::new(Some(Rc::new(socket))),
                handler: Box::new(handler),
                in_handler: Cell::new(false),
            }),
        }
    }

    /// Replaces what happens with receive errors the server survives or
    /// ends on (see [`StreamServer::error_handler`]).
    pub fn error_handler(self, handler: impl Fn(&io::Error) + 'static) -> DatagramServer {
        *self.inner.core.on_error.borrow_mut() = Rc::new(handler);
        self
    }

    /// The address the server receives on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.core.local_addr()
    }

    /// Starts serving in a background greenlet and returns. Fails if the
    /// server was started before.
    pub fn start(&self) -> io::Result<()> {
        let core = &self.inner.core;
        if core.state.get() != State::Idle {
            return Err(io::Error::other("DatagramServer: already started"));
        }
        let socket = self.inner.socket.borrow().clone().ok_or_else(|| stopped_error(core.kind))?;
        let inner = self.inner.clone();
        let worker = Builder::new().name("DatagramServer receive loop").spawn(move || {
            struct Ended(Rc<DatagramInner>, Option<io::Error>);
            impl Drop for Ended {
                fn drop(&mut self) {
                    self.0.in_handler.set(false);
                    let core = &self.0.core;
                    core.worker_ended(self.1.take());
                    if core.state.get() == State::Stopping {
                        // Closes the socket (the loop's clone is gone) and
                        // ends a stop begun inside the handler, or one
                        // that waits for this end anyway.
                        self.0.socket.borrow_mut().take();
                        core.worker.borrow_mut().take();
                        core.state.set(State::Stopped);
                        core.wake_serve_forever();
                    }
                    core.wake_stopper();
                }
            }
            let mut ended = Ended(inner.clone(), None);
            if let Err(e) = receive_loop(&inner, &socket) {
                ended.1 = Some(e);
            }
            drop(socket);
        })?;
        core.state.set(State::Serving);
        core.worker_id.set(Some(worker.id()));
        *core.worker.borrow_mut() = Some(worker);
        Ok(())
    }

    /// Serves until [`stop`](DatagramServer::stop), blocking the calling
    /// greenlet, as [`StreamServer::serve_forever`] does.
    pub fn serve_forever(&self) -> io::Result<()> {
        let me = self.clone();
        let _stop = StopOnUnwind(Some(move || me.stop(Duration::from_secs(1))));
        self.inner.core.serve_forever(|| self.start())
    }

    /// Stops the server: stops receiving, waits up to `timeout` for a
    /// handler that is running to return (killing the receiving greenlet
    /// after that), closes the socket and wakes `serve_forever`. Called
    /// from the handler, it returns at once and the server stops when the
    /// handler returns. Stopping twice does nothing.
    pub fn stop(&self, timeout: Duration) {
        let inner = &self.inner;
        let core = &inner.core;
        let close = || {
            if let Some(s) = inner.socket.borrow_mut().take() {
                s.source().wake(Interest::Read);
            }
        };
        if !core.begin_stop(close) {
            return;
        }
        // As for `StreamServer::stop`: interrupted, the stop completes at
        // once in a new greenlet.
        let _complete = {
            let inner = inner.clone();
            StopOnUnwind(Some(move || {
                let worker = inner.core.worker.borrow_mut().take();
                if let Some(w) = worker {
                    w.kill();
                }
                inner.core.state.set(State::Stopped);
                inner.core.wake_serve_forever();
            }))
        };
        let me = with_hub(|hub| hub.current().id);
        let worker_is_me = core.worker.borrow().as_ref().is_some_and(|w| w.id() == me);
        if worker_is_me {
            // The receive loop sees `Stopping` once the handler returns,
            // and its end finishes the stop (see `start`).
            return;
        }
        if inner.in_handler.get() {
            let returned = core
                .park_stopper(timeout, &"the DatagramServer handler to return", || !inner.in_handler.get());
            if !returned {
                let worker = core.worker.borrow_mut().take();
                if let Some(w) = worker {
                    w.kill();
                }
            }
        }
        core.wait_worker();
        core.state.set(State::Stopped);
        core.wake_serve_forever();
    }
}

fn receive_loop(inner: &DatagramInner, socket: &UdpSocket) -> io::Result<()> {
    let core = &inner.core;
    let mut buf = vec![0u8; DATAGRAM_BUFFER];
    let mut backoff = MIN_BACKOFF;
    loop {
        if core.stopping() {
            return Ok(());
        }
        match socket.recv_from_now(&mut buf) {
            Ok((n, peer)) => {
                backoff = MIN_BACKOFF;
                inner.in_handler.set(true);
                let r = panic::catch_unwind(AssertUnwindSafe(|| (inner.handler)(&buf[..n], peer, socket)));
                inner.in_handler.set(false);
                match r {
                    Ok(()) => {}
                    // A kill or timeout of the receiving greenlet.
                    Err(p) if is_interrupt(&p) => panic::resume_unwind(p),
                    // A panicking handler does not end the server.
                    Err(p) => report_caught_panic(&p),
                }
                core.wake_stopper();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                socket.source().wait(Interest::Read, None)?;
            }
            Err(e) => core.on_error(e, &mut backoff)?,
        }
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("local_addr", &self.inner.core.local)
            .field("state", &self.inner.core.state.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_are_sorted_by_what_fixes_them() {
        let os = io::Error::from_raw_os_error;
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(classify(&os(errno)), OnError::Backoff, "errno {errno}");
        }
        for errno in [libc::ECONNABORTED, libc::EINTR, libc::EPROTO, libc::ECONNREFUSED] {
            assert_eq!(classify(&os(errno)), OnError::Retry, "errno {errno}");
        }
        for errno in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK] {
            assert_eq!(classify(&os(errno)), OnError::Fatal, "errno {errno}");
        }
        // Unknown errors pause rather than spin or give up.
        assert_eq!(classify(&io::Error::other("strange")), OnError::Backoff);
    }
}
