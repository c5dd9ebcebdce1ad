//! Helpers shared by the integration tests.
#![allow(dead_code)]

use libev::green;
use libev::{Loop, Timer};
use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors, owned by nobody.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A blocking pipe: (read end, write end).
pub fn blocking_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors, owned by nobody.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A duplicate of `fd`: the same open file description.
pub fn dup(fd: &impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().unwrap()
}

/// Whether the open file description of `fd` is non-blocking.
pub fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an fd the caller keeps open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0, "{}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// A pseudo-terminal: (master, slave), in the line discipline's default
/// (canonical) mode. `None` where the system has none to give.
pub fn pty() -> Option<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt returns a new fd or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        eprintln!("no pseudo-terminal: {}", std::io::Error::last_os_error());
        return None;
    }
    // SAFETY: posix_openpt just made `m`, owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: grantpt/unlockpt/ptsname_r on the master we own; the name
    // buffer is a live local of the length given.
    unsafe {
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
    }
    // SAFETY: ptsname_r wrote a NUL-terminated path.
    let s = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(s >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: open just made `s`.
    Some((master, unsafe { OwnedFd::from_raw_fd(s) }))
}

/// A duplicate of `fd` at a number far above those this process uses, to
/// close under a watcher: the kernel hands out the lowest free number, so
/// no other test's thread reuses it meanwhile (which would make the
/// watcher silently watch that thread's file instead). Each call takes a
/// number above the last one's, so that two tests doing this at once do
/// not reuse each other's either.
pub fn high_dup(fd: &impl AsRawFd) -> OwnedFd {
    static NEXT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(900);
    let at = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor at or above `at`.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, at) };
    assert!(n >= at, "{}", std::io::Error::last_os_error());
    NEXT.fetch_max(n + 1, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: fcntl just returned this descriptor, ours alone.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Writes one byte to `fd`.
pub fn write_byte(fd: &impl AsRawFd, b: u8) {
    // SAFETY: writes one byte from a live local.
    assert_eq!(unsafe { libc::write(fd.as_raw_fd(), (&b as *const u8).cast(), 1) }, 1);
}

/// Reads one byte from `fd`, if there is one.
pub fn read_byte(fd: RawFd) -> Option<u8> {
    let mut b = 0u8;
    // SAFETY: reads at most one byte into a live local.
    let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
    (n == 1).then_some(b)
}

/// A directory of its own under the system's temporary one, for one
/// test (`tag` tells the tests of a binary apart), removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("libev-rs-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to a file `name` in the directory (with std's
    /// blocking `fs::write`); returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A shared counter for callbacks.
#[derive(Clone, Default)]
pub struct Counter(Rc<Cell<u32>>);

impl Counter {
    pub fn new() -> Counter {
        Counter::default()
    }
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }
    pub fn get(&self) -> u32 {
        self.0.get()
    }
}

/// Upper bound on every wait in `run_until`; a test fails (never hangs)
/// past it.
pub const LIMIT: Duration = Duration::from_secs(5);

/// Runs `lp` one iteration at a time until `done()`, failing after
/// [`LIMIT`] (a safety timer wakes the loop then, so `run_once` cannot
/// block longer).
pub fn run_until(lp: &Loop, what: &str, mut done: impl FnMut() -> bool) {
    let expired = Rc::new(Cell::new(false));
    let e = expired.clone();
    let safety = Timer::new(lp, LIMIT, Duration::ZERO, move |_, _| e.set(true));
    safety.start();
    while !done() {
        assert!(!expired.get(), "timed out after {LIMIT:?} waiting for {what}");
        lp.run_once();
    }
}

/// Checks that `lp` works: a zero timer started on it fires once in `run`.
pub fn assert_loop_usable(lp: &Loop) {
    let n = Counter::new();
    let c = n.clone();
    let t = Timer::new(lp, Duration::ZERO, Duration::ZERO, move |_, _| c.bump());
    t.start();
    lp.run();
    assert_eq!(n.get(), 1, "a zero timer fired once");
}

