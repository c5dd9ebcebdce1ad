//! `Timer`: ordering, repeat, again, remaining.

mod util;

use libev::{Events, Loop, Timer};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use util::Counter;

const MS: Duration = Duration::from_millis(1);

#[test]
fn timers_fire_in_deadline_order() {
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    let order = [5u32, 1, 4, 2, 3, 0];
    let timers: Vec<Timer> = order
        .iter()
        .map(|&i| {
            let l = log.clone();
            let t = Timer::new(&lp, MS * (i * 3), Duration::ZERO, move |_, _| l.borrow_mut().push(i));
            t.start();
            t
        })
        .collect();
    lp.run();
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4, 5]);
    assert!(timers.iter().all(|t| !t.is_active()));
}

#[test]
fn repeating_timer_fires_until_stopped_and_never_early() {
    let lp = Loop::new().unwrap();
    let times: Rc<RefCell<Vec<f64>>> = Rc::default();
    let lp2 = lp.clone();
    let tm = times.clone();
    let start = lp.now();
    let t = Timer::new(&lp, MS * 2, MS * 2, move |t, _| {
        tm.borrow_mut().push(lp2.now());
        assert!(t.is_active(), "a repeating timer stays active");
        if tm.borrow().len() == 5 {
            t.stop();
        }
    });
    t.start();
    lp.run();
    let times = times.borrow();
    assert_eq!(times.len(), 5);
    // Each expiry is at least `repeat` after the previous one's schedule:
    // on the loop clock, never before its deadline.
    for (k, &at) in times.iter().enumerate() {
        assert!(at >= start + 0.002 * (k as f64 + 1.0) - 1e-9, "{k}: {at} vs start {start}");
    }
}

#[test]
fn again_restarts_and_stops() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    // Repeat set: again() (re)starts with `repeat` from now.
    let t = Timer::new(&lp, Duration::ZERO, MS * 50, move |t, _| {
        c.bump();
        t.stop();
    });
    t.again();
    assert!(t.is_active());
    let rem = t.remaining();
    assert!(rem > MS * 40 && rem <= MS * 50, "{rem:?}");
    lp.run();
    assert_eq!(n.get(), 1);
    // No repeat: again() stops an active timer.
    let once = Timer::new(&lp, Duration::from_secs(10), Duration::ZERO, |_, _| {});
    once.start();
    once.again();
    assert!(!once.is_active());
    assert_eq!(once.remaining(), Duration::ZERO);
}

#[test]
fn set_repeat_while_active_takes_effect_at_next_expiry() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(&lp, MS, MS, move |t, _| {
        c.bump();
        if c.get() == 2 {
            t.set_repeat(Duration::ZERO); // the next expiry is the last
        }
    });
    t.start();
    lp.run();
    // libev re-arms a repeating timer before its callback runs, so the
    // change made in the 2nd call applies after the 3rd expiry.
    assert_eq!(n.get(), 3);
    assert_eq!(t.repeat(), Duration::ZERO);
}

#[test]
fn set_on_active_timer_restarts_it() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
    t.start();
    t.set(Duration::from_secs(5), Duration::ZERO);
    assert!(t.is_active());
    let rem = t.remaining();
    assert!(rem <= Duration::from_secs(5) && rem > Duration::from_secs(4), "{rem:?}");
}

#[test]
fn restart_moves_an_active_timer_and_discards_its_pending_event() {
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<Events>>> = Rc::default();
    let l = log.clone();
    let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, move |_, ev| l.borrow_mut().push(ev));
    t.start();
    t.feed_event(Events::CUSTOM);
    t.restart(MS, Duration::ZERO);
    assert!(t.is_active() && !t.is_pending());
    assert!(t.remaining() <= MS);
    lp.run();
    assert_eq!(*log.borrow(), [Events::TIMER]);
    // A stopped timer is started; the repeat is set too.
    t.restart(Duration::from_secs(100), MS * 7);
    assert!(t.is_active());
    assert_eq!(t.repeat(), MS * 7);
}

