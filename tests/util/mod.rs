//! Helpers shared by the root package's integration tests: the example
//! binaries run as a user would, and libev's own test helpers (pipes,
//! pseudo-terminals, temporary directories), re-exported.
#![allow(dead_code)]

#[path = "../../libev/tests/util/mod.rs"]
mod libev_util;

#[allow(unused_imports, reason = "not every test uses libev's helpers")]
pub use libev_util::*;

use libev::green::{self, Greenlet};
use std::cell::Cell;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The example binary `name`, which `cargo test` builds next to the test
/// binaries.
pub fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop(); // the test binary
    if p.ends_with("deps") {
        p.pop();
    }
    let p = p.join("examples").join(name);
    assert!(
        p.exists(),
        "{} is missing: `cargo test` builds the examples, `cargo test --test NAME` alone does not",
        p.display()
    );
    p
}

/// Runs example `name` with `args` (at most 60 s) and returns its output.
pub fn run_example(name: &str, args: &[&str]) -> Output {
    let mut child =
        Command::new(example(name)).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} {args:?} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Kills the server when the test ends, pass or fail.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the server `cmd` runs, with its standard output piped, and
/// returns it with the address from the line it prints first,
/// `listening on ADDR`.
pub fn start_server(cmd: &mut Command) -> (Server, String) {
    let child = cmd.stdout(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {line:?}"));
    (server, addr.to_owned())
}

/// Starts example `name` on a free loopback port with `args`; returns it
/// and the address it printed.
pub fn start_example(name: &str, args: &[&str]) -> (Server, String) {
    start_server(Command::new(example(name)).arg("127.0.0.1:0").args(args))
}

/// A greenlet that counts 20 ticks, one every 10 ms: a test that waits
/// for something checks with it that the hub ran other greenlets
/// meanwhile.
pub fn ticker() -> (Greenlet<()>, Rc<Cell<u32>>) {
    let ticks = Rc::new(Cell::new(0));
    let ticker = {
        let ticks = ticks.clone();
        green::spawn(move || {
            for _ in 0..20 {
                green::sleep(Duration::from_millis(10));
                ticks.set(ticks.get() + 1);
            }
        })
    };
    (ticker, ticks)
}
