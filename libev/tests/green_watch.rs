//! Parking greenlets on any fd or watcher: `green::wait_readable`,
//! `wait_writable` (gevent's `wait_read` / `wait_write`, whose timeout
//! raises and whose closed-fd case raises EBADF, as in gevent's
//! `_hub_primitives.wait_on_watcher`) and `wait_watcher` (gevent's
//! `hub.wait(watcher)`).

mod util;

use libev::green::{self, Timeout};
use libev::{Async, Events, Stat, Timer};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

#[test]
fn wait_readable_parks_only_the_greenlet() {
    let (mut a, mut b) = pair();
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = green::spawn(move || {
        for _ in 0..5 {
            t.set(t.get() + 1);
            green::sleep(Duration::from_millis(1));
        }
        a.write_all(b"x").unwrap();
    });
    green::wait_readable(&b, None).unwrap();
    assert_eq!(ticks.get(), 5, "the hub ran the other greenlet while this one waited");
    let mut buf = [0; 1];
    b.read_exact(&mut buf).unwrap();
    ticker.join().unwrap();
}

#[test]
fn the_timeout_is_an_error() {
    let (_a, b) = pair();
    let start = Instant::now();
    let err = green::wait_readable(&b, Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() >= Duration::from_millis(9));
}

#[test]
fn wait_writable_returns_at_once_on_a_writable_socket() {
    let (a, _b) = pair();
    green::wait_writable(&a, Some(Duration::from_secs(5))).unwrap();
}

#[test]
fn wait_writable_waits_for_room() {
    let (mut a, mut b) = pair();
    // Fill the socket's buffer.
    let chunk = [0u8; 65536];
    while a.write(&chunk).is_ok() {}
    let reader = green::spawn(move || {
        green::sleep(Duration::from_millis(5));
        let mut buf = vec![0; 1 << 20];
        let _ = b.read(&mut buf);
        b
    });
    green::wait_writable(&a, Some(Duration::from_secs(5))).unwrap();
    assert!(a.write(&chunk).is_ok());
    reader.join().unwrap();
}

#[test]
fn several_greenlets_can_wait_on_one_fd() {
    let (mut a, b) = pair();
    let b = Rc::new(b);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            green::spawn(move || green::wait_readable(&*b, Some(Duration::from_secs(5))))
        })
        .collect();
    green::sleep(Duration::from_millis(1));
    a.write_all(b"x").unwrap();
    for w in waiters {
        w.join().unwrap().unwrap();
    }
}

#[test]
fn a_closed_fd_is_ebadf_before_and_a_cancelled_wait_is_ebadf() {
    let (_a, b) = pair();
    let fd = {
        use std::os::fd::AsRawFd;
        b.as_raw_fd()
    };
    let (x, y) = pair();
    drop(x);
    drop(y);
    // A number nobody has open (well, most likely: checked).
    // SAFETY: F_GETFD only queries the descriptor table.
    let free = (1000..2000).find(|&n| unsafe { libc::fcntl(n, libc::F_GETFD) } == -1).unwrap();
    // SAFETY: a number no descriptor has; borrowed for the call only.
    let closed = unsafe { std::os::fd::BorrowedFd::borrow_raw(free) };
    assert_eq!(green::wait_readable(&closed, None).unwrap_err().raw_os_error(), Some(libc::EBADF));
    // Closed (by another greenlet) while this one waits. A dup, so that
    // the test closes only its own descriptor.
    // SAFETY: dup of an open descriptor.
    let dup = unsafe { libc::dup(fd) };
    assert!(dup >= 0);
    let closer = green::spawn(move || {
        green::sleep(Duration::from_millis(2));
        // SAFETY: open until closed just below.
        assert_eq!(green::cancel_wait(&unsafe { std::os::fd::BorrowedFd::borrow_raw(dup) }), 1);
        // SAFETY: the test's own duplicate.
        unsafe { libc::close(dup) };
    });
    // SAFETY: open until the closer closes it, after cancelling the wait.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(dup) };
    let err = green::wait_readable(&borrowed, Some(Duration::from_secs(5))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    closer.join().unwrap();
}

#[test]
fn a_killed_waiter_drops_its_watcher() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let g = green::spawn(move || {
        green::wait_watcher(None, move |wake| {
            let flag = Flag(d);
            let t =
                Timer::new(&green::hub_loop(), Duration::from_secs(3600), Duration::ZERO, move |_, ev| {
                    let _ = &flag;
                    wake.wake(ev)
                });
            t.start();
            Ok(t)
        })
    });
    green::sleep(Duration::from_millis(1));
    assert!(!dropped.get());
    g.kill();
    assert!(dropped.get(), "the watcher (and its closure) went with the wait");
}

#[test]
fn a_timeout_interrupts_the_wait() {
    let (_a, b) = pair();
    let r = green::with_timeout(Duration::from_millis(5), || green::wait_readable(&b, None));
    assert!(r.is_err(), "with_timeout expired");
    let t = Timeout::start(Duration::from_millis(5));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| green::wait_readable(&b, None)));
    assert!(r.is_err() && t.expired());
}

#[test]
fn wait_watcher_parks_on_any_watcher() {
    // A stat watcher: a file appearing.
    let path = std::env::temp_dir().join(format!("libev-green-watch-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = path.clone();
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(5));
        std::fs::write(&p, b"hi").unwrap();
    });
    let got = green::wait_watcher(Some(Duration::from_secs(5)), |wake| {
        let st = Stat::new(&green::hub_loop(), &path, Duration::ZERO, move |_, ev| wake.wake(ev))?;
        st.start();
        Ok(st)
    })
    .unwrap();
    assert_eq!(got, Some(Events::STAT));
    writer.join().unwrap();
    std::fs::remove_file(&path).unwrap();
    // An async watcher woken from another OS thread.
    let got = green::wait_watcher(Some(Duration::from_secs(5)), |wake| {
        let a = Async::new(&green::hub_loop(), move |_, ev| wake.wake(ev));
        a.start();
        let sender = a.sender();
        std::thread::spawn(move || sender.send());
        Ok(a)
    })
    .unwrap();
    assert_eq!(got, Some(Events::ASYNC));
    // Nothing fires: the timeout.
    let got = green::wait_watcher(Some(Duration::from_millis(2)), |wake| {
        let t = Timer::new(&green::hub_loop(), Duration::from_secs(60), Duration::ZERO, move |_, ev| {
            wake.wake(ev)
        });
        t.start();
        Ok(t)
    })
    .unwrap();
    assert_eq!(got, None);
    // The builder's error comes back.
    let err = green::wait_watcher(None, |_| Err::<(), _>(std::io::Error::other("no"))).unwrap_err();
    assert_eq!(err.to_string(), "no");
}

#[test]
fn in_a_destructor_during_an_unwind_it_does_not_wait() {
    struct WaitsInDrop(Rc<Cell<Option<ErrorKind>>>, UnixStream);
    impl Drop for WaitsInDrop {
        fn drop(&mut self) {
            self.0.set(green::wait_readable(&self.1, None).err().map(|e| e.kind()));
        }
    }
    let (_a, b) = pair();
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let g = green::spawn(move || {
        let _w = WaitsInDrop(s, b);
        green::sleep(Duration::from_secs(3600));
    });
    green::sleep(Duration::from_millis(1));
    g.kill();
    assert_eq!(seen.get(), Some(ErrorKind::WouldBlock));
}
