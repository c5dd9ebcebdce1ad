//! `net-bench`: the green servers against a raw C libev server, tokio and
//! gevent, under one load client.
//!
//! ```text
//! cargo run --release -p libev-bench --bin net-bench [-- --quick] [--no-gevent] [echo|hello|idle|monitor]
//! net-bench [--runs K] [--load-threads K] threads handoff                     # issue 22: servers on 2 threads
//! net-bench --serve c-echo|green-echo|green-echo-monitored|tokio-echo|c-hello|green-hello|tokio-hello ADDR
//! net-bench --serve green-hello-threads2|c-echo-threads2|tokio-echo-mt2|... ADDR  # see servers.rs
//! net-bench --serve may-echo|may-hello|may-http|c-http|green-http|tokio-http|hyper-http ADDR
//! net-bench --point echo|hello|http|idle SYSTEM CONNS [SECONDS]       # one figure for bench-all: points.rs
//! net-bench --load echo|hello ADDR SECONDS [CONNS]                                      # the client alone
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
//! - `threads` (only when named): the servers on 1 and 2 threads, hello
//!   and echo: C libev with one loop per thread on `SO_REUSEPORT`
//!   listeners, `libev::green`'s `ThreadedStreamServer`, tokio's
//!   multi-thread runtime; for hello also green threads sharing one
//!   listener (what libev can do without `SO_REUSEPORT`) and a raw-epoll C
//!   server on `SO_REUSEPORT` against one listener under `EPOLLEXCLUSIVE`;
//!   and `PreforkServer` on 1 and 2 worker processes (issue 22.2; the
//!   server's CPU, sleeps and RSS then sum the parent and its workers).
//!   Each server kind runs `--runs` times (default 5), in turns; each
//!   row shows medians (rate, server CPU per op, cores the server used,
//!   how often its threads went to sleep per 100 ops (voluntary context
//!   switches, from `/proc/PID/task/*/status`), its RSS after the run)
//!   and, for the counted kinds, the smallest thread's (or worker's) share of the
//!   operations. `--load-threads K` splits the load
//!   over K client threads.
//!   Then the green hello server on 1, 2, 8 and 64 threads, once each:
//!   RSS (memory per thread) and the smallest and largest thread's share
//!   against an even one (the kernel's spread at 64 threads).
//! - `handoff` (only when named): the cost of handing work from one hub
//!   to another, `HubHandle::run_callback` ping-pong between two threads'
//!   hubs, per one-way hop; and the time to bind, start and stop a
//!   `ThreadedStreamServer` on 2 and on 64 threads.

mod http_servers;
mod load;
mod may_servers;
mod points;
mod servers;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    stdout: BufReader<Box<dyn std::io::Read + Send>>,
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
        let out: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take()?);
        let mut stdout = BufReader::new(out);
        let mut line = String::new();
        stdout.read_line(&mut line).ok()?;
        let addr = line.trim().strip_prefix("listening on ")?.to_owned();
        Some(Server { child, addr, stdout })
    }

    /// Sends SIGTERM and reads the per-thread counts a threaded server
    /// prints then (`served: N0 N1 ...`); `None` from servers that print
    /// none.
    fn finish(mut self) -> Option<Vec<u64>> {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        // `self` kills the child on drop whatever happens; a server that
        // neither prints nor dies within 5 s is given up on.
        let mut stdout = std::mem::replace(&mut self.stdout, BufReader::new(Box::new(std::io::empty())));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(5)).ok()?;
        line.trim().strip_prefix("served:")?.split_whitespace().map(|n| n.parse().ok()).collect()
    }

    /// The server's process and its children (a prefork server's
    /// workers), from `/proc/PID/task/PID/children`.
    fn pids(&self) -> Vec<u32> {
        let pid = self.child.id();
        let mut pids = vec![pid];
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
            pids.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        pids
    }

    /// CPU time the server has used so far (its workers' included).
    fn cpu(&self) -> Duration {
        let ticks: u64 = self
            .pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map(|stat| {
                // Fields after the parenthesised command name; utime and
                // stime are fields 14 and 15 of the whole line.
                let rest = &stat[stat.rfind(')').expect("stat has (comm)") + 2..];
                let f: Vec<&str> = rest.split_whitespace().collect();
                f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
            })
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }

    /// How many times the server's threads have gone to sleep so far
    /// (their voluntary context switches: a wait in `epoll_wait`, mostly).
    fn sleeps(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| std::fs::read_dir(format!("/proc/{pid}/task")).ok())
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .filter_map(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
            .sum()
    }

    /// The server's resident set size (summed over its workers, so pages
    /// they share count once per process).
    fn rss(&self) -> u64 {
        let kib: u64 = self
            .pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum();
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

/// Runs `f(addr, time)` on `threads` client threads at once; the sum.
fn load_split(threads: usize, addr: &str, time: Duration, f: impl Fn(&str, Duration) -> u64 + Sync) -> u64 {
    let f = &f;
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || f(addr, time))).collect();
        hs.into_iter().map(|h| h.join().expect("load thread")).sum()
    })
}

