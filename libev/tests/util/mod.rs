//! Helpers shared by the integration tests.
#![allow(dead_code)]

use libev::{Loop, Timer};
use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors, owned by nobody.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Writes one byte to `fd`.
pub fn write_byte(fd: &impl AsRawFd, b: u8) {
    // SAFETY: writes one byte from a live local.
    assert_eq!(unsafe { libc::write(fd.as_raw_fd(), (&b as *const u8).cast(), 1) }, 1);
}

/// Reads one byte from `fd`, if there is one.
pub fn read_byte(fd: RawFd) -> Option<u8> {
    let mut b = 0u8;
    // SAFETY: reads at most one byte into a live local.
    let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
    (n == 1).then_some(b)
}

/// A shared counter for callbacks.
#[derive(Clone, Default)]
pub struct Counter(Rc<Cell<u32>>);

impl Counter {
    pub fn new() -> Counter {
        Counter::default()
    }
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }
    pub fn get(&self) -> u32 {
        self.0.get()
    }
}

/// Upper bound on every wait in `run_until`; a test fails (never hangs)
/// past it.
pub const LIMIT: Duration = Duration::from_secs(5);

/// Runs `lp` one iteration at a time until `done()`, failing after
/// [`LIMIT`] (a safety timer wakes the loop then, so `run_once` cannot
/// block longer).
pub fn run_until(lp: &Loop, what: &str, mut done: impl FnMut() -> bool) {
    let expired = Rc::new(Cell::new(false));
    let e = expired.clone();
    let safety = Timer::new(lp, LIMIT, Duration::ZERO, move |_, _| e.set(true));
    safety.start();
    while !done() {
        assert!(!expired.get(), "timed out after {LIMIT:?} waiting for {what}");
        lp.run_once();
    }
}

/// Checks that `lp` works: a zero timer started on it fires once in `run`.
pub fn assert_loop_usable(lp: &Loop) {
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(lp, Duration::ZERO, Duration::ZERO, move |_, _| c.bump());
    t.start();
    lp.run();
    assert_eq!(n.get(), 1, "a zero timer fired once");
}

/// Runs `lp` with a 30 ms referenced timer started, and asserts that `run`
/// waited for it: a watcher whose `ev_unref` was never paid back makes the
/// loop's active count too low, and `run` returns early.
pub fn assert_run_waits_for_a_referenced_timer(lp: &Loop) {
    let fired = Counter::new();
    let f = fired.clone();
    let keeper = Timer::new(lp, Duration::from_millis(30), Duration::ZERO, move |_, _| f.bump());
    keeper.start();
    lp.run();
    assert_eq!(fired.get(), 1, "run returned while a referenced timer was active");
}

/// xorshift64*: a small, seeded, reproducible generator for the random
/// tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Runs `case` for consecutive seeds: `cases` of them, or as many as fit
/// in `LIBEV_FUZZ_SECS` seconds when that is set, from `LIBEV_FUZZ_SEED`
/// (default 1). Prints how many ran.
pub fn fuzz_seeds(name: &str, cases: u64, mut case: impl FnMut(u64)) {
    let first: u64 = std::env::var("LIBEV_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let secs: Option<u64> = std::env::var("LIBEV_FUZZ_SECS").ok().and_then(|s| s.parse().ok());
    let start = std::time::Instant::now();
    let mut seed = first;
    loop {
        case(seed);
        seed += 1;
        let done = match secs {
            Some(s) => start.elapsed() >= Duration::from_secs(s),
            None => seed >= first + cases,
        };
        if done {
            break;
        }
    }
    eprintln!("{name}: {} cases from seed {first} in {:?}", seed - first, start.elapsed());
}
