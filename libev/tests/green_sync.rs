//! libev::green::sync: Event, AsyncResult, Queue, Channel, Semaphore and
//! Mutex: ordering, fairness, timeouts, interruption, exactly-once
//! delivery. Tests that mirror a case of gevent's src/gevent/tests/
//! test__event.py or lock_tests.py name it in a comment (the queues have
//! green_queue.rs, the locks green_lock.rs). Each test runs on its own
//! thread, so each has its own hub.

mod sync_util;

use libev::green::sync::{AsyncResult, Channel, Event, Mutex, Queue, ReleaseError, Semaphore};
use libev::green::{self, GreenletError};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use sync_util::*;

// ---- Event ----

#[test]
fn event_set_wakes_every_waiter_in_order_and_stays_set() {
    let ev = Event::new();
    let order: Log<u32> = log();
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (ev, order) = (ev.clone(), order.clone());
            green::spawn(move || {
                ev.wait();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    settle();
    assert!(order.borrow().is_empty());
    assert!(!ev.is_set());
    ev.set();
    // Cleared again before the waiters run: they were notified, so they
    // still return (no lost wake-up).
    ev.clear();
    for r in green::joinall(gs) {
        r.unwrap();
    }
    assert_eq!(*order.borrow(), [0, 1, 2, 3]);
    ev.set();
    ev.wait(); // set: returns at once
    assert!(ev.wait_timeout(Duration::ZERO));
}

#[test]
fn event_wait_timeout() {
    let ev = Event::new();
    assert!(!ev.wait_timeout(MS * 5));
    let setter = {
        let ev = ev.clone();
        green::spawn_later(MS * 2, move || ev.set())
    };
    assert!(ev.wait_timeout(Duration::from_secs(30)));
    setter.join().unwrap();
}

#[test]
fn root_waiting_on_an_event_nothing_can_set_gets_loop_exit() {
    let ev = Event::new();
    // A greenlet waiting on the same event cannot help either.
    let other = {
        let ev = ev.clone();
        green::spawn(move || ev.wait())
    };
    let err = catch_unwind(AssertUnwindSafe(|| ev.wait())).unwrap_err();
    let msg = message(err);
    assert!(msg.contains("LoopExit") && msg.contains("Event::wait"), "{msg}");
    // The event and the hub are still usable.
    ev.set();
    other.join().unwrap();
    assert!(ev.wait_timeout(Duration::ZERO));
}

#[test]
fn root_getting_from_an_empty_queue_nobody_fills_gets_loop_exit() {
    let q: Queue<u8> = Queue::new();
    let msg = message(catch_unwind(AssertUnwindSafe(|| q.get())).unwrap_err());
    assert!(msg.contains("LoopExit") && msg.contains("Queue::get"), "{msg}");
    // The failed getter left no trace: a put is queued, not handed to it.
    q.put(1);
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), 1);
}

// ---- gevent's test__event.py and lock_tests.py EventTests ----

#[test]
fn event_and_async_result_timed_waits() {
    // test__event.py TestEventWait, TestAsyncResultWait and
    // TestAsyncResultGet: test_returns_none_after_timeout (and
    // test_raises_timeout_number) and test_outer_timeout_is_not_lost.
    let ev = Event::new();
    assert!(!took_at_least(MS * 10, |t| ev.wait_timeout(t)));
    outer_timeout_is_not_lost(|t| ev.wait_timeout(t));
    let ar: AsyncResult<u8> = AsyncResult::new();
    assert!(!took_at_least(MS * 10, |t| ar.wait_timeout(t)));
    outer_timeout_is_not_lost(|t| ar.wait_timeout(t));
    assert!(took_at_least(MS * 10, |t| ar.get_timeout(t)).is_none());
    outer_timeout_is_not_lost(|t| ar.get_timeout(t).is_none());
}

