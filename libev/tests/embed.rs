//! `Embed`: one loop inside another. libev only supports io watchers in an
//! embedded loop, so that is what these tests use.

mod util;

use libev::{Backend, Cleanup, Embed, Events, Idle, Io, Loop, LoopFlags, Timer, TimerArray};
use std::cell::{Cell, RefCell};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;
use util::{Counter, pipe, read_byte, run_until, write_byte};

/// A new loop whose backend can be embedded (epoll on Linux), or `None`
/// (with a note) where there is none. `NOENV`: the backend `LIBEV_FLAGS`
/// names (tests/backends.rs) is the outer loops'. Never io_uring, which
/// libev lists as embeddable but which can spin in the outer loop's
/// prepare hook (see tests/backends.rs).
fn embeddable_loop() -> Option<Loop> {
    let usable = Loop::embeddable_backends() & Loop::supported_backends() & !Backend::IOURING;
    let backend = if usable.contains(Backend::EPOLL) { Backend::EPOLL } else { usable.iter().next()? };
    let lp = Loop::with_flags(LoopFlags::NOENV, backend).unwrap();
    assert_eq!(lp.backend(), backend);
    Some(lp)
}

macro_rules! embeddable_or_skip {
    () => {
        match embeddable_loop() {
            Some(lp) => lp,
            None => {
                eprintln!(
                    "note: no embeddable backend here ({:?}); test skipped",
                    Loop::embeddable_backends()
                );
                return;
            }
        }
    };
}

/// An Embed whose callback sweeps, counting its calls and recording (in
/// `sweeping`) when a sweep is under way.
fn sweeping_embed(outer: &Loop, inner: &Loop, calls: &Counter, sweeping: &Rc<Cell<bool>>) -> Embed {
    let (c, s) = (calls.clone(), sweeping.clone());
    Embed::new(outer, inner, move |e, ev| {
        assert!(ev.contains(Events::EMBED), "{ev:?}");
        c.bump();
        s.set(true);
        e.sweep();
        s.set(false);
    })
    .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn epoll_is_embeddable_on_linux() {
    assert!(Loop::embeddable_backends().contains(Backend::EPOLL));
}

#[test]
fn io_on_the_embedded_loop_fires_through_sweep() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let (calls, sweeping) = (Counter::new(), Rc::new(Cell::new(false)));
    let embed = sweeping_embed(&outer, &inner, &calls, &sweeping);
    embed.start();
    assert!(embed.is_active());

    let (r, w) = pipe();
    let got: Rc<RefCell<Vec<(u8, bool)>>> = Rc::default();
    let (g, s) = (got.clone(), sweeping.clone());
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, move |io, ev| {
        assert!(ev.contains(Events::READ));
        g.borrow_mut().push((read_byte(io.fd()).unwrap(), s.get()));
        io.stop();
    })
    .unwrap();
    io.start();
    // Let libev register the fd with the embedded loop's kernel state
    // before anything is readable.
    outer.run_nowait();
    assert!(got.borrow().is_empty());

    write_byte(&w, 42);
    run_until(&outer, "the embedded io event", || !got.borrow().is_empty());
    assert_eq!(*got.borrow(), [(42, true)], "the io callback ran inside Embed::sweep");
    assert!(calls.get() >= 1);
    embed.stop();
    assert!(!outer.run(), "nothing is left active on the outer loop");
}

#[test]
fn many_events_on_the_embedded_loop() {
    let inner = embeddable_or_skip!();
    let outer = Loop::with_flags(LoopFlags::empty(), Backend::POLL).unwrap();
    let (calls, sweeping) = (Counter::new(), Rc::new(Cell::new(false)));
    let embed = sweeping_embed(&outer, &inner, &calls, &sweeping);
    embed.start();
    let (r, w) = pipe();
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let g = got.clone();
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, move |io, _| {
        while let Some(b) = read_byte(io.fd()) {
            g.borrow_mut().push(b);
        }
    })
    .unwrap();
    io.start();
    outer.run_nowait();
    for i in 0..10 {
        write_byte(&w, i);
        run_until(&outer, "the next byte", || got.borrow().len() == i as usize + 1);
    }
    assert_eq!(*got.borrow(), (0..10).collect::<Vec<u8>>());
}