/// Runs `lp` with a 30 ms referenced timer started, and asserts that `run`
/// waited for it: a watcher whose `ev_unref` was never paid back makes the
/// loop's active count too low, and `run` returns early.
pub fn assert_run_waits_for_a_referenced_timer(lp: &Loop) {
    let fired = Counter::new();
    let f = fired.clone();
    let keeper = Timer::new(lp, Duration::from_millis(30), Duration::ZERO, move |_, _| f.bump());
    keeper.start();
    lp.run();
    assert_eq!(fired.get(), 1, "run returned while a referenced timer was active");
}

/// Runs this thread's hub (sleeping) until `done()`, failing after a
/// generous bound.
pub fn green_wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        green::sleep(Duration::from_millis(5));
    }
}

/// A green `sh -c script`.
pub fn sh(script: &str) -> green::process::Command {
    let mut cmd = green::process::Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Whether process `pid` still exists, as a zombie too.
pub fn exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// xorshift64*: a small, seeded, reproducible generator for the random
/// tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Runs `case` for consecutive seeds: `cases` of them, or as many as fit
/// in `LIBEV_FUZZ_SECS` seconds when that is set, from `LIBEV_FUZZ_SEED`
/// (default 1). Prints how many ran.
pub fn fuzz_seeds(name: &str, cases: u64, mut case: impl FnMut(u64)) {
    let first: u64 = std::env::var("LIBEV_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let secs: Option<u64> = std::env::var("LIBEV_FUZZ_SECS").ok().and_then(|s| s.parse().ok());
    let start = std::time::Instant::now();
    let mut seed = first;
    loop {
        case(seed);
        seed += 1;
        let done = match secs {
            Some(s) => start.elapsed() >= Duration::from_secs(s),
            None => seed >= first + cases,
        };
        if done {
            break;
        }
    }
    eprintln!("{name}: {} cases from seed {first} in {:?}", seed - first, start.elapsed());
}

/// The backends the test suite runs on, in order: every Linux backend
/// libev 4.33 has (kqueue and Solaris ports are not tried).
pub const BACKENDS: [(libev::Backend, &str); 5] = [
    (libev::Backend::SELECT, "select"),
    (libev::Backend::POLL, "poll"),
    (libev::Backend::EPOLL, "epoll"),
    (libev::Backend::LINUXAIO, "linuxaio"),
    (libev::Backend::IOURING, "io_uring"),
];

/// How long one run of a binary's suite may take before it counts as hung
/// (the slowest takes about a second natively; valgrind runs the children
/// natively too, ASan about three times slower).
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Set (to the backend's name) in the processes [`run_suite_on_every_backend`]
/// starts, along with `LIBEV_FLAGS`.
const CHILD_VAR: &str = "LIBEV_TEST_BACKEND";

/// The backend bits of `LIBEV_FLAGS`, which libev reads for every loop
/// created without `LoopFlags::NOENV` (and which then replaces the flags
/// the program passed): empty when it is unset.
pub fn env_backends() -> libev::Backend {
    let bits: u32 = std::env::var("LIBEV_FLAGS").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    libev::Backend::from_bits_truncate(bits)
}

/// A new loop with `flags` on the backend `LIBEV_FLAGS` asks for (libev's
/// choice when it is unset). For tests of a flag (`NOINOTIFY`, ...), which
/// `LIBEV_FLAGS` would otherwise replace.
pub fn loop_with_flags(flags: libev::LoopFlags) -> Loop {
    Loop::with_flags(flags | libev::LoopFlags::NOENV, env_backends()).unwrap()
}

/// Whether `backend` works here: `Err` with the reason it does not
/// (not compiled in or too old a kernel, refused by the kernel or a
/// sandbox, or libev quietly chose another one).
pub fn backend_works(backend: libev::Backend) -> Result<(), String> {
    // valgrind does not model the kernel's AIO and io_uring rings (libev
    // reads completions from memory the kernel maps and writes): it
    // reports those reads as invalid. `.ci/valgrind` sets this.
    if std::env::var_os("LIBEV_UNDER_VALGRIND").is_some()
        && (libev::Backend::LINUXAIO | libev::Backend::IOURING).contains(backend)
    {
        return Err("valgrind does not model this kernel interface".to_owned());
    }
    let supported = Loop::supported_backends();
    if !supported.contains(backend) {
        return Err(format!("not compiled in or not supported by this kernel (supported: {supported:?})"));
    }
    match Loop::with_flags(libev::LoopFlags::NOENV, backend) {
        Err(e) => Err(format!("refused here: {e}")),
        Ok(lp) if lp.backend() != backend => Err(format!("libev fell back to {:?}", lp.backend())),
        Ok(_) => Ok(()),
    }
}

/// Runs the calling test binary's whole suite once per backend that works
/// here, each in a child process with `LIBEV_FLAGS` naming the backend,
/// printing `backend NAME: N tests passed` or `backend NAME: skipped
/// (reason)` for each (`--nocapture` shows them). `me` is the calling
/// test's name: the children skip nothing, and there `me` checks that the
/// loops really use the backend instead.
///
/// Loops a test creates with `LoopFlags::NOENV` keep their own backend;
/// the rest (`Loop::new`, the default loop, the green hub's) take the
/// child's.
pub fn run_suite_on_every_backend(me: &str) {
    use std::io::Read;
    use std::process::{Command, Stdio};

    if let Ok(name) = std::env::var(CHILD_VAR) {
        // In a child: check that LIBEV_FLAGS took effect.
        let want = env_backends();
        let got = Loop::new().unwrap().backend();
        assert_eq!(got, want, "backend {name}: a new loop got {got:?}, LIBEV_FLAGS asked for {want:?}");
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let suite = exe.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Forward the parent's thread count (valgrind's job runs one thread).
    let threads: Vec<String> = {
        let args: Vec<String> = std::env::args().collect();
        let mut out = Vec::new();
        for (i, a) in args.iter().enumerate() {
            if a.starts_with("--test-threads=") {
                out.push(a.clone());
            } else if a == "--test-threads" {
                out.extend(args.get(i..i + 2).into_iter().flatten().cloned());
            }
        }
        out
    };
    let mut failed = Vec::new();
    let mut ran = 0;
    for (backend, name) in BACKENDS {
        if let Err(why) = backend_works(backend) {
            println!("{suite}: backend {name}: skipped ({why})");
            continue;
        }
        let mut child = Command::new(&exe)
            .args(&threads)
            .env("LIBEV_FLAGS", backend.bits().to_string())
            .env(CHILD_VAR, name)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the test binary again");
        // Read both pipes to their end on threads (so neither can fill up
        // and stall the child), and kill a child that hangs.
        let mut stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdout = child.stdout.take().unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            let _ = done.send(());
            s
        });
        let hung = finished.recv_timeout(CHILD_LIMIT).is_err();
        if hung {
            let _ = child.kill();
        }
        let out = out_reader.join().unwrap();
        let err = err_reader.join().unwrap();
        // libev's default loop reaps any child on SIGCHLD (`waitpid(-1)`),
        // so a test of this binary running one may take the exit status
        // first: then the summary line the child printed decides.
        let status = child.wait().ok();
        let summary = out.lines().rev().find(|l| l.starts_with("test result: "));
        let passed = summary
            .and_then(|l| l.split("; ").next())
            .and_then(|l| l.rsplit(' ').nth(1))
            .and_then(|n| n.parse::<u32>().ok());
        let ok = !hung
            && summary.is_some_and(|l| l.starts_with("test result: ok."))
            && status.is_none_or(|s| s.success());
        match (ok, passed) {
            (true, Some(n)) => {
                println!("{suite}: backend {name}: {n} tests passed");
                ran += 1;
            }
            _ => {
                let why = if hung { format!("killed after {CHILD_LIMIT:?}") } else { format!("{status:?}") };
                println!("{suite}: backend {name}: FAILED ({why})\n{out}\n{err}");
                failed.push(name);
            }
        }
    }
    assert!(failed.is_empty(), "{me}: the suite failed on backend(s) {failed:?} (output above)");
    assert!(ran > 0, "{me}: no backend works here");
}

/// A repeating 10 ms timer that does not keep `lp` alive: linuxaio learns
/// of an fd closed under a watcher only once its wait ends (up to 59.7 s
/// with nothing else to wake it), and this bounds that wait. Keep it for
/// as long as the loop runs.
pub fn dead_fd_waker(lp: &Loop) -> libev::Timer {
    let wake = libev::Timer::new(
        lp,
        std::time::Duration::from_millis(10),
        std::time::Duration::from_millis(10),
        |_, _| {},
    );
    wake.set_keeps_loop_alive(false);
    wake.start();
    wake
}
