//! A WebSocket echo server: `tungstenite`, a blocking library written
//! against `std::io::{Read, Write}` with no idea of greenlets, runs
//! unchanged on green sockets. Its blocking reads park only the
//! connection's greenlet, so one thread serves every client. This is the
//! Rust form of gevent's monkey patching: no patching, just a stream type
//! that implements the std traits.
//!
//! ```text
//! cargo run --release --example ws_echo [-- ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens. Try it with any
//! WebSocket client on `ws://ADDR/`.

#[path = "support/cli.rs"]
mod cli;

use libev::green::net::TcpStream;
use libev::green::server::StreamServer;
use std::io::Write;
use std::process::ExitCode;

/// Echoes text and binary messages until the client closes.
fn serve(stream: TcpStream) -> tungstenite::Result<()> {
    let mut ws = tungstenite::accept(stream).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        // Only a stream that says WouldBlock interrupts a handshake; a
        // green stream parks instead, unless set non-blocking.
        tungstenite::HandshakeError::Interrupted(_) => {
            std::io::Error::from(std::io::ErrorKind::WouldBlock).into()
        }
    })?;
    loop {
        // tungstenite answers pings and closes by itself; after a close,
        // the next read reports the end.
        let msg = ws.read()?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg)?;
        }
    }
}

const USAGE: &str =
    "usage: ws_echo [ADDR]\n  ADDR  where to listen (default 127.0.0.1:8000; port 0 picks one)\n";

fn main() -> ExitCode {
    let addr = match cli::listen_addr("ws_echo", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let server = match StreamServer::bind(addr.as_str(), |stream, _peer| {
        // Ends with ConnectionClosed (or an error) when the client goes.
        let _ = serve(stream);
    }) {
        Ok(server) => server,
        Err(e) => return cli::fail("ws_echo", format_args!("cannot listen on {addr}"), e),
    };
    if let Ok(local) = server.local_addr() {
        println!("listening on {local}");
    }
    let _ = std::io::stdout().flush();
    match server.serve_forever() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("ws_echo", "serving", e),
    }
}
