//! The servers `net-bench` starts (`net-bench --serve KIND ADDR`). Each
//! prints `listening on ADDR` once it listens, then serves until killed.
//!
//! The threaded kinds (a thread count ends the name: `green-hello-threads2`,
//! `c-echo-threads2`, `green-hello-shared2`, `epoll-hello-excl2`, ...)
//! count each thread's operations (connections for hello, round trips for
//! echo) and, on SIGTERM, print `served: N0 N1 ...` and exit. The
//! multi-threaded tokio kinds (`tokio-hello-mt2`) just die on SIGTERM.
//! The prefork kinds (`green-hello-procs2`, `green-echo-procs2`) run a
//! `PreforkServer` on that many worker processes, which count into memory
//! shared with the parent; on SIGTERM the parent stops them gracefully and
//! prints the counts the same way.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

unsafe extern "C" {
    /// `c/servers.c`: serve on a listening, non-blocking socket (never returns).
    fn bench_c_echo_server(listen_fd: i32) -> i32;
    fn bench_c_hello_server(listen_fd: i32) -> i32;
    /// `c/servers.c`: `n` threads, one libev loop each on `fds[i]`,
    /// counting into `counts[8 * i]`; returns once they are spawned.
    fn bench_c_threaded_server(fds: *const i32, n: i32, echo: i32, counts: *mut u64) -> i32;
    /// `c/servers.c`: `n` raw-epoll hello threads, on `fds[i]` each, or
    /// all on `fds[0]` with EPOLLEXCLUSIVE.
    fn bench_epoll_hello_server(fds: *const i32, n: i32, exclusive: i32, counts: *mut u64) -> i32;
}

pub(crate) const HELLO: &[u8] = b"hello world\r\n";

pub(crate) fn announce(addr: std::net::SocketAddr) {
    println!("listening on {addr}");
    std::io::stdout().flush().expect("stdout");
}

pub fn serve(kind: &str, addr: &str) {
    if let Some((base, n)) = threaded_kind(kind) {
        return serve_threaded(base, n, addr);
    }
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
        _ if kind.starts_with("may-") => crate::may_servers::serve(kind, addr),
        _ if kind.ends_with("-http") => crate::http_servers::serve(kind, addr),
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(l.local_addr().expect("local_addr"));
        loop {
            let (s, _) = l.accept().await.expect("accept");
            let _ = s.set_nodelay(true);
            tokio::task::spawn_local(tokio_conn(s, echo));
        }
    });
}

/// `("green-hello-threads", 2)` from `green-hello-threads2`, for the
/// threaded kinds.
fn threaded_kind(kind: &str) -> Option<(&str, usize)> {
    let digits = kind.len() - kind.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (base, n) = kind.split_at(kind.len() - digits);
    let threaded =
        ["-threads", "-shared", "-reuse", "-excl", "-mt", "-procs"].iter().any(|s| base.ends_with(s));
    (threaded && !n.is_empty()).then(|| (base, n.parse().expect("thread count")))
}

/// Per-thread operation counts of the threaded servers, on their own
/// cache lines; a thread takes the next free one.
#[repr(align(64))]
struct Count(AtomicU64);

#[allow(clippy::declare_interior_mutable_const)] // only to build the array
const ZERO: Count = Count(AtomicU64::new(0));
static COUNTS: [Count; 64] = [ZERO; 64];
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// This thread's counter.
fn claim_count() -> &'static AtomicU64 {
    &COUNTS[NEXT.fetch_add(1, Ordering::Relaxed)].0
}

/// Blocks SIGTERM in this thread (threads spawned later inherit it), so
/// that [`report_on_sigterm`] can take it with `sigwait`.
fn block_sigterm() -> libc::sigset_t {
    // SAFETY: sigset_t is plain old data, initialised by sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid; this changes only this thread's mask.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// Waits for SIGTERM, prints the first `n` counts and ends the process.
fn report_on_sigterm(set: &libc::sigset_t, counts: impl Fn() -> Vec<u64>) -> ! {
    let mut sig = 0;
    // SAFETY: `set` holds SIGTERM, blocked in every thread.
    unsafe { libc::sigwait(set, &mut sig) };
    let line: Vec<String> = counts().iter().map(u64::to_string).collect();
    println!("served: {}", line.join(" "));
    std::io::stdout().flush().expect("stdout");
    std::process::exit(0)
}

/// `n` listening sockets bound to `addr` with SO_REUSEPORT (port 0: the
/// first one's port for the others).
fn reuseport_listeners(addr: &str, n: usize) -> Vec<std::net::TcpListener> {
    let mut addr: std::net::SocketAddr = addr.parse().expect("an IPv4 address");
    let std::net::SocketAddr::V4(_) = addr else { panic!("IPv4 only") };
    let mut out = Vec::new();
    for _ in 0..n {
        // SAFETY: plain system calls on a socket made here; `sin` is a
        // valid sockaddr_in for the bind.
        let l = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let one: libc::c_int = 1;
            for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
                let p = (&one as *const libc::c_int).cast();
                libc::setsockopt(fd, libc::SOL_SOCKET, opt, p, 4);
            }
            let mut sin: libc::sockaddr_in = std::mem::zeroed();
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = addr.port().to_be();
            let std::net::SocketAddr::V4(v4) = addr else { unreachable!() };
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            let r = libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), 16);
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            assert_eq!(libc::listen(fd, 1024), 0);
            std::net::TcpListener::from_raw_fd(fd)
        };
        l.set_nonblocking(true).expect("nonblocking");
        addr = l.local_addr().expect("local_addr");
        out.push(l);
    }
    out
}

