//! [`Greenlet`]: spawning, joining and killing green threads.

use super::hub::{try_with_hub, with_hub};
use super::task::{Interrupt, KillSignal, State, Task, Wake};
use super::wait::park_until;
use crate::PanicPayload;
use crate::event_loop::panic_message;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// Default stack size of a greenlet: 256 KiB of address space. Stacks are
/// mapped without reserving memory, and only the pages a greenlet touches
/// cost memory, so this is generous for deep call chains (formatting,
/// parsers, TLS) while a typical greenlet touches a page or two; a million
/// parked greenlets take 256 GiB of address space, a small part of what a
/// 64-bit process has. Each stack has a guard page below it, so an
/// overflow faults instead of corrupting memory.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How a greenlet ended without a value.
#[non_exhaustive]
pub enum GreenletError {
    /// Its closure panicked; the payload is what `catch_unwind` returns.
    Panicked(PanicPayload),
    /// It was killed with [`Greenlet::kill`] before it finished.
    Killed,
    /// A [`Timeout`](super::Timeout) guard's deadline expired and nothing
    /// caught the unwinding.
    TimedOut,
}

impl fmt::Debug for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Panicked(p) => f.debug_tuple("Panicked").field(&panic_message(p)).finish(),
            GreenletError::Killed => f.write_str("Killed"),
            GreenletError::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl fmt::Display for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Panicked(p) => write!(f, "greenlet panicked: {}", panic_message(p)),
            GreenletError::Killed => f.write_str("greenlet was killed"),
            GreenletError::TimedOut => f.write_str("greenlet's deadline expired"),
        }
    }
}

impl std::error::Error for GreenletError {}

type PanicHandler = Box<dyn FnMut(&PanicReport<'_>)>;

thread_local! {
    static PANIC_HANDLER: RefCell<Option<PanicHandler>> = const { RefCell::new(None) };
}

/// A panic of a greenlet that nobody will join, as given to the handler
/// set with [`set_unjoined_panic_handler`].
#[derive(Debug)]
pub struct PanicReport<'a> {
    /// The greenlet's [`id`](Greenlet::id).
    pub id: u64,
    /// Its [`name`](Greenlet::name), if any.
    pub name: Option<&'a str>,
    /// The panic's message (or `Box<dyn Any>` for other payloads).
    pub message: &'a str,
    /// The panic came from a callback given to [`Greenlet::link`], not
    /// from the greenlet itself.
    pub from_link: bool,
}

