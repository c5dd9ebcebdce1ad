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