#[test]
fn embedding_a_loop_in_itself_is_invalid_input() {
    let lp = embeddable_or_skip!();
    let err = Embed::new(&lp, &lp.clone(), |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn embedding_a_select_or_poll_loop_is_unsupported() {
    let outer = Loop::new().unwrap();
    for b in [Backend::SELECT, Backend::POLL] {
        let inner = Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        let err = Embed::new(&outer, &inner, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "backend {b:?}");
    }
}

#[test]
fn embedding_a_loop_twice_or_in_a_cycle_is_refused() {
    let a = embeddable_or_skip!();
    let b = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let first = Embed::new(&outer, &a, |_, _| {}).unwrap();
    // Already embedded (in the same or another loop).
    assert_eq!(Embed::new(&outer, &a, |_, _| {}).unwrap_err().kind(), ErrorKind::ResourceBusy);
    assert_eq!(Embed::new(&b, &a, |_, _| {}).unwrap_err().kind(), ErrorKind::ResourceBusy);
    // `b` in `a`: then `a` in `b` would be a cycle (once `a` is free).
    let second = Embed::new(&a, &b, |_, _| {}).unwrap();
    drop(first);
    assert_eq!(Embed::new(&b, &a, |_, _| {}).unwrap_err().kind(), ErrorKind::InvalidInput);
    // With the first embed gone, `a` may be embedded again elsewhere.
    let again = Embed::new(&outer, &a, |_, _| {}).unwrap();
    assert!(again.embedded().ptr_eq(&a));
    drop(second);
    // And with `b` free again, the reverse direction is fine too.
    drop(again);
    let reverse = Embed::new(&b, &a, |_, _| {}).unwrap();
    assert!(reverse.embedded().ptr_eq(&a));
}

#[test]
fn embedded_returns_the_same_loop() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = Embed::new(&outer, &inner, |_, _| {}).unwrap();
    assert!(embed.embedded().ptr_eq(&inner));
    assert!(!embed.embedded().ptr_eq(&outer));
    assert!(embed.loop_handle().ptr_eq(&outer));
    assert!(!embed.is_active());
}

#[test]
fn embed_keeps_the_embedded_loop_alive() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let destroyed = Counter::new();
    let d = destroyed.clone();
    let cleanup = Cleanup::new(&inner, move |_, _| d.bump());
    cleanup.start();
    let (calls, sweeping) = (Counter::new(), Rc::new(Cell::new(false)));
    let embed = sweeping_embed(&outer, &inner, &calls, &sweeping);
    embed.start();
    drop(inner);
    assert_eq!(destroyed.get(), 0, "the embed holds the embedded loop");

    // Still fully usable through `embedded()`.
    let (r, w) = pipe();
    let n = Counter::new();
    let c = n.clone();
    let io = Io::new(&embed.embedded(), r.as_raw_fd(), Events::READ, move |io, _| {
        read_byte(io.fd()).unwrap();
        c.bump();
        io.stop();
    })
    .unwrap();
    io.start();
    outer.run_nowait();
    write_byte(&w, 1);
    run_until(&outer, "the embedded io event", || n.get() == 1);
    drop(io);
    assert_eq!(destroyed.get(), 0);

    // Dropping the embed releases the last handle: the loop is destroyed.
    drop(embed);
    assert_eq!(destroyed.get(), 1);
    assert!(!outer.run());
}

#[test]
fn stopped_embed_does_not_sweep() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = Embed::new(&outer, &inner, |_, _| unreachable!()).unwrap();
    embed.start();
    let (r, w) = pipe();
    let n = Counter::new();
    let c = n.clone();
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, move |io, _| {
        read_byte(io.fd());
        c.bump();
    })
    .unwrap();
    io.start();
    outer.run_nowait();
    embed.stop();
    write_byte(&w, 1);
    // Nothing on the outer loop watches the embedded one now.
    let t = Timer::new(&outer, Duration::from_millis(50), Duration::ZERO, |_, _| {});
    t.start();
    outer.run();
    assert_eq!(n.get(), 0);
    // The embedded loop can still be run directly.
    run_until(&inner, "the io event on the inner loop", || n.get() == 1);
}

