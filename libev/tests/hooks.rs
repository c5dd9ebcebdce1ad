//! The loop-phase watchers: `Idle`, `Prepare`, `Check`, `Fork` (without a
//! real fork, see `fork.rs` for that) and `Cleanup`.

mod util;

use libev::{Check, Cleanup, Events, Fork, Idle, Io, Loop, Prepare, Timer};
use std::cell::{Cell, RefCell};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;
use util::{Counter, LIMIT, assert_loop_usable, pipe, read_byte, run_until, write_byte};

type Log = Rc<RefCell<Vec<&'static str>>>;

// ---------------------------------------------------------------- Idle

/// An io watcher at `io_priority` with three bytes to read (one per
/// callback, so it stays pending for three iterations) and an idle watcher
/// at priority 0 that stops after its first call: returns the order.
fn idle_against_io(io_priority: i32) -> Vec<&'static str> {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    for b in 0..3 {
        write_byte(&w, b);
    }
    let log: Log = Rc::default();
    let l = log.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
        assert!(ev.contains(Events::READ));
        read_byte(io.fd()).unwrap();
        l.borrow_mut().push("io");
        if l.borrow().iter().filter(|&&s| s == "io").count() == 3 {
            io.stop();
        }
    })
    .unwrap();
    io.set_priority(io_priority).unwrap();
    io.start();
    let l = log.clone();
    let idle = Idle::new(&lp, move |i, ev| {
        assert_eq!(ev, Events::IDLE);
        l.borrow_mut().push("idle");
        i.stop();
    });
    idle.start();
    // The pipe is readable from the first poll on, before libev first
    // considers the idle watcher.
    run_until(&lp, "both watchers", || !io.is_active() && !idle.is_active());
    log.take()
}

#[test]
fn idle_waits_while_watchers_of_the_same_priority_are_pending() {
    assert_eq!(idle_against_io(0), ["io", "io", "io", "idle"]);
}

#[test]
fn idle_waits_while_higher_priority_watchers_are_pending() {
    assert_eq!(idle_against_io(1), ["io", "io", "io", "idle"]);
    assert_eq!(idle_against_io(2), ["io", "io", "io", "idle"]);
}

#[test]
fn idle_runs_while_only_lower_priority_watchers_are_pending() {
    let log = idle_against_io(-1);
    assert_eq!(log[0], "idle", "{log:?}");
    assert_eq!(log.iter().filter(|&&s| s == "io").count(), 3);
}

#[test]
fn idle_keeps_the_loop_polling_without_blocking() {
    let lp = Loop::new().unwrap();
    // An active io watcher with nothing to read: without the idle watcher
    // run_once would block (until the safety timer, at the latest).
    let (r, _w) = pipe();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, |_, _| unreachable!()).unwrap();
    io.start();
    let expired = Rc::new(Cell::new(false));
    let e = expired.clone();
    let safety = Timer::new(&lp, LIMIT, Duration::ZERO, move |_, _| e.set(true));
    safety.start();
    let n = Counter::new();
    let c = n.clone();
    let idle = Idle::new(&lp, move |_, _| c.bump());
    idle.start();
    for i in 1..=5 {
        lp.run_once();
        assert!(!expired.get(), "run_once blocked with an active idle watcher");
        assert_eq!(n.get(), i, "the idle watcher runs once per iteration");
    }
    idle.stop();
    assert!(idle.keeps_loop_alive());
}

#[test]
fn unreferenced_idle_watcher_does_not_keep_run_alive() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp, |_, _| {});
    idle.set_keeps_loop_alive(false);
    idle.start();
    assert!(!lp.run());
    assert!(idle.is_active());
}

// ---------------------------------------------------------------- Prepare / Check

#[test]
fn prepare_and_check_bracket_every_iteration() {
    let lp = Loop::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let prepare = Prepare::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::PREPARE);
        l.borrow_mut().push("prepare");
    });
    let l = log.clone();
    let check = Check::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::CHECK);
        l.borrow_mut().push("check");
    });
    prepare.start();
    check.start();
    // Keeps the iterations from blocking.
    let l = log.clone();
    let idle = Idle::new(&lp, move |_, _| l.borrow_mut().push("idle"));
    idle.start();
    for _ in 0..4 {
        lp.run_once();
        let it = log.take();
        let pos = |s| it.iter().position(|&x| x == s);
        assert_eq!(it.iter().filter(|&&s| s == "prepare").count(), 1, "{it:?}");
        assert_eq!(it.iter().filter(|&&s| s == "check").count(), 1, "{it:?}");
        assert!(pos("prepare") < pos("check"), "{it:?}");
        assert_eq!(pos("prepare"), Some(0), "prepare opens the iteration: {it:?}");
    }
}

