//! Crossing threads: `green::hub_handle` (gevent's
//! `run_callback_threadsafe`) and `green::oneshot` (gevent's
//! `ThreadResult`: a greenlet waits for another thread's result without
//! blocking its hub).

use libev::green::{self, GreenletError};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc::{RecvError, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

#[test]
fn a_greenlet_waits_for_another_threads_value_without_blocking_its_hub() {
    let (tx, rx) = green::oneshot();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..10 {
            t.set(t.get() + 1);
            green::sleep(Duration::from_millis(1));
        }
    });
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        tx.send(String::from("from a thread"))
    });
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let got = green::spawn(move || rx.recv()).join().unwrap();
    assert_eq!(got.as_deref(), Ok("from a thread"));
    assert!(ticks.get() > 0, "the hub ran other greenlets meanwhile");
    assert!(sender.join().unwrap());
    ticker.join().unwrap();
}

#[test]
fn the_root_can_wait_alone() {
    let (tx, rx) = green::oneshot();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        tx.send(7)
    });
    // Nothing else is active on this hub: still no LoopExit.
    assert_eq!(rx.recv(), Ok(7));
}

#[test]
fn a_dropped_sender_disconnects() {
    let (tx, rx) = green::oneshot::<u32>();
    std::thread::spawn(move || drop(tx)).join().unwrap();
    assert_eq!(rx.recv(), Err(RecvError));
    let (tx, rx) = green::oneshot::<u32>();
    drop(tx);
    // The disconnection arrives through the hub: let it run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.try_recv() == Err(TryRecvError::Empty) {
        assert!(Instant::now() < deadline, "the disconnection never arrived");
        green::sleep(Duration::from_millis(1));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn recv_timeout_times_out_and_a_late_value_still_arrives() {
    let (tx, rx) = green::oneshot();
    let start = Instant::now();
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    assert!(start.elapsed() >= Duration::from_millis(9));
    std::thread::spawn(move || tx.send(1u8)).join().unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
}

#[test]
fn a_value_for_a_dropped_receiver_is_dropped_on_its_thread() {
    struct Flag(std::sync::Arc<std::sync::atomic::AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = green::oneshot();
    drop(rx);
    let d = dropped.clone();
    assert!(std::thread::spawn(move || tx.send(Flag(d))).join().unwrap());
    // The value arrives through the hub: let it run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the value was never dropped");
        green::sleep(Duration::from_millis(1));
    }
}

#[test]
fn run_callback_runs_on_the_hubs_thread() {
    let handle = green::hub_handle();
    let me = std::thread::current().id();
    let (tx, rx) = green::oneshot();
    std::thread::spawn(move || {
        assert!(handle.run_callback(move || {
            assert_eq!(std::thread::current().id(), me);
            // A hub callback may spawn greenlets.
            green::spawn(move || tx.send("spawned from a callback"));
        }));
    });
    assert_eq!(rx.recv(), Ok("spawned from a callback"));
}

#[test]
fn spawn_on_another_hub_reports_panics_and_the_hubs_end() {
    // A second OS thread with its own hub, serving until told to stop.
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = green::oneshot::<()>();
    let stop_tx = std::sync::Mutex::new(Some(stop_tx));
    let other = std::thread::spawn(move || {
        let (tx, rx) = green::oneshot::<()>();
        handle_tx.send((green::hub_handle(), tx)).unwrap();
        let _ = rx.recv();
    });
    let (handle, stop) = handle_rx.recv().unwrap();
    drop(stop_tx);
    drop(stop_rx);
    let r = handle.spawn(|| 20 + 22).recv().unwrap();
    assert_eq!(r.unwrap(), 42);
    let r = handle.spawn(|| -> u8 { panic!("on the other hub") }).recv().unwrap();
    assert!(matches!(r, Err(GreenletError::Panicked(_))));
    assert!(handle.is_connected());
    assert!(stop.send(()));
    other.join().unwrap();
    assert!(!handle.is_connected());
    assert!(!handle.run_callback(|| {}));
    assert_eq!(handle.spawn(|| 1).recv().map(|r| r.ok()), Err(RecvError));
}

/// 100,000 round trips; `LIBEV_BOUNCES` sets another count (the memory
/// checkers' jobs, which serialise threads, run fewer).
#[test]
fn work_bounces_between_two_hubs_100_000_times() {
    let bounces: u64 = std::env::var("LIBEV_BOUNCES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let (tx, rx) = green::oneshot::<()>();
        handle_tx.send((green::hub_handle(), tx)).unwrap();
        let _ = rx.recv();
    });
    let (handle, stop) = handle_rx.recv().unwrap();
    // Meanwhile this hub stays responsive.
    let ticks = Rc::new(Cell::new(0u64));
    let t = ticks.clone();
    let ticker = green::spawn(move || {
        loop {
            t.set(t.get() + 1);
            green::sleep(Duration::from_millis(1));
        }
    });
    let start = Instant::now();
    let mut x = 0u64;
    for _ in 0..bounces {
        x = handle.spawn(move || x + 1).recv().unwrap().unwrap();
    }
    let took = start.elapsed();
    assert_eq!(x, bounces);
    assert!(ticks.get() > 0, "the caller's hub ran its other greenlets");
    eprintln!("{bounces} cross-hub round trips in {took:?} ({:?} each)", took / bounces.max(1) as u32);
    ticker.kill();
    assert!(stop.send(()));
    other.join().unwrap();
}

#[test]
fn handles_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<green::HubHandle>();
    assert_send_sync::<green::OneshotSender<String>>();
}
