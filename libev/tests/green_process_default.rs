//! `green::process` on the hub of libev's default loop, whose SIGCHLD
//! handler reaps every child of the process, and on other threads' hubs
//! beside it. One test: the default loop is process-wide. It runs on a
//! thread named "main", whose hub takes the default loop as the main
//! thread's would.
//!
//! Behavioural cases from gevent's `src/gevent/tests/test__subprocess.py`
//! and `test__subprocess_poll.py` are named where they are ported.

mod util;

use libev::green::{self, process::Command, process::Stdio};
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use util::{exists, green_wait_until, sh};

#[test]
fn children_on_the_default_loops_hub_and_on_other_hubs_beside_it() {
    std::thread::Builder::new().name("main".into()).spawn(on_the_default_loop).unwrap().join().unwrap();
}

fn on_the_default_loop() {
    assert!(green::hub_loop().is_default(), "a thread named main gets the default loop");

    // gevent: TestPopen.test_exit, test_wait; many at once.
    let waiters: Vec<_> = (0..30)
        .map(|i| green::spawn(move || sh(&format!("sleep 0.0{}; exit {i}", i % 10)).status().unwrap().code()))
        .collect();
    for (i, g) in waiters.into_iter().enumerate() {
        assert_eq!(g.join().unwrap(), Some(i as i32));
    }

    // Killed; kill after the exit is Ok.
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    child.kill().unwrap();

    // gevent: test__subprocess_poll.py: try_wait in a loop that never
    // lets the hub run (so libev never reaps) still sees the exit.
    let mut child = Command::new("sleep").arg("0.02").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "try_wait never saw the exit");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(child.wait().unwrap().success());

    // Output through both pipes at once.
    let out = sh("head -c 1048576 /dev/zero >&2; head -c 2097152 /dev/zero").output().unwrap();
    assert_eq!((out.stdout.len(), out.stderr.len()), (2 << 20, 1 << 20));

    // A child that outlives its handle: libev reaps it.
    let mut child = sh("sleep 0.05").stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let pid = child.id();
    drop(child);
    assert!(exists(pid));
    let mut nothing = Vec::new();
    stdout.read_to_end(&mut nothing).unwrap();
    green_wait_until("libev to reap the dropped child", || !exists(pid));

    // Hubs on other threads spawn children that this loop reaps (its
    // SIGCHLD handler takes every child of the process while this hub
    // runs): their statuses reach them through the recorder this hub
    // started at its first spawn above.
    let workers: Vec<_> = (0..3)
        .map(|t| {
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..10)
                    .map(|i| {
                        green::spawn(move || {
                            let code = t * 10 + i;
                            let mut c = sh(&format!("sleep 0.0{}; exit {code}", i % 5)).spawn().unwrap();
                            // Some wait once reaped, some while running.
                            if i % 2 == 0 {
                                std::thread::sleep(Duration::from_millis(30));
                            }
                            (code, c.wait().unwrap().code(), c.try_wait().unwrap().unwrap().code())
                        })
                    })
                    .collect();
                let results: Vec<_> = green::joinall(gs).into_iter().map(Result::unwrap).collect();
                // Dropped while running on this thread: reaped all the same.
                let orphan = Command::new("sleep").arg("0.02").spawn().unwrap();
                let pid = orphan.id();
                drop(orphan);
                green_wait_until("a worker's dropped child to be reaped", || !exists(pid));
                // Killed on a worker, reaped here.
                let mut killed = Command::new("sleep").arg("60").spawn().unwrap();
                killed.kill().unwrap();
                let signal = killed.wait().unwrap().signal();
                (results, signal)
            })
        })
        .collect();
    // Keep this hub (and so libev's SIGCHLD handling) running meanwhile.
    green_wait_until("the workers", || workers.iter().all(|w| w.is_finished()));
    for w in workers {
        let (results, signal) = w.join().unwrap();
        for (code, waited, polled) in results {
            assert_eq!((waited, polled), (Some(code), Some(code)));
        }
        assert_eq!(signal, Some(libc::SIGKILL));
    }
}