/// Sets what happens when a greenlet ends in a panic nobody will see:
/// its handle was dropped without [`join`](Greenlet::join) (before or
/// after the panic). It also receives panics of [`Greenlet::link`]
/// callbacks. The default prints one line to stderr. Per thread.
pub fn set_unjoined_panic_handler(handler: impl FnMut(&PanicReport<'_>) + 'static) {
    PANIC_HANDLER.with(|h| *h.borrow_mut() = Some(Box::new(handler)));
}

/// Reports an unjoined greenlet's panic (or one of its link callbacks')
/// to the handler, or to stderr. Works during the thread's exit too, when
/// the handler may already be gone; a panic of the handler itself is
/// reported to stderr, never raised (this runs in destructors).
fn report_unjoined(task: &Task, payload: &PanicPayload, from_link: bool) {
    report_panic(task.id, task.name.as_deref(), payload, from_link);
}

fn report_panic(id: u64, name: Option<&str>, payload: &PanicPayload, from_link: bool) {
    let report = PanicReport { id, name, message: panic_message(payload), from_link };
    let handler = PANIC_HANDLER.try_with(|h| h.borrow_mut().take()).ok().flatten();
    if let Some(mut f) = handler {
        let ok = panic::catch_unwind(AssertUnwindSafe(|| f(&report))).is_ok();
        let _ = PANIC_HANDLER.try_with(|h| {
            let mut slot = h.borrow_mut();
            if slot.is_none() {
                *slot = Some(f);
            }
        });
        if ok {
            return;
        }
        eprintln!("libev::green: the unjoined-panic handler panicked");
    }
    eprintln!(
        "libev::green: {}greenlet {}{} panicked{}: {}",
        if from_link { "a link callback of " } else { "" },
        report.id,
        report.name.map(|n| format!(" ({n})")).unwrap_or_default(),
        if from_link { "" } else { " and nobody joined it" },
        report.message
    );
}

/// A handle to a green thread, like std's `JoinHandle`. Dropping it
/// detaches the greenlet (it keeps running).
///
/// Greenlets never move between threads, so handles stay on theirs:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<libev::green::Greenlet<()>>();
/// ```
pub struct Greenlet<T> {
    /// The greenlet's task, which also holds its result (as `T`, boxed as
    /// `Any`).
    task: Rc<Task>,
    _result: PhantomData<T>,
    _not_send: PhantomData<*mut ()>,
}

/// Names one link of a greenlet, for [`Greenlet::unlink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// Configures a greenlet before spawning it.
#[derive(Debug, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// Default settings: no name, [`DEFAULT_STACK_SIZE`].
    pub fn new() -> Builder {
        Builder { name: None, stack_size: DEFAULT_STACK_SIZE }
    }

    /// Names the greenlet (for diagnostics).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets the stack size in bytes (rounded up to whole pages; at least
    /// 16 KiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes.max(16 * 1024);
        self
    }

    /// Spawns `f` on a new greenlet of this thread; it runs once the
    /// current greenlet blocks or yields. Fails if no stack can be mapped,
    /// or with [`InvalidInput`](std::io::ErrorKind::InvalidInput) if the
    /// stack size is too large for the address space.
    #[track_caller]
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> std::io::Result<Greenlet<T>> {
        let g = self.build(f)?;
        g.start();
        Ok(g)
    }

    /// Creates the greenlet without starting it (gevent's `Greenlet(f)`
    /// before `start()`): it has its id, name and handle, so it can be
    /// linked, added to a [`Group`](super::pool::Group) or handed out
    /// before it runs; [`Greenlet::start`] queues it. Dropping the handle
    /// of a greenlet never started, or killing it, drops `f` unrun (its
    /// links run). Fails as [`spawn`](Builder::spawn) does.
    ///
    /// ```
    /// use libev::green;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// let g = green::Builder::new().name("later").build(move || r.set(true))?;
    /// green::yield_now();
    /// assert!(!g.is_started() && !ran.get(), "not queued yet");
    /// g.start();
    /// g.join().unwrap();
    /// assert!(ran.get());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn build<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> std::io::Result<Greenlet<T>> {
        let spawned_at = std::panic::Location::caller();
        with_hub(|hub| {
            let stack = hub.take_stack(self.stack_size)?;
            let id = hub.next_id();
            let body = |task: &Weak<Task>| {
                let unstarted = Unstarted { f: ManuallyDrop::new(f), task: task.clone(), id };
                move || {
                    let f = unstarted.start();
                    let r = panic::catch_unwind(AssertUnwindSafe(f)).map_err(GreenletError::from_payload);
                    let me = with_hub(|h| h.current());
                    match r {
                        Err(GreenletError::Panicked(p)) if me.detached.get() => {
                            report_unjoined(&me, &p, false)
                        }
                        // Stored even with nobody to join: the links look.
                        r => *me.result.borrow_mut() = Some(r.map(|v| Box::new(v) as Box<dyn Any>)),
                    }
                    // On its own stack, before joiners see it ended.
                    super::local::drop_locals(&me, |p| {
                        if !is_interrupt(&p) {
                            report_unjoined(&me, &p, false)
                        }
                    });
                    finish(&me);
                    // A result nobody will take (the handle went before the
                    // end or while the links ran): dropped here, on its own
                    // stack after its links, not with the task wherever
                    // that goes. Its interrupts were cleared as it ended.
                    if me.detached.get() {
                        let unclaimed = me.result.borrow_mut().take();
                        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(unclaimed)))
                            && !is_interrupt(&p)
                        {
                            report_unjoined(&me, &p, false);
                        }
                    }
                }
            };
            let task = Task::new(id, self.name, spawned_at, stack, self.stack_size, body);
            Ok(Greenlet { task, _result: PhantomData, _not_send: PhantomData })
        })
    }
}

/// A greenlet's closure until it starts. Dropped unrun (killed before it
/// started, or left when its thread exits), it catches a panic of the
/// closure's destructor and makes it the greenlet's result: the panic
/// must not unwind into corosensei (which would drop the closure again)
/// nor into whoever killed the greenlet.
struct Unstarted<F> {
    f: ManuallyDrop<F>,
    /// Its task, for that result: a weak count, as the task owns the
    /// closure (through its coroutine).
    task: Weak<Task>,
    /// For the report of such a panic when nobody holds the handle.
    id: u64,
}

