//! `bench-all`: every workload of the three benchmark binaries side by
//! side with the peers a user would pick instead, repeated with the
//! systems alternated, then `docs/benchmarks.md`'s tables and charts.
//!
//! ```text
//! cargo run --release -p libev-bench --bin bench-all [-- --quick] [--reps K] [--out DIR] [--no-install] [loop|green|net...]
//! bench-all --from docs/bench-results.tsv [--out DIR]     # the page again from saved figures
//! ```
//!
//! Naming areas (`bench-all loop`) measures only those; the other areas'
//! figures are kept from the `bench-results.tsv` in `--out`, and the page
//! says which run each area comes from.
//!
//! It runs the parts as child processes (`libev-bench --tsv`,
//! `green-bench --tsv`, `net-bench --point`; each prints `result` lines),
//! each measurement `--reps` times (default 5), looping over the systems
//! inside each repetition so that they alternate. It writes
//! `bench-results.tsv` (every figure of every run), the `*.svg` charts,
//! and the generated part of `benchmarks.md` (between its
//! `bench-all:begin` and `bench-all:end` markers; the text around them is
//! kept) into `--out` (default `docs/`, or a scratch directory under the
//! system's temporary directory with `--quick`).
//!
//! - `loop`: the `libev` crate against C libev (`libev-bench`): timer
//!   operation cost at 1 000 to 1 000 000 timers for `Vec<Timer>` (stop,
//!   set and start, and `restart`), `TimerArray` and C's pointer array
//!   against C's array, both interleaved and one side at a time; the same
//!   for io watchers changing their events (`io_set`: `Vec<Io>` and C's
//!   pointer array against C's array) at 1 000 and 10 000 fds; `restart` and the `libev-sys` control
//!   at 100 000; the idle watcher and the pipe ring.
//! - `green`: `libev::green` against `may` (one worker thread) and gevent:
//!   yield, spawn + join, queue ping-pong; parked greenlets (time and RSS
//!   per greenlet) at 1 000 to 1 000 000 (`may` stops at 10 000: each
//!   coroutine stack is its own mapping, and `vm.max_map_count` is 65 530;
//!   gevent at 100 000: it needs 8 KiB and 70 µs each).
//! - `net`: C libev, `libev::green`, tokio current_thread, `may` and
//!   gevent: server CPU per echo round trip at 1 to 10 000 busy
//!   connections; per hello connection at 32, 256 and 1 024 clients; per
//!   HTTP keep-alive request (`wrk`, 50 connections; hyper on tokio and
//!   gevent's `pywsgi` too); server RSS per idle connection at 1 000 to
//!   100 000, for the shipped `echo_server` example too.
//!
//! gevent and `wrk` are installed when missing (`pip install gevent`,
//! `apt-get install wrk`), except with `--quick` or `--no-install`; a peer
//! that is still missing is skipped, and the page says so. `--quick`
//! (small sizes, one repetition, short runs) takes under two minutes and
//! only proves that the suite builds and runs: timings on a shared machine
//! are noise, so it checks none.

mod charts;
mod report;
mod run;

use report::{Group, num, size};
use run::Row;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: bench-all [--quick] [--reps K] [--out DIR] [--no-install] [loop|green|net...]\n\
                     \x20      bench-all --from RESULTS.tsv [--out DIR]";

/// The command that made the committed page.
const COMMAND: &str = "cargo run --release -p libev-bench --bin bench-all";

/// Markers of the generated part of the page.
const BEGIN: &str = "<!-- bench-all:begin: generated, edits between the markers are overwritten -->";
const END: &str = "<!-- bench-all:end -->";

