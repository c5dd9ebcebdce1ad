//! `TimerArray`: ordering, repeat, again, remaining, pending events,
//! keep-alive counts, and what its callback may do (the soundness cases of
//! `soundness.rs`, for an array).

mod util;

use libev::{Events, Loop, TimerArray};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use util::Counter;

const MS: Duration = Duration::from_millis(1);
const HOUR: Duration = Duration::from_secs(3600);

type Log = Rc<RefCell<Vec<(usize, Events)>>>;

/// An array of `n` timers whose callback logs (index, events).
fn logging(lp: &Loop, n: usize) -> (TimerArray, Log) {
    let log: Log = Rc::default();
    let l = log.clone();
    (TimerArray::new(lp, n, move |_, i, ev| l.borrow_mut().push((i, ev))), log)
}

fn indices(log: &Log) -> Vec<usize> {
    log.borrow().iter().map(|&(i, _)| i).collect()
}

#[test]
fn timers_fire_in_deadline_order_with_their_index() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 6);
    assert_eq!((timers.len(), timers.is_empty()), (6, false));
    for (i, slot) in [5u32, 1, 4, 2, 3, 0].into_iter().enumerate() {
        timers.set(i, MS * (slot * 3), Duration::ZERO);
        timers.start(i);
    }
    lp.run();
    assert_eq!(indices(&log), [5, 1, 3, 4, 2, 0]);
    assert!(log.borrow().iter().all(|&(_, ev)| ev == Events::TIMER));
    assert!((0..6).all(|i| !timers.is_active(i)), "one-shot timers stop");
}

#[test]
fn one_shot_is_stopped_in_its_callback_and_repeating_stays_active() {
    let lp = Loop::new().unwrap();
    let seen: Rc<RefCell<Vec<(usize, bool)>>> = Rc::default();
    let s = seen.clone();
    let timers = TimerArray::new(&lp, 2, move |t, i, _| {
        s.borrow_mut().push((i, t.is_active(i)));
        if i == 1 && s.borrow().iter().filter(|e| e.0 == 1).count() == 3 {
            t.stop(1);
        }
    });
    timers.set(0, MS, Duration::ZERO);
    timers.set(1, MS, MS);
    assert_eq!(timers.repeat(1), MS);
    timers.start(0);
    timers.start(1);
    lp.run();
    let seen = seen.borrow();
    assert_eq!(seen.iter().filter(|e| **e == (0, false)).count(), 1);
    assert_eq!(seen.iter().filter(|e| **e == (1, true)).count(), 3);
    assert_eq!(seen.len(), 4);
}

#[test]
fn set_on_an_active_timer_restarts_it_with_the_new_delay() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 2);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.set(1, MS * 5, Duration::ZERO);
    timers.start(1);
    timers.set(0, MS, Duration::ZERO);
    assert!(timers.is_active(0), "still active after set");
    assert!(timers.remaining(0) <= MS);
    lp.run();
    assert_eq!(indices(&log), [0, 1]);
}

#[test]
fn set_on_an_active_timer_sets_the_deadline_stop_set_and_start_would_and_keeps_a_pending_event() {
    // Without a pending event, `set` on an active timer takes restart's
    // `ev_timer_again`; with one, stop, set and start, keeping the event.
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 2);
    let (after, repeat) = (Duration::from_millis(1234), Duration::from_millis(77));
    for pending in [false, true] {
        timers.start(0);
        timers.start(1);
        if pending {
            timers.feed_event(0, Events::CUSTOM);
        }
        timers.set(0, after, repeat);
        timers.stop(1);
        timers.set(1, after, repeat);
        timers.start(1);
        assert!(timers.is_active(0), "pending: {pending}");
        assert_eq!(timers.is_pending(0), pending, "set keeps a pending event");
        assert_eq!(timers.remaining(0), timers.remaining(1), "pending: {pending}");
        assert_eq!(timers.repeat(0), repeat);
    }
    lp.run_nowait();
    assert_eq!(*log.borrow(), [(0, Events::CUSTOM)]);
    timers.set(0, Duration::ZERO, Duration::ZERO);
    assert!(timers.is_active(0), "a zero delay fires at the next iteration");
    timers.stop(1);
    lp.run();
    assert_eq!(indices(&log), [0, 0]);
}

