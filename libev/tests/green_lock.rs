//! libev::green::sync's locks: RLock, Condvar (on the green Mutex),
//! Mutex and Semaphore; fairness, reentrancy, and kill and timeout at
//! every point where they wait. Most tests mirror a case of gevent's
//! src/gevent/tests/test__semaphore.py or lock_tests.py (the stdlib's
//! lock tests gevent runs on its own types), named in its comment, with
//! greenlets for threads. Each test runs on its own thread, so each has
//! its own hub.

mod sync_util;

use libev::green::sync::{Condvar, Mutex, RLock, Semaphore};
use libev::green::{self, GreenletError};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use sync_util::*;

/// A shared lock, used through closures run while holding it (so that
/// tests can run on `Mutex` and `RLock` alike).
trait Lock: Clone + 'static {
    fn with<R>(&self, f: impl FnOnce() -> R) -> R;
    fn try_with<R>(&self, f: impl FnOnce() -> R) -> Option<R>;
    fn with_timeout<R>(&self, t: Duration, f: impl FnOnce() -> R) -> Option<R>;
    fn is_locked(&self) -> bool;
}

macro_rules! impl_lock {
    ($t:ty) => {
        impl Lock for Rc<$t> {
            fn with<R>(&self, f: impl FnOnce() -> R) -> R {
                let _g = self.lock();
                f()
            }
            fn try_with<R>(&self, f: impl FnOnce() -> R) -> Option<R> {
                self.try_lock().map(|_g| f())
            }
            fn with_timeout<R>(&self, t: Duration, f: impl FnOnce() -> R) -> Option<R> {
                self.lock_timeout(t).map(|_g| f())
            }
            fn is_locked(&self) -> bool {
                <$t>::is_locked(self)
            }
        }
    };
}

impl_lock!(Mutex<()>);
impl_lock!(RLock<()>);

/// lock_tests.py BaseLockTests.test_try_acquire,
/// test_try_acquire_contended, test_acquire_contended and test_with.
fn lock_basics(lock: impl Lock) {
    assert_eq!(lock.try_with(|| 1), Some(1));
    let finished = log();
    lock.with(|| {
        let l = lock.clone();
        let tried = green::spawn(move || l.try_with(|| ()).is_some());
        assert!(!tried.join().unwrap(), "try_lock took a held lock");
        let l = lock.clone();
        let gs = spawn_waiters(5, &finished, move |_| l.with(|| ()));
        settle();
        assert!(finished.borrow().is_empty());
        gs
    })
    .into_iter()
    .for_each(|g| g.join().unwrap());
    let order: Vec<u32> = finished.borrow().iter().map(|x| x.0).collect();
    assert_eq!(order, [0, 1, 2, 3, 4], "served in arrival order");
    // A panic while holding releases.
    let l = lock.clone();
    assert_eq!(panic_message(move || l.with(|| panic!("TypeError"))), "TypeError");
    assert!(!lock.is_locked());
    assert_eq!(lock.try_with(|| 2), Some(2));
}

#[test]
fn mutex_and_rlock_basics() {
    lock_basics(Rc::new(Mutex::new(())));
    lock_basics(Rc::new(RLock::new(())));
}

/// Waiters that time out or are killed leave no trace: the lock goes to
/// the next waiter, and a timed-out lock_timeout leaves the holder alone.
fn interrupted_lock_waiters(lock: impl Lock, reentrant: bool) {
    let got = log();
    lock.with(|| {
        assert_eq!(lock.with_timeout(MS, || ()).is_some(), reentrant);
        let l = lock.clone();
        let gs = spawn_waiters(4, &got, move |i| match i {
            0 => l.with_timeout(MS, || ()).is_some(),
            1 => green::with_timeout(MS, || l.with(|| ())).is_ok(),
            _ => l.with(|| true),
        });
        wait_until(|| got.borrow().len() == 2);
        got.borrow_mut().sort();
        gs[2].kill();
        assert!(lock.is_locked(), "a waiter that gave up released the holder's lock");
        gs
    })
    .into_iter()
    .for_each(|g| drop(g.join()));
    assert_eq!(*got.borrow(), [(0, false), (1, false), (3, true)]);
    assert!(!lock.is_locked());
}

