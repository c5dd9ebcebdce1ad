//! The C shim's entry points (`shim/abi.c`), for this crate's tests: layout
//! facts as the C compiler saw them, and libev's macros compiled as C.
//! Not part of the supported API.

#![allow(missing_docs)]

use crate::{Callback, RescheduleCallback};
use crate::{
    ev_async, ev_check, ev_child, ev_cleanup, ev_embed, ev_fork, ev_idle, ev_io, ev_loop, ev_periodic,
    ev_prepare, ev_signal, ev_stat, ev_timer, ev_tstamp, ev_watcher,
};
use core::ffi::{c_char, c_int};

/// One layout fact: `name` is Rust syntax (`size_of::<ev_io>`,
/// `offset_of!(ev_io, fd)`), `value` what C's sizeof/_Alignof/offsetof gave.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AbiFact {
    pub name: *const c_char,
    pub value: usize,
}

unsafe extern "C" {
    pub fn libev_sys_abi_facts(len: *mut usize) -> *const AbiFact;

    pub fn libev_sys_shim_init(w: *mut ev_watcher, cb: Callback<ev_watcher>);
    pub fn libev_sys_shim_io_init(w: *mut ev_io, cb: Callback<ev_io>, fd: c_int, events: c_int);
    pub fn libev_sys_shim_io_modify(w: *mut ev_io, events: c_int);
    pub fn libev_sys_shim_timer_init(
        w: *mut ev_timer,
        cb: Callback<ev_timer>,
        after: ev_tstamp,
        repeat: ev_tstamp,
    );
    pub fn libev_sys_shim_periodic_init(
        w: *mut ev_periodic,
        cb: Callback<ev_periodic>,
        ofs: ev_tstamp,
        ival: ev_tstamp,
        rcb: RescheduleCallback,
    );
    pub fn libev_sys_shim_signal_init(w: *mut ev_signal, cb: Callback<ev_signal>, signum: c_int);
    pub fn libev_sys_shim_child_init(w: *mut ev_child, cb: Callback<ev_child>, pid: c_int, trace: c_int);
    pub fn libev_sys_shim_stat_init(
        w: *mut ev_stat,
        cb: Callback<ev_stat>,
        path: *const c_char,
        interval: ev_tstamp,
    );
    pub fn libev_sys_shim_embed_init(w: *mut ev_embed, cb: Callback<ev_embed>, other: *mut ev_loop);
    pub fn libev_sys_shim_idle_init(w: *mut ev_idle, cb: Callback<ev_idle>);
    pub fn libev_sys_shim_prepare_init(w: *mut ev_prepare, cb: Callback<ev_prepare>);
    pub fn libev_sys_shim_check_init(w: *mut ev_check, cb: Callback<ev_check>);
    pub fn libev_sys_shim_fork_init(w: *mut ev_fork, cb: Callback<ev_fork>);
    pub fn libev_sys_shim_cleanup_init(w: *mut ev_cleanup, cb: Callback<ev_cleanup>);
    pub fn libev_sys_shim_async_init(w: *mut ev_async, cb: Callback<ev_async>);

    pub fn libev_sys_shim_is_active(w: *mut ev_watcher) -> c_int;
    pub fn libev_sys_shim_is_pending(w: *mut ev_watcher) -> c_int;
    pub fn libev_sys_shim_priority(w: *mut ev_watcher) -> c_int;
    pub fn libev_sys_shim_set_priority(w: *mut ev_watcher, pri: c_int);
    pub fn libev_sys_shim_periodic_at(w: *mut ev_periodic) -> ev_tstamp;
    pub fn libev_sys_shim_async_pending(w: *mut ev_async) -> c_int;
    pub fn libev_sys_shim_default_loop_uc() -> *mut ev_loop;
    pub fn libev_sys_shim_is_default_loop(l: *mut ev_loop) -> c_int;
}