#[test]
fn restart_moves_an_active_timer_and_starts_a_stopped_one() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 3);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.restart(0, MS * 2, Duration::ZERO);
    assert!(timers.is_active(0));
    assert!(timers.remaining(0) <= MS * 2, "the new delay replaced the hour");
    timers.restart(1, MS, Duration::ZERO);
    assert!(timers.is_active(1), "a stopped timer is started");
    timers.restart(2, HOUR, HOUR);
    timers.restart(2, HOUR, MS * 3);
    assert_eq!(timers.repeat(2), MS * 3, "the repeat is set too");
    timers.stop(2);
    lp.run();
    assert_eq!(indices(&log), [1, 0]);
}

#[test]
fn restart_sets_the_deadline_stop_set_and_start_would() {
    // `restart` moves a timer with `ev_timer_again`; the deadline must be
    // the one the three calls give, to the last bit, and the repeat the
    // one asked for, whether the timer was active or stopped.
    let lp = Loop::new().unwrap();
    let (timers, _log) = logging(&lp, 2);
    let (after, repeat) = (Duration::from_millis(1234), Duration::from_millis(77));
    for active in [true, false] {
        if active {
            timers.start(0);
            timers.start(1);
        }
        timers.restart(0, after, repeat);
        timers.stop(1);
        timers.set(1, after, repeat);
        timers.start(1);
        assert!(timers.is_active(0), "active before: {active}");
        assert_eq!(timers.remaining(0), timers.remaining(1), "active before: {active}");
        assert_eq!(timers.repeat(0), repeat, "the repeat, not the delay, is left for the next firing");
        timers.stop(0);
        timers.stop(1);
    }
}

#[test]
fn restart_with_a_zero_delay_fires_at_the_next_iteration() {
    // `ev_timer_again` would stop a timer moved with a zero delay.
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 1);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.restart(0, Duration::ZERO, Duration::ZERO);
    assert!(timers.is_active(0));
    lp.run();
    timers.restart(0, Duration::ZERO, Duration::ZERO);
    lp.run();
    assert_eq!(indices(&log), [0, 0]);
}

#[test]
fn many_restarted_timers_fire_in_the_order_of_their_last_delays() {
    // Random moves, starts and stops keep libev's heap whole (see the
    // test of the same name in timer.rs).
    let lp = Loop::new().unwrap();
    let n = 300;
    let (timers, log) = logging(&lp, n);
    let mut delay: Vec<Duration> = (0..n).map(|i| HOUR + Duration::from_micros(i as u64)).collect();
    for (i, d) in delay.iter().enumerate() {
        timers.set(i, *d, Duration::ZERO);
    }
    let mut active = vec![false; n];
    let mut rng = util::Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5_000 {
        let i = rng.below(n as u64) as usize;
        match rng.below(8) {
            0 => {
                timers.stop(i);
                active[i] = false;
            }
            1 => {
                timers.start(i);
                active[i] = true;
            }
            _ => {
                let d = MS * (1 + rng.below(30) as u32) + Duration::from_micros(i as u64);
                timers.restart(i, d, Duration::ZERO);
                (delay[i], active[i]) = (d, true);
            }
        }
    }
    for i in 0..n {
        assert_eq!(timers.is_active(i), active[i], "timer {i}");
        if delay[i] >= HOUR {
            timers.stop(i);
            active[i] = false;
        }
    }
    let mut expected: Vec<(Duration, usize)> = (0..n).filter(|&i| active[i]).map(|i| (delay[i], i)).collect();
    expected.sort();
    assert!(expected.len() > n / 2, "most timers were moved: {}", expected.len());
    lp.run();
    assert_eq!(indices(&log), expected.into_iter().map(|(_, i)| i).collect::<Vec<_>>());
}

