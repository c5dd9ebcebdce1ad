//! Changing a watcher's callback (libev's `ev_set_cb`) and re-setting its
//! parameters (`ev_*_set` on a live watcher) with stopped-or-restart
//! semantics.

mod util;

use libev::{Async, Child, Embed, Events, Idle, Io, Loop, LoopFlags, Periodic, Signal, Stat, Timer};
use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;
use util::{Counter, pipe, run_until, write_byte};

#[test]
fn set_callback_keeps_parameters_priority_and_activity() {
    let lp = Loop::new().unwrap();
    let (old, new) = (Counter::new(), Counter::new());
    let o = old.clone();
    let mut t = Timer::new(&lp, Duration::from_millis(1), Duration::from_millis(1), move |_, _| o.bump());
    t.set_priority(2).unwrap();
    t.set_keeps_loop_alive(false);
    t.start();
    let n = new.clone();
    t.set_callback(move |t, ev| {
        assert_eq!(ev, Events::TIMER);
        n.bump();
        if n.get() == 3 {
            t.stop();
        }
    });
    assert!(t.is_active());
    assert_eq!(t.priority(), 2);
    assert!(!t.keeps_loop_alive());
    assert_eq!(t.repeat(), Duration::from_millis(1));
    // Unreferenced: run would return at once; a keeper holds it.
    let keeper = Timer::new(&lp, Duration::from_millis(50), Duration::ZERO, |_, _| {});
    keeper.start();
    run_until(&lp, "three ticks", || new.get() == 3);
    assert_eq!(old.get(), 0);
    assert!(!t.is_active());
    drop(keeper);
    assert!(!lp.run(), "the loop's reference count is balanced");
}

#[test]
fn set_callback_moves_a_pending_event_to_the_new_callback() {
    let lp = Loop::new().unwrap();
    let mut idle = Idle::new(&lp, |_, _| panic!("the old callback"));
    idle.feed_event(Events::CUSTOM);
    let got = Rc::new(Cell::new(Events::empty()));
    let g = got.clone();
    idle.set_callback(move |_, ev| g.set(ev));
    assert!(idle.is_pending());
    lp.run_nowait();
    assert_eq!(got.get(), Events::CUSTOM);
}

/// From inside the watcher's own callback, `set_callback` panics: that
/// callback's `&Io` would go on referring to the old watcher, whose
/// resources moved to the new one. The watcher keeps its callback.
#[test]
fn set_callback_from_inside_its_own_callback_panics() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let rfd = r.as_raw_fd();
    let slot: Rc<RefCell<Option<Io>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let calls = Counter::new();
    let c = calls.clone();
    let io = Io::new(&lp, rfd, Events::READ, move |_, _| {
        c.bump();
        let _ = util::read_byte(rfd);
        s.borrow_mut().as_mut().unwrap().set_callback(|_, _| unreachable!());
    })
    .unwrap();
    io.start();
    *slot.borrow_mut() = Some(io);
    write_byte(&w, 1);
    let p = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_once())).unwrap_err();
    let msg =
        p.downcast_ref::<&str>().copied().or(p.downcast_ref::<String>().map(String::as_str)).unwrap_or("");
    assert!(msg.contains("own callback"), "{msg}");
    write_byte(&w, 2);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run_once()));
    assert_eq!(calls.get(), 2, "the old callback is still the one called");
    // Outside its callback it works.
    let got = Counter::new();
    let g = got.clone();
    slot.borrow_mut().as_mut().unwrap().set_callback(move |io, _| {
        let _ = util::read_byte(rfd);
        g.bump();
        io.stop();
    });
    write_byte(&w, 3);
    lp.run();
    assert_eq!(got.get(), 1);
    slot.borrow_mut().take();
}

#[test]
fn set_callback_on_an_async_keeps_its_senders() {
    let lp = Loop::new().unwrap();
    let got = Counter::new();
    let mut a = Async::new(&lp, |_, _| panic!("the old callback"));
    a.start();
    let sender = a.sender();
    let g = got.clone();
    a.set_callback(move |a, _| {
        g.bump();
        a.stop();
    });
    std::thread::spawn(move || assert!(sender.send())).join().unwrap();
    lp.run();
    assert_eq!(got.get(), 1);
}

