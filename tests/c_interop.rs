//! Mixing the safe crate with C code built on libev (issue 21): a C
//! library's watchers on a loop Rust owns, and Rust watchers on a loop a C
//! library owns. The C half is `tests/c/interop.c`.

use libev::{Events, Io, Loop, Timer, sys};
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

#[repr(C)]
struct CReader {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn interop_reader_start(lp: *mut sys::ev_loop, fd: c_int, stop_after: c_int) -> *mut CReader;
    fn interop_reader_bytes(r: *const CReader) -> c_int;
    fn interop_reader_active(r: *const CReader) -> c_int;
    fn interop_reader_free(lp: *mut sys::ev_loop, r: *mut CReader);
    fn interop_loop_new() -> *mut sys::ev_loop;
    fn interop_loop_userdata_intact(lp: *mut sys::ev_loop) -> c_int;
    fn interop_timer_fired() -> c_int;
    fn interop_loop_run(lp: *mut sys::ev_loop) -> c_int;
    fn interop_loop_destroy(lp: *mut sys::ev_loop);
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) {
    // SAFETY: writes from a live slice.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize);
}

#[test]
fn a_c_library_starts_its_own_io_watcher_on_a_rust_loop() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    // SAFETY: the loop outlives the C watcher (freed below, before `lp`).
    let reader = unsafe { interop_reader_start(lp.as_raw(), r.as_raw_fd(), 10) };
    assert!(!reader.is_null());
    // A Rust watcher on the same loop, side by side with C's.
    let (r2, w2) = pipe();
    let rust_saw = std::rc::Rc::new(std::cell::Cell::new(false));
    let s = rust_saw.clone();
    let io = Io::borrowing(&lp, &r2, Events::READ, move |io, _| {
        s.set(true);
        io.stop();
    })
    .unwrap();
    io.start();
    write_all(&w, b"hello");
    write_all(&w2, b"x");
    lp.run_once();
    write_all(&w, b"world");
    // Rust's run drives C's watcher until it stops itself.
    lp.run();
    // SAFETY: a live C watcher.
    unsafe {
        assert_eq!(interop_reader_bytes(reader), 10);
        assert_eq!(interop_reader_active(reader), 0);
        interop_reader_free(lp.as_raw(), reader);
    }
    assert!(rust_saw.get());
}

#[test]
fn rust_borrows_a_loop_a_c_library_created_and_owns() {
    // SAFETY: the C library makes its loop; destroyed below, after every
    // Rust handle and watcher is gone.
    let raw = unsafe { interop_loop_new() };
    assert!(!raw.is_null());
    {
        // SAFETY: live until interop_loop_destroy, used on this thread only.
        let lp = unsafe { Loop::from_raw(raw) }.unwrap();
        let fired = std::rc::Rc::new(std::cell::Cell::new(0));
        let f = fired.clone();
        let t = Timer::new(&lp, Duration::from_millis(2), Duration::ZERO, move |_, _| f.set(f.get() + 1));
        t.start();
        // The C library runs its loop as it always does: Rust's timer fires.
        // SAFETY: C's own call on its loop.
        unsafe { interop_loop_run(raw) };
        assert_eq!(fired.get(), 1);
        // SAFETY: C's own call.
        assert_eq!(unsafe { interop_timer_fired() }, 1, "C's timer ran too");
        // And Rust can run it as well.
        t.start();
        lp.run();
        assert_eq!(fired.get(), 2);
    }
    // SAFETY: C's loop; the Rust side is gone, and gave its userdata back.
    unsafe {
        assert_eq!(interop_loop_userdata_intact(raw), 1);
        interop_loop_destroy(raw);
    }
}