#[test]
fn restart_discards_a_pending_event() {
    // As stop, set, start would: unlike `set`, which keeps it.
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 2);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.feed_event(0, Events::CUSTOM);
    timers.restart(0, MS, Duration::ZERO);
    assert!(!timers.is_pending(0) && timers.is_active(0));
    lp.run();
    assert_eq!(*log.borrow(), [(0, Events::TIMER)]);
}

#[test]
fn restart_discards_a_deferred_event() {
    let lp = Loop::new().unwrap();
    let log: Rc<RefCell<Vec<usize>>> = Rc::default();
    let l = log.clone();
    let timers = TimerArray::new(&lp, 2, move |t, i, _| {
        l.borrow_mut().push(i);
        if i == 0 {
            t.restart(1, Duration::ZERO, Duration::ZERO);
            t.loop_handle().run_once(); // 1 fires and is deferred
            assert!(t.is_pending(1));
            t.restart(1, HOUR, Duration::ZERO);
            assert!(!t.is_pending(1), "restart cancelled the deferred event");
            assert!(t.is_active(1));
            t.stop(1);
        }
    });
    timers.start(0);
    lp.run();
    assert_eq!(*log.borrow(), [0]);
}

#[test]
fn restart_keeps_an_unreferenced_timer_unreferenced() {
    let lp = Loop::new().unwrap();
    let (timers, _) = logging(&lp, 2);
    timers.set_keeps_loop_alive(false);
    timers.restart(0, HOUR, Duration::ZERO);
    timers.restart(0, HOUR * 2, Duration::ZERO);
    timers.restart(1, HOUR, HOUR);
    assert!(timers.is_active(0) && timers.is_active(1));
    assert!(!lp.run_nowait(), "restarted unreferenced timers do not keep the loop");
    timers.set_keeps_loop_alive(true);
    assert!(lp.run_nowait(), "referenced again, they do");
    timers.set_keeps_loop_alive(false);
    timers.stop(0);
    timers.stop(1);
    timers.set_keeps_loop_alive(true);
    assert!(!lp.run_nowait(), "the counts stayed balanced");
}

#[test]
fn again_remaining_and_set_repeat() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 2);
    assert_eq!(timers.remaining(0), Duration::ZERO, "inactive");
    timers.set(0, Duration::ZERO, HOUR);
    timers.again(0);
    assert!(timers.is_active(0), "again starts a repeating timer");
    let left = timers.remaining(0);
    assert!(left > HOUR - Duration::from_secs(1) && left <= HOUR, "{left:?}");
    timers.set_repeat(0, Duration::ZERO);
    timers.again(0);
    assert!(!timers.is_active(0), "again stops a non-repeating timer");
    timers.set(1, Duration::ZERO, MS);
    timers.again(1);
    let t = &timers;
    util::run_until(&lp, "repeating timer fired twice", || {
        let n = log.borrow().len();
        if n == 2 {
            t.stop(1);
        }
        n >= 2
    });
    assert_eq!(indices(&log), [1, 1]);
}

#[test]
fn feed_event_and_clear_pending_work_on_stopped_timers() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 3);
    timers.feed_event(2, Events::CUSTOM);
    assert!(timers.is_pending(2));
    timers.feed_event(1, Events::CUSTOM);
    assert_eq!(timers.clear_pending(1), Events::CUSTOM);
    assert!(!timers.is_pending(1));
    lp.run();
    assert_eq!(*log.borrow(), [(2, Events::CUSTOM)]);
}

#[test]
fn set_keeps_a_pending_event() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 1);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.feed_event(0, Events::CUSTOM);
    timers.set(0, HOUR * 2, Duration::ZERO);
    assert!(timers.is_pending(0) && timers.is_active(0));
    timers.set_keeps_loop_alive(false);
    lp.run();
    assert_eq!(*log.borrow(), [(0, Events::CUSTOM)]);
}

