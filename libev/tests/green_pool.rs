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
