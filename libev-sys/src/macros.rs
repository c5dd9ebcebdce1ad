//! libev's function-like macros and `static inline` functions as
//! `#[inline]` Rust, under their C names.
//!
//! Each is checked against the C original (compiled in `shim/abi.c`) by
//! `tests/macros.rs`. All take raw pointers: like the macros, they assume the
//! pointer is valid and do no checks.

use crate::{
    EV__IOFDSET, ev_async, ev_check, ev_child, ev_cleanup, ev_default_loop_ptr, ev_embed, ev_fork, ev_idle,
    ev_io, ev_loop, ev_periodic, ev_prepare, ev_signal, ev_stat, ev_timer, ev_tstamp, ev_watcher,
    ev_watcher_list, ev_watcher_time,
};
use core::ffi::{c_char, c_int};
use core::ptr::{addr_of, addr_of_mut};

/// A watcher struct: a `#[repr(C)]` struct that starts with libev's common
/// watcher header (`EV_WATCHER(type)`: active, pending, priority, data, cb).
///
/// # Safety
///
/// Implement only for structs whose leading fields are exactly that header,
/// with `cb` of type [`Callback<Self>`]; the generic functions here cast a
/// `*mut Self` to `*mut ev_watcher` on that promise.
pub unsafe trait Watcher: Sized {}

macro_rules! watchers {
    ($($t:ident),* $(,)?) => {
        $(
            // SAFETY: `ev.h` declares this struct with `EV_WATCHER`,
            // `EV_WATCHER_LIST` or `EV_WATCHER_TIME` as its first fields.
            unsafe impl Watcher for $t {}
        )*
    };
}
watchers!(
    ev_watcher,
    ev_watcher_list,
    ev_watcher_time,
    ev_io,
    ev_timer,
    ev_periodic,
    ev_signal,
    ev_child,
    ev_stat,
    ev_idle,
    ev_prepare,
    ev_check,
    ev_embed,
    ev_fork,
    ev_cleanup,
    ev_async,
);

/// The callback type of watcher type `W` (the `cb` field).
pub type Callback<W> = Option<unsafe extern "C" fn(loop_: *mut ev_loop, w: *mut W, revents: c_int)>;

/// The reschedule callback of an `ev_periodic` (`reschedule_cb`).
pub type RescheduleCallback = Option<unsafe extern "C" fn(w: *mut ev_periodic, now: ev_tstamp) -> ev_tstamp>;

#[inline(always)]
fn header<W: Watcher>(w: *mut W) -> *mut ev_watcher {
    w.cast()
}

/// `ev_init`: marks the watcher inactive and not pending, priority 0, and
/// sets its callback.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_init<W: Watcher>(w: *mut W, cb: Callback<W>) {
    let h = header(w);
    // SAFETY: the caller gives a valid watcher, whose header `Watcher` promises.
    unsafe {
        (*h).active = 0;
        (*h).pending = 0;
        ev_set_priority(w, 0);
        ev_set_cb(w, cb);
    }
}

/// `ev_set_cb`: replaces the callback (allowed at any time).
///
/// # Safety
///
/// `w` must be valid for writes.
#[inline]
pub unsafe fn ev_set_cb<W: Watcher>(w: *mut W, cb: Callback<W>) {
    // SAFETY: `cb` sits in the header of every watcher type; `Callback<W>`
    // and the header's callback type are both nullable function pointers of
    // the same size and ABI.
    unsafe { addr_of_mut!((*header(w)).cb).cast::<Callback<W>>().write(cb) }
}

/// `ev_cb`: the current callback.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_cb<W: Watcher>(w: *const W) -> Callback<W> {
    // SAFETY: as in `ev_set_cb`.
    unsafe { addr_of!((*w.cast::<ev_watcher>()).cb).cast::<Callback<W>>().read() }
}

/// `ev_is_active`: the watcher was started and not yet stopped.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_is_active<W: Watcher>(w: *const W) -> bool {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w.cast::<ev_watcher>()).active != 0 }
}

/// `ev_is_pending`: an event was received and the callback has not run yet.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_is_pending<W: Watcher>(w: *const W) -> bool {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w.cast::<ev_watcher>()).pending != 0 }
}

/// `ev_priority`: the watcher's priority, `EV_MINPRI..=EV_MAXPRI`.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_priority<W: Watcher>(w: *const W) -> c_int {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w.cast::<ev_watcher>()).priority }
}

/// `ev_set_priority`. libev clamps out-of-range values when the watcher starts.
///
/// # Safety
///
/// `w` must be valid for writes and neither active nor pending.
#[inline]
pub unsafe fn ev_set_priority<W: Watcher>(w: *mut W, priority: c_int) {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*header(w)).priority = priority }
}

/// `ev_io_set`: the file descriptor and the `EV_READ`/`EV_WRITE` mask.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_io_set(w: *mut ev_io, fd: c_int, events: c_int) {
    // SAFETY: the caller gives a valid watcher.
    unsafe {
        (*w).fd = fd;
        (*w).events = events | EV__IOFDSET;
    }
}

/// `ev_io_modify`: changes only the event mask, keeping the fd.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_io_modify(w: *mut ev_io, events: c_int) {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w).events = ((*w).events & EV__IOFDSET) | events }
}

/// `ev_io_init`: `ev_init` then `ev_io_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_io_init(w: *mut ev_io, cb: Callback<ev_io>, fd: c_int, events: c_int) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_io_set(w, fd, events);
    }
}

/// `ev_timer_set`: first expiry after `after` seconds, then every `repeat`
/// seconds (0: once).
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_timer_set(w: *mut ev_timer, after: ev_tstamp, repeat: ev_tstamp) {
    // SAFETY: the caller gives a valid watcher.
    unsafe {
        (*w.cast::<ev_watcher_time>()).at = after;
        (*w).repeat = repeat;
    }
}