/// One green connection: the hello greeting, or echo until EOF counting
/// round trips in `count`.
fn green_conn(echo: bool, mut s: libev::green::net::TcpStream, count: &AtomicU64) {
    if !echo {
        let _ = s.write_all(HELLO);
        count.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                count.fetch_add(1, Ordering::Relaxed);
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn serve_threaded(base: &str, n: usize, addr: &str) {
    use libev::green::net::TcpListener;
    use libev::green::server::{StreamServer, ThreadedStreamServer, Threads};
    let echo = base.contains("echo");
    if base.starts_with("tokio") {
        return tokio_multi_thread(echo, n, addr);
    }
    if base.ends_with("-procs") {
        return prefork(echo, n, addr);
    }
    let set = block_sigterm();
    let counts = move || COUNTS[..n].iter().map(|c| c.0.load(Ordering::Relaxed)).collect();
    match base {
        "green-hello-threads" | "green-echo-threads" => {
            let server = ThreadedStreamServer::bind(addr, Threads::Count(n), move || {
                let count = claim_count();
                move |s, _| green_conn(echo, s, count)
            })
            .expect("bind");
            server.start().expect("start");
            announce(server.local_addr().expect("local_addr"));
            report_on_sigterm(&set, counts)
        }
        // One listener shared by every thread, each hub watching it (no
        // EPOLLEXCLUSIVE through libev): every thread wakes for each
        // connection.
        "green-hello-shared" => {
            let l = std::net::TcpListener::bind(addr).expect("bind");
            // SAFETY: plain system call; std's backlog of 128 is deepened.
            unsafe { libc::listen(l.as_raw_fd(), 1024) };
            announce(l.local_addr().expect("local_addr"));
            for _ in 0..n {
                let l = l.try_clone().expect("dup");
                std::thread::spawn(move || {
                    let count = claim_count();
                    let server =
                        StreamServer::new(TcpListener::from(l), move |s, _| green_conn(false, s, count));
                    server.serve_forever().expect("serve");
                });
            }
            report_on_sigterm(&set, counts)
        }
        "c-hello-threads" | "c-echo-threads" | "epoll-hello-reuse" | "epoll-hello-excl" => {
            let ls = reuseport_listeners(addr, if base == "epoll-hello-excl" { 1 } else { n });
            announce(ls[0].local_addr().expect("local_addr"));
            let fds: Vec<i32> = ls.iter().map(|l| l.as_raw_fd()).collect();
            // Thread i counts into c_counts[8 * i] (a cache line each),
            // with atomic adds; leaked, as the C threads run until exit.
            let c_counts: &'static [AtomicU64] = Box::leak((0..8 * n).map(|_| AtomicU64::new(0)).collect());
            let ptr = c_counts.as_ptr().cast::<u64>().cast_mut();
            // SAFETY: `fds` holds open listeners that live (in `ls`) until
            // the process ends; `c_counts` has the 8 * n counters the C
            // side writes (AtomicU64 has u64's layout) and is never freed.
            let r = unsafe {
                if base.starts_with("c-") {
                    bench_c_threaded_server(fds.as_ptr(), n as i32, echo as i32, ptr)
                } else {
                    bench_epoll_hello_server(fds.as_ptr(), n as i32, (base == "epoll-hello-excl") as i32, ptr)
                }
            };
            assert_eq!(r, 0, "C server threads");
            report_on_sigterm(&set, move || (0..n).map(|i| c_counts[8 * i].load(Ordering::Relaxed)).collect())
        }
        _ => panic!("unknown server kind {base}{n}"),
    }
}

fn tokio_multi_thread(echo: bool, n: usize, addr: &str) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_io().build().expect("runtime");
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(l.local_addr().expect("local_addr"));
        loop {
            let (s, _) = l.accept().await.expect("accept");
            let _ = s.set_nodelay(true);
            tokio::spawn(tokio_conn(s, echo));
        }
    });
}

/// One tokio connection: the greeting (hello), or echo until the peer
/// closes.
async fn tokio_conn(mut s: tokio::net::TcpStream, echo: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
}

/// `PreforkServer` on `n` worker processes (this process has one thread
/// here: `main` calls `serve` first). Each worker counts its operations
/// into a counter of a shared mapping, claimed in turn.
fn prefork(echo: bool, n: usize, addr: &str) {
    use libev::green::server::{PreforkServer, Processes};
    /// The counters, then the next free index.
    const SLOTS: usize = 64;
    let bytes = (SLOTS + 1) * std::mem::size_of::<Count>();
    // SAFETY: a fresh anonymous shared mapping, zero-filled (valid
    // atomics), never unmapped: workers and parent use it until they exit.
    let shared: &'static [Count] = unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        std::slice::from_raw_parts(p.cast::<Count>(), SLOTS + 1)
    };
    let server = PreforkServer::bind(addr, Processes::Count(n), move || {
        let count = &shared[shared[SLOTS].0.fetch_add(1, Ordering::Relaxed) as usize % SLOTS].0;
        move |s, _| green_conn(echo, s, count)
    })
    .expect("bind")
    .graceful_timeout(std::time::Duration::from_secs(1))
    .event_handler(|_| ());
    announce(server.local_addr().expect("local_addr"));
    server.serve_forever().expect("serve");
    let line: Vec<String> = shared[..n].iter().map(|c| c.0.load(Ordering::Relaxed).to_string()).collect();
    println!("served: {}", line.join(" "));
    std::io::stdout().flush().expect("stdout");
}
