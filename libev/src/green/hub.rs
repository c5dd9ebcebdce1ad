//! The hub: one per OS thread, owning the thread's loop, the queue of
//! ready greenlets and the scheduler.
//!
//! The thread's own stack is the root greenlet. When the root blocks it
//! runs the scheduler: it resumes ready greenlets in FIFO order and, when
//! none is ready, runs one iteration of the loop, whose callbacks only mark
//! greenlets ready (they never switch). So only the root runs `ev_run`, and
//! greenlet stacks never hold a loop frame. A greenlet blocks by suspending
//! back to the scheduler.

use super::fork;
use super::monitor::Beat;
use super::overflow::{self, AltStack};
use super::stack::{self, SlabStack};
use super::task::{Interrupt, State, Task, Wake};
use crate::Loop;
use crate::callbacks::CallbackQueue;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// Greenlets that keep yielding cannot starve watchers: once the
/// greenlets that were ready at the last poll have run, and this many
/// resumptions more, the scheduler polls for I/O and timers without
/// blocking. A large batch woken by one poll (thousands of busy sockets)
/// thus runs to its end before the next poll, which would otherwise find
/// most of them still queued, their watchers stopped (epoll churn).
const POLL_EVERY: u64 = 1024;

pub(crate) struct Hub {
    pub(crate) lp: Loop,
    ready: RefCell<VecDeque<Rc<Task>>>,
    root: Rc<Task>,
    /// The root is inside the scheduler (resuming greenlets or running the
    /// loop), so it cannot block again.
    in_scheduler: Cell<bool>,
    /// Idle stacks by size; slabs are never unmapped, so every stack comes
    /// back here when its greenlet ends.
    stacks: RefCell<Vec<(usize, SlabStack)>>,
    next_id: Cell<u64>,
    /// Set while the hub is torn down (see `can_switch`).
    closing: Cell<bool>,
    /// What the blocking monitor reads (see monitor.rs): the running
    /// greenlet (the root's task when the root runs; the `Rc` that keeps
    /// it alive is `root`, or the one `resume` holds for as long as the
    /// greenlet runs) and the count of resumptions (which also paces the
    /// scheduler's polls, see [`POLL_EVERY`]). Atomics, written by this thread only, with plain
    /// stores.
    beat: Arc<Beat>,
    /// The monitor watches this hub (`monitor::start`).
    watched: Cell<bool>,
    /// Set as the root's wait panics with LoopExit, for `green::scope` to
    /// tell it from a callback's panic (see `take_loop_exit`).
    loop_exit: Cell<bool>,
    /// The resumption count at which the scheduler polls without waiting
    /// for the ready queue to empty (see [`POLL_EVERY`]).
    poll_at: Cell<u64>,
    /// `lp`'s callback queue, which `yield_now` looks at (one load less
    /// than through `lp`). Lives in the loop's `Shared`, as long as `lp`.
    callbacks: NonNull<CallbackQueue>,
    /// Tasks in `ready` that were discarded (killed before they ran): the
    /// scheduler skips them; once they are most of the queue, it is
    /// compacted, so spawn-and-kill loops that never yield stay bounded.
    stale: Cell<usize>,
}

thread_local! {
    static HUB: HubOwner = HubOwner::new();
    /// `HUB`'s hub from its creation until the end of its teardown. A
    /// const thread-local without a destructor is a plain TLS load, while
    /// `HUB.with` is an out-of-line call with a lazy-init check, and every
    /// call level between two stack switches costs a mispredicted return.
    /// Having no destructor, it can be read at any point of the thread's
    /// exit, as can `HUB_GONE`.
    static HUB_ADDR: Cell<*const Hub> = const { Cell::new(std::ptr::null()) };
    /// Set once the hub's teardown is over (the thread is exiting).
    static HUB_GONE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread's hub, creating it on first use.
///
/// # Panics
///
/// If the thread's hub was already torn down (a green call from a
/// thread-local destructor that runs after the hub's).
#[inline(always)]
pub(crate) fn with_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let hub = HUB_ADDR.get();
    if hub.is_null() {
        return with_new_hub(f);
    }
    // SAFETY: a non-null HUB_ADDR is this thread's live hub (set by
    // `with_new_hub`, cleared only at the end of `HubOwner::drop`, which
    // frees it afterwards), and the hub cannot be freed while `f` runs:
    // thread-locals are destroyed only after the thread's code has
    // returned, one at a time, and the teardown itself runs user code only
    // while the hub is still whole.
    f(unsafe { &*hub })
}