/// The sizes of one kind of run.
struct Sizes {
    reps: u32,
    timers: &'static [u64],
    /// io watchers (one eventfd each) of `io_set`.
    io_fds: &'static [u64],
    /// Timer or io operations per measurement of a workload whose sides
    /// take turns, by kind (io or not) and size.
    turn_ops: fn(bool, u64) -> u64,
    parked_green: &'static [u64],
    parked_may: &'static [u64],
    parked_gevent: &'static [u64],
    echo_conns: &'static [u64],
    hello_clients: &'static [u64],
    idle_conns: &'static [u64],
    /// Seconds per server measurement (after a warm-up).
    seconds: f64,
    http_seconds: u64,
}

/// Operations per measurement in a full run: enough that each side's timed
/// window lasts about a quarter of a second or more here (timers take 45 to
/// 70 ns per operation up to 10 000, io operations 15 to 35 ns). A fixed
/// million made windows of 15 to 70 ms, a few scheduler ticks, where one
/// preemption is an error of a third.
fn full_turn_ops(io: bool, n: u64) -> u64 {
    match (io, n) {
        (true, _) => 10_000_000,
        (false, ..=10_000) => 5_000_000,
        (false, ..=100_000) => 2_000_000,
        (false, _) => 1_000_000,
    }
}

const FULL: Sizes = Sizes {
    reps: 5,
    timers: &[1_000, 10_000, 100_000, 1_000_000],
    io_fds: &[1_000, 10_000],
    turn_ops: full_turn_ops,
    parked_green: &[1_000, 10_000, 100_000, 1_000_000],
    parked_may: &[1_000, 10_000],
    parked_gevent: &[1_000, 10_000, 100_000],
    echo_conns: &[1, 10, 100, 1_000, 5_000, 10_000],
    hello_clients: &[32, 256, 1_024],
    idle_conns: &[1_000, 10_000, 100_000, 1_000_000],
    seconds: 1.0,
    http_seconds: 2,
};

const QUICK: Sizes = Sizes {
    reps: 1,
    timers: &[1_000, 10_000],
    io_fds: &[1_000],
    turn_ops: |_, _| 20_000,
    parked_green: &[1_000],
    parked_may: &[1_000],
    parked_gevent: &[1_000],
    echo_conns: &[10, 100],
    hello_clients: &[32],
    idle_conns: &[1_000],
    seconds: 0.2,
    http_seconds: 1,
};

/// Longest any one part may take before it is stopped and reported.
const PART_LIMIT: Duration = Duration::from_secs(600);

/// What a run collects.
#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    /// Peers or parts skipped or failed, and why.
    notes: Vec<String>,
    /// `key: value` lines about the run (machine, date, load, command).
    meta: Vec<(String, String)>,
}

impl Results {
    fn part(&mut self, cmd: Command, rep: u32) {
        let t0 = Instant::now();
        let what = format!("{cmd:?}");
        match run::run(cmd, rep, PART_LIMIT) {
            Ok(rows) => {
                eprintln!("bench-all: {:>5.1} s  {what}", t0.elapsed().as_secs_f64());
                self.rows.extend(rows);
            }
            Err(e) => {
                eprintln!("bench-all: FAILED {e}");
                if !self.notes.contains(&e) {
                    self.notes.push(format!("failed: {e}"));
                }
            }
        }
    }
}