#[test]
#[should_panic(expected = "timer index 3 out of range for a TimerArray of length 3")]
fn an_index_out_of_range_panics() {
    let lp = Loop::new().unwrap();
    let (timers, _) = logging(&lp, 3);
    timers.start(3);
}

#[test]
fn set_start_stop_and_restart_check_the_index_whatever_the_flags() {
    let lp = Loop::new().unwrap();
    for len in [0, 3] {
        let (timers, _) = logging(&lp, len);
        for keep in [true, false] {
            timers.set_keeps_loop_alive(keep);
            for i in [len, len + 1, usize::MAX] {
                let ms = Duration::from_millis(1);
                assert!(catch_unwind(AssertUnwindSafe(|| timers.set(i, ms, ms))).is_err());
                assert!(catch_unwind(AssertUnwindSafe(|| timers.start(i))).is_err());
                assert!(catch_unwind(AssertUnwindSafe(|| timers.stop(i))).is_err());
                assert!(catch_unwind(AssertUnwindSafe(|| timers.restart(i, ms, ms))).is_err());
            }
        }
        assert_eq!((0..len).filter(|&i| timers.is_active(i)).count(), 0);
    }
    assert!(!lp.run());
}

#[test]
fn an_empty_array_is_fine() {
    let lp = Loop::new().unwrap();
    let (timers, _) = logging(&lp, 0);
    assert!(timers.is_empty());
    assert!(catch_unwind(AssertUnwindSafe(|| timers.stop(0))).is_err());
    timers.set_keeps_loop_alive(false);
    assert!(!lp.run());
}

#[test]
fn unreferenced_timers_do_not_keep_run_alive_and_counts_stay_balanced() {
    let lp = Loop::new().unwrap();
    let (timers, log) = logging(&lp, 3);
    timers.set(0, HOUR, Duration::ZERO);
    timers.start(0);
    timers.set_keeps_loop_alive(false);
    assert!(!timers.keeps_loop_alive());
    // Started while unreferenced: a one-shot timer that libev stops itself.
    timers.set(1, MS, Duration::ZERO);
    timers.start(1);
    // A referenced timer keeps the loop until after the one-shot fired.
    util::assert_run_waits_for_a_referenced_timer(&lp);
    assert_eq!(indices(&log), [1]);
    // Had a count leaked either way, `run` would return early above or
    // never return here.
    assert!(!lp.run(), "nothing keeps the loop: the unreferenced timer 0 does not");
    // Referenced again, timer 0 keeps the loop: run_nowait says so.
    timers.set_keeps_loop_alive(true);
    assert!(lp.run_nowait());
    timers.set_keeps_loop_alive(false);
    timers.stop(0);
    timers.set_keeps_loop_alive(true);
    assert!(!lp.run_nowait(), "stopping returned the count");
    // again() and set() on an unreferenced active timer keep it unreferenced.
    timers.set_keeps_loop_alive(false);
    timers.set(2, Duration::ZERO, HOUR);
    timers.again(2);
    timers.set(2, HOUR, HOUR);
    assert!(timers.is_active(2));
    assert!(!lp.run_nowait());
    drop(timers);
    assert!(!lp.run_nowait(), "dropping returned every count");
}

#[test]
fn dropping_the_array_stops_its_timers_and_drops_the_closure() {
    let lp = Loop::new().unwrap();
    let token = Rc::new(());
    let t = token.clone();
    let timers = TimerArray::new(&lp, 2, move |_, _, _| {
        let _ = &t;
        panic!("never fires");
    });
    timers.set(0, MS, Duration::ZERO);
    timers.start(0);
    timers.feed_event(1, Events::CUSTOM);
    drop(timers);
    assert_eq!(Rc::strong_count(&token), 1, "closure dropped");
    assert!(!lp.run(), "no timer left active or pending");
}

