//! The io workloads of `libev-bench`, run alone or interleaved (see
//! `turns.rs`).
//!
//! N io watchers, each on its own eventfd, all started on a loop that
//! never runs. Each operation picks one at random and changes its events
//! to a random one of `READ`, `WRITE` and both: `Io::set_events` in Rust
//! (which stops an active watcher, modifies it and starts it again), C's
//! `ev_io_stop`, `ev_io_modify`, `ev_io_start`. Nothing is polled during
//! the timed part: libev only queues each changed fd once in its
//! `fdchanges` list, for a loop iteration that never comes, so this
//! measures the watcher operations themselves (the fd's watcher list in
//! libev's fd table, the change queue), not the backend.
//!
//! Every side of both workloads watches the same eventfds ([`Eventfds`]):
//! an interleaved run at N watchers needs N descriptors, not 2N, and both
//! sides index libev's fd table at the same numbers. The sides never
//! outlive them (and, since no loop polls them, nothing would happen if
//! they did).

use crate::turns::{CSide, CState, Picks, Side};
use crate::{XORSHIFT_SEED, xorshift};
use libev::{Events, Io, Loop};
use std::cell::OnceCell;
use std::ffi::c_int;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

unsafe extern "C" {
    fn libev_bench_c_io_set_new(nfds: u32, fds: *const c_int) -> *mut CState;
    fn libev_bench_c_io_set_run(t: *mut CState, ops: u64) -> u64;
    fn libev_bench_c_io_set_check(t: *const CState) -> u64;
    fn libev_bench_c_io_set_free(t: *mut CState);
    fn libev_bench_c_io_ptrs_new(nfds: u32, fds: *const c_int) -> *mut CState;
    fn libev_bench_c_io_ptrs_run(t: *mut CState, ops: u64) -> u64;
    fn libev_bench_c_io_ptrs_check(t: *const CState) -> u64;
    fn libev_bench_c_io_ptrs_free(t: *mut CState);
}

/// The eventfds the sides of the io workloads watch: opened when the first
/// side is made, closed when the last workload holding them goes.
pub(crate) struct Eventfds {
    n: u32,
    fds: OnceCell<Vec<OwnedFd>>,
}

impl Eventfds {
    /// `n` eventfds, not opened yet.
    pub(crate) fn new(n: u32) -> Rc<Eventfds> {
        Rc::new(Eventfds { n, fds: OnceCell::new() })
    }

    /// Their numbers, opening them on first use.
    ///
    /// # Panics
    ///
    /// If an eventfd cannot be opened: the caller first makes room for them
    /// under `RLIMIT_NOFILE` (`make_room_for` in `main.rs`).
    pub(crate) fn raw(&self) -> Vec<RawFd> {
        let fds = self.fds.get_or_init(|| {
            (0..self.n)
                .map(|_| {
                    // SAFETY: no pointers involved; a new descriptor or -1.
                    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                    assert!(fd >= 0, "eventfd: {}", std::io::Error::last_os_error());
                    // SAFETY: `fd` was just opened and nothing else owns it.
                    unsafe { OwnedFd::from_raw_fd(fd) }
                })
                .collect()
        });
        fds.iter().map(AsRawFd::as_raw_fd).collect()
    }
}

/// `READ`, `WRITE` or both, as C's `random_events` picks.
#[inline(always)]
fn random_events(s: &mut u64) -> Events {
    const EVENTS: [Events; 3] = [Events::READ, Events::WRITE, Events::READ.union(Events::WRITE)];
    EVENTS[(xorshift(s) % 3) as usize]
}

/// The io watchers of `c/workloads.c`, in one C array.
pub(crate) fn c(fds: &[RawFd]) -> CSide {
    // SAFETY: the state comes from the workload whose functions follow;
    // `fds` holds `fds.len()` descriptors, read during the call only; the
    // C side aborts rather than fail.
    unsafe {
        CSide::new(
            libev_bench_c_io_set_new(fds.len() as u32, fds.as_ptr()),
            libev_bench_c_io_set_run,
            libev_bench_c_io_set_check,
            libev_bench_c_io_set_free,
        )
    }
}

/// The io watchers of `c/workloads.c` each in its own allocation, reached
/// through an array of pointers: the floor for one handle per watcher.
pub(crate) fn c_ptrs(fds: &[RawFd]) -> CSide {
    // SAFETY: as in `c`.
    unsafe {
        CSide::new(
            libev_bench_c_io_ptrs_new(fds.len() as u32, fds.as_ptr()),
            libev_bench_c_io_ptrs_run,
            libev_bench_c_io_ptrs_check,
            libev_bench_c_io_ptrs_free,
        )
    }
}

/// `Io` handles in a `Vec`.
pub(crate) struct Handles {
    ios: Vec<Io>,
    picks: Picks,
}

impl Handles {
    pub(crate) fn new(fds: &[RawFd]) -> Handles {
        let lp = Loop::new().expect("create loop");
        let ios = fds
            .iter()
            .map(|&fd| {
                let io = Io::new(&lp, fd, Events::READ, |_, _| unreachable!("the loop never runs"))
                    .expect("io watcher on an eventfd");
                io.start();
                io
            })
            .collect();
        Handles { ios, picks: Picks::new(XORSHIFT_SEED, fds.len() as u32) }
    }
}

impl Side for Handles {
    fn run(&mut self, ops: u64) -> u64 {
        let ios = &self.ios;
        self.picks.time(ops, |i, s| {
            // C's ev_io_stop + ev_io_modify + ev_io_start: `set_events`
            // restarts an active watcher.
            ios[i].set_events(random_events(s)).expect("READ, WRITE or both");
        })
    }

    fn check(&self) -> u64 {
        self.picks.state()
    }
}
