//! The `#[inline]` Rust versions of libev's function-like macros must leave
//! a watcher byte-for-byte as the C macros (compiled in `shim/abi.c`) do.

use libev_sys::abi::*;
use libev_sys::*;
use std::ffi::c_int;
use std::mem::{MaybeUninit, size_of};

/// A watcher filled with a byte pattern, so fields a macro must not touch
/// keep a recognisable value in both versions.
fn patterned<W>(byte: u8) -> W {
    let mut w = MaybeUninit::<W>::uninit();
    // SAFETY: every watcher struct is plain old data: any byte pattern is a
    // valid (if meaningless) value for its integer, float, pointer and
    // nullable function pointer fields.
    unsafe {
        w.as_mut_ptr().cast::<u8>().write_bytes(byte, size_of::<W>());
        w.assume_init()
    }
}

fn bytes<W>(w: &W) -> &[u8] {
    // SAFETY: reading the object representation of a plain-old-data value;
    // the patterned start leaves no padding byte uninitialised.
    unsafe { std::slice::from_raw_parts((w as *const W).cast::<u8>(), size_of::<W>()) }
}

/// Runs the Rust macro on one patterned copy and the C macro on another,
/// then compares all bytes.
fn same<W>(rust: impl Fn(*mut W), c: impl Fn(*mut W)) {
    for pattern in [0x00u8, 0xA5, 0xFF] {
        let mut a: W = patterned(pattern);
        let mut b: W = patterned(pattern);
        rust(&mut a);
        c(&mut b);
        assert_eq!(bytes(&a), bytes(&b), "pattern {pattern:#x}");
    }
}

macro_rules! cb {
    ($name:ident, $t:ty) => {
        unsafe extern "C" fn $name(_: *mut ev_loop, _: *mut $t, _: c_int) {}
    };
}
cb!(io_cb, ev_io);
cb!(timer_cb, ev_timer);
cb!(periodic_cb, ev_periodic);
cb!(signal_cb, ev_signal);
cb!(child_cb, ev_child);
cb!(stat_cb, ev_stat);
cb!(embed_cb, ev_embed);
cb!(idle_cb, ev_idle);
cb!(prepare_cb, ev_prepare);
cb!(check_cb, ev_check);
cb!(fork_cb, ev_fork);
cb!(cleanup_cb, ev_cleanup);
cb!(async_cb, ev_async);
cb!(watcher_cb, ev_watcher);

unsafe extern "C" fn reschedule(_: *mut ev_periodic, now: ev_tstamp) -> ev_tstamp {
    now + 1.0
}

#[test]
fn init_macros_match_c() {
    // SAFETY: each pointer is a live local watcher, and none is started on a
    // loop (closures inherit this unsafe block).
    unsafe {
        same::<ev_watcher>(|w| ev_init(w, Some(watcher_cb)), |w| libev_sys_shim_init(w, Some(watcher_cb)));
        same::<ev_io>(
            |w| ev_io_init(w, Some(io_cb), 7, EV_READ | EV_WRITE),
            |w| libev_sys_shim_io_init(w, Some(io_cb), 7, EV_READ | EV_WRITE),
        );
        same::<ev_timer>(
            |w| ev_timer_init(w, Some(timer_cb), 1.5, 0.25),
            |w| libev_sys_shim_timer_init(w, Some(timer_cb), 1.5, 0.25),
        );
        same::<ev_periodic>(
            |w| ev_periodic_init(w, Some(periodic_cb), 3.0, 60.0, Some(reschedule)),
            |w| libev_sys_shim_periodic_init(w, Some(periodic_cb), 3.0, 60.0, Some(reschedule)),
        );
        same::<ev_signal>(
            |w| ev_signal_init(w, Some(signal_cb), 10),
            |w| libev_sys_shim_signal_init(w, Some(signal_cb), 10),
        );
        for trace in [0, 1, 5] {
            same::<ev_child>(
                |w| ev_child_init(w, Some(child_cb), 1234, trace),
                |w| libev_sys_shim_child_init(w, Some(child_cb), 1234, trace),
            );
        }
        let path = c"/tmp";
        same::<ev_stat>(
            |w| ev_stat_init(w, Some(stat_cb), path.as_ptr(), 0.5),
            |w| libev_sys_shim_stat_init(w, Some(stat_cb), path.as_ptr(), 0.5),
        );
        let other = 0x1000 as *mut ev_loop;
        same::<ev_embed>(
            |w| ev_embed_init(w, Some(embed_cb), other),
            |w| libev_sys_shim_embed_init(w, Some(embed_cb), other),
        );
        same::<ev_idle>(|w| ev_idle_init(w, Some(idle_cb)), |w| libev_sys_shim_idle_init(w, Some(idle_cb)));
        same::<ev_prepare>(
            |w| ev_prepare_init(w, Some(prepare_cb)),
            |w| libev_sys_shim_prepare_init(w, Some(prepare_cb)),
        );
        same::<ev_check>(
            |w| ev_check_init(w, Some(check_cb)),
            |w| libev_sys_shim_check_init(w, Some(check_cb)),
        );
        same::<ev_fork>(|w| ev_fork_init(w, Some(fork_cb)), |w| libev_sys_shim_fork_init(w, Some(fork_cb)));
        same::<ev_cleanup>(
            |w| ev_cleanup_init(w, Some(cleanup_cb)),
            |w| libev_sys_shim_cleanup_init(w, Some(cleanup_cb)),
        );
        same::<ev_async>(
            |w| ev_async_init(w, Some(async_cb)),
            |w| libev_sys_shim_async_init(w, Some(async_cb)),
        );
    }
}