impl Results {
    /// Where this run's figures for `area` came from, for the page.
    fn area_source(&self, area: &str) -> Option<&str> {
        let key = format!("area {area}");
        self.meta.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    /// Takes over an earlier run's figures for the areas this run did not
    /// measure, with their provenance and notes, so that measuring one
    /// area again (`bench-all loop`) leaves the page whole.
    fn keep_earlier(&mut self, mut earlier: Results, measured: impl Fn(&str) -> bool) {
        let mut kept_areas: Vec<String> = Vec::new();
        for row in std::mem::take(&mut earlier.rows) {
            if measured(&row.area) {
                continue;
            }
            if !kept_areas.contains(&row.area) {
                kept_areas.push(row.area.clone());
            }
            self.rows.push(row);
        }
        for area in kept_areas {
            // A file written before areas had their own line: its run's.
            let source = earlier.area_source(&area).map_or_else(|| run_source(&earlier), str::to_owned);
            self.meta.push((format!("area {area}"), source));
        }
        for note in std::mem::take(&mut earlier.notes) {
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
    }
}

fn loop_area(r: &mut Results, s: &Sizes) {
    // Each io watcher holds one descriptor, and the part needs a few of
    // its own (it counts 32; bench-all is safe with more); it raises its
    // own soft limit.
    let hard = fd_hard_limit();
    let io_fds: Vec<u64> = s
        .io_fds
        .iter()
        .copied()
        .filter(|&n| {
            let fits = n + 64 <= hard;
            if !fits {
                r.notes.push(format!(
                    "io_set at {} fds: needs more open files per process than the hard limit here ({hard})",
                    size(n)
                ));
            }
            fits
        })
        .collect();
    // The workloads whose sides take turns: the option that sizes them,
    // the sizes, the workloads.
    let turns: [(&str, &[u64], &[&str]); 2] = [
        ("--timers", s.timers, &["timers", "timers_restart", "timer_array", "timer_ptrs"]),
        ("--fds", &io_fds, &["io_set", "io_ptrs"]),
    ];
    for rep in 0..s.reps {
        for (option, sizes, workloads) in turns {
            for &n in sizes {
                for alone in [false, true] {
                    let mut c = run::part("libev-bench");
                    c.args([
                        "--tsv",
                        "--reps",
                        "1",
                        option,
                        &n.to_string(),
                        "--ops",
                        &(s.turn_ops)(option == "--fds", n).to_string(),
                    ]);
                    if alone {
                        // Odd repetitions put C second.
                        c.arg("--alone");
                        if rep % 2 == 1 {
                            c.arg("--rust-first");
                        }
                    }
                    c.args(workloads);
                    r.part(c, rep);
                }
            }
        }
        let mut c = run::part("libev-bench");
        let ops = (s.turn_ops)(false, 100_000).to_string();
        c.args(["--tsv", "--reps", "1", "--ops", &ops, "timer_restart", "timer_sys"]);
        r.part(c, rep);
        let mut c = run::part("libev-bench");
        c.args(["--tsv", "--reps", "1", "idle", "pipe_ring"]);
        if s.reps == 1 {
            c.arg("--quick");
        }
        r.part(c, rep);
    }
}

fn green_area(r: &mut Results, s: &Sizes, gevent: bool, quick: bool) {
    let peers: &[&str] = if gevent { &["libev::green", "may", "gevent"] } else { &["libev::green", "may"] };
    let bench = |peer: &str| {
        let mut c = run::part("green-bench");
        c.arg("--tsv");
        if quick {
            c.arg("--quick");
        }
        if peer != "libev::green" {
            c.args(["--peer", peer]);
        }
        c
    };
    for rep in 0..s.reps {
        for peer in peers {
            let mut c = bench(peer);
            c.args(["yield", "spawn_join", "queue"]);
            r.part(c, rep);
        }
        for (peer, sizes) in
            [("libev::green", s.parked_green), ("may", s.parked_may), ("gevent", s.parked_gevent)]
        {
            if !peers.contains(&peer) {
                continue;
            }
            for n in sizes {
                let mut c = bench(peer);
                c.args(["--parked", &n.to_string(), "parked"]);
                r.part(c, rep);
            }
        }
    }
}

fn net_area(r: &mut Results, s: &Sizes, gevent: bool, wrk: bool) {
    let mut systems = vec!["c", "green", "tokio", "may"];
    if gevent {
        systems.push("gevent");
    }
    let point = |args: &[String]| {
        let mut c = run::part("net-bench");
        c.arg("--point").args(args);
        c
    };
    let secs = format!("{}", s.seconds);
    for rep in 0..s.reps {
        for &n in s.echo_conns {
            for sys in &systems {
                r.part(point(&["echo".into(), sys.to_string(), n.to_string(), secs.clone()]), rep);
            }
        }
        for &n in s.hello_clients {
            for sys in &systems {
                r.part(point(&["hello".into(), sys.to_string(), n.to_string(), secs.clone()]), rep);
            }
        }
        if wrk {
            let mut http = systems.clone();
            http.insert(3, "hyper");
            for sys in http {
                let args = ["http".into(), sys.to_string(), "50".into(), s.http_seconds.to_string()];
                r.part(point(&args), rep);
            }
        }
    }
    // Memory varies little from run to run: one run per size, as many
    // connections as the open-file limit allows (server and client each
    // hold one descriptor per connection).
    let hard = fd_hard_limit();
    let mut idle = systems.clone();
    if run::echo_server_example().is_some() {
        idle.push("echo_server");
    } else {
        r.notes.push("idle_rss of the echo_server example: not built next to the parts (`cargo build --release --example echo_server`)".into());
    }
    for &n in s.idle_conns {
        if n + 1024 > hard {
            r.notes.push(format!(
                "idle_rss at {} connections: needs more open files per process than the hard limit here ({hard})",
                size(n)
            ));
            continue;
        }
        for sys in &idle {
            r.part(point(&["idle".into(), sys.to_string(), n.to_string()]), 0);
        }
    }
}

/// The hard `RLIMIT_NOFILE`: what a part can raise its own limit to
/// without `CAP_SYS_RESOURCE` (with it, the kernel's `nr_open`).
fn fd_hard_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the rlimit we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    // Try raising it (root with CAP_SYS_RESOURCE); the parts inherit it.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|n| n.trim().parse().ok());
    if let Some(nr_open) = nr_open.filter(|&n: &u64| n > lim.rlim_max) {
        let raised = libc::rlimit { rlim_cur: lim.rlim_cur, rlim_max: nr_open };
        // SAFETY: setrlimit reads the rlimit we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return nr_open;
        }
    }
    lim.rlim_max
}

