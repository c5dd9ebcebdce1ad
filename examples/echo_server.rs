//! An echo server on green threads: each connection runs on its own
//! greenlet, which sends back whatever it reads until the peer closes.
//!
//! ```text
//! cargo run --release --example echo_server [-- ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens. SIGINT (Ctrl-C) or
//! SIGTERM stops it gracefully: no new connections, 5 s for those in
//! flight, exit status 0.

use libev::green::{self, net::TcpStream, server::StreamServer};
use std::io::{Read, Write};
use std::time::Duration;

/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

/// Echoes until the peer closes (or the connection fails).
fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = StreamServer::bind(addr.as_str(), |stream, _peer| {
        // A reset or a broken pipe ends this connection only.
        let _ = echo(stream);
    })?;
    // SIGINT (Ctrl-C) and SIGTERM stop the server gracefully: it stops
    // accepting, gives the connections in flight GRACE to finish, and
    // `serve_forever` returns Ok (exit status 0).
    let stop_on = |signum| {
        let server = server.clone();
        green::signal::signal_handler(signum, move || server.stop(GRACE))
    };
    let _int = stop_on(libc::SIGINT)?;
    let _term = stop_on(libc::SIGTERM)?;
    println!("listening on {}", server.local_addr()?);
    std::io::stdout().flush()?;
    server.serve_forever()
}
