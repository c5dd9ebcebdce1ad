//! An echo server on green threads: each connection runs on its own
//! greenlet, which sends back whatever it reads until the peer closes.
//!
//! ```text
//! cargo run --release --example echo_server [-- ADDR] [--threads N|all]
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

use libev::green;
use libev::green::net::TcpStream;
use libev::green::server::{StreamServer, ThreadedStreamServer, Threads};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// Echoes until the peer closes (or the connection fails).
fn echo(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
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

/// The command line: `[ADDR] [--threads N|all]`.
fn parse_args() -> io::Result<(String, Threads)> {
    let usage = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}; usage: echo_server [ADDR] [--threads N|all]"),
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
        let server = StreamServer::bind(addr.as_str(), handle)?;
        let stopper = server.clone();
        serve(server.local_addr()?, move || stopper.stop(GRACE), || server.serve_forever())
    } else {
        // Each thread calls the factory for its handler: here the same fn.
        let server = ThreadedStreamServer::bind(addr.as_str(), threads, || handle)?;
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