impl<F> Unstarted<F> {
    /// The closure, for the greenlet's first run.
    fn start(self) -> F {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so each field is moved out
        // exactly once.
        unsafe {
            drop(std::ptr::read(&this.task));
            ManuallyDrop::take(&mut this.f)
        }
    }
}

impl<F> Drop for Unstarted<F> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; `start` forgets `self` instead.
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| unsafe { ManuallyDrop::drop(&mut self.f) }));
        if let Err(p) = dropped {
            // The task is gone only when its handle is (dropping the last
            // count drops the closure): detached then too.
            match self.task.upgrade() {
                Some(task) if !task.detached.get() => {
                    *task.result.borrow_mut() = Some(Err(GreenletError::Panicked(p)));
                }
                _ => report_panic(self.id, None, &p, false),
            }
        }
    }
}

/// Ends `task`'s body: joiners are woken, then its links run (they may
/// block). A link that panics is reported as an unjoined panic is; the
/// others still run. Links of a greenlet that never ran run on the stack
/// of whoever discarded it (its killer): a kill or timeout of that
/// greenlet, raised in a link's blocking call, is its own and is raised
/// again once every link has run.
fn finish(task: &Task) {
    task.set_ended();
    let hooks = std::mem::take(&mut *task.on_end.borrow_mut());
    for hook in hooks {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(hook)) {
            report_unjoined(task, &p, true);
        }
    }
    let on_own_stack = with_hub(|hub| {
        for joiner in task.joiners.take_all() {
            hub.wake(&joiner, Wake::Normal);
        }
        hub.is_current(task)
    });
    let links = std::mem::take(&mut *task.links.borrow_mut());
    let mut interrupt = None;
    for (_, link) in links {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(link)) {
            if !on_own_stack && is_interrupt(&p) {
                interrupt.get_or_insert(p);
            } else {
                report_unjoined(task, &p, true);
            }
        }
    }
    if let Some(p) = interrupt {
        panic::resume_unwind(p);
    }
}

/// Discards a greenlet that never ran, as a kill does: its closure is
/// dropped unrun, its stack goes back to the pool, its joiners are woken
/// and its links run (on the caller's stack).
pub(crate) fn discard_unstarted(hub: &super::hub::Hub, task: &Task) {
    let queued = task.state.get() == State::Ready;
    if let Some(stack) = task.discard() {
        hub.give_back_stack(task.stack_size, stack);
    }
    if queued {
        hub.discarded();
    }
    finish(task);
}

/// Drops a greenlet built and never started whose handle goes: as a kill
/// would, or, once the thread's hub is gone, just its closure (and its
/// stack to the process's spare pool).
#[cold]
fn drop_unstarted(task: &Task) {
    if try_with_hub(|hub| discard_unstarted(hub, task)).is_none()
        && let Some(stack) = task.discard()
    {
        super::stack::give_spare(vec![(task.stack_size, stack)]);
    }
}

impl GreenletError {
    /// How a greenlet whose body unwound with `p` failed.
    pub(crate) fn from_payload(p: PanicPayload) -> GreenletError {
        if p.is::<KillSignal>() {
            GreenletError::Killed
        } else if p.is::<super::Elapsed>() {
            GreenletError::TimedOut
        } else {
            GreenletError::Panicked(p)
        }
    }
}

/// Whether an unwinding payload is a kill or an expired timeout rather
/// than a panic: code that catches panics must let these go on.
pub(crate) fn is_interrupt(p: &PanicPayload) -> bool {
    p.is::<KillSignal>() || p.is::<super::Elapsed>()
}

/// Reports a panic that code running on the current greenlet caught and
/// survived (a server's handler), as an unjoined greenlet's panic is.
pub(crate) fn report_caught_panic(p: &PanicPayload) {
    let me = with_hub(|h| h.current());
    report_unjoined(&me, p, false);
}

/// Blocks the current greenlet until `task` has ended; returns whether
/// it has (false only where no green call waits: see `can_switch`).
pub(crate) fn wait_done(task: &Rc<Task>) -> bool {
    wait_done_timeout(task, None)
}

/// Blocks the current greenlet until `task` has ended or `timeout` has
/// passed; returns whether it has ended.
pub(crate) fn wait_done_timeout(task: &Rc<Task>, timeout: Option<Duration>) -> bool {
    if task.ended() {
        return true;
    }
    let me = with_hub(|h| h.current());
    assert!(!Rc::ptr_eq(&me, task), "a greenlet cannot join itself");
    task.joiners.push(me.clone());
    struct Leave<'a>(&'a Task, &'a Rc<Task>);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            // An interrupted join: stop being woken by this task's end.
            if !self.0.ended() {
                self.0.joiners.remove(self.1);
            }
        }
    }
    let _leave = Leave(task, &me);
    park_until(timeout, &format_args!("join of greenlet {}", task.id), || task.ended())
}

