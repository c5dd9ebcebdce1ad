//! libev::green::net: green sockets over real loopback connections.
//! Each test runs on its own thread, so each has its own hub; the test's
//! own stack is the root greenlet.

use libev::green::net::{
    Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream,
};
use libev::green::sync::Event;
use libev::green::{self, GreenletError};
use std::cell::Cell;
use std::io::{self, ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// Upper bound on every test; a test fails (never hangs) past it.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `f` on the root greenlet, failing the test if it is still blocked
/// after [`LIMIT`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    green::with_timeout(LIMIT, f).unwrap_or_else(|_| panic!("{what}: not done after {LIMIT:?}"))
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A connected TCP pair over loopback: (client, server side).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(local()).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, peer) = listener.accept().unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

/// Set (to the test's name) in a child process running one test.
const CHILD: &str = "LIBEV_GREEN_NET_CHILD";

/// Runs the test `name` in a child process (this test binary again) and
/// checks that it passed; returns false in that child, which then runs the
/// test's body. Name resolution runs this way, for valgrind's sake (it
/// checks the parent, not the child): glibc keeps per-thread resolver
/// state that valgrind's leak check reports as lost when the resolving
/// thread (a blocking-pool thread) is still alive at exit, a false
/// positive.
fn run_in_child(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some_and(|v| v == name) {
        return false;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env(CHILD, name)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed in its child process: {text}");
    assert!(text.contains("1 passed"), "the child process ran no test: {text}");
    true
}

/// Raises the soft fd limit to at least `want`; false if the hard limit
/// is lower.
fn raise_fd_limit(want: u64) -> bool {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur >= want {
        return true;
    }
    if lim.rlim_max < want {
        return false;
    }
    lim.rlim_cur = want;
    // SAFETY: setrlimit reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

/// Makes closing `s` send a reset (SO_LINGER with a zero timeout).
fn set_linger_zero(s: &impl AsRawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: passes a live linger struct and its exact size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "{}", io::Error::last_os_error());
}

/// Writes to `s` without waiting until its send buffer (and the peer's
/// receive buffer) is full; returns how much it wrote.
fn fill_send_buffer(s: &TcpStream) -> usize {
    s.set_nonblocking(true).unwrap();
    let chunk = [0x55u8; 64 * 1024];
    let mut total = 0;
    loop {
        match (&*s).write(&chunk) {
            Ok(n) => total += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the send buffer: {e}"),
        }
    }
    s.set_nonblocking(false).unwrap();
    total
}

/// Echoes until the peer closes.
fn echo(stream: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = (&*stream).read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        (&*stream).write_all(&buf[..n])?;
    }
}

/// Hundreds of greenlet stacks at once, which valgrind follows because
/// they are registered with it (libev/src/green/valgrind.rs).
#[test]
fn echo_between_greenlets_with_1000_concurrent_connections() {
    const N: usize = 1000;
    // Two fds per connection, plus whatever the test harness holds.
    if !raise_fd_limit(2 * N as u64 + 256) {
        eprintln!("skipped: RLIMIT_NOFILE's hard limit is below {} fds", 2 * N + 256);
        return;
    }
    bounded("1000 echo connections", || {
        let listener = TcpListener::bind(local()).unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Rc::new(Cell::new(0usize));
        let peak = Rc::new(Cell::new(0usize));
        let server = {
            let (open, peak) = (open.clone(), peak.clone());
            green::spawn(move || {
                let mut handlers = Vec::with_capacity(N);
                for _ in 0..N {
                    let (stream, _) = listener.accept().unwrap();
                    let (open, peak) = (open.clone(), peak.clone());
                    handlers.push(green::spawn(move || {
                        open.set(open.get() + 1);
                        peak.set(peak.get().max(open.get()));
                        let r = echo(&stream);
                        open.set(open.get() - 1);
                        r
                    }));
                }
                for r in green::joinall(handlers) {
                    r.unwrap().unwrap();
                }
            })
        };
        // Every client keeps its connection open until all have done one
        // round trip, so all 1000 are open at once.
        let all_connected = Event::new();
        let connected = Rc::new(Cell::new(0usize));
        let clients: Vec<_> = (0..N)
            .map(|i| {
                let (all, connected) = (all_connected.clone(), connected.clone());
                green::spawn(move || -> io::Result<()> {
                    let mut s = TcpStream::connect(addr)?;
                    for round in 0..2 {
                        if round == 1 {
                            connected.set(connected.get() + 1);
                            if connected.get() == N {
                                all.set();
                            }
                            all.wait();
                        }
                        let msg = format!("client {i} round {round}");
                        s.write_all(msg.as_bytes())?;
                        let mut back = vec![0; msg.len()];
                        s.read_exact(&mut back)?;
                        assert_eq!(back, msg.as_bytes());
                    }
                    Ok(())
                })
            })
            .collect();
        for c in green::joinall(clients) {
            c.unwrap().unwrap();
        }
        server.join().unwrap();
        assert_eq!(peak.get(), N, "all connections were open at once");
        assert_eq!(open.get(), 0);
    });
}