#[test]
fn interrupted_mutex_and_rlock_waiters_leave_no_trace() {
    interrupted_lock_waiters(Rc::new(Mutex::new(())), false);
    interrupted_lock_waiters(Rc::new(RLock::new(())), true);
}

#[test]
fn mutex_is_not_reentrant() {
    // lock_tests.py LockTests.test_reacquire: a plain lock must be
    // released before its holder can take it again.
    let m = Mutex::new(());
    let _g = m.lock();
    assert!(m.lock_timeout(MS).is_none(), "the holder waits for itself");
}

#[test]
fn rlock_is_reentrant() {
    // lock_tests.py RLockTests.test_reacquire.
    let lock = RLock::new(Cell::new(0));
    let a = lock.lock();
    let b = lock.lock();
    drop(b);
    let c = lock.lock();
    c.set(1);
    drop(c);
    assert!(lock.is_locked());
    drop(a);
    assert!(!lock.is_locked());
    let a = lock.try_lock().unwrap();
    let b = lock.lock_timeout(Duration::ZERO).unwrap();
    assert_eq!(b.get(), 1);
    drop((a, b));
    assert!(!lock.is_locked());
    assert_eq!(lock.into_inner().get(), 1);
}

#[test]
fn rlock_knows_its_holder() {
    // lock_tests.py RLockTests.test__is_owned.
    let lock = Rc::new(RLock::new(()));
    assert!(!lock.is_held_by_current());
    let a = lock.lock();
    assert!(lock.is_held_by_current());
    let b = lock.lock();
    assert!(lock.is_held_by_current());
    let other = {
        let lock = lock.clone();
        green::spawn(move || lock.is_held_by_current())
    };
    assert!(!other.join().unwrap());
    drop(b);
    assert!(lock.is_held_by_current());
    drop(a);
    assert!(!lock.is_held_by_current());
}

#[test]
fn an_rlock_holder_killed_releases_every_hold() {
    let lock = Rc::new(RLock::new(()));
    let holder = {
        let lock = lock.clone();
        green::spawn(move || {
            let _a = lock.lock();
            let _b = lock.lock();
            green::sleep(Duration::from_secs(30));
        })
    };
    settle();
    assert!(lock.is_locked() && !lock.is_held_by_current());
    holder.kill();
    assert!(!lock.is_locked());
    assert!(lock.try_lock().is_some());
}

#[test]
fn an_rlock_waiter_served_just_before_its_kill_holds_then_releases() {
    let lock = Rc::new(RLock::new(()));
    let held = lock.lock();
    let took = log();
    let waiter = {
        let (lock, took) = (lock.clone(), took.clone());
        green::spawn(move || {
            let _g = lock.lock();
            took.borrow_mut().push("took");
            green::sleep(Duration::from_secs(30)); // the kill lands here
        })
    };
    let next = {
        let lock = lock.clone();
        green::spawn(move || {
            let _g = lock.lock();
            lock.is_held_by_current()
        })
    };
    settle();
    drop(held); // handed to the waiter...
    assert!(lock.is_locked());
    waiter.kill(); // ...killed before it ran: it takes it, and lets go
    assert_eq!(*took.borrow(), ["took"]);
    assert!(next.join().unwrap());
    assert!(!lock.is_locked());
}

#[test]
fn an_rlock_guard_dropped_by_another_greenlet_releases() {
    let lock = RLock::new(());
    let guard = lock.lock();
    green::scope(|s| s.spawn(move || drop(guard)).join().unwrap());
    assert!(!lock.is_locked());
    assert_eq!(format!("{lock:?}"), "RLock { value: () }");
}

