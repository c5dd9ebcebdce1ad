//! A task: the hub's record of one greenlet (or of the root), with its
//! coroutine, state and pending interrupts.

use super::GreenletError;
use super::local::Locals;
use super::stack::SlabStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, Location};
use std::rc::{Rc, Weak};

pub(crate) type Co = Coroutine<(), (), (), SlabStack>;

/// A callback run when a greenlet ends.
pub(crate) type Link = Box<dyn FnOnce()>;

/// The largest greenlet body kept inline in the coroutine's closure
/// (corosensei takes at most 1 KiB, and the closure adds a pointer).
const INLINE_BODY: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Built but not started ([`Builder::build`](super::Builder::build)):
    /// not queued.
    Created,
    /// Queued to run (new, yielded, or woken).
    Ready,
    Running,
    /// Waiting for a wake-up.
    Blocked,
    Done,
}

/// Why a blocked task was made ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Normal,
    /// An interrupt is pending: raise it where the task blocked.
    Interrupt,
}

/// What unwinds a greenlet's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Kill,
    /// The `with_timeout` scope with this id expired.
    Timeout(u64),
}

/// The greenlets waiting for a task to end. The first is kept inline:
/// most greenlets have at most one joiner, and spawn + join is hot.
#[derive(Default)]
pub(crate) struct Joiners {
    first: RefCell<Option<Rc<Task>>>,
    more: RefCell<Vec<Rc<Task>>>,
}

impl Joiners {
    pub(crate) fn push(&self, t: Rc<Task>) {
        let mut first = self.first.borrow_mut();
        if first.is_none() {
            *first = Some(t);
        } else {
            self.more.borrow_mut().push(t);
        }
    }

    /// Takes `t` out (a join that was interrupted).
    pub(crate) fn remove(&self, t: &Rc<Task>) {
        let mut first = self.first.borrow_mut();
        if first.as_ref().is_some_and(|f| Rc::ptr_eq(f, t)) {
            *first = None;
        } else {
            let mut more = self.more.borrow_mut();
            if let Some(i) = more.iter().position(|m| Rc::ptr_eq(m, t)) {
                more.remove(i);
            }
        }
    }

    /// Every joiner, taken out.
    pub(crate) fn take_all(&self) -> impl Iterator<Item = Rc<Task>> {
        let first = self.first.borrow_mut().take();
        first.into_iter().chain(std::mem::take(&mut *self.more.borrow_mut()))
    }
}

/// The private panic payload a kill unwinds with (`resume_unwind`, so no
/// panic message is printed). Timeouts unwind with the public
/// [`Elapsed`](super::Elapsed), which carries the expired scope's id.
pub(crate) struct KillSignal;

/// Laid out in declaration order (`repr(C)`), the fields a switch touches
/// first: with the `Rc`'s counts in front of them, they span two cache
/// lines, where the default layout scatters them over the whole task.
#[repr(C)]
pub(crate) struct Task {
    // Hot: read or written on every wake-up, park and resumption.
    /// How the scheduler sees it. `Done` once its coroutine has returned
    /// (or was discarded); a greenlet whose body has ended may still be
    /// running its links, which may block.
    pub(crate) state: Cell<State>,
    pub(crate) wake: Cell<Wake>,
    /// The greenlet's body has ended (its result is stored): what `join`,
    /// `is_finished` and `kill` look at. Set before the links run.
    ended: Cell<bool>,
    /// Its closure may borrow from a frame that can be gone when the
    /// thread's hub is torn down (a scoped greenlet): leaked then, not
    /// dropped, if it never started.
    pub(crate) leak_unstarted: Cell<bool>,
    /// Valid while the coroutine runs: where `suspend` goes.
    yielder: Cell<*const Yielder<(), ()>>,
    interrupts: RefCell<Vec<Interrupt>>,
    /// Taken out while it runs (so the greenlet may touch its own task).
    co: RefCell<Option<Co>>,
    // Cold: spawn, end, diagnostics.
    pub(crate) id: u64,
    pub(crate) stack_size: usize,
    pub(crate) name: Option<String>,
    /// Where it was spawned (`#[track_caller]`), for the blocking
    /// monitor's report; `None` for the root.
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// Its greenlet-local values (see local.rs).
    pub(crate) locals: Locals,
    /// Greenlets in `join` (or a group's join), woken when it ends.
    pub(crate) joiners: Joiners,
    /// User callbacks run when the greenlet ends, with the number
    /// `unlink` knows them by.
    pub(crate) links: RefCell<Vec<(u64, Link)>>,
    /// The crate's own bookkeeping run as the body ends, before joiners
    /// wake (a pool slot given back); never blocks.
    pub(crate) on_end: RefCell<Vec<Link>>,
    /// The greenlet's result until its handle takes it: the value, boxed
    /// as `Any` (which allocates nothing for `()` and other zero-sized
    /// values), or how it failed. `None` before it ends, and for one
    /// dropped before it started. In the task rather than an allocation
    /// of its own: one allocation per greenlet instead of two.
    pub(crate) result: RefCell<Option<Result<Box<dyn Any>, GreenletError>>>,
    /// Set when the handle goes without `join`: a later panic is reported.
    pub(crate) detached: Cell<bool>,
}