/// The first line `cmd` prints, if it runs.
fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok().filter(|o| o.status.success())?;
    String::from_utf8(out.stdout).ok()?.lines().next().map(str::to_owned)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok())
        })
        .map_or(String::new(), |kib| format!(", {:.0} GiB", kib as f64 / 1024.0 / 1024.0));
    format!("{cpu}, {cores} cores{mem}, Linux {}", kernel.trim())
}

/// The curve of `workload` in `area`, one series per system.
fn series(groups: &[Group], area: &str, workload: &str) -> Vec<charts::Series> {
    let mut out: Vec<charts::Series> = Vec::new();
    for ((a, w, n), stats) in groups {
        if a != area || w != workload {
            continue;
        }
        for s in stats {
            match out.iter_mut().find(|(name, _)| *name == s.system) {
                Some((_, p)) => p.push((*n as f64, s.median)),
                None => out.push((s.system.clone(), vec![(*n as f64, s.median)])),
            }
        }
    }
    out
}

/// The timer curves of one measuring mode: C, its pointer array from
/// `timer_ptrs` and its `ev_timer_again` from `timers_restart`, the Rust
/// sides from `timers`, `timers_restart` and `timer_array`.
fn timer_series(groups: &[Group], mode: &str) -> Vec<charts::Series> {
    let mut out = Vec::new();
    for (workload, system, label) in [
        ("timers", "C", "C"),
        ("timer_ptrs", "C pointer array", "C pointer array"),
        ("timers_restart", "C", "C, ev_timer_again"),
        ("timers", "Vec<Timer>", "Vec<Timer>"),
        ("timers_restart", "Vec<Timer>::restart", "Vec<Timer>::restart"),
        ("timer_array", "TimerArray", "TimerArray"),
    ] {
        let s = series(groups, "loop", &format!("{workload} ({mode})"));
        if let Some((_, points)) = s.into_iter().find(|(name, _)| name == system) {
            out.push((label.to_owned(), points));
        }
    }
    out
}

