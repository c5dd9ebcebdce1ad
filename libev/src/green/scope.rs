//! Scoped greenlets: [`scope`], mirroring `std::thread::scope`. Greenlets
//! spawned in a scope may borrow from the caller's stack, because `scope`
//! returns (or unwinds) only once every one of them has ended.
//!
//! # Why this is sound
//!
//! A scoped greenlet's closure borrows data that lives for `'env` (the
//! caller's frame, or longer); the closure is handed to the scheduler with
//! its lifetime erased to `'static`. That is sound if and only if the
//! closure, and everything it borrows through, is used no more once
//! `scope` has left its frame. Every path out of `scope` goes through
//! [`Scope::wait_all`], which returns only when every greenlet spawned
//! into the scope (including those spawned by scoped greenlets, while
//! others still run) has ended, its closure run or dropped:
//!
//! - `f` returning, panicking, or unwinding with a kill or an expired
//!   timeout: `f` runs inside `catch_unwind`, so each is a return into
//!   `scope`, which then waits. A caller unwinding cannot wait (the hub
//!   refuses switches during an unwind), which is why the unwinding is
//!   caught first and resumed only after the wait.
//! - The wait itself cannot be cut short: it parks directly on the hub,
//!   ignoring interrupts (a kill or timeout of the caller kills the
//!   remaining children instead and is raised after the wait), and a root
//!   that would wait forever (gevent's LoopExit: every child parked with
//!   nothing left to wake it) kills the remaining children, which makes
//!   them ready to unwind, and waits again. A child that catches its kill
//!   is killed again at each blocking call (the kill sticks), so it cannot
//!   park; it can only end, or never return to the hub at all, which
//!   blocks the thread but frees nothing.
//! - `scope` refuses to start where it could not wait: while the thread
//!   unwinds, during the hub's teardown, or inside a libev callback.
//! - A scoped greenlet parked when its thread's hub is torn down stays
//!   parked for good, with its stack and the caller's (which are never
//!   unmapped): nothing runs it again. One that never started is leaked
//!   then, closure and all, not dropped: what it borrows may be gone by
//!   then (a thread-local destroyed before the hub, while the scope's
//!   caller is parked for good).
//! - The handles ([`ScopedGreenlet`]) and the [`Scope`] cannot leave
//!   `'scope`: `Scope` is only lent to `f`, and is neither `Send` nor
//!   `Sync` (greenlets never leave their thread).

use super::greenlet::{Builder, Greenlet, GreenletError, cannot_wait, is_interrupt, send_kill};
use super::hub::{can_switch, with_hub};
use super::task::Task;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// A scope to spawn greenlets that may borrow from the caller, made by
/// [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Rc<ScopeData>,
    // Invariant in both lifetimes, as std's `Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

#[derive(Default)]
struct ScopeData {
    /// Every greenlet spawned into the scope.
    children: RefCell<Vec<Rc<Task>>>,
    /// Children that panicked, minus the panics taken by `join`.
    unhandled_panics: Cell<usize>,
    /// When `children` grows to this, ended ones are swept out.
    sweep_at: Cell<usize>,
}

/// The handle of a greenlet spawned in a [`Scope`]: as [`Greenlet`], for
/// the scope's lifetime.
pub struct ScopedGreenlet<'scope, T> {
    greenlet: Greenlet<()>,
    result: Rc<RefCell<Option<Result<T, GreenletError>>>>,
    data: Rc<ScopeData>,
    _scope: PhantomData<&'scope ()>,
}