/// Kills `task` (see [`Greenlet::kill`]) and waits until it has ended,
/// where green calls may wait.
pub(crate) fn kill_task(task: &Rc<Task>) {
    send_kill(task);
    // A greenlet that kills itself unwinds in `send_kill`, unless it is
    // unwinding already: then there is nothing to wait for.
    if !with_hub(|hub| hub.is_current(task)) {
        wait_done(task);
    }
}

/// Starts killing `task` without waiting for it: a greenlet that never
/// ran ends at once; a running one unwinds when it next runs. The caller
/// itself unwinds at once (unless it is unwinding already).
pub(crate) fn send_kill(task: &Rc<Task>) {
    if task.ended() {
        return;
    }
    with_hub(|hub| {
        if Rc::ptr_eq(&hub.current(), task) {
            if super::hub::can_switch() {
                panic::resume_unwind(Box::new(KillSignal));
            }
            // Unwinding already, where a second unwind would abort: the
            // kill stays pending, for the next blocking call after the
            // unwind (if something catches it).
            task.add_interrupt(Interrupt::Kill);
            return;
        }
        if task.not_started() {
            // Its closure is dropped unrun; `join` reads the empty result as
            // `Killed`.
            discard_unstarted(hub, task);
            return;
        }
        hub.interrupt(task, Interrupt::Kill);
    });
}

/// The panic of a green call that cannot return without waiting, made
/// where no green call waits: during an unwind, or the thread's exit.
#[cold]
#[track_caller]
pub(crate) fn cannot_wait(what: &str) -> ! {
    panic!(
        "libev::green: {what} would have to wait, but no green call waits while its greenlet \
         unwinds (a kill, a timeout or a panic running destructors) or its thread exits; \
         use the non-blocking form (try_lock, try_get, ...) there"
    )
}

/// Spawns `f` on a new greenlet of this thread (gevent's `spawn`); it
/// starts once the current greenlet blocks or yields.
///
/// ```
/// use libev::green;
/// let g = green::spawn(|| 6 * 7);
/// assert_eq!(g.join().unwrap(), 42);
/// ```
///
/// # Panics
///
/// If no stack can be mapped for it (see [`Builder::spawn`]).
#[track_caller]
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("libev::green::spawn: no stack: {e}"))
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
#[track_caller]
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    spawn(move || {
        super::sleep(delay);
        f()
    })
}

/// Waits (blocking only the caller) until `count` of `greenlets` have
/// ended (all of them if `None`), or `timeout` passes, and returns the
/// indices of those that have ended, in order (gevent's
/// `joinall(greenlets, timeout=, count=)`, which returns the finished
/// greenlets). Results stay in the handles, for [`Greenlet::join`].
/// Where green calls do not wait, returns those ended already.
///
/// ```
/// use libev::green;
/// use std::time::Duration;
///
/// let gs = [
///     green::spawn(|| green::sleep(Duration::from_secs(60))),
///     green::spawn(|| ()),
///     green::spawn(|| green::sleep(Duration::from_millis(1))),
/// ];
/// assert_eq!(green::wait_greenlets(&gs, None, Some(2)), [1, 2]);
/// assert_eq!(green::wait_greenlets(&gs, Some(Duration::from_millis(5)), None), [1, 2]);
/// green::killall(&gs, None);
/// ```
///
/// # Panics
///
/// As [`Greenlet::join`].
pub fn wait_greenlets<T>(
    greenlets: &[Greenlet<T>],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Vec<usize> {
    let tasks: Vec<Rc<Task>> = greenlets.iter().map(|g| g.task.clone()).collect();
    park_for_ended(&tasks, count.unwrap_or(tasks.len()), timeout, &"wait_greenlets");
    greenlets.iter().enumerate().filter(|(_, g)| g.is_finished()).map(|(i, _)| i).collect()
}

/// Parks until at least `count` of `tasks` (at most all) have ended, or
/// `timeout` passes; returns whether they have (false also where green
/// calls do not wait).
fn park_for_ended(
    tasks: &[Rc<Task>],
    count: usize,
    timeout: Option<Duration>,
    what: &dyn fmt::Display,
) -> bool {
    let need = count.min(tasks.len());
    let done = || tasks.iter().filter(|t| t.ended()).count() >= need;
    if done() {
        return true;
    }
    let me = with_hub(|h| h.current());
    assert!(tasks.iter().all(|t| !Rc::ptr_eq(t, &me)), "a greenlet cannot wait for itself");
    for t in tasks.iter().filter(|t| !t.ended()) {
        t.joiners.push(me.clone());
    }
    struct Leave<'a>(&'a [Rc<Task>], &'a Rc<Task>);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            for t in self.0.iter().filter(|t| !t.ended()) {
                t.joiners.remove(self.1);
            }
        }
    }
    let _leave = Leave(tasks, &me);
    park_until(timeout, what, done)
}