#[test]
fn set_callback_on_a_sent_async_keeps_the_send() {
    let lp = Loop::new().unwrap();
    let mut a = Async::new(&lp, |_, _| panic!("the old callback"));
    a.start();
    a.send();
    let got = Counter::new();
    let g = got.clone();
    a.set_callback(move |a, _| {
        g.bump();
        a.stop();
    });
    lp.run();
    assert_eq!(got.get(), 1);
}

#[test]
fn set_callback_moves_what_the_watcher_owns() {
    let lp = Loop::new().unwrap();
    // A stat watcher's path.
    let dir = std::env::temp_dir().join(format!("libev-setcb-{}", std::process::id()));
    let mut st = Stat::new(&lp, &dir, Duration::ZERO, |_, _| {}).unwrap();
    st.set_callback(|_, _| {});
    assert_eq!(st.path(), dir);
    // A periodic's reschedule closure.
    let mut p = Periodic::reschedule(&lp, |now| now + 3600.0, |_, _| {});
    p.start();
    p.set_callback(|_, _| {});
    assert!(p.is_active());
    assert!(p.next_time() > lp.now() + 3000.0);
    // An io watcher's owned fd: closed once, by the new watcher.
    let (r, w) = pipe();
    let mut io = Io::owning(&lp, r, Events::READ, |_, _| {}).unwrap();
    io.set_callback(|_, _| {});
    assert!(io.owns_fd());
    // The read end is open while the watcher owns it: writing works.
    write_byte(&w, 1);
    drop(io);
    // Closed with the watcher: the pipe has no reader left.
    // SAFETY: writes one byte from a live local; SIGPIPE is ignored by the
    // Rust runtime, so this fails with EPIPE.
    let n = unsafe { libc::write(w.as_raw_fd(), [0u8].as_ptr().cast(), 1) };
    assert_eq!((n, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::EPIPE)));
}

