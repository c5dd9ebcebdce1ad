//! [`TimerArray`]: many timers in one contiguous array, with one callback.
//!
//! A [`Timer`](crate::Timer) is a handle to its own node, so a program that
//! keeps 100 000 of them in a `Vec` reaches each through a pointer: one more
//! dependent cache miss per operation than C, where the `ev_timer`s sit in
//! an array. `TimerArray` is that array: bare `ev_timer`s laid out as C lays
//! them out, each pointing (through libev's `data` field) at one shared
//! node that holds the loop, the closure and the bookkeeping. The C callback
//! finds the element's index from its address.
//!
//! The rules are those of the other watchers (see `watcher.rs`): the
//! trampoline holds a reference to the node while the closure runs, so the
//! closure may drop the array; the closure is never entered twice (events
//! that arrive while it runs, in a nested `run`, are deferred until it
//! returns, merged per timer in `Deferred`); panics are caught and handed to the
//! loop; the node stops every element before it is freed.

use crate::Events;
use crate::event_loop::{Loop, duration, tstamp};
use crate::timer::move_by_again;
use libev_sys as sys;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::c_int;
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::Duration;

/// The closure type a [`TimerArray`] calls: it receives the array, the
/// index of the timer that fired, and the events.
pub type TimerArrayCallback = dyn FnMut(&TimerArray, usize, Events) + 'static;

/// The closure is running.
const BUSY: u8 = 1;
/// The user asked that the timers not keep the loop alive.
const UNREF: u8 = 2;

/// A fixed number of timers stored contiguously, sharing one callback
/// (libev's `ev_timer`, as a C program keeps them in an array).
///
/// Each timer, named by its index, behaves like a [`Timer`](crate::Timer):
/// it fires `after` its start and then every `repeat` (zero: once, and it
/// is stopped before the callback runs). All are created stopped, with
/// both durations zero. Use this instead of many `Timer`s when there are
/// tens of thousands of them and their operations are hot: the array costs
/// 48 bytes per timer and no pointer chase, where a `Timer` costs its node
/// (48 bytes and up, with what its closure captures) plus the handle, one
/// more dependent load per operation (see
/// [`Timer`'s note](crate::Timer#timer-or-timerarray)).
///
/// Compared with `Timer`, the timers of one array share one closure, one
/// [`keeps_loop_alive`](Self::keeps_loop_alive) setting, and libev's default
/// priority. Since the closure is one, it is never entered twice: if it
/// runs the loop nested, events of every timer of the array that arrive
/// meanwhile wait until it returns (they count as pending; stopping the
/// timer, clearing its pending event or a panic in the closure discards
/// them). Methods taking an
/// index panic if it is out of range, as slice indexing does.
///
/// ```
/// use libev::{Loop, TimerArray};
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let lp = Loop::new()?;
/// let fired = Rc::new(RefCell::new(Vec::new()));
/// let f = fired.clone();
/// let timers = TimerArray::new(&lp, 3, move |_, i, _| f.borrow_mut().push(i));
/// for (i, ms) in [(0, 3), (1, 1), (2, 2)] {
///     timers.set(i, Duration::from_millis(ms), Duration::ZERO);
///     timers.start(i);
/// }
/// lp.run();
/// assert_eq!(*fired.borrow(), [1, 2, 0]);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Like every watcher, it stays on its loop's thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<libev::TimerArray>();
/// ```
pub struct TimerArray {
    core: NonNull<Core>,
    /// Copies of the node's `base`, `len` and `raw`, which never change:
    /// held here, in a handle the compiler knows no call into libev can
    /// write, they stay in registers across a loop of operations, where
    /// each load from the node after a call into libev costs a few percent.
    base: NonNull<sys::ev_timer>,
    len: usize,
    raw: *mut sys::ev_loop,
}

