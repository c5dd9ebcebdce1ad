//! Green threads across a real `fork()` (issue 17.8): the prefork
//! pattern. Before, a child inherited the blocking pool's counters but not
//! its threads, so `spawn_blocking` and name resolution parked for ever.
//!
//! One test only, in its own binary: forking a multi-threaded process is
//! safe only while no other thread holds a lock the child needs.

use libev::green::net::{TcpListener, TcpStream, UnixStream};
use libev::green::{self, server::StreamServer};
use std::io::{Read, Write};
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
    Ok(())
}

#[test]
fn the_pool_name_lookups_and_the_hub_work_in_a_forked_child() {
    // Use everything before forking: the pool has an idle worker, the hub
    // has fds registered with its epoll instance.
    assert_eq!(green::spawn_blocking(|| 1), 1);
    let listener = TcpListener::bind("localhost:0").unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let pending = green::spawn(move || {
        let mut buf = [0u8; 1];
        (&a).read_exact(&mut buf).map(|_| buf[0])
    });
    green::yield_now();

    // SAFETY: no other test runs in this binary; the only other threads
    // are the harness's (waiting for this test) and the pool's idle
    // worker, neither holding a lock the child needs. The child ends with
    // `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = match catch_unwind(AssertUnwindSafe(|| child(&listener))) {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                eprintln!("child: {e}");
                1
            }
            Err(_) => 2,
        };
        // SAFETY: ends the child without running the harness's code.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // The parent keeps running its hub while the child works.
    let waited = green::spawn_blocking(move || {
        // SAFETY: waits for our own child, writing into a live local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        (r, status)
    });
    assert_eq!(waited.0, pid, "waitpid: {}", std::io::Error::last_os_error());
    let status = waited.1;
    assert!(libc::WIFEXITED(status), "child did not exit normally: status {status:#x}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "child failed (1: see its message; 2: panicked)");
    // The parent's hub and pool are untouched.
    b.write_all(&[9]).unwrap();
    assert_eq!(pending.join().unwrap().unwrap(), 9);
    assert_eq!(green::spawn_blocking(|| 2), 2);
}
