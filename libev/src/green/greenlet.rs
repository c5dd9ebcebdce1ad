//! [`Greenlet`]: spawning, joining and killing green threads.

use super::hub::with_hub;
use super::task::{Interrupt, KillSignal, State, Task, Wake};
use super::wait::park_until;
use crate::PanicPayload;
use crate::event_loop::panic_message;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
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

/// What a greenlet and its handle share: one allocation per greenlet.
struct Slot<T> {
    result: RefCell<Option<Result<T, GreenletError>>>,
    /// Set when the handle goes without `join`: a later panic is reported.
    detached: Cell<bool>,
}

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
/// to the handler, or to stderr.
fn report_unjoined(task: &Task, payload: &PanicPayload, from_link: bool) {
    let report =
        PanicReport { id: task.id, name: task.name.as_deref(), message: panic_message(payload), from_link };
    let handler = PANIC_HANDLER.with(|h| h.borrow_mut().take());
    match handler {
        Some(mut f) => {
            f(&report);
            PANIC_HANDLER.with(|h| {
                let mut slot = h.borrow_mut();
                if slot.is_none() {
                    *slot = Some(f);
                }
            });
        }
        None => eprintln!(
            "libev::green: {}greenlet {}{} panicked{}: {}",
            if from_link { "a link callback of " } else { "" },
            report.id,
            report.name.map(|n| format!(" ({n})")).unwrap_or_default(),
            if from_link { "" } else { " and nobody joined it" },
            report.message
        ),
    }
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
    task: Rc<Task>,
    slot: Rc<Slot<T>>,
    _not_send: PhantomData<*mut ()>,
}

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
    /// current greenlet blocks or yields. Fails if no stack can be mapped.
    pub fn spawn<T: 'static>(self, f: impl FnOnce() -> T + 'static) -> std::io::Result<Greenlet<T>> {
        let slot = Rc::new(Slot { result: RefCell::new(None), detached: Cell::new(false) });
        let shared = slot.clone();
        with_hub(|hub| {
            let stack = hub.take_stack(self.stack_size)?;
            let id = hub.next_id();
            let body = move || {
                let r = panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
                    if p.is::<KillSignal>() {
                        GreenletError::Killed
                    } else if p.is::<super::Elapsed>() {
                        GreenletError::TimedOut
                    } else {
                        GreenletError::Panicked(p)
                    }
                });
                let me = with_hub(|h| h.current());
                match r {
                    Err(GreenletError::Panicked(p)) if shared.detached.get() => {
                        report_unjoined(&me, &p, false)
                    }
                    r => *shared.result.borrow_mut() = Some(r),
                }
                finish(&me);
            };
            let task = Task::new(id, self.name, stack, self.stack_size, body);
            hub.schedule(task.clone());
            Ok(Greenlet { task, slot, _not_send: PhantomData })
        })
    }
}

/// Marks `task` done, wakes its joiners and runs its links. A link that
/// panics is reported as an unjoined panic is; the others still run.
fn finish(task: &Task) {
    task.state.set(State::Done);
    with_hub(|hub| {
        for joiner in task.joiners.take_all() {
            hub.wake(&joiner, Wake::Normal);
        }
    });
    let links = std::mem::take(&mut *task.links.borrow_mut());
    for link in links {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(link)) {
            report_unjoined(task, &p, true);
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

/// Blocks the current greenlet until `task` has ended.
pub(crate) fn wait_done(task: &Rc<Task>) {
    if task.state.get() == State::Done {
        return;
    }
    let me = with_hub(|h| h.current());
    assert!(!Rc::ptr_eq(&me, task), "a greenlet cannot join itself");
    task.joiners.push(me.clone());
    struct Leave<'a>(&'a Task, &'a Rc<Task>);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            // An interrupted join: stop being woken by this task's end.
            if self.0.state.get() != State::Done {
                self.0.joiners.remove(self.1);
            }
        }
    }
    let _leave = Leave(task, &me);
    park_until(None, &format_args!("join of greenlet {}", task.id), || task.state.get() == State::Done);
}

/// Kills `task` (see [`Greenlet::kill`]) and waits until it has ended.
pub(crate) fn kill_task(task: &Rc<Task>) {
    send_kill(task);
    wait_done(task);
}

/// Starts killing `task` without waiting for it: a greenlet that never
/// ran ends at once; a running one unwinds when it next runs. The caller
/// itself unwinds at once.
pub(crate) fn send_kill(task: &Rc<Task>) {
    if task.state.get() == State::Done {
        return;
    }
    with_hub(|hub| {
        if Rc::ptr_eq(&hub.current(), task) {
            panic::resume_unwind(Box::new(KillSignal));
        }
        if task.not_started() {
            // Its closure (and result slot sender) is dropped unrun; `join`
            // reads the empty slot as `Killed`.
            task.discard();
            finish(task);
            return;
        }
        hub.interrupt(task, Interrupt::Kill);
    });
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
pub fn spawn<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    Builder::new().spawn(f).unwrap_or_else(|e| panic!("libev::green::spawn: no stack: {e}"))
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
pub fn spawn_later<T: 'static>(delay: Duration, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    spawn(move || {
        super::sleep(delay);
        f()
    })
}

/// Waits for every greenlet and returns their results in order.
pub fn joinall<T: 'static>(
    greenlets: impl IntoIterator<Item = Greenlet<T>>,
) -> Vec<Result<T, GreenletError>> {
    greenlets.into_iter().map(Greenlet::join).collect()
}

impl<T> Greenlet<T> {
    /// Waits for the greenlet to end (blocking only the calling greenlet)
    /// and returns its value, or how it failed.
    ///
    /// # Panics
    ///
    /// When a greenlet joins itself, or when the root would wait forever.
    pub fn join(self) -> Result<T, GreenletError> {
        wait_done(&self.task);
        // Only a greenlet killed before it started ends without a result.
        self.slot.result.borrow_mut().take().unwrap_or(Err(GreenletError::Killed))
    }

    /// Whether the greenlet has ended.
    pub fn is_finished(&self) -> bool {
        self.task.state.get() == State::Done
    }

    /// Kills the greenlet: it unwinds from wherever it is blocked (running
    /// its destructors) and [`join`](Greenlet::join) returns
    /// `Err(Killed)`. A greenlet that never started just never runs. Waits
    /// until the greenlet has ended, unless it is the caller itself, which
    /// unwinds at once.
    pub fn kill(&self) {
        kill_task(&self.task);
    }

    /// Runs `f` when the greenlet ends (at once if it has): on the ending
    /// greenlet's stack, or the killer's for one killed before it started.
    /// `f` should not block. A panic in `f` is reported as an unjoined
    /// greenlet's panic is (see [`set_unjoined_panic_handler`]).
    pub fn link(&self, f: impl FnOnce() + 'static) {
        if self.is_finished() {
            f();
        } else {
            self.task.links.borrow_mut().push(Box::new(f));
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
        self.slot.detached.set(true);
        // Ended in a panic that `join` never collected.
        if let Some(Err(GreenletError::Panicked(p))) = self.slot.result.borrow_mut().take() {
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
