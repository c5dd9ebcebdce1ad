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
