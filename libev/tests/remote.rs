//! `Loop::remote`: queueing callbacks onto a loop from other threads.

mod util;

use libev::{Loop, Timer};
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn callbacks_from_many_threads_all_run_on_the_loops_thread_in_order_per_sender() {
    let lp = Loop::new().unwrap();
    let me = std::thread::current().id();
    let seen = Arc::new(Mutex::new(Vec::new()));
    const THREADS: usize = 4;
    const EACH: usize = 2_000;
    let senders: Vec<_> = (0..THREADS)
        .map(|t| {
            let remote = lp.remote();
            let seen = seen.clone();
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let seen = seen.clone();
                    assert!(remote.run_callback(move || {
                        assert_eq!(std::thread::current().id(), me);
                        seen.lock().unwrap().push((t, i));
                    }));
                }
            })
        })
        .collect();
    // A keeper so `run` waits while the threads send.
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let s2 = seen.clone();
    let keeper = Timer::new(&lp, Duration::ZERO, Duration::from_millis(1), move |t, _| {
        if s2.lock().unwrap().len() == THREADS * EACH {
            d.store(1, Ordering::Relaxed);
            t.stop();
        }
    });
    keeper.start();
    util::run_until(&lp, "every remote callback", || done.load(Ordering::Relaxed) == 1);
    for s in senders {
        s.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    for t in 0..THREADS {
        let mine: Vec<usize> = seen.iter().filter(|(s, _)| *s == t).map(|(_, i)| *i).collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "sender {t}'s callbacks in order");
    }
}

thread_local! {
    /// The loop thread's long timer, which a remote callback stops.
    static LONG: RefCell<Option<Timer>> = const { RefCell::new(None) };
}

#[test]
fn a_remote_does_not_keep_run_going_and_wakes_a_blocked_run() {
    let lp = Loop::new().unwrap();
    let remote = lp.remote();
    assert!(!lp.run(), "nothing active: returns at once despite the remote");
    // A run blocked on an hour-long timer is woken by a remote callback,
    // which stops the timer (reached through the loop thread's TLS).
    let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    t.start();
    LONG.with(|l| *l.borrow_mut() = Some(t));
    let sent = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        remote.run_callback(|| LONG.with(|l| l.borrow().as_ref().unwrap().stop()))
    });
    let start = std::time::Instant::now();
    lp.run();
    assert!(sent.join().unwrap());
    assert!(start.elapsed() < Duration::from_secs(30), "woken, not timed out");
    LONG.with(|l| l.borrow_mut().take());
}

#[test]
fn after_the_loop_is_gone_remotes_refuse() {
    let lp = Loop::new().unwrap();
    let remote = lp.remote();
    assert!(remote.is_connected());
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    assert!(remote.run_callback(move || {
        r.fetch_add(1, Ordering::Relaxed);
    }));
    drop(lp);
    assert!(!remote.is_connected());
    assert_eq!(ran.load(Ordering::Relaxed), 0, "queued as the loop went: dropped unrun");
    let dropped = Arc::new(AtomicUsize::new(0));
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let f = Flag(dropped.clone());
    assert!(!remote.run_callback(move || drop(f)));
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "the refused closure is dropped");
}

#[test]
fn a_panicking_remote_callback_comes_out_of_run() {
    let lp = Loop::new().unwrap();
    let remote = lp.remote();
    std::thread::spawn(move || remote.run_callback(|| panic!("remote"))).join().unwrap();
    let keeper = Timer::new(&lp, Duration::from_millis(50), Duration::ZERO, |_, _| {});
    keeper.start();
    let p = catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(p.downcast_ref::<&str>(), Some(&"remote"));
}

#[test]
fn remotes_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<libev::LoopRemote>();
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
