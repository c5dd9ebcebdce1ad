//! The state shared by every queue type and [`Channel`](super::super::Channel).
//!
//! Invariants: greenlets wait in `getters` and `peekers` only while no
//! item is held and the queue is open, and in `putters` only while it is
//! full and open, so at most one of those kinds of list is non-empty. A
//! `put` that finds a getter hands the item straight to it (and shows a
//! copy to every peeker first); a `get` that frees a slot moves the first
//! blocked putter's item in. Items therefore leave in the queue's order
//! among those held, and waiters are served in arrival order.
//!
//! A shutdown serves every waiter with nothing: getters and peekers find
//! their mailbox empty, putters find their item still in theirs (given
//! back). The kill/timeout rules are [`wait`](crate::green::wait)'s.
//!
//! A rendezvous (capacity 0) put that hands its item to a waiting getter
//! then waits until that getter has run (gevent's `Channel`): the getter
//! acknowledges through `handoffs` once its `get` returns.

use super::order::Order;
use super::order::sealed::Store;
use crate::green::hub::{can_switch, with_hub};
use crate::green::sync::Event;
use crate::green::sync::waiting::wait_in;
use crate::green::wait::{WaitList, Waiter, Watchers, wait_on};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// Why a get or peek returned no item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Nothing came in time (or nothing is there where no wait is possible).
    Empty,
    /// The queue was shut down and holds nothing.
    ShutDown,
}

/// `T::clone`, as a peek stores it.
type CopyFn<T> = fn(&T) -> T;

/// A rendezvous getter that holds a putter's item, and the putter waiting
/// for it to run.
struct Handoff<T> {
    getter: Rc<Waiter<T>>,
    putter: Rc<Waiter<()>>,
}

pub(crate) struct Core<T, O: Order<T>> {
    items: RefCell<O::Store>,
    /// `None`: unbounded; `Some(0)`: rendezvous.
    capacity: Option<usize>,
    getters: WaitList<T>,
    putters: WaitList<T>,
    /// Greenlets in `peek`: shown a copy of the next item, which stays.
    peekers: WaitList<T>,
    /// `T::clone`, set by the first peek that waits (`put` has no `Clone`
    /// bound to call it by).
    copy: Cell<Option<CopyFn<T>>>,
    handoffs: RefCell<Vec<Handoff<T>>>,
    shut_down: Cell<bool>,
    /// Items accepted and not yet marked done (gevent's `unfinished_tasks`).
    unfinished: Cell<usize>,
    /// Set while `unfinished` is zero.
    all_done: Event,
    /// Greenlets in `green::wait` on the queue.
    pub(in crate::green::sync) watchers: Watchers,
}

impl<T, O: Order<T>> Core<T, O> {
    pub(crate) fn new(capacity: Option<usize>) -> Rc<Self> {
        let all_done = Event::new();
        all_done.set();
        Rc::new(Core {
            items: RefCell::default(),
            capacity,
            getters: WaitList::default(),
            putters: WaitList::default(),
            peekers: WaitList::default(),
            copy: Cell::new(None),
            handoffs: RefCell::default(),
            shut_down: Cell::new(false),
            unfinished: Cell::new(0),
            all_done,
            watchers: Watchers::default(),
        })
    }

    fn rendezvous(&self) -> bool {
        self.capacity == Some(0)
    }

    /// Puts `item`, waiting at most `timeout` for room (`None`: forever);
    /// gives it back if there is still no room, or the queue is shut down.
    pub(crate) fn put(&self, item: T, timeout: Option<Duration>, what: &dyn fmt::Display) -> Result<(), T> {
        if self.shut_down.get() {
            return Err(item);
        }
        let nonblocking = timeout.is_some_and(|t| t.is_zero());
        let must_see_getter_run = self.rendezvous() && !nonblocking && can_switch();
        if must_see_getter_run {
            // Refused before the item moves: once a getter holds it, this
            // put has to wait for the getter to run.
            with_hub(|hub| hub.check_can_block(what));
        }
        // Peekers wait only while an open queue holds nothing, and then
        // (capacity 0 has no peekers) this item goes to a getter or in.
        self.show_peekers(&item);
        if let Some(getter) = self.getters.pop() {
            self.accepted();
            getter.fill(item);
            if must_see_getter_run {
                self.wait_until_run(getter, what);
            }
            return Ok(());
        }
        {
            let mut items = self.items.borrow_mut();
            if self.capacity.is_none_or(|c| items.len() < c) {
                items.push(item);
                drop(items);
                self.accepted();
                return Ok(());
            }
        }
        if nonblocking {
            return Err(item);
        }
        if !can_switch() {
            // No waiting here (a destructor during an unwind): a put
            // without a deadline queues past the bound rather than lose
            // the item; one with a deadline times out.
            if timeout.is_some() {
                return Err(item);
            }
            self.items.borrow_mut().push(item);
            self.accepted();
            return Ok(());
        }
        let w = Waiter::with(Some(item));
        self.putters.push(w.clone());
        // A rendezvous's `get` no longer waits.
        self.watchers.notify();
        wait_on(&self.putters, &w, timeout, what);
        // Taken: the mailbox is empty. Timed out, or refused by a
        // shutdown: the item is still there.
        match w.take() {
            None => Ok(()),
            Some(item) => Err(item),
        }
    }

