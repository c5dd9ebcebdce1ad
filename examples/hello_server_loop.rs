//! The seed's hello-world server with raw libev watchers: an io watcher on
//! the listening socket accepts each connection, writes `hello world\r\n`
//! and closes it.
//!
//! ```text
//! cargo run --release --example hello_server_loop [-- ADDR]
//! curl --http0.9 -s 127.0.0.1:8000
//! ```
//!
//! ADDR defaults to 127.0.0.1:8000; port 0 picks a free port. The server
//! prints one line with the address once it listens.
//!
//! Two things a real server needs, done with watchers:
//!
//! - Closing a socket with unread input makes the kernel answer with a
//!   reset, which can destroy the reply before the client reads it. So
//!   after the greeting the server shuts down its sending side and reads
//!   what the client sent (an io watcher per connection), at most 64 KiB
//!   for at most a second (a timer), before it closes.
//! - Out of descriptors (`EMFILE`) or memory, `accept` fails at once and
//!   the listener stays readable, so a level-triggered watcher would spin.
//!   The server stops accepting and retries after a pause, 5 ms doubling
//!   up to 1 s while the errors go on, as `StreamServer` does.

#[path = "support/cli.rs"]
mod cli;

use libev::{Events, Io, Loop, Timer};
use std::cell::{Cell, OnceCell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);
const MIN_PAUSE: Duration = Duration::from_millis(5);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// Greets `stream`, then drains and closes it from the loop.
fn serve(lp: &Loop, mut stream: TcpStream) {
    // 13 bytes into a fresh socket buffer never block.
    if stream.write_all(b"hello world\r\n").is_err()
        || stream.shutdown(Shutdown::Write).is_err()
        || stream.set_nonblocking(true).is_err()
    {
        return;
    }
    // The connection's two watchers; taking them out closes it (the io
    // watcher's closure owns the stream).
    let conn: Rc<RefCell<Option<(Io, Timer)>>> = Rc::default();
    let close = {
        let conn = conn.clone();
        move || drop(conn.borrow_mut().take())
    };
    let fd = stream.as_raw_fd();
    let mut left = DRAIN_BYTES;
    let on_input = {
        let close = close.clone();
        move |_: &Io, _| {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 && n < left => left -= n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // End of input, an error, or enough: close.
                    _ => return close(),
                }
            }
        }
    };
    let Ok(io) = Io::new(lp, fd, Events::READ, on_input) else { return };
    let timer = Timer::new(lp, DRAIN_TIME, Duration::ZERO, move |_, _| close());
    io.start();
    timer.start();
    *conn.borrow_mut() = Some((io, timer));
}

const USAGE: &str =
    "usage: hello_server_loop [ADDR]\n  ADDR  where to listen (default 127.0.0.1:8000; port 0 picks one)\n";

fn main() -> ExitCode {
    let addr = match cli::listen_addr("hello_server_loop", USAGE) {
        Ok(addr) => addr,
        Err(code) => return code,
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => return cli::fail("hello_server_loop", format_args!("cannot listen on {addr}"), e),
    };
    match serve_on(listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("hello_server_loop", "serving", e),
    }
}

/// Serves on `listener` until the loop ends.
fn serve_on(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let lp = Loop::default_loop()?;
    let local = listener.local_addr()?;

    // The accept watcher, reachable from the timer that resumes it.
    let acceptor: Rc<OnceCell<Io>> = Rc::default();
    let resume = Timer::new(&lp, MIN_PAUSE, Duration::ZERO, {
        let acceptor = acceptor.clone();
        move |_, _| acceptor.get().expect("made below").start()
    });
    let pause = Cell::new(MIN_PAUSE);
    let lp2 = lp.clone();
    let accept = Io::new(&lp, listener.as_raw_fd(), Events::READ, move |io, _| {
        // Accept everything that is ready; the watcher is level-triggered,
        // so anything left would be reported again anyway.
        loop {
            match listener.accept() {
                Ok((stream, _peer)) => {
                    pause.set(MIN_PAUSE);
                    serve(&lp2, stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The connection went wrong, not the server: go on.
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted) => {}
                Err(e) => {
                    // EMFILE and friends: report, pause accepting, retry.
                    eprintln!("accept: {e}; pausing {:?}", pause.get());
                    io.stop();
                    resume.set(pause.get(), Duration::ZERO);
                    resume.start();
                    pause.set((pause.get() * 2).min(MAX_PAUSE));
                    break;
                }
            }
        }
    })?;
    accept.start();
    let _ = acceptor.set(accept);

    println!("listening on {local}");
    std::io::stdout().flush()?;
    lp.run();
    Ok(())
}
