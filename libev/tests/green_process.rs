//! `green::process`: std's `Command` and `Child` with green pipes and
//! green waits, on hubs off libev's default loop (every `#[test]` runs on
//! a thread of its own, so on a hub with a loop of its own: the pidfd
//! path). `green_process_default.rs` covers the default loop's hub.
//!
//! Behavioural cases from gevent's `src/gevent/tests/test__subprocess.py`
//! (and `test__subprocess_poll.py`, `test__issue600.py`) are named where
//! they are ported.

mod util;

use libev::green::process::{Command, Stdio};
use libev::green::{self, Elapsed};
use std::cell::Cell;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::sync::{RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use util::{exists, green_wait_until, sh};

/// The fd-leak test counts this process's fds: it runs alone (write
/// lock) while every other test holds a read lock.
static FDS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

// gevent: TestPopen.test_exit, test_wait (wait, then poll gives the same).
#[test]
fn wait_gives_the_exit_code_and_try_wait_repeats_it() {
    let _fds = shared();
    let mut child = sh("exit 10").spawn().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(10));
    assert_eq!(child.try_wait().unwrap().unwrap().code(), Some(10));
    assert_eq!(child.wait().unwrap().code(), Some(10));
}

#[test]
fn fifty_concurrent_children_each_get_their_own_status() {
    let _fds = shared();
    let waiters: Vec<_> = (0..50)
        .map(|i| {
            green::spawn(move || {
                let script = format!("sleep 0.0{}; exit {i}", i % 10);
                let status = sh(&script).spawn()?.wait()?;
                Ok::<_, std::io::Error>((i, status.code()))
            })
        })
        .collect();
    for g in waiters {
        let (i, code) = g.join().unwrap().unwrap();
        assert_eq!(code, Some(i));
    }
}

// gevent: RunFuncTestCase.test_timeout (the child is killed, then waited).
#[test]
fn a_killed_child_reports_sigkill_and_kill_after_exit_is_ok() {
    let _fds = shared();
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.code(), None);
    // Exited and reaped: kill is still Ok, and sends nothing.
    child.kill().unwrap();

    // Exited but not reaped yet: Ok too.
    let mut quick = Command::new("true").spawn().unwrap();
    let pid = quick.id();
    green_wait_until("the child to exit", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    quick.kill().unwrap();
    assert!(quick.wait().unwrap().success());
}

// gevent: test__subprocess_poll.py (polling in a loop ends: no yield
// needed for the status to arrive).
#[test]
fn try_wait_before_and_after_the_exit() {
    let _fds = shared();
    let mut child = Command::new("sleep").arg("0.05").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "try_wait never saw the exit");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(status.success());
    assert_eq!(child.try_wait().unwrap(), Some(status));
    assert_eq!(child.wait().unwrap(), status);
}

#[test]
fn a_child_that_outlives_its_handle_is_reaped_in_the_background() {
    let _fds = shared();
    // Dropped while running, with its pipes.
    let child = sh("sleep 0.05").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    drop(child);
    assert!(exists(pid), "dropping the handle does not kill the child");
    green_wait_until("the dropped child to be reaped", || !exists(pid));

    // Dropped after it exited, never waited for.
    let child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    green_wait_until("the child to exit", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    });
    drop(child);
    assert!(!exists(pid), "a dropped zombie is reaped at once");

    // The background reaping does not keep the hub running: a root that
    // waits on nothing is told so (LoopExit) at once, not when the child
    // ends.
    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    drop(child);
    let start = Instant::now();
    let r = std::panic::catch_unwind(|| green::wait_watcher(None, |_wake| Ok(())));
    assert!(r.is_err(), "LoopExit expected");
    assert!(start.elapsed() < Duration::from_secs(10), "the dropped child kept the hub running");
    // SAFETY: kill has no memory effects; the child is not reaped yet
    // (its pidfd watcher reaps it), so the pid is still its own.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    green_wait_until("the killed dropped child to be reaped", || !exists(pid));
}