/// The part of the node that does not depend on the closure type.
struct Core {
    /// The first of `len` contiguous timers, allocated as a boxed slice;
    /// libev holds pointers to the active ones, so only raw pointers are
    /// ever used.
    base: NonNull<sys::ev_timer>,
    len: usize,
    /// `lp`'s raw loop, for the hot paths.
    raw: *mut sys::ev_loop,
    /// Keeps the loop alive; released last when the node is freed.
    lp: ManuallyDrop<Loop>,
    refs: Cell<usize>,
    flags: Cell<u8>,
    /// `len` while no flag is set, else 0: the hot paths' one test for both
    /// the bounds and the flags (each branch there costs a few percent).
    fast_len: Cell<usize>,
    /// One bit per timer: we called `ev_unref` for it and owe an `ev_ref`.
    /// Only ever set while `UNREF` is.
    unref_applied: Box<[Cell<u64>]>,
    /// Events that arrived while the closure ran, fed to libev again once
    /// it returns. Only non-empty while `BUSY`.
    deferred: RefCell<Deferred>,
    /// Drops and frees the node (monomorphised for the closure type).
    free: unsafe fn(NonNull<Core>),
}

/// Events deferred while the closure runs: one merged set per timer, and
/// the timers in order of their first deferred event.
#[derive(Default)]
struct Deferred {
    /// Per timer; allocated on the first deferral (most arrays never have
    /// one), then kept.
    events: Vec<c_int>,
    order: Vec<usize>,
}

impl Deferred {
    fn push(&mut self, i: usize, revents: c_int, len: usize) {
        if self.events.is_empty() {
            self.events = vec![0; len];
        }
        if self.events[i] == 0 {
            self.order.push(i);
        }
        self.events[i] |= revents;
    }

    fn get(&self, i: usize) -> c_int {
        self.events.get(i).copied().unwrap_or(0)
    }

    /// Discards timer `i`'s events, returning them.
    fn take(&mut self, i: usize) -> c_int {
        self.events.get_mut(i).map_or(0, std::mem::take)
    }

    /// Empties the set, passing each timer's events to `f` in order.
    fn drain(&mut self, mut f: impl FnMut(usize, c_int)) {
        for i in self.order.drain(..) {
            let events = std::mem::take(&mut self.events[i]);
            if events != 0 {
                f(i, events);
            }
        }
    }
}

/// The node: the core, then the closure.
#[repr(C)]
struct Node<F> {
    core: Core,
    cb: UnsafeCell<F>,
}

impl TimerArray {
    /// `len` stopped timers on `lp` whose events all go to `callback`.
    pub fn new<F>(lp: &Loop, len: usize, callback: F) -> TimerArray
    where
        F: FnMut(&TimerArray, usize, Events) + 'static,
    {
        // At least one element, so `set` may read a clamped index's state.
        let timers: Box<[sys::ev_timer]> = (0..len.max(1))
            .map(|_| {
                // SAFETY: all-zero is a valid, inactive ev_timer.
                let mut w: sys::ev_timer = unsafe { std::mem::zeroed() };
                // SAFETY: a local, inactive watcher.
                unsafe { sys::ev_init(&mut w, Some(trampoline::<F>)) };
                w
            })
            .collect();
        let base = NonNull::new(Box::into_raw(timers).cast::<sys::ev_timer>()).expect("Box is never null");
        let node = Box::new(Node {
            core: Core {
                base,
                len,
                raw: lp.raw(),
                lp: ManuallyDrop::new(lp.clone()),
                refs: Cell::new(1),
                flags: Cell::new(0),
                fast_len: Cell::new(len),
                unref_applied: (0..len.div_ceil(64)).map(|_| Cell::new(0)).collect(),
                deferred: RefCell::default(),
                free: free_node::<F>,
            },
            cb: UnsafeCell::new(callback),
        });
        let core = NonNull::from(Box::leak(node)).cast::<Core>();
        for i in 0..len {
            // SAFETY: `i` is in bounds of the array allocated above, which
            // no one else uses yet; `data` is ours (see the trampoline).
            unsafe { (*base.as_ptr().add(i)).data = core.as_ptr().cast() };
        }
        TimerArray::from_core(core)
    }

    /// A handle to the node `core` (counted by the caller, or not at all
    /// for a view that is never dropped).
    fn from_core(core: NonNull<Core>) -> TimerArray {
        // SAFETY: the node outlives every handle to it.
        let c = unsafe { core.as_ref() };
        TimerArray { core, base: c.base, len: c.len, raw: c.raw }
    }

