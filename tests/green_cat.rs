//! The `green_cat` example, run as a user would: green standard input
//! and output (`libev::green::io`) over pipes, a terminal, regular files,
//! `/dev/null` and closed fds. The parent holds the same open file
//! descriptions as the child's fds 0 and 1 and checks that they stay
//! blocking while the child waits on them.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The example binary `cargo test` builds next to the test binaries.
fn green_cat() -> PathBuf {
    let mut p = std::env::current_exe().unwrap();
    p.pop(); // the test binary
    if p.ends_with("deps") {
        p.pop();
    }
    p.join("examples").join("green_cat")
}

/// Kills the child when the test ends, pass or fail.
struct Running(Option<Child>);

impl Running {
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors, owned by nobody.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn dup(fd: &impl AsFd) -> OwnedFd {
    fd.as_fd().try_clone_to_owned().unwrap()
}

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL on an fd the caller keeps open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    assert!(flags >= 0);
    flags & libc::O_NONBLOCK != 0
}

/// Reads from `fd` until `want` bytes came, failing after 10 s.
fn read_exactly(fd: &OwnedFd, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd, a live local.
        let ready = unsafe { libc::poll(&mut p, 1, 10_000) };
        assert!(ready > 0, "no output within 10 s (got {got:?})");
        let mut buf = [0; 4096];
        let n = std::fs::File::from(dup(fd)).read(&mut buf[..(want - got.len()).min(4096)]).unwrap();
        assert_ne!(n, 0, "end of output after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The child's report: (bytes copied, ticks).
fn report(stderr: &[u8]) -> (u64, u64) {
    let text = String::from_utf8_lossy(stderr);
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["copied", n, "bytes;", "the", "ticker", "ran", t, "times", "meanwhile"] => {
            (n.parse().unwrap(), t.parse().unwrap())
        }
        _ => panic!("unexpected report: {text:?}"),
    }
}

#[test]
fn copies_a_pipe_to_a_pipe_and_leaves_their_flags_alone() {
    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let child = Command::new(green_cat())
        .stdin(Stdio::from(dup(&in_r)))
        .stdout(Stdio::from(dup(&out_w)))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    let mut input = std::fs::File::from(in_w);
    input.write_all(b"hello\n").unwrap();
    // Echoed: the child has read its stdin and written its stdout, and
    // waits for more.
    assert_eq!(read_exactly(&out_r, 6), b"hello\n");
    std::thread::sleep(Duration::from_millis(50));
    assert!(!is_nonblocking(&in_r), "the child made its stdin pipe non-blocking");
    assert!(!is_nonblocking(&out_w), "the child made its stdout pipe non-blocking");
    drop((in_r, out_w));
    // A large copy, through full pipes both ways.
    let data = pattern(4 << 20);
    let feeder = std::thread::spawn({
        let data = data.clone();
        move || input.write_all(&data).unwrap() // and closes: end of input
    });
    let out = read_exactly(&out_r, data.len());
    feeder.join().unwrap();
    assert!(out == data, "the copy differs");
    let output = running.wait();
    assert!(output.status.success(), "{output:?}");
    let (copied, ticks) = report(&output.stderr);
    assert_eq!(copied, 6 + data.len() as u64);
    assert!(ticks >= 1, "the ticker never ran while the copy waited for input");
}

#[test]
fn copies_a_regular_file_to_a_regular_file() {
    /// Removes the directory however the test ends.
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let dir = Dir(std::env::temp_dir().join(format!("libev-green-cat-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (src, dst) = (dir.0.join("in"), dir.0.join("out"));
    let data = pattern(3 << 20);
    std::fs::write(&src, &data).unwrap();
    let output = Command::new(green_cat())
        .stdin(std::fs::File::open(&src).unwrap())
        .stdout(std::fs::File::create(&dst).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, data.len() as u64);
    assert!(std::fs::read(&dst).unwrap() == data, "the copy differs");
}

#[test]
fn empty_and_closed_streams_are_handled_as_std_does() {
    // /dev/null: nothing to copy.
    let output = Command::new(green_cat()).stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    assert_eq!(report(&output.stderr).0, 0);
    // A closed stdin reads as empty.
    let output =
        Command::new("/bin/sh").args(["-c", "exec 0<&-; exec \"$0\""]).arg(green_cat()).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, 0);
    // A closed stdout takes the writes.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exec 1>&-; exec \"$0\""])
        .arg(green_cat())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, 3);
}

/// A pseudo-terminal: (master, slave), in the line discipline's default
/// (canonical) mode.
fn pty() -> Option<(OwnedFd, OwnedFd)> {
    // SAFETY: posix_openpt returns a new fd or -1.
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if m < 0 {
        eprintln!("no pseudo-terminal: {}", std::io::Error::last_os_error());
        return None;
    }
    // SAFETY: posix_openpt just made `m`, owned by nobody else.
    let master = unsafe { OwnedFd::from_raw_fd(m) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: on the master we own; the name buffer is a live local of
    // the length given.
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

#[test]
fn reads_a_terminal_and_leaves_it_blocking() {
    let Some((master, slave)) = pty() else { return };
    let (out_r, out_w) = pipe();
    let child = Command::new(green_cat())
        .stdin(Stdio::from(dup(&slave)))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let running = Running(Some(child));
    let mut term = std::fs::File::from(dup(&master));
    term.write_all(b"typed line\n").unwrap();
    assert_eq!(read_exactly(&out_r, 11), b"typed line\n");
    assert!(!is_nonblocking(&slave), "the child made the terminal non-blocking");
    // End of input: ^D at the start of a line.
    term.write_all(&[4]).unwrap();
    let output = running.wait();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, 11);
    assert!(!is_nonblocking(&slave));
}
