//! `Io` on real pipes and sockets.

mod util;

use libev::{Events, Io, Loop};
use std::cell::RefCell;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use util::{Counter, pipe, read_byte, write_byte};

#[test]
fn readable_pipe_runs_the_callback_until_drained() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    for b in 1..=3 {
        write_byte(&w, b);
    }
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let g = got.clone();
    // Level-triggered: one byte per call, called again while data remains.
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |io, ev| {
        assert_eq!(ev, Events::READ);
        match read_byte(io.fd()) {
            Some(b) => g.borrow_mut().push(b),
            None => io.stop(),
        }
        if g.borrow().len() == 3 {
            io.stop();
        }
    })
    .unwrap();
    io.start();
    lp.run();
    assert_eq!(*got.borrow(), [1, 2, 3]);
}

#[test]
fn writable_socket_and_switching_events() {
    let lp = Loop::new().unwrap();
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let log: Rc<RefCell<Vec<Events>>> = Rc::default();
    let l = log.clone();
    let mut a2 = a.try_clone().unwrap();
    let io = Io::new(&lp, a.as_raw_fd(), Events::WRITE, move |io, ev| {
        l.borrow_mut().push(ev);
        if ev.contains(Events::WRITE) {
            a2.write_all(b"ping").unwrap();
            // Now wait for the reply instead.
            io.set_events(Events::READ).unwrap();
        } else {
            io.stop();
        }
    })
    .unwrap();
    assert_eq!(io.events(), Events::WRITE);
    io.start();
    let mut b2 = b.try_clone().unwrap();
    b2.write_all(b"pong").unwrap();
    lp.run();
    assert_eq!(*log.borrow(), [Events::WRITE, Events::READ]);
    assert_eq!(io.events(), Events::READ);
    assert_eq!(io.fd(), a.as_raw_fd());
}

#[test]
fn set_moves_an_active_watcher_to_another_fd() {
    let lp = Loop::new().unwrap();
    let (r1, _w1) = pipe();
    let (r2, w2) = pipe();
    let n = Counter::new();
    let c = n.clone();
    let io = Io::new(&lp, r1.as_raw_fd(), Events::READ, move |io, _| {
        c.bump();
        read_byte(io.fd());
        io.stop();
    })
    .unwrap();
    io.start();
    io.set(r2.as_raw_fd(), Events::READ).unwrap();
    assert!(io.is_active());
    assert_eq!(io.fd(), r2.as_raw_fd());
    write_byte(&w2, 1);
    lp.run();
    assert_eq!(n.get(), 1);
}

#[test]
fn bad_fds_and_events_are_errors() {
    let lp = Loop::new().unwrap();
    let err = Io::new(&lp, -1, Events::READ, |_, _| {}).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    // A closed descriptor, numbered far above what other test threads
    // open meanwhile, so that nobody reuses the number under us.
    let (r, _w) = pipe();
    let dup = util::high_dup(&r);
    let closed = dup.as_raw_fd();
    drop(dup);
    let err = Io::new(&lp, closed, Events::READ, |_, _| {}).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    let (r, _w) = pipe();
    for bad in [Events::TIMER, Events::READ | Events::SIGNAL, Events::ERROR] {
        let err = Io::new(&lp, r.as_raw_fd(), bad, |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
    assert_eq!(io.set(-5, Events::READ).unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(io.set_events(Events::CHILD).unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(io.fd(), r.as_raw_fd(), "a failed set leaves the watcher unchanged");
    io.set_events(Events::WRITE).unwrap();
    assert_eq!(io.events(), Events::WRITE);
}

#[test]
fn set_events_does_not_depend_on_other_fds() {
    // A daemon may run with fd 0 closed: changing the events of a watcher
    // on some other fd must not care. Run in a child so closing stdin does
    // not disturb the test harness.
    let (r, _w) = pipe();
    // SAFETY: fork in a test; the child only makes these calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = std::panic::catch_unwind(|| {
            let lp = Loop::new().unwrap();
            let io = Io::new(&lp, r.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
            // SAFETY: closes the child's fd 0 (stdin, or whatever took that
            // number), which nothing below reopens.
            unsafe { libc::close(0) };
            io.set_events(Events::READ | Events::WRITE).is_ok()
        });
        // SAFETY: ends the child without running the harness's atexit work.
        unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child we forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "status {status:#x}");
}

#[test]
fn fd_closed_while_watched_yields_error_not_abort() {
    // Closing an fd under an active watcher is a user bug libev documents;
    // it must end in an EV_ERROR callback or silence, never UB or abort.
    // With poll(2) libev sees POLLNVAL and reports the error; the other
    // backends (LIBEV_FLAGS overrides POLL here) fail to register the fd.
    let lp = Loop::with_flags(libev::LoopFlags::empty(), libev::Backend::POLL).unwrap();
    let (r, _w) = pipe();
    let fd = util::high_dup(&r).into_raw_fd();
    drop(r);
    let got: Rc<RefCell<Events>> = Rc::new(RefCell::new(Events::empty()));
    let g = got.clone();
    let io = Io::new(&lp, fd, Events::READ, move |io, ev| {
        *g.borrow_mut() = ev;
        io.stop();
    })
    .unwrap();
    io.start();
    // linuxaio learns of the dead fd from io_submit, after the loop has
    // decided how long to block: it reports the error only once the wait
    // ends (59.743 s, libev's longest), which this bounds.
    let _wake = util::dead_fd_waker(&lp);
    // SAFETY: closes the read end we own; the watcher sees a dead fd.
    unsafe { libc::close(fd) };
    lp.run();
    assert!(got.borrow().contains(Events::ERROR), "{:?}", got.borrow());
    assert!(!io.is_active());
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}

#[test]
fn set_events_on_an_active_watcher_restarts_it_and_keeps_what_it_owes_the_loop() {
    for keep in [true, false] {
        let lp = Loop::new().unwrap();
        let (r, w) = pipe();
        let got: Rc<RefCell<Vec<Events>>> = Rc::default();
        let g = got.clone();
        let io = Io::borrowing(&lp, &w, Events::READ, move |io, ev| {
            g.borrow_mut().push(ev);
            io.stop();
        })
        .unwrap();
        io.set_keeps_loop_alive(keep);
        io.start();
        // A pipe's write end is never readable: only the new events fire.
        io.set_events(Events::WRITE).unwrap();
        assert!(io.is_active());
        assert_eq!(io.events(), Events::WRITE);
        if keep {
            lp.run();
        } else {
            assert!(!lp.run_nowait(), "still unreferenced after the restart");
            lp.run_nowait();
        }
        assert_eq!(*got.borrow(), [Events::WRITE]);
        io.set_keeps_loop_alive(true);
        assert!(!lp.run_nowait(), "the counts stayed balanced");
        drop(r);
    }
}
