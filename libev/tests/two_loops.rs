//! Watchers of two loops used in turn on one thread. A watcher's hot path
//! passes libev the loop last used on its thread when it is the watcher's
//! own (`loop_guess.rs`), so that libev need not wait for the node: these
//! tests switch loops on every operation, at random and in strict turn,
//! and check that each watcher only ever reaches its own loop.

mod util;

use libev::{Events, Io, Loop, Timer};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;
use util::Rng;

const MS: Duration = Duration::from_millis(1);

/// Which timers fired, as (loop, timer) pairs, in order.
type Log = Rc<RefCell<Vec<(usize, usize)>>>;

/// `n` stopped timers on loop `which` that log (loop it ran in, timer).
fn timers(lp: &Loop, which: usize, n: usize, ran_in: &Rc<RefCell<usize>>, log: &Log) -> Vec<Timer> {
    (0..n)
        .map(|i| {
            let (ran_in, log) = (ran_in.clone(), log.clone());
            Timer::new(lp, MS, Duration::ZERO, move |_, _| {
                log.borrow_mut().push((*ran_in.borrow(), which * 1000 + i));
            })
        })
        .collect()
}

#[test]
fn timers_of_two_loops_moved_in_random_turns_each_fire_only_in_their_own_loop() {
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let (ran_in, log): (Rc<RefCell<usize>>, Log) = Default::default();
    let sets = [timers(&loops[0], 0, 50, &ran_in, &log), timers(&loops[1], 1, 50, &ran_in, &log)];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // Random operations, each on a timer of a loop picked at random: the
    // loop last used on the thread changes about every other operation.
    for _ in 0..20_000 {
        let t = &sets[rng.below(2) as usize][rng.below(50) as usize];
        let after = MS * (1 + rng.below(20) as u32);
        match rng.below(4) {
            0 => t.start(),
            1 => t.stop(),
            2 => t.set(after, Duration::ZERO),
            _ => t.restart(after, Duration::ZERO),
        }
    }
    // Then every timer started, one loop then the other in strict turn.
    for i in 0..50 {
        for set in &sets {
            set[i].restart(MS * (1 + i as u32 % 7), Duration::ZERO);
        }
    }
    for (which, lp) in loops.iter().enumerate() {
        *ran_in.borrow_mut() = which;
        // A timer started on the wrong loop would fire in the other run,
        // or keep this one waiting for a deadline it never reaches.
        assert!(!lp.run(), "loop {which} ended with all its timers fired");
        assert!(sets[which].iter().all(|t| !t.is_active()));
    }
    let log = log.borrow();
    assert_eq!(log.len(), 100, "each timer fired once: {log:?}");
    for &(ran, timer) in log.iter() {
        assert_eq!(ran, timer / 1000, "timer {timer} fired in loop {ran}");
    }
}

/// Asserts that exactly `n` active watchers keep `lp` alive: with `n`
/// references taken away, libev's count (what `run_nowait` reports) is
/// zero, neither below nor above.
fn assert_referenced(lp: &Loop, n: usize, what: &str) {
    (0..n).for_each(|_| lp.dec_ref());
    let left = lp.run_nowait();
    (0..n).for_each(|_| lp.inc_ref());
    assert!(!left, "{what}: libev's count is not {n}");
}

#[test]
fn timers_of_two_loops_used_in_turn_keep_each_loops_reference_count_exact() {
    // Unreferenced timers and their loop references go through the hot
    // paths' slow side (the tag in the node's loop word); mixed with
    // referenced ones on two loops, each operation switching loops at
    // random, each loop's count must stay what the timers say.
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let hour = Duration::from_secs(3600);
    let sets: Vec<Vec<Timer>> = loops
        .iter()
        .map(|lp| (0..20).map(|_| Timer::new(lp, hour, Duration::ZERO, |_, _| unreachable!())).collect())
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..2_000 {
        let (which, i) = (rng.below(2) as usize, rng.below(20) as usize);
        let t = &sets[which][i];
        let after = hour + MS * rng.below(1000) as u32;
        match rng.below(6) {
            0 | 1 => t.start(),
            2 => t.stop(),
            3 => t.set(after, Duration::ZERO),
            4 => t.restart(after, Duration::ZERO),
            _ => t.set_keeps_loop_alive(!t.keeps_loop_alive()),
        }
        if round % 50 == 0 {
            for (lp, set) in loops.iter().zip(&sets) {
                let n = set.iter().filter(|t| t.is_active() && t.keeps_loop_alive()).count();
                assert_referenced(lp, n, &format!("round {round}"));
            }
        }
    }
    for set in &sets {
        for t in set {
            t.set_keeps_loop_alive(false);
            t.start();
        }
    }
    for lp in &loops {
        assert_referenced(lp, 0, "all unreferenced");
    }
}

