//! `Loop::once` (libev's `ev_once`).

mod util;

use libev::{Events, Loop};
use std::cell::Cell;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::{pipe, write_byte};

fn recorder() -> (Rc<Cell<Option<Events>>>, impl FnOnce(Events) + 'static) {
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    (got, move |ev| g.set(Some(ev)))
}

#[test]
fn a_timeout_fires_once_and_keeps_run_going_until_then() {
    let lp = Loop::new().unwrap();
    let (got, f) = recorder();
    let start = Instant::now();
    lp.once(None, Some(Duration::from_millis(20)), f).unwrap();
    assert!(!lp.run(), "run returns once the once has fired");
    assert_eq!(got.get(), Some(Events::TIMER));
    assert!(start.elapsed() >= Duration::from_millis(19));
}

#[test]
fn a_ready_fd_wins_over_the_timeout_and_the_timeout_is_gone() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let (got, f) = recorder();
    lp.once(Some((r.as_raw_fd(), Events::READ)), Some(Duration::from_secs(3600)), f).unwrap();
    write_byte(&w, 1);
    let start = Instant::now();
    lp.run();
    assert_eq!(got.get(), Some(Events::READ));
    assert!(start.elapsed() < Duration::from_secs(60), "the hour-long timer was stopped with it");
}

#[test]
fn the_timeout_wins_over_an_idle_fd() {
    let lp = Loop::new().unwrap();
    let (r, _w) = pipe();
    let (got, f) = recorder();
    lp.once(Some((r.as_raw_fd(), Events::READ)), Some(Duration::from_millis(5)), f).unwrap();
    lp.run();
    assert_eq!(got.get(), Some(Events::TIMER));
}

#[test]
fn an_fd_without_timeout_waits_for_the_fd() {
    let lp = Loop::new().unwrap();
    let (_r, w) = pipe();
    let (got, f) = recorder();
    lp.once(Some((w.as_raw_fd(), Events::WRITE)), None, f).unwrap();
    lp.run();
    assert_eq!(got.get(), Some(Events::WRITE));
}

#[test]
fn bad_arguments_are_errors() {
    let lp = Loop::new().unwrap();
    assert_eq!(lp.once(None, None, |_| {}).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        lp.once(Some((-1, Events::READ)), None, |_| {}).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    let (r0, _w) = pipe();
    let r = util::high_dup(&r0);
    let fd = r.as_raw_fd();
    assert_eq!(lp.once(Some((fd, Events::TIMER)), None, |_| {}).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(
        lp.once(Some((fd, Events::empty())), None, |_| {}).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    drop(r);
    assert_eq!(
        lp.once(Some((fd, Events::READ)), None, |_| {}).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    assert!(!lp.run(), "nothing was started");
}

#[test]
fn many_onces_fire_in_any_order_of_completion() {
    let lp = Loop::new().unwrap();
    let fired = Rc::new(Cell::new(0u32));
    for i in 0..100u64 {
        let f = fired.clone();
        lp.once(None, Some(Duration::from_micros((i * 7919) % 2000)), move |ev| {
            assert_eq!(ev, Events::TIMER);
            f.set(f.get() + 1);
        })
        .unwrap();
    }
    lp.run();
    assert_eq!(fired.get(), 100);
}

#[test]
fn a_once_may_start_another_from_its_callback() {
    let lp = Loop::new().unwrap();
    let fired = Rc::new(Cell::new(0));
    let (l, f) = (lp.clone(), fired.clone());
    lp.once(None, Some(Duration::ZERO), move |_| {
        f.set(1);
        let f = f.clone();
        l.once(None, Some(Duration::ZERO), move |_| f.set(2)).unwrap();
    })
    .unwrap();
    lp.run();
    assert_eq!(fired.get(), 2);
}

#[test]
fn a_waiting_once_is_dropped_unrun_with_its_loop() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let lp = Loop::new().unwrap();
    lp.once(None, Some(Duration::from_secs(3600)), move |_| {
        let _keep = &flag;
        panic!("never called");
    })
    .unwrap();
    assert!(!dropped.get());
    drop(lp);
    assert!(dropped.get(), "the closure went with the loop");
}

#[test]
fn a_panic_in_a_once_comes_out_of_run() {
    let lp = Loop::new().unwrap();
    lp.once(None, Some(Duration::ZERO), |_| panic!("once")).unwrap();
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"once"));
    assert!(!lp.run(), "and it is gone");
}

#[test]
fn a_closed_fd_gives_error() {
    let lp = Loop::new().unwrap();
    let (r0, _w) = pipe();
    let r = util::high_dup(&r0);
    let (got, f) = recorder();
    lp.once(Some((r.as_raw_fd(), Events::READ)), None, f).unwrap();
    // Closed under the waiting once (what the rules forbid, and what
    // libev reports rather than crashes on).
    let _wake = util::dead_fd_waker(&lp);
    drop(r);
    lp.run();
    assert!(got.get().unwrap().contains(Events::ERROR), "{:?}", got.get());
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
