//! `libev-bench`: the safe `libev` crate against the same workloads written
//! in C (`c/workloads.c`) on the same bundled libev, in one process.
//!
//! Workloads:
//!
//! - `timers`: 100 000 started timers; each operation picks one at random
//!   and does stop, set (new random delay), start.
//! - `timers_restart`: the same `Vec` of `Timer` handles, each operation
//!   one `Timer::restart` (what stop, set and start do, in one call: libev's
//!   `ev_timer_again` with the new delay as the repeat); the C side moves
//!   its timers the same way.
//! - `timer_array`: the same with the Rust timers in one `TimerArray`
//!   (contiguous, as C's are) instead of a `Vec` of `Timer` handles; the C
//!   side is the same as for `timers`.
//! - `timer_restart`: the same array, each operation one
//!   `TimerArray::restart`; its C side is `timers_restart`'s.
//! - `timer_sys`: a control for the two above, not a workload of the
//!   issue: the same loop in Rust straight on `libev-sys`, C's layout and
//!   arithmetic, no safe wrapper. Its distance from 1.00 is what memory and
//!   code placement and the host do to the timer comparisons.
//! - `timer_ptrs`: the floor for one handle per timer, in C: each 48-byte
//!   `ev_timer` in its own allocation, reached through an array of
//!   pointers, against C's one array (the "Rust" column is this C side).
//! - `io_set`: 10 000 started io watchers, each on its own eventfd, on a
//!   loop that never runs; each operation picks one at random and sets its
//!   events to `READ`, `WRITE` or both (`Io::set_events` on a `Vec<Io>`;
//!   C's `ev_io_stop`, `ev_io_modify`, `ev_io_start`). This measures the
//!   watcher operations: nothing is polled (see `io_set.rs`).
//! - `io_ptrs`: its floor for one handle per watcher, in C: each `ev_io`
//!   in its own allocation behind an array of pointers, against C's array.
//! - `idle`: one idle watcher whose callback runs N times, then stops it.
//! - `pipe_ring`: a token passed around a ring of 64 non-blocking pipes by
//!   64 io watchers, one hop per callback.
//!
//! `idle` and `pipe_ring` run whole, C then Rust, `--reps` times (default
//! 3), and the best time of each is printed. The timer and io workloads,
//! whose figures follow the host's memory traffic, interleave C and Rust
//! in short turns (see `turns.rs`), `--reps` times, and the repetition
//! with the median ratio is printed.
//!
//! ```text
//! libev-bench [--quick] [--tsv] [--alone [--rust-first]] [--reps K] [--timers N] [--fds N] [--ops N] [--ring-fds N,N,...] [--hops N] [WORKLOAD...]
//! ```
//!
//! `--timers N` sets the number of timers (default 100 000), `--fds N` the
//! number of io watchers and eventfds of `io_set` and `io_ptrs` (default
//! 10 000; a number that `RLIMIT_NOFILE` cannot allow is skipped, saying
//! so), and `--ops N` the timer or io operations per measurement (default
//! 5 000 000). `--quick` divides every operation count by 50, for a smoke
//! run; naming workloads runs only those. `--alone` measures the timer and
//! io workloads one side at a time instead of interleaved: each side is
//! made, warmed, timed and dropped before the other is made (C first on
//! the first repetition, then alternately; `--rust-first` starts with
//! Rust). `--tsv` adds one machine-readable line per figure for
//! `bench-all`:
//! `result<TAB>loop<TAB>WORKLOAD<TAB>SYSTEM<TAB>N<TAB>NS_PER_OP<TAB>ns/op`
//! (N: timers or io watchers for the workloads that take turns,
//! operations for the others).
//!
//! `backends`, which runs only when named, is the pipe ring on every Linux
//! backend that works here (select, poll, epoll, linuxaio, io_uring) at
//! ring sizes of `--ring-fds` (default 64, 1 000 and 10 000 fds), `--hops`
//! token hops per run (default 20 000); see `ring_backends.rs`.

mod io_set;
mod ring_backends;
mod timers;
mod turns;

use libev::{Backend, Break, Events, Idle, Io, Loop, LoopFlags};
use std::cell::Cell;
use std::ffi::c_void;
use std::os::fd::RawFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

