//! The escape hatch to C: `Loop::as_raw`, `Loop::from_raw` (a loop C code
//! created and owns), the watchers' `as_raw`, and `libev::sys`.

mod util;

use libev::{Child, Cleanup, Events, Io, Loop, Periodic, Signal, Timer, sys};
use std::cell::Cell;
use std::ffi::c_void;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;
use util::{Counter, pipe, write_byte};

/// A loop as a C library makes it, with a userdata of its own, destroyed
/// by C when the test is done.
struct CLoop {
    raw: *mut sys::ev_loop,
    marker: Box<u64>,
}

impl CLoop {
    fn new() -> CLoop {
        // SAFETY: no preconditions.
        let raw = unsafe { sys::ev_loop_new(0) };
        assert!(!raw.is_null());
        let mut marker = Box::new(0xC0FFEE);
        // SAFETY: a live loop we own.
        unsafe { sys::ev_set_userdata(raw, (&mut *marker as *mut u64).cast::<c_void>()) };
        CLoop { raw, marker }
    }

    fn userdata(&self) -> *mut c_void {
        // SAFETY: a live loop we own.
        unsafe { sys::ev_userdata(self.raw) }
    }

    fn marker(&self) -> *mut c_void {
        (&*self.marker as *const u64).cast_mut().cast()
    }
}

impl Drop for CLoop {
    fn drop(&mut self) {
        // SAFETY: C's loop; the tests drop every Rust handle first.
        unsafe { sys::ev_loop_destroy(self.raw) }
    }
}

#[test]
fn as_raw_is_the_loop_c_functions_take() {
    let lp = Loop::new().unwrap();
    let raw = lp.as_raw();
    // SAFETY: reading counters of a live loop.
    unsafe {
        assert_eq!(sys::ev_iteration(raw), lp.iteration());
        assert_eq!(sys::ev_backend(raw), lp.backend().bits());
    }
    lp.run_nowait();
    // SAFETY: as above.
    assert_eq!(unsafe { sys::ev_iteration(raw) }, 1);
}

#[test]
fn from_raw_of_a_wrapped_loop_is_the_same_handle() {
    let lp = Loop::new().unwrap();
    // SAFETY: a live loop of this thread.
    let again = unsafe { Loop::from_raw(lp.as_raw()) }.unwrap();
    assert!(again.ptr_eq(&lp));
    drop(lp);
    // `again` keeps it alive and usable.
    util::assert_loop_usable(&again);
}

#[test]
fn from_raw_rejects_null() {
    // SAFETY: null is rejected before any use.
    let err = unsafe { Loop::from_raw(std::ptr::null_mut()) }.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_borrowed_loop_runs_rust_watchers_and_goes_back_to_c_intact() {
    let c = CLoop::new();
    {
        // SAFETY: `c` outlives this block and stays on this thread.
        let lp = unsafe { Loop::from_raw(c.raw) }.unwrap();
        assert!(!lp.is_default());
        assert_ne!(c.userdata(), c.marker(), "the Rust side keeps its state there while it borrows");
        let n = Counter::new();
        let k = n.clone();
        let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, move |_, _| k.bump());
        t.start();
        lp.run();
        assert_eq!(n.get(), 1);
        // Queued callbacks and `once` use libev watchers of their own.
        let k = n.clone();
        let _ = lp.run_callback(move || k.bump());
        lp.once(None, Some(Duration::from_secs(3600)), |_| panic!("never fires")).unwrap();
    }
    assert_eq!(c.userdata(), c.marker(), "C's userdata is given back");
    // Nothing of Rust's is left in the loop: C's run returns at once.
    // SAFETY: C's live loop, no Rust side any more.
    unsafe {
        assert_eq!(sys::ev_run(c.raw, 0), 0);
        assert_eq!(sys::ev_pending_count(c.raw), 0);
    }
}

#[test]
fn c_can_run_a_borrowed_loop_with_rust_watchers() {
    let c = CLoop::new();
    // SAFETY: `c` outlives `lp` and stays on this thread.
    let lp = unsafe { Loop::from_raw(c.raw) }.unwrap();
    let (r, w) = pipe();
    let got = Counter::new();
    let g = got.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
        assert!(ev.contains(Events::READ));
        g.bump();
        io.stop();
    })
    .unwrap();
    io.start();
    write_byte(&w, 1);
    // SAFETY: the borrowed loop, run from "C" on its thread.
    unsafe { sys::ev_run(c.raw, 0) };
    assert_eq!(got.get(), 1);
    drop(io);
    drop(lp);
}

