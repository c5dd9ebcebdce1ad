//! The timer workloads of `libev-bench`, run alone or interleaved (see
//! `turns.rs`).
//!
//! Each operation picks one of N started timers at random and does stop,
//! set (a new random delay), start. Its time goes into libev's heap sift, a
//! chain of dependent cache misses, so it follows whatever else the host's
//! memory is doing.

use crate::turns::{CSide, CState, Picks, Side};
use crate::{XORSHIFT_SEED, random_after, xorshift};
use libev::{Loop, Timer, TimerArray};
use libev_sys as sys;
use std::ffi::c_int;
use std::time::Duration;

unsafe extern "C" {
    fn libev_bench_c_timers_new(ntimers: u32) -> *mut CState;
    fn libev_bench_c_timers_run(t: *mut CState, ops: u64) -> u64;
    fn libev_bench_c_timers_again_run(t: *mut CState, ops: u64) -> u64;
    fn libev_bench_c_timers_check(t: *const CState) -> u64;
    fn libev_bench_c_timers_free(t: *mut CState);
    fn libev_bench_c_timer_ptrs_new(ntimers: u32) -> *mut CState;
    fn libev_bench_c_timer_ptrs_run(t: *mut CState, ops: u64) -> u64;
    fn libev_bench_c_timer_ptrs_check(t: *const CState) -> u64;
    fn libev_bench_c_timer_ptrs_free(t: *mut CState);
}

/// The timers of `c/workloads.c`, in one C array.
pub(crate) fn c(ntimers: u32) -> CSide {
    // SAFETY: the state comes from the workload whose functions follow; its
    // `new` has no preconditions and aborts rather than fail.
    unsafe {
        CSide::new(
            libev_bench_c_timers_new(ntimers),
            libev_bench_c_timers_run,
            libev_bench_c_timers_check,
            libev_bench_c_timers_free,
        )
    }
}

/// The timers of `c/workloads.c`, in one C array, each operation moving
/// one with `ev_timer_again` and the new delay as its repeat: what
/// `Timer::restart` and `TimerArray::restart` do.
pub(crate) fn c_again(ntimers: u32) -> CSide {
    // SAFETY: as in `c`.
    unsafe {
        CSide::new(
            libev_bench_c_timers_new(ntimers),
            libev_bench_c_timers_again_run,
            libev_bench_c_timers_check,
            libev_bench_c_timers_free,
        )
    }
}

/// The timers of `c/workloads.c` each in its own allocation, reached
/// through an array of pointers: the floor for one handle per timer.
pub(crate) fn c_ptrs(ntimers: u32) -> CSide {
    // SAFETY: as in `c`.
    unsafe {
        CSide::new(
            libev_bench_c_timer_ptrs_new(ntimers),
            libev_bench_c_timer_ptrs_run,
            libev_bench_c_timer_ptrs_check,
            libev_bench_c_timer_ptrs_free,
        )
    }
}

/// `Timer` handles in a `Vec`.
pub(crate) struct Handles {
    timers: Vec<Timer>,
    picks: Picks,
}

impl Handles {
    pub(crate) fn new(ntimers: u32) -> Handles {
        let lp = Loop::new().expect("create loop");
        let mut s = XORSHIFT_SEED;
        let timers = (0..ntimers)
            .map(|_| {
                let t = Timer::new(&lp, random_after(&mut s), Duration::ZERO, |_, _| {
                    unreachable!("benchmark timers never fire")
                });
                t.start();
                t
            })
            .collect();
        Handles { timers, picks: Picks::new(s, ntimers) }
    }
}

impl Side for Handles {
    fn run(&mut self, ops: u64) -> u64 {
        let timers = &self.timers;
        self.picks.time(ops, |i, s| {
            let t = &timers[i];
            // C's ev_timer_stop + ev_timer_set + ev_timer_start. (`Timer::set`
            // alone would do the same on an active timer.)
            t.stop();
            t.set(random_after(s), Duration::ZERO);
            t.start();
        })
    }

    fn check(&self) -> u64 {
        self.picks.state()
    }
}

/// `Timer` handles in a `Vec`, each operation one [`Timer::restart`]
/// (stop, set and start in one call, as a Rust user would move a timer).
pub(crate) struct HandlesRestart(Handles);

impl HandlesRestart {
    pub(crate) fn new(ntimers: u32) -> HandlesRestart {
        HandlesRestart(Handles::new(ntimers))
    }
}

