//! libev::green::pool: Pool and Group.

use libev::green::pool::{Group, Pool};
use libev::green::sync::Event;
use libev::green::{self, GreenletError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn pool_never_runs_more_than_its_size() {
    let pool = Pool::new(3);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..20)
        .map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            // Blocks here (in the root) whenever three are running.
            pool.spawn(move || {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                if i % 2 == 0 {
                    green::sleep(MS);
                } else {
                    green::yield_now();
                }
                running.set(running.get() - 1);
                i
            })
        })
        .collect();
    assert!(pool.len() <= 3);
    let results: Vec<u32> = green::joinall(gs).into_iter().map(Result::unwrap).collect();
    assert_eq!(results, (0..20).collect::<Vec<_>>());
    assert_eq!(peak.get(), 3);
    assert_eq!(pool.free_count(), 3);
    assert!(pool.is_empty());
}

#[test]
fn pool_slots_come_back_after_panics_and_kills() {
    let pool = Pool::new(2);
    let a = pool.spawn(|| -> () { panic!("boom") });
    let b = pool.spawn(|| green::sleep(Duration::from_secs(30)));
    assert!(matches!(a.join(), Err(GreenletError::Panicked(_))));
    b.kill();
    assert_eq!(pool.free_count(), 2);
    // Killed before it ever ran: its slot comes back too.
    let c = pool.spawn(|| ());
    c.kill();
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn pool_map_keeps_order_and_imap_unordered_yields_as_ready() {
    let pool = Pool::new(4);
    let out = pool.map(
        |ms: u64| {
            green::sleep(MS * ms as u32);
            ms * 10
        },
        [5, 1, 3],
    );
    assert_eq!(out.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [50, 10, 30]);

    // Two slots for four items, ordered by events, not by timers: item 0
    // waits until item 3 has run; 1, 2 and 3 finish at once. So 0 holds
    // its slot throughout, the others take turns in the second one, and
    // results come as they are ready: 1, 2, 3, then 0.
    let pool = Pool::new(2);
    let started: Rc<RefCell<Vec<usize>>> = Rc::default();
    let gate = Event::new();
    let (s, g) = (started.clone(), gate.clone());
    let got: Vec<usize> = pool
        .imap_unordered(
            move |i: usize| {
                s.borrow_mut().push(i);
                match i {
                    0 => g.wait(),
                    3 => g.set(),
                    _ => {}
                }
                i
            },
            0..4,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [1, 2, 3, 0]);
    assert_eq!(*started.borrow(), [0, 1, 2, 3]);
    assert!(pool.imap_unordered(|x: u8| x, []).next().is_none());
}

#[test]
fn pool_kill_and_join() {
    let pool = Pool::new(5);
    let dropped = Rc::new(Cell::new(0));
    struct Count(Rc<Cell<u32>>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let c = Count(dropped.clone());
            pool.spawn(move || {
                let _c = c;
                green::sleep(Duration::from_secs(30));
            })
        })
        .collect();
    green::yield_now();
    assert_eq!(pool.len(), 5);
    assert!(!pool.join_timeout(MS * 2));
    pool.kill();
    assert!(pool.is_empty());
    assert_eq!(dropped.get(), 5, "every stack unwound");
    for r in green::joinall(gs) {
        assert!(matches!(r, Err(GreenletError::Killed)));
    }
    pool.join();
}

#[test]
fn group_joins_and_kills_its_members() {
    let group = Group::new();
    let done = Rc::new(Cell::new(0));
    for ms in [3u32, 1, 2] {
        let done = done.clone();
        group.spawn(move || {
            green::sleep(MS * ms);
            done.set(done.get() + 1);
        });
    }
    let outside = green::spawn(|| green::sleep(MS));
    group.add(&outside);
    assert_eq!(group.len(), 4);
    group.join();
    assert_eq!(done.get(), 3);
    assert!(group.is_empty());
    assert!(outside.is_finished());

    // A member spawns another member while the group is being killed.
    let g2 = group.clone();
    let spawner = group.spawn(move || {
        g2.spawn(|| green::sleep(Duration::from_secs(30)));
        green::sleep(Duration::from_secs(30));
    });
    green::yield_now();
    group.kill();
    assert!(group.is_empty());
    assert!(matches!(spawner.join(), Err(GreenletError::Killed)));
}

