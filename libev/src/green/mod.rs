//! gevent's programming model: green threads on the thread's libev loop.
//!
//! Blocking-style code runs on greenlets (stackful coroutines) that switch
//! whenever they wait. Each OS thread has a hub, created on first use; on
//! the main thread it runs on libev's default loop. The thread's own stack
//! is the root greenlet: `join`, `sleep` and the other blocking calls work
//! from `main` too, running the hub until they are woken.
//!
//! [`net`] has green sockets (std's `TcpStream` and friends, parking only
//! the calling greenlet); [`server`] has gevent's `StreamServer` and
//! `DatagramServer` on them.
//!
//! # gevent's names
//!
//! | gevent | here |
//! | --- | --- |
//! | `gevent.spawn`, `spawn_later`, `Greenlet(...)` with a name | [`spawn`], [`spawn_later`], [`Builder`] |
//! | `Greenlet.join`, `.join(timeout)`, `.kill`, `.kill(block=False)`, `.kill(timeout=)` | [`Greenlet::join`], [`Greenlet::join_timeout`] and [`Greenlet::wait`], [`Greenlet::kill`], [`Greenlet::kill_nowait`], [`Greenlet::kill_timeout`] |
//! | `Greenlet(f)` then `.start()`, `.started` | [`Builder::build`], [`Greenlet::start`], [`Greenlet::is_started`] |
//! | `Greenlet.link`, `.link_value`, `.link_exception`, `.unlink`, `.ready()`, `.name` | [`Greenlet::link`], [`Greenlet::link_value`], [`Greenlet::link_exception`], [`Greenlet::unlink`], [`Greenlet::is_finished`], [`Greenlet::name`] |
//! | `gevent.getcurrent()` | [`current`] |
//! | (Rust's `std::thread::scope`) | [`scope`], [`Scope::spawn`], [`Builder::spawn_scoped`] |
//! | `gevent.local.local` | [`green_local!`](crate::green_local) ([`GreenLocal`]) |
//! | `gevent.joinall`, `joinall(timeout=, count=)`, `joinall(raise_error=True)`, `gevent.killall` | [`joinall`], [`wait_greenlets`], [`try_joinall`], [`killall`] |
//! | `gevent.sleep`, `sleep(0)` | [`sleep`], [`yield_now`] |
//! | `gevent.wait(objects, timeout, count)`, `gevent.iwait` | [`wait`], [`iwait`] (over [`Waitable`]s; fds through [`readable`] / [`writable`]) |
//! | `gevent.Timeout`, `with_timeout` | [`Timeout`], [`with_timeout`] |
//! | `get_hub().loop`, `hub.wait(watcher)` | [`hub_loop`], [`wait_watcher`] |
//! | `gevent.socket.wait_read`, `wait_write`, `cancel_wait` | [`wait_readable`], [`wait_writable`], [`cancel_wait`] |
//! | `gevent.signal_handler` | [`signal::signal_handler`] (and [`signal::wait`]) |
//! | `loop.run_callback_threadsafe`, `ThreadResult` | [`hub_handle`] ([`HubHandle::run_callback`], [`HubHandle::spawn`]), [`oneshot`] |
//! | `gevent.threadpool` (`spawn` on the hub's pool) | [`spawn_blocking`], [`set_blocking_threads`] |
//! | `gevent.event.Event`, `AsyncResult` | [`sync::Event`], [`sync::AsyncResult`] |
//! | `gevent.queue.Queue`, `Channel` | [`sync::Queue`], [`sync::Channel`] |
//! | `gevent.lock.Semaphore`, `BoundedSemaphore`, a lock | [`sync::Semaphore`], [`sync::Mutex`] |
//! | `gevent.queue.JoinableQueue` (`task_done`, `join`), `PriorityQueue`, `LifoQueue` | [`sync::JoinableQueue`], [`sync::PriorityQueue`], [`sync::LifoQueue`] |
//! | `gevent.lock.RLock`, `threading.Condition` (monkey-patched) | [`sync::RLock`], [`sync::Condvar`] |
//! | `gevent.pool.Pool`, `Group` (`map`, `imap`, `imap_unordered`, `apply`, `apply_async`, `add`, `discard`, `killone`, `kill(timeout=)`, `wait_available`, `free_count`) | [`pool::Pool`], [`pool::Group`] (the same names; [`pool::Group::kill_timeout`]) |
//! | `gevent.config.monitor_thread`, `max_blocking_time`, `EventLoopBlocked` | [`monitor::start`], [`monitor::DEFAULT_MAX_BLOCKING_TIME`], [`monitor::BlockingReport`] via [`monitor::set_handler`] |
//! | `gevent.socket` (monkey-patched sockets) | [`net`] (std's socket types, green) |
//! | `gevent.server.StreamServer`, `DatagramServer` | [`server::StreamServer`], [`server::DatagramServer`] |
//! | gunicorn's `-w N -k gevent` (forked workers, each a gevent hub, under an arbiter) | [`server::PreforkServer`] (Linux, Android) |
//! | `StreamServer.stop_accepting`, `start_accepting`, `spawn=None` | [`server::StreamServer::stop_accepting`], [`server::StreamServer::start_accepting`], [`server::StreamServer::handle_inline`] |
//! | `gevent.subprocess` (`Popen`, `communicate`, `check_output`) | [`process`] (std's `Command` and `Child`, green) |
//! | `gevent.fileobject.FileObject`, `FileObjectPosix`, `FileObjectThread` | [`io::FileObject`] (picks its [`io::Mode`]: `Posix` or `Thread`) |
//! | `FileObjectThread` on a regular file (`FileObject(path, mode)`) | [`fs::File`], [`fs::OpenOptions`], [`fs::read`], [`fs::read_to_string`], [`fs::write`] |
//! | `sys.stdin`, `sys.stdout`, `sys.stderr` wrapped in a `FileObject` | [`io::stdin`], [`io::stdout`], [`io::stderr`] |
//! | `gevent.fork` / `os.fork` after monkey patching | `fork` works as is: a `pthread_atfork` handler re-initialises the hub's loop in the child |
//!
//! ```
//! use libev::green;
//! use std::time::Duration;
//!
//! let a = green::spawn(|| { green::sleep(Duration::from_millis(2)); "a" });
//! let b = green::spawn(|| "b");
//! assert_eq!(green::joinall([a, b]).into_iter().map(Result::unwrap).collect::<Vec<_>>(), ["a", "b"]);
//! ```