/// One run of a threaded-workload server kind.
struct Run {
    rate: f64,
    cpu_per_op: f64,
    cores: f64,
    /// Server threads' sleeps (voluntary context switches) per 100 ops.
    sleeps: f64,
    rss_mib: f64,
    /// The smallest and largest thread's share of the operations, if
    /// counted.
    min_share: Option<f64>,
    max_share: Option<f64>,
}

/// A load client: drives the server at an address for a time; the
/// operations completed.
type Load = dyn Fn(&str, Duration) -> u64;

fn run_kind(kind: &str, time: Duration, load: &Load) -> Option<Run> {
    let me = std::env::current_exe().expect("own path");
    let mut cmd = Command::new(me);
    cmd.args(["--serve", kind, "127.0.0.1:0"]);
    let server = Server::start(cmd)?;
    load(&server.addr, time / 5); // warm up
    let cpu0 = server.cpu();
    let sleeps0 = server.sleeps();
    let t0 = Instant::now();
    let ops = load(&server.addr, time);
    let wall = t0.elapsed();
    let cpu = server.cpu().saturating_sub(cpu0);
    let sleeps = server.sleeps().saturating_sub(sleeps0);
    let rss_mib = server.rss() as f64 / (1024.0 * 1024.0);
    let counts = server.finish().filter(|c| c.len() > 1);
    let share = |pick: fn(&[u64]) -> u64| {
        counts.as_ref().map(|c| pick(c) as f64 / c.iter().sum::<u64>().max(1) as f64)
    };
    let min_share = share(|c| *c.iter().min().unwrap());
    let max_share = share(|c| *c.iter().max().unwrap());
    Some(Run {
        rate: ops as f64 / time.as_secs_f64(),
        cpu_per_op: cpu.as_nanos() as f64 / ops.max(1) as f64,
        cores: cpu.as_secs_f64() / wall.as_secs_f64(),
        sleeps: sleeps as f64 * 100.0 / ops.max(1) as f64,
        rss_mib,
        min_share,
        max_share,
    })
}