#[test]
fn a_member_killing_its_own_group_ends_too() {
    let group = Group::new();
    let other = group.spawn(|| green::sleep(Duration::from_secs(30)));
    let g = group.clone();
    let killer = group.spawn(move || g.kill());
    assert!(matches!(killer.join(), Err(GreenletError::Killed)));
    assert!(matches!(other.join(), Err(GreenletError::Killed)));
    assert!(group.is_empty());
}

/// gevent's `test__pool.py` `TestCoroutinePool`: `test_apply`,
/// `test_apply_raises`, `test_reentrant` (an `apply` from inside a full
/// pool runs inline instead of waiting for ever), `test_apply_async`,
/// `test_multiple_coros`.
#[test]
fn apply_and_apply_async() {
    let pool = Pool::new(2);
    assert_eq!(pool.apply(|| "return value").unwrap(), "return value");
    let one = Pool::new(1);
    assert!(matches!(one.apply(|| -> u32 { panic!("raiser") }), Err(GreenletError::Panicked(_))));
    let p = one.clone();
    assert_eq!(one.apply(move || p.apply(|| 5 + 1).unwrap()).unwrap(), 6);
    let done = Rc::new(green::sync::Event::new());
    let d = done.clone();
    one.apply_async(move || d.set());
    done.wait();

    let results = Rc::new(RefCell::new(Vec::new()));
    let evt = Rc::new(green::sync::Event::new());
    let (r, e) = (results.clone(), evt.clone());
    let consumer = pool.spawn(move || {
        r.borrow_mut().push("cons1");
        e.wait();
        r.borrow_mut().push("cons2");
    });
    let (r, e) = (results.clone(), evt.clone());
    pool.apply_async(move || {
        green::sleep(Duration::from_millis(1));
        r.borrow_mut().push("prod");
        e.set();
    });
    consumer.join().unwrap();
    assert_eq!(*results.borrow(), ["cons1", "prod", "cons2"]);
}

/// gevent's `PoolBasicTests.test_execute_async`: slots are counted as
/// greenlets spawn and end, and `apply_async` on a full pool returns at
/// once (its greenlet waits for a slot).
#[test]
fn free_count_and_apply_async_on_a_full_pool() {
    let p = Pool::new(2);
    assert_eq!(p.free_count(), 2);
    let r = Rc::new(RefCell::new(Vec::new()));
    let r1 = r.clone();
    let first = p.spawn(move || r1.borrow_mut().push(1));
    assert_eq!(p.free_count(), 1);
    first.join().unwrap();
    assert_eq!(*r.borrow(), [1]);
    assert_eq!(p.free_count(), 2, "its slot came back as it ended");
    let gs: Vec<_> = (2..=4)
        .map(|i| {
            let r = r.clone();
            p.apply_async(move || r.borrow_mut().push(i))
        })
        .collect();
    assert_eq!(p.free_count(), 0);
    assert_eq!(*r.borrow(), [1], "nothing ran: apply_async did not wait");
    green::sleep(Duration::from_millis(5));
    let mut got = r.borrow().clone();
    got.sort();
    assert_eq!(got, [1, 2, 3, 4]);
    assert!(gs.iter().all(|g| g.is_finished()));
    assert_eq!(p.free_count(), 2);
}

