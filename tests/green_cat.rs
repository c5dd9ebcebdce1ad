//! The `green_cat` example, run as a user would: green standard input
//! and output (`libev::green::io`) over pipes, a terminal, regular files,
//! `/dev/null` and closed fds. The parent holds the same open file
//! descriptions as the child's fds 0 and 1 and checks that they stay
//! blocking while the child waits on them.

mod util;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use util::{TempDir, blocking_pipe, dup, example, is_nonblocking, pty};

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
    let (in_r, in_w) = blocking_pipe();
    let (out_r, out_w) = blocking_pipe();
    let child = Command::new(example("green_cat"))
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
    let dir = TempDir::new("green-cat");
    let data = pattern(3 << 20);
    let (src, dst) = (dir.write("in", &data), dir.path("out"));
    let output = Command::new(example("green_cat"))
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
    let output = Command::new(example("green_cat")).stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(output.stdout.is_empty());
    assert_eq!(report(&output.stderr).0, 0);
    // A closed stdin reads as empty.
    let output = Command::new("/bin/sh")
        .args(["-c", "exec 0<&-; exec \"$0\""])
        .arg(example("green_cat"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, 0);
    // A closed stdout takes the writes.
    let mut child = Command::new("/bin/sh")
        .args(["-c", "exec 1>&-; exec \"$0\""])
        .arg(example("green_cat"))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"abc").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(report(&output.stderr).0, 3);
}

#[test]
fn reads_a_terminal_and_leaves_it_blocking() {
    let Some((master, slave)) = pty() else { return };
    let (out_r, out_w) = blocking_pipe();
    let child = Command::new(example("green_cat"))
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
