//! Crossing threads: [`HubHandle`], a `Send + Sync` handle to a thread's
//! hub (gevent's `run_callback_threadsafe`, Tornado's `add_callback`), and
//! [`oneshot`], a value sent from any thread to a greenlet that waits for
//! it without blocking its hub.
//!
//! Both ride on the hub loop's [`LoopRemote`]: a closure queued from
//! another thread runs on the hub's thread as a loop callback. A oneshot's
//! receiving half is an [`AsyncResult`] of its own thread, which the
//! sender's closure finds again by id in a thread-local table (it cannot
//! carry the `!Send` result across).

use super::greenlet::{Greenlet, GreenletError, spawn};
use super::hub::{try_with_hub, with_hub};
use super::sync::AsyncResult;
use crate::LoopRemote;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// A `Send + Sync` handle to a thread's hub: any thread can run a callback
/// there or spawn a greenlet there (see [`hub_handle`]). Cheap to clone.
///
/// ```
/// use libev::green;
///
/// let handle = green::hub_handle();
/// let worker = std::thread::spawn(move || {
///     // On another OS thread: run work on the first thread's hub.
///     let result = handle.spawn(|| std::thread::current().name().map(str::to_owned));
///     result.recv().unwrap().unwrap()
/// });
/// // The first thread's greenlets (here its root) keep its hub running.
/// while !worker.is_finished() {
///     green::sleep(std::time::Duration::from_millis(1));
/// }
/// assert_eq!(worker.join().unwrap(), std::thread::current().name().map(str::to_owned));
/// ```
#[derive(Clone)]
pub struct HubHandle {
    remote: LoopRemote,
}

/// The calling thread's hub, as a handle other threads can use.
pub fn hub_handle() -> HubHandle {
    with_hub(|hub| HubHandle { remote: hub.lp.remote() })
}

impl HubHandle {
    /// Runs `f` on the hub's thread, as a callback of its loop (not in a
    /// greenlet: it may spawn greenlets but must not block). Returns
    /// `false`, dropping `f`, if the hub's thread has ended. It runs when
    /// the hub next runs, that is when a greenlet of that thread waits.
    pub fn run_callback(&self, f: impl FnOnce() + Send + 'static) -> bool {
        self.remote.run_callback(f)
    }

    /// Spawns a greenlet running `f` on the hub's thread, and returns the
    /// receiving half of its result, to wait on from this thread: a
    /// greenlet's `recv` parks only it. `recv` fails with
    /// [`RecvError`] if the hub's thread ended before the greenlet did.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> OneshotReceiver<Result<T, GreenletError>> {
        let (tx, rx) = oneshot();
        self.remote.run_callback(move || {
            // One greenlet: its link (run as it ends, killed before it
            // started too) takes the handle back and sends the result.
            let g = spawn(f);
            let slot: Rc<Cell<Option<Greenlet<T>>>> = Rc::new(Cell::new(None));
            let s = slot.clone();
            g.link(move || {
                if let Some(g) = s.take() {
                    tx.send(g.join());
                }
            });
            slot.set(Some(g));
        });
        rx
    }

    /// Whether the hub's thread is still running.
    pub fn is_connected(&self) -> bool {
        self.remote.is_connected()
    }
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle").field("connected", &self.is_connected()).finish()
    }
}

thread_local! {
    /// This thread's oneshot receivers, by id: `AsyncResult<T, ()>`s
    /// (the error meaning "sender gone").
    static SLOTS: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// A channel for one value, from any thread to a greenlet of this one:
/// the sender is `Send`, and the receiver's [`recv`](OneshotReceiver::recv)
/// parks only the calling greenlet (gevent's `ThreadResult`).
///
/// ```
/// use libev::green::{self, oneshot};
///
/// let (tx, rx) = oneshot();
/// std::thread::spawn(move || tx.send(6 * 7));
/// assert_eq!(rx.recv(), Ok(42));
/// ```
pub fn oneshot<T: Send + 'static>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let id = NEXT_ID.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let result: AsyncResult<T, ()> = AsyncResult::new();
    SLOTS.with(|s| s.borrow_mut().insert(id, Box::new(result.clone())));
    let remote = with_hub(|hub| hub.lp.remote());
    (OneshotSender { remote, id, sent: false, _t: PhantomData }, OneshotReceiver { result, id })
}