/// Kills every greenlet (gevent's `killall`): all are sent the kill
/// first, then the caller waits (blocking only itself) until they have
/// ended or `timeout` has passed. Returns whether all have ended. The
/// caller, if among them, is killed last and unwinds.
pub fn killall<'a, T: 'a>(
    greenlets: impl IntoIterator<Item = &'a Greenlet<T>>,
    timeout: Option<Duration>,
) -> bool {
    let me = with_hub(|h| h.current());
    let tasks: Vec<Rc<Task>> = greenlets.into_iter().map(|g| g.task.clone()).collect();
    for t in tasks.iter().filter(|t| !Rc::ptr_eq(t, &me)) {
        send_kill(t);
    }
    let all = wait_all(&tasks, &me, timeout);
    if tasks.iter().any(|t| Rc::ptr_eq(t, &me)) {
        send_kill(&me);
    }
    all
}

/// Waits as a joiner of each of `tasks` (but `me`) until all have ended
/// or `timeout` passes.
fn wait_all(tasks: &[Rc<Task>], me: &Rc<Task>, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    for t in tasks.iter().filter(|t| !Rc::ptr_eq(t, me)) {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if !wait_done_timeout(t, left) {
            return false;
        }
    }
    true
}

/// What [`current`] says of the running greenlet (gevent's
/// `getcurrent()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentGreenlet {
    /// Its number ([`Greenlet::id`]); the main greenlet is 0, named "root".
    pub id: u64,
    /// Its name ([`Builder::name`]).
    pub name: Option<String>,
    /// Whether it is the thread's own stack (the main greenlet, which runs
    /// the hub when it waits).
    pub is_main: bool,
}

/// The greenlet running this code (gevent's `getcurrent()`).
///
/// ```
/// use libev::green;
///
/// assert!(green::current().is_main);
/// let g = green::Builder::new().name("worker").spawn(green::current)?;
/// let inside = g.join().unwrap();
/// assert_eq!((inside.name.as_deref(), inside.is_main), (Some("worker"), false));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn current() -> CurrentGreenlet {
    with_hub(|h| {
        let t = h.current();
        CurrentGreenlet { id: t.id, name: t.name.clone(), is_main: h.is_root(&t) }
    })
}

/// Waits for every greenlet and returns their results in order.
pub fn joinall<T: 'static>(
    greenlets: impl IntoIterator<Item = Greenlet<T>>,
) -> Vec<Result<T, GreenletError>> {
    greenlets.into_iter().map(Greenlet::join).collect()
}

/// Waits for every greenlet and returns their values in order, but stops
/// at the first failure and returns its index and error (gevent's
/// `joinall(raise_error=True)`): failures are seen as they happen (among
/// greenlets that had failed before the call, the first in the list), and
/// the other greenlets are not killed, but go on detached.
///
/// ```
/// use libev::green::{self, GreenletError};
/// use std::time::Duration;
///
/// let gs = vec![
///     green::spawn(|| { green::sleep(Duration::from_millis(5)); 1 }),
///     green::spawn(|| -> u32 { panic!("fails first") }),
/// ];
/// let (index, err) = green::try_joinall(gs).unwrap_err();
/// assert_eq!(index, 1);
/// assert!(matches!(err, GreenletError::Panicked(_)));
/// green::sleep(Duration::from_millis(10)); // the other one goes on
/// ```
///
/// # Panics
///
/// As [`Greenlet::join`].
pub fn try_joinall<T: 'static>(
    greenlets: impl IntoIterator<Item = Greenlet<T>>,
) -> Result<Vec<T>, (usize, GreenletError)> {
    let mut greenlets: Vec<Option<Greenlet<T>>> = greenlets.into_iter().map(Some).collect();
    loop {
        let failed =
            greenlets.iter().position(|g| g.as_ref().is_some_and(|g| g.is_finished() && !g.succeeded()));
        if let Some(i) = failed {
            let err = greenlets[i].take().map(Greenlet::join).and_then(Result::err);
            return Err((i, err.unwrap_or(GreenletError::Killed)));
        }
        let tasks: Vec<Rc<Task>> = greenlets.iter().flatten().map(|g| g.task.clone()).collect();
        let ended = tasks.iter().filter(|t| t.ended()).count();
        if ended == tasks.len() {
            break;
        }
        if !park_for_ended(&tasks, ended + 1, None, &"green::try_joinall") {
            cannot_wait("green::try_joinall");
        }
    }
    Ok(greenlets
        .into_iter()
        .flatten()
        .map(|g| g.join().unwrap_or_else(|_| unreachable!("succeeded")))
        .collect())
}