/// The `threads` workload (see the crate docs).
fn threads_workload(time: Duration, runs: usize, load_threads: usize) {
    let hello_kinds = [
        ("C libev", "c-hello-threads1"),
        ("C libev", "c-hello-threads2"),
        ("libev::green", "green-hello-threads1"),
        ("libev::green", "green-hello-threads2"),
        ("libev::green PreforkServer", "green-hello-procs1"),
        ("libev::green PreforkServer", "green-hello-procs2"),
        ("libev::green, shared listener", "green-hello-shared2"),
        ("tokio multi_thread", "tokio-hello-mt1"),
        ("tokio multi_thread", "tokio-hello-mt2"),
        ("raw epoll, SO_REUSEPORT", "epoll-hello-reuse2"),
        ("raw epoll, EPOLLEXCLUSIVE", "epoll-hello-excl2"),
    ];
    let echo_kinds = [
        ("C libev", "c-echo-threads1"),
        ("C libev", "c-echo-threads2"),
        ("libev::green", "green-echo-threads1"),
        ("libev::green", "green-echo-threads2"),
        ("libev::green PreforkServer", "green-echo-procs1"),
        ("libev::green PreforkServer", "green-echo-procs2"),
        ("tokio multi_thread", "tokio-echo-mt1"),
        ("tokio multi_thread", "tokio-echo-mt2"),
    ];
    let hello = move |addr: &str, t: Duration| {
        load_split(load_threads, addr, t, |a, t| load::hello(a, 32 / load_threads.max(1), t))
    };
    let echo = move |addr: &str, t: Duration| {
        load_split(load_threads, addr, t, |a, t| load::echo(a, 50 / load_threads.max(1), 64, t))
    };
    println!(
        "threads: {runs} runs per server of {:.1} s each, in turns; {load_threads} load client thread(s); medians (min-max)",
        time.as_secs_f64()
    );
    /// Server kinds by display name, and their load.
    type Kinds<'a> = (&'a [(&'a str, &'a str)], &'a Load);
    let sections: [(&str, &str, Kinds); 2] =
        [("hello", "conn", (&hello_kinds, &hello)), ("echo", "rt", (&echo_kinds, &echo))];
    for (workload, unit, (kinds, load)) in sections {
        let mut results: Vec<Vec<Run>> = kinds.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (i, (_, kind)) in kinds.iter().enumerate() {
                match run_kind(kind, time, load) {
                    Some(r) => results[i].push(r),
                    None => println!("{workload} {kind}: did not start"),
                }
            }
        }
        for ((name, kind), rs) in kinds.iter().zip(results) {
            if rs.is_empty() {
                continue;
            }
            let n = kind.trim_start_matches(|c: char| !c.is_ascii_digit());
            let threads = format!("{n} {}", if kind.contains("-procs") { "proc" } else { "thr " });
            let stat = |f: fn(&Run) -> f64| {
                let v: Vec<f64> = rs.iter().map(f).collect();
                let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(l, h), &x| (l.min(x), h.max(x)));
                (median(v), lo, hi)
            };
            let (rate, rlo, rhi) = stat(|r| r.rate);
            let (cpu, clo, chi) = stat(|r| r.cpu_per_op);
            let (cores, _, _) = stat(|r| r.cores);
            let (sleeps, _, _) = stat(|r| r.sleeps);
            let (rss, _, _) = stat(|r| r.rss_mib);
            let spread = if rs.iter().all(|r| r.min_share.is_some()) {
                let (m, lo, hi) = stat(|r| r.min_share.unwrap());
                format!("   smallest share {:.1}% ({:.1}-{:.1})", m * 100.0, lo * 100.0, hi * 100.0)
            } else {
                String::new()
            };
            println!(
                "{workload:<5} {name:<30} {threads} {rate:>8.0} {unit}/s ({rlo:.0}-{rhi:.0})   CPU {cpu:>6.0} ns/{unit} ({clo:.0}-{chi:.0})   {cores:.2} cores   {sleeps:>5.1} sleeps/100 {unit}   RSS {rss:.1} MiB{spread}"
            );
        }
    }
}

/// The `threads` workload's last part: `ThreadedStreamServer` (hello) on
/// 1 to 64 threads, for memory per thread and the spread at 64.
fn thread_sweep(time: Duration) {
    for n in [1, 2, 8, 64] {
        let Some(r) = run_kind(&format!("green-hello-threads{n}"), time, &|a, t| load::hello(a, 32, t))
        else {
            println!("sweep {n} threads: did not start");
            continue;
        };
        let even = |s: Option<f64>| s.map_or("-".to_owned(), |s| format!("{:.2}", s * n as f64));
        println!(
            "sweep libev::green hello {n:>2} thr {:>8.0} conn/s   CPU {:>6.0} ns/conn   {:>5.1} sleeps/100 conn   RSS {:>5.1} MiB   smallest/largest thread vs an even share: {} / {}",
            r.rate,
            r.cpu_per_op,
            r.sleeps,
            r.rss_mib,
            even(r.min_share),
            even(r.max_share)
        );
    }
}