#[test]
fn a_timeout_interrupts_a_get_before_the_set() {
    // test__event.py TestAsyncResult.test_set and test_set_with_timeout.
    // The setter waits for `go` rather than a delay: under valgrind a 50 ms
    // delay could pass before the timed gets below.
    let ar: AsyncResult<&str> = AsyncResult::new();
    let go = Event::new();
    let setter = {
        let (ar, go) = (ar.clone(), go.clone());
        green::spawn(move || {
            go.wait();
            ar.set("hello event1").unwrap()
        })
    };
    assert!(green::with_timeout(Duration::ZERO, || ar.get()).is_err());
    assert!(green::with_timeout(MS * 5, || ar.get()).is_err(), "nobody sent anything yet");
    go.set();
    assert_eq!(ar.get().unwrap(), "hello event1");
    setter.join().unwrap();
}

#[test]
fn event_set_then_clear_wakes_every_waiter() {
    // test__event.py TestEvent_SetThenClear, TestEvent_SetThenClear100
    // and TestEvent_SetThenClear1000.
    for n in [1, 100, 1000] {
        let e = Event::new();
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let e = e.clone();
                green::spawn(move || e.wait())
            })
            .collect();
        green::sleep(MS);
        e.set();
        e.clear();
        for r in green::joinall(waiters) {
            r.unwrap();
        }
    }
}

#[test]
fn an_event_cleared_after_a_wait_needs_another_set() {
    // test__event.py TestGeventWaitOnEvent.test_set_during_wait (issue
    // 771), with Event::wait_timeout for gevent.wait.
    let ev = Event::new();
    let waiter = {
        let ev = ev.clone();
        green::spawn(move || {
            let setter = {
                let ev = ev.clone();
                green::spawn(move || ev.set())
            };
            ev.wait();
            assert!(ev.is_set());
            setter.join().unwrap();
            ev.clear();
            assert!(!ev.is_set());
            assert!(!ev.wait_timeout(MS * 10));
            assert!(!ev.is_set());
        })
    };
    waiter.join().unwrap();
}

#[test]
fn waiting_on_a_set_event_returns_at_once() {
    // test__event.py TestEventBasics.test_wait_while_notifying, which
    // this crate deliberately does differently (see Event::wait): gevent's
    // wait on a set event still notifying earlier waiters lets them run
    // first (1, 2, 3); here the caller goes on at once (3, 1, 2).
    let event = Event::new();
    let results = log();
    let gs: Vec<_> = [1, 2]
        .into_iter()
        .map(|arg| {
            let (event, results) = (event.clone(), results.clone());
            green::spawn(move || {
                event.wait();
                results.borrow_mut().push(arg);
            })
        })
        .collect();
    settle();
    event.set();
    event.wait();
    results.borrow_mut().push(3);
    green::joinall(gs);
    assert_eq!(*results.borrow(), [3, 1, 2]);
}