impl<T> Greenlet<T> {
    /// Whether the greenlet has ended with a value (not taken yet).
    fn succeeded(&self) -> bool {
        matches!(*self.task.result.borrow(), Some(Ok(_)))
    }

    /// Waits for the greenlet to end (blocking only the calling greenlet)
    /// and returns its value, or how it failed.
    ///
    /// # Panics
    ///
    /// When a greenlet joins itself, or when the root would wait forever.
    #[inline]
    pub fn join(self) -> Result<T, GreenletError>
    where
        T: 'static,
    {
        if !wait_done(&self.task) {
            cannot_wait("Greenlet::join");
        }
        // Only a greenlet killed before it started ends without a result.
        match self.task.result.borrow_mut().take() {
            Some(Ok(v)) => Ok(*v.downcast::<T>().expect("a greenlet's value is its handle's type")),
            Some(Err(e)) => Err(e),
            None => Err(GreenletError::Killed),
        }
    }

    /// Whether the greenlet has ended (its links may still be running).
    pub fn is_finished(&self) -> bool {
        self.task.ended()
    }

    /// Waits (blocking only the caller) until the greenlet ends or
    /// `timeout` passes, without taking its result (gevent's
    /// `join(timeout)`); returns whether it has ended. Where green calls
    /// do not wait, it returns at once.
    ///
    /// # Panics
    ///
    /// As [`join`](Greenlet::join).
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        wait_done_timeout(&self.task, timeout)
    }

    /// [`join`](Greenlet::join) with a timeout: the result, or the handle
    /// back if the greenlet has not ended within `timeout`.
    ///
    /// ```
    /// use libev::green;
    /// use std::time::Duration;
    ///
    /// let g = green::spawn(|| green::sleep(Duration::from_secs(60)));
    /// let g = g.join_timeout(Duration::from_millis(1)).unwrap_err();
    /// g.kill();
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<T, GreenletError>, Greenlet<T>>
    where
        T: 'static,
    {
        if self.wait(Some(timeout)) { Ok(self.join()) } else { Err(self) }
    }

    /// Sends the kill without waiting for the greenlet to end (gevent's
    /// `kill(block=False)`): it unwinds when it next runs. A greenlet that
    /// never started ends at once; the caller killing itself unwinds.
    pub fn kill_nowait(&self) {
        send_kill(&self.task);
    }

    /// Kills the greenlet and waits at most `timeout` for it to end
    /// (gevent's `kill(timeout=)`); returns whether it has ended. A kill
    /// stays pending until the greenlet ends (one that catches it is killed
    /// again at its next blocking call), so only its own work, or links
    /// of others that run first, can keep it past the timeout.
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        send_kill(&self.task);
        with_hub(|hub| hub.is_current(&self.task)) || wait_done_timeout(&self.task, Some(timeout))
    }

    /// Kills the greenlet: it unwinds from wherever it is blocked (running
    /// its destructors) and [`join`](Greenlet::join) returns
    /// `Err(Killed)`. A greenlet that never started just never runs. Waits
    /// until the greenlet has ended, unless it is the caller itself, which
    /// unwinds at once. Called while the caller unwinds (from a
    /// destructor), it sends the kill without waiting.
    ///
    /// A kill stays pending until the greenlet ends: one that catches the
    /// unwinding (`catch_unwind`) and carries on is killed again at each
    /// later blocking call. gevent raises `GreenletExit` once, and a
    /// greenlet that catches it lives on. Here the kill sticks, because
    /// in Rust the catching is nearly always a generic one (a panic
    /// boundary around a request handler, a pool worker's loop) that was
    /// never meant to swallow a kill, and a greenlet that lives on after
    /// `kill` returned would make [`kill`](Greenlet::kill),
    /// [`killall`] and [`Group::kill`](super::pool::Group::kill) wait for
    /// ever. [`kill_timeout`](Greenlet::kill_timeout),
    /// [`killall`] with a timeout and
    /// [`Group::kill_timeout`](super::pool::Group::kill_timeout) behave the
    /// same way: a greenlet still running at the timeout keeps its kill.
    pub fn kill(&self) {
        kill_task(&self.task);
    }

    /// Runs `f` when the greenlet ends (at once if it has): on the ending
    /// greenlet's stack, or the killer's for one killed before it started.
    /// `f` may block; joiners are woken before the links run. A panic in
    /// `f` is reported as an unjoined greenlet's panic is (see
    /// [`set_unjoined_panic_handler`]). Returns the link's [`LinkId`], for
    /// [`unlink`](Greenlet::unlink).
    pub fn link(&self, f: impl FnOnce() + 'static) -> LinkId {
        let id = LinkId(with_hub(|hub| hub.next_id()));
        if self.is_finished() {
            f();
        } else {
            self.task.links.borrow_mut().push((id.0, Box::new(f)));
        }
        id
    }

    /// As [`link`](Greenlet::link), but `f` runs only if the greenlet
    /// returned a value (gevent's `link_value`).
    pub fn link_value(&self, f: impl FnOnce() + 'static) -> LinkId
    where
        T: 'static,
    {
        let task = Rc::downgrade(&self.task);
        self.link(move || {
            if task.upgrade().is_some_and(|t| matches!(*t.result.borrow(), Some(Ok(_)))) {
                f();
            }
        })
    }

    /// As [`link`](Greenlet::link), but `f` runs only if the greenlet
    /// failed: panicked, was killed or timed out (gevent's
    /// `link_exception`).
    pub fn link_exception(&self, f: impl FnOnce() + 'static) -> LinkId
    where
        T: 'static,
    {
        let task = Rc::downgrade(&self.task);
        self.link(move || {
            if !task.upgrade().is_some_and(|t| matches!(*t.result.borrow(), Some(Ok(_)))) {
                f();
            }
        })
    }

    /// Removes a link before it runs (gevent's `unlink`), dropping its
    /// closure; returns whether it was still waiting (false once it ran,
    /// began running, or was removed, or for another greenlet's link).
    ///
    /// ```
    /// use libev::green;
    ///
    /// let g = green::spawn(|| ());
    /// let id = g.link(|| unreachable!("unlinked"));
    /// assert!(g.unlink(id));
    /// assert!(!g.unlink(id), "already removed");
    /// g.join().unwrap();
    /// ```
    pub fn unlink(&self, link: LinkId) -> bool {
        let removed = {
            let mut links = self.task.links.borrow_mut();
            links.iter().position(|(id, _)| *id == link.0).map(|i| links.remove(i))
        };
        // Dropped outside the borrow: the closure's destructor may link.
        removed.is_some()
    }

    /// Queues a greenlet made with [`Builder::build`] to run (gevent's
    /// `start()`); does nothing if it was started (or spawned) already,
    /// or has ended (killed before it started).
    pub fn start(&self) {
        if self.task.state.get() == State::Created {
            with_hub(|hub| hub.schedule(self.task.clone()));
        }
    }

    /// Whether the greenlet was started (spawned, or [`start`](Greenlet::start)ed
    /// after [`Builder::build`]), or has ended without starting.
    pub fn is_started(&self) -> bool {
        self.task.state.get() != State::Created
    }

    /// Runs `f` as the greenlet's body ends (at once if it has), before
    /// its joiners wake and its links run; `f` must not block.
    pub(crate) fn on_end(&self, f: impl FnOnce() + 'static) {
        if self.is_finished() {
            f();
        } else {
            self.task.on_end.borrow_mut().push(Box::new(f));
        }
    }

    pub(crate) fn task(&self) -> &Rc<Task> {
        &self.task
    }

    /// The greenlet's number, unique within its thread.
    pub fn id(&self) -> u64 {
        self.task.id
    }

    /// The name given with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.task.name.as_deref()
    }
}

