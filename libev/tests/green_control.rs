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

/// gevent's `test__greenlet.py` `TestStart.test_start`: a greenlet made
/// unstarted runs only once started, and starting it again after it ended
/// does nothing.
#[test]
fn a_built_greenlet_runs_only_once_started() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let g = Builder::new().name("built").build(move || r.set(r.get() + 1)).unwrap();
    assert!(!g.is_started());
    assert_eq!(g.name(), Some("built"));
    green::sleep(Duration::from_millis(2));
    assert_eq!(ran.get(), 0, "not queued before start");
    g.start();
    assert!(g.is_started());
    g.start(); // queued once only
    assert!(g.wait(None));
    assert_eq!(ran.get(), 1);
    g.start();
    green::sleep(Duration::from_millis(1));
    assert_eq!(ran.get(), 1, "cannot start again");
    g.join().unwrap();
}

/// gevent's `TestKill._do_test` on a greenlet never started (block and
/// non-block, and a second kill that must not hurt): its function never
/// runs, its links do, and `join` says killed. `TestKillAfterStart`: the
/// same once started but before it ran.
#[test]
fn killing_a_built_greenlet_runs_its_links_and_never_its_function() {
    for (start, block) in [(false, true), (false, false), (true, true), (true, false)] {
        let ran = Rc::new(Cell::new(false));
        let linked = Rc::new(Cell::new(0));
        let r = ran.clone();
        let g = Builder::new().build(move || r.set(true)).unwrap();
        let l = linked.clone();
        g.link(move || l.set(l.get() + 1));
        if start {
            g.start();
        }
        if block {
            g.kill();
        } else {
            g.kill_nowait();
            green::sleep(Duration::from_millis(1));
        }
        assert!(g.is_finished());
        g.kill(); // a second kill must not hurt
        green::sleep(Duration::from_millis(2));
        assert!(!ran.get(), "start {start} block {block}");
        assert_eq!(linked.get(), 1, "start {start} block {block}");
        g.start(); // ended: does nothing
        assert!(matches!(g.join(), Err(GreenletError::Killed)));
    }
}

/// A never-started greenlet whose handle is dropped is dropped unrun: its
/// closure's destructor runs at once, and its links run.
#[test]
fn dropping_a_built_greenlet_drops_its_closure_unrun() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let linked = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let g = Builder::new()
        .build(move || {
            let _keep = &flag;
            unreachable!("never started")
        })
        .unwrap();
    let l = linked.clone();
    g.link(move || l.set(true));
    drop(g);
    assert!(dropped.get() && linked.get());
    green::sleep(Duration::from_millis(1));
}

/// A built greenlet can join a group before it runs; the group waits for
/// it once started.
#[test]
fn a_built_greenlet_can_be_registered_before_it_runs() {
    let group = green::pool::Group::new();
    let g = Builder::new().build(|| green::sleep(Duration::from_millis(2))).unwrap();
    group.add(&g);
    assert_eq!(group.len(), 1);
    g.start();
    group.join();
    assert!(g.is_finished());
}

/// gevent's `test__greenlet.py` `TestUnlink` (`link`, `link_value`,
/// `link_exception`): an unlinked callback never runs; unlinking twice, or
/// after the link ran, reports false.
#[test]
fn unlink_removes_a_link_before_it_runs() {
    let hits = Rc::new(Cell::new(0));
    let g = green::spawn(|| ());
    let h = hits.clone();
    let a = g.link(move || h.set(h.get() + 1));
    let h = hits.clone();
    let b = g.link_value(move || h.set(h.get() + 10));
    let h = hits.clone();
    let c = g.link_exception(move || h.set(h.get() + 100));
    let h = hits.clone();
    let kept = g.link(move || h.set(h.get() + 1000));
    assert!(g.unlink(a) && g.unlink(b) && g.unlink(c));
    assert!(!g.unlink(a), "already removed");
    assert!(g.wait(None));
    assert_eq!(hits.get(), 1000, "only the kept link ran");
    assert!(!g.unlink(kept), "it ran");
    g.join().unwrap();
}

/// gevent's `Group.kill(timeout=)`: members end within the timeout and
/// leave the group. A member that catches its kill and carries on is
/// killed again at its next blocking call (the kill sticks, see
/// `Greenlet::kill`), so it cannot park past the timeout.
#[test]
fn group_kill_timeout_kills_and_the_kill_sticks() {
    let group = green::pool::Group::new();
    let quick = group.spawn(|| green::sleep(Duration::from_secs(60)));
    let caught = Rc::new(Cell::new(0));
    let c = caught.clone();
    let stubborn = group.spawn(move || {
        for _ in 0..3 {
            let r = std::panic::catch_unwind(|| green::sleep(Duration::from_secs(60)));
            assert!(r.is_err(), "the sleep was cut short by the kill");
            c.set(c.get() + 1);
        }
        "carried on"
    });
    green::yield_now();
    let start = Instant::now();
    assert!(group.kill_timeout(Duration::from_secs(30)));
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(group.is_empty() && quick.is_finished());
    assert_eq!(caught.get(), 3, "killed again at each blocking call");
    assert_eq!(stubborn.join().unwrap(), "carried on");
    // Nothing to kill: at once.
    assert!(green::pool::Pool::new(2).kill_timeout(Duration::ZERO));
}

/// gevent's `test__greenlet.py` `TestStuff`: `test_wait_noerrors` (all
/// succeed: their values in order), `test_wait_error` and
/// `test_joinall_exception_order` (the failure that happens first is the
/// one reported, and the others go on).
#[test]
fn try_joinall_stops_at_the_first_failure() {
    let gs = vec![green::spawn(|| 1), green::spawn(|| 2), green::spawn(|| 3)];
    assert_eq!(green::try_joinall(gs).unwrap(), [1, 2, 3]);

    let finished = Rc::new(Cell::new(false));
    let f = finished.clone();
    let first = green::spawn(move || -> u32 {
        green::sleep(Duration::from_millis(20));
        f.set(true);
        panic!("first")
    });
    let second = green::spawn(|| -> u32 { panic!("second") });
    let (i, err) = green::try_joinall(vec![first, second]).unwrap_err();
    assert_eq!(i, 1, "the one that failed first");
    match err {
        GreenletError::Panicked(p) => assert_eq!(p.downcast_ref::<&str>(), Some(&"second")),
        e => panic!("{e:?}"),
    }
    assert!(!finished.get(), "returned at the first failure");
    green::sleep(Duration::from_millis(40));
    assert!(finished.get(), "the other went on");

    let killed = green::spawn(|| green::sleep(Duration::from_secs(60)));
    killed.kill_nowait();
    let (i, err) = green::try_joinall(vec![green::spawn(|| ()), killed]).unwrap_err();
    assert!(i == 1 && matches!(err, GreenletError::Killed));
}
