//! The committed bindings must describe the C that `build.rs` compiled:
//! every size, alignment and field offset the C compiler reports through
//! `shim/abi.c` is compared with Rust's view of the same item.

use libev_sys::abi::{AbiFact, libev_sys_abi_facts};
use libev_sys::*;
use std::collections::BTreeMap;
use std::ffi::CStr;
use std::mem::{align_of, offset_of, size_of};

/// Rust's side of the table, with the same names the C shim uses.
fn rust_facts() -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    macro_rules! size {
        ($t:ident) => {
            m.insert(concat!("size_of::<", stringify!($t), ">").to_string(), size_of::<$t>());
            m.insert(concat!("align_of::<", stringify!($t), ">").to_string(), align_of::<$t>());
        };
    }
    macro_rules! off {
        ($t:ident, $($f:ident),+) => {
            $(m.insert(
                concat!("offset_of!(", stringify!($t), ", ", stringify!($f), ")").to_string(),
                offset_of!($t, $f),
            );)+
        };
    }
    macro_rules! header {
        ($t:ident) => {
            size!($t);
            off!($t, active, pending, priority, data, cb);
        };
    }
    size!(ev_tstamp);
    size!(ev_statdata);
    header!(ev_watcher);
    header!(ev_watcher_list);
    off!(ev_watcher_list, next);
    header!(ev_watcher_time);
    off!(ev_watcher_time, at);
    header!(ev_io);
    off!(ev_io, next, fd, events);
    header!(ev_timer);
    off!(ev_timer, at, repeat);
    header!(ev_periodic);
    off!(ev_periodic, at, offset, interval, reschedule_cb);
    header!(ev_signal);
    off!(ev_signal, next, signum);
    header!(ev_child);
    off!(ev_child, next, flags, pid, rpid, rstatus);
    header!(ev_stat);
    off!(ev_stat, next, timer, interval, path, prev, attr, wd);
    header!(ev_idle);
    header!(ev_prepare);
    header!(ev_check);
    header!(ev_embed);
    off!(ev_embed, other, io, prepare, check, timer, periodic, idle, fork, cleanup);
    header!(ev_fork);
    header!(ev_cleanup);
    header!(ev_async);
    off!(ev_async, sent);
    m
}

fn c_facts() -> BTreeMap<String, usize> {
    let mut len = 0usize;
    // SAFETY: the shim returns a pointer to a static array of `len` facts
    // whose names are static NUL-terminated strings.
    let facts: &[AbiFact] = unsafe {
        let ptr = libev_sys_abi_facts(&mut len);
        std::slice::from_raw_parts(ptr, len)
    };
    facts
        .iter()
        .map(|f| {
            // SAFETY: see above: each name is a static C string.
            let name = unsafe { CStr::from_ptr(f.name) }.to_str().unwrap().to_string();
            (name, f.value)
        })
        .collect()
}

#[test]
fn rust_layouts_match_compiled_c() {
    let c = c_facts();
    let rust = rust_facts();
    assert!(c.len() > 100, "the shim reports {} facts", c.len());
    let mut mismatches = Vec::new();
    for (name, c_value) in &c {
        match rust.get(name) {
            Some(r) if r == c_value => {}
            Some(r) => mismatches.push(format!("{name}: C {c_value}, Rust {r}")),
            None => mismatches.push(format!("{name}: reported by C, not checked in Rust")),
        }
    }
    for name in rust.keys().filter(|n| !c.contains_key(*n)) {
        mismatches.push(format!("{name}: checked in Rust, not reported by C"));
    }
    assert!(mismatches.is_empty(), "layout mismatches:\n{}", mismatches.join("\n"));
}

#[test]
fn version_is_4_33() {
    // SAFETY: plain getters.
    let (major, minor) = unsafe { (ev_version_major(), ev_version_minor()) };
    assert_eq!((major, minor), (EV_VERSION_MAJOR as i32, EV_VERSION_MINOR as i32));
    assert_eq!((major, minor), (4, 33));
}

#[test]
fn configured_backends_are_compiled_in() {
    // SAFETY: plain getter.
    let supported = unsafe { ev_supported_backends() };
    assert_ne!(supported & EVBACKEND_SELECT, 0);
    assert_ne!(supported & EVBACKEND_POLL, 0);
    if cfg!(target_os = "linux") {
        assert_ne!(supported & EVBACKEND_EPOLL, 0);
        // Compiled in where the kernel headers were found (build.rs);
        // libev lists io_uring only on kernels 5.6.1 and later.
        let linuxaio = env!("LIBEV_SYS_EV_USE_LINUXAIO") == "1";
        assert_eq!(supported & EVBACKEND_LINUXAIO != 0, linuxaio);
        if env!("LIBEV_SYS_EV_USE_IOURING") != "1" {
            assert_eq!(supported & EVBACKEND_IOURING, 0);
        }
        // Neither is recommended: a loop gets them only by asking.
        // SAFETY: plain getter.
        let recommended = unsafe { ev_recommended_backends() };
        assert_eq!(recommended & (EVBACKEND_LINUXAIO | EVBACKEND_IOURING), 0);
    }
}
