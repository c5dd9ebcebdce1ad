//! How greenlets wait for each other: a [`Waiter`] is one parked
//! greenlet's mailbox, a [`WaitList`] a FIFO of them, and [`park_until`]
//! the one loop every green wait runs (deadline, interrupts, spurious
//! wake-ups).
//!
//! The rule that keeps primitives consistent under `kill` and timeouts:
//! a waker hands its value (an item, a permit, a notification) straight
//! to the first waiter's mailbox and removes it from the list, so a
//! woken waiter never competes with greenlets that came later (FIFO
//! fairness). A waiter whose mailbox was filled returns the value even
//! if an interrupt arrived meanwhile (the interrupt stays pending for its
//! next blocking call), so nothing handed over is lost. A waiter that is
//! interrupted or times out with an empty mailbox takes itself off the
//! list before it unwinds or returns, so no wake-up goes to a greenlet
//! that has stopped waiting.

use super::hub::{can_switch, try_with_hub, with_hub};
use super::task::{Task, Wake};
use crate::Timer;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// One parked greenlet and the value handed to it.
pub(crate) struct Waiter<T> {
    task: Rc<Task>,
    slot: Cell<Option<T>>,
    /// Set by whoever served the waiter (filled or drained its mailbox).
    served: Cell<bool>,
}

impl<T> Waiter<T> {
    /// A waiter for the current greenlet.
    pub(crate) fn new() -> Rc<Waiter<T>> {
        Waiter::with(None)
    }

    /// A waiter for the current greenlet that brings `value` (a blocked
    /// `put`): it is done once someone has taken it.
    pub(crate) fn with(value: Option<T>) -> Rc<Waiter<T>> {
        Rc::new(Waiter { task: with_hub(|h| h.current()), slot: Cell::new(value), served: Cell::new(false) })
    }

    /// Hands `value` to the waiter and wakes it. (Wakers may run in
    /// destructors during the thread's exit, when there is no hub left
    /// and nothing to wake.)
    pub(crate) fn fill(&self, value: T) {
        self.slot.set(Some(value));
        self.served.set(true);
        try_with_hub(|h| h.wake(&self.task, Wake::Normal));
    }

    /// Takes the value a blocked putter brought, and wakes it.
    pub(crate) fn drain(&self) -> Option<T> {
        let v = self.slot.take();
        self.served.set(true);
        try_with_hub(|h| h.wake(&self.task, Wake::Normal));
        v
    }

    /// Takes the value handed over, if any.
    pub(crate) fn take(&self) -> Option<T> {
        self.slot.take()
    }

    /// Whether someone served the waiter.
    pub(crate) fn served(&self) -> bool {
        self.served.get()
    }
}

/// Waiters in arrival order.
pub(crate) struct WaitList<T> {
    list: RefCell<VecDeque<Rc<Waiter<T>>>>,
}

impl<T> Default for WaitList<T> {
    fn default() -> Self {
        WaitList { list: RefCell::new(VecDeque::new()) }
    }
}

impl<T> WaitList<T> {
    pub(crate) fn push(&self, w: Rc<Waiter<T>>) {
        self.list.borrow_mut().push_back(w);
    }

    /// The longest-waiting greenlet, taken off the list.
    pub(crate) fn pop(&self) -> Option<Rc<Waiter<T>>> {
        self.list.borrow_mut().pop_front()
    }

