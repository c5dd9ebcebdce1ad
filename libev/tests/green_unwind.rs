//! Green calls made while a greenlet unwinds (a kill, a timeout or a
//! panic running its destructors), issue 17.3 and 17.6.
//!
//! std counts panics per OS thread, and a panic that leaves a destructor
//! during an unwind aborts the process. So a greenlet never switches while
//! it unwinds, and green calls there do not wait: each does what it can at
//! once (see the crate docs, "Safety and failure model"). These tests pin
//! that: no abort, nothing lost that could be kept, and
//! `std::thread::panicking()` true only in the greenlet that unwinds.
//!
//! gevent lets `finally` blocks block (its `test__greenlet.py` kills
//! greenlets whose `finally` sleeps); Rust's unwinding cannot, so these
//! differ from gevent by design.

use libev::green::net::{TcpListener, TcpStream, UnixStream};
use libev::green::sync::{Event, Mutex, Queue, Semaphore};
use libev::green::{self, GreenletError};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// Spawns a greenlet that parks with `guard` on its stack, lets it park,
/// kills it, and checks that it ended killed.
fn kill_while_holding<F: FnMut() + 'static>(guard: OnDrop<F>) {
    let g = green::spawn(move || {
        let _guard = guard;
        green::sleep(Duration::from_secs(3600));
    });
    green::yield_now();
    g.kill();
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

/// Kills a greenlet that sleeps with a `BufWriter` over `a` holding
/// "tail", and checks that the kill ended it (the flush in the writer's
/// drop, during the unwind, used to re-raise the kill and abort).
fn kill_a_buffered_writer(a: UnixStream) {
    let g = green::spawn(move || {
        let mut w = std::io::BufWriter::new(&a);
        w.write_all(b"tail").unwrap();
        green::sleep(Duration::from_secs(3600));
    });
    green::yield_now();
    g.kill();
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

#[test]
fn a_bufwriter_over_a_green_socket_flushes_in_drop_during_a_kill() {
    let (a, mut b) = UnixStream::pair().unwrap();
    kill_a_buffered_writer(a);
    // The buffered bytes fit in the socket: the flush in drop sent them.
    let mut got = String::new();
    b.read_to_string(&mut got).unwrap();
    assert_eq!(got, "tail");
}

#[test]
fn a_bufwriter_flush_that_cannot_complete_during_a_kill_does_not_abort() {
    let (a, b) = UnixStream::pair().unwrap();
    // Fill the socket so the flush cannot complete without waiting.
    a.set_nonblocking(true).unwrap();
    let filler = vec![1u8; 1 << 16];
    while (&a).write(&filler).is_ok() {}
    a.set_nonblocking(false).unwrap();
    kill_a_buffered_writer(a);
    drop(b);
}

#[test]
fn a_socket_operation_during_an_unwind_gets_one_try() {
    let (a, b) = UnixStream::pair().unwrap();
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    let (a2, b2) = (Rc::new(a), Rc::new(b));
    let (ra, rb) = (a2.clone(), b2.clone());
    kill_while_holding(OnDrop(move || {
        assert!(std::thread::panicking());
        let mut buf = [0; 8];
        // Nothing to read: WouldBlock, at once.
        let t0 = Instant::now();
        let e = (&*rb).read(&mut buf).unwrap_err();
        s.borrow_mut().push(format!("{:?}", e.kind()));
        assert!(t0.elapsed() < Duration::from_secs(1));
        // A write that fits goes through.
        (&*ra).write_all(b"bye").unwrap();
    }));
    assert_eq!(*seen.borrow(), ["WouldBlock"]);
    let mut buf = [0; 3];
    (&*b2).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"bye");
}

#[test]
fn sleep_and_yield_during_an_unwind_return_at_once() {
    let took: Rc<Cell<Option<Duration>>> = Rc::default();
    let t = took.clone();
    kill_while_holding(OnDrop(move || {
        let t0 = Instant::now();
        green::sleep(Duration::from_secs(3600));
        green::yield_now();
        t.set(Some(t0.elapsed()));
    }));
    assert!(took.get().unwrap() < Duration::from_secs(1));
}

#[test]
fn a_put_on_a_full_queue_during_an_unwind_is_kept_past_the_bound() {
    let q: Queue<u32> = Queue::bounded(1);
    q.put(1);
    let q2 = q.clone();
    kill_while_holding(OnDrop(move || {
        q2.put(2);
        assert_eq!(q2.put_timeout(3, Duration::from_secs(1)), Err(3));
    }));
    assert_eq!(q.len(), 2);
    assert_eq!((q.get(), q.get()), (1, 2));
}

#[test]
fn timed_waits_during_an_unwind_time_out_at_once_and_free_things_are_taken() {
    let lock = Rc::new(Mutex::new(0));
    let held = lock.clone();
    let holder = green::spawn(move || {
        let _g = held.lock();
        green::sleep(MS * 50);
    });
    green::yield_now();
    let (l, sem, ev) = (lock.clone(), Semaphore::new(1), Event::new());
    let (sem2, ev2) = (sem.clone(), ev.clone());
    let outcomes: Rc<RefCell<Vec<bool>>> = Rc::default();
    let o = outcomes.clone();
    kill_while_holding(OnDrop(move || {
        let t0 = Instant::now();
        o.borrow_mut().push(l.lock_timeout(Duration::from_secs(10)).is_some());
        // Free: taken at once.
        let permit = sem2.acquire_timeout(Duration::from_secs(10));
        o.borrow_mut().push(permit.is_some());
        o.borrow_mut().push(ev2.wait_timeout(Duration::from_secs(10)));
        ev2.wait();
        assert!(t0.elapsed() < Duration::from_secs(1));
    }));
    assert_eq!(*outcomes.borrow(), [false, true, false]);
    assert_eq!(sem.available_permits(), 1, "the permit taken in the destructor came back");
    holder.join().unwrap();
    assert_eq!(*lock.lock(), 0);
}

