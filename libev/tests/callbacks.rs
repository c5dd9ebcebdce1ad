//! `Loop::run_callback`: gevent's callback queue.

mod util;

use libev::{Break, Loop, Timer};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::Counter;

#[test]
fn callbacks_run_in_order() {
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    for i in 0..100 {
        let l = log.clone();
        lp.run_callback(move || l.borrow_mut().push(i));
    }
    assert_eq!(lp.queued_callbacks(), 100);
    lp.run();
    assert_eq!(*log.borrow(), (0..100).collect::<Vec<_>>());
    assert_eq!(lp.queued_callbacks(), 0);
}

#[test]
fn callbacks_queued_by_callbacks_run_in_the_same_run() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    fn chain(lp: &Loop, n: Counter, left: u32) {
        if left == 0 {
            return;
        }
        let lp2 = lp.clone();
        lp.run_callback(move || {
            n.bump();
            chain(&lp2, n, left - 1);
        });
    }
    chain(&lp, n.clone(), 50);
    lp.run();
    assert_eq!(n.get(), 50);
}

#[test]
fn queued_callbacks_keep_the_loop_from_blocking() {
    // A callback queued from a timer while a 30 s timer is the next
    // deadline must run without waiting for it (a regression fails after
    // 30 s instead of hanging).
    let lp = Loop::new().unwrap();
    let long = Timer::new(&lp, Duration::from_secs(30), Duration::ZERO, |_, _| {});
    long.start();
    let lp2 = lp.clone();
    let ran = Counter::new();
    let r = ran.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, move |_, _| {
        let (lp3, r) = (lp2.clone(), r.clone());
        lp2.run_callback(move || {
            r.bump();
            lp3.break_loop(Break::All);
        });
    });
    t.start();
    let t0 = Instant::now();
    lp.run();
    assert_eq!(ran.get(), 1);
    assert!(t0.elapsed() < Duration::from_secs(10), "blocked on the long timer");
}

#[test]
fn a_callback_that_requeues_itself_does_not_starve_timers() {
    let lp = Loop::new().unwrap();
    let spins = Counter::new();
    let stop = Rc::new(std::cell::Cell::new(false));
    fn spin(lp: &Loop, n: Counter, stop: Rc<std::cell::Cell<bool>>) {
        let lp2 = lp.clone();
        lp.run_callback(move || {
            n.bump();
            if !stop.get() {
                spin(&lp2, n, stop);
            }
        });
    }
    spin(&lp, spins.clone(), stop.clone());
    let lp2 = lp.clone();
    let t = Timer::new(&lp, Duration::from_millis(5), Duration::ZERO, move |_, _| lp2.break_loop(Break::All));
    t.start();
    lp.run(); // returns only if the timer got its turn
    assert!(spins.get() > 0);
    // Drain the queue: a queued callback holding a Loop keeps it alive.
    stop.set(true);
    lp.run();
    assert_eq!(lp.queued_callbacks(), 0);
}

#[test]
fn budget_limits_a_batch() {
    let lp = Loop::new().unwrap();
    lp.set_callback_budget(10);
    let lp2 = lp.clone();
    let iterations: Rc<RefCell<Vec<u32>>> = Rc::default();
    for _ in 0..35 {
        let (lp3, it) = (lp2.clone(), iterations.clone());
        lp.run_callback(move || it.borrow_mut().push(lp3.iteration()));
    }
    lp.run();
    let it = iterations.borrow();
    assert_eq!(it.len(), 35);
    let distinct: std::collections::BTreeSet<_> = it.iter().collect();
    assert_eq!(distinct.len(), 4, "35 callbacks, 10 per batch: {it:?}");
}

#[test]
fn cancel_prevents_the_run_and_drops_the_closure() {
    let lp = Loop::new().unwrap();
    let token = Rc::new(());
    let t = token.clone();
    let h = lp.run_callback(move || {
        let _ = &t;
        unreachable!()
    });
    assert!(h.is_pending());
    assert_eq!(Rc::strong_count(&token), 2);
    assert!(h.cancel());
    assert!(!h.cancel());
    assert_eq!(Rc::strong_count(&token), 1, "the closure is dropped at once");
    lp.run();
    let ran = Counter::new();
    let r = ran.clone();
    let h2 = lp.run_callback(move || r.bump());
    lp.run();
    assert!(!h2.is_pending());
    assert!(!h2.cancel(), "too late once it ran");
    assert_eq!(ran.get(), 1);
}

#[test]
fn a_panicking_callback_is_reraised_and_the_rest_stay_queued() {
    let lp = Loop::new().unwrap();
    let ran = Counter::new();
    lp.run_callback(|| panic!("cb"));
    let r = ran.clone();
    lp.run_callback(move || r.bump());
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"cb"));
    assert_eq!(ran.get(), 0);
    lp.run();
    assert_eq!(ran.get(), 1);
}

#[test]
fn dropping_the_loop_drops_queued_callbacks_unrun() {
    let token = Rc::new(());
    {
        let lp = Loop::new().unwrap();
        let t = token.clone();
        lp.run_callback(move || {
            let _ = &t;
            unreachable!()
        });
    }
    assert_eq!(Rc::strong_count(&token), 1);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