#[test]
fn the_array_keeps_its_loop_alive() {
    let n = Counter::new();
    let c = n.clone();
    let timers = {
        let lp = Loop::new().unwrap();
        TimerArray::new(&lp, 1, move |_, _, _| c.bump())
    };
    timers.start(0);
    timers.loop_handle().run();
    assert_eq!(n.get(), 1);
}

#[test]
fn callback_drops_the_array_it_belongs_to() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<TimerArray>>> = Rc::default();
    let s = slot.clone();
    let calls = Counter::new();
    let c = calls.clone();
    let timers = TimerArray::new(&lp, 2, move |t, i, _| {
        c.bump();
        assert_eq!(i, 0);
        drop(s.borrow_mut().take()); // the owner goes; the view still works
        assert!(!t.is_active(1), "dropping the owner stopped the others");
        t.start(1); // restarted through the view: stopped again when freed
    });
    timers.start(0); // zero delay: fires first
    timers.set(1, MS, Duration::ZERO);
    timers.start(1);
    *slot.borrow_mut() = Some(timers);
    lp.run();
    assert_eq!(calls.get(), 1);
}

#[test]
fn nested_run_defers_other_timers_and_never_reenters_the_closure() {
    let lp = Loop::new().unwrap();
    let depth = Rc::new(Cell::new(0));
    let log: Rc<RefCell<Vec<&str>>> = Rc::default();
    let (d, l) = (depth.clone(), log.clone());
    let timers = TimerArray::new(&lp, 3, move |t, i, _| {
        assert_eq!(d.get(), 0, "closure re-entered");
        d.set(1);
        match i {
            0 => {
                l.borrow_mut().push("0 enter");
                t.start(1);
                t.start(2);
                let lp = t.loop_handle();
                while t.is_active(1) || t.is_active(2) {
                    lp.run_once(); // 1 and 2 fire here and are deferred
                }
                assert!(t.is_pending(1) && t.is_pending(2));
                t.stop(2); // discards 2's deferred event
                l.borrow_mut().push("0 leave");
            }
            1 => l.borrow_mut().push("1"),
            _ => l.borrow_mut().push("2"),
        }
        d.set(0);
    });
    timers.set(1, MS, Duration::ZERO);
    timers.set(2, MS * 2, Duration::ZERO);
    timers.start(0);
    lp.run();
    assert_eq!(*log.borrow(), ["0 enter", "0 leave", "1"]);
}

#[test]
fn clear_pending_returns_deferred_events() {
    let lp = Loop::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let timers = TimerArray::new(&lp, 2, move |t, i, ev| {
        l.borrow_mut().push((i, ev));
        if i == 0 {
            t.feed_event(1, Events::CUSTOM);
            t.loop_handle().run_nowait(); // 1 arrives here and is deferred
            assert_eq!(t.clear_pending(1), Events::CUSTOM);
            t.feed_event(1, Events::TIMER);
            t.loop_handle().run_nowait();
        }
    });
    timers.start(0);
    lp.run();
    assert_eq!(*log.borrow(), [(0, Events::TIMER), (1, Events::TIMER)]);
}

#[test]
fn a_panic_in_the_callback_comes_out_of_run_or_goes_to_the_handler() {
    let lp = Loop::new().unwrap();
    let timers = TimerArray::new(&lp, 2, |_, i, _| panic!("timer {i}"));
    timers.start(1);
    let err = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<String>().map(String::as_str), Some("timer 1"));

    let caught = Counter::new();
    let c = caught.clone();
    lp.set_error_handler(move |_| c.bump());
    timers.start(0);
    timers.start(1);
    lp.run();
    assert_eq!(caught.get(), 2);
}

