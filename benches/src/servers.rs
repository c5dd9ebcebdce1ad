//! The servers `net-bench` starts (`net-bench --serve KIND ADDR`). Each
//! prints `listening on ADDR` once it listens, then serves until killed.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

unsafe extern "C" {
    /// `c/servers.c`: serve on a listening, non-blocking socket (never returns).
    fn bench_c_echo_server(listen_fd: i32) -> i32;
    fn bench_c_hello_server(listen_fd: i32) -> i32;
}

const HELLO: &[u8] = b"hello world\r\n";

fn announce(addr: std::net::SocketAddr) {
    println!("listening on {addr}");
    std::io::stdout().flush().expect("stdout");
}

pub fn serve(kind: &str, addr: &str) {
    match kind {
        "c-echo" | "c-hello" => {
            let l = std::net::TcpListener::bind(addr).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            announce(l.local_addr().expect("local_addr"));
            // SAFETY: `l` stays open (and owned here) while the C server
            // runs, which is until the process is killed.
            unsafe {
                if kind == "c-echo" {
                    bench_c_echo_server(l.as_raw_fd());
                } else {
                    bench_c_hello_server(l.as_raw_fd());
                }
            }
        }
        "green-echo" => green_echo(addr),
        // The same server watched by the blocking monitor (its cost).
        "green-echo-monitored" => {
            libev::green::monitor::start(libev::green::monitor::DEFAULT_MAX_BLOCKING_TIME).expect("monitor");
            green_echo(addr)
        }
        "green-hello" => green_hello(addr),
        "tokio-echo" | "tokio-hello" => tokio_server(kind == "tokio-echo", addr),
        _ => panic!("unknown server kind {kind}"),
    }
}

fn green_echo(addr: &str) {
    use libev::green::{self, net::TcpListener};
    let l = TcpListener::bind(addr).expect("bind");
    announce(l.local_addr().expect("local_addr"));
    loop {
        let (mut s, _) = l.accept().expect("accept");
        let _ = s.set_nodelay(true);
        green::spawn(move || {
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
        });
    }
}

fn green_hello(addr: &str) {
    use libev::green::server::StreamServer;
    let server = StreamServer::bind(addr, |mut s, _peer| {
        let _ = s.write_all(HELLO);
    })
    .expect("bind");
    announce(server.local_addr().expect("local_addr"));
    server.serve_forever().expect("serve");
}

fn tokio_server(echo: bool, addr: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(l.local_addr().expect("local_addr"));
        loop {
            let (mut s, _) = l.accept().await.expect("accept");
            let _ = s.set_nodelay(true);
            tokio::task::spawn_local(async move {
                if !echo {
                    let _ = s.write_all(HELLO).await;
                    return;
                }
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}
