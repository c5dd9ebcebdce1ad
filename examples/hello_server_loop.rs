//! The seed's hello-world server with raw libev watchers: an io watcher on
//! the listening socket accepts each connection, writes `hello world\r\n`
//! and closes it.
//!
//! ```text
//! cargo run --release --example hello_server_loop [-- ADDR]
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens.

use libev::{Events, Io, Loop};
use std::io::{ErrorKind, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let listener = TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    let lp = Loop::default_loop()?;

    let local = listener.local_addr()?;
    let accept = Io::new(&lp, listener.as_raw_fd(), Events::READ, move |_, _| {
        // Accept everything that is ready; the watcher is level-triggered,
        // so anything left would be reported again anyway.
        loop {
            match listener.accept() {
                Ok((mut stream, _peer)) => {
                    // 13 bytes into a fresh socket buffer never block; a
                    // peer that already left is no concern of ours.
                    let _ = stream.write_all(b"hello world\r\n");
                    // Dropping the stream closes the connection.
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: report, keep serving.
                    eprintln!("accept: {e}");
                    break;
                }
            }
        }
    })?;
    accept.start();

    println!("listening on {local}");
    lp.run();
    Ok(())
}