    #[inline]
    fn core(&self) -> &Core {
        // SAFETY: our counted reference keeps the node alive.
        unsafe { self.core.as_ref() }
    }

    /// The number of timers.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array holds no timers.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets timer `i`'s delay and repeat; an active timer is restarted with
    /// them, and a pending event is kept.
    #[inline]
    pub fn set(&self, i: usize, after: Duration, repeat: Duration) {
        let core = self.core();
        let (after, repeat) = (tstamp(after), tstamp(repeat));
        // One branch for the bounds and the state (each branch in this path
        // costs a few percent): the state is read at a clamped index, which
        // the array (never empty, see `new`) holds, and a timer active or
        // pending sets the top bit of the index compared, beyond any length
        // (a length is at most `isize::MAX`).
        // SAFETY: in bounds of the allocation.
        let w = unsafe { self.base.as_ptr().add(if i < self.len { i } else { 0 }) };
        // SAFETY: reads the header of our watcher.
        let engaged = unsafe { (*w).active | (*w).pending } != 0;
        if i | usize::from(engaged) << (usize::BITS - 1) >= self.len {
            return core.set_checked(i, after, repeat);
        }
        // SAFETY: `w` is timer `i`, which libev allows setting as it is
        // neither active nor pending.
        unsafe { sys::ev_timer_set(w, after, repeat) };
    }

    /// Starts timer `i` (libev's `ev_timer_start`); does nothing if it is
    /// already active.
    #[inline]
    pub fn start(&self, i: usize) {
        let core = self.core();
        // Testing the flags before `ev_timer_start` rather than after is
        // the same: libev runs no callback inside it.
        if i >= core.fast_len.get() {
            return core.start_checked(i);
        }
        // SAFETY: `i` is in bounds; the array never moves and every element
        // is stopped before it is freed; `raw` is its live loop. libev
        // ignores the call for an active timer.
        unsafe { sys::ev_timer_start(self.raw, self.base.as_ptr().add(i)) };
    }

    /// Stops timer `i` (libev's `ev_timer_stop`) and discards its pending
    /// event; does nothing else if it is inactive.
    #[inline]
    pub fn stop(&self, i: usize) {
        let core = self.core();
        if i >= core.fast_len.get() {
            return core.stop_checked(i);
        }
        // SAFETY: `i` is in bounds; our watcher on the loop it was started
        // on; stopping an inactive watcher only clears a pending event.
        unsafe { sys::ev_timer_stop(self.raw, self.base.as_ptr().add(i)) };
    }

