//! Helpers shared by the green sync tests (green_sync, green_queue,
//! green_lock).
#![allow(dead_code)]

use libev::green::{self, Greenlet};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub const MS: Duration = Duration::from_millis(1);

pub type Log<T> = Rc<RefCell<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Rc::default()
}

/// Lets every spawned greenlet run until it blocks.
pub fn settle() {
    for _ in 0..3 {
        green::yield_now();
    }
}

/// Sleeps in small steps until `done()`: for a waiter's own timeout to
/// have fired, however slowly the process runs (valgrind).
pub fn wait_until(done: impl Fn() -> bool) {
    while !done() {
        green::sleep(MS);
    }
}

/// The message of a panic payload.
pub fn message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The message `f` panics with.
pub fn panic_message(f: impl FnOnce()) -> String {
    message(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic"))
}

/// Spawns `n` greenlets that each run `f(i)` and log what it returned.
pub fn spawn_waiters<T: 'static>(
    n: u32,
    log: &Log<(u32, T)>,
    f: impl Fn(u32) -> T + Clone + 'static,
) -> Vec<Greenlet<()>> {
    (0..n)
        .map(|i| {
            let (log, f) = (log.clone(), f.clone());
            green::spawn(move || {
                let v = f(i);
                log.borrow_mut().push((i, v));
            })
        })
        .collect()
}

/// Runs `wait(timeout)` and checks that it took at least `timeout`
/// (gevent's `_wait_and_check`; the upper bound is only a sanity limit).
pub fn took_at_least<T>(timeout: Duration, wait: impl FnOnce(Duration) -> T) -> T {
    let start = std::time::Instant::now();
    let r = wait(timeout);
    let took = start.elapsed();
    assert!(took >= timeout.mul_f64(0.9), "returned after {took:?}, before its {timeout:?}");
    assert!(took < timeout + Duration::from_secs(30), "took {took:?}");
    r
}

/// gevent's `test_outer_timeout_is_not_lost`: a `with_timeout` shorter
/// than the wait's own timeout interrupts it.
pub fn outer_timeout_is_not_lost<T>(wait: impl FnOnce(Duration) -> T) {
    let r = green::with_timeout(MS, || wait(Duration::from_secs(30)));
    assert!(r.is_err(), "the outer timeout was lost");
}
