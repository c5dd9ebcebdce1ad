//! Running the parts (`libev-bench`, `green-bench`, `net-bench`) as
//! child processes, reading their `result` lines, and finding (or, when
//! allowed, installing) the peers that are not Rust crates: gevent and
//! `wrk`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One figure of one run of one part.
#[derive(Clone, Debug)]
pub struct Row {
    /// `loop`, `green` or `net`.
    pub area: String,
    /// The workload, with its measuring mode where it has several
    /// (`timers (interleaved)`).
    pub workload: String,
    pub system: String,
    /// The size: timers, operations, connections, parked greenlets.
    pub n: u64,
    pub value: f64,
    pub unit: String,
    /// Which repetition this came from.
    pub rep: u32,
}

impl Row {
    /// Parses a `result<TAB>AREA<TAB>WORKLOAD<TAB>SYSTEM<TAB>N<TAB>VALUE<TAB>UNIT`
    /// line (and, in a results file, `<TAB>REP`).
    pub fn parse(line: &str, rep: u32) -> Option<Row> {
        let f: Vec<&str> = line.strip_prefix("result\t")?.split('\t').collect();
        if f.len() < 6 {
            return None;
        }
        Some(Row {
            area: f[0].to_owned(),
            workload: f[1].to_owned(),
            system: f[2].to_owned(),
            n: f[3].parse().ok()?,
            value: f[4].parse().ok()?,
            unit: f[5].to_owned(),
            rep: f.get(6).and_then(|r| r.parse().ok()).unwrap_or(rep),
        })
    }

    /// The line [`Row::parse`] reads back, with the repetition.
    pub fn line(&self) -> String {
        format!(
            "result\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.area, self.workload, self.system, self.n, self.value, self.unit, self.rep
        )
    }
}

/// The part binaries bench-all runs.
const PARTS: [&str; 3] = ["libev-bench", "green-bench", "net-bench"];

/// Makes sure the part binaries are built. `cargo run --bin bench-all`
/// builds only bench-all, so under `cargo run` (which sets `CARGO`) the
/// parts are built here, in the same profile and target directory; run
/// directly, bench-all asks for them when they are missing.
pub fn ensure_parts() -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| format!("cannot find bench-all's own path: {e}"))?;
    let release = me.parent().and_then(|d| d.file_name()).is_some_and(|d| d == "release");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let build = |args: &[&str], what: &str| {
            let mut build = Command::new(&cargo);
            build.arg("build").args(args);
            if release {
                build.arg("--release");
            }
            let status = build.status().map_err(|e| format!("cannot run cargo to build {what}: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("building {what} failed ({status})")) }
        };
        build(&["-p", "libev-bench", "--bins"], "the parts")?;
        // The example whose idle connections the page reports too: what
        // users copy, as shipped.
        build(&["-p", "libev-rs", "--example", "echo_server"], "the echo_server example")?;
    }
    match PARTS.iter().find(|p| !me.with_file_name(p).exists()) {
        Some(p) => Err(format!(
            "{p} is not built next to bench-all: `cargo build{} -p libev-bench --bins` builds the parts",
            if release { " --release" } else { "" }
        )),
        None => Ok(()),
    }
}

/// Where the part binaries are: next to this one ([`ensure_parts`]).
pub fn part(name: &str) -> Command {
    let me = std::env::current_exe().expect("own path");
    Command::new(me.with_file_name(name))
}

/// The `echo_server` example, where cargo builds it next to the parts
/// (`None` when it is not built: bench-all run outside cargo).
pub fn echo_server_example() -> Option<std::path::PathBuf> {
    let me = std::env::current_exe().ok()?;
    Some(me.with_file_name("examples").join("echo_server")).filter(|p| p.exists())
}

/// Runs `cmd` for at most `limit`; its `result` lines (tagged with `rep`)
/// or why there are none.
pub fn run(mut cmd: Command, rep: u32, limit: Duration) -> Result<Vec<Row>, String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    // A panic's message, or the last lines.
    let tail = |s: &str| {
        let lines: Vec<&str> = s.lines().collect();
        let at =
            lines.iter().position(|l| l.contains("panicked at")).unwrap_or(lines.len().saturating_sub(2));
        lines[at..lines.len().min(at + 2)].join(" / ")
    };
    match status {
        None => Err(format!("{what}: stopped after {} s", limit.as_secs())),
        Some(s) if !s.success() => Err(format!("{what}: {s}: {}", tail(&err))),
        Some(_) => {
            let rows: Vec<Row> = out.lines().filter_map(|l| Row::parse(l, rep)).collect();
            if rows.is_empty() { Err(format!("{what}: printed no result")) } else { Ok(rows) }
        }
    }
}

/// Whether `cmd` runs and exits 0 (output discarded).
fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Whether gevent can be imported; when not and `install` is set, tries
/// `pip install gevent` (plain, then `--user`, then
/// `--break-system-packages` for Debian's system Python). `Err` says why
/// it is missing.
pub fn gevent(install: bool) -> Result<(), String> {
    let importable = || succeeds(Command::new("python3").args(["-c", "import gevent"]));
    if importable() {
        return Ok(());
    }
    if !succeeds(Command::new("python3").arg("--version")) {
        return Err("python3 is not installed".into());
    }
    if !install {
        return Err("gevent is not installed (`python3 -m pip install gevent`; bench-all installs it outside --quick)".into());
    }
    for extra in [&[][..], &["--user"], &["--break-system-packages"]] {
        eprintln!("bench-all: python3 -m pip install gevent {}", extra.join(" "));
        if succeeds(Command::new("python3").args(["-m", "pip", "install", "--quiet", "gevent"]).args(extra))
            && importable()
        {
            return Ok(());
        }
    }
    Err("gevent is not installed and `python3 -m pip install gevent` failed".into())
}

/// Whether `wrk` runs; when not and `install` is set, tries `apt-get
/// install wrk` (as root, or through `sudo -n`). `Err` says why it is
/// missing.
pub fn wrk(install: bool) -> Result<(), String> {
    let runs = || which("wrk").is_some();
    if runs() {
        return Ok(());
    }
    if !install {
        return Err(
            "wrk is not installed (`apt-get install wrk`; bench-all installs it outside --quick)".into()
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let apt = |args: &[&str]| {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.args(["-n", "apt-get"]);
        }
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        succeeds(&mut c)
    };
    eprintln!("bench-all: apt-get install wrk");
    if (apt(&["install", "-y", "-q", "wrk"])
        || (apt(&["update", "-q"]) && apt(&["install", "-y", "-q", "wrk"])))
        && runs()
    {
        return Ok(());
    }
    Err(format!(
        "wrk is not installed and `apt-get install wrk` failed{}",
        if root { "" } else { " (not root, and `sudo -n` did not work)" }
    ))
}

/// `name`'s path on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| is_file(p))
}

fn is_file(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file())
}