    /// Stops timer `i` (discarding its pending event), sets its delay and
    /// repeat, and starts it: [`stop`](Self::stop), [`set`](Self::set)
    /// and [`start`](Self::start) in one call, with one check instead of
    /// three. The idiom for a deadline pushed back on every event when
    /// the new delay varies (for a fixed one, `again` with a repeat). With
    /// a delay above zero it is libev's `ev_timer_again` with the delay as
    /// the repeat, which moves the timer within libev's heap in one step
    /// where a stop and a start take it out and put it back.
    ///
    /// ```
    /// # use libev::{Loop, TimerArray};
    /// # use std::time::Duration;
    /// let lp = Loop::new()?;
    /// let timers = TimerArray::new(&lp, 2, |_, _, _| {});
    /// timers.start(1);
    /// timers.restart(1, Duration::from_secs(30), Duration::ZERO);
    /// assert!(timers.is_active(1));
    /// assert!(timers.remaining(1) > Duration::from_secs(29));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn restart(&self, i: usize, after: Duration, repeat: Duration) {
        let core = self.core();
        let (after, repeat) = (tstamp(after), tstamp(repeat));
        if i >= core.fast_len.get() {
            return core.restart_checked(i, after, repeat);
        }
        let (raw, w) = (self.raw, self.base.as_ptr().wrapping_add(i));
        // SAFETY: `i` is in bounds, so `w` is timer `i`; the array never
        // moves and every element is stopped before it is freed; `raw` is
        // its live loop. No flag is set, so there is no ref or deferred
        // event to keep in step, and libev runs no callback inside these
        // calls.
        unsafe {
            if after > 0.0 {
                // As `Timer::restart`, which discards a pending event too.
                move_by_again(raw, w, after, repeat);
            } else {
                // Stopping clears a pending event, so the timer may be set.
                sys::ev_timer_stop(raw, w);
                sys::ev_timer_set(w, after, repeat);
                sys::ev_timer_start(raw, w);
            }
        }
    }

    /// libev's `ev_timer_again` for timer `i`: a repeating timer restarts
    /// to fire `repeat` from now (starting it if stopped); a non-repeating
    /// active timer stops. Either way a pending event is cancelled.
    pub fn again(&self, i: usize) {
        let core = self.core();
        let w = core.slot(i);
        // SAFETY: our watcher on its live loop.
        unsafe { sys::ev_timer_again(core.raw, w) };
        core.discard_deferred(i);
        // SAFETY: our watcher.
        let active = unsafe { sys::ev_is_active(w) };
        if !active {
            core.restore_ref(i);
        } else {
            core.apply_unref(i);
        }
    }

    /// Time until timer `i` fires (zero if it is not active or overdue).
    pub fn remaining(&self, i: usize) -> Duration {
        let core = self.core();
        let w = core.slot(i);
        // SAFETY: our watcher.
        if !unsafe { sys::ev_is_active(w) } {
            return Duration::ZERO;
        }
        // SAFETY: our watcher on its live loop; only reads.
        duration(unsafe { sys::ev_timer_remaining(core.raw, w) })
    }

    /// Timer `i`'s repeat interval.
    pub fn repeat(&self, i: usize) -> Duration {
        // SAFETY: reads a field of our watcher.
        duration(unsafe { (*self.core().slot(i)).repeat })
    }

    /// Sets timer `i`'s repeat interval, used the next time it fires or
    /// [`again`](Self::again) is called (libev allows this while active).
    pub fn set_repeat(&self, i: usize, repeat: Duration) {
        // SAFETY: `repeat` is a read-write field in libev, even while active.
        unsafe { (*self.core().slot(i)).repeat = tstamp(repeat) }
    }

    /// Timer `i`'s `ev_timer`, for C code and [`crate::sys`] calls; the
    /// rules of [`Timer::as_raw`](crate::Timer::as_raw) apply (it never
    /// moves and stays valid while the array exists).
    ///
    /// # Panics
    ///
    /// If `i` is out of range.
    pub fn as_raw(&self, i: usize) -> *mut sys::ev_timer {
        self.core().slot(i)
    }

    /// Whether timer `i` was started and has not stopped since.
    #[inline]
    pub fn is_active(&self, i: usize) -> bool {
        // SAFETY: reads the header of our watcher.
        unsafe { sys::ev_is_active(self.core().slot(i)) }
    }

    /// Whether an event for timer `i` waits for the callback to run.
    #[inline]
    pub fn is_pending(&self, i: usize) -> bool {
        let core = self.core();
        // SAFETY: reads the header of our watcher.
        let pending = unsafe { sys::ev_is_pending(core.slot(i)) };
        pending || (core.flags.get() & BUSY != 0 && core.deferred.borrow().get(i) != 0)
    }

    /// Makes timer `i` pending with `events`, as if they had happened; the
    /// callback runs in the loop's next pending-processing phase. Works on
    /// stopped timers too.
    pub fn feed_event(&self, i: usize, events: Events) {
        let core = self.core();
        // SAFETY: our watcher; dropping the array clears pending events.
        unsafe { sys::ev_feed_event(core.raw, core.slot(i).cast(), events.to_revents()) }
    }

    /// Cancels timer `i`'s pending event; returns the events it had (empty
    /// if none).
    pub fn clear_pending(&self, i: usize) -> Events {
        let core = self.core();
        let w = core.slot(i);
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(core.raw, w.cast()) };
        core.settle_stopped(i, w);
        Events::from_revents(pending | core.discard_deferred(i))
    }

    /// gevent's `ref`, for all the timers: whether an active timer keeps
    /// [`Loop::run`] from returning (default `true`).
    pub fn set_keeps_loop_alive(&self, keep: bool) {
        let core = self.core();
        if keep == core.keeps_loop_alive() {
            return;
        }
        if keep {
            core.set_flags(core.flags.get() & !UNREF);
            (0..core.len).for_each(|i| core.restore_ref(i));
        } else {
            core.set_flags(core.flags.get() | UNREF);
            for i in 0..core.len {
                // SAFETY: in bounds; reads the header of our watcher.
                if unsafe { sys::ev_is_active(core.base.as_ptr().add(i)) } {
                    core.apply_unref(i);
                }
            }
        }
    }

    /// See [`set_keeps_loop_alive`](Self::set_keeps_loop_alive).
    pub fn keeps_loop_alive(&self) -> bool {
        self.core().keeps_loop_alive()
    }

    /// The loop these timers belong to.
    pub fn loop_handle(&self) -> Loop {
        Loop::clone(&self.core().lp)
    }
}

