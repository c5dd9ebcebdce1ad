//! `green-bench`: libev::green's speed and scale, with gevent side by side
//! when `python3 -c "import gevent"` works (`pip install gevent`).
//!
//! ```text
//! cargo run --release -p libev-bench --bin green-bench [-- --quick] [--no-gevent] [--monitor] [WORKLOAD...]
//! ```
//!
//! `--monitor` runs every workload with the blocking monitor watching the
//! hub (`green::monitor`, default threshold).
//!
//! - `yield`: two greenlets calling `yield_now` in turn; time per yield.
//! - `spawn_join`: spawn and join a no-op greenlet; time each, over 1M.
//! - `parked`: 1M greenlets parked at once in a long `sleep`, then all
//!   killed; total time per greenlet, and RSS growth per parked greenlet.
//!   Then this machine's floor for it: the first touch of a fresh page
//!   (a new stack's top) plus one caught unwinding (a kill), and the
//!   run's ratio to that floor.
//! - `monitor`: the blocking monitor's cost on `yield`: the yield
//!   workload without and with `green::monitor` watching the hub, in turns
//!   (fifteen runs each), median time per yield of each side.
//! - `queue`, `channel`: one item bounced between two greenlets over two
//!   `sync::Queue`s (or two `sync::Channel`s); time per round trip.
//!
//! gevent runs the same workloads at a tenth of the size (it is slower and
//! its per-greenlet memory does not depend on the count).
//!
//! For `bench-all`, which runs each system in a process of its own and
//! alternates them:
//!
//! ```text
//! green-bench --tsv [--quick] [--peer may|gevent] [--parked N] [WORKLOAD...]
//! ```
//!
//! `--tsv` prints only this system's figures, one line each:
//! `result<TAB>green<TAB>WORKLOAD<TAB>SYSTEM<TAB>N<TAB>VALUE<TAB>UNIT`;
//! `--peer may` runs the workloads on `may`'s coroutines (one worker
//! thread; `queue` there is a `may::sync::mpsc` channel pair), `--peer
//! gevent` on gevent (at the given size). `--parked N` parks N (default
//! 1 000 000, or 100 000 for gevent).

mod green_may;

use libev::green;
use libev::green::sync::{Channel, Queue};
use std::process::Command;
use std::time::{Duration, Instant};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm rss");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

fn yield_roundtrip(n: u64) -> f64 {
    let t0 = Instant::now();
    let a = green::spawn(move || (0..n).for_each(|_| green::yield_now()));
    let b = green::spawn(move || (0..n).for_each(|_| green::yield_now()));
    a.join().unwrap();
    b.join().unwrap();
    t0.elapsed().as_nanos() as f64 / (2 * n) as f64
}

fn spawn_join(n: u64) -> f64 {
    // Warm the stack pool and the slab, as a long-running server would be.
    green::spawn(|| ()).join().unwrap();
    let t0 = Instant::now();
    for _ in 0..n {
        green::spawn(|| ()).join().unwrap();
    }
    t0.elapsed().as_nanos() as f64 / n as f64
}

/// Ping-pong of one item over a pair of queues (`put`/`get` of `q`).
fn ping_pong<Q: Clone + 'static>(n: u64, new: fn() -> Q, put: fn(&Q, u64), get: fn(&Q) -> u64) -> f64 {
    let (ping, pong) = (new(), new());
    let echo = {
        let (ping, pong) = (ping.clone(), pong.clone());
        green::spawn(move || {
            for _ in 0..n {
                put(&pong, get(&ping));
            }
        })
    };
    let player = green::spawn(move || {
        for i in 0..n {
            put(&ping, i);
            assert_eq!(get(&pong), i);
        }
    });
    let t0 = Instant::now();
    player.join().unwrap();
    echo.join().unwrap();
    t0.elapsed().as_nanos() as f64 / n as f64
}

