//! `green::wait` and `green::iwait` over mixed objects, with the cases of
//! gevent's `src/gevent/tests/test__event.py` (`TestWait` with and without
//! a timeout and a count, `test_gevent_wait_twice_when_already_set`) and
//! `test__iwait.py` (`test_noiter`, `test_iwait_partial`,
//! `test_iwait_nogarbage`: a partly consumed iteration leaves no
//! registration behind).

use libev::green::sync::{AsyncResult, Event, LifoQueue, Queue, Semaphore};
use libev::green::{self, GreenletError, Waitable};
use std::cell::Cell;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(2);

/// `TestWait`: five events and five results set one by one; `wait` with a
/// count returns once that many are ready, with a timeout once it passes,
/// and with neither once all are.
#[test]
fn wait_with_count_and_timeout_over_events_and_results() {
    for (count, timeout, expect) in
        [(None, None, 10), (Some(1), None, 1), (Some(2), None, 2), (None, Some(PERIOD * 5), 0)]
    {
        let events: Vec<Event> = (0..5).map(|_| Event::new()).collect();
        let results: Vec<AsyncResult<u32>> = (0..5).map(|_| AsyncResult::new()).collect();
        let (e, r) = (events.clone(), results.clone());
        let sender = green::spawn(move || {
            for (e, r) in e.iter().zip(&r) {
                green::sleep(PERIOD);
                e.set();
                green::sleep(PERIOD);
                r.set(1).unwrap();
            }
        });
        let objects: Vec<&dyn Waitable> = events
            .iter()
            .map(|e| e as &dyn Waitable)
            .chain(results.iter().map(|r| r as &dyn Waitable))
            .collect();
        let ready = green::wait(&objects, timeout, count);
        if expect == 0 {
            // Timed out part way: not all (the sender takes twice as long).
            assert!(ready.len() < 10, "{ready:?}");
            assert!(!sender.is_finished());
        } else {
            assert_eq!(ready.len(), expect, "{count:?}");
        }
        if count.is_some() {
            assert!(!sender.is_finished());
        }
        sender.kill();
    }
}

/// `test_gevent_wait_twice_when_already_set`, and a zero timeout that
/// returns what is ready at once.
#[test]
fn wait_on_ready_objects_returns_at_once() {
    let event = Event::new();
    event.set();
    assert_eq!(green::wait(&[&event], None, None), [0]);
    assert_eq!(green::wait(&[&event], None, None), [0]);
    let unset = Event::new();
    let start = Instant::now();
    assert_eq!(green::wait(&[&unset, &event], Some(Duration::ZERO), None), [1]);
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// Every kind of waitable in one wait, each made ready by another
/// greenlet in turn; nothing is consumed.
#[test]
fn iwait_yields_each_kind_as_it_becomes_ready() {
    let event = Event::new();
    let result: AsyncResult<u32> = AsyncResult::new();
    let queue: Queue<u32> = Queue::new();
    let lifo: LifoQueue<u32> = LifoQueue::new();
    let sem = Semaphore::new(1);
    let held = sem.acquire();
    let (mut a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    // Each step waits until the waiter has seen the one before (`seen`),
    // so the order does not depend on timing.
    let seen: Queue<()> = Queue::new();
    let (e, r, q, l, s) = (event.clone(), result.clone(), queue.clone(), lifo.clone(), seen.clone());
    let greenlet = green::spawn(move || {
        l.put(1);
        s.get();
        q.put(2);
        s.get();
        drop(held);
        s.get();
        r.set(3).unwrap();
        s.get();
        a.write_all(b"x").unwrap();
        s.get();
        e.set();
        s.get();
    });
    let readable = green::readable(&b);
    let objects: [&dyn Waitable; 7] = [&event, &result, &queue, &lifo, &sem, &readable, &greenlet];
    let mut order = Vec::new();
    for i in green::iwait(&objects, Some(Duration::from_secs(30))) {
        order.push(i);
        seen.put(());
    }
    assert_eq!(order, [3, 2, 4, 1, 5, 0, 6]);
    assert_eq!(
        (queue.try_get(), lifo.try_get(), sem.available_permits()),
        (Some(2), Some(1), 1),
        "nothing taken"
    );
    greenlet.join().unwrap();
}

/// `test_noiter` / `test_iwait_partial`: the first ready one comes
/// first, and an iteration may be dropped part way (that it leaves no
/// registration behind, `test_iwait_nogarbage`, is a unit test in
/// `wait_any.rs`); a timed-out iteration ends.
#[test]
fn iwait_partial_and_timed_out_iterations() {
    let (sem1, sem2) = (Semaphore::new(1), Semaphore::new(1));
    let (held1, _held2) = (sem1.acquire(), sem2.acquire());
    let releaser = green::spawn(move || drop(held1));
    let mut it = green::iwait(&[&sem1, &sem2], None);
    assert_eq!(it.next(), Some(0));
    drop(it);
    releaser.join().unwrap();

    let never = Event::new();
    let start = Instant::now();
    assert_eq!(green::iwait(&[&never], Some(PERIOD)).count(), 0);
    assert!(start.elapsed() >= PERIOD);
}

/// A shut-down queue counts as ready (its `get` would not wait), as does a
/// greenlet that failed.
#[test]
fn shutdown_queues_and_failed_greenlets_are_ready() {
    let q: Queue<u32> = Queue::new();
    let q2 = q.clone();
    let failing = green::spawn(|| -> u32 { panic!("fails") });
    green::spawn(move || {
        green::sleep(PERIOD);
        q2.shutdown();
    });
    assert_eq!(green::wait(&[&q, &failing], Some(Duration::from_secs(30)), None), [0, 1]);
    assert!(matches!(failing.join(), Err(GreenletError::Panicked(_))));
}

/// A kill of the waiting greenlet unwinds it out of the wait and leaves
/// no registration: a later `set` does not disturb its joiner.
#[test]
fn a_killed_wait_unregisters() {
    let event = Event::new();
    let woke = Rc::new(Cell::new(false));
    let (e, w) = (event.clone(), woke.clone());
    let waiter = green::spawn(move || {
        green::wait(&[&e], None, None);
        w.set(true);
    });
    green::yield_now();
    waiter.kill();
    assert!(matches!(waiter.join(), Err(GreenletError::Killed)));
    event.set();
    green::sleep(PERIOD);
    assert!(!woke.get());
}

/// A rendezvous (`Channel`, `Queue::bounded(0)`) is ready once a putter
/// waits: its `get` would not.
#[test]
fn rendezvous_queues_are_ready_when_a_putter_waits() {
    let channel: green::sync::Channel<u32> = green::sync::Channel::new();
    let zero: Queue<u32> = Queue::bounded(0);
    let (c, z) = (channel.clone(), zero.clone());
    let putter = green::spawn(move || {
        green::sleep(PERIOD);
        c.put(1);
        z.put(2);
    });
    assert_eq!(green::wait(&[&channel, &zero], Some(Duration::from_secs(30)), Some(1)), [0]);
    assert_eq!(channel.get(), 1);
    assert_eq!(green::wait(&[&zero], Some(Duration::from_secs(30)), None), [0]);
    assert_eq!(zero.get(), 2);
    putter.join().unwrap();
}