// ---- Condvar ----

/// lock_tests.py ConditionTests._check_notify: five greenlets wait twice;
/// notify 3, then 5, then all, and check which wait each phase ended.
fn check_notify(m: &Rc<Mutex<u32>>, cv: &Rc<Condvar>) {
    let results1: Log<u32> = log();
    let results2: Log<u32> = log();
    let gs: Vec<_> = (0..5)
        .map(|_| {
            let (m, cv, r1, r2) = (m.clone(), cv.clone(), results1.clone(), results2.clone());
            green::spawn(move || {
                let phase = *cv.wait(m.lock());
                r1.borrow_mut().push(phase);
                let phase = *cv.wait(m.lock());
                r2.borrow_mut().push(phase);
            })
        })
        .collect();
    settle();
    assert!(results1.borrow().is_empty());
    let notify = |n: usize, phase: u32| {
        let mut g = m.lock();
        for _ in 0..n {
            cv.notify_one();
        }
        green::yield_now(); // the notified wait for the lock
        *g = phase;
    };
    notify(3, 1);
    wait_until(|| results1.borrow().len() == 3);
    assert_eq!(*results1.borrow(), [1; 3]);
    assert!(results2.borrow().is_empty());
    notify(5, 2);
    wait_until(|| results1.borrow().len() + results2.borrow().len() == 8);
    assert_eq!(*results1.borrow(), [1, 1, 1, 2, 2]);
    assert_eq!(*results2.borrow(), [2; 3]);
    {
        let mut g = m.lock();
        cv.notify_all();
        green::yield_now();
        *g = 3;
    }
    wait_until(|| results2.borrow().len() == 5);
    assert_eq!(*results1.borrow(), [1, 1, 1, 2, 2]);
    assert_eq!(*results2.borrow(), [2, 2, 2, 3, 3]);
    for r in green::joinall(gs) {
        r.unwrap();
    }
}

#[test]
fn condvar_notifies_in_arrival_order() {
    // lock_tests.py ConditionTests.test_notify: twice, to check the state
    // left behind.
    let (m, cv) = (Rc::new(Mutex::new(0)), Rc::new(Condvar::new()));
    check_notify(&m, &cv);
    check_notify(&m, &cv);
    assert_eq!(format!("{cv:?}"), "Condvar { waiters: 0 }");
}

#[test]
fn condvar_waits_time_out() {
    // lock_tests.py ConditionTests.test_timeout (20 ms instead of 200).
    let (m, cv) = (Rc::new(Mutex::new(())), Rc::new(Condvar::new()));
    let results = log();
    let (mm, c) = (m.clone(), cv.clone());
    let gs = spawn_waiters(5, &results, move |_| {
        let (guard, r) = took_at_least(MS * 20, |t| c.wait_timeout(mm.lock(), t));
        drop(guard);
        r.timed_out()
    });
    green::joinall(gs);
    assert_eq!(results.borrow().len(), 5);
    assert!(results.borrow().iter().all(|x| x.1));
    assert!(!m.is_locked());
    outer_timeout_is_not_lost(|t| drop(cv.wait_timeout(m.lock(), t)));
    assert!(!m.is_locked(), "the interrupted wait did not take the lock back");
}

#[test]
fn condvar_wait_while_and_timeouts() {
    let pair = Rc::new((Mutex::new(0u32), Condvar::new()));
    let (m, cv) = (&pair.0, &pair.1);
    // Never true: times out, with the condition still holding.
    let (g, r) = cv.wait_timeout_while(m.lock(), MS * 5, |n| *n == 0);
    assert!(r.timed_out());
    drop(g);
    // Already false: returns at once, no wait.
    let (g, r) = cv.wait_timeout_while(m.lock(), Duration::ZERO, |n| *n != 0);
    assert!(!r.timed_out());
    drop(g);
    let bumper = {
        let pair = pair.clone();
        green::spawn(move || {
            for _ in 0..5 {
                *pair.0.lock() += 1;
                pair.1.notify_one();
                green::sleep(MS);
            }
        })
    };
    let g = cv.wait_while(m.lock(), |n| *n < 5);
    assert_eq!(*g, 5);
    drop(g);
    bumper.join().unwrap();
}