/// Runs `f` with a [`Scope`] in which greenlets can be spawned that borrow
/// from the caller (`std::thread::scope` for greenlets), and returns `f`'s
/// value once every one of them has ended.
///
/// Greenlets not joined are waited for. If one of them panicked and its
/// panic was not taken by [`ScopedGreenlet::join`], `scope` panics once
/// all have ended. If `f` panics, `scope` waits for the greenlets, then
/// resumes the panic. If the caller is killed or its
/// [`Timeout`](super::Timeout) expires while inside the scope, the scope's
/// greenlets are killed and waited for, then the kill or timeout goes on.
///
/// ```
/// use libev::green;
/// use std::time::Duration;
///
/// let mut totals = [0u64; 3];
/// let data = vec![1, 2, 3, 4];
/// green::scope(|s| {
///     for (i, t) in totals.iter_mut().enumerate() {
///         let data = &data;
///         s.spawn(move || {
///             green::sleep(Duration::from_millis(1));
///             *t = data.iter().map(|x| x * (i as u64 + 1)).sum();
///         });
///     }
/// });
/// assert_eq!(totals, [10, 20, 30]);
/// ```
///
/// # Panics
///
/// Where green calls cannot wait: while the thread unwinds, during its
/// hub's teardown, and inside a libev callback (as every blocking green
/// call).
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    if !can_switch() {
        cannot_wait("green::scope");
    }
    if with_hub(|hub| hub.in_callback()) {
        panic!(
            "libev::green: green::scope inside a libev callback; callbacks run on the hub and \
             must not block (BlockingSwitchOutError)"
        );
    }
    let scope = Scope { data: Rc::default(), scope: PhantomData, env: PhantomData };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    let interrupted = matches!(&result, Err(p) if is_interrupt(p));
    let (killed_meanwhile, callback_panic) = scope.wait_all(interrupted);
    let result = match (result, callback_panic) {
        (Ok(_), Some(p)) => Err(p),
        (result, _) => result,
    };
    match result {
        Err(p) => panic::resume_unwind(p),
        Ok(v) => {
            if killed_meanwhile {
                // The caller was killed (or timed out) by the end of the
                // scope: raised now, rather than at its next blocking call.
                with_hub(|hub| hub.current()).raise_pending();
            }
            if scope.data.unhandled_panics.get() > 0 {
                panic!("libev::green::scope: a scoped greenlet panicked");
            }
            v
        }
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns `f` on a new greenlet in this scope (see [`scope`]); it may
    /// borrow anything that outlives the scope, and nothing that does not:
    ///
    /// ```compile_fail
    /// libev::green::scope(|s| {
    ///     let local = String::from("dropped when the closure returns");
    ///     s.spawn(|| local.len()); // error: `local` does not live long enough
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be mapped for it (see [`Builder::spawn_scoped`]).
    #[track_caller]
    pub fn spawn<T: 'scope>(&'scope self, f: impl FnOnce() -> T + 'scope) -> ScopedGreenlet<'scope, T> {
        Builder::new()
            .spawn_scoped(self, f)
            .unwrap_or_else(|e| panic!("libev::green::Scope::spawn: no stack: {e}"))
    }

    /// Waits until every greenlet of the scope has ended, whatever
    /// happens meanwhile (see the module docs), killing them if `kill` or
    /// if the caller is interrupted meanwhile. Returns whether the caller
    /// was, and the first panic that reached the wait from a libev
    /// callback (run by the root's wait), to be raised after it.
    fn wait_all(&self, mut kill: bool) -> (bool, Option<crate::PanicPayload>) {
        let me = with_hub(|hub| hub.current());
        let mut interrupted = false;
        let mut callback_panic = None;
        loop {
            if me.interrupt_pending() {
                (kill, interrupted) = (true, true);
            }
            let pending: Vec<Rc<Task>> =
                self.data.children.borrow().iter().filter(|t| !t.ended()).cloned().collect();
            let Some(next) = pending.first() else { return (interrupted, callback_panic) };
            if kill {
                pending.iter().for_each(send_kill);
            }
            next.joiners.push(me.clone());
            with_hub(|hub| hub.take_loop_exit());
            let parked =
                panic::catch_unwind(AssertUnwindSafe(|| with_hub(|hub| hub.park(&me, &"green::scope"))));
            if !next.ended() {
                next.joiners.remove(&me);
            }
            match parked {
                Ok(false) => {}
                // A kill or timeout of the caller: its greenlets go first.
                Ok(true) => (kill, interrupted) = (true, true),
                // The root would wait for ever (LoopExit): the greenlets
                // are parked with nothing to wake them. Killed, they can
                // end.
                Err(_) if with_hub(|hub| hub.take_loop_exit()) => kill = true,
                // A libev callback's panic, which the root's wait passes
                // on: kept for after the wait.
                Err(p) => {
                    callback_panic.get_or_insert(p);
                }
            }
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("greenlets", &self.data.children.borrow().len()).finish()
    }
}

impl Builder {
    /// Spawns `f` on a new greenlet in `scope` (as [`Scope::spawn`], with
    /// this builder's name and stack size), as
    /// `std::thread::Builder::spawn_scoped`. Fails as
    /// [`spawn`](Builder::spawn) does.
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, T: 'scope>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: impl FnOnce() -> T + 'scope,
    ) -> std::io::Result<ScopedGreenlet<'scope, T>> {
        let result: Rc<RefCell<Option<Result<T, GreenletError>>>> = Rc::default();
        let (slot, data) = (result.clone(), scope.data.clone());
        let body: Box<dyn FnOnce() + 'scope> = Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f)).map_err(GreenletError::from_payload);
            if let Err(GreenletError::Panicked(_)) = r {
                data.unhandled_panics.set(data.unhandled_panics.get() + 1);
            }
            *slot.borrow_mut() = Some(r);
        });
        // SAFETY: only the lifetime changes. `scope` does not return, nor
        // unwind past its frame, before this greenlet has ended (its body
        // run, or dropped unrun), see the module docs; so nothing `body`
        // borrows for 'scope is used after 'scope.
        let body: Box<dyn FnOnce() + 'static> =
            unsafe { std::mem::transmute::<Box<dyn FnOnce() + 'scope>, Box<dyn FnOnce() + 'static>>(body) };
        let greenlet = self.build(body)?;
        greenlet.task().leak_unstarted.set(true);
        {
            let mut children = scope.data.children.borrow_mut();
            if children.len() >= scope.data.sweep_at.get() {
                children.retain(|t| !t.ended());
                scope.data.sweep_at.set((children.len() * 2).max(64));
            }
            children.push(greenlet.task().clone());
        }
        greenlet.start();
        Ok(ScopedGreenlet { greenlet, result, data: scope.data.clone(), _scope: PhantomData })
    }
}