impl Task {
    pub(crate) fn root() -> Task {
        Task::with(0, Some("root".to_owned()), None, 0, State::Running)
    }

    fn with(
        id: u64,
        name: Option<String>,
        spawned_at: Option<&'static Location<'static>>,
        stack_size: usize,
        state: State,
    ) -> Task {
        Task {
            id,
            name,
            spawned_at,
            locals: Locals::default(),
            leak_unstarted: Cell::new(false),
            state: Cell::new(state),
            ended: Cell::new(false),
            wake: Cell::new(Wake::Normal),
            interrupts: RefCell::new(Vec::new()),
            co: RefCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            stack_size,
            joiners: Joiners::default(),
            links: RefCell::new(Vec::new()),
            on_end: RefCell::new(Vec::new()),
            result: RefCell::new(None),
            detached: Cell::new(false),
        }
    }

    /// A task that will run the body `make_body` returns on `stack` once
    /// scheduled and resumed. `make_body` receives the task, weakly (it
    /// cannot be upgraded before `new` returns), for a body that must
    /// reach its task before it starts (see `Unstarted` in greenlet.rs).
    pub(crate) fn new<B: FnOnce() + 'static>(
        id: u64,
        name: Option<String>,
        spawned_at: &'static Location<'static>,
        stack: SlabStack,
        stack_size: usize,
        make_body: impl FnOnce(&Weak<Task>) -> B,
    ) -> Rc<Task> {
        Rc::new_cyclic(|weak| {
            let body = make_body(weak);
            // corosensei copies the coroutine's closure onto the new stack
            // and refuses (panics) past 1 KiB: a larger one goes behind a Box.
            let co = if std::mem::size_of::<B>() > INLINE_BODY {
                Task::coroutine(weak.clone(), stack, Box::new(body))
            } else {
                Task::coroutine(weak.clone(), stack, body)
            };
            let task = Task::with(id, name, Some(spawned_at), stack_size, State::Created);
            *task.co.borrow_mut() = Some(co);
            task
        })
    }

    fn coroutine(weak: Weak<Task>, stack: SlabStack, body: impl FnOnce() + 'static) -> Co {
        Co::with_stack(stack, move |yielder: &Yielder<(), ()>, ()| {
            // A started greenlet holds its own task until its body ends, so
            // the task outlives every `&Task` on this stack. One that stays
            // blocked forever (nothing left to wake it, or its thread
            // exiting) is thereby leaked with its stack, like a blocked
            // thread, instead of having its stack unwound inside the
            // scheduler or during thread-local teardown. A task is only
            // dropped with a coroutine that never started or has ended.
            let me = weak.upgrade();
            if let Some(t) = &me {
                t.yielder.set(yielder);
            }
            drop(weak);
            // `body` catches everything itself (see greenlet.rs); this guard
            // keeps a bug there from unwinding into the scheduler.
            if panic::catch_unwind(panic::AssertUnwindSafe(body)).is_err() {
                eprintln!("libev::green: internal error: a greenlet body unwound");
            }
            // Not the last count: `Hub::resume` holds the task while it runs.
            drop(me);
        })
    }

    /// Runs the coroutine until it suspends or ends; on its end, returns its
    /// stack for reuse.
    #[inline(always)]
    pub(crate) fn resume(&self) -> Option<SlabStack> {
        // Resumed in place; the borrow lasts while the greenlet runs, so a
        // stray access to its own coroutine would panic, not alias.
        let mut co = self.co.borrow_mut();
        let result = co.as_mut().expect("a ready greenlet has its coroutine").resume(());
        match result {
            CoroutineResult::Yield(()) => None,
            CoroutineResult::Return(()) => {
                self.state.set(State::Done);
                self.yielder.set(std::ptr::null());
                co.take().map(Co::into_stack)
            }
        }
    }

    /// Suspends the running greenlet back to the scheduler.
    #[inline(always)]
    pub(crate) fn suspend(&self) {
        let y = self.yielder.get();
        assert!(!y.is_null(), "suspend outside the greenlet's coroutine");
        // SAFETY: `yielder` was set by the coroutine body, which is running
        // (we are on its stack), so the Yielder it points to is alive.
        unsafe { (*y).suspend(()) }
    }

    /// Whether the coroutine was never resumed.
    pub(crate) fn not_started(&self) -> bool {
        self.co.borrow().as_ref().is_some_and(|c| !c.started())
    }

    /// Drops the coroutine of a task that never ran (its closure with it)
    /// and returns its stack, for the hub's pool.
    ///
    /// The closure must not panic when dropped (the greenlet layer wraps
    /// it so that it does not): corosensei would drop it a second time.
    pub(crate) fn discard(&self) -> Option<SlabStack> {
        let co = self.co.borrow_mut().take();
        self.state.set(State::Done);
        co.map(|mut co| {
            // Not started: this only drops the closure.
            co.force_unwind();
            co.into_stack()
        })
    }

    /// Forgets the coroutine of a task that never ran, closure and stack
    /// (see `leak_unstarted`).
    pub(crate) fn leak(&self) {
        if let Some(co) = self.co.borrow_mut().take() {
            std::mem::forget(co);
        }
        self.state.set(State::Done);
    }

    /// Whether the greenlet's body has ended.
    #[inline]
    pub(crate) fn ended(&self) -> bool {
        self.ended.get()
    }

    /// Marks the body ended and drops any interrupt still pending: one that
    /// came after the body's last blocking call must not unwind the links.
    pub(crate) fn set_ended(&self) {
        self.ended.set(true);
        self.interrupts.borrow_mut().clear();
    }

    pub(crate) fn add_interrupt(&self, i: Interrupt) {
        self.interrupts.borrow_mut().push(i);
    }

    pub(crate) fn remove_timeout(&self, id: u64) {
        self.interrupts.borrow_mut().retain(|i| *i != Interrupt::Timeout(id));
    }

    /// Unwinds with the most important pending interrupt: a kill, else the
    /// outermost (oldest) expired timeout. A kill stays pending, so a
    /// greenlet that catches it is killed again at its next blocking call.
    ///
    /// Inlined, so the unwinding starts in the caller's frame: every frame
    /// costs the unwinder about half a microsecond.
    #[inline(always)]
    pub(crate) fn raise_pending(&self) {
        if self.interrupt_pending() {
            panic::resume_unwind(self.pending_payload());
        }
    }

    /// Whether an interrupt waits to be raised.
    #[inline]
    pub(crate) fn interrupt_pending(&self) -> bool {
        !self.interrupts.borrow().is_empty()
    }

    /// The payload `raise_pending` unwinds with, when an interrupt is
    /// pending.
    #[cold]
    pub(crate) fn pending_payload(&self) -> crate::PanicPayload {
        let ints = self.interrupts.borrow();
        if ints.contains(&Interrupt::Kill) {
            return Box::new(KillSignal);
        }
        let oldest = ints
            .iter()
            .filter_map(|i| if let Interrupt::Timeout(id) = i { Some(*id) } else { None })
            .min()
            .expect("an interrupt is pending");
        Box::new(super::Elapsed::new(oldest))
    }
}
