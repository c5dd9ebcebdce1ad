//! The HTTP/1.1 side of the `Hello, world!` servers (`http_hello`, and
//! `https_hello` over TLS; the benchmarks' green and `may` servers): a
//! keep-alive connection served in blocking style, the requests it has
//! sent so far parsed with `httparse`, and the replies to them.

use std::io::{self, Read, Write};

/// Serves requests from `stream` until the client closes it or asks to.
/// Every complete request in what has arrived is answered, in one write;
/// the start of the next one is kept, and the buffer grows for a long one
/// (up to [`MAX_REQUEST`]: `answer` refuses a longer one). A client that
/// ends without TLS's close_notify (`UnexpectedEof`) has closed.
pub fn serve(stream: &mut (impl Read + Write)) -> io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut filled = 0;
    let mut out = Vec::with_capacity(256);
    loop {
        let n = match stream.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let (used, close) = answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            stream.flush()?;
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

/// What every request gets.
const BODY: &[u8] = b"Hello, world!";
/// The most a request (head and body) may take; more gets a 431.
const MAX_REQUEST: usize = 64 * 1024;
/// The most headers a request may have; more gets a 431.
const MAX_HEADERS: usize = 32;

/// Answers the complete requests at the start of `buf`, appending the
/// replies to `out` (pipelined requests get theirs in one write). Returns
/// how many bytes of `buf` they took, and whether to close the connection
/// after writing `out`: the client asked to, or a request was refused.
pub fn answer(buf: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
    let mut used = 0;
    loop {
        match parse(&buf[used..]) {
            Ok(Some(req)) => {
                respond(out, &req);
                used += req.len;
                if !req.keep_alive {
                    return (used, true);
                }
            }
            Ok(None) if buf.len() - used >= MAX_REQUEST => {
                refuse(out, "431 Request Header Fields Too Large");
                return (used, true);
            }
            Ok(None) => return (used, false),
            Err(status) => {
                refuse(out, status);
                return (used, true);
            }
        }
    }
}

/// What one parsed request asks for.
struct Request {
    /// Bytes of the head and body.
    len: usize,
    keep_alive: bool,
    head_only: bool,
}

/// Parses the request at the start of `buf`: `Ok(None)` if it is not all
/// there yet, `Err(status)` (say `400 Bad Request`) if it is one we refuse.
fn parse(buf: &[u8]) -> Result<Option<Request>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("431 Request Header Fields Too Large"),
        Err(_) => return Err("400 Bad Request"),
    };
    let mut keep_alive = req.version == Some(1);
    let mut body = 0usize;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("400 Bad Request")?;
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked request bodies are beyond these examples.
            return Err("501 Not Implemented");
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            }
        }
    }
    let len = head.checked_add(body).filter(|&l| l <= MAX_REQUEST).ok_or("413 Content Too Large")?;
    if buf.len() < len {
        return Ok(None);
    }
    Ok(Some(Request { len, keep_alive, head_only: req.method == Some("HEAD") }))
}

/// Appends the reply to `req` to `out`.
fn respond(out: &mut Vec<u8>, req: &Request) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n", BODY.len());
    out.extend_from_slice(if req.keep_alive { b"\r\n" } else { b"Connection: close\r\n\r\n" });
    if !req.head_only {
        out.extend_from_slice(BODY);
    }
}

/// Appends a reply with `status` and no body that closes the connection
/// to `out`.
fn refuse(out: &mut Vec<u8>, status: &str) {
    let _ = write!(out, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}
