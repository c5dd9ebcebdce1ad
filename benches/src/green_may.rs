//! `may`'s side of `green-bench` (`green-bench --peer may`): the same
//! workloads on `may`'s stackful coroutines, on one worker thread (as a
//! hub is one thread), run in a process of their own.
//!
//! `may::coroutine::spawn` is `unsafe` because a coroutine may move
//! between worker threads, so thread-local storage held across a yield
//! would be another thread's; with one worker no coroutine moves, and the
//! closures here touch no thread-local storage.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Configures `may` for one worker thread; before any other call.
pub fn init() {
    may::config().set_workers(1);
}

/// Two coroutines calling `yield_now` in turn; ns per yield.
pub fn yield_roundtrip(n: u64) -> f64 {
    let t0 = Instant::now();
    let worker = move || (0..n).for_each(|_| may::coroutine::yield_now());
    // SAFETY: see the module docs: one worker, no thread-local storage.
    let (a, b) = unsafe { (may::coroutine::spawn(worker), may::coroutine::spawn(worker)) };
    a.join().expect("may yield");
    b.join().expect("may yield");
    t0.elapsed().as_nanos() as f64 / (2 * n) as f64
}

/// Spawn and join a no-op coroutine, from a coroutine; ns each.
pub fn spawn_join(n: u64) -> f64 {
    // SAFETY: as above.
    let h = unsafe {
        may::coroutine::spawn(move || {
            may::coroutine::spawn(|| ()).join().expect("warm-up");
            let t0 = Instant::now();
            for _ in 0..n {
                may::coroutine::spawn(|| ()).join().expect("no-op coroutine");
            }
            t0.elapsed().as_nanos() as f64 / n as f64
        })
    };
    h.join().expect("may spawn_join")
}

/// One item bounced between two coroutines over two `may::sync::mpsc`
/// channels; ns per round trip.
pub fn queue(n: u64) -> f64 {
    let (ping_tx, ping_rx) = may::sync::mpsc::channel::<u64>();
    let (pong_tx, pong_rx) = may::sync::mpsc::channel::<u64>();
    // SAFETY: as above.
    let echo = unsafe {
        may::coroutine::spawn(move || {
            for _ in 0..n {
                pong_tx.send(ping_rx.recv().expect("ping")).expect("pong");
            }
        })
    };
    let t0 = Instant::now();
    // SAFETY: as above.
    let player = unsafe {
        may::coroutine::spawn(move || {
            for i in 0..n {
                ping_tx.send(i).expect("ping");
                assert_eq!(pong_rx.recv().expect("pong"), i);
            }
        })
    };
    player.join().expect("player");
    echo.join().expect("echo");
    t0.elapsed().as_nanos() as f64 / n as f64
}

/// `n` coroutines parked at once in a long `sleep`, then all cancelled;
/// total ns per coroutine and RSS growth per parked coroutine.
pub fn parked(n: u64, rss_bytes: fn() -> u64) -> (f64, f64) {
    let before = rss_bytes();
    let started = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let started = started.clone();
            // SAFETY: as above.
            unsafe {
                may::coroutine::spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    may::coroutine::sleep(Duration::from_secs(3600));
                })
            }
        })
        .collect();
    while started.load(Ordering::Relaxed) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let after = rss_bytes();
    for h in &hs {
        // SAFETY: cancelling a coroutine parked in `sleep` unwinds it
        // there; it holds nothing that needs more than its drops.
        unsafe { h.coroutine().cancel() };
    }
    for h in hs {
        assert!(h.join().is_err(), "a cancelled coroutine ends with an error");
    }
    (t0.elapsed().as_nanos() as f64 / n as f64, after.saturating_sub(before) as f64 / n as f64)
}