impl Side for HandlesRestart {
    fn run(&mut self, ops: u64) -> u64 {
        let timers = &self.0.timers;
        self.0.picks.time(ops, |i, s| timers[i].restart(random_after(s), Duration::ZERO))
    }

    fn check(&self) -> u64 {
        self.0.picks.state()
    }
}

/// One [`TimerArray`]: C's layout.
pub(crate) struct Array {
    timers: TimerArray,
    picks: Picks,
}

impl Array {
    pub(crate) fn new(ntimers: u32) -> Array {
        let lp = Loop::new().expect("create loop");
        let mut s = XORSHIFT_SEED;
        let timers =
            TimerArray::new(&lp, ntimers as usize, |_, _, _| unreachable!("benchmark timers never fire"));
        for i in 0..ntimers as usize {
            timers.set(i, random_after(&mut s), Duration::ZERO);
            timers.start(i);
        }
        Array { timers, picks: Picks::new(s, ntimers) }
    }
}

impl Side for Array {
    fn run(&mut self, ops: u64) -> u64 {
        let timers = &self.timers;
        self.picks.time(ops, |i, s| {
            timers.stop(i);
            timers.set(i, random_after(s), Duration::ZERO);
            timers.start(i);
        })
    }

    fn check(&self) -> u64 {
        self.picks.state()
    }
}

/// One [`TimerArray`], each operation one [`TimerArray::restart`] call
/// (stop, set and start with one check).
pub(crate) struct Restart(Array);

impl Restart {
    pub(crate) fn new(ntimers: u32) -> Restart {
        Restart(Array::new(ntimers))
    }
}

impl Side for Restart {
    fn run(&mut self, ops: u64) -> u64 {
        let timers = &self.0.timers;
        self.0.picks.time(ops, |i, s| timers.restart(i, random_after(s), Duration::ZERO))
    }

    fn check(&self) -> u64 {
        self.0.picks.state()
    }
}

/// The control: C's loop written in Rust straight on `libev-sys`, with
/// C's layout (one array of `ev_timer`s) and C's arithmetic, and no safe
/// wrapper. Whatever separates its ratio from 1.00 is not the wrapper's
/// doing but the placement of each side's memory and code, and the host.
pub(crate) struct Sys {
    lp: *mut sys::ev_loop,
    timers: Box<[sys::ev_timer]>,
    picks: Picks,
}

/// The callback of the control's timers, which never fire.
unsafe extern "C" fn never(_: *mut sys::ev_loop, _: *mut sys::ev_timer, _: c_int) {
    std::process::abort()
}

/// C's `random_after`, in libev's seconds.
#[inline(always)]
fn random_after_secs(s: &mut u64) -> f64 {
    (1_000_000 + xorshift(s) % 1_000_000) as f64 * 1e-3
}

impl Sys {
    pub(crate) fn new(ntimers: u32) -> Sys {
        // SAFETY: no preconditions.
        let lp = unsafe { sys::ev_loop_new(0) };
        assert!(!lp.is_null(), "ev_loop_new failed");
        let mut s = XORSHIFT_SEED;
        let mut timers: Box<[sys::ev_timer]> = (0..ntimers)
            // SAFETY: all-zero is a valid, inactive ev_timer.
            .map(|_| unsafe { std::mem::zeroed() })
            .collect();
        for w in timers.iter_mut() {
            // SAFETY: an inactive watcher; started on the live loop `lp`,
            // and stopped (by destroying the loop) before the array goes.
            unsafe {
                sys::ev_init(w, Some(never));
                sys::ev_timer_set(w, random_after_secs(&mut s), 0.0);
                sys::ev_timer_start(lp, w);
            }
        }
        Sys { lp, timers, picks: Picks::new(s, ntimers) }
    }
}

impl Side for Sys {
    fn run(&mut self, ops: u64) -> u64 {
        let (lp, base) = (self.lp, self.timers.as_mut_ptr());
        self.picks.time(ops, |i, s| {
            // SAFETY: `i` < ntimers, the array's length; its timers are
            // ours, on the live loop `lp`; stopped before set.
            unsafe {
                let w = base.add(i);
                sys::ev_timer_stop(lp, w);
                sys::ev_timer_set(w, random_after_secs(s), 0.0);
                sys::ev_timer_start(lp, w);
            }
        })
    }

    fn check(&self) -> u64 {
        self.picks.state()
    }
}

impl Drop for Sys {
    fn drop(&mut self) {
        // SAFETY: the loop `new` made, destroyed once; it keeps no pointer
        // to the timers afterwards, which go after it.
        unsafe { sys::ev_loop_destroy(self.lp) }
    }
}
