//! The seed's hello-world server on green threads: a `StreamServer` runs
//! each connection on its own greenlet, which writes `hello world\r\n`
//! and closes the connection.
//!
//! ```text
//! cargo run --release --example hello_server [-- ADDR]
//! curl --http0.9 -s 127.0.0.1:8000
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens. SIGINT (Ctrl-C) or
//! SIGTERM stops it gracefully: no new connections, 5 s for those in
//! flight, exit status 0.
//!
//! Closing a socket with unread input makes the kernel answer with a reset,
//! which can destroy the reply before the client reads it (curl's request
//! is such input). So each greenlet shuts down its sending side after the
//! greeting and reads what the client sent, at most 64 KiB for at most a
//! second, before it closes.

use libev::green::{self, net::Shutdown, server::StreamServer};
use std::io::{Read, Write};
use std::time::Duration;

/// How much of a client's input is read (and dropped) before closing.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long a client may take to finish sending.
const DRAIN_TIME: Duration = Duration::from_secs(1);
/// How long connections in flight may take to finish after SIGINT or
/// SIGTERM.
const GRACE: Duration = Duration::from_secs(5);

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = StreamServer::bind(addr.as_str(), |mut stream, _peer| {
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
