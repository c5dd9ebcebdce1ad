//! `Async` and `AsyncSender`: waking a loop from other threads.

mod util;

use libev::{Async, AsyncSender, Break, Events, Loop, Timer};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;
use util::Counter;

/// Upper bound on every wait; the test fails (never hangs) past it.
const LIMIT: Duration = Duration::from_secs(10);

/// An unreferenced timer that breaks `lp` after `LIMIT` and records that it
/// did; it does not keep `run` alive by itself.
fn safety_timer(lp: &Loop) -> (Timer, Rc<Cell<bool>>) {
    let expired = Rc::new(Cell::new(false));
    let (e, lp2) = (expired.clone(), lp.clone());
    let t = Timer::new(lp, LIMIT, Duration::ZERO, move |_, _| {
        e.set(true);
        lp2.break_loop(Break::All);
    });
    t.set_keeps_loop_alive(false);
    t.start();
    (t, expired)
}

#[test]
fn sender_is_send_sync_and_clone() {
    fn assert<T: Send + Sync + Clone + 'static>() {}
    assert::<AsyncSender>();
}

#[test]
fn send_from_another_thread_wakes_a_blocked_run() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let a = Async::new(&lp, move |a, ev| {
        assert_eq!(ev, Events::ASYNC);
        c.bump();
        a.stop();
    });
    a.start();
    let (_safety, expired) = safety_timer(&lp);
    let sender = a.sender();
    let t = thread::spawn(move || {
        // Give the loop time to block (not needed for correctness).
        thread::sleep(Duration::from_millis(50));
        assert!(sender.send());
    });
    // Blocks: the async watcher is the only referenced active watcher.
    lp.run();
    t.join().unwrap();
    assert!(!expired.get(), "the send did not wake the loop");
    assert_eq!(n.get(), 1);
}

#[test]
fn many_sends_coalesce() {
    const SENDS: usize = 1000;
    let lp = Loop::new().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let n = Counter::new();
    let (c, d) = (n.clone(), done.clone());
    let a = Async::new(&lp, move |a, _| {
        c.bump();
        if d.load(Ordering::SeqCst) {
            a.stop();
        }
    });
    a.start();
    let (_safety, expired) = safety_timer(&lp);
    let sender = a.sender();
    let d = done.clone();
    let t = thread::spawn(move || {
        for i in 0..SENDS {
            if i == SENDS - 1 {
                d.store(true, Ordering::SeqCst);
            }
            assert!(sender.send());
        }
    });
    lp.run();
    t.join().unwrap();
    assert!(!expired.get(), "the last send was not delivered");
    let calls = n.get() as usize;
    assert!((1..=SENDS).contains(&calls), "{calls} callbacks for {SENDS} sends");
}

#[test]
fn sends_before_the_loop_runs_give_one_callback() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let a = Async::new(&lp, move |a, _| {
        c.bump();
        a.stop();
    });
    a.start();
    let s = a.sender();
    for _ in 0..100 {
        assert!(s.send());
    }
    a.send();
    let (_safety, expired) = safety_timer(&lp);
    lp.run();
    assert!(!expired.get());
    assert_eq!(n.get(), 1);
}

#[test]
fn is_sent_until_delivered() {
    let lp = Loop::new().unwrap();
    let seen_sent = Rc::new(Cell::new(None));
    let n = Counter::new();
    let (c, s) = (n.clone(), seen_sent.clone());
    let a = Async::new(&lp, move |a, _| {
        s.set(Some(a.is_sent()));
        c.bump();
        a.stop();
    });
    a.start();
    assert!(!a.is_sent());
    a.sender().send();
    assert!(a.is_sent());
    let (_safety, expired) = safety_timer(&lp);
    lp.run();
    assert!(!expired.get());
    assert_eq!(n.get(), 1);
    assert_eq!(seen_sent.get(), Some(false), "delivered: no longer sent in the callback");
    assert!(!a.is_sent());
}

