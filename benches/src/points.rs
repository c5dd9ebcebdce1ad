//! One measurement of one server, for `bench-all` (which alternates the
//! servers and repeats): `net-bench --point ...` prints its figures as
//! `result<TAB>net<TAB>WORKLOAD<TAB>SYSTEM<TAB>N<TAB>VALUE<TAB>UNIT` lines.
//!
//! ```text
//! net-bench --point echo|hello|http SYSTEM CONNS SECONDS   # server CPU per op, and the rate
//! net-bench --point idle SYSTEM CONNS                      # server RSS per idle connection
//! ```
//!
//! SYSTEM is `c`, `green`, `tokio`, `may`, `gevent` (`gevent_server.py`;
//! for `http` gevent's `pywsgi`), for `http` `hyper`, or for `idle`
//! `echo_server`: the repository's `echo_server` example as shipped (built
//! next to the parts by bench-all, in `examples/`), the code users copy. `echo` keeps
//! CONNS connections busy with 64-byte ping-pong and times from the moment
//! each has had its first round trip; `hello` keeps CONNS connections in
//! flight, each connect / read to EOF / close; `http` is `wrk` with CONNS
//! keep-alive connections on one thread. The server's own CPU time
//! (utime + stime) per operation is the figure that compares servers.
//! `idle` opens CONNS connections (from as many loopback source addresses
//! as their ports need), bounces one byte on each so every handler has run
//! and waits in `read`, and divides the server's RSS growth by CONNS.

use super::{Server, load};
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

/// How bench-all names each system.
fn display(system: &str) -> &str {
    match system {
        "c" => "C libev",
        "green" => "libev::green",
        "tokio" => "tokio current_thread",
        "hyper" => "hyper (tokio current_thread)",
        "echo_server" => "echo_server example",
        other => other,
    }
}

/// The command that starts `system`'s server for `workload` (the echo
/// server for `idle`).
fn command(workload: &str, system: &str) -> Command {
    let workload = if workload == "idle" { "echo" } else { workload };
    if system == "echo_server" {
        let mut c = Command::new(echo_server_example());
        c.arg("127.0.0.1:0");
        c
    } else if system == "gevent" {
        let mut c = Command::new("python3");
        c.args([concat!(env!("CARGO_MANIFEST_DIR"), "/gevent_server.py"), workload, "127.0.0.1:0"]);
        c
    } else {
        let mut c = Command::new(std::env::current_exe().expect("own path"));
        c.args(["--serve", &format!("{system}-{workload}"), "127.0.0.1:0"]);
        c
    }
}

/// Where cargo puts the `echo_server` example of the same profile as this
/// binary: `examples/` next to it.
fn echo_server_example() -> std::path::PathBuf {
    std::env::current_exe().expect("own path").with_file_name("examples").join("echo_server")
}

/// Raises this process's open-file limits (soft, and hard where allowed:
/// root) to at least `want`, for itself and the servers it starts.
/// Returns the soft limit then in force.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur >= want {
        return lim.rlim_cur;
    }
    let wanted = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
    // SAFETY: setrlimit reads the rlimit we pass; raising the hard limit
    // needs CAP_SYS_RESOURCE, and on failure the soft one is raised to
    // the hard one below instead.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } != 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        return lim.rlim_cur;
    }
    want
}

fn emit(workload: &str, system: &str, n: usize, value: f64, unit: &str) {
    println!("result\tnet\t{workload}\t{}\t{n}\t{value:.2}\t{unit}", display(system));
}