#[test]
fn restart_sets_the_deadline_stop_set_and_start_would() {
    // `restart` moves a plain timer with `ev_timer_again`; the deadline
    // must be the one the three calls give, to the last bit, whether the
    // timer was active or stopped.
    let lp = Loop::new().unwrap();
    let moved = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
    let reference = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
    for active in [true, false] {
        if active {
            moved.start();
            reference.start();
        }
        let (after, repeat) = (Duration::from_millis(1234), Duration::from_millis(77));
        moved.restart(after, repeat);
        reference.stop();
        reference.set(after, repeat);
        reference.start();
        assert!(moved.is_active(), "active before: {active}");
        assert_eq!(moved.remaining(), reference.remaining(), "active before: {active}");
        assert_eq!(moved.repeat(), repeat, "the repeat, not the delay, is left for the next firing");
        moved.stop();
        reference.stop();
    }
}

#[test]
fn restart_with_a_repeat_fires_after_the_delay_then_every_repeat() {
    // The delay is libev's repeat for a moment inside `restart`: the
    // firings after the first must use the real repeat.
    let lp = Loop::new().unwrap();
    let times: Rc<RefCell<Vec<f64>>> = Rc::default();
    let (tm, lp2) = (times.clone(), lp.clone());
    let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, move |t, _| {
        tm.borrow_mut().push(lp2.now());
        if tm.borrow().len() == 3 {
            t.stop();
        }
    });
    t.start();
    let start = lp.now();
    t.restart(MS, MS * 8);
    assert_eq!(t.repeat(), MS * 8);
    lp.run();
    let times = times.borrow();
    assert_eq!(times.len(), 3);
    // Never before its schedule: the delay, then a repeat each (libev
    // schedules a repeat from the last deadline, so a late firing may be
    // followed by a shorter gap; the schedule itself is never early).
    for (k, &at) in times.iter().enumerate() {
        let due = start + 0.001 + 0.008 * k as f64;
        assert!(at >= due - 1e-9, "firing {k} at {at}, due {due}: {times:?}");
    }
}

#[test]
fn restart_with_a_zero_delay_fires_at_the_next_iteration() {
    // `ev_timer_again` would stop a timer moved with a zero delay: this
    // one must fire, as stop, set and start make it.
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, move |_, _| c.bump());
    t.start();
    t.restart(Duration::ZERO, Duration::ZERO);
    assert!(t.is_active());
    lp.run();
    assert_eq!(n.get(), 1);
    // And from stopped.
    t.restart(Duration::ZERO, Duration::ZERO);
    lp.run();
    assert_eq!(n.get(), 2);
}

#[test]
fn many_restarted_timers_fire_in_the_order_of_their_last_delays() {
    // Random moves, starts and stops keep libev's heap whole: the active
    // timers fire in the order of the delays they were last given (all at
    // one loop time, which does not advance before `run`).
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<usize>>> = Rc::default();
    let n = 300;
    let timers: Vec<Timer> = (0..n)
        .map(|i| {
            let l = log.clone();
            Timer::new(&lp, hour_plus_us(i), Duration::ZERO, move |_, _| l.borrow_mut().push(i))
        })
        .collect();
    // What libev should hold: each timer's delay and whether it is active.
    let mut delay: Vec<Duration> = (0..n).map(hour_plus_us).collect();
    let mut active = vec![false; n];
    let mut rng = util::Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5_000 {
        let i = rng.below(n as u64) as usize;
        match rng.below(8) {
            0 => {
                timers[i].stop();
                active[i] = false;
            }
            1 => {
                timers[i].start();
                active[i] = true;
            }
            _ => {
                // Distinct for every timer: 1 to 30 ms, plus i microseconds.
                let d = MS * (1 + rng.below(30) as u32) + Duration::from_micros(i as u64);
                timers[i].restart(d, Duration::ZERO);
                (delay[i], active[i]) = (d, true);
            }
        }
    }
    for i in 0..n {
        assert_eq!(timers[i].is_active(), active[i], "timer {i}");
        if delay[i] >= Duration::from_secs(3600) {
            timers[i].stop();
            active[i] = false;
        }
    }
    let mut expected: Vec<(Duration, usize)> = (0..n).filter(|&i| active[i]).map(|i| (delay[i], i)).collect();
    expected.sort();
    assert!(expected.len() > n / 2, "most timers were moved: {}", expected.len());
    lp.run();
    assert_eq!(*log.borrow(), expected.into_iter().map(|(_, i)| i).collect::<Vec<_>>());
}