#[test]
fn prepare_runs_before_the_poll_and_check_after_it() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let log: Log = Rc::default();
    let l = log.clone();
    let wr = Rc::new(w);
    let wr2 = wr.clone();
    // The prepare callback makes the fd readable just before the poll; the
    // io event can therefore only show up after it, together with check.
    let prepare = Prepare::new(&lp, move |p, _| {
        l.borrow_mut().push("prepare");
        write_byte(&*wr2, 1);
        p.stop();
    });
    let l = log.clone();
    let check = Check::new(&lp, move |c, _| {
        l.borrow_mut().push("check");
        c.stop();
    });
    let l = log.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, _| {
        read_byte(io.fd()).unwrap();
        l.borrow_mut().push("io");
        io.stop();
    })
    .unwrap();
    io.start();
    prepare.start();
    check.start();
    run_until(&lp, "the io event", || !io.is_active());
    let log = log.take();
    assert_eq!(log[0], "prepare", "{log:?}");
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log.contains(&"check") && log.contains(&"io"), "{log:?}");
    drop(wr);
}

#[test]
fn stopped_prepare_and_check_do_not_run() {
    let lp = Loop::new().unwrap();
    let p = Prepare::new(&lp, |_, _| unreachable!());
    let c = Check::new(&lp, |_, _| unreachable!());
    p.start();
    c.start();
    p.stop();
    c.stop();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
    t.start();
    lp.run();
    assert!(!t.is_active());
}

// ---------------------------------------------------------------- Fork

#[test]
fn fork_watcher_runs_after_reinit_before_other_callbacks() {
    let lp = Loop::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let fork = Fork::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::FORK);
        l.borrow_mut().push("fork");
    });
    fork.start();
    let l = log.clone();
    let prepare = Prepare::new(&lp, move |_, _| l.borrow_mut().push("prepare"));
    prepare.start();
    let l = log.clone();
    let timer =
        Timer::new(&lp, Duration::ZERO, Duration::from_secs(3600), move |_, _| l.borrow_mut().push("timer"));
    timer.start();
    // Not before reinit_after_fork.
    run_until(&lp, "the timer", || log.borrow().contains(&"timer"));
    assert!(!log.borrow().contains(&"fork"), "{:?}", log.borrow());
    log.take();

    // Make the timer due for the next iteration.
    timer.set(Duration::ZERO, Duration::from_secs(3600));
    std::thread::sleep(Duration::from_millis(2));
    lp.reinit_after_fork();
    lp.run_nowait();
    let it = log.take();
    assert_eq!(it.first(), Some(&"fork"), "{it:?}");
    assert_eq!(it.iter().filter(|&&s| s == "fork").count(), 1, "{it:?}");
    assert!(it.contains(&"prepare"), "{it:?}");
    assert!(it.contains(&"timer"), "the due timer ran in the same iteration, after fork: {it:?}");

    // Once only.
    lp.run_nowait();
    lp.run_nowait();
    assert!(!log.borrow().contains(&"fork"), "{:?}", log.borrow());
}

#[test]
fn io_keeps_working_after_reinit_after_fork() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let n = Counter::new();
    let c = n.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, _| {
        if read_byte(io.fd()).is_some() {
            c.bump();
        }
    })
    .unwrap();
    io.start();
    write_byte(&w, 1);
    run_until(&lp, "the first byte", || n.get() == 1);
    // The backend (epoll fd etc.) is recreated: watchers must be carried over.
    lp.reinit_after_fork();
    lp.run_nowait();
    write_byte(&w, 2);
    run_until(&lp, "the byte after reinit", || n.get() == 2);
}