/// gevent's `test_discard` and `test_add_method`: a discarded greenlet
/// frees its slot at once; `add` of an outside greenlet takes a slot,
/// waiting for one (a timeout cuts that short).
#[test]
fn discard_add_killone_and_exact_free_count() {
    let p = Pool::new(1);
    let first = p.spawn(|| green::sleep(Duration::from_secs(60)));
    assert!(p.discard(&first));
    assert!(!p.discard(&first), "no longer a member");
    assert_eq!((p.len(), p.free_count()), (0, 1));
    first.kill();

    let a = green::spawn(|| green::sleep(Duration::from_secs(60)));
    let b = green::spawn(|| green::sleep(Duration::from_secs(60)));
    p.add(&a);
    assert_eq!((p.free_count(), p.len()), (0, 1));
    assert!(green::with_timeout(Duration::from_millis(10), || p.add(&b)).is_err());
    assert_eq!((p.free_count(), p.len()), (0, 1));
    p.killone(&b); // not a member: untouched
    assert!(!b.is_finished());
    p.killone(&a);
    assert!(a.is_finished());
    assert_eq!((p.free_count(), p.len()), (1, 0), "exact after a kill");
    b.kill();

    // Exact under kills of greenlets that never started, and of ones
    // waiting for a slot in apply_async.
    let p = Pool::new(2);
    let gs: Vec<_> = (0..5).map(|_| p.apply_async(|| green::sleep(Duration::from_secs(60)))).collect();
    assert_eq!(p.free_count(), 0);
    for g in &gs {
        g.kill();
        assert!(p.free_count() <= 2);
    }
    assert_eq!((p.free_count(), p.len()), (2, 0));
}

/// gevent's `TestPool0.test_wait_full` (a full pool: `wait_available`
/// times out) and a slot freeing up while it waits.
#[test]
fn wait_available_waits_for_a_slot() {
    let p = Pool::new(1);
    assert!(p.wait_available(Some(Duration::ZERO)));
    let g = p.spawn(|| green::sleep(Duration::from_millis(5)));
    assert!(!p.wait_available(Some(Duration::from_millis(1))));
    assert!(p.wait_available(None));
    assert!(g.is_finished());
}

/// gevent's `TestPool.test_imap_list_small`, `test_imap_random` (results
/// in item order whatever the completion order), `test_empty_imap`, and
/// `test_imap_final_sleep` (an iterator that blocks between items).
#[test]
fn imap_keeps_item_order() {
    let pool = Pool::new(3);
    let squares: Vec<u64> = pool.imap(|x: u64| x * x, 0..10).map(Result::unwrap).collect();
    assert_eq!(squares, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let delays = [7u64, 1, 5, 2, 6, 3];
    let got: Vec<u64> = pool
        .imap(
            |ms: u64| {
                green::sleep(Duration::from_millis(ms));
                ms
            },
            delays,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, delays);
    assert_eq!(pool.imap(|x: u64| x, []).count(), 0);
    let final_sleep = (0..3u64).inspect(|_| green::sleep(Duration::from_millis(1)));
    let got: Vec<u64> = pool.imap(|x: u64| x * x, final_sleep).map(Result::unwrap).collect();
    assert_eq!(got, [0, 1, 4]);
    // A failure comes in its place.
    let got: Vec<bool> = pool.imap(|x: u64| assert!(x != 1), 0..3).map(|r| r.is_ok()).collect();
    assert_eq!(got, [true, false, true]);
}

/// A pool's slot is free by the time anyone waiting for the greenlet
/// wakes, even when a link of the greenlet blocks.
#[test]
fn the_slot_is_free_when_joiners_wake_though_a_link_blocks() {
    let p = Pool::new(1);
    let g = green::spawn(|| ());
    g.link(|| green::sleep(Duration::from_millis(20)));
    p.add(&g);
    assert_eq!(p.free_count(), 0);
    p.join();
    assert_eq!(p.free_count(), 1, "freed before the blocking link ran");
    green::sleep(Duration::from_millis(40)); // the link ends (none left parked)
}