/// `with_hub` for paths that must work during the thread's exit (wake-ups
/// from destructors): `None` if this thread has no hub (any more), which
/// then has no greenlet left to wake.
#[inline]
pub(crate) fn try_with_hub<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    let hub = HUB_ADDR.get();
    // SAFETY: as in `with_hub`.
    (!hub.is_null()).then(|| f(unsafe { &*hub }))
}

/// `with_hub` on first use.
#[cold]
fn with_new_hub<R>(f: impl FnOnce(&Hub) -> R) -> R {
    if HUB_GONE.get() {
        panic!("libev::green: this thread's hub was torn down (a green call from a thread-local destructor)");
    }
    HUB.with(|owner| {
        HUB_ADDR.set(owner.hub.as_ptr());
        // SAFETY: the owner keeps its hub until its own drop.
        f(unsafe { owner.hub.as_ref() })
    })
}

/// Whether this thread's hub was torn down (the thread is exiting).
pub(crate) fn hub_gone() -> bool {
    HUB_GONE.get()
}

/// Whether the current greenlet may switch away now. Not while the thread
/// unwinds: std counts panics per OS thread, so a greenlet suspended in
/// the middle of an unwind would make `std::thread::panicking()` true in
/// every other greenlet (poisoning the std mutexes they use, reversing
/// their drop guards). And not while the hub is torn down at thread exit.
/// Green calls that would wait do not wait then (see the crate docs'
/// "Safety and failure model").
#[inline]
pub(crate) fn can_switch() -> bool {
    if std::thread::panicking() {
        return false;
    }
    let hub = HUB_ADDR.get();
    if hub.is_null() {
        return !HUB_GONE.get();
    }
    // SAFETY: as in `with_hub`.
    !unsafe { &*hub }.closing.get()
}

/// The hub loop's run check: only the thread's root (the hub) runs the
/// loop. A greenlet inside `ev_run` would hold the loop's frame on its
/// stack while it is switched out, and every blocking call of the root
/// would then look like one made inside a callback.
fn refuse_run_from_greenlet() {
    if try_with_hub(|hub| !hub.root_is_current()).unwrap_or(false) {
        panic!(
            "libev::green: a greenlet cannot run its hub's loop (only the hub runs it, on the \
             thread's own stack); wait with green calls instead (sleep, Event::wait, ...)"
        );
    }
}

/// The running greenlet's id and name, for the stack overflow report.
/// Only reads memory (no allocation, no locks): callable from a signal
/// handler on the thread that faulted.
fn running_task_for_signal() -> Option<(u64, Option<&'static str>)> {
    let hub = HUB_ADDR.get();
    if hub.is_null() {
        return None;
    }
    // SAFETY: the hub and its running task are alive while the thread is
    // stopped in the handler (the fault interrupted code running on it);
    // the process aborts right after, so the 'static borrow never outlives
    // them.
    let task = unsafe { &*(*hub).running() };
    Some((task.id, task.name.as_deref()))
}

/// The thread-local that owns the hub. Its drop is the hub's teardown:
/// greenlets that never ran are dropped unrun (their closures dropped,
/// their joiners woken, their links run) while the hub is still whole,
/// then idle stacks go to the process's spare pool.
struct HubOwner {
    hub: NonNull<Hub>,
    /// An alternate signal stack this hub installed (for the stack
    /// overflow report), removed with it.
    _altstack: Option<AltStack>,
}