#[test]
fn event_is_set() {
    // lock_tests.py EventTests.test_is_set.
    let evt = Event::new();
    assert!(!evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
}

/// lock_tests.py EventTests._check_notify: every waiter is notified, and
/// a second wait on the set event returns at once.
fn check_event_notify(evt: &Event) {
    let results = log();
    let e = evt.clone();
    let gs = spawn_waiters(5, &results, move |_| {
        e.wait();
        let first = e.is_set();
        e.wait();
        (first, e.is_set())
    });
    settle();
    assert!(results.borrow().is_empty());
    evt.set();
    green::joinall(gs);
    assert_eq!(results.borrow().iter().map(|x| x.1).collect::<Vec<_>>(), [(true, true); 5]);
}

#[test]
fn event_notifies_every_waiter() {
    // lock_tests.py EventTests.test_notify: again after a set and clear.
    let evt = Event::new();
    check_event_notify(&evt);
    evt.set();
    evt.clear();
    check_event_notify(&evt);
}

#[test]
fn event_waits_time_out() {
    // lock_tests.py EventTests.test_timeout (20 ms instead of 200): five
    // waiters poll, then wait 20 ms; once the event is set, both succeed.
    let evt = Event::new();
    for set in [false, true] {
        if set {
            evt.set();
        }
        let results = log();
        let e = evt.clone();
        let gs = spawn_waiters(5, &results, move |_| {
            let first = e.wait_timeout(Duration::ZERO);
            let second =
                if set { e.wait_timeout(MS * 20) } else { took_at_least(MS * 20, |t| e.wait_timeout(t)) };
            (first, second)
        });
        green::joinall(gs);
        assert!(results.borrow().iter().all(|x| x.1 == (set, set)), "{:?}", results.borrow());
        assert_eq!(results.borrow().len(), 5);
    }
}

// ---- AsyncResult ----

#[test]
fn async_result_is_set_once_and_read_by_many() {
    let ar: AsyncResult<String> = AsyncResult::new();
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let ar = ar.clone();
            green::spawn(move || ar.get().unwrap())
        })
        .collect();
    settle();
    assert!(!ar.ready());
    ar.set("v".to_owned()).unwrap();
    assert_eq!(ar.set("w".to_owned()), Err("w".to_owned()));
    assert!(ar.set_error(Rc::new(std::fmt::Error)).is_err());
    assert!(ar.ready() && ar.successful());
    for r in green::joinall(readers) {
        assert_eq!(r.unwrap(), "v");
    }
    assert_eq!(ar.take().unwrap().unwrap(), "v");
    assert!(ar.take().is_none());
    assert!(ar.ready(), "still ready after take");
}

#[test]
fn async_result_error_and_timeouts() {
    // test__event.py TestAsyncResult.test_set_exc and
    // test_nonblocking_get (peek is get_nowait).
    let ar: AsyncResult<u8, String> = AsyncResult::new();
    assert_eq!(ar.get_timeout(MS * 2), None);
    assert_eq!(ar.peek(), None);
    let setter = {
        let ar = ar.clone();
        green::spawn(move || ar.set_error("boom".to_owned()).unwrap())
    };
    assert_eq!(ar.get(), Err("boom".to_owned()));
    assert!(!ar.successful());
    setter.join().unwrap();
}

// ---- Queue ----

#[test]
fn queue_is_fifo_and_bounded_puts_block_in_order() {
    let q = Queue::bounded(2);
    assert_eq!(q.capacity(), Some(2));
    q.put(0);
    q.put(1);
    assert!(q.is_full());
    assert_eq!(q.try_put(9), Err(9));
    // Three putters block, in this order.
    let putters: Vec<_> = (2..5)
        .map(|i| {
            let q = q.clone();
            green::spawn(move || q.put(i))
        })
        .collect();
    settle();
    assert_eq!(q.len(), 2);
    let got: Vec<i32> = (0..5).map(|_| q.get()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    for r in green::joinall(putters) {
        r.unwrap();
    }
    assert!(q.is_empty());
    assert_eq!(q.try_get(), None);
    assert_eq!(q.get_timeout(MS), None);
    assert_eq!(q.put_timeout(7, MS), Ok(()));
    assert_eq!(q.get_timeout(MS), Some(7));
}

#[test]
fn queue_getters_are_served_in_arrival_order() {
    let q = Queue::new();
    let got: Log<(u32, u32)> = log();
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (q, got) = (q.clone(), got.clone());
            green::spawn(move || {
                let v = q.get();
                got.borrow_mut().push((i, v));
            })
        })
        .collect();
    settle();
    for v in 10..14 {
        q.put(v);
    }
    green::joinall(gs);
    assert_eq!(*got.borrow(), [(0, 10), (1, 11), (2, 12), (3, 13)]);
}

#[test]
fn queue_put_timeout_gives_the_item_back() {
    let q = Queue::bounded(1);
    q.put("a");
    assert_eq!(q.put_timeout("b", MS * 2), Err("b"));
    assert_eq!(q.len(), 1);
    assert_eq!(q.get(), "a");
}

#[test]
fn bounded_zero_queue_is_a_rendezvous() {
    let q = Queue::bounded(0);
    assert_eq!(q.try_put(1), Err(1));
    let p = {
        let q = q.clone();
        green::spawn(move || q.put(5))
    };
    settle();
    assert!(!p.is_finished(), "put waits for a getter");
    assert_eq!(q.len(), 0);
    assert_eq!(q.get(), 5);
    p.join().unwrap();
}

