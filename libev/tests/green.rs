//! libev::green: spawn, join, yield, sleep, kill, timeouts, panics.
//! Each test runs on its own thread, so each has its own hub.

use libev::green::{self, GreenletError};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

#[test]
fn spawn_and_join_from_the_root() {
    let g = green::spawn(|| 40 + 2);
    assert!(!g.is_finished());
    assert_eq!(g.join().unwrap(), 42);
    let named = green::Builder::new().name("worker").stack_size(64 * 1024).spawn(|| "ok").unwrap();
    assert_eq!(named.name(), Some("worker"));
    assert_eq!(named.join().unwrap(), "ok");
}

#[test]
fn yield_now_runs_every_other_ready_greenlet_in_order() {
    let log: Rc<RefCell<Vec<(char, u32)>>> = Rc::default();
    let gs: Vec<_> = ['a', 'b', 'c']
        .into_iter()
        .map(|name| {
            let log = log.clone();
            green::spawn(move || {
                for round in 0..3 {
                    log.borrow_mut().push((name, round));
                    green::yield_now();
                }
            })
        })
        .collect();
    for r in green::joinall(gs) {
        r.unwrap();
    }
    let expect: Vec<_> = (0..3).flat_map(|r| ['a', 'b', 'c'].map(|n| (n, r))).collect();
    assert_eq!(*log.borrow(), expect);
}

#[test]
fn root_yield_lets_greenlets_run() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let _g = green::spawn(move || r.set(r.get() + 1));
    green::yield_now();
    assert_eq!(ran.get(), 1);
}

#[test]
fn sleep_never_returns_early() {
    for d in [MS, MS * 5, MS * 20] {
        let t0 = Instant::now();
        green::sleep(d);
        assert!(t0.elapsed() >= d, "root slept {:?} < {d:?}", t0.elapsed());
    }
    let g = green::spawn(|| {
        let t0 = Instant::now();
        green::sleep(MS * 15);
        t0.elapsed()
    });
    assert!(g.join().unwrap() >= MS * 15);
}

#[test]
fn sleepers_wake_in_deadline_order() {
    let log: Rc<RefCell<Vec<u32>>> = Rc::default();
    let gs: Vec<_> = [30u32, 10, 20]
        .into_iter()
        .map(|ms| {
            let log = log.clone();
            green::spawn(move || {
                green::sleep(MS * ms);
                log.borrow_mut().push(ms);
            })
        })
        .collect();
    green::joinall(gs);
    assert_eq!(*log.borrow(), [10, 20, 30]);
}

#[test]
fn spawn_later_starts_after_its_delay() {
    let t0 = Instant::now();
    let g = green::spawn_later(MS * 10, move || t0.elapsed());
    assert!(g.join().unwrap() >= MS * 10);
}

struct SetOnDrop(Rc<Cell<bool>>);
impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn kill_unwinds_a_greenlet_blocked_in_sleep_running_destructors() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let g = green::spawn(move || {
        let _guard = SetOnDrop(d);
        green::sleep(Duration::from_secs(3600));
        unreachable!()
    });
    green::yield_now(); // let it start and block
    g.kill();
    assert!(g.is_finished());
    assert!(dropped.get(), "destructors on the killed stack ran");
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

#[test]
fn kill_a_greenlet_queued_by_yield_now() {
    // The greenlet is ready, not blocked: the kill reaches it when the
    // scheduler resumes it, and the other greenlet keeps running.
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let spins = Rc::new(Cell::new(0u32));
    let s = spins.clone();
    let g = green::spawn(move || {
        let _guard = SetOnDrop(d);
        loop {
            s.set(s.get() + 1);
            green::yield_now();
        }
    });
    let other = green::spawn(|| {
        for _ in 0..10 {
            green::yield_now();
        }
        7
    });
    green::yield_now(); // both have run once and are queued again
    assert_eq!(spins.get(), 1);
    g.kill();
    assert!(dropped.get(), "destructors on the killed stack ran");
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
    assert_eq!(other.join().unwrap(), 7);
}