/// Draws every chart into `out`; the file names, with their captions.
fn draw(groups: &[Group], out: &Path) -> Vec<(String, String)> {
    let mut drawn = Vec::new();
    let mut chart = |file: &str, caption: &str, r: Result<(), Box<dyn std::error::Error>>, any: bool| match r
    {
        Ok(()) if any => drawn.push((file.to_owned(), caption.to_owned())),
        Ok(()) => {}
        Err(e) => eprintln!("bench-all: chart {file}: {e}"),
    };
    // File, title, x axis, y axis, series.
    let curves: [(&str, &str, &str, &str, Vec<charts::Series>); 8] = [
        (
            "timers_alone.svg",
            "Timer operation cost (one side at a time)",
            "timers",
            "ns per timer move",
            timer_series(groups, "one side at a time"),
        ),
        (
            "timers_interleaved.svg",
            "Timer operation cost (interleaved)",
            "timers",
            "ns per timer move",
            timer_series(groups, "interleaved"),
        ),
        (
            "parked_rss.svg",
            "RSS per parked greenlet",
            "parked greenlets",
            "bytes per greenlet",
            series(groups, "green", "parked_rss"),
        ),
        (
            "echo_cpu.svg",
            "Echo: server CPU per round trip, every connection busy",
            "connections",
            "server CPU ns per round trip",
            series(groups, "net", "echo"),
        ),
        (
            "echo_rate.svg",
            "Echo: round trips per second (one load client)",
            "connections",
            "round trips per second",
            series(groups, "net", "echo_rate"),
        ),
        (
            "hello_cpu.svg",
            "Hello: server CPU per connection",
            "concurrent clients",
            "server CPU ns per connection",
            series(groups, "net", "hello"),
        ),
        (
            "hello_rate.svg",
            "Hello: connections per second (one load client)",
            "concurrent clients",
            "connections per second",
            series(groups, "net", "hello_rate"),
        ),
        (
            "idle_rss.svg",
            "RSS per idle connection",
            "idle connections",
            "bytes per connection",
            series(groups, "net", "idle_rss"),
        ),
    ];
    for (file, title, x, y, s) in &curves {
        let any = !s.is_empty();
        chart(file, title, charts::curve(&out.join(file), title, x, y, s), any);
    }
    for area in AREAS {
        let bars: Vec<(String, f64)> = groups
            .iter()
            .filter(|((a, w, _), _)| a == area && !w.ends_with("_rate"))
            .flat_map(|((_, w, n), stats)| {
                stats
                    .iter()
                    .filter(|s| s.system != report::reference(area))
                    .filter_map(move |s| s.ratio.map(|r| (format!("{w} {}: {}", size(*n), s.system), r)))
            })
            .collect();
        let file = format!("ratios_{area}.svg");
        let title = format!(
            "Ratio to {} (median over median; above 1: more time or memory)",
            report::reference(area)
        );
        let any = !bars.is_empty();
        chart(&file, &title, charts::ratios(&out.join(&file), &title, "ratio (log scale)", &bars), any);
    }
    drawn
}

/// The areas, in the page's order.
const AREAS: [&str; 3] = ["loop", "green", "net"];

/// A `key: value` line of the run's meta (`?` when missing).
fn meta_of<'a>(res: &'a Results, key: &str) -> &'a str {
    res.meta.iter().find(|(k, _)| k == key).map_or("?", |(_, v)| v.as_str())
}

/// Where figures measured in `res`'s run come from: its date and commit,
/// as the `area` lines of the results file give them.
fn run_source(res: &Results) -> String {
    format!("{} (commit {})", meta_of(res, "date"), meta_of(res, "commit"))
}