#[test]
fn large_payload_through_a_slow_reader_with_partial_writes() {
    const SIZE: usize = 16 << 20;
    fn pattern(i: usize) -> u8 {
        (i % 251) as u8
    }
    bounded("16 MiB transfer", || {
        let (client, server) = tcp_pair();
        let writer = green::spawn(move || -> io::Result<usize> {
            let mut client = client;
            let data: Vec<u8> = (0..SIZE).map(pattern).collect();
            // One write takes what the socket buffer holds, not all.
            let first = client.write(&data)?;
            client.write_all(&data[first..])?;
            Ok(first)
        });
        let reader = green::spawn(move || -> io::Result<usize> {
            let mut server = server;
            let mut chunk = [0u8; 1000];
            let mut offset = 0;
            let mut reads = 0u32;
            loop {
                let n = server.read(&mut chunk)?;
                if n == 0 {
                    return Ok(offset);
                }
                for (k, &b) in chunk[..n].iter().enumerate() {
                    assert_eq!(b, pattern(offset + k), "byte {}", offset + k);
                }
                offset += n;
                reads += 1;
                // Slow: let everyone else run after every small read, and
                // sleep now and then.
                green::yield_now();
                if reads.is_multiple_of(1024) {
                    green::sleep(MS);
                }
            }
        });
        let first = writer.join().unwrap().unwrap();
        assert!(first > 0 && first < SIZE, "the first write was partial: {first} of {SIZE}");
        assert_eq!(reader.join().unwrap().unwrap(), SIZE);
    });
}

#[test]
fn vectored_reads_and_writes() {
    bounded("vectored io", || {
        let (mut client, mut server) = tcp_pair();
        let n = client.write_vectored(&[IoSlice::new(b"hello "), IoSlice::new(b"world")]).unwrap();
        assert_eq!(n, 11);
        let (mut a, mut b) = ([0u8; 6], [0u8; 5]);
        let mut got = 0;
        while got < 11 {
            let mut bufs =
                [IoSliceMut::new(&mut a[got.min(6)..]), IoSliceMut::new(&mut b[got.saturating_sub(6)..])];
            got += server.read_vectored(&mut bufs).unwrap();
        }
        assert_eq!((&a, &b), (b"hello ", b"world"));
    });
}

