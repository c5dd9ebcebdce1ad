//! The seed's hello-world server on green threads: a `StreamServer` runs
//! each connection on its own greenlet, which writes `hello world\r\n`
//! and closes the connection.
//!
//! ```text
//! cargo run --release --example hello_server [-- ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens.

use libev::green::server::StreamServer;
use std::io::Write;

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = StreamServer::bind(addr.as_str(), |mut stream, _peer| {
        // A peer that already left is no concern of ours. Dropping the
        // stream closes the connection.
        let _ = stream.write_all(b"hello world\r\n");
    })?;
    println!("listening on {}", server.local_addr()?);
    std::io::stdout().flush()?;
    server.serve_forever()
}