#[test]
fn interrupted_condvar_waiters_lose_no_notification() {
    let (m, cv) = (Rc::new(Mutex::new(())), Rc::new(Condvar::new()));
    let woke = log();
    let (mm, c) = (m.clone(), cv.clone());
    let gs = spawn_waiters(4, &woke, move |i| match i {
        0 => !c.wait_timeout(mm.lock(), MS).1.timed_out(),
        1 => green::with_timeout(MS, || drop(c.wait(mm.lock()))).is_ok(),
        _ => {
            drop(c.wait(mm.lock()));
            true
        }
    });
    wait_until(|| woke.borrow().len() == 2);
    woke.borrow_mut().sort();
    gs[2].kill();
    assert!(!m.is_locked(), "an interrupted wait left the lock taken");
    cv.notify_one(); // not to anyone who left: to the last waiter
    green::joinall(gs);
    assert_eq!(*woke.borrow(), [(0, false), (1, false), (3, true)]);
}

#[test]
fn a_notification_taken_by_a_waiter_killed_while_relocking_is_passed_on() {
    let (m, cv) = (Rc::new(Mutex::new(Vec::new())), Rc::new(Condvar::new()));
    let waiters: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let (m, cv) = (m.clone(), cv.clone());
            green::spawn(move || cv.wait(m.lock()).push(name))
        })
        .collect();
    settle();
    let mut guard = m.lock();
    cv.notify_one(); // to "a", which then waits for the lock we hold
    waiters[0].kill(); // "a" unwinds while relocking: "b" is notified
    guard.push("main");
    drop(guard);
    let mut results = waiters.into_iter().map(|g| g.join());
    assert!(matches!(results.next(), Some(Err(GreenletError::Killed))));
    results.next().unwrap().unwrap();
    assert_eq!(*m.lock(), ["main", "b"]);
}

// ---- Semaphore ----

#[test]
fn semaphore_acquire_times_out() {
    // test__semaphore.py TestSemaphore.test_acquire_returns_false_after_timeout.
    let s = Semaphore::new(0);
    assert!(took_at_least(MS * 10, |t| s.acquire_timeout(t)).is_none());
    outer_timeout_is_not_lost(|t| s.acquire_timeout(t).is_some());
}

#[test]
fn semaphore_acquire_contended() {
    // lock_tests.py BaseSemaphoreTests.test_acquire_contended: 7 permits,
    // ten greenlets taking two each (kept, then given back by `release`).
    let sem = Semaphore::new(7);
    sem.acquire().forget();
    let phase = Rc::new(Cell::new(0));
    let (results1, results2): (Log<u32>, Log<u32>) = (log(), log());
    let gs: Vec<_> = (0..10)
        .map(|_| {
            let (sem, phase, r1, r2) = (sem.clone(), phase.clone(), results1.clone(), results2.clone());
            green::spawn(move || {
                sem.acquire().forget();
                r1.borrow_mut().push(phase.get());
                sem.acquire().forget();
                r2.borrow_mut().push(phase.get());
            })
        })
        .collect();
    let all = || {
        let mut v = results1.borrow().clone();
        v.extend(results2.borrow().iter());
        v.sort();
        v
    };
    wait_until(|| all().len() == 6);
    assert_eq!(all(), [0; 6]);
    phase.set(1);
    for _ in 0..7 {
        sem.release().unwrap();
    }
    wait_until(|| all().len() == 13);
    assert_eq!(all(), [[0; 6].as_slice(), &[1; 7]].concat());
    phase.set(2);
    for _ in 0..6 {
        sem.release().unwrap();
    }
    wait_until(|| all().len() == 19);
    assert_eq!(all(), [[0; 6].as_slice(), &[1; 7], &[2; 6]].concat());
    assert!(sem.try_acquire().is_none(), "still taken");
    sem.release().unwrap(); // lets the last greenlet finish
    for r in green::joinall(gs) {
        r.unwrap();
    }
}