    /// Takes `w` off the list if it is still on it.
    pub(crate) fn remove(&self, w: &Rc<Waiter<T>>) {
        let mut list = self.list.borrow_mut();
        if let Some(i) = list.iter().position(|x| Rc::ptr_eq(x, w)) {
            list.remove(i);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Every waiter, taken off the list in order.
    pub(crate) fn take_all(&self) -> VecDeque<Rc<Waiter<T>>> {
        std::mem::take(&mut *self.list.borrow_mut())
    }
}

/// Greenlets watching a primitive without taking from it
/// ([`green::wait`](super::wait) and [`iwait`](super::iwait)): all are
/// woken whenever it may have become ready, and look again.
#[derive(Default)]
pub(crate) struct Watchers {
    list: RefCell<Vec<(u64, Rc<Task>)>>,
}

impl Watchers {
    /// Adds `task`; returns the token [`remove`](Watchers::remove) takes.
    pub(crate) fn add(&self, task: Rc<Task>) -> u64 {
        let token = with_hub(|h| h.next_id());
        self.list.borrow_mut().push((token, task));
        token
    }

    pub(crate) fn remove(&self, token: u64) {
        self.list.borrow_mut().retain(|(t, _)| *t != token);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Wakes every watcher (they stay until they remove themselves).
    #[inline]
    pub(crate) fn notify(&self) {
        let list = self.list.borrow();
        if list.is_empty() {
            return;
        }
        try_with_hub(|h| list.iter().for_each(|(_, t)| h.wake(t, Wake::Normal)));
    }
}

/// Waits on `list` with `waiter` (already pushed) until it is served,
/// or the deadline passes. Returns whether it was served; on a timeout,
/// an interrupt or an unwinding LoopExit the waiter is taken off the list
/// first.
pub(crate) fn wait_on<T>(
    list: &WaitList<T>,
    waiter: &Rc<Waiter<T>>,
    timeout: Option<Duration>,
    what: &dyn fmt::Display,
) -> bool {
    struct Leave<'a, T>(&'a WaitList<T>, &'a Rc<Waiter<T>>);
    impl<T> Drop for Leave<'_, T> {
        fn drop(&mut self) {
            // A served waiter was taken off the list by whoever served it.
            if !self.1.served() {
                self.0.remove(self.1);
            }
        }
    }
    let _leave = Leave(list, waiter);
    park_until(timeout, what, || waiter.served())
}

/// Parks the current greenlet until `done()` holds (checked after every
/// wake-up, so spurious ones are harmless) or `timeout` passes; returns
/// `done()`. An interrupt (kill, `with_timeout`) unwinds from here unless
/// `done()` holds by then. `done` must become true only through a wake-up
/// of this greenlet (a [`Waiter`], a watcher callback).
///
/// Where no green call may wait (see [`can_switch`]: the greenlet
/// unwinds, or its thread exits) it returns `done()` at once, and raises
/// nothing.
///
/// # Panics
///
/// Unwinds with a pending interrupt; panics as `Hub::block` does when
/// called inside a libev callback or when the root would wait forever.
#[inline(always)]
pub(crate) fn park_until(
    timeout: Option<Duration>,
    what: &dyn fmt::Display,
    done: impl Fn() -> bool,
) -> bool {
    match park_or_interrupt(timeout, what, done) {
        Ok(done) => done,
        // Raised from the caller's frame (this is inlined), with nothing of
        // the wait left to drop: a kill of a million parked greenlets
        // spends most of its time in the unwinder, which pays for every
        // frame it crosses, twice.
        Err(interrupt) => std::panic::resume_unwind(interrupt),
    }
}

/// [`park_until`], returning a pending interrupt's payload instead of
/// raising it.
fn park_or_interrupt(
    timeout: Option<Duration>,
    what: &dyn fmt::Display,
    done: impl Fn() -> bool,
) -> Result<bool, crate::PanicPayload> {
    if done() {
        return Ok(true);
    }
    if !can_switch() {
        return Ok(false);
    }
    let me = with_hub(|hub| hub.current());
    if me.interrupt_pending() {
        return Err(me.pending_payload());
    }
    let timer = match timeout {
        Some(d) if d.is_zero() => return Ok(false),
        Some(d) => Some(with_hub(|hub| {
            let target = me.clone();
            let t = Timer::new(&hub.lp, d, Duration::ZERO, move |_, _| {
                with_hub(|h| h.wake(&target, Wake::Normal));
            });
            hub.lp.update_now();
            t.start();
            t
        })),
        None => None,
    };
    loop {
        let interrupted = with_hub(|hub| hub.park(&me, what));
        if done() {
            return Ok(true);
        }
        if interrupted && me.interrupt_pending() {
            return Err(me.pending_payload());
        }
        if timer.as_ref().is_some_and(|t| !t.is_active()) {
            return Ok(false);
        }
    }
}
