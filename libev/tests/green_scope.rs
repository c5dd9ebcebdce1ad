//! Scoped greenlets (`green::scope`, mirroring `std::thread::scope`):
//! borrowing from the caller, and the scope's guarantee that it returns or
//! unwinds only after every greenlet spawned in it has ended, tested at
//! each point of its life: `f` returning, panicking, killed, timed out;
//! the caller killed while it waits; children panicking, killed before
//! they start, spawning more children; a root that would wait forever.

use libev::green::{self, GreenletError, Timeout};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn greenlets_borrow_from_the_callers_stack_and_are_all_waited_for() {
    let mut counts = vec![0u32; 10];
    let log = RefCell::new(Vec::new());
    let r = green::scope(|s| {
        for (i, c) in counts.iter_mut().enumerate() {
            let log = &log;
            s.spawn(move || {
                green::sleep(MS * (10 - i as u32));
                *c += i as u32;
                log.borrow_mut().push(i);
            });
        }
        "done"
    });
    assert_eq!(r, "done");
    assert_eq!(counts, (0..10).collect::<Vec<_>>());
    assert_eq!(log.borrow().len(), 10, "every greenlet ended before scope returned");
}

#[test]
fn join_gives_values_and_a_taken_panic_does_not_make_scope_panic() {
    let x = 20;
    let (a, b) = green::scope(|s| {
        let a = s.spawn(|| x + 1);
        let b = s.spawn(|| -> u32 { panic!("child") });
        (a.join().unwrap(), b.join())
    });
    assert_eq!(a, 21);
    assert!(matches!(b, Err(GreenletError::Panicked(_))));
}

/// As `std::thread::scope`: a panic nobody joined makes `scope` panic once
/// every greenlet has ended.
#[test]
fn an_unjoined_panic_makes_scope_panic_after_all_ended() {
    let finished = Cell::new(false);
    let err = catch_unwind(AssertUnwindSafe(|| {
        green::scope(|s| {
            s.spawn(|| panic!("child"));
            s.spawn(|| {
                green::sleep(5 * MS);
                finished.set(true);
            });
        })
    }))
    .unwrap_err();
    assert!(finished.get());
    let msg = err.downcast_ref::<&str>().copied().or(err.downcast_ref::<String>().map(String::as_str));
    assert!(msg.unwrap_or_default().contains("scoped greenlet panicked"), "{msg:?}");
}

/// `f` panics while its greenlets run: they finish (not killed), then the
/// panic goes on.
#[test]
fn a_panic_in_f_waits_for_the_greenlets_then_goes_on() {
    let finished = Cell::new(0);
    let err = catch_unwind(AssertUnwindSafe(|| {
        green::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    green::sleep(3 * MS);
                    finished.set(finished.get() + 1);
                });
            }
            green::yield_now();
            panic!("in f");
        })
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"in f"));
    assert_eq!(finished.get(), 3);
}

/// The caller is killed at each point: before its greenlets ran, while
/// `f` waits, and once `f` returned and `scope` waits for them. Each time
/// they are killed and have ended before the caller's unwinding leaves
/// `scope`.
#[test]
fn the_caller_killed_anywhere_kills_and_waits_for_its_greenlets() {
    for point in ["before they run", "in f", "in the wait"] {
        let ended_before_caller = Rc::new(Cell::new(0));
        let running = Rc::new(Cell::new(0));
        let (e, r) = (ended_before_caller.clone(), running.clone());
        let caller = green::spawn(move || {
            struct Seen(Rc<Cell<u32>>, Rc<Cell<u32>>);
            impl Drop for Seen {
                fn drop(&mut self) {
                    // Runs as the caller unwinds out of `scope`.
                    assert_eq!(self.1.get(), 0, "no scoped greenlet still runs");
                    self.0.set(self.0.get() + 1);
                }
            }
            let _seen = Seen(e, r.clone());
            green::scope(|s| {
                for _ in 0..4 {
                    let r = &r;
                    s.spawn(move || {
                        r.set(r.get() + 1);
                        struct Down<'a>(&'a Cell<u32>);
                        impl Drop for Down<'_> {
                            fn drop(&mut self) {
                                self.0.set(self.0.get() - 1);
                            }
                        }
                        let _down = Down(r);
                        green::sleep(Duration::from_secs(60));
                    });
                }
                match point {
                    "before they run" => {}
                    "in f" => green::sleep(Duration::from_secs(60)),
                    _ => green::yield_now(),
                }
            });
            unreachable!("killed");
        });
        green::yield_now();
        if point != "before they run" {
            green::sleep(2 * MS);
        }
        caller.kill();
        assert!(matches!(caller.join(), Err(GreenletError::Killed)), "{point}");
        assert_eq!(ended_before_caller.get(), 1, "{point}");
        assert_eq!(running.get(), 0, "{point}");
    }
}