// ---- Channel ----

#[test]
fn channel_put_waits_for_a_getter() {
    let ch = Channel::new();
    assert_eq!(ch.try_put("0"), Err("0"));
    assert_eq!(ch.try_get(), None);
    let delivered = Rc::new(Cell::new(false));
    let p = {
        let (ch, delivered) = (ch.clone(), delivered.clone());
        green::spawn(move || {
            ch.put("x");
            delivered.set(true);
        })
    };
    settle();
    assert!(!delivered.get());
    assert_eq!(ch.balance(), 1);
    assert_eq!(ch.get(), "x");
    p.join().unwrap();
    assert!(delivered.get());
    // A getter waiting makes try_put succeed.
    let g = {
        let ch = ch.clone();
        green::spawn(move || ch.get())
    };
    settle();
    assert_eq!(ch.balance(), -1);
    assert_eq!(ch.try_put("y"), Ok(()));
    assert_eq!(g.join().unwrap(), "y");
    assert_eq!(ch.put_timeout("z", MS), Err("z"));
    assert_eq!(ch.get_timeout(MS), None);
}

// ---- Semaphore ----

#[test]
fn semaphore_serves_waiters_fifo_and_bounds_release() {
    let sem = Semaphore::new(1);
    let held = sem.acquire();
    assert_eq!(sem.available_permits(), 0);
    let order: Log<u32> = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            green::spawn(move || {
                let _p = sem.acquire();
                order.borrow_mut().push(i);
                green::yield_now();
            })
        })
        .collect();
    settle();
    assert_eq!(sem.waiters(), 3);
    drop(held);
    // A latecomer does not barge in ahead of the waiters.
    assert!(sem.try_acquire().is_none());
    green::joinall(gs);
    assert_eq!(*order.borrow(), [0, 1, 2]);
    assert_eq!(sem.available_permits(), 1);
    assert_eq!(sem.release(), Err(ReleaseError));
    sem.acquire().forget();
    assert_eq!(sem.available_permits(), 0);
    sem.release().unwrap();
    assert_eq!(sem.available_permits(), 1);
    let p = sem.acquire();
    assert!(sem.acquire_timeout(MS * 2).is_none());
    drop(p);
    assert!(sem.acquire_timeout(MS).is_some());
}

// ---- Mutex ----

#[test]
fn mutex_is_fair_and_held_across_blocking_calls() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let guard = m.lock();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let m = m.clone();
            green::spawn(move || {
                let mut g = m.lock();
                g.push(i);
                green::sleep(MS);
                g.push(i);
            })
        })
        .collect();
    settle();
    drop(guard);
    assert!(m.is_locked(), "handed straight to the first waiter");
    assert!(m.try_lock().is_none());
    green::joinall(gs);
    assert_eq!(*m.lock(), [0, 0, 1, 1, 2, 2]);
    assert!(!m.is_locked());
    let g = m.lock();
    assert!(m.lock_timeout(MS).is_none());
    drop(g);
    assert!(m.lock_timeout(MS).is_some());
}

#[test]
fn mutex_holder_killed_releases_the_lock() {
    let m = Rc::new(Mutex::new(0));
    let holder = {
        let m = m.clone();
        green::spawn(move || {
            let mut g = m.lock();
            *g += 1;
            green::sleep(Duration::from_secs(30));
        })
    };
    settle();
    assert!(m.is_locked());
    holder.kill();
    assert!(!m.is_locked());
    assert_eq!(*m.lock(), 1);
    let mut m = Rc::try_unwrap(m).ok().unwrap();
    *m.get_mut() += 1;
    assert_eq!(m.into_inner(), 2);
}

// ---- interruption keeps every primitive consistent ----

