//! `green::Timeout` and `with_timeout`, with the behavioural cases of
//! gevent's `src/gevent/tests/test__timeout.py`. Where gevent's `Timeout`
//! takes an exception to raise (or `False` for a silent one), here a
//! timeout always unwinds with `Elapsed` and `with_timeout` turns it into
//! an `Err`: Rust code chooses what to do with the `Result` instead.

use libev::green::{self, Elapsed, Timeout};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

const SHOULD_EXPIRE: Duration = Duration::from_millis(5);
const SHOULD_NOT_EXPIRE: Duration = Duration::from_millis(100);

/// Blocks until the timeout hits; returns what the unwinding carried.
fn expect_expiry(f: impl FnOnce()) -> Elapsed {
    let p = catch_unwind(AssertUnwindSafe(f)).expect_err("the timeout must expire");
    *p.downcast_ref::<Elapsed>().expect("unwinds with Elapsed")
}

/// `test_expires` / `_check_expires`: a started timeout interrupts the next
/// wait, and a new one can be started afterwards ("restart").
#[test]
fn test_expires() {
    for _ in 0..2 {
        let start = Instant::now();
        let e = expect_expiry(|| {
            let _t = Timeout::start(SHOULD_EXPIRE);
            green::sleep(Duration::from_secs(60));
        });
        assert_eq!(e.to_string(), "deadline has elapsed");
        assert!(start.elapsed() >= SHOULD_EXPIRE);
    }
}

/// `test_context_manager`: the guard's scope is the `with` block; once
/// expired it reports so.
#[test]
fn test_context_manager() {
    let t = Timeout::start(SHOULD_EXPIRE);
    assert!(!t.expired());
    expect_expiry(|| green::sleep(Duration::from_secs(60)));
    assert!(t.expired());
    drop(t);
    // Dropped after expiring: nothing is left pending.
    green::sleep(Duration::from_millis(1));
}

/// `test_cancel`: a cancelled timeout (dropped guard) never fires.
#[test]
fn test_cancel() {
    let t = Timeout::start(SHOULD_EXPIRE);
    drop(t);
    green::sleep(SHOULD_EXPIRE * 4);
}

/// `test_with_timeout`: `with_timeout` gives the timeout as an error (gevent
/// raises, or returns `timeout_value`: here that is `unwrap_or`), and the
/// function's value when it finishes first.
#[test]
fn test_with_timeout() {
    assert!(green::with_timeout(SHOULD_EXPIRE, || green::sleep(SHOULD_NOT_EXPIRE)).is_err());
    let x = green::with_timeout(SHOULD_EXPIRE, || {
        green::sleep(SHOULD_NOT_EXPIRE);
        "done"
    })
    .unwrap_or("timeout value");
    assert_eq!(x, "timeout value");
    assert_eq!(green::with_timeout(SHOULD_NOT_EXPIRE, || green::sleep(SHOULD_EXPIRE)), Ok(()));
}
