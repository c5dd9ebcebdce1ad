//! The `Loop` API: creation, backends, run modes, time, counters.

mod util;

use libev::{Backend, Events, Idle, Io, Loop, LoopFlags, Prepare, Timer};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use util::{Counter, assert_loop_usable, pipe, write_byte};

#[test]
fn version_is_4_33() {
    assert_eq!(libev::version(), (4, 33));
}

#[test]
fn run_with_nothing_active_returns_at_once() {
    let lp = Loop::new().unwrap();
    assert!(!lp.run());
    assert!(!lp.run_once());
    assert!(!lp.run_nowait());
    assert_eq!(lp.depth(), 0);
}

#[test]
fn backends_can_be_chosen() {
    let supported = Loop::supported_backends();
    assert!(supported.contains(Backend::SELECT | Backend::POLL));
    assert!(Loop::recommended_backends().intersects(supported));
    for b in [Backend::SELECT, Backend::POLL] {
        let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        assert_eq!(lp.backend(), b);
    }
    #[cfg(target_os = "linux")]
    {
        let lp = Loop::with_flags(LoopFlags::NOENV, Backend::EPOLL).unwrap();
        assert_eq!(lp.backend(), Backend::EPOLL);
        assert!(!supported.contains(Backend::KQUEUE));
        let err = Loop::with_flags(LoopFlags::NOENV, Backend::KQUEUE).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
        // Compiled in, but experimental in libev 4.33: never recommended,
        // so only a loop that asks gets them. io_uring is listed on 5.6.1+
        // kernels only, and the kernel or a sandbox may refuse either.
        assert!(supported.contains(Backend::LINUXAIO));
        assert!(!Loop::recommended_backends().intersects(Backend::LINUXAIO | Backend::IOURING));
        for b in [Backend::LINUXAIO, Backend::IOURING] {
            match Loop::with_flags(LoopFlags::NOENV, b) {
                Ok(lp) => assert_eq!(lp.backend(), b),
                Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{b:?}: {e}"),
            }
        }
    }
}

#[test]
fn all_backends_means_the_first_that_works_and_only_unsupported_ones_fail() {
    // libev tries the requested backends in its own order and keeps the
    // first one that works; the rest of the request is ignored.
    let order = [Backend::IOURING, Backend::LINUXAIO, Backend::EPOLL, Backend::POLL, Backend::SELECT];
    let creates = |b| Loop::with_flags(LoopFlags::NOENV, b).is_ok_and(|lp| lp.backend() == b);
    let first = order.into_iter().find(|&b| creates(b)).unwrap();
    let lp = Loop::with_flags(LoopFlags::NOENV, Backend::all()).unwrap();
    assert_eq!(lp.backend(), first);
    if util::backend_works(first).is_ok() {
        assert_loop_usable(&lp);
    }
    #[cfg(target_os = "linux")]
    {
        // Only backends this system lacks: nothing to fall back on.
        for b in [Backend::KQUEUE, Backend::PORT, Backend::DEVPOLL, Backend::KQUEUE | Backend::PORT] {
            let err = Loop::with_flags(LoopFlags::NOENV, b).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{b:?}: {err}");
        }
        // An unsupported backend next to a supported one is masked, as C
        // masks it.
        let lp = Loop::with_flags(LoopFlags::NOENV, Backend::KQUEUE | Backend::POLL).unwrap();
        assert_eq!(lp.backend(), Backend::POLL);
    }
}

#[test]
fn every_backend_delivers_io() {
    let working = util::BACKENDS.into_iter().filter(|&(b, _)| util::backend_works(b).is_ok());
    for (b, _) in working {
        let lp = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        assert_eq!(lp.backend(), b);
        let (r, w) = pipe();
        let n = Counter::new();
        let c = n.clone();
        let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
            assert!(ev.contains(Events::READ));
            c.bump();
            io.stop();
        })
        .unwrap();
        io.start();
        write_byte(&w, 1);
        lp.run();
        assert_eq!(n.get(), 1, "backend {b:?}");
    }
}

#[test]
fn run_once_waits_for_one_event_and_nowait_does_not() {
    let lp = Loop::new().unwrap();
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(&lp, Duration::from_millis(20), Duration::ZERO, move |_, _| c.bump());
    t.start();
    assert!(lp.run_nowait(), "the timer is still active");
    assert_eq!(n.get(), 0);
    while n.get() == 0 {
        lp.run_once();
    }
    assert!(!t.is_active());
}

#[test]
fn now_follows_the_clock_and_update_now_refreshes_it() {
    let lp = Loop::new().unwrap();
    let before = lp.now();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(lp.now(), before, "cached until the loop or update_now");
    lp.update_now();
    assert!(lp.now() >= before + 0.015);
    assert!((libev::time() - lp.now()).abs() < 1.0);
}

#[test]
fn iteration_depth_and_pending_count() {
    let lp = Loop::new().unwrap();
    let start = lp.iteration();
    let lp2 = lp.clone();
    let seen_depth = Counter::new();
    let d = seen_depth.clone();
    let idle = Idle::new(&lp, move |i, _| {
        for _ in 0..lp2.depth() {
            d.bump();
        }
        i.stop();
    });
    idle.start();
    idle.feed_event(Events::CUSTOM);
    assert_eq!(lp.pending_count(), 1);
    lp.run();
    assert_eq!(seen_depth.get(), 1);
    assert!(lp.iteration() > start);
    assert_eq!(lp.depth(), 0);
}

