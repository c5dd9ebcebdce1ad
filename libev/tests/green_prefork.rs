//! `PreforkServer` (issue 22.2): worker processes under a supervising
//! parent. gevent has no prefork server of its own (gunicorn's gevent
//! worker is the analogue, and its tests exercise gunicorn's arbiter, not
//! gevent), so these cases come from the issue.
//!
//! Forking is sound only in a single-threaded process, which the libtest
//! harness is not; so this binary has no harness (`harness = false`):
//! its `main` runs each case, and each case runs the server in a child
//! process, this binary again with `PREFORK_SERVER=KIND` set, whose `main`
//! serves before any thread exists.

use libev::green::net::TcpStream as GreenStream;
use libev::green::server::{PreforkServer, Processes};
use libev::green::{self, net::Shutdown};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// ---- the server, in the child process ----

/// Each connection: `pid N` (the worker's), then, if the client sends
/// `slow`, `done` half a second later.
fn greet(mut s: GreenStream) {
    let _ = writeln!(s, "pid {}", std::process::id());
    let mut line = String::new();
    let mut r = BufReader::new(&s);
    if r.read_line(&mut line).is_ok() && line.trim() == "slow" {
        green::sleep(Duration::from_millis(500));
        let _ = (&s).write_all(b"done\n");
    }
    let _ = s.shutdown(Shutdown::Write);
}

fn serve(kind: &str) -> ExitCode {
    let server = match kind {
        "hello" => PreforkServer::bind("127.0.0.1:0", Processes::Count(2), || |s, _| greet(s)),
        // Left so, the kernel would reap the workers unseen.
        "sigchld-ignored" => {
            // SAFETY: sets a disposition; no handler code is involved.
            unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
            PreforkServer::bind("127.0.0.1:0", Processes::Count(2), || |s, _| greet(s))
        }
        // Every worker dies as it starts (one line each, no backtrace).
        "crash" => {
            std::panic::set_hook(Box::new(|info| eprintln!("worker panicked: {info}")));
            PreforkServer::bind("127.0.0.1:0", Processes::Count(2), || -> fn(GreenStream, _) {
                panic!("this worker cannot start")
            })
        }
        _ => panic!("unknown server kind {kind}"),
    };
    let server = server
        .expect("bind")
        .graceful_timeout(Duration::from_secs(5))
        .restart_limit(3, Duration::from_secs(60));
    println!("listening on {}", server.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    let r = server.serve_forever();
    println!("served {:?} restarts {}", server.connections_served(), server.restarts());
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("serve_forever: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---- the cases, in the test process ----

/// A server process: its stdout lines and stderr lines arrive on channels.
struct Server {
    child: Child,
    addr: String,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Workers end on their parent's death (PR_SET_PDEATHSIG).
    }
}

fn lines(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

impl Server {
    fn start(kind: &str) -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("PREFORK_SERVER", kind)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let first = stdout.recv_timeout(Duration::from_secs(30)).expect("the server's first line");
        let addr =
            first.strip_prefix("listening on ").unwrap_or_else(|| panic!("first line {first:?}")).to_owned();
        Server { child, addr, stdout, stderr }
    }

    /// The next stderr line containing `what` (within 30 s).
    fn stderr_line(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                self.stderr.recv_timeout(left).unwrap_or_else(|_| panic!("no stderr line with {what:?}"));
            eprintln!("    server: {line}");
            if line.contains(what) {
                return line;
            }
        }
    }

    /// Pids of the next `n` workers reported started.
    fn started(&self, n: usize) -> Vec<u32> {
        (0..n)
            .map(|_| {
                let line = self.stderr_line("started (pid ");
                let pid = line.rsplit("(pid ").next().unwrap().trim_end_matches(')');
                pid.parse().unwrap()
            })
            .collect()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0);
    }

    /// Waits (at most `limit`) for the parent's exit.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The `served [a, b] restarts r` line the server prints at its end.
    fn served(&self) -> (Vec<u64>, u64) {
        let line = self.stdout.recv_timeout(Duration::from_secs(5)).expect("the served line");
        let (counts, restarts) = line.strip_prefix("served [").unwrap().split_once("] restarts ").unwrap();
        (counts.split(", ").map(|n| n.parse().unwrap()).collect(), restarts.parse().unwrap())
    }
}

/// One connection: the pid of the worker that served it.
fn fetch_pid(addr: &str) -> u32 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.trim().strip_prefix("pid ").unwrap_or_else(|| panic!("reply {out:?}")).parse().unwrap()
}

/// `clients` threads each making `rounds` connections; the pids that
/// served them.
fn fetch_many(addr: &str, clients: usize, rounds: usize) -> Vec<u32> {
    let hs: Vec<_> = (0..clients)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || (0..rounds).map(|_| fetch_pid(&addr)).collect::<Vec<_>>())
        })
        .collect();
    hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
}