#[test]
fn a_call_that_cannot_return_without_waiting_panics_with_a_clear_message() {
    let q: Queue<u32> = Queue::new();
    let lock = Rc::new(Mutex::new(()));
    let held = lock.clone();
    let holder = green::spawn(move || {
        let _g = held.lock();
        green::sleep(MS * 20);
    });
    green::yield_now();
    let messages: Rc<RefCell<Vec<String>>> = Rc::default();
    let m = messages.clone();
    kill_while_holding(OnDrop(move || {
        // Caught inside the destructor: a panic leaving it would abort.
        for what in [0, 1] {
            let r = catch_unwind(AssertUnwindSafe(|| match what {
                0 => drop(q.get()),
                _ => drop(lock.lock()),
            }));
            let p = r.unwrap_err();
            m.borrow_mut().push(GreenletError::Panicked(p).to_string());
        }
    }));
    let messages = messages.borrow();
    assert!(messages[0].contains("Queue::get would have to wait"), "{}", messages[0]);
    assert!(messages[1].contains("Mutex::lock would have to wait"), "{}", messages[1]);
    holder.join().unwrap();
}

#[test]
fn a_kill_sent_from_a_destructor_does_not_wait_and_still_lands() {
    let victim = green::spawn(|| green::sleep(Duration::from_secs(3600)));
    green::yield_now();
    let v = Rc::new(victim);
    let v2 = v.clone();
    kill_while_holding(OnDrop(move || {
        v2.kill();
        assert!(!v2.is_finished(), "the kill was sent, not waited for");
    }));
    let victim = Rc::try_unwrap(v).unwrap();
    assert!(matches!(victim.join(), Err(GreenletError::Killed)));
}

#[test]
fn spawn_blocking_in_a_destructor_runs_on_the_calling_thread() {
    let got: Rc<Cell<Option<bool>>> = Rc::default();
    let g2 = got.clone();
    let me = std::thread::current().id();
    kill_while_holding(OnDrop(move || {
        g2.set(Some(green::spawn_blocking(move || std::thread::current().id() == me)));
    }));
    assert_eq!(got.get(), Some(true));
}

#[test]
fn other_greenlets_never_see_the_unwind_and_std_mutexes_stay_unpoisoned() {
    // A greenlet holds a std mutex across a green sleep; meanwhile another
    // is killed and its destructor tries to block. Were the dying greenlet
    // suspended mid-unwind, the holder would unlock with
    // `thread::panicking()` true and poison the mutex.
    let shared = Rc::new(std::sync::Mutex::new(0));
    let observed: Rc<RefCell<Vec<bool>>> = Rc::default();
    let (s, o) = (shared.clone(), observed.clone());
    let holder = green::spawn(move || {
        for _ in 0..3 {
            let mut g = s.lock().unwrap();
            *g += 1;
            o.borrow_mut().push(std::thread::panicking());
            green::sleep(MS * 5);
            o.borrow_mut().push(std::thread::panicking());
        }
    });
    green::yield_now();
    let ran_in_drop = Rc::new(Cell::new(false));
    let r = ran_in_drop.clone();
    kill_while_holding(OnDrop(move || {
        assert!(std::thread::panicking());
        green::sleep(MS * 20);
        green::yield_now();
        r.set(true);
    }));
    holder.join().unwrap();
    assert!(ran_in_drop.get());
    assert!(!shared.is_poisoned());
    assert_eq!(*shared.lock().unwrap(), 3);
    assert!(observed.borrow().iter().all(|p| !p), "{:?}", observed.borrow());
}

#[test]
fn a_kill_arriving_during_an_unwind_is_not_raised_inside_it() {
    // The greenlet panics; its destructor kills it (through its own
    // handle) and then makes green calls, none of which may raise the
    // kill: a panic leaving a destructor during an unwind aborts.
    let handle: Rc<RefCell<Option<green::Greenlet<()>>>> = Rc::default();
    let h = handle.clone();
    let g = green::spawn(move || {
        let _guard = OnDrop(move || {
            if let Some(me) = h.borrow().as_ref() {
                me.kill();
            }
            green::sleep(MS);
            green::yield_now();
        });
        green::yield_now();
        panic!("original");
    });
    *handle.borrow_mut() = Some(g);
    green::yield_now();
    green::yield_now();
    let g = handle.borrow_mut().take().unwrap();
    let e = g.join().unwrap_err();
    assert!(
        matches!(&e, GreenletError::Panicked(p) if p.downcast_ref::<&str>() == Some(&"original")),
        "{e:?}"
    );
}

#[test]
fn a_panicking_root_may_make_green_calls_in_destructors() {
    let r = catch_unwind(|| {
        let _guard = OnDrop(|| {
            green::sleep(MS * 10);
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
            let _ = TcpStream::connect(l.local_addr().unwrap());
        });
        panic!("root unwinds");
    });
    assert!(r.is_err());
    // The hub works afterwards.
    assert_eq!(green::spawn(|| 7).join().unwrap(), 7);
}