#[test]
fn large_output_on_stdout_and_stderr_at_once_does_not_deadlock() {
    let _fds = shared();
    // stderr first: a parent reading stdout to its end first would leave
    // the child blocked on a full stderr pipe for ever.
    const ERR: usize = 3 << 20;
    const OUT: usize = 5 << 20;
    let script = format!("head -c {ERR} /dev/zero | tr '\\0' e >&2; yes | head -c {OUT}");
    // A deadlock fails the test instead of hanging it.
    let out =
        green::with_timeout(Duration::from_secs(60), || sh(&script).output()).expect("deadlock").unwrap();
    assert!(out.status.success());
    assert_eq!(out.stderr.len(), ERR);
    assert!(out.stderr.iter().all(|&b| b == b'e'));
    assert_eq!(out.stdout.len(), OUT);
    assert!(out.stdout.chunks(2).all(|c| c == b"y\n"));

    // The same through the Read impls, one greenlet per pipe.
    let mut child = sh(&script).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = green::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).map(|_| v.len())
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut total = 0;
    let mut buf = [0; 65536];
    loop {
        match stdout.read(&mut buf).unwrap() {
            0 => break,
            n => total += n,
        }
    }
    assert_eq!(total, OUT);
    assert_eq!(err_reader.join().unwrap().unwrap(), ERR);
    assert!(child.wait().unwrap().success());
}

// gevent: TestPopen.test_popen_bufsize (a line in, the line back).
#[test]
fn stdin_piped_to_cat_round_trips() {
    let _fds = shared();
    let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"foobar\n").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "foobar\n");

    // Far more than a pipe holds, in both directions at once: a writer
    // greenlet, the root reading.
    let data: Vec<u8> = (0..(2 << 20)).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let writer = green::spawn(move || {
        stdin.write_all(&data)?;
        // `&ChildStdin` writes too.
        (&stdin).write_all(b"end")
    });
    let mut back = Vec::new();
    stdout.read_to_end(&mut back).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(back.len(), expected.len() + 3);
    assert!(back[..expected.len()] == expected[..] && back.ends_with(b"end"));
    assert!(child.wait().unwrap().success());
}

// gevent: TestPopen.test_communicate.
#[test]
fn communicate_input_and_both_outputs() {
    let _fds = shared();
    let mut child = sh("printf pineapple >&2; cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = green::spawn(move || stdin.write_all(b"banana"));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(out.stdout, b"banana");
    assert_eq!(out.stderr, b"pineapple");
    assert!(out.status.success());
}

#[test]
fn wait_closes_stdin_first() {
    let _fds = shared();
    // cat ends only when its input does: wait must close it.
    let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    assert!(child.stdin.is_some());
    assert!(child.wait().unwrap().success());
    assert!(child.stdin.is_none());
}

#[test]
fn writing_to_a_child_that_is_gone_is_broken_pipe() {
    let _fds = shared();
    let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    child.wait().unwrap();
    let big = vec![0u8; 1 << 20];
    assert_eq!(stdin.write_all(&big).unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn the_hub_runs_other_greenlets_while_a_greenlet_waits() {
    let _fds = shared();
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = green::spawn(move || {
        loop {
            green::sleep(Duration::from_millis(1));
            t.set(t.get() + 1);
        }
    });
    // The root waits on a child, then on its output; a greenlet waits too.
    let waiter = green::spawn(|| Command::new("sleep").arg("0.05").status().unwrap().success());
    assert!(Command::new("sleep").arg("0.05").status().unwrap().success());
    let during_status = ticks.get();
    let out = sh("sleep 0.05; echo done").output().unwrap();
    assert_eq!(out.stdout, b"done\n");
    assert!(waiter.join().unwrap());
    ticker.kill();
    assert!(during_status > 0, "the ticker never ran while the root waited for a child");
    assert!(ticks.get() > during_status, "the ticker never ran while the root read a child's output");
}

// gevent: TestPopen.test_child_exception, test_issue148.
#[test]
fn a_program_that_does_not_exist_is_not_found() {
    let _fds = shared();
    // Under valgrind, std's posix_spawn reports success for a program that
    // cannot be executed (the child's failed exec is not reported back).
    if std::env::var_os("LIBEV_UNDER_VALGRIND").is_some() {
        return;
    }
    for _ in 0..7 {
        let err = Command::new("this_name_must_not_exist").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }
    assert_eq!(Command::new("/nonexistent/dir/prog").status().unwrap_err().kind(), ErrorKind::NotFound);
}

// gevent: RunFuncTestCase.test_returncode, test_check_zero,
// test_capture_stdout, test_capture_stderr, test_run_kwargs, and
// TestPopen.test_check_output_keyword_error.
#[test]
fn output_and_status_capture_and_report() {
    let _fds = shared();
    assert_eq!(sh("exit 47").status().unwrap().code(), Some(47));
    assert!(sh("exit 0").status().unwrap().success());
    let out = sh("echo BDFL").output().unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"BDFL\n"[..], &b""[..]));
    let out = sh("printf BDFL >&2").output().unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b""[..], &b"BDFL"[..]));
    assert_eq!(sh("exit 44").output().unwrap().status.code(), Some(44));
    let status = sh("[ \"$FRUIT\" = banana ] && exit 33 || exit 31").env("FRUIT", "banana").status().unwrap();
    assert_eq!(status.code(), Some(33));
    // output() reads from a null stdin unless told otherwise.
    assert_eq!(Command::new("cat").output().unwrap().stdout, b"");
    // output()'s defaults do not stick: spawn afterwards inherits again.
    let mut cmd = sh("exit 0");
    cmd.output().unwrap();
    let child = cmd.spawn().unwrap();
    assert!(child.stdin.is_none() && child.stdout.is_none() && child.stderr.is_none());
    child.wait_with_output().unwrap();
}