/// The generated part of the page.
fn page_block(res: &Results, groups: &[Group], drawn: &[(String, String)]) -> String {
    let meta = |k: &str| meta_of(res, k);
    let mut p = String::new();
    let _ = writeln!(p, "{BEGIN}\n");
    let _ = writeln!(
        p,
        "Generated by `{}` on {} (commit {}).\n\nMachine: {}. Load average (1, 5, 15 min) {} at the start, {} at the end; the machine is shared with other work, so treat differences under about 5% as noise.\n",
        meta("command"),
        meta("date"),
        meta("commit"),
        meta("machine"),
        meta("load at start"),
        meta("load at end"),
    );
    let _ = writeln!(
        p,
        "Each figure is the median of {} runs (`runs` column), the systems alternated within each repetition; min-max is the spread of the runs; the last column is the ratio of medians to the area's reference in the same run (above 1: more time, CPU or memory than the reference). Total time of the run: {}.\n",
        meta("reps"),
        meta("duration"),
    );
    let this_run = run_source(res);
    let kept: Vec<String> = AREAS
        .into_iter()
        .filter_map(|a| {
            res.area_source(a).filter(|src| *src != this_run).map(|src| format!("`{a}` from {src}"))
        })
        .collect();
    if !kept.is_empty() {
        let _ = writeln!(
            p,
            "This run measured some areas only; the others' figures are from earlier runs, kept in `bench-results.tsv`: {}.\n",
            kept.join("; ")
        );
    }
    if !res.notes.is_empty() {
        let _ = writeln!(p, "Notes on these figures:\n");
        for n in &res.notes {
            let _ = writeln!(p, "- {n}");
        }
        p.push('\n');
    }
    let img = |p: &mut String, file: &str| {
        if let Some((f, cap)) = drawn.iter().find(|(f, _)| f == file) {
            let _ = writeln!(p, "![{cap}]({f})\n");
        }
    };
    let _ = writeln!(p, "### Event loop: the `libev` crate against C libev\n");
    let _ = writeln!(
        p,
        "ns per operation; each side times 5 000 000 operations up to 10 000 timers, 2 000 000 at 100 000, 1 000 000 at 1 000 000 and 10 000 000 io operations, so that its window lasts a quarter of a second or more. Timers: N started timers, each operation a stop, set (random delay) and start of a random one (`timers_restart`: the same move as one `Timer::restart`, which is libev's `ev_timer_again` with the new delay as the repeat, and so is its C side: one heap adjustment instead of a removal and an insertion). `interleaved` takes turns of 250 000 operations between the two sides; `one side at a time` makes, times and drops each side alone (judge on this one). `timer_ptrs` is C with each 48-byte `ev_timer` in its own allocation behind an array of pointers: the floor for one handle per timer. `io_set`: N started io watchers, each on its own eventfd, each operation setting a random one's events to read, write or both (`Io::set_events`; C's `ev_io_stop`, `ev_io_modify`, `ev_io_start`) on a loop that never runs, so it measures the watcher operation and libev's queueing of the fd change, not a poll; `io_ptrs` is its pointer-array floor. Judge both on `one side at a time`.\n"
    );
    img(&mut p, "timers_alone.svg");
    img(&mut p, "timers_interleaved.svg");
    report::table(&mut p, groups, "loop", "N");
    let _ = writeln!(p, "### Green threads: `libev::green` against `may` and gevent\n");
    let _ = writeln!(
        p,
        "`yield`: two greenlets yielding in turn (ns per yield); `spawn_join`: spawn and join a no-op greenlet; `queue`: one item bounced over two queues (`may::sync::mpsc` for `may`), ns per round trip; `parked`: N greenlets parked in a long sleep, then killed (ns per greenlet, whole), and the RSS growth per parked greenlet. `may` runs on one worker thread; gevent runs a tenth of the operations.\n"
    );
    img(&mut p, "parked_rss.svg");
    report::table(&mut p, groups, "green", "N");
    let _ = writeln!(p, "### Servers: `libev::green` against C libev, tokio, `may` and gevent\n");
    let _ = writeln!(
        p,
        "Each server is its own process on one thread; the load client is one thread on raw epoll (`wrk -t1` for HTTP). The figure is the server's own CPU time per operation (utime + stime); the rate in brackets depends on the client too. `echo`: N connections, each a 64-byte ping-pong, timed once every connection has had its first round trip; `hello`: N clients in flight, each connect / read to EOF / close; `http`: `wrk` with N keep-alive connections, `Hello, world!` per request (gevent's row is `pywsgi`); `idle_rss`: N connections each parked in `read`, the server's RSS growth per connection.\n"
    );
    img(&mut p, "echo_cpu.svg");
    img(&mut p, "echo_rate.svg");
    img(&mut p, "hello_cpu.svg");
    img(&mut p, "hello_rate.svg");
    img(&mut p, "idle_rss.svg");
    report::table(&mut p, groups, "net", "N");
    let _ = writeln!(p, "### Ratios\n");
    for area in AREAS {
        img(&mut p, &format!("ratios_{area}.svg"));
    }
    let _ = writeln!(p, "### Where this project is slower than the best peer in this run\n");
    let slower = report::slower(groups);
    if slower.is_empty() {
        let _ = writeln!(p, "Nowhere by more than 3%.\n");
    }
    for s in slower {
        let _ = writeln!(
            p,
            "- {} `{}` at {}: {} {} {}, {} {} ({:.2}x)",
            s.area,
            s.workload,
            size(s.n),
            s.ours,
            num(s.ours_median),
            s.unit,
            s.best,
            num(s.best_median),
            s.ours_median / s.best_median
        );
    }
    let _ = writeln!(p, "\n{END}");
    p
}

