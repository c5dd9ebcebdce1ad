//! Threads that exit with the crate's objects still alive: watchers,
//! loops and green objects dropped while the thread's thread-locals are
//! destroyed, in either order relative to the crate's own, and greenlets
//! a thread leaves behind unjoined (issue 17.2: these aborted with "thread
//! local panicked on drop"). Each case runs on its own thread; an abort
//! would take the whole test binary down.

mod util;

use libev::green::net::{TcpListener, TcpStream};
use libev::green::sync::{Event, Queue, Semaphore};
use libev::green::{self, Greenlet};
use libev::{Events, Io, Loop, Timer};
use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Counts its drops.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn on_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().expect("the thread exits cleanly");
}

/// Set (to the test's name) in a child process running one test.
const CHILD: &str = "LIBEV_TEARDOWN_CHILD";

/// Runs `case` on a thread of its own. Under AddressSanitizer it runs in
/// a child process (this test binary again) with leak detection off:
/// greenlets still blocked when their thread exits are leaked by design
/// (their stacks are never unwound), and LeakSanitizer does not scan
/// greenlet stacks, so it would report what they hold. ASan's other
/// checks still apply there, and valgrind checks the in-process run.
fn isolated(name: &str, case: fn()) {
    if std::env::var_os(CHILD).is_some_and(|v| v == name) {
        return case();
    }
    let Some(asan) = std::env::var_os("ASAN_OPTIONS") else {
        return case();
    };
    let mut options = asan;
    options.push(":detect_leaks=0");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, name)
        .env("ASAN_OPTIONS", options)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed in its child process: {text}");
    assert!(text.contains("1 passed"), "the child process ran no test: {text}");
}

thread_local! {
    static WATCHERS: RefCell<Vec<Box<dyn std::any::Any>>> = const { RefCell::new(Vec::new()) };
    static GREEN: RefCell<Vec<Box<dyn std::any::Any>>> = const { RefCell::new(Vec::new()) };
}

/// Thread-locals are destroyed in reverse order of first use: `WATCHERS`
/// is used first, then a watcher is dropped (the crate's own thread-local
/// for destructor panics is first used there), so at exit the crate's is
/// destroyed before `WATCHERS` drops the rest of the watchers.
#[test]
fn watchers_in_a_thread_local_are_dropped_at_thread_exit() {
    on_thread(|| {
        WATCHERS.with(|w| w.borrow_mut().clear());
        let lp = Loop::new().unwrap();
        drop(Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {}));
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let io = Io::new(&lp, a.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
        io.start();
        let t = Timer::new(&lp, Duration::from_secs(60), Duration::ZERO, |_, _| {});
        t.start();
        WATCHERS.with(|w| {
            let mut w = w.borrow_mut();
            w.push(Box::new(io));
            w.push(Box::new(t));
            w.push(Box::new(a));
            w.push(Box::new(lp));
        });
    });
}

#[test]
fn a_thread_returns_without_joining_its_greenlets() {
    isolated("a_thread_returns_without_joining_its_greenlets", unjoined_greenlets_case);
}

fn unjoined_greenlets_case() {
    let closures = Arc::new(AtomicUsize::new(0));
    let links = Arc::new(AtomicUsize::new(0));
    let (c, l) = (closures.clone(), links.clone());
    on_thread(move || {
        // Connections wait in this one's backlog; another is accepted on.
        let backlog = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = backlog.local_addr().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sem = Semaphore::new(1);
        let permit = sem.acquire();
        // Blocked for good when the thread exits: leaked with their stacks.
        let _sleeper = green::spawn(|| green::sleep(Duration::from_secs(3600)));
        let _acceptor = green::spawn(move || drop(listener.accept()));
        let waiter = {
            let sem = sem.clone();
            green::spawn(move || drop(sem.acquire()))
        };
        let panicked: Greenlet<()> = green::spawn(|| panic!("nobody joins this"));
        green::yield_now();
        assert!(panicked.is_finished() && !waiter.is_finished());
        // Never started: dropped unrun at thread exit, with what they own
        // (a permit another greenlet waits for, a socket, a handle of a
        // greenlet that panicked), and their links run.
        for _ in 0..3 {
            let d = Dropped(c.clone());
            let l = l.clone();
            let stream = TcpStream::connect(addr).unwrap();
            let g = green::spawn(move || drop((d, stream)));
            g.link(move || {
                l.fetch_add(1, Ordering::SeqCst);
            });
        }
        let d = Dropped(c.clone());
        let _holder = green::spawn(move || drop((d, permit, panicked)));
        drop(backlog);
    });
    assert_eq!(closures.load(Ordering::SeqCst), 4, "every unstarted closure was dropped");
    assert_eq!(links.load(Ordering::SeqCst), 3, "every link ran");
}

struct GetOnDrop(Queue<u32>);

impl Drop for GetOnDrop {
    fn drop(&mut self) {
        assert_eq!(self.0.try_get(), Some(1));
        assert_eq!(self.0.try_get(), Some(2));
    }
}

#[test]
fn green_objects_dropped_after_the_hub_is_gone() {
    isolated("green_objects_dropped_after_the_hub_is_gone", after_the_hub_case);
}

fn after_the_hub_case() {
    on_thread(|| {
        // First used before the hub exists, so destroyed after it.
        GREEN.with(|g| g.borrow_mut().clear());
        let q: Queue<u32> = Queue::bounded(1);
        q.put(1);
        let blocked_putter = {
            let q = q.clone();
            green::spawn(move || q.put(2))
        };
        let ev = Event::new();
        let blocked_waiter = {
            let ev = ev.clone();
            green::spawn(move || ev.wait())
        };
        let (a, b) = libev::green::net::UnixStream::pair().unwrap();
        let reader = green::spawn(move || {
            let mut buf = [0; 1];
            let _ = std::io::Read::read(&mut &b, &mut buf);
        });
        green::yield_now();
        GREEN.with(|g| {
            let mut g = g.borrow_mut();
            // Dropped after the hub: each wakes (or would wake) a greenlet
            // that can no longer run.
            g.push(Box::new(blocked_putter));
            g.push(Box::new(blocked_waiter));
            g.push(Box::new(reader));
            // A get after the hub is gone moves the blocked putter's item
            // in and wakes it (there is nothing left to wake).
            g.push(Box::new(GetOnDrop(q)));
            g.push(Box::new(ev));
            g.push(Box::new(a));
        });
    });
}

/// Thread-locals of the user destroyed while the hub still exists (they
/// were first used after it) run destructors that wake greenlets (which
/// never run again: the woken waiter is leaked with its stack).
#[test]
fn green_objects_dropped_before_the_hub_goes() {
    isolated("green_objects_dropped_before_the_hub_goes", before_the_hub_case);
}

fn before_the_hub_case() {
    thread_local! {
        static LATE: RefCell<Vec<Box<dyn std::any::Any>>> = const { RefCell::new(Vec::new()) };
    }
    on_thread(|| {
        let ev = Event::new();
        let waiter = {
            let ev = ev.clone();
            green::spawn(move || ev.wait())
        };
        green::yield_now();
        struct SetOnDrop(Event);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.set();
            }
        }
        LATE.with(|l| {
            let mut l = l.borrow_mut();
            l.push(Box::new(waiter));
            l.push(Box::new(SetOnDrop(ev)));
        });
    });
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
