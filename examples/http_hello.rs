//! A keep-alive HTTP/1.1 server answering every request with
//! `Hello, world!`, on green sockets: each connection is a greenlet that
//! reads, parses with `httparse` and writes in plain blocking style.
//! Pipelined requests are answered in one write.
//!
//! ```text
//! cargo run --release --example http_hello [-- ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/hello_http.rs"]
mod hello_http;

use libev::green::net::TcpStream;
use libev::green::server::StreamServer;
use std::io::{self, Read, Write};
use std::process::ExitCode;

/// Serves one connection until the client closes it or asks to.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        // Answer every complete request in the buffer, in one write.
        let (used, close) = hello_http::answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        // Keep the start of the next request; grow for a long one (up to
        // the most a request may take: `answer` refuses a longer one).
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

const USAGE: &str =
    "usage: http_hello [ADDR]\n  ADDR  where to listen (default 127.0.0.1:8000; port 0 picks one)\n";

fn main() -> ExitCode {
    let addr = match cli::listen_addr("http_hello", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let server = match StreamServer::bind(addr.as_str(), |stream, _peer| {
        let _ = serve(stream);
    }) {
        Ok(server) => server,
        Err(e) => return cli::fail("http_hello", format_args!("cannot listen on {addr}"), e),
    };
    if let Ok(local) = server.local_addr() {
        println!("listening on {local}");
    }
    let _ = io::stdout().flush();
    match server.serve_forever() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("http_hello", "serving", e),
    }
}
