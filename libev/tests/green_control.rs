//! Greenlet control beyond join and kill (issue 19), mirroring gevent's
//! `src/gevent/tests/test__greenlet.py`: `TestJoin` (join with a timeout
//! leaves the greenlet running), `TestKill` (`kill(block=False)`,
//! `kill(timeout=)`), `TestLink` (`link_value` / `link_exception` run on
//! success / failure only), `test__joinall.py` and `killall`, and
//! `getcurrent()`.

use libev::green::{self, Builder, GreenletError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[test]
fn wait_does_not_take_the_result_and_times_out() {
    let g = green::spawn(|| {
        green::sleep(Duration::from_millis(10));
        7
    });
    let start = Instant::now();
    assert!(!g.wait(Some(Duration::from_millis(1))), "not yet");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!g.is_finished());
    assert!(g.wait(None));
    assert!(g.wait(Some(Duration::ZERO)), "ended: at once");
    assert_eq!(g.join().unwrap(), 7, "the result is still there");
}

#[test]
fn join_timeout_gives_the_handle_back() {
    let g = green::spawn(|| {
        green::sleep(Duration::from_millis(20));
        "done"
    });
    let g = g.join_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(!g.is_finished(), "still running after the timeout (gevent: join(timeout) returns None)");
    assert_eq!(g.join_timeout(Duration::from_secs(10)).ok().unwrap().unwrap(), "done");
}