/// `net-bench --point ...` (see the module docs).
pub fn main(args: &[String]) {
    let usage = "usage: net-bench --point echo|hello|http SYSTEM CONNS SECONDS | --point idle SYSTEM CONNS";
    let (Some(workload), Some(system), Some(conns)) =
        (args.first(), args.get(1), args.get(2).and_then(|n| n.parse::<usize>().ok()))
    else {
        panic!("{usage}");
    };
    // The server and this client hold `conns` descriptors each, in
    // processes of their own.
    let limit = raise_fd_limit(conns as u64 + 1024);
    assert!(
        limit >= conns as u64 + 256,
        "{conns} connections need more open files than the limit here ({limit}; raising the hard limit needs CAP_SYS_RESOURCE)"
    );
    let server = Server::start(command(workload, system))
        .unwrap_or_else(|| panic!("the {system} {workload} server did not start"));
    if workload == "idle" {
        return idle(&server, system, conns);
    }
    let time = Duration::from_secs_f64(args.get(3).and_then(|t| t.parse().ok()).expect(usage));
    let (unit, ops, cpu) = match workload.as_str() {
        "echo" => {
            let mut cpu0 = Duration::ZERO;
            let ops = load::echo_steady(&server.addr, conns, 64, time, || cpu0 = server.cpu());
            ("rt", ops, server.cpu().saturating_sub(cpu0))
        }
        "hello" => {
            load::hello(&server.addr, conns, time / 5); // warm up
            let cpu0 = server.cpu();
            let ops = load::hello(&server.addr, conns, time);
            ("conn", ops, server.cpu().saturating_sub(cpu0))
        }
        "http" => {
            wrk(&server.addr, conns, Duration::from_secs(1)); // warm up
            let cpu0 = server.cpu();
            let ops = wrk(&server.addr, conns, time);
            ("req", ops, server.cpu().saturating_sub(cpu0))
        }
        _ => panic!("{usage}"),
    };
    assert!(ops > 0, "{system} {workload}: no operation completed");
    // /proc counts CPU time in clock ticks (10 ms): a run too short or a
    // stalled server reads as free, which is no figure.
    if cpu.is_zero() {
        eprintln!(
            "{system} {workload}: no server CPU time measured; its CPU figure is left out (run longer)"
        );
    } else {
        emit(workload, system, conns, cpu.as_nanos() as f64 / ops as f64, &format!("ns/{unit}"));
    }
    emit(&format!("{workload}_rate"), system, conns, ops as f64 / time.as_secs_f64(), &format!("{unit}/s"));
}

/// Runs `wrk` on one thread with `conns` keep-alive connections for
/// `time` (whole seconds, at least one); the requests it completed.
fn wrk(addr: &str, conns: usize, time: Duration) -> u64 {
    let secs = time.as_secs().max(1);
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), &format!("http://{addr}/")])
        .output()
        .expect("wrk runs (bench-all checks that it is installed)");
    let text = String::from_utf8_lossy(&out.stdout);
    // "  123456 requests in 2.00s, 12.34MB read"
    text.lines()
        .find_map(|l| l.trim().split_once(" requests in ").and_then(|(n, _)| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("wrk printed no request count:\n{text}"))
}

/// A connection to `addr` from loopback source address `127.0.0.src`.
fn connect_from(src: u8, addr: std::net::SocketAddrV4) -> std::net::TcpStream {
    let sin = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
        sin_zero: [0; 8],
    };
    let (local, remote) = (sin([127, 0, 0, src], 0), sin(addr.ip().octets(), addr.port()));
    let len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain system calls on a socket made here, with valid
    // sockaddr_in values; the descriptor is checked, then owned by the
    // TcpStream.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let s = std::net::TcpStream::from_raw_fd(fd);
        // The port is picked at connect time, unique for the four-tuple
        // (a plain bind to port 0 would want one free of the earlier
        // runs' TIME_WAIT connections too).
        let one: libc::c_int = 1;
        let opt = (&raw const one).cast();
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            opt,
            size_of::<libc::c_int>() as _,
        );
        let r = libc::bind(fd, (&raw const local).cast(), len);
        assert_eq!(r, 0, "bind 127.0.0.{src}: {}", std::io::Error::last_os_error());
        let r = libc::connect(fd, (&raw const remote).cast(), len);
        assert_eq!(r, 0, "connect {addr}: {}", std::io::Error::last_os_error());
        s
    }
}

/// The `idle` point (see the module docs).
fn idle(server: &Server, system: &str, n: usize) {
    /// Connections per source address: within the ephemeral port range.
    const PER_SOURCE: usize = 20_000;
    let addr: std::net::SocketAddrV4 = server.addr.parse().expect("an IPv4 address");
    // Settle: the server's first connection makes its lazy allocations.
    drop(load::idle(&server.addr, 1));
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss();
    let t0 = Instant::now();
    let conns: Vec<std::net::TcpStream> =
        (0..n).map(|i| connect_from(2 + (i / PER_SOURCE) as u8, addr)).collect();
    for c in &conns {
        (&*c).write_all(b"!").expect("write to an idle connection");
    }
    for c in &conns {
        c.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        let mut b = [0u8; 1];
        (&*c).read_exact(&mut b).expect("the echo of one byte");
    }
    let after = server.rss();
    eprintln!("idle {system} {n}: {:.1} s to open and bounce", t0.elapsed().as_secs_f64());
    emit("idle_rss", system, n, after.saturating_sub(before) as f64 / n as f64, "B/conn");
}