mod blocking;
mod fork;
pub mod fs;
mod greenlet;
mod hub;
pub mod io;
mod local;
pub mod monitor;
pub mod net;
mod overflow;
pub mod pool;
pub mod process;
mod remote;
mod scope;
pub mod server;
pub mod signal;
mod stack;
pub mod sync;
mod task;
mod timeout;
mod valgrind;
mod wait;
mod wait_any;
mod watch;

pub use blocking::{DEFAULT_BLOCKING_THREADS, set_blocking_threads, spawn_blocking};
pub use greenlet::{
    Builder, CurrentGreenlet, DEFAULT_STACK_SIZE, Greenlet, GreenletError, LinkId, PanicReport, current,
    joinall, killall, set_unjoined_panic_handler, spawn, spawn_later, try_joinall, wait_greenlets,
};
pub use local::{AccessError, GreenLocal};
pub use remote::{HubHandle, OneshotReceiver, OneshotSender, hub_handle, oneshot};
pub use scope::{Scope, ScopedGreenlet, scope};
pub use timeout::{Elapsed, Timeout, with_timeout};
pub use wait_any::{FdReady, Iwait, Waitable, iwait, readable, wait, writable};
pub use watch::{Wakeup, cancel_wait, wait_readable, wait_watcher, wait_writable};

use hub::with_hub;
use std::time::Duration;

/// Blocks the current greenlet for at least `duration`, measured from the
/// call (libev's cached time is refreshed first). Zero yields instead.
/// Returns at once where no green call waits (in a destructor during an
/// unwind, see the crate docs).
///
/// # Panics
///
/// Unwinds if the greenlet is killed or its timeout expires meanwhile.
#[inline]
pub fn sleep(duration: Duration) {
    if duration.is_zero() {
        return yield_now();
    }
    // Nothing ends this wait but its deadline (or an interrupt).
    wait::park_until(Some(duration), &"sleep", || false);
}

/// This thread's hub loop, for raw watchers that should run alongside the
/// greenlets. Their callbacks run on the hub and must not block: a
/// blocking green call from one panics (gevent's BlockingSwitchOutError).
pub fn hub_loop() -> crate::Loop {
    with_hub(|hub| hub.lp.clone())
}

/// Lets every other ready greenlet run before the caller continues
/// (gevent's `sleep(0)`). Callbacks queued on the hub's loop with
/// [`Loop::run_callback`](crate::Loop::run_callback) run first too, with
/// the greenlets they wake, as gevent's `sleep(0)` queues the caller
/// behind them; with none queued it is a plain switch.
///
/// ```
/// use libev::green;
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// green::hub_loop().run_callback(move || r.set(true));
/// green::yield_now();
/// assert!(ran.get());
/// ```
#[inline]
pub fn yield_now() {
    with_hub(|hub| hub.yield_now())
}
