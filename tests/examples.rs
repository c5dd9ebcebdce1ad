//! The examples, run as a user would: start the binary, talk to it over
//! loopback, stop it.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;
use util::{Server, example, start_example, start_server};

fn fetch(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn hello_server_loop_greets_and_closes() {
    let (_server, addr) = start_example("hello_server_loop", &[]);
    for _ in 0..20 {
        assert_eq!(fetch(&addr), "hello world\r\n");
    }
    // Many clients at once.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || (0..25).all(|_| fetch(&addr) == "hello world\r\n"))
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

/// Many clients at once, each fetching `rounds` times.
fn fetch_concurrently(addr: &str, clients: usize, rounds: usize) -> Vec<String> {
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || (0..rounds).map(|_| fetch(&addr)).collect::<Vec<_>>())
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

#[test]
fn hello_server_greets_and_closes() {
    let (_server, addr) = start_example("hello_server", &[]);
    for reply in fetch_concurrently(&addr, 8, 25) {
        assert_eq!(reply, "hello world\r\n");
    }
}

#[test]
fn echo_server_echoes_until_the_peer_closes() {
    let (_server, addr) = start_example("echo_server", &[]);
    echo_clients(&addr, 50, |mut s| {
        // A large message comes back whole, through partial writes.
        let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let mut s = s.try_clone().unwrap();
            let big = big.clone();
            std::thread::spawn(move || {
                s.write_all(&big).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
            })
        };
        let mut back = Vec::new();
        s.read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == big, "the echo differs");
    });
}

/// Eight client threads, each making `rounds` line round trips on its own
/// connection to the echo server at `addr`, then passing it to `then`.
fn echo_clients(addr: &str, rounds: usize, then: fn(TcpStream)) {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                for round in 0..rounds {
                    let msg = format!("client {i} round {round}\n");
                    s.write_all(msg.as_bytes()).unwrap();
                    let mut back = vec![0; msg.len()];
                    s.read_exact(&mut back).unwrap();
                    assert_eq!(back, msg.as_bytes());
                }
                then(s);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Reads from `s` until `want` complete `Hello, world!` responses arrived.
fn read_responses(s: &mut TcpStream, want: usize) -> String {
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while got.matches("Hello, world!").count() < want {
        let n = s.read(&mut buf).unwrap();
        assert_ne!(n, 0, "closed early after: {got:?}");
        got.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    got
}

#[test]
fn http_hello_keeps_connections_alive() {
    let (_server, addr) = start_example("http_hello", &[]);
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Several requests on one connection, one at a time.
    for _ in 0..10 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let reply = read_responses(&mut s, 1);
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
        assert!(reply.contains("Content-Length: 13\r\n"), "{reply:?}");
        assert!(reply.ends_with("\r\n\r\nHello, world!"), "{reply:?}");
    }
    // Pipelined, a request split across writes, one with a body.
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\nPOST /c HTTP/1.1\r\nHo",
    )
    .unwrap();
    s.write_all(b"st: t\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    let reply = read_responses(&mut s, 3);
    assert_eq!(reply.matches("HTTP/1.1 200 OK").count(), 3, "{reply:?}");
    // `Connection: close` is honoured.
    s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("Connection: close\r\n") && rest.ends_with("Hello, world!"), "{rest:?}");
    // A malformed request gets a 400 and the connection is closed.
    let mut bad = TcpStream::connect(&addr).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(b"NOT HTTP\0\r\n\r\n").unwrap();
    let mut reply = String::new();
    bad.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply:?}");
}