#[test]
fn a_panic_while_c_runs_the_loop_comes_out_of_the_next_rust_run() {
    let c = CLoop::new();
    // SAFETY: `c` outlives `lp` and stays on this thread.
    let lp = unsafe { Loop::from_raw(c.raw) }.unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| panic!("from a Rust callback"));
    t.start();
    let keep = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    keep.start();
    // SAFETY: as above. The panic breaks C's run instead of unwinding into it.
    unsafe { sys::ev_run(c.raw, 0) };
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_nowait())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"from a Rust callback"));
}

#[test]
fn cleanup_watchers_run_when_the_rust_side_lets_go() {
    let c = CLoop::new();
    let ran = Rc::new(Cell::new(0));
    let (r1, r2) = (ran.clone(), ran.clone());
    // SAFETY: `c` outlives the Rust side and stays on this thread.
    let lp = unsafe { Loop::from_raw(c.raw) }.unwrap();
    let a = Cleanup::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::CLEANUP);
        r1.set(r1.get() + 1);
    });
    // This one drops the other from its callback: it must not run after.
    let b_slot: Rc<Cell<Option<Cleanup>>> = Rc::new(Cell::new(None));
    let victim = Cleanup::new(&lp, |_, _| panic!("dropped by a sibling before it ran"));
    victim.start();
    let slot = b_slot.clone();
    slot.set(Some(victim));
    let b = Cleanup::new(&lp, move |_, _| {
        drop(slot.take());
        r2.set(r2.get() + 10);
    });
    a.start();
    b.start();
    let stopped = Cleanup::new(&lp, |_, _| panic!("stopped, so never called"));
    stopped.start();
    stopped.stop();
    drop(lp);
    assert_eq!(ran.get(), 11);
    assert!(!a.is_active() && !b.is_active());
    assert!(a.loop_handle().is_none());
    drop((a, b, stopped, b_slot));
    // C's destroy calls nothing of Rust's.
    drop(c);
}

#[test]
fn the_default_loop_can_be_borrowed_and_runs_child_watchers() {
    // SAFETY: no preconditions; libev's default loop (made by "C").
    let raw = unsafe { sys::ev_default_loop(0) };
    {
        // SAFETY: the default loop lives until ev_loop_destroy below, after
        // the Rust side; this test is the only user of it in this binary.
        let lp = unsafe { Loop::from_raw(raw) }.unwrap();
        assert!(lp.is_default());
        assert!(Loop::default_loop().unwrap().ptr_eq(&lp), "default_loop returns it while borrowed");
        #[allow(clippy::zombie_processes)] // libev reaps it
        let child = std::process::Command::new("true").spawn().unwrap();
        let status = Rc::new(Cell::new(None));
        let s = status.clone();
        let w = Child::new(&lp, child.id() as i32, false, move |w, _| {
            s.set(Some(w.exit_status()));
            w.stop();
        })
        .unwrap();
        w.start();
        util::run_until(&lp, "the child's exit", || status.get().is_some());
        assert!(status.get().unwrap().success());
    }
    // C still has it: the crate does not make it again, nor lets another
    // loop take SIGCHLD from it; borrowing it again works.
    assert_eq!(Loop::default_loop().unwrap_err().kind(), ErrorKind::ResourceBusy);
    let other = Loop::new().unwrap();
    let sigchld = Signal::new(&other, libc::SIGCHLD, |_, _| {}).unwrap();
    assert_eq!(sigchld.start().unwrap_err().kind(), ErrorKind::ResourceBusy);
    // SAFETY: as above.
    let again = unsafe { Loop::from_raw(raw) }.unwrap();
    assert!(again.is_default());
    drop(again);
    // SAFETY: the C side destroys its default loop; no Rust handle is left.
    unsafe { sys::ev_loop_destroy(raw) };
}

#[test]
fn watcher_as_raw_is_the_struct_libev_sees() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::from_secs(5), Duration::from_millis(250), |_, _| {});
    let w = t.as_raw();
    // SAFETY: reading fields of a live watcher on its thread.
    unsafe {
        assert!(!sys::ev_is_active(w));
        assert_eq!((*w).repeat, 0.25);
    }
    t.start();
    // SAFETY: as above.
    unsafe {
        assert!(sys::ev_is_active(w));
        assert!(sys::ev_timer_remaining(lp.as_raw(), w) > 4.0);
        // C may feed it events: the Rust callback receives them.
        sys::ev_feed_event(lp.as_raw(), w.cast(), sys::EV_CUSTOM);
    }
    assert!(t.is_pending());
    let s = Signal::new(&lp, libc::SIGUSR2, |_, _| {}).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { (*s.as_raw()).signum }, libc::SIGUSR2);
    let p = Periodic::at(&lp, 1e10, |_, _| {}).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { (*p.as_raw()).offset }, 1e10);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