#[test]
fn ref_and_unref_adjust_what_keeps_run_alive() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    t.start();
    lp.dec_ref();
    assert!(!lp.run(), "the unref'd timer does not keep it going");
    lp.inc_ref();
    t.stop();
    assert!(!lp.run());
}

#[test]
fn suspend_and_resume_shift_timers() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::from_millis(100), Duration::ZERO, |_, _| {});
    t.start();
    lp.suspend();
    std::thread::sleep(Duration::from_millis(30));
    lp.resume();
    // Time spent suspended does not count against the timer.
    assert!(t.remaining() > Duration::from_millis(80), "{:?}", t.remaining());
}

#[test]
fn collect_intervals_are_accepted() {
    let lp = Loop::new().unwrap();
    lp.set_io_collect_interval(Duration::from_millis(1));
    lp.set_timeout_collect_interval(Duration::from_millis(1));
    assert_loop_usable(&lp);
}

/// A timeout collect interval past libev's longest wait (issue 17.10: libev
/// turned the wait into an `int` of milliseconds, which overflowed) still
/// lets io wake the loop at once. The clamp itself is pinned by the unit
/// test `collect_intervals_are_clamped_to_libevs_longest_wait`. (An io
/// collect interval makes the loop sleep that long before each poll, by
/// design.)
#[test]
fn a_huge_timeout_collect_interval_still_lets_io_wake_the_loop() {
    let lp = Loop::new().unwrap();
    lp.set_timeout_collect_interval(Duration::MAX);
    let woken = std::rc::Rc::new(std::cell::Cell::new(false));
    let w = woken.clone();
    let wake = libev::Async::new(&lp, move |a, _| {
        w.set(true);
        a.stop();
    });
    wake.start();
    let sender = wake.sender();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        sender.send();
    });
    let start = std::time::Instant::now();
    while !woken.get() {
        lp.run_once();
    }
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    t.join().unwrap();
    lp.set_timeout_collect_interval(Duration::ZERO);
    assert_loop_usable(&lp);
}

#[test]
fn feed_fd_event_reaches_io_watchers_on_that_fd() {
    let lp = Loop::new().unwrap();
    let (r, _w) = pipe();
    let got = std::rc::Rc::new(std::cell::Cell::new(Events::empty()));
    let g = got.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ | Events::WRITE, move |io, ev| {
        g.set(ev);
        io.stop();
    })
    .unwrap();
    io.start();
    lp.feed_fd_event(r.as_raw_fd(), Events::WRITE).unwrap();
    lp.run();
    assert_eq!(got.get(), Events::WRITE);
    assert_eq!(lp.feed_fd_event(-1, Events::READ).unwrap_err().raw_os_error(), Some(libc::EBADF));
    // An fd nobody watches is ignored.
    lp.feed_fd_event(1000, Events::READ).unwrap();
    assert!(!lp.run());
}

#[test]
fn verify_passes_on_a_busy_loop() {
    let lp = Loop::new().unwrap();
    let timers: Vec<Timer> = (0..100)
        .map(|i| {
            let t = Timer::new(&lp, Duration::from_millis(i), Duration::ZERO, |_, _| {});
            t.start();
            t
        })
        .collect();
    let p = Prepare::new(&lp, |_, _| {});
    p.start();
    lp.verify();
    drop(timers);
    lp.verify();
}

#[test]
fn default_loop_is_one_per_process_and_bound_to_a_thread() {
    let a = Loop::default_loop().unwrap();
    let b = Loop::default_loop().unwrap();
    assert!(a.ptr_eq(&b) && a.is_default());
    assert!(!Loop::new().unwrap().is_default());
    let err = std::thread::spawn(|| Loop::default_loop().map(|_| ()).unwrap_err().kind()).join().unwrap();
    assert_eq!(err, std::io::ErrorKind::ResourceBusy);
    drop((a, b));
    // Once every handle is gone, another thread may take it.
    let ok = std::thread::spawn(|| Loop::default_loop().map(|l| l.is_default())).join().unwrap();
    assert!(ok.unwrap());
}

#[test]
fn a_long_timer_does_not_delay_a_short_one() {
    let lp = Loop::new().unwrap();
    let t0 = Instant::now();
    // Unreferenced, so run returns after the short one; were it counted,
    // run would wait 30 s and the check below would fail.
    let long = Timer::new(&lp, Duration::from_secs(30), Duration::ZERO, |_, _| {});
    long.set_keeps_loop_alive(false);
    long.start();
    let short = Timer::new(&lp, Duration::from_millis(5), Duration::ZERO, |_, _| {});
    short.start();
    lp.run();
    assert!(t0.elapsed() < Duration::from_secs(10));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}

#[test]
fn userdata_is_typed_replaced_and_dropped_with_the_loop() {
    use std::rc::Rc;
    struct Flag(Rc<std::cell::Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let lp = Loop::new().unwrap();
    assert!(lp.userdata::<u32>().is_none());
    assert!(lp.set_userdata(7u32).is_none());
    assert_eq!(lp.userdata::<u32>().as_deref(), Some(&7));
    assert!(lp.userdata::<i64>().is_none());
    let old = lp.set_userdata("text").unwrap();
    assert_eq!(old.downcast_ref::<u32>(), Some(&7));
    let dropped = Rc::new(std::cell::Cell::new(false));
    lp.set_userdata(Flag(dropped.clone()));
    drop(lp);
    assert!(dropped.get());
}