// gevent: RunFuncTestCase.test_check_output_stdin_arg.
#[test]
fn stdin_from_a_file() {
    let _fds = shared();
    let path = std::env::temp_dir().join(format!("libev-green-process-{}", std::process::id()));
    std::fs::write(&path, b"pear").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let out = Command::new("tr").args(["a-z", "A-Z"]).stdin(file).output().unwrap();
    assert_eq!(out.stdout, b"PEAR");
}

// gevent: RunFuncTestCase.test_run_with_shell_timeout_and_capture_output
// and test_check_output_timeout (the output read before the timeout is
// kept).
#[test]
fn a_timeout_around_a_wait_ends_it_and_the_child_can_be_killed() {
    let _fds = shared();
    let start = Instant::now();
    let r: Result<_, Elapsed> = green::with_timeout(Duration::from_millis(100), || sh("sleep 3").output());
    assert!(r.is_err(), "the timeout did not expire");
    assert!(start.elapsed() < Duration::from_millis(2500), "the timeout waited for the child");

    let mut child = sh("printf BDFL; exec sleep 60").stdout(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let r: Result<_, Elapsed> =
        green::with_timeout(Duration::from_millis(200), || stdout.read_to_end(&mut got));
    assert!(r.is_err(), "the timeout did not expire");
    assert_eq!(got, b"BDFL");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn a_wait_interrupted_by_a_kill_of_its_greenlet_can_be_done_again() {
    let _fds = shared();
    let child = Rc::new(std::cell::RefCell::new(Command::new("sleep").arg("0.1").spawn().unwrap()));
    let c = child.clone();
    let g = green::spawn(move || c.borrow_mut().wait().map(|s| s.success()));
    green::sleep(Duration::from_millis(5));
    g.kill();
    assert!(g.join().is_err());
    assert!(child.borrow_mut().wait().unwrap().success());
}

// gevent: TestPopen.test_nonblock_removed (a green pipe handed to another
// child is blocking there).
#[test]
fn a_pipe_handed_to_another_child_is_blocking_again() {
    let _fds = shared();
    let mut writer = sh("sleep 0.2; echo text").stdout(Stdio::piped()).spawn().unwrap();
    let pipe = writer.stdout.take().unwrap();
    let fd = pipe.as_raw_fd();
    // SAFETY: F_GETFL on an fd this test owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert_ne!(flags & libc::O_NONBLOCK, 0, "green pipes are non-blocking");
    // A non-blocking stdin would make grep fail at once with EAGAIN.
    let mut grep = Command::new("grep").arg("text").stdin(pipe).stdout(Stdio::piped()).spawn().unwrap();
    green::sleep(Duration::from_millis(50));
    assert_eq!(grep.try_wait().unwrap(), None);
    let out = grep.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"text\n");
    assert!(writer.wait().unwrap().success());

    // As an fd, too.
    let mut child = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
    let fd = std::os::fd::OwnedFd::from(child.stdout.take().unwrap());
    // SAFETY: F_GETFL on an fd this test owns.
    assert_eq!(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } & libc::O_NONBLOCK, 0);
    child.wait().unwrap();
}