/// The sending half of a [`oneshot`]: `Send` (for a `T: Send`), used once.
/// Dropping it unsent makes the receiver's `recv` fail.
pub struct OneshotSender<T: Send + 'static> {
    remote: LoopRemote,
    id: u64,
    sent: bool,
    _t: PhantomData<fn(T)>,
}

impl<T: Send + 'static> OneshotSender<T> {
    /// Sends the value, waking the receiver's greenlet. Returns `false`
    /// (dropping `value`) if the receiver's thread has ended; a value sent
    /// after the receiver was dropped is dropped on its thread.
    pub fn send(mut self, value: T) -> bool {
        self.sent = true;
        let id = self.id;
        self.remote.run_callback(move || complete(id, Ok(value)))
    }
}

impl<T: Send + 'static> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        if !self.sent {
            let id = self.id;
            self.remote.run_callback(move || complete::<T>(id, Err(())));
        }
    }
}

impl<T: Send + 'static> fmt::Debug for OneshotSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotSender").field("id", &self.id).finish_non_exhaustive()
    }
}

/// On the receiver's thread: completes receiver `id`, if it still exists.
fn complete<T: 'static>(id: u64, value: Result<T, ()>) {
    let slot = SLOTS.try_with(|s| s.borrow_mut().remove(&id)).ok().flatten();
    if let Some(result) = slot.and_then(|s| s.downcast::<AsyncResult<T, ()>>().ok()) {
        let _ = match value {
            Ok(v) => result.set(v).map_err(drop),
            Err(()) => result.set_error(()),
        };
    }
}

/// The receiving half of a [`oneshot`]; stays on its thread.
pub struct OneshotReceiver<T> {
    result: AsyncResult<T, ()>,
    id: u64,
}

impl<T> OneshotReceiver<T> {
    /// Waits for the value, parking only the calling greenlet (from the
    /// root, running the hub meanwhile). Fails if the sender was dropped
    /// unsent, or its thread could not reach this one.
    ///
    /// # Panics
    ///
    /// As other blocking green calls (a kill or timeout unwinds from here).
    pub fn recv(&self) -> Result<T, RecvError> {
        let _alive = KeepAlive::new();
        self.result.wait();
        self.take().map_err(|_| RecvError)
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let _alive = KeepAlive::new();
        if !self.result.wait_timeout(timeout) {
            return Err(RecvTimeoutError::Timeout);
        }
        self.take().map_err(|_| RecvTimeoutError::Disconnected)
    }

    /// The value if it has arrived, without waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if !self.result.ready() {
            return Err(TryRecvError::Empty);
        }
        self.take().map_err(|_| TryRecvError::Disconnected)
    }

    /// The value, once ready; `Err` if the sender went, or the value was
    /// taken already.
    fn take(&self) -> Result<T, ()> {
        self.result.take().unwrap_or(Err(()))
    }
}

/// Keeps the hub's loop running while a receiver waits: what wakes it
/// comes through the loop's remote, whose watcher does not count (see
/// [`LoopRemote`]), so without this a root greenlet waiting alone would be
/// told nothing can ever wake it.
struct KeepAlive(Option<crate::Loop>);

impl KeepAlive {
    fn new() -> KeepAlive {
        // No hub (the thread is exiting): nothing will wait anyway.
        let lp = try_with_hub(|hub| hub.lp.clone());
        if let Some(lp) = &lp {
            lp.inc_ref();
        }
        KeepAlive(lp)
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        if let Some(lp) = &self.0 {
            lp.dec_ref();
        }
    }
}

impl<T> Drop for OneshotReceiver<T> {
    fn drop(&mut self) {
        let _ = SLOTS.try_with(|s| s.borrow_mut().remove(&self.id));
    }
}

impl<T> fmt::Debug for OneshotReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotReceiver").field("ready", &self.result.ready()).finish_non_exhaustive()
    }
}