/// An hour plus `i` microseconds: a delay that no test waits for.
fn hour_plus_us(i: usize) -> Duration {
    Duration::from_secs(3600) + Duration::from_micros(i as u64)
}

#[test]
fn restart_keeps_an_unreferenced_timer_unreferenced_and_discards_a_deferred_event() {
    let lp = Loop::new().unwrap();
    let calls = Counter::new();
    let c = calls.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, move |t, _| {
        c.bump();
        t.invoke(Events::CUSTOM); // deferred: counts as pending
        t.restart(Duration::from_secs(3600), Duration::ZERO);
        assert!(!t.is_pending() && t.is_active());
    });
    t.set_keeps_loop_alive(false);
    t.start();
    util::assert_run_waits_for_a_referenced_timer(&lp);
    assert_eq!(calls.get(), 1, "the deferred event was discarded");
    assert!(t.is_active());
    assert!(!lp.run_nowait(), "the restarted timer is still unreferenced");
    t.stop();
    t.set_keeps_loop_alive(true);
    assert!(!lp.run_nowait(), "the counts stayed balanced");
}

#[test]
fn clearing_or_setting_a_fired_unreferenced_timer_keeps_counts_balanced() {
    // As in timer_array.rs: `b` fires with `a` and is stopped by libev;
    // `a`'s callback cancels (or changes) `b` while its event is pending,
    // and `b`'s `ev_unref` must still be paid back.
    for clear in [true, false] {
        let lp = Loop::new().unwrap();
        let slot: Rc<RefCell<Option<Timer>>> = Rc::default();
        let s = slot.clone();
        let a = Timer::new(&lp, MS, Duration::ZERO, move |_, _| {
            if let Some(b) = &*s.borrow() {
                if clear {
                    assert_eq!(b.clear_pending(), Events::TIMER);
                } else {
                    b.set(Duration::from_secs(3600), Duration::ZERO);
                }
            }
        });
        let b = Timer::new(&lp, MS, Duration::ZERO, |_, _| {});
        for t in [&a, &b] {
            t.set_keeps_loop_alive(false);
            t.start();
        }
        *slot.borrow_mut() = Some(b);
        util::assert_run_waits_for_a_referenced_timer(&lp);
    }
}

#[test]
fn again_discards_a_deferred_event() {
    let lp = Loop::new().unwrap();
    let calls = Counter::new();
    let c = calls.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::from_secs(3600), move |t, _| {
        c.bump();
        t.invoke(Events::CUSTOM); // deferred: counts as pending
        assert!(t.is_pending());
        t.set_repeat(Duration::ZERO);
        t.again(); // stops it, and ev_timer_again cancels a pending event
        assert!(!t.is_pending() && !t.is_active());
    });
    t.start();
    lp.run();
    assert_eq!(calls.get(), 1);
}

#[test]
fn repeat_and_remaining_saturate_instead_of_panicking() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::MAX, Duration::MAX, |_, _| {});
    assert_eq!(t.repeat(), Duration::MAX);
    t.start();
    assert!(t.remaining() > Duration::from_secs(1 << 60), "far away, not overdue");
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}

#[test]
fn set_on_an_active_timer_sets_the_deadline_stop_set_and_start_would_and_keeps_a_pending_event() {
    // Without a pending event, `set` on an active timer takes restart's
    // `ev_timer_again`; with one, stop, set and start, keeping the event.
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<Events>>> = Rc::default();
    let l = log.clone();
    let moved =
        Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, move |_, ev| l.borrow_mut().push(ev));
    let reference = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
    for pending in [false, true] {
        moved.start();
        reference.start();
        if pending {
            moved.feed_event(Events::CUSTOM);
        }
        let (after, repeat) = (Duration::from_millis(1234), Duration::from_millis(77));
        moved.set(after, repeat);
        reference.stop();
        reference.set(after, repeat);
        reference.start();
        assert!(moved.is_active(), "pending: {pending}");
        assert_eq!(moved.is_pending(), pending, "set keeps a pending event");
        assert_eq!(moved.remaining(), reference.remaining(), "pending: {pending}");
        assert_eq!(moved.repeat(), repeat);
    }
    // The fed event is delivered (and only it: the timer is an hour away).
    lp.run_nowait();
    assert_eq!(*log.borrow(), [Events::CUSTOM]);
    // A zero delay fires at the next iteration.
    moved.set(Duration::ZERO, Duration::ZERO);
    assert!(moved.is_active());
    reference.stop();
    lp.run();
    assert_eq!(*log.borrow(), [Events::CUSTOM, Events::TIMER]);
}