#[test]
fn peer_reset_gives_connection_reset() {
    bounded("reset", || {
        let (client, server) = tcp_pair();
        let reader = green::spawn(move || {
            let mut buf = [0u8; 16];
            (&server).read(&mut buf)
        });
        green::yield_now(); // the reader parks
        set_linger_zero(&client);
        drop(client);
        let err = reader.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn half_close_gives_eof_and_the_peer_can_still_answer() {
    bounded("half close", || {
        let (mut client, server) = tcp_pair();
        let answer = green::spawn(move || -> io::Result<Vec<u8>> {
            let mut server = server;
            let mut request = Vec::new();
            server.read_to_end(&mut request)?; // ends at the client's FIN
            server.write_all(b"answer to ")?;
            server.write_all(&request)?;
            Ok(request)
        });
        client.write_all(b"question").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "answer to question");
        assert_eq!(answer.join().unwrap().unwrap(), b"question");
    });
}

#[test]
fn read_timeout_gives_timed_out_and_the_stream_stays_usable() {
    bounded("read timeout", || {
        let (mut client, mut server) = tcp_pair();
        assert_eq!(server.read_timeout().unwrap(), None);
        server.set_read_timeout(Some(MS * 5)).unwrap();
        assert_eq!(server.read_timeout().unwrap(), Some(MS * 5));
        let mut buf = [0u8; 8];
        assert_eq!(server.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        assert_eq!(server.peek(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        // Zero is refused, as std does.
        assert_eq!(
            server.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        client.write_all(b"late").unwrap();
        server.read_exact(&mut buf[..4]).unwrap();
        assert_eq!(&buf[..4], b"late");
        server.set_read_timeout(None).unwrap();
        assert_eq!(server.read_timeout().unwrap(), None);
    });
}

#[test]
fn write_timeout_gives_timed_out_when_the_peer_does_not_read() {
    bounded("write timeout", || {
        let (_client, server) = tcp_pair();
        fill_send_buffer(&server);
        server.set_write_timeout(Some(MS * 5)).unwrap();
        assert_eq!(server.write_timeout().unwrap(), Some(MS * 5));
        let err = (&server).write_all(&[1u8; 1 << 20]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

/// A connect that cannot complete: the listener's accept queue is full
/// (backlog 0, nobody accepts), so the kernel drops the SYN and the
/// client waits. A non-routable address would do too, but this sandbox
/// must send nothing beyond loopback, and some networks answer such an
/// address at once with "unreachable"; a full backlog on loopback is
/// local and deterministic.
#[test]
fn connect_timeout_to_a_full_backlog_gives_timed_out() {
    bounded("connect timeout", || {
        let listener = std::net::TcpListener::bind(local()).unwrap();
        // SAFETY: listen on a socket we own, integer arguments.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        let mut full = false;
        for _ in 0..64 {
            match std::net::TcpStream::connect_timeout(&addr, MS * 200) {
                Ok(s) => queued.push(s),
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    full = true;
                    break;
                }
                Err(e) => panic!("filling the backlog: {e}"),
            }
        }
        if !full {
            eprintln!("skipped: the kernel accepted 64 connections on a backlog of 0");
            return;
        }
        let err = TcpStream::connect_timeout(&addr, MS * 20).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // The same wait interrupted by with_timeout instead.
        let r = green::with_timeout(MS * 20, || TcpStream::connect(addr));
        assert!(r.is_err(), "connect to a full backlog finished: {r:?}");
        drop(queued);
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    bounded("refused", || {
        let addr = {
            let l = TcpListener::bind(local()).unwrap();
            l.local_addr().unwrap()
        };
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
        let none: &[SocketAddr] = &[];
        assert_eq!(TcpStream::connect(none).unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn with_timeout_and_kill_interrupt_blocked_reads_and_accepts() {
    bounded("interrupts", || {
        let listener = TcpListener::bind(local()).unwrap();
        let addr = listener.local_addr().unwrap();

        // A blocked accept, interrupted; the listener keeps working.
        assert!(green::with_timeout(MS * 5, || listener.accept()).is_err());
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();

        // A blocked read, interrupted by with_timeout.
        let mut buf = [0u8; 8];
        assert!(green::with_timeout(MS * 5, || (&server).read(&mut buf)).is_err());
        (&client).write_all(b"one").unwrap();
        assert_eq!((&server).read(&mut buf).unwrap(), 3);

        // A blocked read in another greenlet, killed; the stream keeps
        // working and its read direction is free again.
        let server = Rc::new(server);
        let victim = {
            let server = server.clone();
            green::spawn(move || {
                let mut buf = [0u8; 8];
                (&*server).read(&mut buf)
            })
        };
        green::yield_now();
        victim.kill();
        assert!(matches!(victim.join(), Err(GreenletError::Killed)));
        (&client).write_all(b"two").unwrap();
        assert_eq!((&*server).read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"two");

        // A killed accept.
        let listener = Rc::new(listener);
        let acceptor = {
            let listener = listener.clone();
            green::spawn(move || listener.accept().map(drop))
        };
        green::yield_now();
        acceptor.kill();
        assert!(matches!(acceptor.join(), Err(GreenletError::Killed)));
        let _c = TcpStream::connect(addr).unwrap();
        listener.accept().unwrap();
    });
}

/// Hundreds of greenlet stacks at once, which valgrind follows because
/// they are registered with it (libev/src/green/valgrind.rs).
#[test]
fn accept_storm_serves_every_client() {
    const N: u32 = 500;
    bounded("accept storm", || {
        let listener = TcpListener::bind(local()).unwrap();
        let addr = listener.local_addr().unwrap();
        // All clients start connecting at once, before anything is accepted.
        let clients: Vec<_> = (0..N)
            .map(|_| {
                green::spawn(move || -> io::Result<u32> {
                    let mut s = TcpStream::connect(addr)?;
                    let mut ticket = [0u8; 4];
                    s.read_exact(&mut ticket)?;
                    Ok(u32::from_be_bytes(ticket))
                })
            })
            .collect();
        for ticket in 0..N {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&ticket.to_be_bytes()).unwrap();
        }
        let mut tickets: Vec<u32> =
            green::joinall(clients).into_iter().map(|r| r.unwrap().unwrap()).collect();
        tickets.sort();
        assert_eq!(tickets, (0..N).collect::<Vec<_>>());
    });
}

#[test]
fn concurrent_waits_on_one_direction_are_an_error() {
    bounded("concurrent use", || {
        let (client, server) = tcp_pair();
        let server = Rc::new(server);
        let first = {
            let server = server.clone();
            green::spawn(move || {
                let mut buf = [0u8; 8];
                let n = (&*server).read(&mut buf)?;
                Ok::<_, io::Error>(buf[..n].to_vec())
            })
        };
        green::yield_now(); // `first` waits to read
        let err = (&*server).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy);
        assert!(err.to_string().contains("ConcurrentObjectUseError"), "{err}");
        // The write direction is free meanwhile.
        (&*server).write_all(b"out").unwrap();
        let mut buf = [0u8; 3];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"out");
        // The first reader still gets what comes.
        (&client).write_all(b"in").unwrap();
        assert_eq!(first.join().unwrap().unwrap(), b"in");

        // Two writers on a full socket. The parked writer brings 1 MiB, so
        // it stays parked even if acknowledgements free a little room.
        fill_send_buffer(&server);
        const TAIL: usize = 1 << 20;
        let writer = {
            let server = server.clone();
            green::spawn(move || (&*server).write_all(&[b't'; TAIL]))
        };
        green::yield_now();
        let err = (&*server).write(b"x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceBusy);
        // Drain the client side; the parked writer finishes.
        let drainer = green::spawn(move || {
            let mut sink = Vec::new();
            (&client)
                .read_to_end(&mut sink)
                .map(|_| sink.len() >= TAIL && sink[sink.len() - TAIL..].iter().all(|&b| b == b't'))
        });
        writer.join().unwrap().unwrap();
        drop(server);
        assert!(drainer.join().unwrap().unwrap());
    });
}

#[test]
fn shutdown_wakes_blocked_greenlets() {
    bounded("shutdown wake", || {
        // A reader blocked on the same handle: shutdown(Read) ends its
        // read with end of file.
        let (_client, server) = tcp_pair();
        let server = Rc::new(server);
        let reader = {
            let server = server.clone();
            green::spawn(move || (&*server).read(&mut [0u8; 8]))
        };
        green::yield_now();
        server.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);

        // A writer blocked on a full socket: shutdown(Write) ends it with
        // the error the OS reports.
        let (_client, server) = tcp_pair();
        let server = Rc::new(server);
        fill_send_buffer(&server);
        let writer = {
            let server = server.clone();
            green::spawn(move || (&*server).write_all(&[0u8; 1 << 20]))
        };
        green::yield_now();
        server.shutdown(Shutdown::Write).unwrap();
        let err = writer.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

        // Unix stream sockets too.
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Rc::new(a);
        let reader = {
            let a = a.clone();
            green::spawn(move || (&*a).read(&mut [0u8; 8]))
        };
        green::yield_now();
        a.shutdown(Shutdown::Both).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
    });
}

/// Runs in a child process: see [`run_in_child`].
#[test]
fn names_are_resolved_off_the_hub() {
    if run_in_child("names_are_resolved_off_the_hub") {
        return;
    }
    bounded("localhost", || {
        // Resolution waits on the blocking pool, not on the hub. With the
        // pool's one thread held by another job, a greenlet resolving a
        // name stays parked while the hub (and this root) goes on. This
        // child process runs only this test, so the pool is ours.
        green::set_blocking_threads(1);
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = green::spawn(move || green::spawn_blocking(move || held.recv().is_ok()));
        green::yield_now(); // `holder` takes the pool's thread
        let binder = green::spawn(|| TcpListener::bind(("localhost", 0)).map(|l| l.local_addr().unwrap()));
        green::yield_now(); // `binder` queues its resolution and parks
        assert!(!binder.is_finished(), "the name was resolved on the hub");
        // IP literals, as text, need no lookup: they are parsed on the
        // hub, so these binds finish while the pool is still held.
        let literals = green::spawn(|| {
            let ports = [
                TcpListener::bind("127.0.0.1:0"),
                TcpListener::bind(String::from("127.0.0.1:0")),
                TcpListener::bind(("127.0.0.1", 0)),
                TcpListener::bind((String::from("127.0.0.1"), 0)),
            ];
            ports.into_iter().map(|l| l.unwrap().local_addr().unwrap().ip()).collect::<Vec<_>>()
        });
        green::yield_now();
        assert!(literals.is_finished(), "an IP literal waited for the blocking pool");
        assert!(literals.join().unwrap().iter().all(|ip| ip.is_loopback()));
        release.send(()).unwrap();
        assert!(binder.join().unwrap().unwrap().ip().is_loopback());
        assert!(holder.join().unwrap());
        green::set_blocking_threads(green::DEFAULT_BLOCKING_THREADS);

        let listener = TcpListener::bind(local()).unwrap();
        let port = listener.local_addr().unwrap().port();
        // "localhost" may resolve to ::1 first, which is refused here:
        // connect tries each address in turn, as std does.
        let acceptor = green::spawn(move || -> io::Result<u32> {
            for _ in 0..2 {
                let (mut s, _) = listener.accept()?;
                s.write_all(b"ok")?;
            }
            Ok(2)
        });
        for target in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
            let mut s = TcpStream::connect(target.as_str()).unwrap();
            let mut buf = [0u8; 2];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ok");
        }
        assert_eq!(acceptor.join().unwrap().unwrap(), 2);

        // A listener bound by name, and UDP to a name.
        let l = TcpListener::bind(("localhost", 0)).unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
        let rx = UdpSocket::bind(local()).unwrap();
        let tx = UdpSocket::bind(local()).unwrap();
        let port = rx.local_addr().unwrap().port();
        tx.send_to(b"named", ("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = rx.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"named"[..], tx.local_addr().unwrap()));
    });
}

#[test]
fn udp_round_trips() {
    bounded("udp", || {
        let server = UdpSocket::bind(local()).unwrap();
        let addr = server.local_addr().unwrap();
        let echo = green::spawn(move || -> io::Result<()> {
            let mut buf = [0u8; 1500];
            for _ in 0..3 {
                // Peek first: the datagram stays queued.
                let (n, peer) = server.peek_from(&mut buf)?;
                let (m, again) = server.recv_from(&mut buf)?;
                assert_eq!((n, peer), (m, again));
                server.send_to(&buf[..n], peer)?;
            }
            Ok(())
        });

        // Unconnected: send_to / recv_from.
        let a = UdpSocket::bind(local()).unwrap();
        a.send_to(b"first", addr).unwrap();
        let mut buf = [0u8; 1500];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"first"[..], addr));

        // Connected: send / recv / peek.
        let b = UdpSocket::bind(local()).unwrap();
        b.connect(addr).unwrap();
        assert_eq!(b.peer_addr().unwrap(), addr);
        b.send(b"second").unwrap();
        let n = b.peek(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");

        // A receive that parks until the echo greenlet has run.
        let c = UdpSocket::bind(local()).unwrap();
        c.send_to(b"third", addr).unwrap();
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"third");
        echo.join().unwrap().unwrap();

        // Receive timeouts, and the non-blocking flag.
        c.set_read_timeout(Some(MS * 5)).unwrap();
        assert_eq!(c.recv_from(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        c.set_nonblocking(true).unwrap();
        assert_eq!(c.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}

/// A fresh directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("libev-green-net-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_streams_and_datagrams() {
    bounded("unix", || {
        let dir = TempDir::new("unix");
        let path = dir.0.join("stream.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = green::spawn(move || -> io::Result<usize> {
            let mut served = 0;
            for stream in listener.incoming().take(3) {
                let stream = stream?;
                let mut buf = [0u8; 256];
                loop {
                    let n = (&stream).read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    (&stream).write_all(&buf[..n])?;
                }
                served += 1;
            }
            Ok(served)
        });
        for i in 0..3 {
            let mut s = UnixStream::connect(&path).unwrap();
            let msg = format!("unix {i}");
            s.write_all(msg.as_bytes()).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut back = String::new();
            s.read_to_string(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        assert_eq!(server.join().unwrap().unwrap(), 3);

        // A pair, with a read timeout.
        let (a, b) = UnixStream::pair().unwrap();
        b.set_read_timeout(Some(MS * 5)).unwrap();
        assert_eq!((&b).read(&mut [0u8; 4]).unwrap_err().kind(), ErrorKind::TimedOut);
        (&a).write_all(b"pair").unwrap();
        let mut buf = [0u8; 4];
        (&b).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pair");

        // Datagrams, by path and connected.
        let rx_path = dir.0.join("rx.sock");
        let rx = UnixDatagram::bind(&rx_path).unwrap();
        let tx = UnixDatagram::bind(dir.0.join("tx.sock")).unwrap();
        let receiver = green::spawn(move || -> io::Result<Vec<u8>> {
            let mut buf = [0u8; 64];
            let (n, from) = rx.recv_from(&mut buf)?;
            rx.send_to(&buf[..n], from.as_pathname().unwrap())?;
            Ok(buf[..n].to_vec())
        });
        tx.send_to(b"dgram", &rx_path).unwrap();
        let mut buf = [0u8; 64];
        let n = tx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"dgram");
        assert_eq!(receiver.join().unwrap().unwrap(), b"dgram");
        let (p, q) = UnixDatagram::pair().unwrap();
        p.send(b"paired").unwrap();
        let n = q.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"paired");
        q.set_read_timeout(Some(MS * 5)).unwrap();
        assert_eq!(q.recv(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    });
}

/// A Unix listener whose backlog is full makes a non-blocking connect
/// fail with EAGAIN, with no readiness event for "room again": the green
/// connect pauses and retries, parking only its greenlet.
#[test]
fn unix_connect_waits_for_room_in_a_full_backlog() {
    bounded("unix backlog", || {
        let dir = TempDir::new("backlog");
        let path = dir.0.join("full.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: listen on a socket we own, integer arguments.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let mut queued = Vec::new();
        loop {
            match green::with_timeout(MS * 20, || UnixStream::connect(&path)) {
                Ok(s) => queued.push(s.unwrap()),
                Err(_) => break, // waiting for room: the backlog is full
            }
            assert!(queued.len() < 64, "the kernel queued 64 connections on a backlog of 0");
        }
        let waiting = {
            let path = path.clone();
            green::spawn(move || UnixStream::connect(&path).map(|mut s| s.write_all(b"in")))
        };
        green::sleep(MS * 5); // it tries, finds no room, pauses
        assert!(!waiting.is_finished());
        let mut accepted = Vec::new();
        accepted.push(listener.accept().unwrap().0); // makes room
        waiting.join().unwrap().unwrap().unwrap();
        listener.set_nonblocking(true).unwrap();
        while let Ok((s, _)) = listener.accept() {
            accepted.push(s);
        }
        let mut got = Vec::new();
        for mut s in accepted {
            s.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 2];
            if s.read_exact(&mut buf).is_ok() {
                got.push(buf);
            }
        }
        assert_eq!(got, [*b"in"]);
        drop(queued);
    });
}

#[cfg(target_os = "linux")]
#[test]
fn unix_abstract_names() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr as UnixAddr;
    bounded("abstract", || {
        let name = format!("libev-green-net-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        let client = green::spawn(move || UnixStream::connect_addr(&addr)?.write_all(b"abstract"));
        let (mut s, _) = listener.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "abstract");
        client.join().unwrap().unwrap();
    });
}

/// The address checks of the green Unix connect fail as std's do, kind for
/// kind: an empty path, an interior NUL, a path one byte too long for
/// `sun_path`, and the longest path that fits (not there: `NotFound`).
#[test]
fn unix_connect_address_errors_match_std() {
    bounded("unix address errors", || {
        // Nothing is created: the directory does not exist.
        let base = format!("/nonexistent-libev-green-net-{}/x", std::process::id());
        // sun_path is 108 bytes on Linux, 104 on the BSDs: 200 is too long
        // everywhere, and `fits` is the longest path std accepts.
        let fits = (base.len()..200)
            .map(|n| format!("{base}{}", "y".repeat(n - base.len())))
            .take_while(|p| std::os::unix::net::SocketAddr::from_pathname(p).is_ok())
            .last()
            .unwrap();
        let too_long = format!("{fits}y");
        for path in ["", "a\0b", &fits, &too_long] {
            let std_kind = std::os::unix::net::UnixStream::connect(path).unwrap_err().kind();
            let green_kind = UnixStream::connect(path).unwrap_err().kind();
            assert_eq!(green_kind, std_kind, "path of {} bytes", path.len());
        }
        assert_eq!(UnixStream::connect(&too_long).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixStream::connect(&fits).unwrap_err().kind(), ErrorKind::NotFound);
    });
}

/// The longest abstract name std accepts (all of `sun_path` after the
/// leading NUL) is one the green connect reaches too.
#[cfg(target_os = "linux")]
#[test]
fn unix_abstract_names_of_the_longest_length() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr as UnixAddr;
    bounded("long abstract name", || {
        let prefix = format!("libev-green-net-{}-", std::process::id());
        let name = (prefix.len()..200)
            .map(|n| format!("{prefix}{}", "z".repeat(n - prefix.len())))
            .take_while(|n| UnixAddr::from_abstract_name(n.as_bytes()).is_ok())
            .last()
            .unwrap();
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixListener::bind_addr(&addr).unwrap();
        // The connect needs no accept (the backlog has room), so a
        // refused name fails here rather than leaving accept waiting.
        UnixStream::connect_addr(&addr).unwrap().write_all(b"long").unwrap();
        let (mut s, _) = listener.accept().unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        assert_eq!(got, "long");
    });
}

#[test]
fn nonblocking_flag_gives_would_block_instead_of_parking() {
    bounded("nonblocking", || {
        let listener = TcpListener::bind(local()).unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        listener.set_nonblocking(false).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        assert_eq!((&server).read(&mut [0u8; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
        (&client).write_all(b"now").unwrap();
        server.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 3];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"now");
    });
}

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only queries the descriptor.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn conversions_to_and_from_std_and_fds() {
    bounded("conversions", || {
        let std_listener = std::net::TcpListener::bind(local()).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from(std_listener);
        assert!(is_nonblocking(&listener));
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        assert!(!is_nonblocking(&std_client));
        let client = TcpStream::from(std_client);
        assert!(is_nonblocking(&client));
        let (server, _) = listener.accept().unwrap();
        assert!(is_nonblocking(&server));

        // Through an OwnedFd and a raw fd, and back.
        let fd: OwnedFd = server.into();
        let server = TcpStream::from(fd);
        let raw = server.into_raw_fd();
        // SAFETY: `raw` came from into_raw_fd and nothing else owns it.
        let server = unsafe { TcpStream::from_raw_fd(raw) };
        (&client).write_all(b"fd").unwrap();
        let mut buf = [0u8; 2];
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"fd");

        // A clone starts with the original's settings and shares the
        // connection.
        server.set_read_timeout(Some(MS * 7)).unwrap();
        let clone = server.try_clone().unwrap();
        assert_eq!(clone.read_timeout().unwrap(), Some(MS * 7));
        (&client).write_all(b"c").unwrap();
        (&clone).read_exact(&mut buf[..1]).unwrap();
        assert_eq!(buf[0], b'c');

        // To std: the fd stays non-blocking (other handles may be green).
        let std_server: std::net::TcpStream = server.into();
        assert!(is_nonblocking(&std_server));
        std_server.set_nodelay(true).unwrap();
        let back = TcpStream::from(std_server);
        assert!(back.nodelay().unwrap());
        back.set_ttl(42).unwrap();
        assert_eq!(back.ttl().unwrap(), 42);
        assert!(back.take_error().unwrap().is_none());
        assert!(format!("{back:?}").contains("TcpStream"));

        // UDP and Unix sockets convert the same way.
        let udp = UdpSocket::from(std::net::UdpSocket::bind(local()).unwrap());
        assert!(is_nonblocking(&udp));
        let (ua, _ub) = std::os::unix::net::UnixStream::pair().unwrap();
        let ua = UnixStream::from(ua);
        assert!(is_nonblocking(&ua));
        let ua: std::os::unix::net::UnixStream = ua.into();
        assert!(is_nonblocking(&ua));
    });
}

#[test]
fn sockets_are_usable_from_several_greenlets_in_turn() {
    // Watchers are made lazily per direction and reused: many waits on
    // one socket from different greenlets, one at a time.
    bounded("reuse", || {
        let (client, server) = tcp_pair();
        let server = Rc::new(server);
        for round in 0..50u8 {
            let reader = {
                let server = server.clone();
                green::spawn(move || {
                    let mut b = [0u8; 1];
                    (&*server).read_exact(&mut b).map(|_| b[0])
                })
            };
            green::yield_now();
            (&client).write_all(&[round]).unwrap();
            assert_eq!(reader.join().unwrap().unwrap(), round);
        }
    });
}

#[test]
fn reads_after_a_short_read_still_see_data_that_is_already_there() {
    // A short read makes the next read wait for readiness before trying:
    // data that arrived meanwhile must still be read at once, with or
    // without a timeout, and the non-blocking flag must still try first.
    let (mut a, mut b) = tcp_pair();
    let mut buf = [0u8; 64];
    a.write_all(b"ab").unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 2, "short read");
    a.write_all(b"cd").unwrap();
    green::sleep(MS * 2); // "cd" is in b's receive buffer now
    assert_eq!(bounded("read after a short read", || b.read(&mut buf).unwrap()), 2);
    assert_eq!(&buf[..2], b"cd");

    b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    a.write_all(b"e").unwrap();
    green::sleep(MS * 2);
    assert_eq!(bounded("read with a timeout", || b.read(&mut buf).unwrap()), 1);
    b.set_read_timeout(None).unwrap();

    // Short read, then non-blocking: an empty buffer says WouldBlock
    // without parking, a full one gives its data.
    b.set_nonblocking(true).unwrap();
    assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    a.write_all(b"f").unwrap();
    green::sleep(MS * 2);
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    assert_eq!(b.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    b.set_nonblocking(false).unwrap();

    // End of file after a short read.
    a.write_all(b"g").unwrap();
    green::sleep(MS * 2);
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    drop(a);
    assert_eq!(bounded("EOF after a short read", || b.read(&mut buf).unwrap()), 0);
}

/// A shutdown through one handle wakes the greenlets waiting on its
/// clones (issue 25.3): clones used to wait on their own, and the kernel
/// never reports a full `AF_UNIX` stream writable after `SHUT_WR`, so a
/// writer parked on a clone hung while std's blocking write returns
/// `BrokenPipe`. One case per socket type that has `shutdown`.
#[test]
fn a_shutdown_through_a_clone_wakes_waiters_of_every_handle() {
    bounded("clone shutdown", || {
        // Unix stream, writer on a full buffer: only our wake-up ends it.
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while (&a).write(&chunk).is_ok() {}
        a.set_nonblocking(false).unwrap();
        let clone = a.try_clone().unwrap();
        let writer = green::spawn(move || (&a).write_all(&chunk));
        green::yield_now();
        clone.shutdown(Shutdown::Write).unwrap();
        let err = writer.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe, "{err}");

        // Unix stream, reader, and the clone made before the reader's
        // first wait (its slot joins the family later).
        let (a, _b) = UnixStream::pair().unwrap();
        let clone = a.try_clone().unwrap();
        let reader = green::spawn(move || (&a).read(&mut [0u8; 8]));
        green::yield_now();
        clone.shutdown(Shutdown::Read).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);

        // TCP: reader and writer on the original, shutdown on a clone of
        // a clone.
        let (_client, server) = tcp_pair();
        fill_send_buffer(&server);
        let server = Rc::new(server);
        let clone2 = server.try_clone().unwrap().try_clone().unwrap();
        let (s1, s2) = (server.clone(), server.clone());
        let reader = green::spawn(move || (&*s1).read(&mut [0u8; 8]));
        let writer = green::spawn(move || (&*s2).write_all(&[0u8; 1 << 20]));
        green::yield_now();
        clone2.shutdown(Shutdown::Both).unwrap();
        assert_eq!(reader.join().unwrap().unwrap(), 0);
        assert_eq!(writer.join().unwrap().unwrap_err().kind(), ErrorKind::BrokenPipe);

        // Unix datagrams: receivers on the original and on a clone. The
        // kernel keeps answering EAGAIN to a read-shut AF_UNIX datagram
        // socket; std's blocking receive returns an empty datagram.
        let (a, _b) = UnixDatagram::pair().unwrap();
        let clone = a.try_clone().unwrap();
        let other = a.try_clone().unwrap();
        let receiver = green::spawn(move || a.recv(&mut [0u8; 8]));
        let receiver_from = green::spawn(move || other.recv_from(&mut [0u8; 8]));
        green::yield_now();
        clone.shutdown(Shutdown::Read).unwrap();
        assert_eq!(receiver.join().unwrap().unwrap(), 0);
        let (n, from) = receiver_from.join().unwrap().unwrap();
        assert_eq!(n, 0);
        assert!(from.is_unnamed());
        assert_eq!(clone.recv(&mut [0u8; 8]).unwrap(), 0, "later receives do not wait either");
    });
}

/// A timeout too large for a deadline means no deadline (issue 17.11: it
/// was accepted, then the first wait panicked with "overflow when adding
/// duration to instant").
#[test]
fn timeouts_past_the_representable_deadline_mean_none() {
    bounded("huge timeouts", || {
        let (client, server) = tcp_pair();
        client.set_read_timeout(Some(Duration::MAX)).unwrap();
        client.set_write_timeout(Some(Duration::MAX)).unwrap();
        assert_eq!(client.read_timeout().unwrap(), Some(Duration::MAX));
        let writer = green::spawn(move || {
            green::sleep(MS * 10);
            (&server).write_all(b"late").unwrap();
            server
        });
        let mut buf = [0u8; 4];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        let server = writer.join().unwrap();
        // Writes wait without a deadline too.
        let filled = fill_send_buffer(&client);
        let drain = green::spawn(move || {
            green::sleep(MS * 10);
            let mut sink = vec![0u8; 1 << 20];
            let mut total = 0;
            while total < filled + 64 * 1024 {
                total += (&server).read(&mut sink).unwrap();
            }
        });
        (&client).write_all(&[1u8; 64 * 1024]).unwrap();
        drain.join().unwrap();
        // A connect with such a timeout waits as long as it must.
        let listener = TcpListener::bind(local()).unwrap();
        TcpStream::connect_timeout(&listener.local_addr().unwrap(), Duration::MAX).unwrap();
        let (a, _b) = UnixDatagram::pair().unwrap();
        a.set_read_timeout(Some(Duration::MAX - Duration::from_nanos(1))).unwrap();
        assert!(green::with_timeout(MS * 10, || a.recv(&mut [0u8; 4])).is_err(), "still waiting");
    });
}

/// A socket's io watcher stays started from one wait to the next (issue
/// 24: a busy connection's round trip then costs libev no stop and start),
/// but a socket nobody waits on costs the loop nothing: data that arrives
/// unread does not make the loop spin, and the socket does not keep the
/// loop alive, so a root waiting on nothing is still told so (LoopExit),
/// whether the last wait ended ready or timed out.
#[test]
fn a_socket_nobody_waits_on_neither_spins_the_loop_nor_keeps_it_alive() {
    let (mut a, b) = tcp_pair();
    let b = Rc::new(b);
    let mut buf = [0u8; 16];
    // A greenlet waits for a message (its watcher fires), reads it and
    // ends; the socket lives on, unused.
    let reader = {
        let b = b.clone();
        green::spawn(move || (&*b).read(&mut [0u8; 16]).unwrap())
    };
    green::sleep(MS * 5);
    a.write_all(b"x").unwrap();
    assert_eq!(bounded("the reader", || reader.join().unwrap()), 1);

    // Unread data: the watcher fires once, finds nobody waiting, stops.
    a.write_all(b"unread").unwrap();
    let lp = green::hub_loop();
    let before = lp.iteration();
    green::sleep(MS * 50);
    let iterations = lp.iteration() - before;
    assert!(iterations < 20, "{iterations} loop iterations in a 50 ms sleep: the loop spins");
    assert_eq!(bounded("the unread data", || (&*b).read(&mut buf).unwrap()), 6);

    let loop_exit = |after: &str| {
        let event = Event::new();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| event.wait())).unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("LoopExit"), "after {after}: {msg}");
    };
    loop_exit("a wait that ended ready");

    // A wait that times out stops the watcher.
    b.set_read_timeout(Some(MS * 5)).unwrap();
    assert_eq!((&*b).read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
    loop_exit("a wait that timed out");
    drop(a);
}
