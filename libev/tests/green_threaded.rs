//! libev::green::server's threaded servers: ThreadedStreamServer and
//! ThreadedDatagramServer over loopback, each server thread with its own
//! hub and its own SO_REUSEPORT socket.
//!
//! gevent has no threaded server; where a test checks what gevent's
//! `test__server.py` checks of one `StreamServer`, it says so.

use libev::green::net::{TcpStream, UdpSocket};
use libev::green::server::{ThreadedDatagramServer, ThreadedStreamServer, Threads};
use libev::green::{self, PanicReport};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const SEC: Duration = Duration::from_secs(1);

/// Upper bound on every test; a test fails (never hangs) past it.
const LIMIT: Duration = Duration::from_secs(60);

fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    green::with_timeout(LIMIT, f).unwrap_or_else(|_| panic!("{what}: not done after {LIMIT:?}"))
}

/// Connects and reads everything the server sends until it closes.
fn fetch(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A handler factory whose handlers greet with their thread's name.
fn greeter() -> impl Fn(TcpStream, SocketAddr) + 'static {
    let name = std::thread::current().name().unwrap_or("?").to_owned();
    move |mut stream, _peer| {
        let _ = write!(stream, "hello from {name}");
    }
}

/// Polls `cond` every millisecond until it holds (bounded by [`LIMIT`]).
fn wait_until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        green::sleep(Duration::from_millis(1));
    }
}

#[test]
fn threaded_servers_are_send_and_sync() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<ThreadedStreamServer>();
    check::<ThreadedDatagramServer>();
}

/// Also gevent's `TestDefaultSpawn.test_serve_forever_after_start`: served
/// once started, refused once stopped, no serving again.
#[test]
fn two_threads_serve_connections_and_stop_closes_every_socket() {
    bounded("serve", || {
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), greeter).unwrap();
        assert_eq!(server.threads(), 2);
        assert_eq!(server.running_threads(), 0, "not started");
        let addr = server.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        server.start().unwrap();
        assert_eq!(server.running_threads(), 2);
        assert!(server.start().is_err(), "a second start is refused");
        let clients: Vec<_> = (0..40).map(|_| green::spawn(move || fetch(addr))).collect();
        for c in green::joinall(clients) {
            let reply = c.unwrap().unwrap();
            assert!(reply == "hello from green-tcp-0" || reply == "hello from green-tcp-1", "{reply:?}");
        }
        assert_eq!(server.connections_served().iter().sum::<u64>(), 40);
        server.stop(SEC);
        assert_eq!(server.running_threads(), 0);
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "every thread's socket is closed");
        assert!(server.serve_forever().is_err(), "a stopped server does not serve again");
        assert!(server.start().is_err());
        // Stopping again returns at once.
        server.stop(SEC);
    });
}

#[test]
fn an_address_in_use_fails_at_bind() {
    bounded("bind", || {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = ThreadedStreamServer::bind(addr, Threads::Count(2), greeter).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        // Another threaded server's SO_REUSEPORT sockets: the kernel would
        // let a second group join them; bind refuses.
        let first = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), greeter).unwrap();
        let addr = first.local_addr().unwrap();
        let e = ThreadedStreamServer::bind(addr, Threads::Count(2), greeter).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = ThreadedDatagramServer::bind(udp.local_addr().unwrap(), Threads::Count(2), || {
            |_: &[u8], _, _: &UdpSocket| ()
        })
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{e}");
        let e = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(0), greeter).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        // Dropping an unstarted server closes its sockets: the port is free.
        drop(first);
        let again = ThreadedStreamServer::bind(addr, Threads::Count(2), greeter).unwrap();
        again.stop(SEC);
    });
}

#[test]
fn threads_all_is_one_per_available_core() {
    let n = std::thread::available_parallelism().unwrap().get();
    assert_eq!(Threads::All.get().unwrap(), n);
    let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::All, greeter).unwrap();
    assert_eq!(server.threads(), n);
    assert_eq!(server.connections_served().len(), n);
}

