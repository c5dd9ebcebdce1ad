//! libev's Linux backends one by one: which work here, many fds on each,
//! and where they differ (libev 4.33's linuxaio and io_uring are
//! experimental).
//!
//! The watcher suites run whole once per working backend from their own
//! binaries (`util::run_suite_on_every_backend`, with `LIBEV_FLAGS`); the
//! tests here ask for each backend with `LoopFlags::NOENV`. What the
//! backends do that a test must work around:
//!
//! - io_uring: a run after `reinit_after_fork` would leave libev holding
//!   one loop reference (a libev 4.33 bug the crate pays back, see
//!   `libev/src/iouring_fix.rs`), and an embedded
//!   io_uring loop with a ready fd keeps the outer loop's prepare hook
//!   spinning (libev's `embed_prepare_cb` runs the inner loop while it has
//!   fd changes, and io_uring's one-shot polls re-arm each ready fd as a
//!   change): the embed tests embed epoll only.
//! - linuxaio: a watched fd closed before libev registers it is reported
//!   (`EV_ERROR`) only when the loop's wait ends; destroying its AIO
//!   context (dropping the loop, `reinit_after_fork`) takes tens of
//!   milliseconds.

mod util;

use libev::{Backend, Events, Io, Loop, LoopFlags};
use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use util::{BACKENDS, backend_works, pipe, read_byte, run_until, write_byte};

/// The backends that work here, each named with the reason for those that
/// do not (printed; `--nocapture` shows them).
fn working_backends() -> Vec<(Backend, &'static str)> {
    BACKENDS
        .into_iter()
        .filter(|&(b, name)| match backend_works(b) {
            Ok(()) => {
                println!("backend {name}: works here");
                true
            }
            Err(why) => {
                println!("backend {name}: skipped ({why})");
                false
            }
        })
        .collect()
}

#[test]
fn the_portable_backends_and_epoll_always_work_and_each_working_one_runs_io() {
    let working = working_backends();
    let mut must = vec![Backend::SELECT, Backend::POLL];
    if cfg!(target_os = "linux") {
        must.push(Backend::EPOLL);
    }
    for b in must {
        assert!(working.iter().any(|&(w, _)| w == b), "{b:?} must work here");
    }
    for (b, name) in working {
        let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        assert_eq!(lp.backend(), b, "{name}");
        let (r, w) = pipe();
        let got = Rc::new(Cell::new(None));
        let g = got.clone();
        let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
            assert_eq!(ev, Events::READ);
            g.set(read_byte(io.fd()));
            io.stop();
        })
        .unwrap();
        io.start();
        write_byte(&w, 42);
        lp.run();
        assert_eq!(got.get(), Some(42), "{name}");
        util::assert_loop_usable(&lp);
    }
}

/// Raises the soft descriptor limit to `need` if the hard one allows.
fn room_for_fds(need: u64) -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit into a live local.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= need {
        return true;
    }
    if lim.rlim_max < need {
        return false;
    }
    lim.rlim_cur = need;
    // SAFETY: setrlimit reads one rlimit from a live local.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

#[test]
fn a_token_goes_round_a_ring_of_fds_numbered_past_fd_setsize_on_every_backend() {
    // 600 pipes: 1,200 fds, so the ring's last fds are numbered past
    // FD_SETSIZE (1024). libev's select backend sizes its own fd bit sets
    // on Linux (glibc defines NFDBITS), so select copes too.
    const PIPES: usize = 600;
    if !room_for_fds(PIPES as u64 * 2 + 64) {
        println!("skipped: RLIMIT_NOFILE's hard limit is below {} descriptors", PIPES * 2 + 64);
        return;
    }
    let ring: Vec<(OwnedFd, OwnedFd)> = (0..PIPES).map(|_| pipe()).collect();
    assert!(ring.last().unwrap().0.as_raw_fd() >= 1024, "the ring reaches past FD_SETSIZE");
    for (b, name) in working_backends() {
        let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        let hops = Rc::new(Cell::new(0usize));
        let ios: Vec<Io> = (0..PIPES)
            .map(|i| {
                let next = ring[(i + 1) % PIPES].1.as_raw_fd();
                let h = hops.clone();
                let io = Io::new(&lp, ring[i].0.as_raw_fd(), Events::READ, move |io, _| {
                    let b = read_byte(io.fd()).expect("the token");
                    h.set(h.get() + 1);
                    if h.get() < 2 * PIPES {
                        // SAFETY: writes one byte from a live local to a
                        // pipe the test owns.
                        assert_eq!(unsafe { libc::write(next, (&b as *const u8).cast(), 1) }, 1);
                    }
                })
                .unwrap();
                io.start();
                io
            })
            .collect();
        write_byte(&ring[0].1, 7);
        run_until(&lp, "the token to go round twice", || hops.get() == 2 * PIPES);
        assert_eq!(lp.backend(), b, "{name}: libev switched backends");
        drop(ios);
        println!("backend {name}: the token went round {PIPES} pipes twice");
    }
}

/// libev 4.33's iouring_fork restarts its timerfd watcher without the
/// ev_unref that iouring_init pairs with the start: the loop would stay
/// "active" with no watcher, and `run` never return. The crate pays the
/// reference back (`libev/src/iouring_fix.rs`): every backend keeps its
/// count, across several forks, and `run` still waits for real watchers.
#[test]
fn reinit_after_fork_keeps_the_loop_reference_count_on_every_backend() {
    for (b, name) in working_backends() {
        let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        assert!(!lp.run_nowait(), "{name}: nothing active");
        for _ in 0..3 {
            lp.reinit_after_fork();
            assert!(!lp.run_nowait(), "{name}: reference count after reinit_after_fork");
        }
        util::assert_run_waits_for_a_referenced_timer(&lp);
        util::assert_loop_usable(&lp);
    }
}

/// The io_uring reference workaround, wherever `reinit_after_fork` is
/// called from: a prepare callback (after the iteration's fork phase, just
/// before libev re-creates the backend), an idle callback (after the
/// poll), and with a nested run in a fork callback (the fork phase runs
/// twice before the re-creation). Each time `run` still returns once the
/// callback's watcher stops: no reference is left over or paid twice.
#[test]
fn reinit_after_fork_from_any_callback_keeps_the_count_on_io_uring() {
    use libev::{Fork, Idle, Prepare};
    let Some((b, _)) = working_backends().into_iter().find(|(b, _)| *b == Backend::IOURING) else {
        println!("io_uring does not work here: skipped");
        return;
    };
    let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
    let l = lp.clone();
    let prepare = Prepare::new(&lp, move |w, _| {
        l.reinit_after_fork();
        w.stop();
    });
    prepare.start();
    assert!(!lp.run(), "prepare-phase reinit");
    let l = lp.clone();
    let idle = Idle::new(&lp, move |w, _| {
        l.reinit_after_fork();
        w.stop();
    });
    idle.start();
    assert!(!lp.run(), "pending-phase reinit");
    let l = lp.clone();
    let fork = Fork::new(&lp, move |w, _| {
        l.run_nowait();
        w.stop();
    });
    fork.start();
    lp.reinit_after_fork();
    assert!(!lp.run(), "nested run in a fork callback");
    drop((prepare, idle, fork));
    for _ in 0..2 {
        lp.reinit_after_fork();
    }
    assert!(!lp.run_nowait());
    util::assert_run_waits_for_a_referenced_timer(&lp);
}
