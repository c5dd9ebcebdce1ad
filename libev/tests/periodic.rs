//! `Periodic`: absolute, interval and reschedule modes.

mod util;

use libev::{Loop, Periodic};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use util::Counter;

#[test]
fn absolute_fires_once_at_its_time() {
    let lp = Loop::new().unwrap();
    let at = libev::time() + 0.02;
    let seen: Rc<RefCell<Vec<f64>>> = Rc::default();
    let (s, lp2) = (seen.clone(), lp.clone());
    let p = Periodic::at(&lp, at, move |_, _| s.borrow_mut().push(lp2.now())).unwrap();
    p.start();
    assert_eq!(p.offset(), at);
    lp.run();
    assert_eq!(seen.borrow().len(), 1);
    assert!(seen.borrow()[0] >= at - 1e-6);
}

#[test]
fn interval_fires_on_its_grid() {
    let lp = Loop::new().unwrap();
    let fired: Rc<RefCell<Vec<f64>>> = Rc::default();
    let f = fired.clone();
    let p = Periodic::interval(&lp, 0.0, Duration::from_millis(10), move |p, _| {
        f.borrow_mut().push(p.next_time());
        if f.borrow().len() == 3 {
            p.stop();
        }
    })
    .unwrap();
    p.start();
    // The first expiry is the next multiple of 10 ms.
    let first = p.next_time();
    assert!(((first * 100.0).round() - first * 100.0).abs() < 1e-6, "{first}");
    lp.run();
    let fired = fired.borrow();
    assert_eq!(fired.len(), 3);
    for w in fired.windows(2) {
        assert!(((w[1] - w[0]) - 0.01).abs() < 1e-6 || w[1] - w[0] > 0.01, "{w:?}");
    }
    assert_eq!(p.interval_duration(), Duration::from_millis(10));
}

#[test]
fn reschedule_closure_decides_and_past_results_are_clamped() {
    let lp = Loop::new().unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    let n = Counter::new();
    let nn = n.clone();
    let p = Periodic::reschedule(
        &lp,
        move |now| {
            let k = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match k {
                0 => now + 0.005,
                1 => now - 100.0, // in the past: treated as now
                2 => f64::NAN,    // also treated as now
                _ => now + 3600.0,
            }
        },
        move |p, _| {
            nn.bump();
            if nn.get() == 3 {
                p.stop();
            }
        },
    );
    p.start();
    lp.run();
    assert_eq!(n.get(), 3);
    assert!(calls.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

thread_local! {
    static SMUGGLED: RefCell<Option<Loop>> = const { RefCell::new(None) };
}

#[test]
fn calling_libev_from_a_reschedule_closure_panics_cleanly() {
    // A Send closure cannot capture a Loop, but it can reach one through a
    // thread-local; libev forbids any call from there, so it must panic,
    // and the panic must come out of `run`, not abort in C.
    let lp = Loop::new().unwrap();
    SMUGGLED.with(|s| *s.borrow_mut() = Some(lp.clone()));
    let p = Periodic::reschedule(
        &lp,
        |now| {
            SMUGGLED.with(|s| s.borrow().as_ref().unwrap().update_now());
            now + 1.0
        },
        |_, _| {},
    );
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        p.start();
        lp.run();
    }))
    .unwrap_err();
    let msg =
        err.downcast_ref::<&str>().copied().or(err.downcast_ref::<String>().map(|s| s.as_str())).unwrap();
    assert!(msg.contains("reschedule"), "{msg}");
    drop(p);
    SMUGGLED.with(|s| s.borrow_mut().take());
}

#[test]
fn bad_input_is_rejected() {
    let lp = Loop::new().unwrap();
    assert!(Periodic::at(&lp, f64::NAN, |_, _| {}).is_err());
    assert!(Periodic::at(&lp, f64::INFINITY, |_, _| {}).is_err());
    assert!(Periodic::interval(&lp, 0.0, Duration::ZERO, |_, _| {}).is_err());
    assert!(Periodic::interval(&lp, f64::NAN, Duration::from_secs(1), |_, _| {}).is_err());
}

#[test]
fn again_recomputes_after_changes() {
    let lp = Loop::new().unwrap();
    let p = Periodic::interval(&lp, 0.0, Duration::from_secs(3600), |_, _| {}).unwrap();
    p.again();
    assert!(p.is_active());
    assert!(p.next_time() > lp.now());
}

// A periodic dropped from a reschedule closure (the closure is `Send`, so
// it reaches the watcher through a thread-local): libev must not be called
// there, so the drop is deferred until libev returns, the callback is not
// called again, and nothing panics on the way (issue 17.4: this used to
// panic twice and abort).

thread_local! {
    static HELD: RefCell<Option<Periodic>> = const { RefCell::new(None) };
}

#[test]
fn a_periodic_dropped_from_its_own_reschedule_closure_inside_run() {
    let lp = Loop::new().unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c = calls.clone();
    let fired = Counter::new();
    let f = fired.clone();
    let p = Periodic::reschedule(
        &lp,
        move |now| {
            // 1st call: from `start`; 2nd: when it fires inside `run`.
            if c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                HELD.with(|h| drop(h.borrow_mut().take()));
            }
            now + 0.005
        },
        move |_, _| f.bump(),
    );
    p.start();
    HELD.with(|h| *h.borrow_mut() = Some(p));
    // Returns: the dropped watcher is stopped and keeps nothing alive.
    lp.run();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(fired.get(), 0, "the callback of a dropped periodic ran");
    assert!(HELD.with(|h| h.borrow().is_none()));
    util::assert_loop_usable(&lp);
}

#[test]
fn a_periodic_dropped_from_another_ones_reschedule_closure_during_start() {
    let lp = Loop::new().unwrap();
    let fired = Counter::new();
    let f = fired.clone();
    let victim = Periodic::at(&lp, libev::time() + 0.01, move |_, _| f.bump()).unwrap();
    victim.start();
    HELD.with(|h| *h.borrow_mut() = Some(victim));
    let dropper = Periodic::reschedule(
        &lp,
        |now| {
            HELD.with(|h| drop(h.borrow_mut().take()));
            now + 3600.0
        },
        |_, _| {},
    );
    dropper.set_keeps_loop_alive(false);
    // libev calls the closure from here; the victim goes before it returns.
    dropper.start();
    assert!(HELD.with(|h| h.borrow().is_none()));
    // Nothing but the unreferenced dropper is left: run returns at once.
    lp.run();
    assert_eq!(fired.get(), 0);
    drop(dropper);
    util::assert_run_waits_for_a_referenced_timer(&lp);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}

thread_local! {
    static SELF_RESET: std::cell::RefCell<Option<Periodic>> = const { std::cell::RefCell::new(None) };
}

/// Re-setting a periodic from inside its own reschedule closure (reached
/// through a thread-local) would free the running closure: it panics, as
/// every libev call from there does, and the panic comes out of `start`.
#[test]
fn resetting_a_periodic_from_its_own_reschedule_closure_panics() {
    let lp = Loop::new().unwrap();
    let p = Periodic::reschedule(
        &lp,
        |now| {
            SELF_RESET.with(|s| {
                if let Some(p) = s.borrow().as_ref() {
                    p.set_reschedule(|n| n + 1.0);
                }
            });
            now + 60.0
        },
        |_, _| {},
    );
    SELF_RESET.with(|s| *s.borrow_mut() = Some(p));
    let err =
        std::panic::catch_unwind(|| SELF_RESET.with(|s| s.borrow().as_ref().unwrap().start())).unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("reschedule callback"), "{msg}");
    SELF_RESET.with(|s| s.borrow_mut().take());
}