impl<T> ScopedGreenlet<'_, T> {
    /// Waits for the greenlet to end (blocking only the caller) and
    /// returns its value, or how it failed; a panic taken here no longer
    /// makes [`scope`] panic.
    ///
    /// # Panics
    ///
    /// As [`Greenlet::join`].
    pub fn join(self) -> Result<T, GreenletError> {
        let ended = self.greenlet.wait(None);
        if !ended {
            cannot_wait("ScopedGreenlet::join");
        }
        // Empty: killed before it started.
        let r = self.result.borrow_mut().take().unwrap_or(Err(GreenletError::Killed));
        if matches!(r, Err(GreenletError::Panicked(_))) {
            self.data.unhandled_panics.set(self.data.unhandled_panics.get() - 1);
        }
        r
    }

    /// Whether the greenlet has ended.
    pub fn is_finished(&self) -> bool {
        self.greenlet.is_finished()
    }

    /// Waits at most `timeout` (`None`: no limit) for the greenlet to end,
    /// without taking its result; returns whether it has.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.greenlet.wait(timeout)
    }

    /// Kills the greenlet and waits until it has ended (see
    /// [`Greenlet::kill`]).
    pub fn kill(&self) {
        self.greenlet.kill()
    }

    /// Sends the kill without waiting (see [`Greenlet::kill_nowait`]).
    pub fn kill_nowait(&self) {
        self.greenlet.kill_nowait()
    }

    /// The greenlet's number, unique within its thread.
    pub fn id(&self) -> u64 {
        self.greenlet.id()
    }

    /// The name given with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.greenlet.name()
    }
}

impl<T> fmt::Debug for ScopedGreenlet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedGreenlet").field("greenlet", &self.greenlet).finish()
    }
}

impl<T> crate::green::wait_any::Sealed for ScopedGreenlet<'_, T> {
    fn is_ready(&self) -> bool {
        self.greenlet.is_ready()
    }

    fn watch(&self, watcher: &crate::green::wait_any::Watcher) -> crate::green::wait_any::Watch {
        self.greenlet.watch(watcher)
    }
}
