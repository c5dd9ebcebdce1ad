//! libev::green::server: StreamServer and DatagramServer over loopback.
//! Each test runs on its own thread, so each has its own hub.

use libev::green::net::{SocketAddr, TcpStream, UdpSocket};
use libev::green::server::{DatagramServer, StreamServer};
use libev::green::{self, PanicReport};
use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// Upper bound on every test; a test fails (never hangs) past it.
const LIMIT: Duration = Duration::from_secs(60);

fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    green::with_timeout(LIMIT, f).unwrap_or_else(|_| panic!("{what}: not done after {LIMIT:?}"))
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Connects and reads everything the server sends until it closes.
fn fetch(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Polls `cond` every millisecond until it holds (bounded by the test's
/// [`LIMIT`]).
fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        green::sleep(MS);
    }
}

#[test]
fn serves_each_connection_on_its_own_greenlet() {
    bounded("serve", || {
        let server = StreamServer::bind("127.0.0.1:0", |mut stream, peer| {
            let _ = write!(stream, "hello {}\r\n", peer.ip());
        })
        .unwrap();
        let addr = server.local_addr().unwrap();
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0);
        server.start().unwrap();
        assert!(server.start().is_err(), "a second start is refused");
        let clients: Vec<_> = (0..20).map(|_| green::spawn(move || fetch(addr))).collect();
        for c in green::joinall(clients) {
            assert_eq!(c.unwrap().unwrap(), "hello 127.0.0.1\r\n");
        }
        server.stop(Duration::from_secs(1));
        assert_eq!(server.connection_count(), 0);
        // The listener is closed once stopped.
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        assert!(server.serve_forever().is_err(), "a stopped server does not serve again");
    });
}

#[test]
fn serve_forever_returns_once_a_handler_stops_the_server() {
    bounded("serve_forever", || {
        let me: Rc<RefCell<Option<StreamServer>>> = Rc::default();
        let handle = me.clone();
        let served = Rc::new(Cell::new(0));
        let count = served.clone();
        let server = StreamServer::bind(local(), move |mut stream, _| {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            count.set(count.get() + 1);
            if line.trim() == "quit" {
                let server = handle.borrow().clone().unwrap();
                // From a handler: returns at once, waiting goes on elsewhere.
                server.stop(Duration::from_secs(5));
                let _ = stream.write_all(b"bye\n");
            } else {
                let _ = stream.write_all(line.as_bytes());
            }
        })
        .unwrap();
        *me.borrow_mut() = Some(server.clone());
        let addr = server.local_addr().unwrap();
        let client = green::spawn(move || -> io::Result<String> {
            let mut s = TcpStream::connect(addr)?;
            s.write_all(b"echo me\n")?;
            let mut echoed = String::new();
            BufReader::new(&s).read_line(&mut echoed)?;
            let mut q = TcpStream::connect(addr)?;
            q.write_all(b"quit\n")?;
            let mut bye = String::new();
            q.read_to_string(&mut bye)?;
            Ok(echoed + &bye)
        });
        server.serve_forever().unwrap();
        assert_eq!(client.join().unwrap().unwrap(), "echo me\nbye\n");
        assert_eq!(served.get(), 2);
        me.borrow_mut().take();
    });
}

