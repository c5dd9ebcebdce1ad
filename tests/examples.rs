//! The examples, run as a user would: start the binary, talk to it over
//! loopback, stop it.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The example binaries `cargo test` builds next to the test binaries.
fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop(); // the test binary
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("examples").join(name)
}

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `name` on a free port and returns it with the address it printed.
fn start(name: &str) -> (Server, String) {
    let child = Command::new(example(name))
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start example {name}: {e}"));
    let mut server = Server(child);
    let mut line = String::new();
    BufReader::new(server.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {line:?}"));
    (server, addr.to_owned())
}

fn fetch(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn hello_server_loop_greets_and_closes() {
    let (_server, addr) = start("hello_server_loop");
    for _ in 0..20 {
        assert_eq!(fetch(&addr), "hello world\r\n");
    }
    // Many clients at once.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || (0..25).all(|_| fetch(&addr) == "hello world\r\n"))
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}