fn pid_alive(pid: u32) -> bool {
    // Zombies count as gone: they have ended.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

fn two_workers_answer_every_client_and_report_the_spread() {
    let mut server = Server::start("hello");
    let workers: BTreeSet<u32> = server.started(2).into_iter().collect();
    assert_eq!(workers.len(), 2);
    let pids = fetch_many(&server.addr, 8, 25);
    assert_eq!(pids.len(), 200);
    assert!(pids.iter().all(|p| workers.contains(p)), "served by {pids:?}, workers {workers:?}");
    server.signal(libc::SIGTERM);
    assert!(server.wait(Duration::from_secs(20)).success());
    let (counts, restarts) = server.served();
    assert_eq!(counts.iter().sum::<u64>(), 200, "{counts:?}");
    assert_eq!(restarts, 0);
    for w in &workers {
        assert!(!pid_alive(*w), "worker {w} outlived the server");
    }
    // The spread is reported, not bounded: the benchmark measures it.
    eprintln!("    spread over 2 workers: {counts:?}");
}

fn a_killed_worker_is_replaced_and_service_goes_on() {
    let mut server = Server::start("hello");
    let workers = server.started(2);
    // SAFETY: kill(2) on a worker of our child.
    assert_eq!(unsafe { libc::kill(workers[0] as i32, libc::SIGKILL) }, 0);
    let exited = server.stderr_line(&format!("(pid {}) ended", workers[0]));
    assert!(exited.contains("SIGKILL"), "{exited}");
    let replacement = server.started(1)[0];
    assert!(!workers.contains(&replacement));
    let now: BTreeSet<u32> = [workers[1], replacement].into();
    let pids = fetch_many(&server.addr, 4, 25);
    assert_eq!(pids.len(), 100);
    assert!(pids.iter().all(|p| now.contains(p)), "served by {pids:?}, workers {now:?}");
    server.signal(libc::SIGINT);
    assert!(server.wait(Duration::from_secs(20)).success());
    let (counts, restarts) = server.served();
    assert_eq!(restarts, 1);
    assert_eq!(counts.iter().sum::<u64>(), 100);
}

fn a_parent_that_ignores_sigchld_still_sees_a_worker_die() {
    let mut server = Server::start("sigchld-ignored");
    let workers = server.started(2);
    // SAFETY: kill(2) on a worker of our child.
    assert_eq!(unsafe { libc::kill(workers[1] as i32, libc::SIGKILL) }, 0);
    let exited = server.stderr_line(&format!("(pid {}) ended", workers[1]));
    assert!(exited.contains("SIGKILL"), "{exited}");
    let replacement = server.started(1)[0];
    assert!(!workers.contains(&replacement));
    assert_eq!(fetch_many(&server.addr, 2, 10).len(), 20);
    server.signal(libc::SIGTERM);
    assert!(server.wait(Duration::from_secs(20)).success());
    assert_eq!(server.served().1, 1);
}

fn sigterm_lets_a_connection_in_flight_finish() {
    let mut server = Server::start("hello");
    let workers = server.started(2);
    let mut c = TcpStream::connect(&server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("pid "), "{line:?}");
    c.write_all(b"slow\n").unwrap();
    let t0 = Instant::now();
    // The handler is in its half-second sleep.
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGTERM);
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "done\n", "the connection in flight completes");
    let status = server.wait(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "well within the 5 s grace: {:?}", t0.elapsed());
    // Every worker ended by itself, with status 0: none was killed.
    for _ in 0..2 {
        let l = server.stderr_line(") ended: ");
        assert!(l.ends_with("exit status: 0"), "{l}");
    }
    for w in workers {
        assert!(!pid_alive(w));
    }
    // And the port is closed.
    assert!(TcpStream::connect(&server.addr).is_err());
}

fn a_worker_that_always_crashes_is_not_restarted_for_ever() {
    let mut server = Server::start("crash");
    let t0 = Instant::now();
    let status = server.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "serve_forever fails");
    server.stderr_line("giving up");
    let line = server.stderr_line("serve_forever: ");
    assert!(line.contains("after 3 restarts within 60s; gave up"), "{line}");
    let (_, restarts) = server.served();
    assert_eq!(restarts, 3, "the limit: 3 restarts, then the next death gives up");
    // Not a tight loop for long: the whole thing took a moment.
    eprintln!("    gave up after {:?}", t0.elapsed());
}

fn main() -> ExitCode {
    if let Ok(kind) = std::env::var("PREFORK_SERVER") {
        return serve(&kind);
    }
    let cases: [(&str, fn()); 5] = [
        (
            "two_workers_answer_every_client_and_report_the_spread",
            two_workers_answer_every_client_and_report_the_spread,
        ),
        ("a_killed_worker_is_replaced_and_service_goes_on", a_killed_worker_is_replaced_and_service_goes_on),
        (
            "a_parent_that_ignores_sigchld_still_sees_a_worker_die",
            a_parent_that_ignores_sigchld_still_sees_a_worker_die,
        ),
        ("sigterm_lets_a_connection_in_flight_finish", sigterm_lets_a_connection_in_flight_finish),
        (
            "a_worker_that_always_crashes_is_not_restarted_for_ever",
            a_worker_that_always_crashes_is_not_restarted_for_ever,
        ),
    ];
    // libtest's command line, as far as it concerns this harness:
    // positional arguments filter by name, `--skip NAME` leaves out the
    // tests whose name contains NAME, and the other options (`--test-threads
    // 1`, `--nocapture`) change nothing here (the cases run one at a time).
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--skip" => skips.extend(args.next()),
            "--test-threads" | "--format" | "--color" | "--logfile" => {
                args.next();
            }
            _ if a.starts_with("--skip=") => skips.push(a["--skip=".len()..].to_owned()),
            _ if a.starts_with('-') => {}
            _ => filters.push(a),
        }
    }
    let mut failed = 0;
    let mut ran = 0;
    for (name, case) in cases {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if skips.iter().any(|s| name.contains(s.as_str())) {
            continue;
        }
        ran += 1;
        eprintln!("test {name} ...");
        match catch_unwind(AssertUnwindSafe(case)) {
            Ok(()) => eprintln!("test {name} ... ok"),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    // libtest's summary line, which the CI scripts count.
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    println!("test result: {verdict}. {} passed; {failed} failed; 0 ignored; 0 measured", ran - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
