//! Hooks into `ev_run`: `invoke_pending`, the invoke-pending hook and the
//! release/acquire hooks.

mod util;

use libev::{Idle, Loop, Periodic, Timer, sys};
use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use util::Counter;

#[test]
fn invoke_pending_runs_pending_callbacks_now() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let idle = Idle::new(&lp, move |_, _| c.bump());
    idle.feed_event(libev::Events::CUSTOM);
    assert_eq!(lp.pending_count(), 1);
    lp.invoke_pending();
    assert_eq!(n.get(), 1);
    assert_eq!(lp.pending_count(), 0);
}

#[test]
fn the_invoke_hook_brackets_every_batch_of_callbacks() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    lp.set_invoke_pending_hook(move |lp| {
        let n = lp.pending_count();
        l.borrow_mut().push(format!("before {n}"));
        lp.invoke_pending();
        l.borrow_mut().push("after".to_owned());
    })
    .unwrap();
    let l = log.clone();
    let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, move |_, _| {
        l.borrow_mut().push("timer".to_owned())
    });
    t.start();
    lp.run();
    let log = log.borrow();
    let i = log.iter().position(|s| s == "timer").expect("the timer ran");
    // (Some backends have a watcher of their own pending in that batch.)
    assert!(log[i - 1].starts_with("before ") && log[i - 1] != "before 0", "{log:?}");
    assert_eq!(log[i + 1], "after");
}

#[test]
fn a_hook_that_defers_invocation_still_runs_callbacks_later() {
    let lp = Loop::new().unwrap();
    let deferred = Rc::new(Cell::new(0));
    let d = deferred.clone();
    lp.set_invoke_pending_hook(move |lp| {
        // Skip every other call: pending watchers wait until the next.
        d.set(d.get() + 1);
        if d.get() % 2 == 0 {
            lp.invoke_pending();
        }
    })
    .unwrap();
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::from_millis(1), move |t, _| {
        c.bump();
        if c.get() == 3 {
            t.stop();
        }
    });
    t.start();
    util::run_until(&lp, "three ticks", || n.get() == 3);
    lp.clear_invoke_pending_hook();
    let c = n.clone();
    let t2 = Timer::new(&lp, Duration::ZERO, Duration::ZERO, move |_, _| c.bump());
    t2.start();
    let calls = deferred.get();
    lp.run();
    assert_eq!(n.get(), 4);
    assert_eq!(deferred.get(), calls, "cleared: libev invokes by itself again");
}

#[test]
fn a_panicking_invoke_hook_is_handled_like_a_callback() {
    let lp = Loop::new().unwrap();
    lp.set_invoke_pending_hook(|_| panic!("hook")).unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
    t.start();
    let p = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"hook"));
    // With an error handler, the loop carries on.
    let seen = Counter::new();
    let s = seen.clone();
    lp.set_error_handler(move |_| s.bump());
    lp.run_nowait();
    assert!(seen.get() >= 1);
    lp.clear_invoke_pending_hook();
    lp.run();
    assert!(!t.is_active(), "invoked once the hook is gone");
}

#[test]
fn replacing_the_hook_from_inside_it_keeps_the_new_one() {
    let lp = Loop::new().unwrap();
    let second = Counter::new();
    let s = second.clone();
    lp.set_invoke_pending_hook(move |lp| {
        let s = s.clone();
        lp.set_invoke_pending_hook(move |lp| {
            s.bump();
            lp.invoke_pending();
        })
        .unwrap();
        lp.invoke_pending();
    })
    .unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::from_millis(1), |t, _| t.stop());
    t.start();
    lp.run_nowait();
    lp.run_nowait();
    assert!(second.get() >= 1);
}

#[test]
fn release_and_acquire_bracket_the_blocking_poll() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(String::new()));
    let (r, a) = (log.clone(), log.clone());
    lp.set_release_hooks(move || r.borrow_mut().push('r'), move || a.borrow_mut().push('a')).unwrap();
    let l = log.clone();
    let t = Timer::new(&lp, Duration::from_millis(5), Duration::ZERO, move |_, _| l.borrow_mut().push('T'));
    t.start();
    lp.run();
    let log = log.borrow().clone();
    assert!(log.contains("ra"), "{log}");
    assert!(!log.contains("rr") && !log.contains("aa"), "{log}");
    assert!(log.find('T') > log.find("ra"), "{log}");
    lp.clear_release_hooks();
}

#[test]
fn libev_cannot_be_reentered_from_a_release_hook() {
    let lp = Loop::new().unwrap();
    let l = lp.clone();
    // Starting a watcher is allowed there; running the loop is not.
    let started: Rc<RefCell<Vec<Timer>>> = Rc::new(RefCell::new(Vec::new()));
    let st = started.clone();
    let l2 = lp.clone();
    lp.set_release_hooks(
        move || {
            let t = Timer::new(&l2, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
            t.start();
            st.borrow_mut().push(t);
        },
        move || {
            l.run_nowait();
        },
    )
    .unwrap();
    let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    t.start();
    let p = catch_unwind(AssertUnwindSafe(|| lp.run_once())).unwrap_err();
    let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("release hook"), "{msg}");
    assert!(started.borrow().iter().all(Timer::is_active));
    // A periodic is refused there too (libev may be inside its heap update).
    let tick = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    tick.start();
    let l3 = lp.clone();
    lp.set_release_hooks(move || Periodic::at(&l3, 1e12, |_, _| {}).unwrap().start(), || {}).unwrap();
    let p = catch_unwind(AssertUnwindSafe(|| lp.run_once())).unwrap_err();
    assert!(p.downcast_ref::<&str>().copied().unwrap_or_default().contains("release hook"));
    lp.clear_release_hooks();
    started.borrow_mut().clear();
}

#[test]
fn hooks_are_refused_on_a_loop_borrowed_from_c() {
    // SAFETY: no preconditions.
    let raw = unsafe { sys::ev_loop_new(0) };
    {
        // SAFETY: live until ev_loop_destroy below, after the Rust side.
        let lp = unsafe { Loop::from_raw(raw) }.unwrap();
        assert_eq!(lp.set_invoke_pending_hook(|_| {}).unwrap_err().kind(), ErrorKind::Unsupported);
        assert_eq!(lp.set_release_hooks(|| {}, || {}).unwrap_err().kind(), ErrorKind::Unsupported);
        util::assert_loop_usable(&lp);
    }
    // SAFETY: C's loop, no Rust side left.
    unsafe { sys::ev_loop_destroy(raw) };
}

#[test]
fn a_loop_with_hooks_is_destroyed_cleanly_with_cleanup_watchers() {
    let ran = Counter::new();
    let lp = Loop::new().unwrap();
    let r = ran.clone();
    let c = libev::Cleanup::new(&lp, move |_, _| r.bump());
    c.start();
    let hook_calls = Counter::new();
    let h = hook_calls.clone();
    lp.set_invoke_pending_hook(move |lp| {
        h.bump();
        lp.invoke_pending();
    })
    .unwrap();
    lp.set_release_hooks(|| {}, || {}).unwrap();
    drop(lp);
    assert_eq!(ran.get(), 1, "libev's own invocation ran the cleanup watcher");
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