#[test]
fn stopped_fork_watcher_does_not_run() {
    let lp = Loop::new().unwrap();
    let fork = Fork::new(&lp, |_, _| unreachable!());
    fork.start();
    fork.stop();
    lp.reinit_after_fork();
    assert!(!lp.run_nowait());
}

// ---------------------------------------------------------------- Cleanup

/// A started cleanup watcher that counts its calls and records what
/// `loop_handle()` returned inside the callback.
fn counting_cleanup(lp: &Loop, runs: &Counter, saw_loop: &Rc<Cell<Option<bool>>>) -> Cleanup {
    let (r, s) = (runs.clone(), saw_loop.clone());
    let c = Cleanup::new(lp, move |c, ev| {
        assert_eq!(ev, Events::CLEANUP);
        s.set(Some(c.loop_handle().is_some()));
        r.bump();
    });
    c.start();
    c
}

#[test]
fn cleanup_runs_when_the_last_handle_and_watcher_go() {
    let lp = Loop::new().unwrap();
    let runs = Counter::new();
    let saw_loop = Rc::new(Cell::new(None));
    let c = counting_cleanup(&lp, &runs, &saw_loop);
    assert!(c.loop_handle().is_some_and(|l| l.ptr_eq(&lp)));
    let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    let lp2 = lp.clone();
    drop(lp);
    assert_eq!(runs.get(), 0, "another handle is alive");
    drop(lp2);
    assert_eq!(runs.get(), 0, "a watcher still holds the loop");
    assert!(c.loop_handle().is_some());
    drop(t);
    assert_eq!(runs.get(), 1, "the loop is gone");
    assert_eq!(saw_loop.get(), Some(false), "no loop handle inside the callback");
    assert!(c.loop_handle().is_none());
    // Everything on a dead cleanup watcher is a harmless no-op.
    c.start();
    c.feed_event(Events::CUSTOM);
    assert_eq!(c.clear_pending(), Events::empty());
    c.invoke(Events::CUSTOM);
    c.stop();
    assert_eq!(runs.get(), 1);
    drop(c); // dropped after its loop: fine
}

#[test]
fn cleanup_does_not_keep_run_alive() {
    let lp = Loop::new().unwrap();
    let runs = Counter::new();
    let saw_loop = Rc::new(Cell::new(None));
    let c = counting_cleanup(&lp, &runs, &saw_loop);
    assert!(c.is_active());
    assert!(!lp.run(), "run returns at once with only a cleanup watcher");
    assert!(!lp.run_once());
    assert_eq!(runs.get(), 0);
    drop(lp);
    assert_eq!(runs.get(), 1);
}

#[test]
fn stopped_or_never_started_cleanup_does_not_run() {
    let lp = Loop::new().unwrap();
    let never = Cleanup::new(&lp, |_, _| unreachable!());
    let stopped = Cleanup::new(&lp, |_, _| unreachable!());
    stopped.start();
    stopped.stop();
    drop(lp);
    assert!(never.loop_handle().is_none());
    assert!(stopped.loop_handle().is_none());
}

#[test]
fn cleanup_dropped_before_its_loop_does_not_run() {
    let lp = Loop::new().unwrap();
    let c = Cleanup::new(&lp, |_, _| unreachable!());
    c.start();
    drop(c);
    drop(lp);
}

#[test]
fn cleanup_callback_drops_another_pending_cleanup() {
    // Both are queued when the loop is destroyed; whichever runs first
    // drops the other, whose callback must then not run.
    let lp = Loop::new().unwrap();
    let a: Rc<RefCell<Option<Cleanup>>> = Rc::default();
    let b: Rc<RefCell<Option<Cleanup>>> = Rc::default();
    let ran = Counter::new();
    let make = |mine: &Rc<RefCell<Option<Cleanup>>>, other: &Rc<RefCell<Option<Cleanup>>>| {
        let (other, ran) = (other.clone(), ran.clone());
        // A sizeable capture, so using a freed closure would be visible to
        // valgrind/ASan.
        let payload = vec![3u8; 1024];
        let c = Cleanup::new(&lp, move |_, _| {
            ran.bump();
            assert_eq!(payload.len(), 1024);
            let dropped = other.borrow_mut().take();
            if let Some(d) = &dropped {
                assert!(d.is_pending() || d.is_active());
            }
            drop(dropped);
        });
        c.start();
        *mine.borrow_mut() = Some(c);
    };
    make(&a, &b);
    make(&b, &a);
    drop(lp);
    assert_eq!(ran.get(), 1, "the dropped cleanup watcher's callback ran");
    // Exactly one of the two is left, and it can go after its loop.
    assert_eq!(a.borrow().is_some() as u8 + b.borrow().is_some() as u8, 1);
    drop(a.take());
    drop(b.take());
}