#[test]
fn panic_in_an_embedded_callback_comes_out_of_the_outer_run() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = Embed::new(&outer, &inner, |e, _| e.sweep()).unwrap();
    embed.start();
    let (r, w) = pipe();
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, |io, _| {
        read_byte(io.fd());
        io.stop();
        panic!("inner boom");
    })
    .unwrap();
    io.start();
    outer.run_nowait();
    write_byte(&w, 1);
    let err = catch_unwind(AssertUnwindSafe(|| {
        run_until(&outer, "the embedded io event", || !io.is_active());
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"inner boom"));
    // Both loops are usable afterwards.
    assert!(!inner.run_nowait());
}

#[test]
fn panic_in_an_embedded_callback_run_before_the_first_poll_comes_out_of_the_outer_run() {
    // libev's ev_embed prepare hook runs `ev_run(embedded, EVRUN_NOWAIT)`
    // itself whenever the embedded loop has fd changes, so an embedded
    // callback can run without any sweep. Its panic must still come out of
    // the outer run (it used to be stored on the embedded loop and lost).
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = Embed::new(&outer, &inner, |e, _| e.sweep()).unwrap();
    embed.start();
    let (r, w) = pipe();
    write_byte(&w, 1); // readable before the io watcher is even registered
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, |io, _| {
        read_byte(io.fd());
        io.stop();
        panic!("inner boom");
    })
    .unwrap();
    io.start();
    // Run the outer loop for 50 ms (the embed keeps it alive for ever).
    let t = Timer::new(&outer, Duration::from_millis(50), Duration::ZERO, |_, _| {});
    t.start();
    let result = catch_unwind(AssertUnwindSafe(|| {
        while t.is_active() {
            outer.run_once();
        }
    }));
    assert!(!io.is_active(), "the io callback ran");
    let err = result.expect_err("the embedded callback's panic was swallowed");
    assert_eq!(err.downcast_ref::<&str>(), Some(&"inner boom"));
}

// libev runs an embedded loop on its own, from the prepare and fork
// watchers inside `ev_embed` (`embed_prepare_cb`, `embed_fork_cb`), where
// no Rust handle holds the loop or the `Embed`. Each test below makes the
// `Embed` the embedded loop's last holder, then has a callback of the
// embedded loop (run from one of those hooks) drop it and its own watcher:
// the loop and the watcher must outlive libev's use of them (issue 17.1;
// ASan and valgrind check these in CI).

type Slot<T> = Rc<RefCell<Option<T>>>;

/// An Embed of `inner` in `outer` that never sweeps (libev's own hooks
/// are what run the embedded loop here), started, in a slot.
fn started_embed(outer: &Loop, inner: &Loop) -> Slot<Embed> {
    let embed = Embed::new(outer, inner, |_, _| {}).unwrap();
    embed.start();
    Rc::new(RefCell::new(Some(embed)))
}

/// A started io watcher on `inner` that never fires (its pipe stays
/// empty), in a slot: it leaves the fd change that makes libev's prepare
/// hook run the embedded loop. Returns the pipe's write end too.
fn pending_fd_change(inner: &Loop) -> (Slot<Io>, std::os::fd::OwnedFd) {
    let (r, w) = pipe();
    let io = Io::new(inner, r.as_raw_fd(), Events::READ, move |_, _| {
        let _ = &r;
    })
    .unwrap();
    io.start();
    (Rc::new(RefCell::new(Some(io))), w)
}