#[test]
fn semaphore_try_acquire() {
    // lock_tests.py BaseSemaphoreTests.test_try_acquire,
    // test_try_acquire_contended and test_with.
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().unwrap();
    let b = sem.try_acquire().unwrap();
    assert!(sem.try_acquire().is_none());
    drop(a);
    assert!(sem.try_acquire().is_some());
    drop(b);

    let sem = Semaphore::new(4);
    let _held = sem.acquire();
    let results = log();
    let s = sem.clone();
    let gs = spawn_waiters(5, &results, move |_| {
        let (a, b) = (s.try_acquire(), s.try_acquire());
        let got = [a.is_some(), b.is_some()];
        // Kept, as the Python test keeps them.
        a.into_iter().chain(b).for_each(|p| p.forget());
        got
    });
    green::joinall(gs);
    let mut all: Vec<bool> = results.borrow().iter().flat_map(|x| x.1).collect();
    all.sort();
    assert_eq!(all, [[false; 7].as_slice(), &[true; 3]].concat());

    let sem = Semaphore::new(2);
    let s = sem.clone();
    let msg = panic_message(move || {
        let _p = s.acquire();
        assert!(s.try_acquire().is_some());
        let _q = s.acquire();
        assert!(s.try_acquire().is_none());
        panic!("TypeError");
    });
    assert_eq!(msg, "TypeError");
    assert_eq!(sem.available_permits(), 2, "the panic gave the permits back");
}

fn acquire_then_spawn(sem: Semaphore, should_quit: Rc<Cell<bool>>) {
    if should_quit.get() {
        return;
    }
    let permit = sem.acquire();
    permit.forget();
    let s = sem.clone();
    let q = should_quit.clone();
    drop(green::spawn(move || release_then_spawn(s, q)).join());
}

fn release_then_spawn(sem: Semaphore, should_quit: Rc<Cell<bool>>) {
    sem.release().unwrap();
    if should_quit.get() {
        return;
    }
    drop(green::spawn(move || acquire_then_spawn(sem, should_quit)).join());
}

#[test]
fn semaphore_is_fair_or_this_hangs() {
    // test__semaphore.py TestSemaphoreFair.test_fair_or_hangs: with an
    // unfair semaphore the first two greenlets would pass it between
    // them for ever and the third would never get in.
    let sem = Semaphore::new(1);
    let should_quit = Rc::new(Cell::new(false));
    let keep_going1 = {
        let (s, q) = (sem.clone(), should_quit.clone());
        green::spawn(move || acquire_then_spawn(s, q))
    };
    let keep_going2 = {
        let (s, q) = (sem.clone(), should_quit.clone());
        green::spawn(move || acquire_then_spawn(s, q))
    };
    let exiting = {
        let (s, q) = (sem.clone(), should_quit.clone());
        green::spawn(move || {
            s.acquire().forget();
            q.set(true);
        })
    };
    let msg = panic_message(|| {
        for g in [&exiting, &keep_going2, &keep_going1] {
            g.wait(None);
        }
    });
    assert!(msg.contains("LoopExit"), "{msg}");
    assert!(exiting.is_finished());
    assert!(keep_going2.is_finished());
    assert!(!keep_going1.is_finished());
    sem.release().unwrap();
    keep_going1.kill();
    // Let the chain of greenlets it joined wind down (each sees
    // `should_quit` once it gets a permit): none is left parked when the
    // thread exits, where it would be leaked.
    for _ in 0..20 {
        let _ = sem.release();
        green::sleep(Duration::from_millis(1));
    }
}