/// User plus system CPU time of this process (every thread).
fn process_cpu() -> Duration {
    // SAFETY: rusage is plain old data, filled by getrusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Start and stop of a `ThreadedStreamServer` on `n` threads, in process.
fn start_stop(n: usize) {
    use libev::green::server::{ThreadedStreamServer, Threads};
    let t0 = Instant::now();
    let server = ThreadedStreamServer::bind("127.0.0.1:0", Threads::Count(n), || |_, _| ()).expect("bind");
    let bound = t0.elapsed();
    server.start().expect("start");
    let started = t0.elapsed() - bound;
    let t1 = Instant::now();
    server.stop(Duration::from_secs(1));
    println!(
        "startstop ThreadedStreamServer on {n} threads: bind {:.2} ms, start {:.2} ms, stop (and join) {:.2} ms",
        bound.as_secs_f64() * 1e3,
        started.as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
}

/// The `handoff` workload (see the crate docs).
fn handoff(hops: u32) {
    use libev::green;
    let (tx, rx) = std::sync::mpsc::channel();
    let other = std::thread::spawn(move || {
        let (done_tx, done_rx) = green::oneshot::<()>();
        tx.send((green::hub_handle(), done_tx)).expect("send");
        // Keeps this hub running (taking the callbacks) until told.
        let _ = done_rx.recv();
    });
    let (there, done) = rx.recv().expect("handle");
    let round_trip = || {
        let (back, arrived) = green::oneshot::<()>();
        there.run_callback(move || {
            back.send(());
        });
        arrived.recv().expect("answer");
    };
    for _ in 0..hops / 10 {
        round_trip(); // warm up
    }
    let cpu0 = process_cpu();
    let t0 = Instant::now();
    for _ in 0..hops / 2 {
        round_trip();
    }
    let per_hop = t0.elapsed() / hops;
    let cpu_per_hop = (process_cpu() - cpu0) / hops;
    done.send(());
    other.join().expect("other hub");
    println!(
        "handoff HubHandle::run_callback between two threads' hubs: {:.1} us per one-way hop, CPU {:.1} us per hop (both threads; {hops} hops)",
        per_hop.as_secs_f64() * 1e6,
        cpu_per_hop.as_secs_f64() * 1e6
    );
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
    // One measurement for bench-all: see points.rs.
    if args.first().map(String::as_str) == Some("--point") {
        return points::main(&args[1..]);
    }
    // For profiling one server: `net-bench --load echo|hello ADDR SECONDS [CONNS]`.
    if args.first().map(String::as_str) == Some("--load") {
        let (kind, addr) = (&args[1], &args[2]);
        let time = Duration::from_secs_f64(args[3].parse().expect("seconds"));
        let conns = |default| args.get(4).map_or(default, |n| n.parse().expect("connections"));
        let ops = if kind == "echo" {
            load::echo(addr, conns(50), 64, time)
        } else {
            load::hello(addr, conns(32), time)
        };
        println!("{kind}: {:.0} ops/s", ops as f64 / time.as_secs_f64());
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str, default: usize| -> usize {
        args.iter().position(|a| a == flag).map_or(default, |i| args[i + 1].parse().expect("a number"))
    };
    let runs = value("--runs", 5);
    let load_threads = value("--load-threads", 1);
    let only: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            !a.starts_with("--") && (*i == 0 || !["--runs", "--load-threads"].contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a.as_str())
        .collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);
    let named = |name: &str| only.contains(&name);
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
    if named("threads") {
        threads_workload(time, runs, load_threads);
        thread_sweep(time);
    }
    if named("handoff") {
        handoff(if quick { 2_000 } else { 40_000 });
        for n in [2, 64] {
            start_stop(n);
        }
    }
}