impl<T> Drop for Greenlet<T> {
    fn drop(&mut self) {
        if self.task.state.get() == State::Created {
            // Never started, and now never can be: dropped unrun.
            drop_unstarted(&self.task);
        }
        self.task.detached.set(true);
        // Ended in a panic that `join` never collected.
        let uncollected = self.task.result.borrow_mut().take();
        if let Some(Err(GreenletError::Panicked(p))) = uncollected {
            report_unjoined(&self.task, &p, false);
        }
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.task.id)
            .field("name", &self.task.name)
            .field("state", &self.task.state.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::green::pool::Group;

    /// (resident bytes, virtual bytes, mappings) of this process.
    fn footprint() -> (u64, u64, usize) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kb = |key: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
        };
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        (kb("VmRSS:"), kb("VmSize:"), maps)
    }

    /// Spawn-then-kill cycles (greenlets killed before they ever ran, one
    /// at a time and by a group), which used to leak a stack each: 100,000
    /// of them grew RSS by 424 MB and the address space by 26 GB.
    fn kill_before_start_cycles(n: usize) {
        for i in 0..n {
            if i % 2 == 0 {
                green_kill_unstarted();
            } else {
                let group = Group::new();
                group.spawn(|| ());
                group.spawn(|| ());
                group.kill();
            }
        }
    }

    fn green_kill_unstarted() {
        let g = crate::green::spawn(|| ());
        g.kill();
        assert!(matches!(g.join(), Err(GreenletError::Killed)));
    }

    fn assert_flat_over_kill_cycles() {
        kill_before_start_cycles(1_000);
        let (rss0, vm0, maps0) = footprint();
        kill_before_start_cycles(100_000);
        let (rss1, vm1, maps1) = footprint();
        let grew = |a: u64, b: u64| b.saturating_sub(a);
        assert!(grew(rss0, rss1) < 16 << 20, "RSS grew by {} bytes", grew(rss0, rss1));
        assert!(grew(vm0, vm1) < 64 << 20, "address space grew by {} bytes", grew(vm0, vm1));
        assert!(maps1 <= maps0 + 16, "mappings: {maps0} -> {maps1}");
    }

    /// Runs `check` in a child process (this test binary again, running
    /// only the test `name`), so that no other test moves the process's
    /// footprint meanwhile.
    fn in_child_process(name: &str, check: fn()) {
        const CHILD: &str = "LIBEV_GREEN_FOOTPRINT_CHILD";
        if std::env::var_os(CHILD).is_some() {
            check();
            return;
        }
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child.args(["--exact", name, "--test-threads=1", "--nocapture"]).env(CHILD, "1");
        // Under AddressSanitizer, freed memory waits in a quarantine that
        // would show as growth: turn it off (the other checks stay).
        if let Some(mut asan) = std::env::var_os("ASAN_OPTIONS") {
            asan.push(":quarantine_size_mb=0:thread_local_quarantine_size_kb=0");
            child.env("ASAN_OPTIONS", asan);
        }
        let out = child.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the child failed: {text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
    }

    /// Issue 25.2, with `MADV_GUARD_INSTALL` guards (where the kernel has
    /// them).
    #[test]
    fn stacks_of_greenlets_killed_before_they_start_are_reused() {
        in_child_process(
            "green::greenlet::tests::stacks_of_greenlets_killed_before_they_start_are_reused",
            assert_flat_over_kill_cycles,
        );
    }

    /// Issue 25.2 on the `mprotect` fallback (a process-wide switch), where
    /// a leaked slab would also split into a mapping per guard page.
    #[test]
    fn stacks_are_reused_on_the_mprotect_fallback_too() {
        in_child_process("green::greenlet::tests::stacks_are_reused_on_the_mprotect_fallback_too", || {
            crate::green::stack::force_mprotect_guards();
            assert_flat_over_kill_cycles();
        });
    }

    /// Threads that each use greenlets and exit hand their stacks on: a
    /// thousand such threads reuse the same few slabs.
    #[test]
    fn exiting_threads_hand_their_stacks_to_later_ones() {
        in_child_process("green::greenlet::tests::exiting_threads_hand_their_stacks_to_later_ones", || {
            let run = || {
                let gs: Vec<_> = (0..10).map(|i| crate::green::spawn(move || i)).collect();
                crate::green::joinall(gs);
            };
            std::thread::spawn(run).join().unwrap();
            let (_, vm0, _) = footprint();
            for _ in 0..1000 {
                std::thread::spawn(run).join().unwrap();
            }
            let (_, vm1, _) = footprint();
            let grew = vm1.saturating_sub(vm0);
            assert!(grew < 64 << 20, "address space grew by {grew} bytes");
        });
    }
}
