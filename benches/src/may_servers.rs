//! The `may` servers of `net-bench` (`net-bench --serve may-echo|may-hello|
//! may-http ADDR`): `may::net` sockets, a coroutine per connection, one
//! worker thread (one core's worth, as the other servers).
//!
//! `may::coroutine::spawn` is `unsafe` because a coroutine may move
//! between worker threads (thread-local storage held across a yield would
//! be another thread's); with one worker none moves, and these
//! coroutines use no thread-local storage.

use crate::servers::{HELLO, announce};
use std::io::{Read, Write};

/// Serves the server kind `kind` on `addr` until killed.
pub fn serve(kind: &str, addr: &str) {
    may::config().set_workers(1);
    let kind = kind.to_owned();
    let l = may::net::TcpListener::bind(addr).expect("bind");
    announce(l.local_addr().expect("local_addr"));
    let accept = move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let _ = s.set_nodelay(true);
            let kind = kind.clone();
            // SAFETY: see the module docs.
            unsafe { may::coroutine::spawn(move || conn(&kind, s)) };
        }
    };
    // SAFETY: as above.
    let acceptor = unsafe { may::coroutine::spawn(accept) };
    acceptor.join().expect("may acceptor");
}

fn conn(kind: &str, mut s: may::net::TcpStream) {
    match kind {
        "may-hello" => {
            let _ = s.write_all(HELLO);
        }
        "may-http" => {
            let _ = crate::http_servers::hello_http::serve(&mut s);
        }
        "may-echo" => {
            let mut buf = [0u8; 4096];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        _ => panic!("unknown server kind {kind}"),
    }
}