#[test]
fn max_connections_caps_concurrent_handlers() {
    const CAP: usize = 3;
    const CLIENTS: usize = 12;
    bounded("max_connections", || {
        let running = Rc::new(Cell::new(0usize));
        let peak = Rc::new(Cell::new(0usize));
        let (r, p) = (running.clone(), peak.clone());
        let server = StreamServer::bind(local(), move |mut stream, _| {
            r.set(r.get() + 1);
            p.set(p.get().max(r.get()));
            // Hold the connection until the client hangs up.
            let _ = stream.write_all(b"go");
            let _ = stream.read_to_end(&mut Vec::new());
            r.set(r.get() - 1);
        })
        .unwrap()
        .max_connections(CAP);
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        // Every client connects before any is served; each hangs up after
        // its greeting and a pause, so handlers overlap.
        let seen = Rc::new(Cell::new(0usize));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (server, seen) = (server.clone(), seen.clone());
                green::spawn(move || -> io::Result<()> {
                    let mut s = TcpStream::connect(addr)?;
                    let mut go = [0u8; 2];
                    s.read_exact(&mut go)?;
                    seen.set(seen.get().max(server.connection_count()));
                    green::sleep(MS * 2);
                    Ok(())
                })
            })
            .collect();
        for c in green::joinall(clients) {
            c.unwrap().unwrap();
        }
        assert_eq!(seen.get(), CAP, "connection_count reached the cap and never passed it");
        assert_eq!(peak.get(), CAP, "the cap was reached and never passed");
        wait_until(|| running.get() == 0);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn stop_waits_for_handlers_then_kills_stragglers() {
    bounded("stop", || {
        /// Counts handlers that unwound (were killed) and that returned.
        struct Track(Rc<Cell<u32>>, Rc<Cell<u32>>, bool);
        impl Drop for Track {
            fn drop(&mut self) {
                if self.2 {
                    self.1.set(self.1.get() + 1);
                } else {
                    self.0.set(self.0.get() + 1);
                }
            }
        }
        let killed = Rc::new(Cell::new(0));
        let finished = Rc::new(Cell::new(0));
        let started = Rc::new(Cell::new(0));
        let (k, f, s) = (killed.clone(), finished.clone(), started.clone());
        let server = StreamServer::bind(local(), move |mut stream, _| {
            let mut track = Track(k.clone(), f.clone(), false);
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).unwrap();
            s.set(s.get() + 1);
            if first[0] == b'q' {
                // Quick: ends once its client sends one more byte.
                stream.read_exact(&mut first).unwrap();
            } else {
                // Slow: never ends by itself.
                let _ = stream.read_to_end(&mut Vec::new());
            }
            track.2 = true;
        })
        .unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let (mut quick, mut slow) = (Vec::new(), Vec::new());
        for i in 0..6 {
            let mut s = TcpStream::connect(addr).unwrap();
            if i % 2 == 0 {
                s.write_all(b"q").unwrap();
                quick.push(s);
            } else {
                s.write_all(b"s").unwrap();
                slow.push(s);
            }
        }
        wait_until(|| started.get() == 6);
        assert_eq!(server.connection_count(), 6);
        // Runs once `stop` waits: the quick handlers end in the grace period.
        let finisher = green::spawn(move || {
            for c in &quick {
                (&*c).write_all(b"x").unwrap();
            }
            quick
        });
        server.stop(Duration::from_secs(1));
        assert_eq!(server.connection_count(), 0);
        assert_eq!(finished.get(), 3, "quick handlers finished in the grace period");
        assert_eq!(killed.get(), 3, "slow handlers were killed");
        // Every handler's stream was dropped: the clients see EOF.
        for mut c in finisher.join().unwrap().into_iter().chain(slow) {
            assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 0);
        }
    });
}