impl HubOwner {
    fn new() -> HubOwner {
        fork::register();
        overflow::install(running_task_for_signal);
        let altstack = overflow::ensure_altstack();
        let hub = Box::leak(Box::new(Hub::new()));
        fork::set_hub_loop(hub.lp.raw(), Arc::as_ptr(hub.beat()));
        HubOwner { hub: NonNull::from(hub), _altstack: altstack }
    }
}

impl Drop for HubOwner {
    fn drop(&mut self) {
        // SAFETY: ours until freed below; used through shared references
        // only, as everyone else (through HUB_ADDR) uses it.
        let hub = unsafe { self.hub.as_ref() };
        HUB_ADDR.set(hub);
        hub.closing.set(true);
        // The monitor stops reading this hub's tasks before they go.
        hub.set_watched(false, Duration::ZERO);
        fork::set_hub_loop(std::ptr::null_mut(), std::ptr::null());
        // The root's greenlet-local values, while the hub is whole.
        super::local::drop_locals(&hub.root, |p| {
            if !super::greenlet::is_interrupt(&p) {
                super::greenlet::report_caught_panic(&p)
            }
        });
        // Greenlets queued to run never will: those that never started are
        // discarded as a kill would (their closures' destructors may queue
        // more); started ones are parked for good and stay so (see task.rs).
        loop {
            let next = hub.ready.borrow_mut().pop_front();
            let Some(task) = next else { break };
            if task.not_started() && task.leak_unstarted.get() {
                task.leak();
            } else if task.not_started() {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    super::greenlet::discard_unstarted(hub, &task)
                }));
            }
        }
        stack::give_spare(std::mem::take(&mut *hub.stacks.borrow_mut()));
        HUB_ADDR.set(std::ptr::null());
        HUB_GONE.set(true);
        // SAFETY: allocated in `new` with Box; nothing refers to it any
        // more (HUB_ADDR is cleared).
        drop(unsafe { Box::from_raw(self.hub.as_ptr()) });
    }
}