#[test]
fn with_timeout_ends_a_greenlet_that_only_yields() {
    // The ready queue never empties, so the timer is seen only through
    // the scheduler's periodic poll; its interrupt then reaches a
    // greenlet that is queued, not blocked.
    let start = Instant::now();
    let r = green::with_timeout(5 * MS, || {
        loop {
            green::yield_now();
        }
    });
    assert!(r.is_err());
    assert!(start.elapsed() >= 5 * MS);
    let g = green::spawn(|| {
        green::with_timeout(5 * MS, || {
            loop {
                green::yield_now();
            }
        })
        .is_err()
    });
    assert!(g.join().unwrap());
}

#[test]
fn kill_a_greenlet_blocked_in_join() {
    // The sleeper outlives the joiner, but not the test: a greenlet still
    // blocked when its thread exits is leaked, with its loop.
    let sleeper = green::spawn(|| green::sleep(MS * 20));
    let joiner = green::spawn(move || {
        let _ = sleeper.join();
        unreachable!()
    });
    green::yield_now();
    joiner.kill();
    assert!(matches!(joiner.join(), Err(GreenletError::Killed)));
    green::sleep(MS * 40); // let the detached sleeper finish
}

#[test]
fn kill_a_greenlet_blocked_in_a_timeout() {
    let g = green::spawn(|| {
        green::with_timeout(Duration::from_secs(3600), || green::sleep(Duration::from_secs(3600)))
    });
    green::yield_now();
    g.kill();
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

#[test]
fn kill_before_start_never_runs_it_and_drops_the_closure() {
    let token = Rc::new(());
    let t = token.clone();
    let g = green::spawn(move || {
        let _ = &t;
        unreachable!()
    });
    assert_eq!(Rc::strong_count(&token), 2);
    g.kill();
    assert_eq!(Rc::strong_count(&token), 1);
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

#[test]
fn a_greenlet_can_kill_itself() {
    let slot: Rc<RefCell<Option<green::Greenlet<()>>>> = Rc::default();
    let (mine, after, dropped) = (slot.clone(), Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let (a, d) = (after.clone(), dropped.clone());
    let g = green::spawn(move || {
        let _guard = SetOnDrop(d);
        let me = mine.borrow_mut().take().unwrap();
        me.kill(); // unwinds at once
        a.set(true);
    });
    let ended = Rc::new(Cell::new(false));
    let e = ended.clone();
    g.link(move || e.set(true));
    *slot.borrow_mut() = Some(g);
    green::yield_now();
    assert!(ended.get() && dropped.get());
    assert!(!after.get(), "kill returned in the killed greenlet");
}

#[test]
fn timeouts_nest_and_resolve_at_their_owner() {
    // Inner fires: the inner scope fails, the outer succeeds.
    let r = green::with_timeout(MS * 500, || {
        green::with_timeout(MS * 2, || green::sleep(Duration::from_secs(5)))
    });
    assert!(matches!(r, Ok(Err(green::Elapsed { .. }))), "{r:?}");
    // Outer fires: the outer scope fails, unwinding through the inner one.
    let inner_done = Rc::new(Cell::new(false));
    let i = inner_done.clone();
    let r = green::with_timeout(MS * 2, || {
        let x = green::with_timeout(MS * 500, || green::sleep(Duration::from_secs(5)));
        i.set(true);
        x
    });
    assert!(r.is_err());
    assert!(!inner_done.get());
    // Both expire while blocked: the outer wins.
    let r = green::with_timeout(MS * 3, || {
        let x = green::with_timeout(MS * 3, || green::sleep(MS * 50));
        (x, "inner scope continued")
    });
    assert!(r.is_err(), "the outer scope's deadline came first: {r:?}");
    // Neither.
    assert_eq!(green::with_timeout(MS * 500, || green::with_timeout(MS * 500, || 5)), Ok(Ok(5)));
}

#[test]
fn a_timeout_after_its_scope_ended_does_nothing() {
    assert_eq!(green::with_timeout(MS * 2, || 1), Ok(1));
    // Sleep past the deadline of the finished scope: no interrupt arrives.
    green::sleep(MS * 10);
}

#[test]
fn timeout_of_a_computation_that_never_blocks_is_ignored() {
    let r = green::with_timeout(Duration::ZERO, || (0..1000u64).sum::<u64>());
    assert_eq!(r, Ok(499_500));
}

#[test]
fn panics_come_back_from_join_with_their_payload() {
    let g = green::spawn(|| -> u32 { std::panic::panic_any(17u8) });
    match g.join() {
        Err(GreenletError::Panicked(p)) => assert_eq!(p.downcast_ref::<u8>(), Some(&17)),
        other => panic!("{other:?}"),
    }
    // Only that greenlet ended: others go on.
    assert_eq!(green::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn ten_thousand_greenlets_each_spawn_and_join_a_child() {
    let gs: Vec<_> =
        (0..10_000u64).map(|i| green::spawn(move || green::spawn(move || i * 2).join().unwrap())).collect();
    let total: u64 = green::joinall(gs).into_iter().map(Result::unwrap).sum();
    assert_eq!(total, 2 * (0..10_000u64).sum::<u64>());
}

#[test]
fn blocking_inside_a_hub_callback_is_refused() {
    let lp = green::hub_loop();
    let t = libev::Timer::new(&lp, MS, Duration::ZERO, |_, _| green::sleep(MS));
    t.start();
    let err = catch_unwind(AssertUnwindSafe(|| green::sleep(MS * 20))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("BlockingSwitchOutError"), "{msg}");
}

#[test]
fn spawn_blocking_from_a_hundred_greenlets_at_once() {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    // A greenlet that keeps running while the others are parked.
    let ticker = green::spawn(move || {
        while !d.get() {
            t.set(t.get() + 1);
            green::sleep(MS);
        }
    });
    let gs: Vec<_> = (0..100u64)
        .map(|i| {
            green::spawn(move || {
                green::spawn_blocking(move || {
                    std::thread::sleep(MS * 5);
                    (i, std::thread::current().name().map(str::to_owned))
                })
            })
        })
        .collect();
    for (i, r) in green::joinall(gs).into_iter().enumerate() {
        let (v, thread) = r.unwrap();
        assert_eq!(v, i as u64);
        assert_eq!(thread.as_deref(), Some("libev-blocking"));
    }
    done.set(true);
    ticker.join().unwrap();
    assert!(ticks.get() > 1, "the hub kept running greenlets while the pool worked");
}

#[test]
fn spawn_blocking_reraises_the_jobs_panic_in_the_caller() {
    let g = green::spawn(|| green::spawn_blocking(|| -> u8 { panic!("in the pool") }));
    match g.join() {
        Err(GreenletError::Panicked(p)) => assert_eq!(p.downcast_ref::<&str>(), Some(&"in the pool")),
        other => panic!("{other:?}"),
    }
    // From the root too.
    let err = catch_unwind(|| green::spawn_blocking(|| panic!("root job"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"root job"));
}

#[test]
fn a_greenlet_killed_while_waiting_on_the_pool_ends_at_once() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let g = green::spawn(move || {
        green::spawn_blocking(move || {
            let _ = rx.recv_timeout(Duration::from_secs(10));
        })
    });
    green::yield_now();
    g.kill();
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
    tx.send(()).unwrap(); // the job finishes later; its result is dropped
    green::sleep(MS * 5);
}

#[test]
fn panics_nobody_joins_are_reported_once_and_joined_ones_are_not() {
    type Seen = Vec<(u64, Option<String>, String)>;
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let s = seen.clone();
    green::set_unjoined_panic_handler(move |r| {
        s.borrow_mut().push((r.id, r.name.map(str::to_owned), r.message.to_owned()))
    });
    // Detached before it panics.
    let g = green::Builder::new().name("early").spawn(|| panic!("detached")).unwrap();
    let early = g.id();
    drop(g);
    green::yield_now();
    // Panics first, handle dropped afterwards without join.
    let g = green::spawn(|| panic!("dropped later"));
    let late = g.id();
    green::yield_now();
    assert!(g.is_finished());
    drop(g);
    // Joined: the caller sees it, nothing is reported.
    assert!(green::spawn(|| panic!("joined")).join().is_err());
    // Killed ones are not panics.
    let k = green::spawn(|| green::sleep(Duration::from_secs(60)));
    green::yield_now();
    k.kill();
    drop(k);
    assert_eq!(
        *seen.borrow(),
        [(early, Some("early".to_owned()), "detached".to_owned()), (late, None, "dropped later".to_owned())]
    );
}

#[test]
fn a_detached_greenlets_value_is_dropped_as_it_ends_and_a_panicking_drop_is_reported() {
    // The value of a greenlet nobody holds a handle to is dropped when its
    // body ends, on its own stack; a panic of that drop is reported like
    // any unjoined panic and reaches neither the scheduler nor the caller.
    struct Value(Rc<Cell<u32>>, bool);
    impl Drop for Value {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
            if self.1 {
                panic!("value's drop");
            }
        }
    }
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    green::set_unjoined_panic_handler(move |r| s.borrow_mut().push(r.message.to_owned()));
    let drops = Rc::new(Cell::new(0));
    for panics in [false, true] {
        let d = drops.clone();
        let g = green::spawn(move || {
            green::sleep(MS);
            Value(d, panics)
        });
        drop(g);
        let before = drops.get();
        green::sleep(MS * 20);
        assert_eq!(drops.get(), before + 1, "dropped once as it ended (panics: {panics})");
    }
    assert_eq!(*seen.borrow(), ["value's drop"]);
    // Joined, the value is the caller's; unjoined but held, dropped with
    // the handle.
    let d = drops.clone();
    let g = green::spawn(move || Value(d, false));
    green::yield_now();
    assert!(g.is_finished());
    assert_eq!(drops.get(), 2, "kept while the handle lives");
    drop(g);
    assert_eq!(drops.get(), 3);
}

#[test]
fn links_of_a_detached_greenlet_see_how_it_ended() {
    // The handle goes while the greenlet runs: its value is still what
    // `link_value` and `link_exception` look at.
    let ran: Rc<RefCell<Vec<&str>>> = Rc::default();
    let g = green::spawn(|| {
        green::sleep(MS);
        1
    });
    let (a, b) = (ran.clone(), ran.clone());
    g.link_value(move || a.borrow_mut().push("value"));
    g.link_exception(move || b.borrow_mut().push("exception"));
    drop(g);
    green::sleep(MS * 20);
    assert_eq!(*ran.borrow(), ["value"]);
}

#[test]
fn a_kill_swallowed_by_the_body_is_not_reported_when_its_value_is_dropped() {
    // The value's destructor runs after the greenlet ended, so a kill it
    // caught earlier is not raised again there, nor reported as a panic.
    struct Value(Rc<Cell<bool>>);
    impl Drop for Value {
        fn drop(&mut self) {
            green::yield_now();
            self.0.set(true);
        }
    }
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    green::set_unjoined_panic_handler(move |r| s.borrow_mut().push(r.message.to_owned()));
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let g = green::spawn(move || {
        let _ = catch_unwind(AssertUnwindSafe(|| green::sleep(Duration::from_secs(60))));
        Value(d)
    });
    green::yield_now();
    g.kill_nowait();
    drop(g);
    green::sleep(MS * 20);
    assert!(dropped.get());
    assert!(seen.borrow().is_empty(), "{:?}", seen.borrow());
}

#[test]
fn timeout_guard_expiry_ends_the_greenlet_or_can_be_caught() {
    // Uncaught: the greenlet ends with TimedOut, destructors run.
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let g = green::spawn(move || {
        let _guard = SetOnDrop(d);
        let _t = green::Timeout::start(MS * 2);
        green::sleep(Duration::from_secs(10));
    });
    assert!(matches!(g.join(), Err(GreenletError::TimedOut)));
    assert!(dropped.get());
    // Caught by the code itself, from the root.
    let err = catch_unwind(AssertUnwindSafe(|| {
        let t = green::Timeout::start(MS * 2);
        green::sleep(Duration::from_secs(10));
        drop(t);
    }))
    .unwrap_err();
    assert!(err.downcast_ref::<green::Elapsed>().is_some());
    // Dropped in time: nothing happens later.
    {
        let t = green::Timeout::start(MS * 2);
        assert!(!t.expired());
    }
    green::sleep(MS * 10);
}

#[test]
fn with_timeout_passes_on_a_guards_expiry() {
    // The guard is outer, with_timeout inner: the guard's expiry is not
    // with_timeout's, so it passes through and ends the greenlet.
    let g = green::spawn(|| {
        let _t = green::Timeout::start(MS * 2);
        green::with_timeout(Duration::from_secs(10), || green::sleep(Duration::from_secs(10)))
    });
    assert!(matches!(g.join(), Err(GreenletError::TimedOut)));
}

#[test]
fn a_join_that_timed_out_does_not_wake_a_later_wait() {
    use libev::green::sync::Event;
    let (release, gave_up) = (Event::new(), Event::new());
    let target = {
        let release = release.clone();
        green::spawn(move || release.wait())
    };
    let waiter = {
        let gave_up = gave_up.clone();
        green::spawn(move || {
            // The target cannot end before `release` is set: this join
            // times out for sure.
            assert!(green::with_timeout(MS, move || target.join()).is_err());
            gave_up.set();
            let t0 = Instant::now();
            green::sleep(MS * 30);
            t0.elapsed()
        })
    };
    gave_up.wait();
    // The target ends while the waiter sleeps: its stale join must not
    // cut that sleep short.
    release.set();
    assert!(waiter.join().unwrap() >= MS * 30, "the target's end woke a stale joiner");
}

#[test]
fn panicking_links_are_reported_and_the_others_still_run() {
    let seen: Rc<RefCell<Vec<(bool, String)>>> = Rc::default();
    let s = seen.clone();
    green::set_unjoined_panic_handler(move |r| s.borrow_mut().push((r.from_link, r.message.to_owned())));
    let ran = Rc::new(Cell::new(0));
    let g = green::spawn(|| 1);
    g.link(|| panic!("bad link"));
    let r = ran.clone();
    g.link(move || r.set(r.get() + 1));
    assert_eq!(g.join().unwrap(), 1);
    assert_eq!(ran.get(), 1);
    assert_eq!(*seen.borrow(), [(true, "bad link".to_owned())]);
}

/// A link that blocks (issue 17.5): joiners were woken before the links
/// ran, and a blocking link used to leave the greenlet looking unfinished,
/// so a later join panicked with the loop-exit error.
#[test]
fn links_may_block_and_a_later_join_still_gets_the_value() {
    let order: Rc<RefCell<Vec<&str>>> = Rc::default();
    let g = green::spawn(|| 5);
    let o = order.clone();
    g.link(move || {
        o.borrow_mut().push("link starts");
        green::sleep(MS * 10);
        o.borrow_mut().push("link ends");
    });
    let o = order.clone();
    g.link(move || o.borrow_mut().push("second link"));
    green::yield_now();
    assert!(g.is_finished(), "finished while its first link sleeps");
    assert_eq!(*order.borrow(), ["link starts"]);
    // Killing a finished greenlet whose link still runs does nothing.
    g.kill();
    assert_eq!(g.join().unwrap(), 5);
    green::sleep(MS * 30);
    assert_eq!(*order.borrow(), ["link starts", "link ends", "second link"]);
}

/// gevent's `test__greenlet.py` `TestJoin`-style case: a link that waits
/// for another greenlet, and joiners of the linked greenlet.
#[test]
fn a_link_waiting_on_another_greenlet_does_not_lose_joiners() {
    let ev = green::sync::Event::new();
    let g = green::spawn(|| "v");
    let e = ev.clone();
    g.link(move || e.wait());
    let g = Rc::new(g);
    let joiner = {
        let g = g.clone();
        green::spawn(move || {
            while !g.is_finished() {
                green::yield_now();
            }
        })
    };
    joiner.join().unwrap();
    ev.set();
    green::yield_now();
    assert_eq!(Rc::try_unwrap(g).ok().unwrap().join().unwrap(), "v");
}

/// A greenlet may not run its hub's loop (issue 17.7): it would sit inside
/// `ev_run` while switched out, and every blocking call of the root would
/// then panic as if made inside a callback.
#[test]
fn a_greenlet_running_the_hub_loop_is_refused_with_a_clear_panic() {
    let g = green::spawn(|| green::hub_loop().run_once());
    let err = match g.join() {
        Err(GreenletError::Panicked(p)) => format!("{}", GreenletError::Panicked(p)),
        other => panic!("{other:?}"),
    };
    assert!(err.contains("cannot run its hub's loop"), "{err}");
    // The root still blocks normally.
    green::sleep(MS);
    // The root itself may run the loop (raw watchers alongside greenlets).
    let lp = green::hub_loop();
    let t = libev::Timer::new(&lp, MS, Duration::ZERO, |_, _| {});
    t.start();
    lp.run();
}

/// Stack sizes that overflow the slab arithmetic are an error (issue 17.9:
/// `usize::MAX` used to wrap and segfault).
#[test]
fn absurd_stack_sizes_are_an_error_not_a_crash() {
    for size in [usize::MAX, usize::MAX / 2, 1 << 60] {
        let e = green::Builder::new().stack_size(size).spawn(|| ()).unwrap_err();
        assert!(
            matches!(e.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::OutOfMemory),
            "{size}: {e}"
        );
    }
    // Big but mappable: fine (no memory is committed until touched).
    let g = green::Builder::new().stack_size(64 << 20).spawn(|| 1).unwrap();
    assert_eq!(g.join().unwrap(), 1);
}

/// A closure larger than what corosensei copies onto a new stack (1 KiB)
/// spawns like any other (it used to panic with "type is too big to
/// transfer").
#[test]
fn greenlets_may_capture_large_values() {
    let big = [3u8; 4096];
    let g = green::spawn(move || big.iter().map(|&b| b as u32).sum::<u32>());
    assert_eq!(g.join().unwrap(), 3 * 4096);
    // Killed before it starts, its closure is dropped all the same.
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>, #[allow(dead_code)] [u8; 2048]);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone(), [0; 2048]);
    let g = green::spawn(move || drop(flag));
    g.kill();
    assert!(dropped.get());
}

/// Set (to the test's name) in a child process running one test.
const CHILD: &str = "LIBEV_GREEN_CHILD";

/// A greenlet that overflows its stack is reported as std reports a
/// thread (issue 17.12), then the process aborts.
#[test]
fn a_stack_overflow_names_the_greenlet_and_aborts() {
    if std::env::var_os(CHILD).is_some_and(|v| v == "overflow") {
        #[allow(unconditional_recursion)]
        fn deep(n: u64) -> u64 {
            let pad = [n; 64];
            std::hint::black_box(&pad);
            deep(n + 1) + pad[7]
        }
        let g = green::Builder::new().name("deep diver").stack_size(64 * 1024).spawn(|| deep(0)).unwrap();
        let _ = g.join();
        unreachable!("the overflow aborts the process");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_stack_overflow_names_the_greenlet_and_aborts",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "overflow")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("greenlet ") && stderr.contains("'deep diver' has overflowed its stack"),
        "{stderr}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}: {stderr}", out.status);
}

/// The links of a greenlet killed before it ran run on the killer's stack;
/// a timeout of the killer that expires in a link's blocking call belongs
/// to the killer (found by `fuzz_greenlets`, seed 64: it was caught as the
/// link's panic and reported, and the killer's timeout was lost).
#[test]
fn an_interrupt_of_the_killer_raised_in_a_link_reaches_the_killer() {
    let reports: Rc<RefCell<Vec<String>>> = Rc::default();
    let r = reports.clone();
    green::set_unjoined_panic_handler(move |p| r.borrow_mut().push(p.message.to_owned()));
    let target = green::spawn(|| ());
    let second_link_ran = Rc::new(Cell::new(false));
    target.link(|| green::sleep(Duration::from_secs(10)));
    let s = second_link_ran.clone();
    target.link(move || s.set(true));
    let t0 = Instant::now();
    let r = green::with_timeout(MS * 5, || target.kill());
    assert!(r.is_err(), "the killer's timeout came out of its with_timeout");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(second_link_ran.get(), "the other links still ran");
    assert!(reports.borrow().is_empty(), "{:?}", reports.borrow());
    assert!(matches!(target.join(), Err(GreenletError::Killed)));
}

/// Thousands of greenlets that only yield keep the ready queue full, so
/// the loop runs only through the scheduler's forced polls: a socket's
/// data still reaches its reader, and a timer still fires, while they
/// yield.
#[test]
fn many_yielding_greenlets_do_not_starve_io_or_timers() {
    let stop = Rc::new(Cell::new(false));
    let yielders: Vec<_> = (0..3000)
        .map(|_| {
            let stop = stop.clone();
            green::spawn(move || {
                while !stop.get() {
                    green::yield_now();
                }
            })
        })
        .collect();
    use std::io::{Read, Write};
    let (mut a, mut b) = libev::green::net::UnixStream::pair().unwrap();
    let reader = green::spawn(move || {
        let mut buf = [0u8; 1];
        b.read_exact(&mut buf).unwrap();
        buf[0]
    });
    green::yield_now();
    a.write_all(b"x").unwrap();
    let start = Instant::now();
    assert_eq!(reader.join().unwrap(), b'x');
    green::sleep(MS); // a timer, while they yield
    assert!(start.elapsed() < Duration::from_secs(30));
    stop.set(true);
    for g in yielders {
        g.join().unwrap();
    }
}
