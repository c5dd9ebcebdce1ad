//! The seed's hello-world server on green threads: a `StreamServer` runs
//! each connection on its own greenlet, which writes `hello world\r\n`
//! and closes the connection.
//!
//! ```text
//! cargo run --release --example hello_server [-- ADDR] [--threads N|all] [--processes N|all]
//! curl --http0.9 -s 127.0.0.1:8000
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens. SIGINT (Ctrl-C) or
//! SIGTERM stops it gracefully: no new connections, 5 s for those in
//! flight, exit status 0.
//!
//! `--threads N` serves on N OS threads (`all`: one per core), each with
//! its own hub and its own listening socket on ADDR
//! (`ThreadedStreamServer`); the default, 1, is one `StreamServer` on the
//! main thread. `--processes N` forks N worker processes instead, each
//! with its own hub and its own socket on ADDR, under a parent that
//! restarts a worker that dies and stops them all gracefully on SIGINT or
//! SIGTERM (`PreforkServer`, gunicorn's `-w N -k gevent`).
//!
//! Closing a socket with unread input makes the kernel answer with a reset,
//! which can destroy the reply before the client reads it (curl's request
//! is such input). So each greenlet shuts down its sending side after the
//! greeting and reads what the client sent, at most 64 KiB for at most a
//! second, before it closes.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/serving.rs"]
mod serving;

use libev::green;
use libev::green::net::{Shutdown, TcpStream};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// How much of a client's input is read (and dropped) before closing.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long a client may take to finish sending.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// One connection: the greeting, then a bounded drain of the input.
fn greet(mut stream: TcpStream, _peer: SocketAddr) {
    // A peer that already left is no concern of ours.
    if stream.write_all(b"hello world\r\n").is_err() || stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = green::with_timeout(DRAIN_TIME, || {
        let mut buf = [0u8; 4096];
        let mut left = DRAIN_BYTES;
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            left = left.saturating_sub(n);
            if left == 0 {
                break;
            }
        }
    });
    // Dropping the stream closes the connection.
}

const USAGE: &str = "usage: hello_server [ADDR] [--threads N|all | --processes N|all]\n  ADDR               where to listen (default 127.0.0.1:8000; port 0 picks one)\n  --threads N|all    serve on N threads, each with its own hub (all: one per core; default 1)\n  --processes N|all  serve on N forked worker processes, each with its own hub; the parent restarts those that die\n";

fn main() -> ExitCode {
    match serving::args("hello_server", USAGE) {
        Ok((addr, scale)) => serving::run("hello_server", &addr, scale, || greet),
        Err(code) => code,
    }
}