#[test]
fn interrupted_queue_getters_leave_no_trace() {
    let q: Queue<u32> = Queue::new();
    let got = log();
    let qq = q.clone();
    let gs = spawn_waiters(4, &got, move |i| {
        if i == 1 {
            // This one times out while waiting.
            green::with_timeout(MS * 2, || qq.get()).unwrap_or(u32::MAX)
        } else {
            qq.get()
        }
    });
    settle();
    wait_until(|| got.borrow().len() == 1); // getter 1 times out
    gs[2].kill(); // getter 2 is killed while waiting
    for v in [100, 101] {
        q.put(v);
    }
    let results = green::joinall(gs);
    assert!(matches!(results[2], Err(GreenletError::Killed)));
    // Items went to the remaining getters in their arrival order.
    assert_eq!(*got.borrow(), [(1, u32::MAX), (0, 100), (3, 101)]);
    assert!(q.is_empty());
}

#[test]
fn interrupted_queue_putters_leave_no_trace() {
    let q = Queue::bounded(1);
    q.put(0);
    let done = log();
    let qq = q.clone();
    let gs = spawn_waiters(4, &done, move |i| qq.put(i + 1));
    settle();
    gs[1].kill();
    let timed_out = {
        let q = q.clone();
        green::spawn(move || green::with_timeout(MS, || q.put(99)))
    };
    assert!(timed_out.join().unwrap().is_err());
    let got: Vec<u32> = (0..4).map(|_| q.get()).collect();
    // The killed putter's item (2) and the timed-out one (99) never arrive.
    assert_eq!(got, [0, 1, 3, 4]);
    assert!(q.is_empty());
    green::joinall(gs);
}

#[test]
fn a_getter_served_just_before_its_kill_keeps_the_item() {
    let q = Queue::new();
    let seen = log();
    let g = {
        let (q, seen) = (q.clone(), seen.clone());
        green::spawn(move || {
            let v: u32 = q.get();
            seen.borrow_mut().push(v);
            green::sleep(Duration::from_secs(30)); // the kill lands here
        })
    };
    settle();
    q.put(7); // served...
    g.kill(); // ...and killed before it runs again
    assert_eq!(*seen.borrow(), [7], "the item handed over is not lost");
    assert!(q.is_empty());
}

#[test]
fn interrupted_channel_waiters_leave_no_trace() {
    let ch = Channel::new();
    let got = log();
    let c = ch.clone();
    let gs = spawn_waiters(3, &got, move |_| c.get());
    settle();
    gs[0].kill();
    ch.put("a");
    ch.put("b");
    green::joinall(gs);
    assert_eq!(*got.borrow(), [(1, "a"), (2, "b")]);
    assert_eq!(ch.balance(), 0);
    let c = ch.clone();
    let putter = green::spawn(move || green::with_timeout(MS, || c.put("lost")));
    assert!(putter.join().unwrap().is_err());
    assert_eq!(ch.balance(), 0);
    assert_eq!(ch.try_get(), None);
}

