//! `net-bench`: the green servers against a raw C libev server, tokio and
//! gevent, under one load client.
//!
//! ```text
//! cargo run --release -p libev-bench --bin net-bench [-- --quick] [--no-gevent] [echo|hello|idle|monitor]
//! net-bench --serve c-echo|green-echo|green-echo-monitored|tokio-echo|c-hello|green-hello|tokio-hello ADDR
//! net-bench --load echo|hello ADDR SECONDS                                              # the client alone
//! ```
//!
//! Each server runs in its own process (this binary with `--serve KIND
//! ADDR`, or `python3 gevent_server.py` for gevent), on one core's worth
//! of work: one thread, one event loop. The load client here is one
//! thread on raw epoll, so it is not the bottleneck of the slower servers.
//! The figure that compares servers is the server's own CPU time
//! (utime + stime from `/proc/PID/stat`) per operation: it does not depend
//! on how fast the client drives it.
//!
//! - `echo`: 50 connections, each a ping-pong of 64-byte messages.
//! - `hello`: 32 connections in flight, each connect / read to EOF /
//!   close (the hello-world server).
//! - `monitor`: the blocking monitor's cost: the green echo server
//!   without and with `green::monitor` watching its hub, in turns (four
//!   runs each), server CPU per round trip (median of each side).
//! - `idle`: 10,000 connections, each with its green handler blocked in
//!   `read`; the server's RSS growth per connection.

mod load;
mod servers;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd` (which must print `listening on ADDR` first).
    fn start(mut cmd: Command) -> Option<Server> {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().ok()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take()?).read_line(&mut line).ok()?;
        let addr = line.trim().strip_prefix("listening on ")?.to_owned();
        Some(Server { child, addr })
    }

    /// CPU time the server has used so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("server's stat");
        // Fields after the parenthesised command name; utime and stime are
        // fields 14 and 15 of the whole line.
        let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }

    /// The server's resident set size.
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS");
        kib * 1024
    }
}

/// The servers of one workload, in display order.
fn contenders(workload: &str, gevent: bool) -> Vec<(&'static str, Command)> {
    let me = std::env::current_exe().expect("own path");
    let serve = |kind: &str| {
        let mut c = Command::new(&me);
        c.args(["--serve", kind, "127.0.0.1:0"]);
        c
    };
    let mut v = vec![
        ("C libev", serve(&format!("c-{workload}"))),
        ("libev::green", serve(&format!("green-{workload}"))),
        ("tokio (current_thread)", serve(&format!("tokio-{workload}"))),
    ];
    if gevent {
        let mut c = Command::new("python3");
        c.args([concat!(env!("CARGO_MANIFEST_DIR"), "/gevent_server.py"), workload, "127.0.0.1:0"]);
        v.push(("gevent StreamServer", c));
    }
    v
}

fn gevent_installed() -> bool {
    Command::new("python3").args(["-c", "import gevent"]).status().is_ok_and(|s| s.success())
}

/// Runs `load` against each server; prints ops/s and server CPU per op,
/// with the ratio to the first (C) server.
fn compare(workload: &str, unit: &str, gevent: bool, load: impl Fn(&str, Duration) -> u64, time: Duration) {
    let mut base = None;
    for (name, cmd) in contenders(workload, gevent) {
        let Some(server) = Server::start(cmd) else {
            println!("{workload:<6} {name:<24} did not start");
            continue;
        };
        load(&server.addr, time / 5); // warm up: accept queues, pools, caches
        let cpu0 = server.cpu();
        let ops = load(&server.addr, time);
        let cpu = server.cpu().saturating_sub(cpu0);
        let per_op = cpu.as_nanos() as f64 / ops.max(1) as f64;
        let rate = ops as f64 / time.as_secs_f64();
        let base_cpu = *base.get_or_insert(per_op);
        println!(
            "{workload:<6} {name:<24} {rate:>10.0} {unit}/s   server CPU {per_op:>8.0} ns/{unit}   ({:.2}x C)",
            per_op / base_cpu
        );
    }
}

/// Server CPU per echo round trip of one server process of `kind`.
fn echo_cpu_per_rt(kind: &str, time: Duration) -> f64 {
    let me = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(me);
    cmd.args(["--serve", kind, "127.0.0.1:0"]);
    let server = Server::start(cmd).expect("green echo server starts");
    load::echo(&server.addr, 50, 64, time / 5);
    let cpu0 = server.cpu();
    let ops = load::echo(&server.addr, 50, 64, time);
    server.cpu().saturating_sub(cpu0).as_nanos() as f64 / ops.max(1) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `monitor` workload (see the crate docs).
fn monitor_cost(time: Duration) {
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        off.push(echo_cpu_per_rt("green-echo", time));
        on.push(echo_cpu_per_rt("green-echo-monitored", time));
    }
    let (off, on) = (median(off), median(on));
    println!(
        "monitor libev::green echo: server CPU {off:.0} ns/rt unwatched, {on:.0} ns/rt watched: {:+.1}%",
        (on / off - 1.0) * 100.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        let (kind, addr) = (&args[1], &args[2]);
        return servers::serve(kind, addr);
    }
    // For profiling one server: `net-bench --load echo|hello ADDR SECONDS`.
    if args.first().map(String::as_str) == Some("--load") {
        let (kind, addr) = (&args[1], &args[2]);
        let time = Duration::from_secs_f64(args[3].parse().expect("seconds"));
        let ops = if kind == "echo" { load::echo(addr, 50, 64, time) } else { load::hello(addr, 32, time) };
        println!("{kind}: {:.0} ops/s", ops as f64 / time.as_secs_f64());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);
    let gevent = !args.iter().any(|a| a == "--no-gevent") && gevent_installed();
    let time = Duration::from_millis(if quick { 300 } else { 2000 });
    if !gevent {
        println!("(gevent not installed or --no-gevent: its rows are left out)");
    }
    if want("echo") {
        compare("echo", "rt", gevent, |addr, t| load::echo(addr, 50, 64, t), time);
    }
    if want("hello") {
        compare("hello", "conn", gevent, |addr, t| load::hello(addr, 32, t), time);
    }
    if want("monitor") {
        monitor_cost(time);
    }
    if want("idle") {
        let n = if quick { 1000 } else { 10_000 };
        let me = std::env::current_exe().expect("own path");
        let mut cmd = Command::new(me);
        cmd.args(["--serve", "green-echo", "127.0.0.1:0"]);
        let server = Server::start(cmd).expect("green echo server starts");
        let before = server.rss();
        let conns = load::idle(&server.addr, n);
        // Every connection has had one round trip: each handler is now
        // parked in `read`.
        let after = server.rss();
        println!(
            "idle   libev::green             {n} connections parked in read: server RSS {:.1} KiB per connection",
            after.saturating_sub(before) as f64 / 1024.0 / n as f64
        );
        drop(conns);
    }
}