#[test]
fn kill_nowait_returns_before_the_greenlet_ends() {
    let unwound = Rc::new(Cell::new(false));
    struct Mark(Rc<Cell<bool>>);
    impl Drop for Mark {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let u = unwound.clone();
    let g = green::spawn(move || {
        let _m = Mark(u);
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    g.kill_nowait();
    assert!(!unwound.get(), "block=False: not waited for");
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
    assert!(unwound.get());
    // One that never started ends at once.
    let g = green::spawn(|| ());
    g.kill_nowait();
    assert!(g.is_finished());
}

/// gevent's kill(timeout=) bounds the wait for a greenlet that outlives
/// the kill. Here a caught kill stays pending and ends the greenlet at its
/// next switch, so it ends as soon as it runs: within the timeout.
#[test]
fn kill_timeout_waits_for_the_end_within_the_timeout() {
    let g = green::spawn(|| {
        let _ = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(60)));
        // Caught: the next blocking call ends it anyway.
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    let start = Instant::now();
    assert!(g.kill_timeout(Duration::from_secs(10)));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
    let unstarted = green::spawn(|| ());
    assert!(unstarted.kill_timeout(Duration::ZERO), "never started: ends at once");
}

#[test]
fn killall_kills_every_greenlet_and_waits() {
    let gs: Vec<_> = (0..5).map(|_| green::spawn(|| green::sleep(Duration::from_secs(60)))).collect();
    green::yield_now();
    assert!(green::killall(&gs, Some(Duration::from_secs(10))));
    assert!(gs.iter().all(|g| g.is_finished()));
    for g in gs {
        assert!(matches!(g.join(), Err(GreenletError::Killed)));
    }
    // Without a timeout, and with finished greenlets among them.
    let gs = vec![green::spawn(|| green::sleep(Duration::from_secs(60))), green::spawn(|| ())];
    green::sleep(Duration::from_millis(1));
    assert!(green::killall(&gs, None));
}

#[test]
fn wait_greenlets_with_count_and_timeout() {
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = [30u64, 1, 60_000, 5]
        .into_iter()
        .enumerate()
        .map(|(i, ms)| {
            let order = order.clone();
            green::spawn(move || {
                green::sleep(Duration::from_millis(ms));
                order.borrow_mut().push(i);
            })
        })
        .collect();
    assert_eq!(green::wait_greenlets(&gs, None, Some(2)), [1, 3], "the first two to end");
    assert_eq!(green::wait_greenlets(&gs, Some(Duration::from_secs(10)), Some(3)), [0, 1, 3]);
    let start = Instant::now();
    assert_eq!(green::wait_greenlets(&gs, Some(Duration::from_millis(5)), None), [0, 1, 3], "timed out");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(*order.borrow(), [1, 3, 0]);
    // A count above the number of greenlets means all of them.
    gs[2].kill();
    assert_eq!(green::wait_greenlets(&gs, None, Some(99)), [0, 1, 2, 3]);
    assert!(green::wait_greenlets::<()>(&[], None, None).is_empty());
}

#[test]
fn link_value_and_link_exception_run_on_success_and_failure_only() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let link = |g: &green::Greenlet<u8>, name: &'static str| {
        let (l1, l2) = (log.clone(), log.clone());
        g.link_value(move || l1.borrow_mut().push(format!("{name}: value")));
        g.link_exception(move || l2.borrow_mut().push(format!("{name}: exception")));
    };
    let ok = green::spawn(|| 1u8);
    link(&ok, "ok");
    let failed = green::spawn(|| -> u8 { panic!("boom") });
    link(&failed, "failed");
    let killed = green::spawn(|| {
        green::sleep(Duration::from_secs(60));
        0u8
    });
    link(&killed, "killed");
    let unstarted = green::spawn(|| 0u8);
    link(&unstarted, "unstarted");
    unstarted.kill();
    green::yield_now();
    killed.kill();
    assert_eq!(ok.join().unwrap(), 1);
    assert!(failed.join().is_err());
    let mut log = log.borrow().clone();
    log.sort();
    assert_eq!(log, ["failed: exception", "killed: exception", "ok: value", "unstarted: exception"]);
    // Linked after the end: runs at once, by the outcome.
    let done = green::spawn(|| 2u8);
    assert!(done.wait(None));
    let ran = Rc::new(Cell::new(0));
    let (r1, r2) = (ran.clone(), ran.clone());
    done.link_value(move || r1.set(r1.get() + 1));
    done.link_exception(move || r2.set(r2.get() + 10));
    assert_eq!(ran.get(), 1);
}

#[test]
fn current_names_the_running_greenlet() {
    let main = green::current();
    assert!(main.is_main);
    assert_eq!(main.id, 0);
    let g = Builder::new().name("worker").spawn(green::current).unwrap();
    let id = g.id();
    let inside = g.join().unwrap();
    assert_eq!(inside.id, id);
    assert_eq!(inside.name.as_deref(), Some("worker"));
    assert!(!inside.is_main);
    assert_eq!(green::spawn(green::current).join().unwrap().name, None);
}

/// gevent's `sleep(0)` queues the caller behind the loop's callbacks:
/// `test__queue.py`'s `TestNoWait.test_put_nowait_unlock` queues
/// `put_nowait` with `loop.run_callback`, calls `sleep(0)` and expects
/// both the callback and the getter it woke to have run.
#[test]
fn yield_now_runs_the_callbacks_queued_before_it_and_what_they_wake() {
    let lp = green::hub_loop();
    let event = Rc::new(libev::green::sync::Event::new());
    let e = event.clone();
    let getter = green::spawn(move || e.wait());
    green::yield_now(); // the getter parks
    assert!(!getter.is_finished());
    let e = event.clone();
    lp.run_callback(move || e.set());
    green::yield_now(); // from the root
    assert!(getter.is_finished(), "the callback ran, and the greenlet it woke before the root resumed");

    // The same from a greenlet.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let lp2 = lp.clone();
    let g = green::spawn(move || {
        let r2 = r.clone();
        lp2.run_callback(move || r2.set(true));
        green::yield_now();
        r.get()
    });
    assert!(g.join().unwrap(), "a greenlet's yield_now ran the callback first");
}

/// A kill that reaches a greenlet parked behind the callbacks (here sent by
/// one of those callbacks) unwinds it, and the wake-up it had queued does
/// not wake it later in another wait.
#[test]
fn a_kill_while_yielding_behind_callbacks_unwinds() {
    let lp = green::hub_loop();
    let slot: Rc<RefCell<Option<green::Greenlet<()>>>> = Rc::default();
    let s = slot.clone();
    let lp2 = lp.clone();
    let reached = Rc::new(Cell::new(false));
    let r = reached.clone();
    let g = green::spawn(move || {
        let s = s.clone();
        lp2.run_callback(move || s.borrow().as_ref().unwrap().kill_nowait());
        green::yield_now();
        r.set(true);
    });
    *slot.borrow_mut() = Some(g);
    green::sleep(Duration::from_millis(2));
    let g = slot.borrow_mut().take().unwrap();
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
    assert!(!reached.get());
    assert_eq!(lp.queued_callbacks(), 0);
}