#[test]
fn a_panicking_handler_ends_only_its_greenlet() {
    bounded("panic", || {
        let reports: Rc<RefCell<Vec<String>>> = Rc::default();
        let r = reports.clone();
        green::set_unjoined_panic_handler(move |p: &PanicReport<'_>| {
            r.borrow_mut().push(p.message.to_owned())
        });
        let server = StreamServer::bind(local(), |mut stream, _| {
            let mut b = [0u8; 1];
            stream.read_exact(&mut b).unwrap();
            if b[0] == b'!' {
                panic!("handler boom");
            }
            stream.write_all(b"fine").unwrap();
        })
        .unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.write_all(b"!").unwrap();
        assert_eq!(bad.read(&mut [0u8; 4]).unwrap(), 0, "the panicking handler's stream was dropped");
        let mut good = TcpStream::connect(addr).unwrap();
        good.write_all(b"?").unwrap();
        let mut reply = String::new();
        good.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "fine");
        assert_eq!(*reports.borrow(), ["handler boom"]);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn killing_serve_forever_stops_the_server() {
    bounded("kill serve_forever", || {
        let server = StreamServer::bind(local(), |mut s, _| {
            let _ = s.write_all(b"x");
        })
        .unwrap();
        let addr = server.local_addr().unwrap();
        let serving = {
            let server = server.clone();
            green::spawn(move || server.serve_forever())
        };
        assert_eq!(fetch(addr).unwrap(), "x");
        serving.kill();
        // The stop runs in a new greenlet; the listener closes soon.
        wait_until(|| TcpStream::connect(addr).is_err_and(|e| e.kind() == ErrorKind::ConnectionRefused));
    });
}

#[test]
fn datagram_server_answers_and_stops() {
    bounded("datagram", || {
        let me: Rc<RefCell<Option<DatagramServer>>> = Rc::default();
        let handle = me.clone();
        let server = DatagramServer::bind("127.0.0.1:0", move |data, peer, socket| {
            if data == b"stop" {
                // From the handler: the server stops once it returns.
                handle.borrow().as_ref().unwrap().stop(Duration::from_secs(1));
            }
            let _ = socket.send_to(&data.to_ascii_uppercase(), peer);
        })
        .unwrap();
        *me.borrow_mut() = Some(server.clone());
        let addr = server.local_addr().unwrap();
        let driver = green::spawn(move || -> io::Result<Vec<String>> {
            let clients: Vec<_> = (0..10)
                .map(|i| {
                    green::spawn(move || -> io::Result<String> {
                        let sock = UdpSocket::bind(local())?;
                        sock.connect(addr)?;
                        sock.send(format!("ping {i}").as_bytes())?;
                        let mut buf = [0u8; 64];
                        let n = sock.recv(&mut buf)?;
                        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
                    })
                })
                .collect();
            let mut answers: Vec<String> =
                green::joinall(clients).into_iter().map(|r| r.unwrap()).collect::<io::Result<_>>()?;
            let sock = UdpSocket::bind(local())?;
            sock.send_to(b"stop", addr)?;
            let mut buf = [0u8; 8];
            let (n, from) = sock.recv_from(&mut buf)?;
            assert_eq!(from, addr);
            answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            Ok(answers)
        });
        // Returns once the handler has stopped the server.
        server.serve_forever().unwrap();
        let mut expect: Vec<String> = (0..10).map(|i| format!("PING {i}")).collect();
        expect.push("STOP".into());
        assert_eq!(driver.join().unwrap().unwrap(), expect);
        me.borrow_mut().take();

        // Stopped from outside, while idle in its receive.
        let server = DatagramServer::bind(local(), |d, p, s| {
            let _ = s.send_to(d, p);
        })
        .unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let sock = UdpSocket::bind(local()).unwrap();
        sock.send_to(b"one", addr).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(sock.recv(&mut buf).unwrap(), 3);
        server.stop(Duration::from_secs(1));
        assert!(server.start().is_err());
        // The socket is closed: nothing answers any more.
        sock.set_read_timeout(Some(MS * 20)).unwrap();
        sock.send_to(b"two", addr).unwrap();
        assert!(sock.recv(&mut buf).is_err());
    });
}

/// The fd-exhaustion test's server process: this same test binary, run
/// with an environment variable. It prints its address, lowers its fd
/// limit to just above what it holds, and serves; each accept error is
/// printed as `accept error N` (the errno).
const EMFILE_CHILD: &str = "LIBEV_GREEN_SERVER_EMFILE_CHILD";

fn emfile_child() {
    let server = StreamServer::bind(local(), |mut stream, _| {
        let _ = stream.write_all(b"hi");
        // Hold the fd until the client hangs up.
        let _ = stream.read_to_end(&mut Vec::new());
    })
    .unwrap()
    .error_handler(|e| println!("accept error {}", e.raw_os_error().unwrap_or(-1)));
    server.start().unwrap();
    // Let the accept loop make its watcher before fds run out.
    green::yield_now();
    // New fds take the lowest free numbers below the limit: leave three.
    let open: std::collections::HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    let mut limit = 0;
    let mut free = 0;
    while free < 3 {
        if !open.contains(&limit) {
            free += 1;
        }
        limit += 1;
    }
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = limit;
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    println!("listening on {}", server.local_addr().unwrap());
    server.serve_forever().unwrap();
}

/// Out of fds (`EMFILE`), the server pauses and keeps serving. The fd
/// limit is per process, so the server runs in a child process (this test
/// binary again, see [`emfile_child`]); the clients are here.
#[test]
fn accept_backs_off_on_emfile_and_keeps_serving() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        return emfile_child();
    }
    if !cfg!(target_os = "linux") {
        eprintln!("skipped: the child finds its fds in /proc/self/fd");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "accept_backs_off_on_emfile_and_keeps_serving", "--nocapture", "--test-threads=1"])
        .env(EMFILE_CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let child = Kill(child);
    let mut line = String::new();
    let addr: std::net::SocketAddr = loop {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "the child exited before listening");
        // libtest's "test NAME ... " may start the line.
        if let Some(at) = line.find("listening on ") {
            break line[at + "listening on ".len()..].trim().parse().unwrap();
        }
    };
    // Far more connections than the child has fds for: the kernel queues
    // them, the child's accept fails with EMFILE until fds free up.
    const N: usize = 40;
    let clients: Vec<std::net::TcpStream> =
        (0..N).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    for (i, mut c) in clients.into_iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut hi = [0u8; 2];
        c.read_exact(&mut hi).unwrap_or_else(|e| panic!("client {i} was never served: {e}"));
        assert_eq!(&hi, b"hi");
        // Hanging up frees the child's fd for the next connection.
    }
    drop(child);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let emfile = format!("accept error {}", libc::EMFILE);
    assert!(rest.lines().any(|l| l == emfile), "the child never ran out of fds: {rest}");
}