#[test]
fn ws_echo_runs_tungstenite_on_green_sockets() {
    use tungstenite::Message;
    let (_server, addr) = start_example("ws_echo", &[]);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let stream = TcpStream::connect(&addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let (mut ws, _response) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
                for round in 0..20 {
                    let text = format!("client {i} round {round}");
                    ws.send(Message::text(text.clone())).unwrap();
                    assert_eq!(ws.read().unwrap(), Message::text(text));
                }
                let blob = vec![i as u8; 100_000];
                ws.send(Message::binary(blob.clone())).unwrap();
                assert_eq!(ws.read().unwrap(), Message::binary(blob));
                ws.close(None).unwrap();
                // Read until the server's close reply ends the session.
                loop {
                    match ws.read() {
                        Ok(_) => {}
                        Err(tungstenite::Error::ConnectionClosed) => break,
                        Err(e) => panic!("closing: {e}"),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// A client that sends a request and reads the reply only after the
/// server has had time to close: a server that closes with the request
/// unread makes the kernel send a reset, which destroys the reply (issue
/// 17.14: "Connection reset by peer" after, or instead of, the greeting).
fn fetch_after_sending(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nUser-Agent: curl\r\nAccept: */*\r\n\r\n")?;
    std::thread::sleep(Duration::from_millis(50));
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn hello_servers_deliver_their_greeting_to_clients_that_send_a_request() {
    for name in ["hello_server", "hello_server_loop"] {
        let (_server, addr) = start_example(name, &[]);
        for _ in 0..5 {
            assert_eq!(fetch_after_sending(&addr).unwrap(), "hello world\r\n", "{name}");
        }
        // Requests that arrive before the server accepts (it is busy with
        // the others): closing with them unread would reset each at once.
        let clients: Vec<TcpStream> = (0..50)
            .map(|_| {
                let mut s = TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        for (i, mut s) in clients.into_iter().enumerate() {
            let mut out = String::new();
            let r = s.read_to_string(&mut out);
            assert!(r.is_ok() && out == "hello world\r\n", "{name}, client {i}: {r:?} after {out:?}");
        }
        // A client that never stops sending is cut off after a bounded
        // drain, without a hang.
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let chunk = [b'x'; 16 * 1024];
        let t0 = std::time::Instant::now();
        while s.write_all(&chunk).is_ok() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{name} kept reading");
        }
        // The README's check, where curl is installed.
        match Command::new("curl")
            .args(["--http0.9", "-s", "--max-time", "10", &format!("http://{addr}/")])
            .output()
        {
            Ok(out) => {
                assert!(out.status.success(), "{name}: curl failed: {out:?}");
                assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\r\n", "{name}");
            }
            Err(e) => eprintln!("note: curl not available ({e}); README check skipped"),
        }
    }
}

/// Out of descriptors, the raw-watcher server must back off instead of
/// spinning on a listener that stays readable (issue 17.13: 80% CPU and
/// half a million "Too many open files" lines in 3 s), and serve again
/// once descriptors free up.
#[test]
fn hello_server_loop_backs_off_when_out_of_descriptors() {
    let (mut server, addr) = start_server(
        Command::new("sh")
            .args(["-c", "ulimit -n 24 && exec \"$0\" 127.0.0.1:0"])
            .arg(example("hello_server_loop"))
            .stderr(Stdio::piped()),
    );
    let stderr = server.0.stderr.take().unwrap();
    let errors = std::thread::spawn(move || BufReader::new(stderr).lines().count());
    // Clients that hold their connections open (each costs the server a
    // descriptor for its one-second drain) exhaust the server's 24.
    let clients: Vec<TcpStream> = (0..60).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = server.0.id();
    let cpu = cpu_seconds(pid);
    drop(clients);
    // Served again once the drains end.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(fetch_after_sending(&addr).unwrap(), "hello world\r\n");
    drop(server);
    let lines = errors.join().unwrap();
    assert!(lines > 0, "the server never ran out of descriptors");
    assert!(lines < 100, "{lines} accept errors reported: no back-off");
    assert!(cpu < 0.5, "the server used {cpu} s of CPU while out of descriptors");
}

/// User plus system CPU time of process `pid`, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), after the name.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

#[test]
fn green_inotify_sees_every_change_and_exits() {
    let out = Command::new(example("green_inotify")).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for f in ["file0.txt", "file1.txt"] {
        for what in ["created", "written", "deleted"] {
            assert!(text.contains(&format!("{f}: {what}")), "{f} {what} in:\n{text}");
        }
    }
    assert!(text.ends_with("saw 6 events\n"), "{text}");
}

/// Sends `signum` to the server and waits (at most 10 s) for it to exit.
fn signal_and_wait(server: &mut Server, signum: i32) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.0.id() as i32, signum) }, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "the server did not exit after signal {signum}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_server_stops_gracefully_on_sigterm_letting_a_connection_finish() {
    stops_gracefully_letting_a_connection_finish(&[]);
}

#[test]
fn echo_server_on_two_threads_stops_gracefully_on_sigterm_letting_a_connection_finish() {
    stops_gracefully_letting_a_connection_finish(&["--threads", "2"]);
}

#[test]
fn echo_server_on_two_processes_stops_gracefully_on_sigterm_letting_a_connection_finish() {
    stops_gracefully_letting_a_connection_finish(&["--processes", "2"]);
}

fn stops_gracefully_letting_a_connection_finish(args: &[&str]) {
    let (mut server, addr) = start_example("echo_server", args);
    let mut conn = TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    conn.write_all(b"before").unwrap();
    let mut buf = [0u8; 6];
    conn.read_exact(&mut buf).unwrap();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(100));
    // No new connections...
    assert!(TcpStream::connect(&addr).is_err(), "the listener is closed");
    assert!(server.0.try_wait().unwrap().is_none(), "still serving the connection in flight");
    // ...but the one in flight still works, until it closes.
    conn.write_all(b"after!").unwrap();
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"after!");
    drop(conn);
    let status = signal_and_wait(&mut server, 0);
    assert!(status.success(), "{status:?}");
}

#[test]
fn hello_server_exits_0_on_sigint() {
    for args in
        [&[][..], &["--threads", "2"], &["--threads=all"], &["--processes", "2"], &["--processes=all"]]
    {
        let (mut server, addr) = start_example("hello_server", args);
        assert_eq!(fetch(&addr), "hello world\r\n", "{args:?}");
        let status = signal_and_wait(&mut server, libc::SIGINT);
        assert!(status.success(), "{args:?}: {status:?}");
    }
}

#[test]
fn hello_and_echo_servers_serve_on_two_threads() {
    let (_hello, addr) = start_example("hello_server", &["--threads", "2"]);
    for reply in fetch_concurrently(&addr, 8, 25) {
        assert_eq!(reply, "hello world\r\n");
    }
    let (_echo, addr) = start_example("echo_server", &["--threads", "2"]);
    echo_clients(&addr, 20, drop);
}

#[test]
fn hello_and_echo_servers_serve_on_two_processes() {
    let (_hello, addr) = start_example("hello_server", &["--processes", "2"]);
    for reply in fetch_concurrently(&addr, 8, 25) {
        assert_eq!(reply, "hello world\r\n");
    }
    let (_echo, addr) = start_example("echo_server", &["--processes", "2"]);
    echo_clients(&addr, 20, drop);
}

#[test]
fn a_bad_threads_option_is_refused() {
    for name in ["hello_server", "echo_server"] {
        for bad in [&["--threads", "0"][..], &["--threads", "many"], &["--threads"], &["--thread", "2"]] {
            let out = Command::new(example(name)).arg("127.0.0.1:0").args(bad).output().unwrap();
            assert!(!out.status.success(), "{name} {bad:?}");
            assert!(out.stdout.is_empty(), "{name} {bad:?} did not listen");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("thread"), "{name} {bad:?}: {err}");
        }
    }
}

#[test]
fn echo_server_ends_connections_still_open_after_its_grace_period() {
    let (mut server, addr) = start_example("echo_server", &[]);
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.write_all(b"x").unwrap();
    let mut buf = [0u8; 1];
    idle.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    idle.read_exact(&mut buf).unwrap();
    let t0 = std::time::Instant::now();
    let status = signal_and_wait(&mut server, libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(4), "waited for the connection ({took:?})");
    // The server ended the connection it gave up on.
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
}
