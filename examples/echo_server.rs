//! An echo server on green threads: each connection runs on its own
//! greenlet, which sends back whatever it reads until the peer closes.
//!
//! ```text
//! cargo run --release --example echo_server [-- ADDR] [--threads N|all] [--processes N|all]
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

#[path = "support/cli.rs"]
mod cli;
#[path = "support/serving.rs"]
mod serving;

use std::process::ExitCode;

use libev::green::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

/// Echoes until the peer closes (or the connection fails).
///
/// The buffer is small on purpose: an idle connection's greenlet, parked
/// in `read`, keeps every stack page it has touched, so what the deepest
/// read touched is what each idle connection costs. With this 2 KiB
/// buffer 10,000 idle connections cost 6.3 to 6.5 KiB of RSS each (the example's
/// `idle_rss` row on `docs/benchmarks.md`); with a 16 KiB one, 21 KiB
/// (the first read zeroes four pages).
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

/// One connection: a reset or a broken pipe ends this connection only.
fn handle(stream: TcpStream, _peer: SocketAddr) {
    let _ = echo(stream);
}

const USAGE: &str = "usage: echo_server [ADDR] [--threads N|all | --processes N|all]\n  ADDR               where to listen (default 127.0.0.1:8000; port 0 picks one)\n  --threads N|all    serve on N threads, each with its own hub (all: one per core; default 1)\n  --processes N|all  serve on N forked worker processes, each with its own hub; the parent restarts those that die\n";

fn main() -> ExitCode {
    match serving::args("echo_server", USAGE) {
        Ok((addr, scale)) => serving::run("echo_server", &addr, scale, || handle),
        Err(code) => code,
    }
}