/// gevent's `TestDefaultSpawn.test_serve_forever`, with `stop` called from
/// another OS thread: `serve_forever` returns, and `stop` has joined every
/// server thread (their handlers are dropped) before it returns.
#[test]
fn stop_from_another_thread_ends_serve_forever_and_joins_the_threads() {
    bounded("stop", || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            struct Guard(Arc<AtomicUsize>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::SeqCst);
                }
            }
            let guard = Guard(d.clone());
            move |mut s: TcpStream, _| {
                let _ = &guard;
                let _ = s.write_all(b"hi");
            }
        })
        .unwrap();
        let addr = server.local_addr().unwrap();
        let stopper = {
            let server = server.clone();
            std::thread::spawn(move || {
                // A plain thread: served, then stopped from here.
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                assert_eq!(out, "hi");
                let t0 = Instant::now();
                server.stop(SEC);
                t0.elapsed()
            })
        };
        server.serve_forever().unwrap();
        let took = stopper.join().unwrap();
        assert!(took < LIMIT);
        assert_eq!(dropped.load(Ordering::SeqCst), 2, "both threads' handlers are gone once stop returns");
        assert_eq!(server.running_threads(), 0);
        assert_eq!(TcpStream::connect(addr).unwrap_err().kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn stop_gives_handlers_their_timeout_then_kills_them() {
    bounded("stop timeout", || {
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), || {
            |s: TcpStream, _| {
                // Never returns by itself: the stop must kill it.
                let _ = (&s).write_all(b"in");
                green::sleep(Duration::from_secs(3600));
            }
        })
        .unwrap();
        server.start().unwrap();
        let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut buf = [0; 2];
        c.read_exact(&mut buf).unwrap();
        let t0 = Instant::now();
        server.stop(Duration::from_millis(100));
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(100), "the handler got its timeout ({took:?})");
        // The killed handler's stream was dropped: the client sees the end.
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
    });
}

/// A stop from a handler, on a server thread, returns at once (it cannot
/// wait for its own thread); `serve_forever` elsewhere sees the end.
#[test]
fn stop_from_a_handler_begins_the_stop_and_serve_forever_returns() {
    bounded("stop from handler", || {
        let me: Arc<OnceLock<ThreadedStreamServer>> = Arc::default();
        let handle = me.clone();
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            let handle = handle.clone();
            move |stream: TcpStream, _| {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                if line.trim() == "quit" {
                    handle.get().unwrap().stop(SEC);
                    let _ = (&stream).write_all(b"bye");
                }
            }
        })
        .unwrap();
        me.set(server.clone()).unwrap();
        let addr = server.local_addr().unwrap();
        let client = green::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"quit\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        });
        server.serve_forever().unwrap();
        assert_eq!(client.join().unwrap(), "bye", "the stopping handler ran to its end");
        assert_eq!(server.running_threads(), 0);
        // The factory (holding the server) is dropped once every thread
        // has ended: no cycle keeps the server alive.
        assert_eq!(Arc::strong_count(&me), 1);
    });
}

/// gevent's `test__server.py` closing note, "error in spawned handler:
/// non-fatal": a panicking handler is reported on its thread and both
/// threads keep serving.
#[test]
fn a_panicking_handler_does_not_stop_the_server() {
    bounded("handler panic", || {
        let reports = Arc::new(Mutex::new(Vec::<String>::new()));
        let r = reports.clone();
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            // The factory runs on the server thread: the handler is its.
            let r = r.clone();
            green::set_unjoined_panic_handler(move |p: &PanicReport<'_>| {
                r.lock().unwrap().push(p.message.to_owned());
            });
            |stream: TcpStream, _| {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                if line.trim() == "boom" {
                    panic!("handler boom");
                }
                let _ = (&stream).write_all(b"ok");
            }
        })
        .unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let ask = |what: &'static str| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(what.as_bytes()).unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        for _ in 0..10 {
            assert_eq!(ask("boom\n"), "");
        }
        wait_until(|| reports.lock().unwrap().len() == 10);
        assert!(reports.lock().unwrap().iter().all(|m| m == "handler boom"));
        assert_eq!(server.running_threads(), 2);
        for _ in 0..40 {
            assert_eq!(ask("fine\n"), "ok");
        }
        let served = server.connections_served();
        assert_eq!(served.iter().sum::<u64>(), 50);
        server.stop(SEC);
    });
}

/// A thread whose factory panics dies, reported to the error handler with
/// its index; the other thread serves every connection; `stop` still
/// stops and returns.
#[test]
fn a_thread_whose_factory_panics_is_reported_and_the_other_serves() {
    bounded("factory panic", || {
        let calls = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
        let (c, e) = (calls.clone(), errors.clone());
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("factory boom");
            }
            greeter()
        })
        .unwrap()
        .error_handler(move |thread, err| e.lock().unwrap().push((thread, err.to_string())));
        server.start().unwrap();
        // `start` returns once each thread serves or has died: reported.
        let errs = errors.lock().unwrap().clone();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].1.contains("factory boom"), "{errs:?}");
        assert_eq!(server.running_threads(), 1);
        let alive = format!("hello from green-tcp-{}", 1 - errs[0].0);
        let addr = server.local_addr().unwrap();
        for _ in 0..40 {
            assert_eq!(fetch(addr).unwrap(), alive);
        }
        server.stop(SEC);
        assert_eq!(server.running_threads(), 0);
    });
}