#[test]
fn many_timers_fire_in_order() {
    let lp = Loop::new().unwrap();
    let n = 10_000;
    let last = Rc::new(Cell::new(0.0f64));
    let count = Counter::new();
    let (l, c, lp2) = (last.clone(), count.clone(), lp.clone());
    let timers = TimerArray::new(&lp, n, move |_, _, _| {
        assert!(lp2.now() >= l.get(), "fired out of order");
        l.set(lp2.now());
        c.bump();
    });
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        timers.set(i, Duration::from_micros(x % 20_000), Duration::ZERO);
        timers.start(i);
    }
    lp.run();
    assert_eq!(count.get() as usize, n);
    assert!(format!("{timers:?}").contains("active: 0"));
}

#[test]
fn clearing_or_setting_a_fired_unreferenced_timer_keeps_counts_balanced() {
    // Both one-shots fire in one iteration, so libev stops both, and the
    // first callback cancels the other's event (or changes the timer while
    // the event is pending): the other's `ev_unref` must still be paid
    // back, or `run` returns while `keeper` is active.
    for clear in [true, false] {
        let lp = Loop::new().unwrap();
        let calls = Counter::new();
        let c = calls.clone();
        let timers = TimerArray::new(&lp, 2, move |t, i, _| {
            c.bump();
            if c.get() == 1 {
                if clear {
                    t.clear_pending(1 - i);
                } else {
                    t.set(1 - i, HOUR, Duration::ZERO); // keeps the event
                }
            }
        });
        timers.set_keeps_loop_alive(false);
        for i in 0..2 {
            timers.set(i, MS, Duration::ZERO);
            timers.start(i);
        }
        util::assert_run_waits_for_a_referenced_timer(&lp);
        assert_eq!(calls.get(), if clear { 1 } else { 2 });
    }
}

#[test]
fn again_discards_a_deferred_event() {
    // libev's ev_timer_again clears a pending event; a deferred one counts
    // as pending, so the inactivity-timeout idiom must not see it later.
    let lp = Loop::new().unwrap();
    let (log, l) = {
        let log: Rc<RefCell<Vec<usize>>> = Rc::default();
        (log.clone(), log)
    };
    let timers = TimerArray::new(&lp, 2, move |t, i, _| {
        l.borrow_mut().push(i);
        if i == 0 {
            t.set(1, Duration::ZERO, HOUR);
            t.start(1);
            t.loop_handle().run_once(); // 1 fires and is deferred
            assert!(t.is_pending(1));
            t.again(1);
            assert!(!t.is_pending(1), "again cancelled the deferred event");
            t.stop(1);
        }
    });
    timers.start(0);
    lp.run();
    assert_eq!(*log.borrow(), [0]);
}

#[test]
fn events_deferred_many_times_are_delivered_once_merged() {
    let lp = Loop::new().unwrap();
    let log: Log = Rc::default();
    let l = log.clone();
    let timers = TimerArray::new(&lp, 2, move |t, i, ev| {
        l.borrow_mut().push((i, ev));
        if i == 0 {
            t.set(1, Duration::ZERO, Duration::from_micros(1));
            t.start(1);
            for _ in 0..200 {
                t.feed_event(1, Events::CUSTOM);
                t.loop_handle().run_nowait();
            }
            t.stop(1);
            t.feed_event(1, Events::CUSTOM);
            t.loop_handle().run_nowait(); // deferred again after the stop
        }
    });
    timers.start(0);
    lp.run();
    assert_eq!(*log.borrow(), [(0, Events::TIMER), (1, Events::CUSTOM)]);
}

#[test]
fn repeat_and_remaining_saturate_instead_of_panicking() {
    let lp = Loop::new().unwrap();
    let (timers, _) = logging(&lp, 1);
    timers.set(0, Duration::MAX, Duration::MAX);
    assert_eq!(timers.repeat(0), Duration::MAX);
    timers.start(0);
    assert!(timers.remaining(0) > Duration::from_secs(1 << 60), "far away, not overdue");
    timers.set_repeat(0, Duration::from_secs(5));
    assert_eq!(timers.repeat(0), Duration::from_secs(5));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