/// A timeout expiring inside the scope kills its greenlets and goes on.
#[test]
fn a_timeout_inside_the_scope_kills_its_greenlets() {
    let killed = Cell::new(0);
    let r = green::with_timeout(5 * MS, || {
        green::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    if let Err(p) = catch_unwind(|| green::sleep(Duration::from_secs(60))) {
                        killed.set(killed.get() + 1);
                        std::panic::resume_unwind(p);
                    }
                });
            }
            green::sleep(Duration::from_secs(60));
        })
    });
    assert!(r.is_err(), "timed out");
    assert_eq!(killed.get(), 3);
    // The same with the timeout hitting while `scope` waits for them.
    let t = Timeout::start(5 * MS);
    let r = catch_unwind(AssertUnwindSafe(|| {
        green::scope(|s| {
            s.spawn(|| green::sleep(Duration::from_secs(60)));
        })
    }));
    assert!(r.unwrap_err().is::<green::Elapsed>());
    drop(t);
}

/// A root whose scoped greenlets wait for something that can no longer
/// happen (gevent's LoopExit): they are killed, and `scope` returns.
#[test]
fn greenlets_that_can_never_wake_are_killed_at_the_end() {
    let event = green::sync::Event::new();
    let r = green::scope(|s| {
        let a = s.spawn(|| event.wait());
        let _b = s.spawn(|| event.wait());
        green::yield_now();
        (a.is_finished(), 5)
    });
    assert_eq!(r, (false, 5));
}

#[test]
fn greenlets_spawn_more_into_the_scope_and_may_be_killed_before_they_start() {
    let total = Cell::new(0);
    green::scope(|s| {
        let never = s.spawn(|| unreachable!("killed before it started"));
        never.kill();
        assert!(matches!(never.join(), Err(GreenletError::Killed)));
        for _ in 0..3 {
            let total = &total;
            s.spawn(move || {
                for _ in 0..3 {
                    s.spawn(move || {
                        green::sleep(MS);
                        total.set(total.get() + 1);
                    });
                }
            });
        }
    });
    assert_eq!(total.get(), 9, "grandchildren were waited for too");
}

#[test]
fn nested_scopes() {
    let mut v = vec![1, 2, 3];
    green::scope(|outer| {
        outer.spawn(|| {
            green::scope(|inner| {
                for x in v.iter_mut() {
                    inner.spawn(move || *x *= 10);
                }
            });
        });
    });
    assert_eq!(v, [10, 20, 30]);
}

/// Refused where it could not wait: inside a libev callback.
#[test]
fn scope_is_refused_inside_a_callback() {
    let refused = Rc::new(Cell::new(false));
    let r = refused.clone();
    let timer = libev::Timer::new(&green::hub_loop(), MS, Duration::ZERO, move |_, _| {
        r.set(catch_unwind(|| green::scope(|_| ())).is_err());
    });
    timer.start();
    green::sleep(5 * MS);
    assert!(refused.get());
}

thread_local! {
    static DATA: RefCell<Vec<u8>> = RefCell::new(vec![7; 16]);
}

/// A scoped greenlet that never started when its thread exits is leaked,
/// not dropped: its closure may borrow a thread-local that is gone by then
/// (one first used after the hub was made is destroyed before it).
#[test]
fn a_scoped_greenlet_never_started_at_thread_exit_is_not_dropped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // A static, not an `Arc`: the leaked closure owns nothing on the heap.
    static DROPPED: AtomicBool = AtomicBool::new(false);
    struct Peek<'a>(&'a RefCell<Vec<u8>>, &'static AtomicBool);
    impl Drop for Peek<'_> {
        fn drop(&mut self) {
            self.1.store(true, Ordering::SeqCst);
            assert_eq!(self.0.borrow()[0], 7);
        }
    }
    let (dropped, d) = (&DROPPED, &DROPPED);
    std::thread::spawn(move || {
        green::yield_now(); // the hub exists before DATA
        let _owner = green::spawn(move || {
            DATA.with(|data| {
                green::scope(|s| {
                    let peek = Peek(data, d);
                    s.spawn(move || drop(peek));
                })
            })
        });
        // The owner runs, spawns its child (queued behind this root) and
        // parks; the thread then exits with the child never started.
        green::yield_now();
    })
    .join()
    .unwrap();
    assert!(!dropped.load(Ordering::SeqCst), "the unstarted child's closure was leaked, not dropped");
}

/// A libev callback that panics while the root waits for its scope's
/// greenlets: the wait goes on (they are not killed), then the panic
/// comes out of `scope`.
#[test]
fn a_callback_panic_during_the_wait_comes_out_after_it() {
    let finished = Cell::new(false);
    let timer = libev::Timer::new(&green::hub_loop(), MS, Duration::ZERO, |_, _| panic!("in a callback"));
    let err = catch_unwind(AssertUnwindSafe(|| {
        green::scope(|s| {
            s.spawn(|| {
                green::sleep(10 * MS);
                finished.set(true);
            });
            timer.start();
        })
    }))
    .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"in a callback"));
    assert!(finished.get(), "not killed: it ran to its end first");
}