#[test]
fn set_on_an_active_timer_restarts_it_and_keeps_what_it_owes_the_loop() {
    // `set` on an active timer with nothing pending takes libev's stop and
    // start around the change; either way the loop's count of referenced
    // watchers must come out as it went in.
    for keep in [true, false] {
        let lp = Loop::new().unwrap();
        let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
        t.set_keeps_loop_alive(keep);
        t.start();
        t.set(Duration::from_secs(7200), MS);
        assert!(t.is_active());
        assert!(t.remaining() > Duration::from_secs(7000));
        assert_eq!(t.repeat(), MS);
        assert_eq!(lp.run_nowait(), keep, "keeps_loop_alive({keep}) survives the restart");
        t.stop();
        t.set_keeps_loop_alive(true);
        assert!(!lp.run_nowait(), "the counts stayed balanced");
    }
}

#[test]
fn set_on_a_pending_stopped_timer_keeps_its_event_and_leaves_it_stopped() {
    // libev allows `ev_timer_set` on a watcher that is pending but not
    // active (ev.pod, `ev_TYPE_set`): `set` changes it in place, and the
    // event is delivered once, as fed.
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<Events>>> = Rc::default();
    let l = log.clone();
    let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, move |_, ev| l.borrow_mut().push(ev));
    t.feed_event(Events::CUSTOM);
    t.set(Duration::from_secs(5), MS * 3);
    assert!(!t.is_active() && t.is_pending());
    assert_eq!(t.repeat(), MS * 3);
    lp.run_nowait();
    assert_eq!(*log.borrow(), [Events::CUSTOM]);
    assert!(!t.is_active() && !t.is_pending());
    t.start();
    let rem = t.remaining();
    assert!(rem <= Duration::from_secs(5) && rem > Duration::from_secs(4), "{rem:?}");
}

#[test]
fn start_on_an_active_timer_changes_nothing() {
    // `Timer::start` leaves the check for an active timer to libev (one
    // read less between libev's calls): a second start must still neither
    // restart the timer nor take a second reference off the loop.
    for keep in [true, false] {
        let lp = Loop::new().unwrap();
        let t = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
        t.set_keeps_loop_alive(keep);
        t.start();
        std::thread::sleep(MS * 20);
        lp.update_now();
        t.start();
        assert!(t.remaining() < Duration::from_secs(100) - MS * 15, "not restarted");
        // A referenced timer keeps the loop alive whatever `t` owes it.
        let other = Timer::new(&lp, Duration::from_secs(100), Duration::ZERO, |_, _| {});
        other.start();
        assert!(lp.run_nowait());
        t.stop();
        assert!(lp.run_nowait(), "keeps_loop_alive({keep}): one unref, paid back once");
        other.stop();
        assert!(!lp.run_nowait());
    }
}

#[test]
fn set_inside_the_callback_keeps_the_events_deferred_for_it() {
    // An event for a timer whose callback runs waits in the loop's table
    // until the callback returns. `set` on the stopped timer (changed in
    // place) and on the started one (libev's stop and start around the
    // change) must both leave it there.
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<Events>>> = Rc::default();
    let l = log.clone();
    let t = Timer::new(&lp, MS, Duration::ZERO, move |t, ev| {
        l.borrow_mut().push(ev);
        if l.borrow().len() == 1 {
            t.invoke(Events::CUSTOM);
            t.set(Duration::from_secs(100), Duration::ZERO);
            assert!(!t.is_active() && t.is_pending());
            t.start();
            t.invoke(Events::WRITE);
            t.set(Duration::from_secs(200), Duration::ZERO);
            assert!(t.is_active() && t.is_pending());
        }
    });
    t.start();
    lp.run_once();
    lp.run_nowait();
    assert_eq!(*log.borrow(), [Events::TIMER, Events::CUSTOM | Events::WRITE]);
    assert!(t.is_active() && !t.is_pending());
    assert!(t.remaining() > Duration::from_secs(150));
}
