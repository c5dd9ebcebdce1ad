//! A workaround for libev 4.33's io_uring backend, which leaves the loop
//! one reference too many after a fork: `iouring_internal_destroy` stops
//! its timerfd watcher with the `ev_ref` that undoes `iouring_init`'s
//! `ev_unref`, and `iouring_fork` then starts it again without a new
//! `ev_unref`. The loop stays "active" with no watcher, and `run` never
//! returns once the last watcher stops.
//!
//! libev runs `iouring_fork` in the first iteration after a fork is noted
//! (by [`Loop::reinit_after_fork`](crate::Loop::reinit_after_fork) or
//! `ev_loop_fork`, `LoopFlags::FORKCHECK`, the green layer's fork handler),
//! after that iteration's fork and prepare watchers. So loops created on
//! io_uring carry an (unreferenced) `ev_fork` watcher, which pays the
//! reference back in advance: it runs in that same iteration, before the
//! backend is re-created, and a count one too low until then cannot end
//! the run (libev checks it at the end of the iteration). Paying after
//! would be too late: the iteration's poll, counting the extra reference,
//! would block with nothing to wait for. A one-shot (unreferenced)
//! `ev_check`, which runs after the poll, marks the debt settled, so that
//! a nested run in a fork or prepare callback (whose fork phase runs the
//! fork watcher again) does not pay twice.
//!
//! `reinit_after_fork` called from a prepare callback comes after that
//! iteration's fork phase but before the re-creation: [`note_fork`] then
//! starts the check, which pays after the poll, and a zero timer, which
//! keeps that poll from waiting on the unpaid reference. Called from any
//! other callback, the next iteration's fork phase pays.

use crate::event_loop::Shared;
use libev_sys as sys;
use std::cell::Cell;
use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// The two watchers, at a stable address.
#[repr(C)]
pub(crate) struct IouringForkFix {
    fork: sys::ev_fork,
    check: sys::ev_check,
    /// Keeps the poll after a `note_fork` from blocking.
    timer0: sys::ev_timer,
    /// The fork watcher paid for a re-creation the check has not yet seen.
    prepaid: Cell<bool>,
    /// `reinit_after_fork` was called since the check last ran.
    noted: Cell<bool>,
}

/// Installs the workaround on `shared`'s loop if it runs on io_uring.
pub(crate) fn install(shared: &Shared) {
    let l = shared.raw();
    // SAFETY: reads a field of the live loop.
    if unsafe { sys::ev_backend(l) } != sys::EVBACKEND_IOURING {
        return;
    }
    let fix = NonNull::from(Box::leak(Box::new(IouringForkFix {
        // SAFETY: all-zero is a valid inactive watcher; initialised below.
        fork: unsafe { MaybeUninit::zeroed().assume_init() },
        // SAFETY: as above.
        check: unsafe { MaybeUninit::zeroed().assume_init() },
        // SAFETY: as above.
        timer0: unsafe { MaybeUninit::zeroed().assume_init() },
        prepaid: Cell::new(false),
        noted: Cell::new(false),
    })));
    // SAFETY: our own watchers, at their final address, on the live loop;
    // the fork watcher is unreferenced (paid back in `shutdown`) so that
    // it never keeps `run` going.
    unsafe {
        let f = fix.as_ptr();
        sys::ev_fork_init(&raw mut (*f).fork, Some(on_fork));
        sys::ev_check_init(&raw mut (*f).check, Some(on_check));
        sys::ev_timer_init(&raw mut (*f).timer0, Some(on_timer0), 0.0, 0.0);
        sys::ev_fork_start(l, &raw mut (*f).fork);
        sys::ev_unref(l);
    }
    shared.iouring_fix.set(Some(fix));
}

/// Stops and frees the watchers; called before the loop is destroyed.
pub(crate) fn shutdown(shared: &Shared) {
    let Some(fix) = shared.iouring_fix.take() else { return };
    let l = shared.raw();
    // SAFETY: our watchers on their live loop; the fork watcher's
    // `ev_unref` is paid back before it stops.
    unsafe {
        let f = fix.as_ptr();
        sys::ev_ref(l);
        sys::ev_fork_stop(l, &raw mut (*f).fork);
        stop_check(l, &*f);
        sys::ev_timer_stop(l, &raw mut (*f).timer0);
        drop(Box::from_raw(f));
    }
}

/// Notes that `reinit_after_fork` was just called on `shared`'s loop.
pub(crate) fn note_fork(shared: &Shared) {
    if let Some(fix) = shared.iouring_fix.get() {
        // SAFETY: the loop owns the watchers until `shutdown`.
        unsafe {
            let f = fix.as_ref();
            f.noted.set(true);
            start_check(shared.raw(), f);
            let timer0 = (&raw const f.timer0).cast_mut();
            if !sys::ev_is_active(timer0) {
                sys::ev_timer_start(shared.raw(), timer0);
            }
        }
    }
}

/// Starts the check, unreferenced, unless it is active.
///
/// # Safety
///
/// `f` is the live IouringForkFix of loop `l`.
unsafe fn start_check(l: *mut sys::ev_loop, f: &IouringForkFix) {
    let check = (&raw const f.check).cast_mut();
    // SAFETY: per the contract; the `ev_unref` is paid back in `stop_check`.
    unsafe {
        if !sys::ev_is_active(check) {
            sys::ev_check_start(l, check);
            sys::ev_unref(l);
        }
    }
}

/// Stops the check if it is active.
///
/// # Safety
///
/// As `start_check`.
unsafe fn stop_check(l: *mut sys::ev_loop, f: &IouringForkFix) {
    let check = (&raw const f.check).cast_mut();
    // SAFETY: per the contract; pays back `start_check`'s `ev_unref`.
    unsafe {
        if sys::ev_is_active(check) {
            sys::ev_ref(l);
            sys::ev_check_stop(l, check);
        }
    }
}

unsafe extern "C" fn on_fork(l: *mut sys::ev_loop, w: *mut sys::ev_fork, _revents: c_int) {
    // SAFETY: `w` is the first field of a live IouringForkFix of loop `l`;
    // libev re-creates the io_uring backend later in this iteration, taking
    // the reference paid here (once, see the module docs).
    unsafe {
        let f = &*w.cast::<IouringForkFix>();
        // libev may have left io_uring for epoll since (it can fall back).
        if sys::ev_backend(l) == sys::EVBACKEND_IOURING && !f.prepaid.replace(true) {
            sys::ev_unref(l);
            start_check(l, f);
        }
    }
}

unsafe extern "C" fn on_timer0(_l: *mut sys::ev_loop, _w: *mut sys::ev_timer, _revents: c_int) {
    // Nothing to do: it only kept one poll from blocking (libev stopped it).
}

unsafe extern "C" fn on_check(l: *mut sys::ev_loop, w: *mut sys::ev_check, _revents: c_int) {
    // SAFETY: `w` is the `check` field of a live IouringForkFix of loop `l`.
    unsafe {
        let f = &*w.byte_sub(std::mem::offset_of!(IouringForkFix, check)).cast::<IouringForkFix>();
        if !f.prepaid.replace(false) && f.noted.get() && sys::ev_backend(l) == sys::EVBACKEND_IOURING {
            // Noted from a prepare callback, after the fork phase: libev
            // re-created the backend before this poll, unpaid.
            sys::ev_unref(l);
        }
        // A fork noted after the re-creation is paid by the next fork phase.
        f.noted.set(false);
        stop_check(l, f);
    }
}