#[test]
fn io_modify_keeps_the_fd_set_flag() {
    // SAFETY: local, unstarted watchers (closures inherit this block).
    unsafe {
        same::<ev_io>(
            |w| {
                ev_io_init(w, Some(io_cb), 3, EV_READ);
                ev_io_modify(w, EV_WRITE);
            },
            |w| {
                libev_sys_shim_io_init(w, Some(io_cb), 3, EV_READ);
                libev_sys_shim_io_modify(w, EV_WRITE);
            },
        );
    }
}

#[test]
fn accessors_match_c() {
    let mut p: ev_periodic = patterned(0);
    // SAFETY: a local, unstarted watcher; the accessors only read or write
    // its header fields.
    unsafe {
        ev_periodic_init(&mut p, Some(periodic_cb), 1.0, 2.0, None);
        let w = (&mut p as *mut ev_periodic).cast::<ev_watcher>();
        for pri in EV_MINPRI..=EV_MAXPRI as i32 {
            ev_set_priority(&mut p, pri);
            assert_eq!(ev_priority(&p), libev_sys_shim_priority(w));
            libev_sys_shim_set_priority(w, -pri);
            assert_eq!(ev_priority(&p), -pri);
        }
        for (active, pending) in [(0, 0), (1, 0), (0, 3), (2, 5)] {
            p.active = active;
            p.pending = pending;
            assert_eq!(ev_is_active(&p), libev_sys_shim_is_active(w) != 0);
            assert_eq!(ev_is_pending(&p), libev_sys_shim_is_pending(w) != 0);
        }
        p.active = 0;
        p.pending = 0;
        p.at = 42.5;
        assert_eq!(ev_periodic_at(&p), libev_sys_shim_periodic_at(&mut p));
        assert_eq!(ev_periodic_at(&p), 42.5);
        assert_eq!(ev_cb(&p).map(|f| f as usize), Some(periodic_cb as *const () as usize));
        ev_set_cb(&mut p, None);
        assert!(ev_cb(&p).is_none());

        let mut a: ev_async = patterned(0);
        ev_async_init(&mut a, Some(async_cb));
        for sent in [0, 1] {
            a.sent = sent;
            assert_eq!(ev_async_pending(&a), libev_sys_shim_async_pending(&mut a) != 0);
        }
    }
}

#[test]
fn default_loop_inlines_match_c() {
    // SAFETY: no other thread of this test binary touches the default loop.
    unsafe {
        let def = ev_default_loop(EVFLAG_AUTO);
        assert!(!def.is_null());
        assert_eq!(ev_default_loop_uc_(), libev_sys_shim_default_loop_uc());
        assert_eq!(ev_default_loop_uc_(), def);
        assert!(ev_is_default_loop(def));
        assert_eq!(libev_sys_shim_is_default_loop(def), 1);
        let other = ev_loop_new(EVFLAG_AUTO);
        assert!(!ev_is_default_loop(other));
        assert_eq!(libev_sys_shim_is_default_loop(other), 0);
        ev_loop_destroy(other);
    }
}
