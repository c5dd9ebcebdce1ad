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

use libev::green::server::StreamServer;
use std::io::{self, Write};
use std::process::ExitCode;

const USAGE: &str =
    "usage: http_hello [ADDR]\n  ADDR  where to listen (default 127.0.0.1:8000; port 0 picks one)\n";

fn main() -> ExitCode {
    let addr = match cli::listen_addr("http_hello", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let server = match StreamServer::bind(addr.as_str(), |mut stream, _peer| {
        let _ = hello_http::serve(&mut stream);
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