impl Core {
    /// Timer `i`.
    #[inline]
    fn slot(&self, i: usize) -> *mut sys::ev_timer {
        if i >= self.len {
            out_of_range(i, self.len);
        }
        // SAFETY: in bounds of the array.
        unsafe { self.base.as_ptr().add(i) }
    }

    /// Sets the flags, keeping `fast_len` in step.
    fn set_flags(&self, flags: u8) {
        self.flags.set(flags);
        self.fast_len.set(if flags == 0 { self.len } else { 0 });
    }

    fn keeps_loop_alive(&self) -> bool {
        self.flags.get() & UNREF == 0
    }

    #[inline]
    fn start(&self, i: usize, w: *mut sys::ev_timer) {
        // SAFETY: the array never moves and every element is stopped before
        // it is freed; `raw` is its live loop. libev ignores the call for an
        // active timer.
        unsafe { sys::ev_timer_start(self.raw, w) };
        self.apply_unref(i);
    }

    /// Stops timer `i` without touching its deferred events.
    #[inline]
    fn stop(&self, i: usize, w: *mut sys::ev_timer) {
        if self.flags.get() & UNREF != 0 {
            self.restore_ref(i);
        }
        // SAFETY: our watcher on the loop it was started on; stopping an
        // inactive watcher only clears a pending event.
        unsafe { sys::ev_timer_stop(self.raw, w) };
    }

    /// `TimerArray::set` out of bounds or for a timer active or pending.
    #[inline(never)]
    fn set_checked(&self, i: usize, after: f64, repeat: f64) {
        let w = self.slot(i);
        // SAFETY: reads the header of our watcher.
        let (active, pending) = unsafe { (sys::ev_is_active(w), sys::ev_is_pending(w)) };
        if active && !pending && after > 0.0 && i < self.fast_len.get() {
            // SAFETY: our watcher on its live loop; no flag is set (no
            // reference or deferred event to keep in step) and nothing
            // pending is to be kept, so this is what stop, set and start do.
            return unsafe { move_by_again(self.raw, w, after, repeat) };
        }
        if active || pending {
            self.set_engaged(i, w, after, repeat);
        } else {
            // SAFETY: libev allows setting a watcher that is neither active
            // nor pending.
            unsafe { sys::ev_timer_set(w, after, repeat) };
        }
    }

    /// `TimerArray::restart` out of bounds or while a flag is set.
    #[inline(never)]
    fn restart_checked(&self, i: usize, after: f64, repeat: f64) {
        self.stop_checked(i);
        let w = self.slot(i);
        // SAFETY: stopped, which cleared any pending event.
        unsafe { sys::ev_timer_set(w, after, repeat) };
        self.start(i, w);
    }

    /// `TimerArray::start` out of bounds or while a flag is set.
    #[inline(never)]
    fn start_checked(&self, i: usize) {
        self.start(i, self.slot(i));
    }

    /// `TimerArray::stop` out of bounds or while a flag is set.
    #[inline(never)]
    fn stop_checked(&self, i: usize) {
        let w = self.slot(i);
        self.stop(i, w);
        self.discard_deferred(i);
    }

    /// Discards timer `i`'s deferred events, returning them.
    #[inline]
    fn discard_deferred(&self, i: usize) -> c_int {
        if self.flags.get() & BUSY == 0 {
            return 0;
        }
        self.deferred.borrow_mut().take(i)
    }