#[test]
fn send_on_the_loop_thread_works_too() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let a = Async::new(&lp, move |a, _| {
        c.bump();
        if c.get() < 3 {
            a.send(); // from its own callback: another call later
        } else {
            a.stop();
        }
    });
    a.start();
    a.send();
    let (_safety, expired) = safety_timer(&lp);
    lp.run();
    assert!(!expired.get());
    assert_eq!(n.get(), 3);
}

#[test]
fn send_returns_false_once_the_watcher_is_dropped() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_, _| {});
    a.start();
    let sender = a.sender();
    let clone = sender.clone();
    assert!(sender.send());
    drop(a);
    assert!(!sender.send());
    assert!(!clone.send());
    // From another thread as well.
    assert!(!thread::spawn(move || clone.send()).join().unwrap());
    // The loop is fine: the dropped watcher left nothing active.
    assert!(!lp.run());
    drop(lp);
    assert!(!sender.send());
}

#[test]
fn sender_outlives_the_loop_and_the_watcher() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_, _| {});
    a.start();
    let sender = a.sender();
    drop(lp);
    // The watcher holds the loop: sending still works.
    assert!(sender.send());
    assert!(a.is_sent());
    drop(a); // now the loop goes too
    assert!(!sender.send());
    let s2 = sender.clone();
    assert!(!thread::spawn(move || s2.send()).join().unwrap());
}

#[test]
fn send_to_a_stopped_watcher_does_not_run_it() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let a = Async::new(&lp, move |_, _| c.bump());
    // Never started: the send is accepted (the watcher exists) but nothing
    // runs.
    assert!(a.sender().send());
    assert!(!lp.run_nowait());
    assert_eq!(n.get(), 0);
    // Starting afterwards does not deliver that earlier send.
    a.start();
    lp.run_nowait();
    a.stop();
    assert_eq!(n.get(), 0);
}

#[test]
fn hammer_from_four_threads_then_drop_while_sending() {
    const THREADS: usize = 4;
    const SENDS: usize = 10_000;
    let lp = Loop::new().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let n = Counter::new();
    let (c, f, lp2) = (n.clone(), finished.clone(), lp.clone());
    let a = Async::new(&lp, move |_, ev| {
        assert_eq!(ev, Events::ASYNC);
        c.bump();
        if f.load(Ordering::SeqCst) == THREADS {
            lp2.break_loop(Break::One);
        }
    });
    a.start();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (s, stop, finished, refused) = (a.sender(), stop.clone(), finished.clone(), refused.clone());
            thread::spawn(move || {
                let mut delivered = 0usize;
                for _ in 0..SENDS {
                    delivered += s.send() as usize;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                // Keep sending until told to stop: the watcher is dropped
                // meanwhile.
                let mut saw_refusal = false;
                while !stop.load(Ordering::SeqCst) {
                    if !s.send() && !saw_refusal {
                        saw_refusal = true;
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    thread::yield_now();
                }
                delivered
            })
        })
        .collect();
    let (_safety, expired) = safety_timer(&lp);
    // Returns once the callback saw every thread finish its batch (senders
    // go on sending, so the callback keeps coming).
    lp.run();
    assert!(!expired.get(), "the loop never saw all senders finish");
    assert!(n.get() >= 1);
    // Stop and drop while the threads are still sending.
    a.stop();
    let probe = a.sender();
    drop(a);
    assert!(!probe.send());
    // Let every sender notice the watcher is gone (bounded), then stop them.
    let deadline = std::time::Instant::now() + LIMIT;
    while refused.load(Ordering::SeqCst) < THREADS && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        assert_eq!(t.join().unwrap(), SENDS, "every send before the drop reached the live watcher");
    }
    assert_eq!(refused.load(Ordering::SeqCst), THREADS, "every sender saw send() return false");
    assert!(!lp.run(), "nothing left active");
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
