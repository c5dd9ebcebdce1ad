//! Who owns an io watcher's fd: `Io::borrowing`, `Io::owning`,
//! `Io::take_fd`, and what happens when a watched fd is closed anyway.

mod util;

use libev::{Events, Io, Loop};
use std::cell::Cell;
use std::io::ErrorKind;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use util::{pipe, write_byte};

/// What `fd` refers to now: (device, inode), or `None` if closed.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: fstat writes into a live local.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// Tells whether the file `fd` referred to when this was made is still
/// open at that number (other tests' threads may reuse a closed number).
struct Tracked(RawFd, Option<(u64, u64)>);

impl Tracked {
    fn new(fd: RawFd) -> Tracked {
        Tracked(fd, identity(fd))
    }
    fn is_open(&self) -> bool {
        identity(self.0) == self.1
    }
}

#[test]
fn borrowing_watches_the_fd_and_leaves_it_open() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let got = Rc::new(Cell::new(Events::empty()));
    let g = got.clone();
    let io = Io::borrowing(&lp, &r, Events::READ, move |io, ev| {
        g.set(ev);
        io.stop();
    })
    .unwrap();
    assert_eq!(io.fd(), r.as_raw_fd());
    assert!(!io.owns_fd());
    io.start();
    write_byte(&w, 7);
    lp.run();
    assert_eq!(got.get(), Events::READ);
    let fd = Tracked::new(r.as_raw_fd());
    drop(io);
    assert!(fd.is_open());
}

#[test]
fn owning_closes_the_fd_after_stopping() {
    let lp = Loop::new().unwrap();
    let (r, w) = pipe();
    let fd = Tracked::new(r.as_raw_fd());
    let io = Io::owning(&lp, r, Events::READ, |io, _| io.stop()).unwrap();
    assert!(io.owns_fd());
    io.start();
    write_byte(&w, 1);
    lp.run();
    assert!(fd.is_open());
    io.start();
    drop(io);
    assert!(!fd.is_open(), "closed with the watcher");
    assert!(!lp.run(), "and stopped first");
}

#[test]
fn owning_with_bad_events_closes_the_fd() {
    let lp = Loop::new().unwrap();
    let (r, _w) = pipe();
    let fd = Tracked::new(r.as_raw_fd());
    let err = Io::owning(&lp, r, Events::TIMER, |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!fd.is_open());
}

#[test]
fn take_fd_gives_the_fd_back() {
    let lp = Loop::new().unwrap();
    let (r, _w) = pipe();
    let fd = Tracked::new(r.as_raw_fd());
    let mut io = Io::owning(&lp, r, Events::READ, |_, _| {}).unwrap();
    io.start();
    let back = io.take_fd().expect("it owned one");
    assert!(!io.is_active());
    assert!(!io.owns_fd());
    assert!(io.take_fd().is_none());
    drop(io);
    assert!(fd.is_open());
    assert_eq!(back.as_raw_fd(), fd.0);
}

#[test]
fn set_to_another_fd_closes_the_owned_one() {
    let lp = Loop::new().unwrap();
    let (r1, _w1) = pipe();
    let (r2, w2) = pipe();
    let fd1 = Tracked::new(r1.as_raw_fd());
    let io = Io::owning(&lp, r1, Events::READ, |io, _| io.stop()).unwrap();
    io.start();
    // The same fd: still owned.
    io.set(fd1.0, Events::READ).unwrap();
    assert!(io.owns_fd() && fd1.is_open());
    io.set(r2.as_raw_fd(), Events::READ).unwrap();
    assert!(!fd1.is_open(), "let go of, as dropping would");
    assert!(!io.owns_fd());
    assert!(io.is_active());
    write_byte(&w2, 1);
    lp.run();
    let fd2 = Tracked::new(r2.as_raw_fd());
    drop(io);
    assert!(fd2.is_open(), "not owned");
}

/// What the `Io` docs promise when the rule "stop before close" is broken:
/// libev stops the watcher and reports ERROR.
#[test]
fn closing_a_watched_fd_gives_error_and_stops_the_watcher() {
    let lp = Loop::new().unwrap();
    let (r0, _w) = pipe();
    let r = util::high_dup(&r0);
    let got = Rc::new(Cell::new(Events::empty()));
    let g = got.clone();
    let io = Io::new(&lp, r.as_raw_fd(), Events::READ, move |_, ev| g.set(ev)).unwrap();
    io.start();
    let _wake = util::dead_fd_waker(&lp);
    drop(r);
    lp.run();
    assert!(got.get().contains(Events::ERROR | Events::READ), "{:?}", got.get());
    assert!(!io.is_active());
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