unsafe extern "C" {
    fn libev_bench_c_idle(n: u64, check: *mut u64) -> u64;
    fn libev_bench_c_pipe_ring(npipes: u32, hops: u64, check: *mut u64) -> u64;
    fn libev_bench_c_pipe_ring_on(
        npipes: u32,
        hops: u64,
        flags: u32,
        check: *mut u64,
        backend: *mut u32,
    ) -> u64;
}

const DEFAULT_NTIMERS: u32 = 100_000;
const DEFAULT_NFDS: u32 = 10_000;
const TIMER_OPS: u64 = 5_000_000;
const IDLE_RUNS: u64 = 5_000_000;
const NPIPES: u32 = 64;
const RING_HOPS: u64 = 1_000_000;
/// Token hops per run of the `backends` comparison.
const BACKEND_HOPS: u64 = 20_000;
const QUICK_DIVISOR: u64 = 50;

/// The seed `c/workloads.c` uses too.
pub(crate) const XORSHIFT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// xorshift64, the same generator as in C.
#[inline]
pub(crate) fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x
}

/// A delay between 1000 and 2000 s in whole milliseconds (as in C).
#[inline]
pub(crate) fn random_after(s: &mut u64) -> Duration {
    Duration::from_millis(1_000_000 + xorshift(s) % 1_000_000)
}

/// Descriptors a process needs besides a workload's own (stdio, the
/// loop's backend, eventfd, timerfd, signalfd, ...).
pub(crate) const SPARE_FDS: u64 = 32;

/// Makes room for `need` descriptors: raises the soft limit up to the hard
/// one; `Err` with the limit when that is not enough.
pub(crate) fn make_room_for(need: u64) -> Result<(), u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into a live local.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= need {
        return Ok(());
    }
    if lim.rlim_max < need {
        return Err(lim.rlim_max);
    }
    lim.rlim_cur = need.max(lim.rlim_cur);
    // SAFETY: setrlimit reads one rlimit from a live local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(lim.rlim_max);
    }
    Ok(())
}

/// Elapsed nanoseconds and the check value the other language must match.
pub(crate) struct Sample {
    pub(crate) ns: u64,
    pub(crate) check: u64,
}

fn rust_idle(n: u64) -> Sample {
    let lp = Loop::new().expect("create loop");
    let count = Rc::new(Cell::new(0u64));
    let idle = Idle::new(&lp, {
        let count = count.clone();
        move |w, _| {
            count.set(count.get() + 1);
            if count.get() == n {
                w.stop();
            }
        }
    });
    idle.start();

    let start = Instant::now();
    lp.run();
    let ns = start.elapsed().as_nanos() as u64;

    Sample { ns, check: count.get() }
}

fn set_nonblock(fd: RawFd) {
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own; no memory involved.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags != -1 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != -1
    };
    assert!(ok, "fcntl O_NONBLOCK: {}", std::io::Error::last_os_error());
}

fn rust_pipe_ring(npipes: u32, hops: u64) -> Sample {
    rust_pipe_ring_on(npipes, hops, LoopFlags::empty(), Backend::empty()).0
}

/// The pipe ring on a loop made with `flags` and `backends` (both empty:
/// libev's choice), and the backend the loop used at the end of the run
/// (libev's linuxaio and io_uring may switch to epoll on their own).
pub(crate) fn rust_pipe_ring_on(
    npipes: u32,
    hops: u64,
    flags: LoopFlags,
    backends: Backend,
) -> (Sample, Backend) {
    let lp = Loop::with_flags(flags, backends).expect("create loop");
    let fds: Vec<[RawFd; 2]> = (0..npipes)
        .map(|_| {
            let mut p = [0 as RawFd; 2];
            // SAFETY: `p` has room for the two descriptors pipe() writes.
            let rc = unsafe { libc::pipe(p.as_mut_ptr()) };
            assert_eq!(rc, 0, "pipe: {}", std::io::Error::last_os_error());
            set_nonblock(p[0]);
            set_nonblock(p[1]);
            p
        })
        .collect();
    let count = Rc::new(Cell::new(0u64));
    let ios: Vec<Io> = (0..fds.len())
        .map(|i| {
            let rfd = fds[i][0];
            let next_wfd = fds[(i + 1) % fds.len()][1];
            let count = count.clone();
            let handle = lp.clone();
            let io = Io::new(&lp, rfd, Events::READ, move |_, _| {
                let mut token = 0u8;
                // SAFETY: reads at most one byte into a local byte.
                let r = unsafe { libc::read(rfd, (&raw mut token).cast::<c_void>(), 1) };
                assert_eq!(r, 1, "read from ring pipe");
                count.set(count.get() + 1);
                if count.get() == hops {
                    handle.break_loop(Break::All);
                    return;
                }
                // SAFETY: writes one byte from a local byte.
                let w = unsafe { libc::write(next_wfd, (&raw const token).cast::<c_void>(), 1) };
                assert_eq!(w, 1, "write to ring pipe");
            })
            .expect("io watcher on a pipe");
            io.start();
            io
        })
        .collect();
    // SAFETY: writes one byte from a static to the first pipe.
    let w = unsafe { libc::write(fds[0][1], b"t".as_ptr().cast::<c_void>(), 1) };
    assert_eq!(w, 1, "write the token");

    let start = Instant::now();
    lp.run();
    let ns = start.elapsed().as_nanos() as u64;
    let backend = lp.backend();

    // Watchers go before their fds are closed.
    drop(ios);
    for [r, w] in fds {
        // SAFETY: closes the descriptors this function opened, once.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
    }
    (Sample { ns, check: count.get() }, backend)
}

