//! `Signal` with real signals sent with kill(2). Each test uses its own
//! signal, since tests run in parallel threads of one process.

mod util;

use libev::{Loop, Signal};
use std::io::ErrorKind;
use util::Counter;

fn kill_self(sig: i32) {
    // SAFETY: sends a signal we have a handler for to our own process.
    assert_eq!(unsafe { libc::kill(libc::getpid(), sig) }, 0);
}

#[test]
fn a_real_signal_runs_the_callback() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let s = Signal::new(&lp, libc::SIGUSR1, move |s, ev| {
        assert!(ev.contains(libev::Events::SIGNAL));
        c.bump();
        s.stop();
    })
    .unwrap();
    s.start().unwrap();
    assert_eq!(s.signum(), libc::SIGUSR1);
    kill_self(libc::SIGUSR1);
    lp.run();
    assert_eq!(n.get(), 1);
}

#[test]
fn bad_signal_numbers_are_errors() {
    let lp = Loop::new().unwrap();
    for bad in [0, -1, 65, 1000, libc::SIGKILL, libc::SIGSTOP] {
        let err = Signal::new(&lp, bad, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "signal {bad}");
    }
    assert_eq!(lp.feed_signal_event(0).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_signal_belongs_to_one_loop_at_a_time() {
    let a = Loop::new().unwrap();
    let b = Loop::new().unwrap();
    let sa = Signal::new(&a, libc::SIGUSR2, |_, _| {}).unwrap();
    let sa2 = Signal::new(&a, libc::SIGUSR2, |_, _| {}).unwrap();
    let sb = Signal::new(&b, libc::SIGUSR2, |_, _| {}).unwrap();
    sa.start().unwrap();
    sa2.start().unwrap(); // same loop: fine
    assert_eq!(sb.start().unwrap_err().kind(), ErrorKind::ResourceBusy);
    assert!(!sb.is_active());
    sa.stop();
    assert!(sb.start().is_err(), "still held by sa2");
    drop(sa2);
    sb.start().unwrap();
    assert!(sb.is_active());
}

#[test]
fn feed_signal_event_reaches_the_watcher() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let s = Signal::new(&lp, libc::SIGWINCH, move |s, _| {
        c.bump();
        s.stop();
    })
    .unwrap();
    s.start().unwrap();
    lp.feed_signal_event(libc::SIGWINCH).unwrap();
    lp.run();
    assert_eq!(n.get(), 1);
}

#[test]
fn many_deliveries_coalesce_into_callbacks() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let s = Signal::new(&lp, libc::SIGURG, move |_, _| c.bump()).unwrap();
    s.start().unwrap();
    for _ in 0..10 {
        kill_self(libc::SIGURG);
    }
    while n.get() == 0 {
        lp.run_once();
    }
    assert!(n.get() >= 1 && n.get() <= 10);
}

#[test]
fn sigchld_belongs_to_the_default_loop() {
    // Runs in its own thread so that owning the default loop does not
    // collide with other tests of this binary.
    let _g = SIGCHLD_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(|| {
        let def = Loop::default_loop().unwrap();
        let other = Loop::new().unwrap();
        let s = Signal::new(&other, libc::SIGCHLD, |_, _| {}).unwrap();
        assert_eq!(s.start().unwrap_err().kind(), ErrorKind::ResourceBusy);
        let d = Signal::new(&def, libc::SIGCHLD, |_, _| {}).unwrap();
        d.start().unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn default_loop_refuses_to_start_while_another_loop_holds_sigchld() {
    // Own thread: the default loop must not exist yet for this check, and
    // other tests of this binary create it on their own threads only after
    // this one gave it up (the owner is released when the thread's handles
    // drop). Serialised with the other SIGCHLD test by a lock.
    let _g = SIGCHLD_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(|| {
        let other = Loop::new().unwrap();
        let s = Signal::new(&other, libc::SIGCHLD, |_, _| {}).unwrap();
        s.start().unwrap();
        let err = Loop::default_loop().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy);
        drop(s);
        assert!(Loop::default_loop().unwrap().is_default());
    })
    .join()
    .unwrap();
}

static SIGCHLD_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
