//! The `backends` workload: the pipe ring (see `pipe_ring` in `main.rs`)
//! on every Linux backend that works here, at several ring sizes, C and
//! Rust each on a loop asking for that one backend (`EVFLAG_NOENV`, so
//! `LIBEV_FLAGS` cannot change it).
//!
//! A ring of N fds is N/2 pipes: N/2 io watchers on the read ends, the
//! token written to the next pipe's write end. One hop is one loop
//! iteration, so the figure per hop is the backend's cost for one ready fd
//! among N/2 watched ones (plus the read and the write). Every fd of the
//! ring is open, so it needs about N descriptors: the soft `RLIMIT_NOFILE`
//! is raised to the hard one if needed, and a size that does not fit under
//! the hard limit is skipped with a message.

use crate::{SPARE_FDS, Sample, make_room_for, rust_pipe_ring_on};
use libev::{Backend, Loop, LoopFlags};

/// The backends compared, in libev's order of preference (best last).
const BACKENDS: [(Backend, &str); 5] = [
    (Backend::SELECT, "select"),
    (Backend::POLL, "poll"),
    (Backend::EPOLL, "epoll"),
    (Backend::LINUXAIO, "linuxaio"),
    (Backend::IOURING, "io_uring"),
];

/// Default ring sizes, in fds.
pub const DEFAULT_SIZES: [u32; 3] = [64, 1_000, 10_000];

/// `FD_SETSIZE` of glibc's `fd_set`.
const FD_SETSIZE: u32 = 1024;

/// Why `backend` cannot be measured here, if it cannot.
fn unusable(backend: Backend) -> Option<String> {
    if !Loop::supported_backends().contains(backend) {
        return Some("not compiled in or not supported by this kernel".into());
    }
    match Loop::with_flags(LoopFlags::NOENV, backend) {
        Err(e) => Some(format!("refused here: {e}")),
        Ok(lp) if lp.backend() != backend => Some(format!("libev fell back to {:?}", lp.backend())),
        Ok(_) => None,
    }
}

fn c_ring(npipes: u32, hops: u64, backend: Backend) -> (Sample, Backend) {
    let (mut check, mut after) = (0u64, 0u32);
    let flags = LoopFlags::NOENV.bits() | backend.bits();
    // SAFETY: the C function writes only through the two pointers, both to
    // live locals.
    let ns = unsafe { crate::libev_bench_c_pipe_ring_on(npipes, hops, flags, &mut check, &mut after) };
    (Sample { ns, check }, Backend::from_bits_retain(after))
}

/// Runs the comparison: `hops` token hops per run, the best of `reps` runs
/// for each side.
pub fn run(sizes: &[u32], hops: u64, reps: u32) {
    println!("\npipe ring per backend: {hops} hops per run, best of {reps}; ns per hop");
    println!("{:>7} {:<9} {:>12} {:>12} {:>7}", "fds", "backend", "C", "Rust", "Rust/C");
    let usable: Vec<(Backend, &str)> = BACKENDS
        .into_iter()
        .filter(|&(b, name)| match unusable(b) {
            Some(why) => {
                println!("{:>7} {name:<9} skipped: {why}", "");
                false
            }
            None => true,
        })
        .collect();
    for &fds in sizes {
        let npipes = (fds / 2).max(2);
        let need = u64::from(npipes) * 2 + SPARE_FDS;
        if let Err(limit) = make_room_for(need) {
            println!(
                "{fds:>7} skipped: the ring needs about {need} descriptors and RLIMIT_NOFILE allows {limit} \
                 (raise the hard limit: ulimit -Hn / ulimit -n, as root or in limits.conf)"
            );
            continue;
        }
        for &(backend, name) in &usable {
            let (mut best_c, mut best_rust) = (u64::MAX, u64::MAX);
            let mut switched = Vec::new();
            for _ in 0..reps {
                let (c, c_after) = c_ring(npipes, hops, backend);
                let (rust, rust_after) = rust_pipe_ring_on(npipes, hops, LoopFlags::NOENV, backend);
                assert_eq!(c.check, rust.check, "backends/{name}/{fds}: C and Rust did different work");
                for (side, after) in [("C", c_after), ("Rust", rust_after)] {
                    if after != backend {
                        switched.push(format!("{side} ended on {after:?}"));
                    }
                }
                best_c = best_c.min(c.ns);
                best_rust = best_rust.min(rust.ns);
            }
            let (c, rust) = (best_c as f64 / hops as f64, best_rust as f64 / hops as f64);
            let mut note = String::new();
            if name == "select" && fds > FD_SETSIZE {
                note.push_str("  (past FD_SETSIZE: libev sizes its own fd bit sets on Linux)");
            }
            if !switched.is_empty() {
                switched.dedup();
                note.push_str(&format!("  (libev switched backends: {})", switched.join(", ")));
            }
            println!("{fds:>7} {name:<9} {c:>12.1} {rust:>12.1} {:>7.2}{note}", rust / c);
        }
    }
}