#[test]
fn embed_dropped_by_an_io_callback_that_libevs_prepare_hook_runs() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = started_embed(&outer, &inner);
    let (r, w) = pipe();
    write_byte(&w, 1);
    let io_slot: Slot<Io> = Rc::default();
    let fired = Counter::new();
    let (e, me, f) = (embed.clone(), io_slot.clone(), fired.clone());
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, move |_, _| {
        f.bump();
        drop(me.borrow_mut().take());
        drop(e.borrow_mut().take());
    })
    .unwrap();
    // Starting it leaves an fd change pending: the outer loop's prepare
    // phase makes libev run the embedded loop, which finds the fd readable.
    io.start();
    *io_slot.borrow_mut() = Some(io);
    drop(inner);
    outer.run();
    assert_eq!(fired.get(), 1);
    assert!(embed.borrow().is_none() && io_slot.borrow().is_none());
    util::assert_loop_usable(&outer);
}

#[test]
fn embed_dropped_by_a_queued_callback_that_libevs_prepare_hook_runs() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = started_embed(&outer, &inner);
    // The queued callback drops the io watcher with the Embed.
    let (io_slot, _w) = pending_fd_change(&inner);
    let ran = Counter::new();
    let (e, i, n) = (embed.clone(), io_slot.clone(), ran.clone());
    // The queue keeps going (its batch loop reads the loop's state) after
    // this closure has dropped the loop's last holder.
    inner.run_callback(move || {
        n.bump();
        drop(i.borrow_mut().take());
        drop(e.borrow_mut().take());
    });
    inner.run_callback({
        let n = ran.clone();
        move || n.bump()
    });
    drop(inner);
    outer.run();
    assert_eq!(ran.get(), 2);
    assert!(embed.borrow().is_none());
    util::assert_loop_usable(&outer);
}

#[test]
fn embed_dropped_by_an_idle_callback_that_libevs_fork_hook_runs() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = started_embed(&outer, &inner);
    let idle_slot: Slot<Idle> = Rc::default();
    let ran = Counter::new();
    let (e, me, n) = (embed.clone(), idle_slot.clone(), ran.clone());
    let idle = Idle::new(&inner, move |_, _| {
        n.bump();
        drop(me.borrow_mut().take());
        drop(e.borrow_mut().take());
    });
    idle.start();
    *idle_slot.borrow_mut() = Some(idle);
    drop(inner);
    // After a fork, libev stops the embed watcher, runs the embedded loop
    // (the idle callback drops the Embed), then starts the watcher again.
    outer.reinit_after_fork();
    outer.run();
    assert_eq!(ran.get(), 1);
    assert!(embed.borrow().is_none() && idle_slot.borrow().is_none());
    util::assert_loop_usable(&outer);
}

#[test]
fn embed_dropped_by_a_timer_array_callback_that_libevs_prepare_hook_runs() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = started_embed(&outer, &inner);
    let (io_slot, _w) = pending_fd_change(&inner);
    let timers_slot: Slot<TimerArray> = Rc::default();
    let fired = Counter::new();
    let (e, i, me, f) = (embed.clone(), io_slot.clone(), timers_slot.clone(), fired.clone());
    let timers = TimerArray::new(&inner, 2, move |_, idx, _| {
        f.bump();
        if idx == 0 {
            drop(me.borrow_mut().take());
            drop(i.borrow_mut().take());
            drop(e.borrow_mut().take());
        }
    });
    timers.set(0, Duration::ZERO, Duration::ZERO);
    timers.set(1, Duration::ZERO, Duration::ZERO);
    timers.start(0);
    timers.start(1);
    *timers_slot.borrow_mut() = Some(timers);
    drop(inner);
    outer.run();
    assert!(fired.get() >= 1, "the embedded loop's timers ran");
    assert!(embed.borrow().is_none() && timers_slot.borrow().is_none());
    util::assert_loop_usable(&outer);
}

#[test]
fn a_panic_in_a_callback_run_by_libevs_prepare_hook_comes_out_of_the_outer_run() {
    let inner = embeddable_or_skip!();
    let outer = Loop::new().unwrap();
    let embed = started_embed(&outer, &inner);
    let (r, w) = pipe();
    write_byte(&w, 1);
    let io = Io::new(&inner, r.as_raw_fd(), Events::READ, |io, _| {
        io.stop();
        panic!("from the embedded loop");
    })
    .unwrap();
    io.start();
    let err = catch_unwind(AssertUnwindSafe(|| outer.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"from the embedded loop"));
    drop((io, embed));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