    /// Waits, whatever interrupts arrive, until `getter` has taken the
    /// item handed to it: it is ready to run, and an interrupt must not
    /// make this put look failed once the item is delivered (it is raised
    /// at the next blocking call instead).
    fn wait_until_run(&self, getter: Rc<Waiter<T>>, what: &dyn fmt::Display) {
        let putter = Waiter::new();
        self.handoffs.borrow_mut().push(Handoff { getter, putter: putter.clone() });
        with_hub(|hub| {
            let me = hub.current();
            while !putter.served() {
                hub.park(&me, what);
            }
        });
    }

    /// Takes the next item, waiting at most `timeout` (`None`: forever).
    pub(crate) fn get(&self, timeout: Option<Duration>, what: &dyn fmt::Display) -> Result<T, Failure> {
        let head = self.items.borrow_mut().pop();
        if let Some(item) = head {
            // A slot is free: the first blocked putter's item moves in.
            if let Some(putter) = self.putters.pop() {
                let moved = putter.drain().expect("a blocked putter holds its item");
                self.items.borrow_mut().push(moved);
                self.accepted();
            }
            return Ok(item);
        }
        // Nothing held: only a rendezvous has putters waiting now.
        if let Some(putter) = self.putters.pop() {
            let item = putter.drain().expect("a blocked putter holds its item");
            self.accepted();
            return Ok(item);
        }
        self.wait_for_item(&self.getters, timeout, what)
    }

    /// As `get`, leaving the item in the queue.
    pub(crate) fn peek(&self, timeout: Option<Duration>, what: &dyn fmt::Display) -> Result<T, Failure>
    where
        T: Clone,
    {
        if let Some(item) = self.items.borrow().peek() {
            return Ok(item.clone());
        }
        if self.rendezvous() {
            // Nothing is ever held: there is nothing to wait for.
            return Err(Failure::Empty);
        }
        self.copy.set(Some(T::clone as CopyFn<T>));
        self.wait_for_item(&self.peekers, timeout, what)
    }

    /// Waits in `list` for an item handed over.
    fn wait_for_item(
        &self,
        list: &WaitList<T>,
        timeout: Option<Duration>,
        what: &dyn fmt::Display,
    ) -> Result<T, Failure> {
        if self.shut_down.get() {
            return Err(Failure::ShutDown);
        }
        let w = wait_in(list, timeout, what).ok_or(Failure::Empty)?;
        // Served with nothing: the queue was shut down.
        let item = w.take().ok_or(Failure::ShutDown)?;
        self.acknowledge(&w);
        Ok(item)
    }

    /// Wakes the putter waiting for `getter` to run, if any.
    fn acknowledge(&self, getter: &Rc<Waiter<T>>) {
        let mut handoffs = self.handoffs.borrow_mut();
        if let Some(i) = handoffs.iter().position(|h| Rc::ptr_eq(&h.getter, getter)) {
            let h = handoffs.swap_remove(i);
            drop(handoffs);
            h.putter.fill(());
        }
    }

    /// Gives every peeker its own copy of `item`.
    fn show_peekers(&self, item: &T) {
        while !self.peekers.is_empty() {
            let copy = self.copy.get().expect("a waiting peek stored T::clone");
            // Copied before the peeker leaves the list: a panicking
            // `clone` leaves every peeker waiting, none stranded.
            let v = copy(item);
            if let Some(p) = self.peekers.pop() {
                p.fill(v);
            }
        }
    }

    /// Counts an item that went in (or straight to a getter).
    fn accepted(&self) {
        self.watchers.notify();
        let n = self.unfinished.get();
        if n == 0 {
            self.all_done.clear();
        }
        self.unfinished.set(n + 1);
    }

    /// Marks one accepted item done; `false` if none is unfinished.
    pub(crate) fn task_done(&self) -> bool {
        self.tasks_done(1) == 1
    }

    /// Marks up to `n` items done; returns how many were unfinished.
    fn tasks_done(&self, n: usize) -> usize {
        let left = self.unfinished.get();
        let done = n.min(left);
        self.unfinished.set(left - done);
        if done > 0 && left == done {
            self.all_done.set();
        }
        done
    }

    pub(crate) fn all_done(&self) -> &Event {
        &self.all_done
    }

    pub(crate) fn unfinished(&self) -> usize {
        self.unfinished.get()
    }

    /// Refuses later puts, and gets once nothing is held; serves every
    /// waiter with nothing.
    pub(crate) fn shut_down(&self) {
        self.shut_down.set(true);
        self.watchers.notify();
        for w in self.getters.take_all().into_iter().chain(self.peekers.take_all()) {
            w.drain();
        }
        for w in self.putters.take_all() {
            // Woken with its item back in its mailbox: refused.
            if let Some(item) = w.drain() {
                w.fill(item);
            }
        }
    }

    /// Removes every held item, in the queue's order, marking each done.
    pub(crate) fn take_all(&self) -> Vec<T> {
        let taken: Vec<T> = {
            let mut items = self.items.borrow_mut();
            std::iter::from_fn(|| items.pop()).collect()
        };
        self.tasks_done(taken.len());
        taken
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.get()
    }

    pub(crate) fn len(&self) -> usize {
        self.items.borrow().len()
    }

    pub(crate) fn capacity(&self) -> Option<usize> {
        self.capacity
    }

    /// Whether a `put` would block (or fail) now.
    pub(crate) fn is_full(&self) -> bool {
        self.capacity.is_some_and(|c| self.len() >= c && self.getters.is_empty())
    }

    pub(crate) fn getters(&self) -> usize {
        self.getters.len()
    }

    pub(crate) fn putters(&self) -> usize {
        self.putters.len()
    }
}