#[test]
fn cleanup_callback_may_drop_and_stop_watchers() {
    // The callback stops one cleanup watcher and drops itself (through its
    // slot); the stopped one must not run.
    let lp = Loop::new().unwrap();
    let other = Rc::new(Cleanup::new(&lp, |_, _| unreachable!()));
    other.start();
    let me: Rc<RefCell<Option<Cleanup>>> = Rc::default();
    let ran = Counter::new();
    let (o, m, r) = (other.clone(), me.clone(), ran.clone());
    let c = Cleanup::new(&lp, move |c, _| {
        r.bump();
        o.stop();
        drop(m.borrow_mut().take());
        assert!(!c.is_active());
    });
    *me.borrow_mut() = Some(c);
    // Start after `other`, so it runs first (libev runs the last queued
    // watcher of a priority first) ...
    me.borrow().as_ref().unwrap().start();
    // ... and give it the higher priority to be sure.
    me.borrow().as_ref().unwrap().set_priority(1).unwrap();
    drop(lp);
    assert_eq!(ran.get(), 1);
    assert!(me.borrow().is_none());
    assert!(!other.is_active());
}

#[test]
fn cleanup_callback_cannot_start_cleanup_watchers() {
    let lp = Loop::new().unwrap();
    let late = Rc::new(Cleanup::new(&lp, |_, _| unreachable!()));
    let l = late.clone();
    let ran = Counter::new();
    let r = ran.clone();
    let c = Cleanup::new(&lp, move |_, _| {
        r.bump();
        l.start(); // ignored while the loop is destroyed
        assert!(!l.is_active());
    });
    c.start();
    drop(lp);
    assert_eq!(ran.get(), 1);
    late.start(); // and after: no loop
    assert!(late.loop_handle().is_none());
}

#[test]
fn cleanup_callback_panicking_during_destruction_does_not_abort() {
    let lp = Loop::new().unwrap();
    let after = Counter::new();
    let a = after.clone();
    let boom = Cleanup::new(&lp, |_, _| panic!("cleanup panic (expected by this test)"));
    let other = Cleanup::new(&lp, move |_, _| a.bump());
    other.start();
    boom.start(); // started last: runs first
    // The panic is reported on stderr; dropping the loop must not unwind or
    // abort.
    drop(lp);
    assert_eq!(after.get(), 1, "the other cleanup watcher still ran");
    drop((boom, other));
    // The process is alive and libev usable.
    let lp = Loop::new().unwrap();
    assert_loop_usable(&lp);
}

#[test]
fn cleanup_is_inactive_once_its_loop_is_gone() {
    let lp = Loop::new().unwrap();
    let c = Cleanup::new(&lp, |_, _| {});
    c.start();
    drop(lp);
    // The watcher can never run or be stopped again: it must not claim to
    // be active (libev itself never resets it).
    assert!(c.loop_handle().is_none());
    assert!(!c.is_active());
}

/// A cleanup watcher that was pending when its loop went is not pending
/// afterwards: libev never resets a destroyed loop's watchers, and the
/// stale index must not show (found by `fuzz_watchers`, seed 456).
#[test]
fn a_cleanup_pending_when_its_loop_goes_is_not_pending_afterwards() {
    let lp = Loop::new().unwrap();
    let runs = Counter::new();
    let r = runs.clone();
    let c = Cleanup::new(&lp, move |_, _| r.bump());
    c.feed_event(Events::CUSTOM);
    assert!(c.is_pending());
    drop(lp);
    assert!(!c.is_pending() && !c.is_active());
    assert_eq!(c.clear_pending(), Events::empty());
    c.stop();
    c.start();
    assert!(!c.is_active());
    assert_eq!(runs.get(), 0, "never started, so it did not run at destruction");
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