#[test]
fn interrupted_semaphore_and_mutex_waiters_leave_no_trace() {
    let sem = Semaphore::new(1);
    let held = sem.acquire();
    let order = log();
    let s = sem.clone();
    let gs = spawn_waiters(3, &order, move |_| {
        let _p = s.acquire();
        green::yield_now();
    });
    settle();
    gs[1].kill();
    assert_eq!(sem.waiters(), 2);
    drop(held);
    green::joinall(gs);
    assert_eq!(order.borrow().iter().map(|x| x.0).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(sem.available_permits(), 1, "no permit lost or duplicated");

    let m = Rc::new(Mutex::new(()));
    let held = m.lock();
    let order = log();
    let mm = m.clone();
    let gs = spawn_waiters(3, &order, move |i| {
        if i == 0 {
            green::with_timeout(MS, || drop(mm.lock())).is_ok()
        } else {
            drop(mm.lock());
            true
        }
    });
    wait_until(|| order.borrow().len() == 1); // waiter 0 gives up
    drop(held);
    green::joinall(gs);
    assert_eq!(*order.borrow(), [(0, false), (1, true), (2, true)]);
    assert!(!m.is_locked());
}

// ---- scale and randomized interleavings ----

#[test]
fn a_thousand_producers_and_consumers_deliver_every_item_once() {
    const N: u32 = 1000;
    const PER: u32 = 10;
    let q = Queue::bounded(16);
    let seen = Rc::new(RefCell::new(HashSet::new()));
    let producers: Vec<_> = (0..N)
        .map(|p| {
            let q = q.clone();
            green::spawn(move || {
                for k in 0..PER {
                    q.put(p * PER + k);
                    if k % 3 == 0 {
                        green::yield_now();
                    }
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..N)
        .map(|_| {
            let (q, seen) = (q.clone(), seen.clone());
            green::spawn(move || {
                for _ in 0..PER {
                    let v = q.get();
                    assert!(seen.borrow_mut().insert(v), "item {v} delivered twice");
                }
            })
        })
        .collect();
    for r in green::joinall(producers).into_iter().chain(green::joinall(consumers)) {
        r.unwrap();
    }
    assert_eq!(seen.borrow().len(), (N * PER) as usize);
    assert!(q.is_empty());
}

#[test]
fn interrupted_event_and_async_result_waiters_leave_no_trace() {
    let ev = Event::new();
    let woke = log();
    let e = ev.clone();
    let gs = spawn_waiters(4, &woke, move |i| match i {
        1 => e.wait_timeout(MS),
        2 => green::with_timeout(MS, || e.wait()).is_ok(),
        _ => {
            e.wait();
            true
        }
    });
    settle();
    wait_until(|| woke.borrow().len() == 2); // 1 and 2 give up
    gs[3].kill();
    ev.set();
    let results = green::joinall(gs);
    assert!(matches!(results[3], Err(GreenletError::Killed)));
    assert_eq!(*woke.borrow(), [(1, false), (2, false), (0, true)]);
    assert_eq!(format!("{ev:?}"), "Event { is_set: true, waiters: 0 }");

    let ar: AsyncResult<u8, ()> = AsyncResult::new();
    let got = log();
    let a = ar.clone();
    let gs = spawn_waiters(3, &got, move |i| if i == 0 { a.get_timeout(MS) } else { Some(a.get()) });
    settle();
    wait_until(|| got.borrow().len() == 1); // 0 gives up
    gs[1].kill();
    ar.set(9).unwrap();
    green::joinall(gs);
    assert_eq!(*got.borrow(), [(0, None), (2, Some(Ok(9)))]);
}

/// A `lock_timeout` that times out must not touch the lock (issue 25.1:
/// it built a guard before checking the outcome, and that guard's drop
/// unlocked a mutex another greenlet held, handing out a second `&mut`).
/// The same for every timed acquire that hands out an RAII value.
#[test]
fn timed_out_acquires_leave_the_holders_lock_and_permit_alone() {
    let m = Rc::new(Mutex::new(0u32));
    let release = Event::new();
    let holder = {
        let (m, release) = (m.clone(), release.clone());
        green::spawn(move || {
            let mut g = m.lock();
            *g = 1;
            release.wait();
            // Still ours: nobody else may have been let in meanwhile.
            assert_eq!(*g, 1);
            *g = 2;
        })
    };
    settle();
    assert!(m.lock_timeout(MS * 5).is_none());
    assert!(m.is_locked(), "a timed-out lock_timeout unlocked the holder's mutex");
    assert!(m.try_lock().is_none());
    // A waiter queued behind the holder is served only when it lets go.
    let next = {
        let m = m.clone();
        green::spawn(move || *m.lock())
    };
    settle();
    assert!(m.lock_timeout(MS * 5).is_none());
    release.set();
    holder.join().unwrap();
    assert_eq!(next.join().unwrap(), 2);
    assert!(!m.is_locked());

    let sem = Semaphore::new(1);
    let permit = sem.acquire();
    assert!(sem.acquire_timeout(MS * 5).is_none());
    assert_eq!(sem.available_permits(), 0, "a timed-out acquire gave a permit back");
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
}
