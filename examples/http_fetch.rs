//! Fetches 1,000 URLs at once on one thread with `ureq`, a blocking HTTP
//! client that knows nothing of greenlets: each fetch is a greenlet, and
//! ureq's connections are green sockets (the connector in
//! `support/green_ureq.rs`), so a fetch waiting for its reply parks only
//! its own greenlet.
//!
//! ```text
//! cargo run --release --example http_fetch [-- [--count N] [URL]]
//! ```
//!
//! Without URL the program also serves the pages, on the same thread: a
//! green HTTP server on a free loopback port answers `/item/K` with
//! `/item/K`, and every fetch of `/item/0` to `/item/N-1` checks its body.
//! With URL (say `http://127.0.0.1:8000/` with the `http_hello` example
//! running) it fetches that URL N times and counts the successes. It ends
//! with a summary line, and exits with 1 if a fetch failed.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/fd_limit.rs"]
mod fd_limit;
#[path = "support/green_ureq.rs"]
mod green_ureq;

use libev::green;
use libev::green::net::TcpStream;
use libev::green::server::StreamServer;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: http_fetch [--count N] [URL]

Fetches N URLs at once (default 1000), one greenlet each, on one thread,
with the ureq HTTP client on green sockets, and prints a summary.

  URL          fetch URL N times; without it, serve /item/0 .. /item/N-1
               from a green server on this same thread and check each body
  --count N    how many fetches run at once (default 1000)
  -h, --help   print this help
";

/// What the command line asks for.
struct Args {
    count: usize,
    url: Option<String>,
}

/// `Ok(None)` when the help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args { count: 1000, url: None };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--count" => parsed.count = cli::number("--count", args.next())?,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            url if parsed.url.is_none() => parsed.url = Some(url.to_owned()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    Ok(Some(parsed))
}

/// Connections the page server has open now, and the most at once.
#[derive(Default)]
struct Load {
    open: Cell<usize>,
    peak: Cell<usize>,
}

/// Counts one connection while it lives.
struct Open(Rc<Load>);

impl Open {
    fn new(load: &Rc<Load>) -> Open {
        load.open.set(load.open.get() + 1);
        load.peak.set(load.peak.get().max(load.open.get()));
        Open(load.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
    }
}

/// Answers each `GET` on a kept-alive connection with its own path.
fn serve_pages(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        // ureq sends one request at a time and no body with a GET.
        let (len, reply) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) if req.method == Some("GET") => {
                    let path = req.path.unwrap_or("/");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                        path.len()
                    );
                    break (len, head + path);
                }
                Ok(httparse::Status::Complete(_)) => {
                    stream.write_all(
                        b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )?;
                    return Ok(());
                }
                Ok(httparse::Status::Partial) if buf.len() < 16 * 1024 => {}
                Ok(httparse::Status::Partial) | Err(_) => {
                    stream.write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )?;
                    return Ok(());
                }
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..len);
        stream.write_all(reply.as_bytes())?;
    }
}

/// Fetches `url`; checks the body against `expect` if given.
fn fetch(agent: &ureq::Agent, url: &str, expect: Option<&str>) -> Result<(), String> {
    let mut resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    let body = resp.body_mut().read_to_string().map_err(|e| format!("{url}: reading the body: {e}"))?;
    match expect {
        Some(want) if body != want => Err(format!("{url}: body {body:?}, expected {want:?}")),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    let args = match cli::parse("http_fetch", USAGE, parse_args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("http_fetch: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the fetches; `Ok(false)` if any failed.
fn run(args: Args) -> io::Result<bool> {
    // A client socket per fetch, and as many server sockets when serving.
    let want = 2 * args.count as u64 + 64;
    match fd_limit::raise_fd_limit(want) {
        Ok(limit) if limit < want => {
            eprintln!("http_fetch: note: only {limit} open files allowed; some fetches may fail")
        }
        Ok(_) => {}
        Err(e) => eprintln!("http_fetch: note: cannot raise the open-file limit: {e}"),
    }
    let load = Rc::new(Load::default());
    // What to fetch, with the body expected when this program serves it.
    let (server, targets): (_, Vec<(String, Option<String>)>) = match &args.url {
        Some(url) => (None, vec![(url.clone(), None); args.count]),
        None => {
            let load = load.clone();
            let server = StreamServer::bind("127.0.0.1:0", move |stream, _peer| {
                let _open = Open::new(&load);
                let _ = serve_pages(stream);
            })?;
            server.start()?;
            let base = format!("http://{}", server.local_addr()?);
            let targets =
                (0..args.count).map(|i| (format!("{base}/item/{i}"), Some(format!("/item/{i}")))).collect();
            (Some(server), targets)
        }
    };
    let config = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(30))).build();
    let agent = green_ureq::agent(config);

    let start = Instant::now();
    let fetches: Vec<_> = targets
        .into_iter()
        .map(|(url, expect)| {
            let agent = agent.clone();
            green::spawn(move || fetch(&agent, &url, expect.as_deref()))
        })
        .collect();
    let mut failed = 0;
    for result in green::joinall(fetches) {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed += 1;
                eprintln!("http_fetch: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("http_fetch: a fetch failed: {e}");
            }
        }
    }
    let took = start.elapsed();
    // Closes the connections ureq keeps alive, which ends their handlers.
    drop(agent);
    if let Some(server) = &server {
        server.stop(Duration::from_secs(1));
    }
    let what = args
        .url
        .as_deref()
        .map_or_else(|| "URLs from the server on this thread".to_owned(), |u| format!("x {u}"));
    print!(
        "fetched {} {what} in {:.2} s: {} ok, {failed} failed",
        args.count,
        took.as_secs_f64(),
        args.count - failed
    );
    if server.is_some() {
        print!("; the server had up to {} connections open at once", load.peak.get());
    }
    println!();
    io::stdout().flush()?;
    Ok(failed == 0)
}