#[test]
fn a_panicking_datagram_handler_is_reported_and_the_server_goes_on() {
    bounded("datagram panic", || {
        let seen: Rc<RefCell<Vec<String>>> = Rc::default();
        let s = seen.clone();
        green::set_unjoined_panic_handler(move |r| s.borrow_mut().push(r.message.to_owned()));
        let server = DatagramServer::bind(local(), |data, peer, socket| {
            if data == b"boom" {
                panic!("bad datagram");
            }
            let _ = socket.send_to(data, peer);
        })
        .unwrap();
        server.start().unwrap();
        let sock = UdpSocket::bind(local()).unwrap();
        sock.connect(server.local_addr().unwrap()).unwrap();
        sock.send(b"boom").unwrap();
        sock.send(b"after").unwrap();
        let mut buf = [0u8; 8];
        let n = sock.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        assert_eq!(*seen.borrow(), ["bad datagram"]);
        server.stop(Duration::from_secs(1));
    });
}

#[test]
fn a_datagram_stop_from_the_handler_completes_when_the_handler_returns() {
    bounded("datagram stop from handler", || {
        let me: Rc<RefCell<Option<DatagramServer>>> = Rc::default();
        let handle = me.clone();
        let returned = Rc::new(Cell::new(false));
        let r = returned.clone();
        let server = DatagramServer::bind(local(), move |_, _, _| {
            handle.borrow().as_ref().unwrap().stop(Duration::from_secs(1));
            // Still inside the handler: the stop has not completed.
            green::sleep(MS * 5);
            r.set(true);
        })
        .unwrap();
        *me.borrow_mut() = Some(server.clone());
        let addr = server.local_addr().unwrap();
        let sender = green::spawn(move || UdpSocket::bind(local()).unwrap().send_to(b"x", addr).unwrap());
        server.serve_forever().unwrap();
        assert!(returned.get(), "serve_forever returned before the handler did");
        sender.join().unwrap();
        me.borrow_mut().take();
    });
}

/// gevent's `test__server.py` `TestDefaultSpawn._test_server_start_stop`
/// with `restartable`: after `stop_accepting` a connection is not served
/// (it waits in the backlog), after `start_accepting` it is.
#[test]
fn stop_accepting_pauses_and_start_accepting_resumes() {
    bounded("pause", || {
        let served = Rc::new(Cell::new(0));
        let s = served.clone();
        let server = StreamServer::bind(local(), move |mut stream, _| {
            s.set(s.get() + 1);
            let _ = stream.write_all(b"hi");
        })
        .unwrap();
        server.start().unwrap();
        assert_eq!(fetch(server.local_addr().unwrap()).unwrap(), "hi");
        server.stop_accepting();
        assert!(!server.is_accepting());
        let mut waiting = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        green::sleep(20 * MS);
        assert_eq!(served.get(), 1, "not accepted while paused");
        server.start_accepting();
        assert!(server.is_accepting());
        let mut out = String::new();
        waiting.read_to_string(&mut out).unwrap();
        assert_eq!((out.as_str(), served.get()), ("hi", 2));
        server.stop(Duration::from_secs(1));
        assert!(!server.is_accepting());
    });
}