#[test]
fn events_deferred_for_a_referenced_timer_are_discarded_by_a_restart_across_loops() {
    // `MISSED` alone (no `UNREF`) sends `restart` to its slow path: the
    // deferred event must be discarded as `stop` would, while a timer of
    // another loop is moved between the calls.
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let hour = Duration::from_secs(3600);
    let other = Timer::new(&loops[1], hour, Duration::ZERO, |_, _| unreachable!());
    let calls = util::Counter::new();
    let (c, o) = (calls.clone(), Rc::new(other));
    let o2 = o.clone();
    let t = Timer::new(&loops[0], Duration::ZERO, Duration::ZERO, move |t, _| {
        c.bump();
        t.invoke(Events::CUSTOM); // deferred while this callback runs
        o2.restart(hour, Duration::ZERO); // the other loop in between
        t.restart(hour, Duration::ZERO);
        o2.stop();
        assert!(!t.is_pending() && t.is_active());
    });
    t.start();
    loops[0].run_once();
    assert_eq!(calls.get(), 1);
    assert_referenced(&loops[0], 1, "the restarted timer");
    t.stop();
    assert_eq!(calls.get(), 1, "the deferred event was discarded");
    assert_referenced(&loops[0], 0, "stopped");
    assert_referenced(&loops[1], 0, "the other loop's timer, stopped");
}

#[test]
fn a_new_callback_keeps_an_active_timer_unreferenced_across_loops() {
    // The new node made by `set_callback` carries the unreferenced flag,
    // and with it the loop word's tag: its stop must give back no
    // reference it did not take.
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let hour = Duration::from_secs(3600);
    let other = Timer::new(&loops[1], hour, Duration::ZERO, |_, _| {});
    let mut t = Timer::new(&loops[0], hour, Duration::ZERO, |_, _| {});
    t.set_keeps_loop_alive(false);
    t.start();
    other.start();
    t.set_callback(|_, _| {});
    assert!(t.is_active() && !t.keeps_loop_alive());
    assert_referenced(&loops[0], 0, "after set_callback");
    other.stop();
    t.stop();
    t.start();
    other.start();
    assert_referenced(&loops[0], 0, "restarted");
    assert_referenced(&loops[1], 1, "the other loop");
    t.set_keeps_loop_alive(true);
    assert_referenced(&loops[0], 1, "referenced again");
}

#[test]
fn a_loop_made_where_a_dropped_one_was_is_learnt_from_its_own_watchers() {
    // Dropped loops are forgotten; the allocator often gives the next one
    // the same address. Each round leaves the guess at the dropped loop's
    // address and checks the new loop's timers against another's.
    let keep = Loop::new().unwrap();
    let (ran_in, log): (Rc<RefCell<usize>>, Log) = Default::default();
    let kept = timers(&keep, 1, 2, &ran_in, &log);
    for _ in 0..20 {
        let lp = Loop::new().unwrap();
        let fresh = timers(&lp, 0, 2, &ran_in, &log);
        for (a, b) in fresh.iter().zip(&kept) {
            a.start();
            b.start();
        }
        *ran_in.borrow_mut() = 0;
        assert!(!lp.run());
        *ran_in.borrow_mut() = 1;
        assert!(!keep.run());
        drop(fresh);
        drop(lp);
    }
    let log = log.borrow();
    assert_eq!(log.len(), 80);
    for &(ran, timer) in log.iter() {
        assert_eq!(ran, timer / 1000, "timer {timer} fired in loop {ran}");
    }
}

