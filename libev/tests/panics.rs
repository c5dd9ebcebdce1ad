//! Panics in callbacks never cross into C: `run` re-raises them, or the
//! loop's error handler receives them and the loop goes on.

mod util;

use libev::{Events, Idle, Loop, PanicPayload, Timer, TimerArray};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use util::{Counter, assert_loop_usable};

fn message(p: &PanicPayload) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[test]
fn run_reraises_the_original_payload() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| std::panic::panic_any(42u64));
    t.start();
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<u64>(), Some(&42));
    // The loop is usable afterwards.
    assert_loop_usable(&lp);
}

#[test]
fn a_panic_breaks_the_loop_promptly() {
    let lp = Loop::new().unwrap();
    let ran = Counter::new();
    let r = ran.clone();
    let boom = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| panic!("boom"));
    boom.start();
    // A repeating timer would keep the loop alive forever if the panic did
    // not break it.
    let forever = Timer::new(&lp, Duration::from_millis(1), Duration::from_millis(1), move |_, _| r.bump());
    forever.start();
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(message(&err), "boom");
    assert!(forever.is_active());
}

#[test]
fn error_handler_receives_panics_and_the_loop_goes_on() {
    let lp = Loop::new().unwrap();
    let caught: Rc<RefCell<Vec<String>>> = Rc::default();
    let c = caught.clone();
    lp.set_error_handler(move |p| c.borrow_mut().push(message(&p)));
    let n = Counter::new();
    let nn = n.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::from_millis(1), move |t, _| {
        nn.bump();
        if nn.get() == 3 {
            t.stop();
        }
        panic!("tick {}", nn.get());
    });
    t.start();
    lp.run();
    assert_eq!(n.get(), 3);
    assert_eq!(*caught.borrow(), ["tick 1", "tick 2", "tick 3"]);

    // Removing the handler restores re-raising.
    lp.clear_error_handler();
    let t2 = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| panic!("again"));
    t2.start();
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(message(&err), "again");
}

#[test]
fn a_panicking_error_handler_is_reraised_by_run() {
    let lp = Loop::new().unwrap();
    lp.set_error_handler(|p| panic!("handler saw {}", message(&p)));
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| panic!("first"));
    t.start();
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(message(&err), "handler saw first");
}

#[test]
fn a_panic_in_a_nested_run_reaches_the_outer_run() {
    let lp = Loop::new().unwrap();
    let lp2 = lp.clone();
    let after_nested = Counter::new();
    let a = after_nested.clone();
    let outer = Idle::new(&lp, move |i, _| {
        i.stop();
        let inner = Timer::new(&lp2, Duration::ZERO, Duration::ZERO, |_, _| panic!("inner"));
        inner.start();
        lp2.run(); // re-raises here, unwinding through this callback
        a.bump();
    });
    outer.start();
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(message(&err), "inner");
    assert_eq!(after_nested.get(), 0);
}

#[test]
fn invoke_reraises() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp, |_, _| panic!("invoked"));
    let err = catch_unwind(AssertUnwindSafe(|| idle.invoke(libev::Events::CUSTOM))).unwrap_err();
    assert_eq!(message(&err), "invoked");
}

#[test]
fn a_callback_that_defers_its_own_event_and_panics_is_not_called_again() {
    // The deferred event is discarded with the panic; fed back, it would
    // run the callback again within the same iteration, forever.
    let lp = Loop::new().unwrap();
    let calls = Counter::new();
    let c = calls.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::from_secs(3600), move |t, _| {
        c.bump();
        t.invoke(Events::CUSTOM);
        panic!("after deferring");
    });
    t.start();
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
    assert_eq!(calls.get(), 1);
    assert!(!t.is_pending());

    let c = calls.clone();
    let timers = TimerArray::new(&lp, 2, move |t, _, _| {
        c.bump();
        t.feed_event(1, Events::CUSTOM);
        t.loop_handle().run_nowait(); // defers 1's event
        panic!("after deferring");
    });
    timers.start(0);
    assert!(catch_unwind(AssertUnwindSafe(|| lp.run())).is_err());
    assert_eq!(calls.get(), 2);
    assert!(!timers.is_pending(1));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
