//! gevent's callback queue: [`Loop::run_callback`].
//!
//! Callbacks wait in a FIFO queue. A prepare watcher, active (and so
//! keeping `run` going) while the queue is not empty, runs them just
//! before the loop would block; a zero-delay timer, restarted after each
//! batch that ran callbacks, keeps that poll from blocking (one more
//! iteration disarms both once the queue stays empty). Each batch runs at most the callbacks that were queued when
//! it began, capped by a budget, so callbacks that queue more callbacks
//! cannot starve timers and I/O: the loop polls (without blocking) between
//! batches.

use crate::event_loop::{Loop, Shared};
use libev_sys as sys;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::ffi::c_int;
use std::fmt;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// Default number of callbacks one batch may run.
pub const DEFAULT_CALLBACK_BUDGET: usize = 1024;

type Slot = Cell<Option<Box<dyn FnOnce()>>>;

pub(crate) struct CallbackQueue {
    queue: RefCell<VecDeque<Rc<Slot>>>,
    budget: Cell<usize>,
    prepare: UnsafeCell<sys::ev_prepare>,
    timer0: UnsafeCell<sys::ev_timer>,
}

/// A callback queued with [`Loop::run_callback`]; lets you cancel it before
/// it runs. Dropping the handle does not cancel.
pub struct CallbackHandle {
    slot: Rc<Slot>,
}

impl CallbackHandle {
    /// Cancels the callback if it has not run yet, dropping the closure.
    /// Returns whether it was still pending.
    pub fn cancel(&self) -> bool {
        self.slot.take().is_some()
    }

    /// Whether the callback is still waiting to run.
    pub fn is_pending(&self) -> bool {
        let f = self.slot.take();
        let pending = f.is_some();
        self.slot.set(f);
        pending
    }
}

impl fmt::Debug for CallbackHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHandle").field("pending", &self.is_pending()).finish()
    }
}

impl Loop {
    /// Queues `f` to run in this loop's thread before the loop next blocks
    /// (gevent's `loop.run_callback`). Callbacks run in the order queued;
    /// while any are queued the loop neither blocks nor returns from
    /// [`run`](Loop::run). A panic in `f` is handled like a panic in a
    /// watcher callback.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    ///
    /// let lp = libev::Loop::new()?;
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// for i in 0..3 {
    ///     let seen = seen.clone();
    ///     lp.run_callback(move || seen.borrow_mut().push(i));
    /// }
    /// let cancelled = lp.run_callback(|| unreachable!());
    /// assert!(cancelled.cancel());
    /// lp.run();
    /// assert_eq!(*seen.borrow(), [0, 1, 2]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// A queued callback is owned by the loop: one that captures a handle
    /// to its own loop keeps the loop alive until it runs or is cancelled
    /// (an `Rc` cycle), so run the loop until the queue drains, or cancel.
    pub fn run_callback(&self, f: impl FnOnce() + 'static) -> CallbackHandle {
        let slot: Rc<Slot> = Rc::new(Cell::new(Some(Box::new(f))));
        self.shared().callbacks.push(self.raw(), slot.clone());
        CallbackHandle { slot }
    }

    /// Sets how many queued callbacks one batch may run before the loop
    /// polls for I/O and timers again (at least 1; default
    /// [`DEFAULT_CALLBACK_BUDGET`]).
    pub fn set_callback_budget(&self, budget: usize) {
        self.shared().callbacks.budget.set(budget.max(1));
    }

    /// Number of callbacks queued (including cancelled ones not yet
    /// skipped).
    pub fn queued_callbacks(&self) -> usize {
        self.shared().callbacks.queue.borrow().len()
    }
}

