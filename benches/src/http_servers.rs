//! The HTTP/1.1 keep-alive servers of `net-bench` (`net-bench --serve
//! KIND ADDR`, KIND one of `c-http`, `green-http`, `tokio-http`,
//! `hyper-http`; `may-http` is in `may_servers.rs`, gevent's `pywsgi` in
//! `gevent_server.py`). Every request gets `Hello, world!`.
//!
//! The hand-written Rust servers share `examples/http_hello.rs`'s request
//! handling (`examples/support/hello_http.rs`: `httparse`, pipelined
//! requests answered in one write); hyper is what a Rust user picks by
//! default, on tokio's current-thread runtime; the C server
//! (`c/http_server.c`) is the plain libev way, which looks for the end of
//! each request's head and answers it without parsing further.

#[path = "../../examples/support/hello_http.rs"]
pub(crate) mod hello_http;

use crate::servers::announce;
use std::os::fd::AsRawFd;

unsafe extern "C" {
    /// `c/http_server.c`: serve on a listening, non-blocking socket
    /// (never returns).
    fn bench_c_http_server(listen_fd: i32) -> i32;
}

/// Serves the server kind `kind` on `addr` until killed.
pub fn serve(kind: &str, addr: &str) {
    match kind {
        "c-http" => {
            let l = std::net::TcpListener::bind(addr).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            announce(l.local_addr().expect("local_addr"));
            // SAFETY: `l` stays open (and owned here) while the C server
            // runs, which is until the process is killed.
            unsafe { bench_c_http_server(l.as_raw_fd()) };
        }
        "green-http" => {
            use libev::green::server::StreamServer;
            let server = StreamServer::bind(addr, |mut s, _| {
                let _ = s.set_nodelay(true);
                let _ = hello_http::serve(&mut s);
            })
            .expect("bind");
            announce(server.local_addr().expect("local_addr"));
            server.serve_forever().expect("serve");
        }
        "tokio-http" | "hyper-http" => tokio_http(kind == "hyper-http", addr),
        _ => panic!("unknown server kind {kind}"),
    }
}

/// `hello_http::serve`'s loop on a tokio stream.
async fn tokio_conn(mut s: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        let n = s.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let (used, close) = hello_http::answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            s.write_all(&out).await?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
    }
}

/// hyper's HTTP/1 server answering `Hello, world!`, on one connection.
async fn hyper_conn(s: tokio::net::TcpStream) {
    use hyper::service::service_fn;
    let service = service_fn(|_req| async {
        let mut reply = hyper::Response::new(http_body_util::Full::new(&b"Hello, world!"[..]));
        reply.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
        Ok::<_, std::convert::Infallible>(reply)
    });
    let io = hyper_util::rt::TokioIo::new(s);
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
}

/// The hand-written loop (`hyper == false`) or hyper, on tokio's
/// current-thread runtime.
fn tokio_http(hyper: bool, addr: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(l.local_addr().expect("local_addr"));
        loop {
            let (s, _) = l.accept().await.expect("accept");
            let _ = s.set_nodelay(true);
            if hyper {
                tokio::task::spawn_local(hyper_conn(s));
            } else {
                tokio::task::spawn_local(async move {
                    let _ = tokio_conn(s).await;
                });
            }
        }
    });
}
