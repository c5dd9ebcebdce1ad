//! `set_syserr_handler` (libev's `ev_set_syserr_cb`). Its own test binary:
//! it swaps a loop's epoll fd for a pipe, and must be the only test
//! opening fds meanwhile to find that fd.

use libev::{Backend, Loop, LoopFlags, Timer};
use std::collections::HashSet;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn epoll_fds() -> HashSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            (target.to_str()? == "anon_inode:[eventpoll]").then(|| e.file_name().to_str()?.parse().ok())?
        })
        .collect()
}

/// An epoll loop whose epoll fd was replaced by a pipe: its next poll
/// fails with EINVAL, which libev reports through the syserr callback.
fn broken_loop(keep: &mut Vec<OwnedFd>) -> Loop {
    let before = epoll_fds();
    let lp = Loop::with_flags(LoopFlags::NOENV, Backend::EPOLL).unwrap();
    let new: Vec<i32> = epoll_fds().difference(&before).copied().collect();
    assert_eq!(new.len(), 1, "the loop's epoll fd: {new:?}");
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: atomically replaces the loop's epoll fd (which the loop
    // closes when destroyed) with a duplicate of a pipe end.
    assert!(unsafe { libc::dup2(r.as_raw_fd(), new[0]) } >= 0);
    keep.push(r);
    keep.push(w);
    lp
}

#[test]
fn the_handler_sees_libevs_fatal_errors_and_its_panics_surface_in_run() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    libev::set_syserr_handler(move |msg, err| s.lock().unwrap().push((msg.to_owned(), err.raw_os_error())));
    let mut keep = Vec::new();
    let lp = broken_loop(&mut keep);
    let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    t.start();
    lp.run_once();
    {
        let seen = seen.lock().unwrap();
        assert!(!seen.is_empty(), "libev called the handler instead of aborting");
        assert!(seen[0].0.contains("epoll_wait"), "{seen:?}");
        assert_eq!(seen[0].1, Some(libc::EINVAL));
    }
    // A panicking handler: the panic comes out of run, not through C.
    libev::set_syserr_handler(|msg, _| panic!("syserr: {msg}"));
    let p = catch_unwind(AssertUnwindSafe(|| lp.run_once())).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.starts_with("syserr: (libev) epoll_wait"), "{msg}");
    libev::clear_syserr_handler();
    drop(t);
    drop(lp);
}
