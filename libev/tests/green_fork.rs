//! Green threads across a real `fork()` (issue 17.8): the prefork
//! pattern. Before, a child inherited the blocking pool's counters but not
//! its threads, so `spawn_blocking` and name resolution parked for ever.
//!
//! One test only, in its own binary: forking a multi-threaded process is
//! safe only while no other thread holds a lock the child needs.

use libev::green::net::{TcpListener, TcpStream, UnixStream};
use libev::green::{self, server::StreamServer};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// The child's part: the pool, a name lookup, timers and sockets work.
fn child(parent_listener: &TcpListener) -> Result<(), String> {
    // A hang fails the test instead of blocking it: SIGALRM kills us.
    // SAFETY: alarm only arms a timer.
    unsafe { libc::alarm(20) };
    let n = green::spawn_blocking(|| 6 * 7);
    if n != 42 {
        return Err(format!("spawn_blocking gave {n}"));
    }
    // A name, so the lookup goes to the pool.
    let server = StreamServer::bind("localhost:0", |mut s, _| {
        let _ = s.write_all(b"child");
    })
    .map_err(|e| format!("bind by name: {e}"))?;
    server.start().map_err(|e| e.to_string())?;
    let mut reply = String::new();
    TcpStream::connect(server.local_addr().unwrap())
        .and_then(|mut c| c.read_to_string(&mut reply))
        .map_err(|e| format!("connect: {e}"))?;
    if reply != "child" {
        return Err(format!("reply {reply:?}"));
    }
    server.stop(Duration::from_secs(1));
    // The hub's loop has a kernel state of its own: a listener inherited
    // from the parent (registered there) still accepts here.
    let client = green::spawn({
        let addr = parent_listener.local_addr().unwrap();
        move || TcpStream::connect(addr).and_then(|mut c| c.write_all(b"x"))
    });
    let (mut conn, _) = parent_listener.accept().map_err(|e| format!("accept: {e}"))?;
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).map_err(|e| e.to_string())?;
    client.join().map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    green::sleep(Duration::from_millis(5));
    // The blocking monitor watched the parent's hub: not the child's,
    // until started again there; greenlets end as usual meanwhile.
    if green::monitor::is_started() {
        return Err("the child's hub is watched with no monitor thread".into());
    }
    green::spawn(|| ()).join().map_err(|e| e.to_string())?;
    green::monitor::start(green::monitor::DEFAULT_MAX_BLOCKING_TIME).map_err(|e| e.to_string())?;
    green::spawn(|| ()).join().map_err(|e| e.to_string())?;
    green::monitor::stop();
    Ok(())
}

#[test]
fn the_pool_name_lookups_and_the_hub_work_in_a_forked_child() {
    // Use everything before forking: the pool has an idle worker, the hub
    // has fds registered with its epoll instance.
    assert_eq!(green::spawn_blocking(|| 1), 1);
    green::monitor::start(green::monitor::DEFAULT_MAX_BLOCKING_TIME).unwrap();
    // An IP literal: a name lookup on a pool thread leaves glibc resolver
    // state that valgrind reports as lost while the thread lives.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let pending = green::spawn(move || {
        let mut buf = [0u8; 1];
        (&a).read_exact(&mut buf).map(|_| buf[0])
    });
    green::yield_now();

    // The child reports through a pipe, not its exit status: under
    // valgrind (which follows a fork), the child's exit runs a leak check
    // that counts the parent's pool threads, absent in the child, as lost.
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: no other test runs in this binary; the only other threads
    // are the harness's (waiting for this test) and the pool's idle
    // worker, neither holding a lock the child needs. The child ends with
    // `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let report = match catch_unwind(AssertUnwindSafe(|| child(&listener))) {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(e)) => e,
            Err(_) => "the child panicked".to_owned(),
        };
        // SAFETY: writes the report to our pipe and ends the child without
        // running the harness's code.
        unsafe {
            libc::write(fds[1], report.as_ptr().cast(), report.len());
            libc::_exit(0);
        }
    }
    // SAFETY: the parent's copy of the write end, ours to close.
    unsafe { libc::close(fds[1]) };
    // SAFETY: the read end, ours from here on.
    let mut from_child = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    // The parent keeps running its hub while the child works.
    let (report, waited) = green::spawn_blocking(move || {
        let mut report = String::new();
        let _ = from_child.read_to_string(&mut report);
        let mut status = 0;
        // SAFETY: waits for our own child, writing into a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        (report, (r, status))
    });
    assert_eq!(waited.0, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert_eq!(report, "ok", "the child failed (status {:#x})", waited.1);
    // The parent's hub and pool are untouched.
    b.write_all(&[9]).unwrap();
    assert_eq!(pending.join().unwrap().unwrap(), 9);
    assert_eq!(green::spawn_blocking(|| 2), 2);
}
