//! An HTTP client on green sockets: `ureq`, a blocking client, with the
//! connector of `examples/support/green_ureq.rs`, fetching from green
//! servers on the same thread; and the `http_fetch` example run as a user
//! would.

#[path = "../examples/support/fd_limit.rs"]
mod fd_limit;
#[path = "../examples/support/green_ureq.rs"]
mod green_ureq;
mod util;

use libev::green;
use libev::green::net::TcpStream;
use libev::green::server::StreamServer;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::{run_example, start_example, ticker};

/// What a test server saw.
#[derive(Default)]
struct Load {
    accepted: Cell<usize>,
    open: Cell<usize>,
    peak: Cell<usize>,
}

/// How a test server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Each `GET` with its path, closing after this many on a connection.
    Echo { per_connection: usize },
    /// Never: it reads until the client goes.
    Silent,
}

/// Reads one request head from `stream` into `buf`; returns its path, or
/// `None` at the end of the connection.
fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<String>> {
    let mut chunk = [0u8; 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(len) =
            req.parse(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        {
            let path = req.path.unwrap_or("/").to_owned();
            buf.drain(..len);
            return Ok(Some(path));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A green HTTP server on this thread's hub.
fn site(mode: Mode) -> (StreamServer, Rc<Load>) {
    let load = Rc::new(Load::default());
    let server = {
        let load = load.clone();
        StreamServer::bind("127.0.0.1:0", move |mut stream, _peer| {
            load.accepted.set(load.accepted.get() + 1);
            load.open.set(load.open.get() + 1);
            load.peak.set(load.peak.get().max(load.open.get()));
            let mut buf = Vec::new();
            match mode {
                Mode::Echo { per_connection } => {
                    for _ in 0..per_connection {
                        let Ok(Some(path)) = read_request(&mut stream, &mut buf) else { break };
                        let reply =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}", path.len());
                        if stream.write_all(reply.as_bytes()).is_err() {
                            break;
                        }
                    }
                }
                Mode::Silent => while let Ok(1..) = stream.read(&mut [0u8; 1024]) {},
            }
            load.open.set(load.open.get() - 1);
        })
        .unwrap()
    };
    server.start().unwrap();
    (server, load)
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    green_ureq::agent(ureq::Agent::config_builder().timeout_global(timeout).build())
}

#[test]
fn ureq_on_green_sockets_fetches_a_thousand_urls_at_once_on_one_thread() {
    // A client and a server socket per fetch.
    let limit = fd_limit::raise_fd_limit(2100).unwrap();
    assert!(limit >= 2100, "this test needs 2,100 open files; the hard limit allows {limit}");
    let (server, load) = site(Mode::Echo { per_connection: usize::MAX });
    let base = format!("http://{}", server.local_addr().unwrap());
    let agent = agent(Some(Duration::from_secs(30)));
    let fetches: Vec<_> = (0..1000)
        .map(|i| {
            let (agent, url) = (agent.clone(), format!("{base}/item/{i}"));
            green::spawn(move || -> Result<String, ureq::Error> {
                let mut resp = agent.get(&url).call()?;
                assert_eq!(resp.status(), 200);
                resp.body_mut().read_to_string()
            })
        })
        .collect();
    for (i, body) in green::joinall(fetches).into_iter().enumerate() {
        let body = body.unwrap().unwrap_or_else(|e| panic!("fetch {i}: {e}"));
        assert_eq!(body, format!("/item/{i}"));
    }
    assert_eq!(load.accepted.get(), 1000, "each fetch had a connection of its own");
    // They ran at once, not one after another (the real peak is near 1,000).
    assert!(load.peak.get() >= 100, "at most {} connections open at once", load.peak.get());
    drop(agent);
    server.stop(Duration::from_secs(5));
}

#[test]
fn kept_alive_connections_are_reused_until_the_server_closes_them() {
    let (server, load) = site(Mode::Echo { per_connection: 5 });
    let base = format!("http://{}", server.local_addr().unwrap());
    let agent = agent(Some(Duration::from_secs(10)));
    for i in 0..20 {
        let body = agent.get(&format!("{base}/{i}")).call().unwrap().body_mut().read_to_string().unwrap();
        assert_eq!(body, format!("/{i}"));
    }
    // The transport told ureq that a closed connection was closed.
    assert_eq!(load.accepted.get(), 4, "5 requests on each connection");
    drop(agent);
    server.stop(Duration::from_secs(5));
}

/// ureq's timeouts hold on green sockets, and a fetch waiting for its
/// reply parks only its greenlet: another one keeps ticking.
#[test]
fn a_fetch_from_a_silent_server_times_out_while_other_greenlets_run() {
    let (server, _load) = site(Mode::Silent);
    let url = format!("http://{}/", server.local_addr().unwrap());
    let (ticker, ticks) = ticker();
    let start = Instant::now();
    let err = agent(Some(Duration::from_millis(300))).get(&url).call().unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, ureq::Error::Timeout(_)), "{err:?}");
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(5), "took {took:?}");
    assert!(ticks.get() >= 10, "the hub ran other greenlets meanwhile ({} ticks)", ticks.get());
    ticker.join().unwrap();
    server.stop(Duration::from_secs(5));
}

/// `Agent::shutdown` shuts the sockets of requests in flight down, which
/// wakes a greenlet parked on one.
#[test]
fn agent_shutdown_ends_a_fetch_parked_on_a_green_socket() {
    let (server, _load) = site(Mode::Silent);
    let url = format!("http://{}/", server.local_addr().unwrap());
    let agent = agent(None);
    let fetch = {
        let agent = agent.clone();
        green::spawn(move || agent.get(&url).call().map(drop))
    };
    green::sleep(Duration::from_millis(50));
    assert!(!fetch.is_finished(), "the fetch waits for the silent server");
    let start = Instant::now();
    agent.shutdown();
    assert!(fetch.join().unwrap().is_err());
    assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
    server.stop(Duration::from_secs(5));
}

#[test]
fn names_resolve_on_the_blocking_pool_and_refusals_are_reported() {
    let (server, _load) = site(Mode::Echo { per_connection: 1 });
    let port = server.local_addr().unwrap().port();
    let agent = agent(Some(Duration::from_secs(10)));
    // `localhost` may resolve to ::1 first, where nothing listens: the
    // connector goes on to 127.0.0.1.
    let body = agent
        .get(&format!("http://localhost:{port}/named"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(body, "/named");
    server.stop(Duration::from_secs(5));
    match agent.get(&format!("http://127.0.0.1:{port}/")).call() {
        Err(ureq::Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        other => panic!("{other:?}"),
    }
}

// --- The example, run as a user would. ---

#[test]
fn http_fetch_fetches_its_own_pages_or_a_given_url() {
    let out = run_example("http_fetch", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("fetched 1000 URLs from the server on this thread in "), "{text}");
    assert!(text.contains(": 1000 ok, 0 failed; the server had up to "), "{text}");
    let peak: usize =
        text.split("up to ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(peak >= 100, "{text}");

    // Another program's server: the http_hello example.
    let (_hello, addr) = start_example("http_hello", &[]);
    let out = run_example("http_fetch", &["--count", "200", &format!("http://{addr}/")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 200 ok, 0 failed"), "{out:?}");
    // Failures are counted and reported, and set the exit status.
    let out = run_example("http_fetch", &["--count", "3", "http://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 0 ok, 3 failed"), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Connection refused"), "{out:?}");

    let out = run_example("http_fetch", &["--help"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).starts_with("usage: http_fetch "),
        "{out:?}"
    );
    let out = run_example("http_fetch", &["--count", "many"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