fn parked(n: u64) -> (f64, f64) {
    let before = rss_bytes();
    let t0 = Instant::now();
    let gs: Vec<_> = (0..n).map(|_| green::spawn(|| green::sleep(Duration::from_secs(3600)))).collect();
    green::yield_now(); // every one starts and parks
    let after = rss_bytes();
    let parked_at = t0.elapsed();
    for g in &gs {
        g.kill();
    }
    println!(
        "parked {n}: park {:.2} s, kill {:.2} s",
        parked_at.as_secs_f64(),
        (t0.elapsed() - parked_at).as_secs_f64()
    );
    for g in gs {
        assert!(g.join().is_err());
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    (ns, (after.saturating_sub(before)) as f64 / n as f64)
}

/// Time to first touch a fresh page, as a new greenlet's stack top is:
/// `n` pages, each at the top of a 260 KiB slot (the default stack plus
/// its guard page), in one new mapping.
fn fresh_page_ns(n: usize) -> f64 {
    const SLOT: usize = 260 * 1024;
    // SAFETY: a new anonymous private mapping; unmapped below.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            n * SLOT,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(mem, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    let t0 = Instant::now();
    for i in 1..=n {
        // SAFETY: the last byte of slot i - 1, inside the mapping.
        unsafe { mem.cast::<u8>().add(i * SLOT - 1).write_volatile(1) };
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(mem, n * SLOT) };
    ns
}

/// Time to raise and catch one unwinding (`resume_unwind` through one
/// frame), which is what a kill costs the unwinder at the least.
fn caught_unwind_ns(n: u32) -> f64 {
    #[inline(never)]
    fn raise(x: &mut u32) {
        *x += 1;
        std::panic::resume_unwind(Box::new(*x));
    }
    let mut x = 0;
    let t0 = Instant::now();
    for _ in 0..n {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| raise(&mut x)));
        assert!(r.is_err());
    }
    t0.elapsed().as_nanos() as f64 / f64::from(n)
}

/// Runs gevent's side, if gevent is installed: `name -> numbers`.
fn gevent(scale: f64) -> Option<Vec<(String, Vec<f64>)>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/gevent_bench.py");
    let out = Command::new("python3").arg(script).arg(scale.to_string()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let name = it.next()?.to_owned();
                Some((name, it.filter_map(|x| x.parse().ok()).collect()))
            })
            .collect(),
    )
}