/// The page around the generated part when there is none yet.
const NEW_PAGE: &str = "# Benchmarks\n\n";

/// Writes the results file, the charts and the page into `out`.
fn write(res: &Results, out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut tsv = String::new();
    for (k, v) in &res.meta {
        let _ = writeln!(tsv, "# {k}: {v}");
    }
    for n in &res.notes {
        let _ = writeln!(tsv, "# note: {n}");
    }
    for r in &res.rows {
        let _ = writeln!(tsv, "{}", r.line());
    }
    std::fs::write(out.join("bench-results.tsv"), tsv)?;
    let groups = report::groups(&res.rows);
    let drawn = draw(&groups, out);
    let page_path = out.join("benchmarks.md");
    let page = std::fs::read_to_string(&page_path).unwrap_or_else(|_| NEW_PAGE.to_owned());
    let block = page_block(res, &groups, &drawn);
    let page = match (page.find(BEGIN), page.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!("{}{}{}", &page[..b], block.trim_end(), &page[e + END.len()..])
        }
        _ => format!("{}\n{block}", page.trim_end()),
    };
    std::fs::write(&page_path, page)
}

/// Reads a results file back: its rows, notes and meta lines.
fn read(path: &Path) -> std::io::Result<Results> {
    let text = std::fs::read_to_string(path)?;
    let mut res = Results::default();
    for line in text.lines() {
        if let Some(note) = line.strip_prefix("# note: ") {
            res.notes.push(note.to_owned());
        } else if let Some((k, v)) = line.strip_prefix("# ").and_then(|l| l.split_once(": ")) {
            res.meta.push((k.to_owned(), v.to_owned()));
        } else if let Some(row) = Row::parse(line, 0) {
            res.rows.push(row);
        }
    }
    Ok(res)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut quick = false;
    let mut install = true;
    let mut reps = None;
    let mut out = None;
    let mut from = None;
    let mut areas = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--no-install" => install = false,
            "--reps" => match it.next().and_then(|k| k.parse::<u32>().ok()) {
                Some(k) if k > 0 => reps = Some(k),
                _ => return usage(),
            },
            "--out" => match it.next() {
                Some(d) => out = Some(PathBuf::from(d)),
                None => return usage(),
            },
            "--from" => match it.next() {
                Some(f) => from = Some(PathBuf::from(f)),
                None => return usage(),
            },
            "loop" | "green" | "net" => areas.push(a.clone()),
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let docs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs"));
    if let Some(from) = from {
        let out = out.unwrap_or(docs);
        return match read(&from).and_then(|res| write(&res, &out)) {
            Ok(()) => {
                println!("bench-all: wrote {}", out.join("benchmarks.md").display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bench-all: {}: {e}", from.display());
                ExitCode::FAILURE
            }
        };
    }
    let out =
        out.unwrap_or_else(|| if quick { std::env::temp_dir().join("libev-bench-quick") } else { docs });
    let sizes = Sizes {
        reps: reps.unwrap_or(if quick { QUICK.reps } else { FULL.reps }),
        ..if quick { QUICK } else { FULL }
    };
    let install = install && !quick;
    let want = |a: &str| areas.is_empty() || areas.iter().any(|x| x == a);

    if let Err(why) = run::ensure_parts() {
        eprintln!("bench-all: {why}");
        return ExitCode::FAILURE;
    }
    let t0 = Instant::now();
    let mut res = Results::default();
    let mut command = COMMAND.to_owned();
    if !args.is_empty() {
        command = format!("{command} -- {}", args.join(" "));
    }
    res.meta.push(("command".into(), command));
    let date = first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])).unwrap_or_default();
    res.meta.push(("date".into(), date));
    let commit =
        first_line(Command::new("git").args(["rev-parse", "--short", "HEAD"])).unwrap_or_else(|| "?".into());
    res.meta.push(("commit".into(), commit));
    res.meta.push(("machine".into(), machine()));
    res.meta.push(("load at start".into(), loadavg()));
    res.meta.push(("reps".into(), sizes.reps.to_string()));

    let gevent = match run::gevent(install) {
        Ok(()) => true,
        Err(why) => {
            let note = format!("gevent: {why}; its rows are left out");
            eprintln!("bench-all: {note}");
            res.notes.push(note);
            false
        }
    };
    let wrk = !want("net")
        || match run::wrk(install) {
            Ok(()) => true,
            Err(why) => {
                let note = format!("HTTP keep-alive: {why}; the workload is left out");
                eprintln!("bench-all: {note}");
                res.notes.push(note);
                false
            }
        };
    if want("loop") {
        loop_area(&mut res, &sizes);
    }
    if want("green") {
        green_area(&mut res, &sizes, gevent, quick);
    }
    if want("net") {
        net_area(&mut res, &sizes, gevent, wrk);
    }
    res.meta.push(("load at end".into(), loadavg()));
    res.meta.push(("duration".into(), format!("{:.0} s", t0.elapsed().as_secs_f64())));
    let this_run = run_source(&res);
    for area in AREAS.into_iter().filter(|a| want(a)) {
        res.meta.push((format!("area {area}"), this_run.clone()));
    }
    // Measuring some areas again keeps the others' figures from the
    // results file it replaces (never with --quick, which writes to a
    // scratch directory).
    if !areas.is_empty() && !quick {
        match read(&out.join("bench-results.tsv")) {
            Ok(earlier) => res.keep_earlier(earlier, want),
            Err(e) => eprintln!("bench-all: no earlier figures for the other areas ({e})"),
        }
    }
    if let Err(e) = write(&res, &out) {
        eprintln!("bench-all: writing {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "bench-all: {} figures from {} systems in {:.0} s; wrote {}",
        res.rows.len(),
        {
            let mut s: Vec<&str> = res.rows.iter().map(|r| r.system.as_str()).collect();
            s.sort_unstable();
            s.dedup();
            s.len()
        },
        t0.elapsed().as_secs_f64(),
        out.join("benchmarks.md").display()
    );
    // A part that failed fails the run (CI proves the suite runs); a
    // missing peer does not.
    if res.notes.iter().any(|n| n.starts_with("failed")) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