#[test]
fn signal_set_moves_to_another_signal() {
    let lp = Loop::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let s = Signal::new(&lp, libc::SIGUSR1, move |s, _| g.set(s.signum())).unwrap();
    s.start().unwrap();
    s.set(libc::SIGUSR2).unwrap();
    assert!(s.is_active());
    assert_eq!(s.signum(), libc::SIGUSR2);
    lp.feed_signal_event(libc::SIGUSR1).unwrap();
    lp.run_nowait();
    assert_eq!(got.get(), 0, "no longer watches SIGUSR1");
    lp.feed_signal_event(libc::SIGUSR2).unwrap();
    lp.run_nowait();
    assert_eq!(got.get(), libc::SIGUSR2);
    assert_eq!(s.set(libc::SIGKILL).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.set(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(s.signum(), libc::SIGUSR2, "unchanged after an error");
    // Another loop holds SIGWINCH: moving there fails and leaves it stopped.
    let other = Loop::new().unwrap();
    let holder = Signal::new(&other, libc::SIGWINCH, |_, _| {}).unwrap();
    holder.start().unwrap();
    assert_eq!(s.set(libc::SIGWINCH).unwrap_err().kind(), ErrorKind::ResourceBusy);
    assert!(!s.is_active());
}

#[test]
fn child_set_changes_the_pid() {
    // (One test for all the default loop's uses: a test binary's tests run
    // on several threads, and the default loop belongs to one.)
    let lp = Loop::default_loop().unwrap();
    // rpid and rstatus can be faked before feeding an event, as in C.
    let seen = Rc::new(Cell::new((0, 0)));
    let s = seen.clone();
    let fake = Child::new(&lp, 0, false, move |c, _| s.set((c.rpid(), c.rstatus()))).unwrap();
    fake.set_rpid(4242);
    fake.set_rstatus(3 << 8);
    assert_eq!(fake.exit_status().code(), Some(3));
    fake.feed_event(Events::CHILD);
    lp.run_nowait();
    assert_eq!(seen.get(), (4242, 3 << 8));
    drop(fake);
    let c = Child::new(&lp, 1, false, |_, _| {}).unwrap();
    c.start();
    #[allow(clippy::zombie_processes)] // libev reaps it
    let child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    c.set(pid, false).unwrap();
    assert!(c.is_active());
    assert_eq!(c.pid(), pid);
    assert_eq!(c.set(-1, false).unwrap_err().kind(), ErrorKind::InvalidInput);
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let mut c = c;
    c.set_callback(move |c, _| {
        assert_eq!(c.rpid(), c.pid());
        d.set(true);
        c.stop();
    });
    run_until(&lp, "the child", || done.get());
}

#[test]
fn stat_set_and_interval() {
    let lp = Loop::new().unwrap();
    let base = std::env::temp_dir().join(format!("libev-statset-{}", std::process::id()));
    let (a, b) = (base.with_extension("a"), base.with_extension("b"));
    let changes = Counter::new();
    let c = changes.clone();
    let st = Stat::new(&lp, &a, Duration::from_millis(200), move |_, _| c.bump()).unwrap();
    assert_eq!(st.interval(), Duration::from_millis(200));
    st.start();
    st.set(&b, Duration::from_millis(300)).unwrap();
    assert!(st.is_active());
    assert_eq!(st.path(), b);
    assert_eq!(st.interval(), Duration::from_millis(300));
    st.set_interval(Duration::from_millis(250));
    assert_eq!(st.interval(), Duration::from_millis(250));
    // libev raises shorter intervals to its minimum when it starts.
    st.set_interval(Duration::from_millis(1));
    assert!(st.interval() > Duration::from_millis(100), "{:?}", st.interval());
    assert_eq!(st.set("nul\0byte", Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(st.path(), b);
    std::fs::write(&b, b"x").unwrap();
    run_until(&lp, "the new path's creation", || changes.get() > 0);
    assert!(st.exists());
    std::fs::remove_file(&b).unwrap();
}

#[test]
fn embed_set_swaps_the_embedded_loop() {
    let outer = Loop::new().unwrap();
    let flags = LoopFlags::NOENV;
    let backend = libev::Loop::embeddable_backends() & libev::Loop::supported_backends();
    let first = Loop::with_flags(flags, backend).unwrap();
    let second = Loop::with_flags(flags, backend).unwrap();
    let e = Embed::new(&outer, &first, |e, _| e.sweep()).unwrap();
    e.start();
    e.set(&second).unwrap();
    assert!(e.is_active());
    assert!(e.embedded().ptr_eq(&second));
    // The first is free to be embedded elsewhere now.
    let other = Loop::new().unwrap();
    drop(Embed::new(&other, &first, |_, _| {}).unwrap());
    // The second's io runs through the outer loop.
    let (r, w) = pipe();
    let fired = Counter::new();
    let f = fired.clone();
    let io = Io::new(&second, r.as_raw_fd(), Events::READ, move |io, _| {
        f.bump();
        io.stop();
    })
    .unwrap();
    io.start();
    write_byte(&w, 1);
    // (libev may run it from the embed's prepare hook, before the outer
    // loop polls: so no blocking `run_once` here.)
    for _ in 0..1000 {
        outer.run_nowait();
        if fired.get() == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(fired.get(), 1);
    assert_eq!(e.set(&outer).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert!(e.embedded().ptr_eq(&second));
    e.set(&second).unwrap();
}

#[test]
fn periodic_set_and_setters() {
    let lp = Loop::new().unwrap();
    let p = Periodic::reschedule(&lp, |now| now + 3600.0, |_, _| {});
    p.start();
    let t = lp.now() + 100.0;
    p.set(t, Duration::ZERO).unwrap();
    assert!(p.is_active());
    assert_eq!(p.next_time(), t);
    assert_eq!(p.offset(), t);
    assert_eq!(p.set(f64::NAN, Duration::ZERO).unwrap_err().kind(), ErrorKind::InvalidInput);
    p.set(0.0, Duration::from_secs(60)).unwrap();
    assert_eq!(p.interval_duration(), Duration::from_secs(60));
    assert!(p.next_time() <= lp.now() + 60.0);
    // Field setters take effect at `again`, as in C.
    p.set_interval(Duration::from_secs(3600));
    p.set_offset(1.0).unwrap();
    assert_eq!(p.set_offset(f64::INFINITY).unwrap_err().kind(), ErrorKind::InvalidInput);
    p.again();
    assert_eq!((p.next_time() - 1.0) % 3600.0, 0.0);
    p.set_reschedule(|now| now + 7.0);
    assert!(p.is_active());
    assert!((p.next_time() - lp.now() - 7.0).abs() < 1.0);
    // A schedule that fires.
    let fired = Counter::new();
    let f = fired.clone();
    let q = Periodic::at(&lp, 1e12, move |_, _| f.bump()).unwrap();
    q.start();
    q.set_reschedule(|now| now);
    run_until(&lp, "the rescheduled periodic", || fired.get() > 0);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
