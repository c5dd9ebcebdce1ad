//! [`LoopRemote`]: queueing callbacks onto a loop from other threads
//! (Tornado's `add_callback`, gevent's `run_callback_threadsafe`).
//!
//! The loop keeps one `ev_async` of its own (made on the first
//! [`Loop::remote`], unreferenced so that it never keeps `run` going), and
//! the remotes share a locked queue with it. A remote pushes its closure
//! and sends the async under the queue's lock, which the loop also takes
//! to disconnect before it goes, so a remote never touches a loop that is
//! gone. On the loop's thread the async's callback moves what arrived into
//! the loop's callback queue ([`Loop::run_callback`]), so remote callbacks
//! run in the same order, under the same budget and panic rules, as local
//! ones.

use crate::event_loop::{Loop, Shared};
use libev_sys as sys;
use std::cell::Cell;
use std::collections::VecDeque;
use std::ffi::c_int;
use std::fmt;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard};

type Job = Box<dyn FnOnce() + Send>;

/// A `Send + Sync` handle that queues callbacks onto a [`Loop`] from any
/// thread (Tornado's `add_callback`, gevent's `run_callback_threadsafe`);
/// see [`Loop::remote`]. Cheap to clone.
///
/// ```
/// use libev::Loop;
/// use std::sync::mpsc;
///
/// let lp = Loop::new()?;
/// let remote = lp.remote();
/// let (tx, rx) = mpsc::channel();
/// std::thread::spawn(move || {
///     let tx2 = tx.clone();
///     assert!(remote.run_callback(move || tx2.send(std::thread::current().id()).unwrap()));
/// })
/// .join()
/// .unwrap();
/// lp.run(); // runs the queued callback on this thread
/// assert_eq!(rx.recv().unwrap(), std::thread::current().id());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct LoopRemote {
    inner: Arc<Remote>,
}

/// The state remotes share with their loop.
struct Remote {
    state: Mutex<RemoteState>,
}

struct RemoteState {
    jobs: VecDeque<Job>,
    /// The loop and its `ev_async` while the loop exists.
    target: Option<(usize, usize)>,
}

/// What the loop keeps: its `ev_async` (at a stable address, first, for
/// the callback to find the rest) and the queue.
#[repr(C)]
pub(crate) struct RemoteWatcher {
    w: sys::ev_async,
    remote: Arc<Remote>,
}

impl Remote {
    fn lock(&self) -> MutexGuard<'_, RemoteState> {
        // Jobs are pushed and popped whole: a panic elsewhere cannot leave
        // the queue half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LoopRemote {
    /// Queues `f` to run on the loop's thread, as [`Loop::run_callback`]
    /// would there, and wakes the loop. Returns `false` (dropping `f` on
    /// this thread) if the loop is gone; a callback queued just as the loop
    /// goes is dropped unrun, on whichever thread drops the last remote.
    ///
    /// The loop runs it when it next runs: a callback sent while no `run`
    /// is active waits for the next one (the remote does not keep
    /// [`Loop::run`] going by itself).
    pub fn run_callback(&self, f: impl FnOnce() + Send + 'static) -> bool {
        let mut state = self.inner.lock();
        let Some((l, w)) = state.target else {
            drop(state);
            return false;
        };
        state.jobs.push_back(Box::new(f));
        // SAFETY: while `target` is set (we hold the lock that clears it
        // before the loop goes) the loop and its async watcher are alive;
        // ev_async_send is libev's one thread-safe call.
        unsafe { sys::ev_async_send(l as *mut sys::ev_loop, w as *mut sys::ev_async) };
        drop(state);
        // A failed wake-up write reaches the syserr handler on this thread.
        crate::global::rethrow_syserr_panic();
        true
    }

    /// Whether the loop still exists.
    pub fn is_connected(&self) -> bool {
        self.inner.lock().target.is_some()
    }
}

impl fmt::Debug for LoopRemote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopRemote").field("connected", &self.is_connected()).finish()
    }
}

impl Loop {
    /// A handle other threads use to queue callbacks onto this loop
    /// ([`LoopRemote::run_callback`]). All remotes of a loop share one
    /// queue and one `ev_async` watcher, made on the first call.
    pub fn remote(&self) -> LoopRemote {
        let shared = self.shared();
        if let Some(rw) = shared.remote.get() {
            // SAFETY: the loop owns it until it is destroyed.
            return LoopRemote { inner: unsafe { rw.as_ref() }.remote.clone() };
        }
        let remote =
            Arc::new(Remote { state: Mutex::new(RemoteState { jobs: VecDeque::new(), target: None }) });
        let rw = NonNull::from(Box::leak(Box::new(RemoteWatcher {
            // SAFETY: all-zero is a valid inactive watcher; initialised below.
            w: unsafe { MaybeUninit::zeroed().assume_init() },
            remote: remote.clone(),
        })));
        let l = self.raw();
        // SAFETY: our own watcher, at its final address, on the live loop;
        // unreferenced (paid back in `shutdown`) so it never keeps `run` going.
        unsafe {
            let w = &raw mut (*rw.as_ptr()).w;
            sys::ev_async_init(w, Some(on_async));
            sys::ev_async_start(l, w);
            sys::ev_unref(l);
            remote.lock().target = Some((l as usize, w as usize));
        }
        shared.remote.set(Some(rw));
        LoopRemote { inner: remote }
    }
}

/// Disconnects the remotes and frees the loop's watcher; called before the
/// loop is destroyed (or given back to C). Queued callbacks are dropped
/// unrun.
pub(crate) fn shutdown(shared: &Shared) {
    let Some(rw) = shared.remote.take() else { return };
    let l = shared.raw();
    let jobs = {
        // SAFETY: made in `Loop::remote`, owned by the loop until now.
        let rw = unsafe { rw.as_ref() };
        let mut state = rw.remote.lock();
        state.target = None;
        std::mem::take(&mut state.jobs)
    };
    // SAFETY: our watcher on its live loop, stopped after paying back its
    // `ev_unref`; then freed, as nothing can send to it any more.
    unsafe {
        sys::ev_ref(l);
        sys::ev_async_stop(l, &raw mut (*rw.as_ptr()).w);
        drop(Box::from_raw(rw.as_ptr()));
    }
    for job in jobs {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(job))) {
            crate::event_loop::report_orphan_panic(&p);
        }
    }
}

unsafe extern "C" fn on_async(l: *mut sys::ev_loop, w: *mut sys::ev_async, _revents: c_int) {
    // SAFETY: libev calls back only for live loops made by `Loop::wrap`; `w`
    // is the first field of the loop's RemoteWatcher.
    let (lp, rw) = unsafe { (Shared::from_raw(l), &*w.cast::<RemoteWatcher>()) };
    let jobs = std::mem::take(&mut rw.remote.lock().jobs);
    for job in jobs {
        let job: Box<dyn FnOnce()> = job;
        lp.callbacks.push(l, Rc::new(Cell::new(Some(job))));
    }
}