#[test]
fn serve_forever_fails_when_every_thread_died() {
    bounded("all died", || {
        let errors = Arc::new(AtomicUsize::new(0));
        let e = errors.clone();
        let server =
            ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), || -> fn(TcpStream, SocketAddr) {
                panic!("no handler today")
            })
            .unwrap()
            .error_handler(move |_, _| {
                e.fetch_add(1, Ordering::SeqCst);
            });
        let err = server.serve_forever().unwrap_err();
        assert!(err.to_string().contains("no handler today"), "{err}");
        assert_eq!(errors.load(Ordering::SeqCst), 2);
        assert_eq!(server.running_threads(), 0);
        server.stop(SEC);
    });
}

/// Not a timing assertion: the kernel's hash gives each of 2 threads some
/// of 200 connections (all to one: odds 2^-199).
#[test]
fn connections_spread_across_the_threads() {
    bounded("spread", || {
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), greeter).unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        for _ in 0..200 {
            fetch(addr).unwrap();
        }
        let served = server.connections_served();
        server.stop(SEC);
        assert_eq!(served.iter().sum::<u64>(), 200);
        assert!(served.iter().all(|&n| n > 0), "{served:?}");
    });
}

#[test]
fn max_connections_caps_each_thread() {
    bounded("max_connections", || {
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(1), || {
            |stream: TcpStream, _| {
                let _ = (&stream).write_all(b"in");
                // Holds its slot until the client closes.
                let _ = (&stream).read(&mut [0; 1]);
            }
        })
        .unwrap()
        .max_connections(1);
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        let mut first = TcpStream::connect(addr).unwrap();
        let mut buf = [0; 2];
        first.read_exact(&mut buf).unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        second.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(second.read(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut, "waits in the backlog");
        drop(first);
        second.set_read_timeout(None).unwrap();
        second.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"in");
        drop(second);
        server.stop(SEC);
    });
}

/// Signals go to the thread that handles them: server threads start with
/// them blocked (the fault signals excepted).
#[test]
fn server_threads_block_asynchronous_signals() {
    bounded("signals", || {
        let blocked = Arc::new(Mutex::new(Vec::new()));
        let b = blocked.clone();
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            // SAFETY: sigset_t is plain old data; pthread_sigmask fills it.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            // SAFETY: reads this thread's mask into `set`.
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) };
            let is = |s| {
                // SAFETY: `set` was filled above.
                unsafe { libc::sigismember(&set, s) == 1 }
            };
            b.lock().unwrap().push((
                is(libc::SIGINT),
                is(libc::SIGTERM),
                is(libc::SIGCHLD),
                is(libc::SIGSEGV),
            ));
            greeter()
        })
        .unwrap();
        server.start().unwrap();
        server.stop(SEC);
        assert_eq!(*blocked.lock().unwrap(), vec![(true, true, true, false); 2]);
    });
}

#[test]
fn killing_serve_forever_stops_the_threads() {
    bounded("kill", || {
        let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(2), greeter).unwrap();
        let s = server.clone();
        let g = green::spawn(move || s.serve_forever());
        wait_until(|| server.running_threads() == 2);
        g.kill();
        wait_until(|| server.running_threads() == 0);
        // Joins the threads, if the stop begun by the kill has not yet.
        server.stop(SEC);
        assert_eq!(
            TcpStream::connect(server.local_addr().unwrap()).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
    });
}

#[test]
fn datagram_server_on_two_threads_answers_every_peer_and_stops() {
    bounded("datagram", || {
        let panicked = Arc::new(AtomicBool::new(false));
        let p = panicked.clone();
        let server = ThreadedDatagramServer::bind("127.0.0.1:0", Threads::Count(2), move || {
            let p = p.clone();
            green::set_unjoined_panic_handler(move |_| p.store(true, Ordering::SeqCst));
            let name = std::thread::current().name().unwrap().to_owned();
            move |data: &[u8], peer, socket: &UdpSocket| {
                if data == b"boom" {
                    panic!("datagram boom");
                }
                let _ = socket.send_to(format!("{} {name}", String::from_utf8_lossy(data)).as_bytes(), peer);
            }
        })
        .unwrap();
        server.start().unwrap();
        let addr = server.local_addr().unwrap();
        // Many peers (one socket each): the kernel spreads them by hash.
        let peers: Vec<UdpSocket> = (0..64).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        peers[0].send_to(b"boom", addr).unwrap();
        wait_until(|| panicked.load(Ordering::SeqCst));
        let mut buf = [0; 64];
        for (i, p) in peers.iter().enumerate() {
            p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            p.send_to(format!("ping{i}").as_bytes(), addr).unwrap();
            let (n, from) = p.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            let reply = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(reply.starts_with(&format!("ping{i} green-udp-")), "{reply:?}");
        }
        let got = server.datagrams_received();
        assert_eq!(got.iter().sum::<u64>(), 65);
        assert!(got.iter().all(|&n| n > 0), "{got:?}");
        server.stop(SEC);
        assert_eq!(server.running_threads(), 0);
    });
}