    /// For a timer whose pending event was just cleared: if libev had
    /// stopped it (a one-shot that fired), the callback that would have
    /// paid back its `ev_unref` will not run, so pay it now.
    fn settle_stopped(&self, i: usize, w: *mut sys::ev_timer) {
        // SAFETY: reads the header of our watcher.
        if self.flags.get() & UNREF != 0 && !unsafe { sys::ev_is_active(w) } {
            self.restore_ref(i);
        }
    }

    /// Calls `ev_unref` for active timer `i`, once, if the timers are
    /// unreferenced.
    fn apply_unref(&self, i: usize) {
        let (word, bit) = (&self.unref_applied[i / 64], 1u64 << (i % 64));
        if self.flags.get() & UNREF != 0 && word.get() & bit == 0 {
            word.set(word.get() | bit);
            // SAFETY: live loop; balanced by `ev_ref` in restore_ref.
            unsafe { sys::ev_unref(self.raw) };
        }
    }

    /// Pays back timer `i`'s `ev_unref`, if it had one.
    fn restore_ref(&self, i: usize) {
        let (word, bit) = (&self.unref_applied[i / 64], 1u64 << (i % 64));
        if word.get() & bit != 0 {
            word.set(word.get() & !bit);
            // SAFETY: live loop; pays back our earlier ev_unref.
            unsafe { sys::ev_ref(self.raw) };
        }
    }

    /// `set` for a timer that is active or pending (libev forbids setting it then):
    /// stops it and clears its event, sets it, then restores both (its
    /// deferred events stay deferred).
    #[inline(never)]
    fn set_engaged(&self, i: usize, w: *mut sys::ev_timer, after: f64, repeat: f64) {
        // SAFETY: reads the header of our watcher.
        let active = unsafe { sys::ev_is_active(w) };
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(self.raw, w.cast()) };
        self.settle_stopped(i, w);
        if active {
            self.stop(i, w);
        }
        // SAFETY: stopped and not pending now.
        unsafe { sys::ev_timer_set(w, after, repeat) };
        if active {
            self.start(i, w);
        }
        if pending != 0 {
            // SAFETY: our watcher; dropping the array clears pending events.
            unsafe { sys::ev_feed_event(self.raw, w.cast(), pending) };
        }
    }

    fn inc_ref(&self) {
        // Only the owner and running trampolines hold references, and each
        // trampoline a stack frame: this cannot overflow a usize.
        self.refs.set(self.refs.get() + 1);
    }

    /// Gives up one reference, freeing the node on the last.
    ///
    /// # Safety
    ///
    /// The caller owns one of the counted references to `core`.
    unsafe fn dec_ref(core: NonNull<Core>) {
        // SAFETY: the caller's reference keeps it alive until here.
        let c = unsafe { core.as_ref() };
        let n = c.refs.get() - 1;
        c.refs.set(n);
        if n == 0 {
            // SAFETY: that was the last reference; `free` matches the node.
            unsafe { (c.free)(core) }
        }
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn out_of_range(i: usize, len: usize) -> ! {
    panic!("timer index {i} out of range for a TimerArray of length {len}")
}

/// Stops every timer, then drops and frees the node `core` (a `Node<F>`).
///
/// # Safety
///
/// `core` is a `Node<F>` made by `TimerArray::new` whose last reference
/// was just given up.
unsafe fn free_node<F>(core: NonNull<Core>) {
    // SAFETY: per the contract the node is alive, ours alone, and was made
    // by `Box::new` in `TimerArray::new`.
    let node = unsafe { Box::from_raw(core.cast::<Node<F>>().as_ptr()) };
    let Node { core, cb } = *node;
    // Stop first: libev must keep no pointer into the array, and nothing
    // the closure's destructor does (even a nested run) may fire a timer.
    for i in 0..core.len {
        core.restore_ref(i);
        // SAFETY: in bounds; stops (and clears any pending event of) our
        // watcher on its live loop.
        unsafe { sys::ev_timer_stop(core.raw, core.base.as_ptr().add(i)) };
    }
    // The closure goes before `core`, which frees the array and releases
    // the loop, also when the closure's destructor panics.
    drop(cb);
}

impl Drop for Core {
    fn drop(&mut self) {
        // At least one element: see `TimerArray::new`.
        let all = std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), self.len.max(1));
        // SAFETY: every timer is stopped (see `free_node`); the array was
        // allocated as this boxed slice in `TimerArray::new`, and is freed
        // once, here.
        drop(unsafe { Box::from_raw(all) });
        // SAFETY: taken once, as the node goes; released last, since it
        // may destroy the loop.
        drop(unsafe { ManuallyDrop::take(&mut self.lp) });
    }
}