impl CallbackQueue {
    /// Whether no callback is queued (cancelled ones not yet skipped
    /// count as queued).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    pub(crate) fn new() -> CallbackQueue {
        CallbackQueue {
            queue: RefCell::new(VecDeque::new()),
            budget: Cell::new(DEFAULT_CALLBACK_BUDGET),
            // SAFETY: all-zero is a valid inactive watcher; `init` sets the
            // rest before use.
            prepare: UnsafeCell::new(unsafe { MaybeUninit::zeroed().assume_init() }),
            // SAFETY: as above.
            timer0: UnsafeCell::new(unsafe { MaybeUninit::zeroed().assume_init() }),
        }
    }

    /// Initialises the two internal watchers; called once the queue sits at
    /// its final address inside the loop's `Shared`.
    pub(crate) fn init(&self) {
        // SAFETY: the watchers are ours, inactive, and at a stable address.
        unsafe {
            sys::ev_prepare_init(self.prepare.get(), Some(on_prepare));
            sys::ev_set_priority(self.prepare.get(), sys::EV_MINPRI);
            sys::ev_timer_init(self.timer0.get(), Some(on_timer0), 0.0, 0.0);
        }
    }

    pub(crate) fn push(&self, raw: *mut sys::ev_loop, slot: Rc<Slot>) {
        self.queue.borrow_mut().push_back(slot);
        self.arm(raw);
    }

    /// Makes sure the queue will be served: the prepare active (so `run`
    /// goes on) and the zero timer active (so the next poll does not block).
    fn arm(&self, raw: *mut sys::ev_loop) {
        // SAFETY: our own watchers, on the live loop they were made for.
        unsafe {
            if !sys::ev_is_active(self.prepare.get()) {
                sys::ev_prepare_start(raw, self.prepare.get());
            }
            if !sys::ev_is_active(self.timer0.get()) {
                sys::ev_timer_start(raw, self.timer0.get());
            }
        }
    }

    /// Feeds an event to the prepare watcher, so that `on_prepare` runs
    /// in the loop's next pending-callback phase even if the queue is
    /// empty (to drain deferred drops). Only touches libev's pending
    /// queue: allowed inside a periodic's reschedule callback.
    pub(crate) fn feed(&self, raw: *mut sys::ev_loop) {
        // SAFETY: our own watcher on the live loop it was made for; libev
        // allows feeding inactive watchers.
        unsafe { sys::ev_feed_event(raw, self.prepare.get().cast(), sys::EV_CUSTOM as c_int) }
    }

    fn disarm(&self, raw: *mut sys::ev_loop) {
        // SAFETY: our own watchers, on the live loop they were made for.
        unsafe {
            sys::ev_prepare_stop(raw, self.prepare.get());
            sys::ev_timer_stop(raw, self.timer0.get());
        }
    }

    /// Runs one batch.
    fn run_batch(&self, lp: &Shared) {
        let n = self.queue.borrow().len().min(self.budget.get());
        for _ in 0..n {
            // Release the borrow before calling: the callback may queue more.
            let Some(slot) = self.queue.borrow_mut().pop_front() else {
                break;
            };
            let Some(f) = slot.take() else { continue };
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
                lp.handle_panic(payload);
                if lp.panicking() {
                    // The loop is breaking to re-raise: leave the rest queued.
                    break;
                }
            }
        }
        // Callbacks run in the prepare phase, before this iteration's poll:
        // after a batch that ran any, the zero timer stays armed so that the
        // poll does not block on what they did (a greenlet they woke, a
        // watcher they fed), and a `run_once` returns to its caller. The
        // next prepare finds the queue empty and nothing run: it disarms.
        if self.queue.borrow().is_empty() && n == 0 {
            self.disarm(lp.raw());
        } else {
            self.arm(lp.raw());
        }
    }

    /// Stops the internal watchers and drops queued callbacks unrun; called
    /// before the loop is destroyed.
    pub(crate) fn shutdown(&self, raw: *mut sys::ev_loop) {
        self.disarm(raw);
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        drop(queued);
    }
}

unsafe extern "C" fn on_prepare(raw: *mut sys::ev_loop, _w: *mut sys::ev_prepare, _revents: c_int) {
    // SAFETY: libev calls this only for loops made by `Loop::wrap`, while
    // they exist.
    let lp = unsafe { Shared::from_raw(raw) };
    if lp.has_deferred()
        && let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| lp.drain_deferred()))
    {
        lp.handle_panic(payload);
    }
    lp.callbacks.run_batch(lp);
}

unsafe extern "C" fn on_timer0(_raw: *mut sys::ev_loop, _w: *mut sys::ev_timer, _revents: c_int) {
    // Nothing to do: the timer only kept the loop from blocking; the next
    // prepare runs the queue.
}
