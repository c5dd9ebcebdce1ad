//! `Child` with a real child process. One test at a time
//! (`ONE_AT_A_TIME`): libev reaps every child of the process once the
//! default loop exists, and a child watcher for pid 0 sees any of them.

mod util;

use libev::{Child, Loop};
use std::io::ErrorKind;

/// Held by every test of this binary for its whole run.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn child_exit_status_is_reported() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let def = Loop::default_loop().unwrap();
    // Only the default loop can watch children.
    let other = Loop::new().unwrap();
    assert_eq!(Child::new(&other, 0, false, |_, _| {}).unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(Child::new(&def, -3, false, |_, _| {}).unwrap_err().kind(), ErrorKind::InvalidInput);

    let proc = std::process::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let pid = proc.id() as i32;
    let w = Child::new(&def, pid, false, |c, ev| {
        assert!(ev.contains(libev::Events::CHILD));
        c.stop();
    })
    .unwrap();
    w.start();
    def.run();
    assert_eq!(w.pid(), pid);
    assert_eq!(w.rpid(), pid);
    assert_eq!(w.exit_status().code(), Some(7));
    // libev reaped it: std's wait has nothing left to collect.
    drop(proc);

    // pid 0 watches any child.
    #[allow(clippy::zombie_processes)] // libev reaps it
    let proc = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let any = Child::new(&def, 0, false, |c, _| c.stop()).unwrap();
    any.start();
    def.run();
    assert_eq!(any.rpid(), proc.id() as i32);
    assert_eq!(any.exit_status().code(), Some(3));
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    util::run_suite_on_every_backend("suite_on_every_backend");
}