/// `--tsv`: one system's figures, machine-readable.
fn tsv_main(args: &[String]) {
    let quick = args.iter().any(|a| a == "--quick");
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1));
    let peer = value("--peer").map_or("libev::green", String::as_str);
    let parked_n: Option<u64> = value("--parked").map(|n| n.parse().expect("--parked N"));
    let skip: Vec<&String> = ["--peer", "--parked"].iter().filter_map(|f| value(f)).collect();
    let only: Vec<&str> =
        args.iter().filter(|a| !a.starts_with("--") && !skip.contains(a)).map(String::as_str).collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);
    let div = if quick { 20 } else { 1 };
    let emit = |workload: &str, system: &str, n: u64, value: f64, unit: &str| {
        println!("result\tgreen\t{workload}\t{system}\t{n}\t{value:.2}\t{unit}");
    };
    let n = 1_000_000 / div;
    match peer {
        "libev::green" => {
            if want("yield") {
                emit("yield", peer, n, yield_roundtrip(n), "ns/yield");
            }
            if want("spawn_join") {
                emit("spawn_join", peer, n, spawn_join(n), "ns/op");
            }
            if want("queue") {
                let ns = ping_pong(n, Queue::new, |q, v| q.put(v), |q| q.get());
                emit("queue", peer, n, ns, "ns/rt");
            }
            if want("parked") {
                let n = parked_n.unwrap_or(n);
                let (ns, bytes) = parked(n);
                emit("parked", peer, n, ns, "ns/greenlet");
                emit("parked_rss", peer, n, bytes, "B/greenlet");
            }
        }
        "may" => {
            green_may::init();
            if want("yield") {
                emit("yield", "may", n, green_may::yield_roundtrip(n), "ns/yield");
            }
            if want("spawn_join") {
                emit("spawn_join", "may", n, green_may::spawn_join(n), "ns/op");
            }
            if want("queue") {
                emit("queue", "may", n, green_may::queue(n), "ns/rt");
            }
            if want("parked") {
                let n = parked_n.unwrap_or(n);
                let (ns, bytes) = green_may::parked(n, rss_bytes);
                emit("parked", "may", n, ns, "ns/greenlet");
                emit("parked_rss", "may", n, bytes, "B/greenlet");
            }
        }
        "gevent" => {
            // gevent's sizes: a tenth of ours (it is two orders slower).
            let n = n / 10;
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/gevent_bench.py");
            let parked = parked_n.unwrap_or(n).to_string();
            let mut cmd = Command::new("python3");
            cmd.args([script, &n.to_string(), &parked]).args(&only);
            let out = cmd.output().expect("python3 runs");
            if !out.status.success() {
                eprintln!("green-bench: gevent_bench.py failed: {}", String::from_utf8_lossy(&out.stderr));
                std::process::exit(1);
            }
            // Its per-operation figures are filed under our size, so that
            // they sit next to ours.
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let mut f: Vec<&str> = line.split('\t').collect();
                let nominal = (n * 10).to_string();
                if f.len() == 7 && !f[2].starts_with("parked") {
                    f[4] = &nominal;
                }
                println!("{}", f.join("\t"));
            }
        }
        _ => panic!("--peer may|gevent"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--tsv") {
        return tsv_main(&args);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with("--")).collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);
    let div = if quick { 20 } else { 1 };
    let py = if args.iter().any(|a| a == "--no-gevent") { None } else { gevent(0.1 / div as f64) };
    let pyval = |name: &str, i: usize| -> Option<f64> {
        py.as_ref()?.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.get(i).copied())
    };
    let show = |name: &str, rust: f64, unit: &str, py: Option<f64>| match py {
        Some(p) => println!(
            "{name:<22} Rust {rust:>9.1} {unit:<6} gevent {p:>9.1} {unit:<6} gevent/Rust {:>6.1}x",
            p / rust
        ),
        None => println!("{name:<22} Rust {rust:>9.1} {unit:<6} (gevent not installed)"),
    };
    println!("libev::green; gevent at 1/10 the size{}", if quick { " (--quick: N/20)" } else { "" });
    if args.iter().any(|a| a == "--monitor") {
        green::monitor::start(green::monitor::DEFAULT_MAX_BLOCKING_TIME).expect("monitor");
        println!("(the blocking monitor watches the hub)");
    }
    if want("yield") {
        show("yield (per yield)", yield_roundtrip(1_000_000 / div), "ns", pyval("yield", 0));
    }
    if want("monitor") {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            off.push(yield_roundtrip(1_000_000 / div));
            green::monitor::start(green::monitor::DEFAULT_MAX_BLOCKING_TIME).expect("monitor");
            on.push(yield_roundtrip(1_000_000 / div));
            green::monitor::stop();
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (off, on) = (median(off), median(on));
        println!(
            "monitor: yield {off:.1} ns unwatched, {on:.1} ns watched: {:+.1}%",
            (on / off - 1.0) * 100.0
        );
    }
    if want("spawn_join") {
        show("spawn+join", spawn_join(1_000_000 / div), "ns", pyval("spawn_join", 0));
    }
    if want("queue") {
        let ns = ping_pong(1_000_000 / div, Queue::new, |q, v| q.put(v), |q| q.get());
        show("Queue round trip", ns, "ns", pyval("queue", 0));
    }
    if want("channel") {
        let ns = ping_pong(1_000_000 / div, Channel::new, |c, v| c.put(v), |c| c.get());
        show("Channel round trip", ns, "ns", pyval("channel", 0));
    }
    if !want("parked") {
        return;
    }
    let n = 1_000_000 / div;
    let t0 = Instant::now();
    let (ns, bytes) = parked(n);
    let total = t0.elapsed();
    show(&format!("parked {n} (per)"), ns, "ns", pyval("parked", 0));
    show("parked RSS per greenlet", bytes / 1024.0, "KiB", pyval("parked", 1).map(|b| b / 1024.0));
    println!("parked {n}: whole run {:.2} s", total.as_secs_f64());
    // What this machine charges at the least for each parked-then-killed
    // greenlet: its stack's first page, and one unwinding. Measured after
    // the run, so the run's memory was as fresh as a new process's.
    let (page, unwind) = (fresh_page_ns(n as usize / 10), caught_unwind_ns(100_000));
    println!(
        "parked floor: fresh page {:.2} us + caught unwind {:.2} us = {:.2} us; run/floor {:.2}",
        page / 1000.0,
        unwind / 1000.0,
        (page + unwind) / 1000.0,
        ns / (page + unwind)
    );
}