/// gevent's `spawn=None`: handlers run one at a time on the accept loop
/// (here they may block: the accept loop is a greenlet, not the hub, where
/// gevent's `test_assertion_in_blocking_func` shows they cannot). No
/// greenlet is spawned per connection, a panic is reported and the loop
/// goes on.
#[test]
fn inline_handlers_run_one_at_a_time_on_the_accept_loop() {
    bounded("inline", || {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        let server = StreamServer::bind(local(), move |mut stream, _| {
            let mut buf = [0u8; 1];
            stream.read_exact(&mut buf).unwrap();
            l.borrow_mut().push((buf[0], green::current().name));
            green::sleep(5 * MS);
            if buf[0] == b'p' {
                panic!("inline handler");
            }
            l.borrow_mut().push((buf[0], None));
            let _ = stream.write_all(&buf);
        })
        .unwrap()
        .handle_inline();
        let reports = Rc::new(Cell::new(0));
        let r = reports.clone();
        green::set_unjoined_panic_handler(move |_: &PanicReport<'_>| r.set(r.get() + 1));
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let clients: Vec<_> = [b'a', b'p', b'b']
            .into_iter()
            .map(|c| {
                green::spawn(move || {
                    let mut s = TcpStream::connect(addr).unwrap();
                    s.write_all(&[c]).unwrap();
                    let mut out = Vec::new();
                    let _ = s.read_to_end(&mut out);
                    out
                })
            })
            .collect();
        let outs: Vec<Vec<u8>> = clients.into_iter().map(|g| g.join().unwrap()).collect();
        assert_eq!(outs, [b"a".to_vec(), vec![], b"b".to_vec()]);
        let log = log.borrow();
        // Each handler ran to its end before the next began, all on the
        // accept loop's greenlet.
        let name = Some("StreamServer accept loop".to_owned());
        assert_eq!(
            *log,
            [(b'a', name.clone()), (b'a', None), (b'p', name.clone()), (b'b', name), (b'b', None)]
        );
        assert_eq!(reports.get(), 1, "the panic was reported");
        server.stop(Duration::from_secs(1));
    });
}

/// `stop` gives a running inline handler its timeout, then kills it; from
/// inside the handler, `stop` returns and the handler may finish.
#[test]
fn stop_of_an_inline_server_waits_for_then_kills_its_handler() {
    bounded("inline stop", || {
        let server = StreamServer::bind(local(), |_, _| green::sleep(Duration::from_secs(60)))
            .unwrap()
            .handle_inline();
        server.start().unwrap();
        let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        wait_until(|| server.connection_count() == 1);
        let forever = server.clone();
        let waiter = green::spawn(move || forever.serve_forever());
        green::yield_now();
        server.stop(10 * MS);
        assert_eq!(server.connection_count(), 0, "killed at the timeout");
        waiter.join().unwrap().unwrap();

        let server = Rc::new(RefCell::new(None::<StreamServer>));
        let s = server.clone();
        let finished = Rc::new(Cell::new(false));
        let f = finished.clone();
        let srv = StreamServer::bind(local(), move |_, _| {
            let me = s.borrow().clone().unwrap();
            me.stop(Duration::from_secs(5));
            green::sleep(2 * MS);
            f.set(true);
        })
        .unwrap()
        .handle_inline();
        *server.borrow_mut() = Some(srv.clone());
        let forever = srv.clone();
        let waiter = green::spawn(move || forever.serve_forever());
        green::yield_now();
        let _client = TcpStream::connect(srv.local_addr().unwrap()).unwrap();
        waiter.join().unwrap().unwrap();
        assert!(finished.get(), "the handler that stopped the server finished first");
        server.borrow_mut().take();
    });
}

/// A `stop` whose caller is interrupted (here its timeout expires while
/// it gives a handler time) still completes: the handler is killed, the
/// server ends stopped and `serve_forever` returns.
#[test]
fn an_interrupted_stop_still_completes() {
    bounded("interrupted stop", || {
        for inline in [false, true] {
            let server = StreamServer::bind(local(), |_, _| green::sleep(Duration::from_secs(60))).unwrap();
            let server = if inline { server.handle_inline() } else { server };
            let forever = server.clone();
            let waiter = green::spawn(move || forever.serve_forever());
            green::yield_now();
            let _client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
            wait_until(|| server.connection_count() == 1);
            let s = server.clone();
            assert!(green::with_timeout(5 * MS, move || s.stop(Duration::from_secs(60))).is_err());
            waiter.join().unwrap().unwrap();
            assert_eq!(server.connection_count(), 0, "inline {inline}");
            server.stop(Duration::ZERO); // stopped: nothing to do
        }
        let server = DatagramServer::bind(local(), |_, _, _| green::sleep(Duration::from_secs(60))).unwrap();
        let forever = server.clone();
        let waiter = green::spawn(move || forever.serve_forever());
        green::yield_now();
        let client = UdpSocket::bind(local()).unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        green::sleep(5 * MS);
        let s = server.clone();
        assert!(green::with_timeout(5 * MS, move || s.stop(Duration::from_secs(60))).is_err());
        waiter.join().unwrap().unwrap();
    });
}
