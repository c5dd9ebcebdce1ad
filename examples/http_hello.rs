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

use libev::green::net::TcpStream;
use libev::green::server::StreamServer;
use std::io::{self, Read, Write};

const BODY: &[u8] = b"Hello, world!";
/// The most a request (head and body) may take; more gets a 431.
const MAX_REQUEST: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;

/// What one parsed request asks for.
struct Request {
    /// Bytes of the head and body.
    len: usize,
    keep_alive: bool,
    head_only: bool,
}

/// Parses the request at the start of `buf`: `Ok(None)` if it is not all
/// there yet, `Err(status line)` if it is one we refuse.
fn parse(buf: &[u8]) -> Result<Option<Request>, &'static [u8]> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(b"431 Request Header Fields Too Large"),
        Err(_) => return Err(b"400 Bad Request"),
    };
    let http11 = req.version == Some(1);
    let mut keep_alive = http11;
    let mut body = 0usize;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(&b"400 Bad Request"[..])?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked request bodies are beyond this example.
            return Err(b"501 Not Implemented");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = h.value;
            if v.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if v.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    let len = head.checked_add(body).filter(|&l| l <= MAX_REQUEST).ok_or(&b"413 Content Too Large"[..])?;
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Request { len, keep_alive, head_only: req.method == Some("HEAD") }))
}

fn respond(out: &mut Vec<u8>, req: &Request) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n", BODY.len());
    out.extend_from_slice(if req.keep_alive { b"\r\n" } else { b"Connection: close\r\n\r\n" });
    if !req.head_only {
        out.extend_from_slice(BODY);
    }
}

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
        let mut start = 0;
        let mut close = false;
        loop {
            match parse(&buf[start..filled]) {
                Ok(Some(req)) => {
                    respond(&mut out, &req);
                    start += req.len;
                    if !req.keep_alive {
                        close = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(status) => {
                    out.extend_from_slice(b"HTTP/1.1 ");
                    out.extend_from_slice(status);
                    out.extend_from_slice(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        if close {
            return Ok(());
        }
        // Keep the start of the next request; grow for a long one.
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == buf.len() {
            if buf.len() >= MAX_REQUEST {
                stream.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
                return Ok(());
            }
            buf.resize(buf.len() * 2, 0);
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8000".to_owned());
    let server = StreamServer::bind(addr.as_str(), |stream, _peer| {
        let _ = serve(stream);
    })?;
    println!("listening on {}", server.local_addr()?);
    io::stdout().flush()?;
    server.serve_forever()
}