/// `ev_timer_init`: `ev_init` then `ev_timer_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_timer_init(w: *mut ev_timer, cb: Callback<ev_timer>, after: ev_tstamp, repeat: ev_tstamp) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_timer_set(w, after, repeat);
    }
}

/// `ev_periodic_set`: offset, interval and optional reschedule callback.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_periodic_set(
    w: *mut ev_periodic,
    offset: ev_tstamp,
    interval: ev_tstamp,
    reschedule_cb: RescheduleCallback,
) {
    // SAFETY: the caller gives a valid watcher.
    unsafe {
        (*w).offset = offset;
        (*w).interval = interval;
        (*w).reschedule_cb = reschedule_cb;
    }
}

/// `ev_periodic_init`: `ev_init` then `ev_periodic_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_periodic_init(
    w: *mut ev_periodic,
    cb: Callback<ev_periodic>,
    offset: ev_tstamp,
    interval: ev_tstamp,
    reschedule_cb: RescheduleCallback,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_periodic_set(w, offset, interval, reschedule_cb);
    }
}

/// `ev_periodic_at`: the absolute time the periodic fires next.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_periodic_at(w: *const ev_periodic) -> ev_tstamp {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w.cast::<ev_watcher_time>()).at }
}

/// `ev_signal_set`.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_signal_set(w: *mut ev_signal, signum: c_int) {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w).signum = signum }
}

/// `ev_signal_init`: `ev_init` then `ev_signal_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_signal_init(w: *mut ev_signal, cb: Callback<ev_signal>, signum: c_int) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_signal_set(w, signum);
    }
}

/// `ev_child_set`: `pid` (0: any child); `trace` also reports stops and
/// continues.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_child_set(w: *mut ev_child, pid: c_int, trace: c_int) {
    // SAFETY: the caller gives a valid watcher.
    unsafe {
        (*w).pid = pid;
        (*w).flags = c_int::from(trace != 0);
    }
}

/// `ev_child_init`: `ev_init` then `ev_child_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_child_init(w: *mut ev_child, cb: Callback<ev_child>, pid: c_int, trace: c_int) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_child_set(w, pid, trace);
    }
}

/// `ev_stat_set`: the path (kept by pointer) and polling interval.
///
/// # Safety
///
/// `w` must be valid for writes and not active; `path` must stay valid and
/// unchanged while the watcher is active.
#[inline]
pub unsafe fn ev_stat_set(w: *mut ev_stat, path: *const c_char, interval: ev_tstamp) {
    // SAFETY: the caller gives a valid watcher.
    unsafe {
        (*w).path = path;
        (*w).interval = interval;
        (*w).wd = -2;
    }
}

/// `ev_stat_init`: `ev_init` then `ev_stat_set`.
///
/// # Safety
///
/// As [`ev_init`] and [`ev_stat_set`].
#[inline]
pub unsafe fn ev_stat_init(w: *mut ev_stat, cb: Callback<ev_stat>, path: *const c_char, interval: ev_tstamp) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_stat_set(w, path, interval);
    }
}

/// `ev_embed_set`: the loop to embed.
///
/// # Safety
///
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_embed_set(w: *mut ev_embed, other: *mut ev_loop) {
    // SAFETY: the caller gives a valid watcher.
    unsafe { (*w).other = other }
}

/// `ev_embed_init`: `ev_init` then `ev_embed_set`.
///
/// # Safety
///
/// As [`ev_init`].
#[inline]
pub unsafe fn ev_embed_init(w: *mut ev_embed, cb: Callback<ev_embed>, other: *mut ev_loop) {
    // SAFETY: forwarded from the caller.
    unsafe {
        ev_init(w, cb);
        ev_embed_set(w, other);
    }
}

macro_rules! init_only {
    ($($init:ident($t:ident)),* $(,)?) => {
        $(
            #[doc = concat!("`", stringify!($init), "`: `ev_init` (this type has nothing to set).")]
            ///
            /// # Safety
            ///
            /// As [`ev_init`].
            #[inline]
            pub unsafe fn $init(w: *mut $t, cb: Callback<$t>) {
                // SAFETY: forwarded from the caller.
                unsafe { ev_init(w, cb) }
            }
        )*
    };
}
init_only!(
    ev_idle_init(ev_idle),
    ev_prepare_init(ev_prepare),
    ev_check_init(ev_check),
    ev_fork_init(ev_fork),
    ev_cleanup_init(ev_cleanup),
    ev_async_init(ev_async),
);

/// `ev_async_pending`: `ev_async_send` was called and the callback has not
/// run yet.
///
/// # Safety
///
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_async_pending(w: *const ev_async) -> bool {
    // SAFETY: the caller gives a valid watcher; the field is `volatile` in C.
    unsafe { addr_of!((*w).sent).read_volatile() != 0 }
}

/// `ev_default_loop_uc_`: the default loop if it was created, else null.
///
/// # Safety
///
/// Must not race with `ev_default_loop` or `ev_loop_destroy` of the default
/// loop on another thread.
#[inline]
pub unsafe fn ev_default_loop_uc_() -> *mut ev_loop {
    // SAFETY: a plain read of libev's global, unsynchronised as in C.
    unsafe { addr_of!(ev_default_loop_ptr).read() }
}

/// `ev_is_default_loop`: whether `l` is the default loop.
///
/// # Safety
///
/// As [`ev_default_loop_uc_`].
#[inline]
pub unsafe fn ev_is_default_loop(l: *mut ev_loop) -> bool {
    // SAFETY: forwarded from the caller.
    l == unsafe { ev_default_loop_uc_() }
}
