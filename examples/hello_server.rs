//! The seed's hello-world server on green threads: a `StreamServer` runs
//! each connection on its own greenlet, which writes `hello world\r\n`
//! and closes the connection.
//!
//! ```text
//! cargo run --release --example hello_server [-- ADDR] [--threads N|all]
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
//! main thread.
//!
//! Closing a socket with unread input makes the kernel answer with a reset,
//! which can destroy the reply before the client reads it (curl's request
//! is such input). So each greenlet shuts down its sending side after the
//! greeting and reads what the client sent, at most 64 KiB for at most a
//! second, before it closes.

use libev::green;
use libev::green::net::{Shutdown, TcpStream};
use libev::green::server::{StreamServer, ThreadedStreamServer, Threads};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// How much of a client's input is read (and dropped) before closing.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long a client may take to finish sending.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

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

/// The command line: `[ADDR] [--threads N|all]`.
fn parse_args() -> io::Result<(String, Threads)> {
    let usage = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}; usage: hello_server [ADDR] [--threads N|all]"),
        )
    };
    let (mut addr, mut threads) = (None, Threads::Count(1));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--threads" {
            threads = args.next().ok_or_else(|| usage("--threads needs a value".into()))?.parse()?;
        } else if let Some(n) = arg.strip_prefix("--threads=") {
            threads = n.parse()?;
        } else if arg.starts_with('-') || addr.is_some() {
            return Err(usage(format!("unexpected argument {arg:?}")));
        } else {
            addr = Some(arg);
        }
    }
    Ok((addr.unwrap_or_else(|| "127.0.0.1:8000".to_owned()), threads))
}

fn main() -> io::Result<()> {
    let (addr, threads) = parse_args()?;
    if threads == Threads::Count(1) {
        let server = StreamServer::bind(addr.as_str(), greet)?;
        let stopper = server.clone();
        serve(server.local_addr()?, move || stopper.stop(GRACE), || server.serve_forever())
    } else {
        // Each thread calls the factory for its handler: here the same fn.
        let server = ThreadedStreamServer::bind(addr.as_str(), threads, || greet)?;
        let stopper = server.clone();
        serve(server.local_addr()?, move || stopper.stop(GRACE), || server.serve_forever())
    }
}

/// SIGINT (Ctrl-C) and SIGTERM call `stop`, which stops accepting, gives
/// the connections in flight GRACE to finish, and makes `serve_forever`
/// return Ok (exit status 0).
fn serve(
    addr: SocketAddr,
    stop: impl Fn() + Clone + 'static,
    serve_forever: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let _int = green::signal::signal_handler(libc::SIGINT, stop.clone())?;
    let _term = green::signal::signal_handler(libc::SIGTERM, stop)?;
    println!("listening on {addr}");
    io::stdout().flush()?;
    serve_forever()
}