fn c_sample(f: impl FnOnce(*mut u64) -> u64) -> Sample {
    let mut check = 0;
    let ns = f(&mut check);
    Sample { ns, check }
}

/// One workload: its name, its operation count, the names of its two
/// sides and both versions.
struct Workload {
    name: &'static str,
    ops: u64,
    /// The size its figures are given at (`--tsv`'s N): timers or io
    /// watchers for the workloads that take turns, else `ops`.
    n: u64,
    /// Descriptors it opens (one process's worth: the sides of an
    /// interleaved run share them); it is skipped when `RLIMIT_NOFILE`
    /// cannot allow them.
    fds: u32,
    sides: [&'static str; 2],
    run: Run,
}

/// How a workload's two versions are measured.
enum Run {
    /// Each runs the whole workload alone, C then Rust, `--reps` times;
    /// the best time of each counts.
    Whole { c: Box<dyn Fn() -> Sample>, rust: Box<dyn Fn() -> Sample> },
    /// Fresh sides taking turns (see `turns.rs`), `--reps` times; the
    /// repetition with the median ratio counts.
    Interleaved { c: Box<dyn Fn() -> Box<dyn turns::Side>>, rust: Box<dyn Fn() -> Box<dyn turns::Side>> },
}

impl Run {
    /// The C and Rust times, in nanoseconds, that stand for `reps`
    /// repetitions, and what they are.
    /// `alone`: one side at a time, and whether Rust goes first on the
    /// first repetition; `None`: interleaved.
    fn measure(&self, name: &str, ops: u64, reps: u32, alone: Option<bool>) -> (u64, u64, &'static str) {
        let check = |c: &Sample, rust: &Sample| {
            assert_eq!(c.check, rust.check, "{name}: C and Rust did different work");
        };
        match self {
            Run::Whole { c, rust } => {
                let (mut best_c, mut best_rust) = (u64::MAX, u64::MAX);
                for _ in 0..reps {
                    let (c, rust) = (c(), rust());
                    check(&c, &rust);
                    best_c = best_c.min(c.ns);
                    best_rust = best_rust.min(rust.ns);
                }
                (best_c, best_rust, "best")
            }
            Run::Interleaved { c: new_c, rust: new_rust } if alone.is_some() => {
                let rust_first = u32::from(alone == Some(true));
                // Each side made, timed and dropped before the other is
                // made; the side that goes first alternates.
                let mut runs: Vec<(u64, u64)> = (0..reps)
                    .map(|rep| {
                        let c_alone = || turns::alone(&mut *new_c(), ops);
                        let rust_alone = || turns::alone(&mut *new_rust(), ops);
                        let (c, rust) = if (rep + rust_first) % 2 == 0 {
                            let c = c_alone();
                            (c, rust_alone())
                        } else {
                            let rust = rust_alone();
                            (c_alone(), rust)
                        };
                        check(&c, &rust);
                        (c.ns, rust.ns)
                    })
                    .collect();
                runs.sort_by(|a, b| (a.1 as f64 / a.0 as f64).total_cmp(&(b.1 as f64 / b.0 as f64)));
                let (c, rust) = runs[runs.len() / 2];
                (c, rust, "one side at a time, median")
            }
            Run::Interleaved { c: new_c, rust: new_rust } => {
                let mut runs: Vec<(u64, u64)> = (0..reps)
                    .map(|_| {
                        let (c, rust) = turns::interleaved(&mut *new_c(), &mut *new_rust(), ops);
                        check(&c, &rust);
                        (c.ns, rust.ns)
                    })
                    .collect();
                runs.sort_by(|a, b| (a.1 as f64 / a.0 as f64).total_cmp(&(b.1 as f64 / b.0 as f64)));
                let (c, rust) = runs[runs.len() / 2];
                (c, rust, "interleaved, median")
            }
        }
    }
}

fn workloads(divisor: u64, ntimers: u32, nfds: u32, timer_ops: u64) -> Vec<Workload> {
    let timer_ops = (timer_ops / divisor).max(1);
    let idle_runs = IDLE_RUNS / divisor;
    let ring_hops = RING_HOPS / divisor;
    // Shared by both io workloads and their sides.
    let fds = io_set::Eventfds::new(nfds);
    vec![
        Workload {
            name: "timers",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "Vec<Timer>"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c(ntimers))),
                rust: Box::new(move || Box::new(timers::Handles::new(ntimers))),
            },
        },
        Workload {
            name: "timers_restart",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "Vec<Timer>::restart"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c_again(ntimers))),
                rust: Box::new(move || Box::new(timers::HandlesRestart::new(ntimers))),
            },
        },
        Workload {
            name: "timer_array",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "TimerArray"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c(ntimers))),
                rust: Box::new(move || Box::new(timers::Array::new(ntimers))),
            },
        },
        Workload {
            name: "timer_restart",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "TimerArray::restart"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c_again(ntimers))),
                rust: Box::new(move || Box::new(timers::Restart::new(ntimers))),
            },
        },
        Workload {
            name: "timer_sys",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "libev-sys"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c(ntimers))),
                rust: Box::new(move || Box::new(timers::Sys::new(ntimers))),
            },
        },
        Workload {
            name: "timer_ptrs",
            ops: timer_ops,
            n: u64::from(ntimers),
            fds: 0,
            sides: ["C", "C pointer array"],
            run: Run::Interleaved {
                c: Box::new(move || Box::new(timers::c(ntimers))),
                rust: Box::new(move || Box::new(timers::c_ptrs(ntimers))),
            },
        },
        Workload {
            name: "io_set",
            ops: timer_ops,
            n: u64::from(nfds),
            fds: nfds,
            sides: ["C", "Vec<Io>"],
            run: Run::Interleaved {
                c: Box::new({
                    let fds = fds.clone();
                    move || Box::new(io_set::c(&fds.raw()))
                }),
                rust: Box::new({
                    let fds = fds.clone();
                    move || Box::new(io_set::Handles::new(&fds.raw()))
                }),
            },
        },
        Workload {
            name: "io_ptrs",
            ops: timer_ops,
            n: u64::from(nfds),
            fds: nfds,
            sides: ["C", "C pointer array"],
            run: Run::Interleaved {
                c: Box::new({
                    let fds = fds.clone();
                    move || Box::new(io_set::c(&fds.raw()))
                }),
                rust: Box::new(move || Box::new(io_set::c_ptrs(&fds.raw()))),
            },
        },
        Workload {
            name: "idle",
            ops: idle_runs,
            n: idle_runs,
            fds: 0,
            sides: ["C", "libev"],
            run: Run::Whole {
                // SAFETY: the C function writes only through `check`, a
                // valid pointer to a local.
                c: Box::new(move || c_sample(|check| unsafe { libev_bench_c_idle(idle_runs, check) })),
                rust: Box::new(move || rust_idle(idle_runs)),
            },
        },
        Workload {
            name: "pipe_ring",
            ops: ring_hops,
            n: ring_hops,
            fds: 2 * NPIPES,
            sides: ["C", "libev"],
            run: Run::Whole {
                c: Box::new(move || {
                    // SAFETY: as above.
                    c_sample(|check| unsafe { libev_bench_c_pipe_ring(NPIPES, ring_hops, check) })
                }),
                rust: Box::new(move || rust_pipe_ring(NPIPES, ring_hops)),
            },
        },
    ]
}