#[test]
fn watchers_of_two_loops_dropped_at_thread_exit_stop_on_their_own_loops() {
    // Thread-locals destroyed at exit drop a timer of the loop not used
    // last on the thread, then its loop: the drop's stop must find it.
    thread_local! {
        static HELD: RefCell<Vec<Box<dyn std::any::Any>>> = const { RefCell::new(Vec::new()) };
    }
    std::thread::spawn(|| {
        HELD.with(|h| h.borrow_mut().clear());
        let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
        let hour = Duration::from_secs(3600);
        let a = Timer::new(&loops[0], hour, Duration::ZERO, |_, _| {});
        let b = Timer::new(&loops[1], hour, Duration::ZERO, |_, _| {});
        let c = Timer::new(&loops[0], hour, Duration::ZERO, |_, _| {});
        a.set_keeps_loop_alive(false);
        a.start();
        c.start();
        b.start(); // the guess is now loop 1
        let [l0, l1] = loops;
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.push(Box::new(c));
            h.push(Box::new(a));
            h.push(Box::new(l0));
            h.push(Box::new(b));
            h.push(Box::new(l1));
        });
    })
    .join()
    .expect("the thread exits cleanly with its watchers in a thread-local");
}

#[test]
fn periodics_and_plain_timers_of_two_loops_interleave() {
    // Periodics take the guarded slow path on every call; plain timers of
    // the other loop around them keep the fast one.
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let fired = util::Counter::new();
    let f = fired.clone();
    let p = libev::Periodic::at(&loops[0], 0.0, move |_, _| f.bump()).unwrap();
    let (ran_in, log): (Rc<RefCell<usize>>, Log) = Default::default();
    let ts = timers(&loops[1], 1, 3, &ran_in, &log);
    for t in &ts {
        p.stop();
        t.start();
        p.start();
        t.restart(MS * 2, Duration::ZERO);
    }
    *ran_in.borrow_mut() = 0;
    loops[0].run();
    assert_eq!(fired.get(), 1, "the periodic (at time 0) fired once in its loop");
    *ran_in.borrow_mut() = 1;
    loops[1].run();
    assert_eq!(log.borrow().len(), 3);
    assert!(log.borrow().iter().all(|&(ran, _)| ran == 1));
}

#[test]
fn io_watchers_of_two_loops_started_in_turn_each_report_only_in_their_own_loop() {
    let loops = [Loop::new().unwrap(), Loop::new().unwrap()];
    let (ran_in, log): (Rc<RefCell<usize>>, Log) = Default::default();
    let pipes: Vec<_> = (0..8).map(|_| util::pipe()).collect();
    let watchers: Vec<Io> = pipes
        .iter()
        .enumerate()
        .map(|(i, (r, _))| {
            let which = i % 2;
            let (ran_in, log) = (ran_in.clone(), log.clone());
            Io::new(&loops[which], r.as_raw_fd(), Events::READ, move |io, _| {
                log.borrow_mut().push((*ran_in.borrow(), which * 1000 + i));
                io.stop();
            })
            .unwrap()
        })
        .collect();
    // Alternate loops on every call: start, change events, stop, start.
    for io in &watchers {
        io.start();
    }
    for io in &watchers {
        io.set_events(Events::READ | Events::WRITE).unwrap();
    }
    for io in &watchers {
        io.stop();
        io.set_events(Events::READ).unwrap();
        io.start();
    }
    for (_, w) in &pipes {
        util::write_byte(w, 1);
    }
    for (which, lp) in loops.iter().enumerate() {
        *ran_in.borrow_mut() = which;
        assert!(!lp.run(), "loop {which} ended with all its watchers stopped");
    }
    let log = log.borrow();
    assert_eq!(log.len(), 8, "each watcher reported once: {log:?}");
    for &(ran, watcher) in log.iter() {
        assert_eq!(ran, watcher / 1000, "watcher {} reported in loop {ran}", watcher % 1000);
    }
}

#[test]
fn a_timer_works_on_a_thread_whose_first_watcher_call_it_is() {
    // The first hot path on a thread has no loop to compare with.
    std::thread::spawn(|| {
        let lp = Loop::new().unwrap();
        let fired = util::Counter::new();
        let f = fired.clone();
        let t = Timer::new(&lp, MS, Duration::ZERO, move |_, _| f.bump());
        t.start();
        lp.run();
        assert_eq!(fired.get(), 1);
    })
    .join()
    .unwrap();
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