// gevent: test__issue600.py (the module's waiting does not break other
// code's own waitpid), and the issue's "must not steal other children's
// exit status".
#[test]
fn other_code_waiting_for_its_own_children_keeps_working() {
    let _fds = shared();
    let mut plain = std::process::Command::new("sh").args(["-c", "sleep 0.05; exit 5"]).spawn().unwrap();
    let green_children: Vec<_> = (0..5).map(|i| sh(&format!("exit {i}")).spawn().unwrap()).collect();
    for (i, mut c) in green_children.into_iter().enumerate() {
        assert_eq!(c.wait().unwrap().code(), Some(i as i32));
    }
    assert_eq!(plain.wait().unwrap().code(), Some(5));
}

// gevent: TestPopen.test_subprocess_in_native_thread, reversed: gevent
// refuses there; here every thread's hub can spawn and wait.
#[test]
fn children_on_several_threads_at_once() {
    let _fds = shared();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..5)
                    .map(|i| {
                        green::spawn(move || sh(&format!("exit {}", t * 10 + i)).status().unwrap().code())
                    })
                    .collect();
                green::joinall(gs).into_iter().map(|r| r.unwrap()).collect::<Vec<_>>()
            })
        })
        .collect();
    for (t, th) in threads.into_iter().enumerate() {
        let codes = th.join().unwrap();
        assert_eq!(codes, (0..5).map(|i| Some((t * 10 + i) as i32)).collect::<Vec<_>>());
    }
}

#[test]
fn command_builder_matches_std() {
    let _fds = shared();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "printf '%s|%s|%s|' \"$A\" \"${B-unset}\" \"$(pwd)\"; printf %s \"$1\"", "zero", "one"])
        .envs([("A", "1"), ("B", "2")])
        .env_remove("B")
        .current_dir("/");
    assert_eq!(cmd.get_program(), "sh");
    assert_eq!(cmd.get_args().count(), 4);
    assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/")));
    let out = cmd.output().unwrap();
    assert_eq!(out.stdout, b"1|unset|/|one");
    let out = Command::new("/usr/bin/env").env_clear().env("X", "y").output().unwrap();
    assert_eq!(out.stdout, b"X=y\n");
    let from_std = Command::from(std::process::Command::new("echo"));
    assert_eq!(from_std.as_std().get_program(), "echo");
    assert!(format!("{cmd:?}").contains("sh"));
}

// gevent: TestPopen.test_leak.
#[test]
fn no_fd_is_left_open() {
    let _alone = FDS.write().unwrap_or_else(|e| e.into_inner());
    // Threads of tests that just ended may still be closing theirs (their
    // thread-locals go after the lock): count once the number holds.
    let count = || {
        let read = || std::fs::read_dir("/proc/self/fd").unwrap().count();
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            match read() {
                n if n == last => return n,
                n => last = n,
            }
        }
    };
    // Warm up whatever opens fds once (the hub's loop, its eventfd).
    sh("exit 0").output().unwrap();
    let before = count();
    for _ in 0..5 {
        let out = sh("echo out; echo err >&2").stdin(Stdio::piped()).output().unwrap();
        assert_eq!(out.stdout, b"out\n");
        let mut child = Command::new("sleep").arg("60").stdout(Stdio::piped()).spawn().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        drop(child);
        // Dropped running: its pidfd lives until the hub reaps it.
        let child = Command::new("sleep").arg("0.01").stdout(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        drop(child);
        green_wait_until("the dropped child to be reaped", || !exists(pid));
        // The reaping watcher goes in the loop iteration after the reap.
        green::sleep(Duration::from_millis(1));
    }
    assert_eq!(count(), before);
}
