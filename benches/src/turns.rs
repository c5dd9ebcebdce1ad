//! The driver of the workloads whose two sides keep their state between
//! calls (the timer workloads, `io_set`): each side made once, then run
//! alone or the two taking turns.
//!
//! Their operations go into libev's watcher structures (the timer heap's
//! sift is a chain of dependent cache misses), so they follow whatever
//! else the host's memory is doing: on a busy host two runs of the same
//! code a second apart differ by 20%, and best-of-K whole runs, C then
//! Rust, let that drift land on one side. [`interleaved`] has the two
//! take turns (alternating which goes first) in chunks of [`CHUNK`]
//! operations, so drift lands on both; the ratio is that of their summed
//! times. [`alone`] times one side by itself, for the driver that makes,
//! times and drops each side before making the other.

use crate::{Sample, xorshift};
use std::hint::black_box;
use std::time::Instant;

/// The state of a side written in C (`c/workloads.c`), opaque here.
#[repr(C)]
pub(crate) struct CState {
    _opaque: [u8; 0],
}

/// A side written in C: its state, and the workload's functions that run
/// it, check it and free it.
pub(crate) struct CSide {
    state: *mut CState,
    run: unsafe extern "C" fn(*mut CState, u64) -> u64,
    check: unsafe extern "C" fn(*const CState) -> u64,
    free: unsafe extern "C" fn(*mut CState),
}

impl CSide {
    /// # Safety
    ///
    /// `state` was made by the C workload whose `run`, `check` and `free`
    /// these are, and nothing else frees it.
    pub(crate) unsafe fn new(
        state: *mut CState,
        run: unsafe extern "C" fn(*mut CState, u64) -> u64,
        check: unsafe extern "C" fn(*const CState) -> u64,
        free: unsafe extern "C" fn(*mut CState),
    ) -> CSide {
        CSide { state, run, check, free }
    }
}

impl Side for CSide {
    fn run(&mut self, ops: u64) -> u64 {
        // SAFETY: the workload's own function on its live state (`new`).
        unsafe { (self.run)(self.state, ops) }
    }

    fn check(&self) -> u64 {
        // SAFETY: as above; only reads.
        unsafe { (self.check)(self.state) }
    }
}

impl Drop for CSide {
    fn drop(&mut self) {
        // SAFETY: frees the state once, with its workload's function.
        unsafe { (self.free)(self.state) }
    }
}

/// Operations per turn: long enough (tens of milliseconds) that refilling
/// the caches the other side evicted is a small part of a turn.
const CHUNK: u64 = 250_000;

/// One side of a workload: its loop and watchers, all started, and its
/// random generator, kept between runs.
pub(crate) trait Side {
    /// Runs `ops` operations; returns the elapsed nanoseconds.
    fn run(&mut self, ops: u64) -> u64;
    /// The generator's state, which the other side must match.
    fn check(&self) -> u64;
}

/// The random picks of a Rust side, as in C: generator and watcher count.
pub(crate) struct Picks {
    s: u64,
    n: u32,
}

impl Picks {
    /// Picks among `n` watchers, the generator at `s`.
    pub(crate) fn new(s: u64, n: u32) -> Picks {
        Picks { s, n }
    }

    /// The generator's state.
    pub(crate) fn state(&self) -> u64 {
        self.s
    }

    /// Times `ops` calls of `op` with a random watcher index and the
    /// generator (for the operation's own random value).
    #[inline(always)]
    pub(crate) fn time(&mut self, ops: u64, mut op: impl FnMut(usize, &mut u64)) -> u64 {
        // C receives the watcher count as a run-time value: so does this
        // loop, so neither side gets a `% constant` turned into a
        // multiplication.
        let n = u64::from(black_box(self.n));
        let mut s = self.s;
        let start = Instant::now();
        for _ in 0..ops {
            let i = (xorshift(&mut s) % n) as usize;
            op(i, &mut s);
        }
        let ns = start.elapsed().as_nanos() as u64;
        self.s = s;
        ns
    }
}

/// One measurement of one side alone: `ops` operations, whole, after one
/// untimed warm-up turn.
pub(crate) fn alone(side: &mut dyn Side, ops: u64) -> Sample {
    side.run(CHUNK.min(ops));
    let ns = side.run(ops);
    Sample { ns, check: side.check() }
}

/// One measurement: `ops` operations on each side, in alternating turns
/// after one untimed warm-up turn each. Returns the C and Rust samples.
pub(crate) fn interleaved(c: &mut dyn Side, rust: &mut dyn Side, ops: u64) -> (Sample, Sample) {
    let warm = CHUNK.min(ops);
    c.run(warm);
    rust.run(warm);
    let (mut c_ns, mut rust_ns) = (0, 0);
    let mut left = ops;
    let mut c_first = true;
    while left > 0 {
        let n = CHUNK.min(left);
        if c_first {
            c_ns += c.run(n);
            rust_ns += rust.run(n);
        } else {
            rust_ns += rust.run(n);
            c_ns += c.run(n);
        }
        c_first = !c_first;
        left -= n;
    }
    (Sample { ns: c_ns, check: c.check() }, Sample { ns: rust_ns, check: rust.check() })
}