/// libev's callback for every timer of a `TimerArray<F>`.
///
/// # Safety
///
/// Called by libev with a timer of a live `Node<F>`'s array and its loop.
unsafe extern "C" fn trampoline<F>(l: *mut sys::ev_loop, w: *mut sys::ev_timer, revents: c_int)
where
    F: FnMut(&TimerArray, usize, Events) + 'static,
{
    // SAFETY: every element's `data` is its node (set in `new`), alive
    // while libev calls back.
    let core_ptr = unsafe { NonNull::new_unchecked((*w).data.cast::<Core>()) };
    // SAFETY: as above; this counted reference keeps it alive for the whole
    // call, whatever the closure drops.
    let core = unsafe { core_ptr.as_ref() };
    core.inc_ref();
    // SAFETY: `w` points into the node's array.
    let i = unsafe { w.offset_from(core.base.as_ptr()) } as usize;
    // libev stopped a one-shot timer before calling back: pay back its unref.
    core.settle_stopped(i, w);
    if core.flags.get() & BUSY != 0 {
        // Re-entered (a nested run): keep the event rather than alias the
        // running closure.
        core.deferred.borrow_mut().push(i, revents, core.len);
        // SAFETY: gives back the reference taken above; the running outer
        // call holds another.
        unsafe { Core::dec_ref(core_ptr) };
        return;
    }
    core.set_flags(core.flags.get() | BUSY);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // A view that is never dropped: it holds no counted reference.
        let view = ManuallyDrop::new(TimerArray::from_core(core_ptr));
        // SAFETY: BUSY makes this the only reference to the closure, which
        // the node (kept alive above) owns.
        let f = unsafe { &mut *(*core_ptr.cast::<Node<F>>().as_ptr()).cb.get() };
        f(&view, i, Events::from_revents(revents))
    }));
    core.set_flags(core.flags.get() & !BUSY);
    // Feeding only queues the events: no callback runs meanwhile. After a
    // panic (which breaks the loop) they are discarded, as for `Timer`.
    let ok = result.is_ok();
    core.deferred.borrow_mut().drain(|j, ev| {
        if ok {
            // SAFETY: in bounds (an index libev reported); feeding our
            // watcher, which the node stops (clearing the event) before it
            // is freed.
            unsafe { sys::ev_feed_event(l, core.base.as_ptr().add(j).cast(), ev) }
        }
    });
    // SAFETY: libev calls back only for loops made by `Loop`; the entering
    // code holds the loop for the duration.
    let lp = || unsafe { crate::event_loop::Shared::from_raw(l) };
    if let Err(payload) = result {
        lp().handle_panic(payload);
    }
    // Releasing our reference may free the node (its owner is gone),
    // running the closure's destructor: keep its panics out of C.
    // SAFETY: gives back the reference taken above.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| unsafe { Core::dec_ref(core_ptr) })) {
        lp().handle_panic(payload);
    }
}

impl Drop for TimerArray {
    fn drop(&mut self) {
        let core = self.core();
        if core.refs.get() > 1 {
            // Dropped from its own callback, whose reference keeps the node:
            // stop everything now (freeing the node stops it all otherwise).
            for i in 0..core.len {
                core.stop(i, core.slot(i));
            }
            core.deferred.borrow_mut().drain(|_, _| {});
        }
        // SAFETY: gives up the owner's counted reference.
        unsafe { Core::dec_ref(self.core) }
    }
}

impl fmt::Debug for TimerArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let active = (0..self.len()).filter(|&i| self.is_active(i)).count();
        f.debug_struct("TimerArray")
            .field("len", &self.len())
            .field("active", &active)
            .field("keeps_loop_alive", &self.keeps_loop_alive())
            .finish_non_exhaustive()
    }
}