const USAGE: &str = "usage: libev-bench [--quick] [--tsv] [--alone [--rust-first]] [--reps K] [--timers N] [--fds N] [--ops N] [--ring-fds N,N,...] [--hops N] [WORKLOAD...]\n\
                     workloads: timers timers_restart timer_array timer_restart timer_sys timer_ptrs io_set io_ptrs idle pipe_ring (default: all)\n\
                     and, only when named, backends: the pipe ring on every backend that works here\n\
                     (--ring-fds: ring sizes in fds, default 64,1000,10000; --hops: per run, default 20000)";

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut divisor = 1;
    let mut reps: u32 = 3;
    let mut ntimers = DEFAULT_NTIMERS;
    let mut nfds = DEFAULT_NFDS;
    let mut timer_ops = TIMER_OPS;
    let (mut tsv, mut alone, mut rust_first) = (false, false, false);
    let mut only = Vec::new();
    let mut ring_sizes = ring_backends::DEFAULT_SIZES.to_vec();
    let mut backend_hops = BACKEND_HOPS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => divisor = QUICK_DIVISOR,
            "--tsv" => tsv = true,
            "--alone" => alone = true,
            "--rust-first" => rust_first = true,
            "--ops" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => timer_ops = k,
                _ => return usage(),
            },
            "--timers" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => ntimers = k,
                _ => return usage(),
            },
            "--fds" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => nfds = k,
                _ => return usage(),
            },
            "--reps" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => reps = k,
                _ => return usage(),
            },
            "--hops" => match args.next().and_then(|k| k.parse().ok()) {
                Some(k) if k > 0 => backend_hops = k,
                _ => return usage(),
            },
            "--ring-fds" => {
                match args.next().map(|l| l.split(',').map(str::parse).collect::<Result<Vec<u32>, _>>()) {
                    Some(Ok(l)) if !l.is_empty() && l.iter().all(|&n| n >= 4) => ring_sizes = l,
                    _ => return usage(),
                }
            }
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            name if !name.starts_with('-') => only.push(name.to_owned()),
            _ => return usage(),
        }
    }

    let mut selected = workloads(divisor, ntimers, nfds, timer_ops);
    let backends = only.iter().any(|n| n == "backends");
    only.retain(|n| n != "backends");
    if let Some(bad) = only.iter().find(|n| !selected.iter().any(|w| w.name == *n)) {
        eprintln!("libev-bench: no workload named `{bad}`");
        return usage();
    }
    if backends && only.is_empty() {
        selected.clear();
    }
    selected.retain(|w| only.is_empty() || only.iter().any(|n| n == w.name));

    let (major, minor) = libev::version();
    println!(
        "libev {major}.{minor}, backend {:?}; {reps} repetitions{}",
        Loop::new().expect("create loop").backend(),
        if divisor > 1 { " (--quick: N/50)" } else { "" },
    );
    println!("{:<11} {:>9}   {:<14}   {:<17}   ratio", "workload", "N", "C", "Rust");
    for w in selected {
        let need = u64::from(w.fds) + SPARE_FDS;
        if let Err(limit) = make_room_for(need) {
            println!(
                "{:<11} {:>9}   skipped: {} fds need about {need} descriptors and RLIMIT_NOFILE allows {limit} \
                 (raise the hard limit: ulimit -Hn / ulimit -n, as root or in limits.conf)",
                w.name, w.ops, w.fds
            );
            continue;
        }
        let (c, rust, how) = w.run.measure(w.name, w.ops, reps, alone.then_some(rust_first));
        let c = c as f64 / w.ops as f64;
        let rust = rust as f64 / w.ops as f64;
        if tsv {
            let mode = if matches!(w.run, Run::Whole { .. }) {
                ""
            } else if alone {
                " (one side at a time)"
            } else {
                " (interleaved)"
            };
            for (side, ns) in w.sides.iter().zip([c, rust]) {
                println!("result\tloop\t{}{mode}\t{side}\t{}\t{ns:.2}\tns/op", w.name, w.n);
            }
        }
        println!(
            "{:<11} {:>9}   C {:>6.1} ns/op   Rust {:>6.1} ns/op   Rust/C {:.2}   ({how})",
            w.name,
            w.ops,
            c,
            rust,
            rust / c
        );
    }
    if backends {
        ring_backends::run(&ring_sizes, (backend_hops / divisor).max(1), reps);
    }
    ExitCode::SUCCESS
}