impl Hub {
    fn new() -> Hub {
        // The main thread's hub runs on the default loop, where child and
        // signal watchers live; other threads get loops of their own.
        let lp = if std::thread::current().name() == Some("main") {
            Loop::default_loop().or_else(|_| Loop::new())
        } else {
            Loop::new()
        }
        .unwrap_or_else(|e| panic!("libev::green: cannot create this thread's event loop: {e}"));
        lp.shared().run_check.set(Some(refuse_run_from_greenlet));
        if lp.is_default() {
            // libev reaps every child of the process here: green::process
            // keeps the statuses of other hubs' children for them.
            super::process::record_for_other_hubs(&lp);
        }
        let root = Rc::new(Task::root());
        let callbacks = NonNull::from(&lp.shared().callbacks);
        Hub {
            beat: Arc::new(Beat::new(&root)),
            watched: Cell::new(false),
            loop_exit: Cell::new(false),
            poll_at: Cell::new(POLL_EVERY),
            callbacks,
            lp,
            ready: RefCell::new(VecDeque::new()),
            root,
            in_scheduler: Cell::new(false),
            stacks: RefCell::new(Vec::new()),
            next_id: Cell::new(1),
            closing: Cell::new(false),
            stale: Cell::new(0),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn current(&self) -> Rc<Task> {
        let running = self.running();
        // SAFETY: `running` comes from `Rc::as_ptr` of the running task,
        // whose `Rc` lives (in `root` or in `resume`) while it is current,
        // so the count we add to is at least one.
        unsafe {
            Rc::increment_strong_count(running);
            Rc::from_raw(running)
        }
    }

    /// Whether `task` is the running greenlet.
    pub(crate) fn is_current(&self, task: &Task) -> bool {
        std::ptr::eq(self.running(), task)
    }

    /// The running task's address.
    #[inline(always)]
    fn running(&self) -> *const Task {
        self.beat.current.load(Ordering::Relaxed)
    }

    /// Whether `task` is the thread's root greenlet.
    pub(crate) fn is_root(&self, task: &Rc<Task>) -> bool {
        Rc::ptr_eq(task, &self.root)
    }

    fn root_is_current(&self) -> bool {
        std::ptr::eq(self.running(), Rc::as_ptr(&self.root))
    }

    /// Makes `task` ready (if it was blocked) with `why`; an interrupt also
    /// upgrades the wake of a task that is already ready.
    pub(crate) fn wake(&self, task: &Rc<Task>, why: Wake) {
        match task.state.get() {
            State::Blocked => {
                task.state.set(State::Ready);
                task.wake.set(why);
                self.ready.borrow_mut().push_back(task.clone());
            }
            State::Ready if why == Wake::Interrupt => task.wake.set(Wake::Interrupt),
            _ => {}
        }
    }

    /// Queues a new or yielding task at the back of the ready queue.
    pub(crate) fn schedule(&self, task: Rc<Task>) {
        task.state.set(State::Ready);
        self.ready.borrow_mut().push_back(task);
    }

    /// Whether LoopExit was raised since the last call (which clears it).
    pub(crate) fn take_loop_exit(&self) -> bool {
        self.loop_exit.replace(false)
    }

    /// After a poll: the next forced one comes once the greenlets ready
    /// now, and [`POLL_EVERY`] more resumptions, have run.
    #[inline]
    fn polled(&self) {
        let resumes = self.beat.resumes();
        self.poll_at.set(resumes + self.ready.borrow().len() as u64 + POLL_EVERY);
    }

    /// Blocks `me` (the current greenlet) until something wakes it, and
    /// says whether an interrupt woke it, without raising it: a waiter
    /// that completed meanwhile keeps its result, and the interrupt stays
    /// pending for its next blocking call. The caller checks for pending
    /// interrupts before it parks.
    ///
    /// # Panics
    ///
    /// If called from inside a libev callback (gevent's
    /// BlockingSwitchOutError), or if the root would wait forever (gevent's
    /// LoopExit).
    pub(crate) fn park(&self, me: &Rc<Task>, what: &dyn std::fmt::Display) -> bool {
        me.state.set(State::Blocked);
        me.wake.set(Wake::Normal);
        self.switch_out(me, what);
        me.wake.get() == Wake::Interrupt
    }

    /// [`park`](Hub::park) for the running greenlet, flattened into its
    /// caller (a green socket's wait, once per round trip): no `Rc` of the
    /// task is taken, and the root's case, which runs the scheduler, is
    /// out of line. Every frame between the caller and the stack switch is
    /// stack the greenlet touches again on every resumption.
    #[inline(always)]
    pub(crate) fn park_running(&self, what: &dyn std::fmt::Display) -> bool {
        if self.root_is_current() {
            return self.park(&self.root, what);
        }
        // SAFETY: see `current`; while this greenlet runs or is parked, its
        // task is kept alive by the greenlet itself (see task.rs).
        let me = unsafe { &*self.running() };
        me.state.set(State::Blocked);
        me.wake.set(Wake::Normal);
        me.suspend();
        me.wake.get() == Wake::Interrupt
    }

    /// `gevent.sleep(0)`: lets every other ready greenlet run once.
    ///
    /// Inlined into the caller, as is `Task::resume` into the scheduler:
    /// after a stack switch the CPU mispredicts every `ret` until the call
    /// depth is back where the switch left it, so each call level between
    /// two switches costs a misprediction per yield.
    #[inline(always)]
    pub(crate) fn yield_now(&self) {
        if !can_switch() {
            return;
        }
        if self.root_is_current() {
            return self.yield_root();
        }
        // SAFETY: see `current`; while this greenlet runs or is queued, the
        // scheduler holds its task, and its stack runs only via that task.
        let me = unsafe { &*self.running() };
        me.raise_pending();
        if !self.callbacks_empty() {
            return self.yield_behind_callbacks(&"yield_now");
        }
        me.wake.set(Wake::Normal);
        // The scheduler queues our task again when it finds it `Ready` on
        // our return (see `resume`).
        me.state.set(State::Ready);
        me.suspend();
        if me.wake.get() == Wake::Interrupt {
            me.raise_pending();
        }
    }

    /// `yield_now` on the root: the scheduler runs every ready greenlet
    /// once before it finds the root at the back of the queue.
    #[inline(never)]
    fn yield_root(&self) {
        self.root.raise_pending();
        if !self.callbacks_empty() {
            return self.yield_behind_callbacks(&"yield_now");
        }
        self.root.wake.set(Wake::Normal);
        self.schedule(self.root.clone());
        self.check_can_block(&"yield_now");
        self.run_scheduler(&"yield_now");
        if self.root.wake.get() == Wake::Interrupt {
            self.root.raise_pending();
        }
    }

    #[inline(always)]
    fn callbacks_empty(&self) -> bool {
        // SAFETY: the queue lives in `lp`'s `Shared`, which outlives the
        // hub's handle `lp` (see the field).
        unsafe { self.callbacks.as_ref() }.is_empty()
    }

    /// `yield_now` while the loop has callbacks queued
    /// ([`Loop::run_callback`]): as gevent's `sleep(0)` queues the
    /// caller's switch behind them, they run (and the greenlets they wake
    /// are queued) before the caller resumes. The caller parks and a
    /// callback queued last wakes it; a kill or timeout meanwhile cancels
    /// that callback and is raised.
    #[cold]
    #[inline(never)]
    fn yield_behind_callbacks(&self, what: &dyn std::fmt::Display) {
        let me = self.current();
        let waker = me.clone();
        let behind = self.lp.run_callback(move || {
            try_with_hub(|hub| hub.wake(&waker, Wake::Normal));
        });
        if self.park(&me, what) {
            behind.cancel();
            me.raise_pending();
        }
    }

    /// Whether the caller runs inside a libev callback on the hub, where
    /// it must not block.
    pub(crate) fn in_callback(&self) -> bool {
        self.root_is_current() && (self.in_scheduler.get() || self.lp.depth() > 0)
    }

    /// Panics unless the current greenlet may block: a blocking call
    /// inside a libev callback (on the hub) is refused.
    pub(crate) fn check_can_block(&self, what: &dyn std::fmt::Display) {
        if self.in_callback() {
            self.root.state.set(State::Running);
            panic!(
                "libev::green: blocking call ({what}) inside a libev callback; \
                 callbacks run on the hub and must not block (BlockingSwitchOutError)"
            );
        }
    }

    fn switch_out(&self, me: &Rc<Task>, what: &dyn std::fmt::Display) {
        if Rc::ptr_eq(me, &self.root) {
            self.check_can_block(what);
            self.run_scheduler(what);
        } else {
            me.suspend();
        }
    }

    /// The root's wait: run greenlets and the loop until the root is ready.
    fn run_scheduler(&self, what: &dyn std::fmt::Display) {
        self.in_scheduler.set(true);
        struct Leave<'a>(&'a Cell<bool>);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _leave = Leave(&self.in_scheduler);
        loop {
            let next = self.ready.borrow_mut().pop_front();
            match next {
                Some(task) => {
                    let root = Rc::ptr_eq(&task, &self.root);
                    if root {
                        task.state.set(State::Running);
                    } else {
                        self.resume(task);
                    }
                    // Polled with no task in hand: a callback's panic
                    // propagates from here without losing a ready task.
                    if self.beat.count_resume() >= self.poll_at.get() {
                        self.lp.run_nowait();
                        self.polled();
                    }
                    if root {
                        return;
                    }
                }
                None => {
                    let idle = Idle::mark(self);
                    let more = self.lp.run_once();
                    self.polled();
                    drop(idle);
                    if !more && self.ready.borrow().is_empty() {
                        self.root.state.set(State::Running);
                        self.loop_exit.set(true);
                        panic!(
                            "libev::green: the main greenlet waits on {what}, but no greenlet \
                             is ready and no watcher can wake it (LoopExit)"
                        );
                    }
                }
            }
        }
    }

    fn resume(&self, task: Rc<Task>) {
        if task.state.get() != State::Ready {
            // Killed before it ever ran, and left in the queue.
            self.stale.set(self.stale.get().saturating_sub(1));
            return;
        }
        task.state.set(State::Running);
        // `task` keeps the greenlet alive while `current` points to it; the
        // guard points `current` back at the root however `resume` ends.
        // Release stores (plain stores on x86): the monitor thread reads
        // the task they publish (see monitor.rs).
        struct Restore<'a>(&'a AtomicPtr<Task>, *mut Task);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.store(self.1, Ordering::Release);
            }
        }
        let current = &self.beat.current;
        let restore = Restore(current, current.load(Ordering::Relaxed));
        current.store(Rc::as_ptr(&task).cast_mut(), Ordering::Release);
        let done = task.resume();
        drop(restore);
        match done {
            Some(stack) => {
                if self.watched.get() {
                    // The task may be freed below: not while the monitor
                    // reads it (see `Beat::before_free`).
                    self.beat.before_free();
                }
                self.give_back_stack(task.stack_size, stack)
            }
            // It yielded: to the back of the queue.
            None if task.state.get() == State::Ready => self.ready.borrow_mut().push_back(task),
            None => {}
        }
    }

    /// What the blocking monitor reads of this hub.
    pub(crate) fn beat(&self) -> &Arc<Beat> {
        &self.beat
    }

    /// Turns the hub's side of the monitoring on or off; off, it returns
    /// once the monitor reads nothing of it (see `Beat::stop`).
    pub(crate) fn set_watched(&self, on: bool, threshold: Duration) {
        if on {
            self.beat.start(threshold);
            self.watched.set(true);
        } else {
            self.beat.stop();
            self.watched.set(false);
        }
    }

    /// A stack of `size` bytes: from this hub's pool, else from the
    /// process's spare pool, else from a new slab.
    pub(crate) fn take_stack(&self, size: usize) -> std::io::Result<SlabStack> {
        let mut stacks = self.stacks.borrow_mut();
        if let Some(i) = stacks.iter().rposition(|(s, _)| *s == size) {
            return Ok(stacks.swap_remove(i).1);
        }
        if let Some(s) = stack::take_spare(size) {
            return Ok(s);
        }
        let mut fresh = stack::map_slab(size)?;
        let one = fresh.pop().expect("a slab holds stacks");
        stacks.extend(fresh.into_iter().map(|s| (size, s)));
        Ok(one)
    }

    /// Notes that a task in the ready queue was discarded (see `stale`).
    pub(crate) fn discarded(&self) {
        let stale = self.stale.get() + 1;
        let mut ready = self.ready.borrow_mut();
        if stale > 64 && stale * 2 > ready.len() {
            ready.retain(|t| t.state.get() == State::Ready);
            self.stale.set(0);
        } else {
            self.stale.set(stale);
        }
    }

    /// Returns the stack of a greenlet that ended to the pool.
    pub(crate) fn give_back_stack(&self, size: usize, stack: SlabStack) {
        self.stacks.borrow_mut().push((size, stack));
    }

    /// Delivers `interrupt` to `task`: at once if it is blocked, else at
    /// its next blocking call.
    pub(crate) fn interrupt(&self, task: &Rc<Task>, interrupt: Interrupt) {
        task.add_interrupt(interrupt);
        self.wake(task, Wake::Interrupt);
    }
}

/// Marks the hub idle (waiting in its loop) for the blocking monitor,
/// however the loop's run ends.
struct Idle<'a>(&'a Hub);

impl<'a> Idle<'a> {
    #[inline(always)]
    fn mark(hub: &'a Hub) -> Idle<'a> {
        hub.beat.set_idle(true);
        Idle(hub)
    }
}

impl Drop for Idle<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.beat.set_idle(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_waiting_on_nothing_gets_loop_exit_naming_the_wait() {
        // A spawned greenlet that finishes does not help: once it is gone,
        // nothing can wake the root.
        let g = crate::green::spawn(|| ());
        let err =
            std::panic::catch_unwind(|| with_hub(|h| h.park(&h.current(), &"a test wait"))).unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("LoopExit") && msg.contains("a test wait"), "{msg}");
        assert!(g.is_finished());
        // The hub is usable afterwards.
        assert_eq!(crate::green::spawn(|| 3).join().unwrap(), 3);
    }
}
