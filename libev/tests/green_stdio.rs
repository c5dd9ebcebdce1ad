//! Green file objects and standard input (`green::io`): pipes, sockets
//! and terminals read and written without blocking the thread, and
//! without touching the `O_NONBLOCK` flag others share; files and devices
//! on the blocking pool. Cases from gevent's
//! `src/gevent/tests/test__fileobject.py` are named where they are ported.
//! (Standard output and error are tested through the `green_cat`
//! example, in the root package's `tests/green_cat.rs`: redirecting this
//! process's fd 1 would swallow the test harness's report.)

mod util;

use libev::green::io::{FileObject, Mode};
use libev::green::{self, Elapsed};
use std::cell::Cell;
use std::io::{BufRead, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;
use util::{blocking_pipe, dup, is_nonblocking};

fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only asks whether the number is an open fd.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Pipes and terminals are opened again privately on Linux; elsewhere
/// they use the pool.
const REOPENS: bool = cfg!(target_os = "linux");

#[test]
fn a_blocking_pipe_is_read_without_touching_its_flags() {
    let (r, w) = blocking_pipe();
    // The object gets a duplicate: the same open file description as `r`,
    // as a child's fd 0 shares its parent's.
    let obj = FileObject::new(dup(&r)).unwrap();
    assert_eq!(obj.mode(), if REOPENS { Mode::Posix } else { Mode::Thread });
    let seen_blocking = Rc::new(Cell::new(None));
    let writer = green::spawn({
        let seen = seen_blocking.clone();
        move || {
            // The reader is parked by now: the shared description is
            // still blocking.
            seen.set(Some(!is_nonblocking(&r)));
            std::fs::File::from(w).write_all(b"through the pipe").unwrap();
            r
        }
    });
    let mut text = String::new();
    (&obj).read_to_string(&mut text).unwrap();
    assert_eq!(text, "through the pipe");
    let r = writer.join().unwrap();
    assert_eq!(seen_blocking.get(), Some(true));
    assert!(!is_nonblocking(&r) && !is_nonblocking(&obj));
}

#[test]
fn a_blocking_pipe_is_written_without_touching_its_flags() {
    let (r, w) = blocking_pipe();
    let writer = FileObject::new(dup(&w)).unwrap();
    let reader = FileObject::new(r).unwrap();
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let drain = green::spawn({
        let w = dup(&w);
        move || {
            // The writer has filled the pipe and parked.
            let blocking = !is_nonblocking(&w);
            drop(w);
            let mut got = Vec::new();
            (&reader).read_to_end(&mut got).unwrap();
            (blocking, got)
        }
    });
    (&writer).write_all(&data).unwrap();
    assert!(!is_nonblocking(&w));
    drop((writer, w));
    let (blocking, got) = drain.join().unwrap();
    assert!(blocking, "the write end's description was made non-blocking");
    assert_eq!(got.len(), data.len());
    assert!(got == data);
}

#[test]
fn a_read_of_a_pipe_can_be_interrupted_and_loses_nothing() {
    if !REOPENS {
        return; // a pool read cannot be cut short
    }
    let (r, w) = blocking_pipe();
    let obj = FileObject::new(r).unwrap();
    let mut buf = [0; 8];
    let got: Result<_, Elapsed> = green::with_timeout(Duration::from_millis(10), || (&obj).read(&mut buf));
    assert!(got.is_err(), "{got:?}");
    std::fs::File::from(w).write_all(b"later").unwrap();
    let n = (&obj).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"later");
}

/// gevent: `TestFileObjectBlock.test_del`, `test_del_close`,
/// `test_close_pipe`: dropping the object closes its fd, and the reader
/// then sees the data and the end of the pipe.
#[test]
fn dropping_a_writer_closes_its_fds() {
    let (r, w) = blocking_pipe();
    let w = {
        let low = w;
        util::high_dup(&low)
    };
    let number = w.as_raw_fd();
    let writer = FileObject::new(w).unwrap();
    (&writer).write_all(b"x").unwrap();
    drop(writer);
    assert!(!is_open(number), "the object closed the fd it was given");
    // The end of file shows that no private description is left open
    // either.
    let mut got = Vec::new();
    FileObject::new(r).unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got, b"x");
}

/// gevent: `ConcurrentFileObjectMixin.test_bufsize_0`.
#[test]
fn each_write_is_readable_at_once() {
    let (r, w) = blocking_pipe();
    let (x, y) = (FileObject::new(r).unwrap(), FileObject::new(w).unwrap());
    let mut b = [0; 1];
    (&y).write_all(b"a").unwrap();
    (&x).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"a");
    (&y).write_all(b"2").unwrap();
    (&x).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"2");
}

/// gevent: `ConcurrentFileObjectMixin.test_readinto`: the read is
/// cooperative (the writer greenlet runs while the reader waits).
#[test]
fn a_read_waits_cooperatively_for_a_writer_greenlet() {
    let (r, w) = blocking_pipe();
    let rf = FileObject::new(r).unwrap();
    let wf = FileObject::new(w).unwrap();
    let g = green::spawn(move || {
        for c in b"hello" {
            (&wf).write_all(&[*c]).unwrap();
        }
    });
    let (mut buf1, mut buf2) = ([0; 32], [0; 32]);
    let n1 = (&rf).read(&mut buf1).unwrap();
    let n2 = (&rf).read(&mut buf2).unwrap();
    assert_eq!(&buf1[..n1], b"hello");
    assert_eq!(n2, 0);
    g.join().unwrap();
}

/// gevent: `TestFileObjectPosix.test_seek_raises_ioerror`: the OS's
/// error, unchanged.
#[test]
fn seeking_a_pipe_fails_as_lseek_does() {
    let (r, _w) = blocking_pipe();
    // SAFETY: lseek on an open fd.
    assert_eq!(unsafe { libc::lseek(r.as_raw_fd(), 0, libc::SEEK_SET) }, -1);
    let os = std::io::Error::last_os_error();
    let err = FileObject::new(r).unwrap().seek(SeekFrom::Start(0)).unwrap_err();
    assert_eq!(err.raw_os_error(), os.raw_os_error());
    assert_eq!(err.raw_os_error(), Some(libc::ESPIPE));
    assert_eq!(err.to_string(), os.to_string());
}

/// gevent: `TestFileObjectBlock.test_seek`, through a file object
/// (`Mode::Thread`).
#[test]
fn a_regular_file_uses_the_pool() {
    let path = std::env::temp_dir().join(format!("libev-green-stdio-{}-file", std::process::id()));
    let mut content = vec![b'B'; 15];
    content.extend_from_slice(&[b'a'; 1024]);
    std::fs::write(&path, &content).unwrap();
    let mut f =
        FileObject::new(std::fs::File::options().read(true).write(true).open(&path).unwrap()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(f.mode(), Mode::Thread);
    assert_eq!(f.seek(SeekFrom::Start(15)).unwrap(), 15);
    assert_eq!(f.stream_position().unwrap(), 15);
    let mut data = vec![0; 1024];
    f.read_exact(&mut data).unwrap();
    assert_eq!(data, [b'a'; 1024]);
    f.write_all(b"end").unwrap();
    f.seek(SeekFrom::End(-3)).unwrap();
    let mut end = String::new();
    f.read_to_string(&mut end).unwrap();
    assert_eq!(end, "end");
}

#[test]
fn dev_null_uses_the_pool() {
    let null =
        FileObject::new(std::fs::File::options().read(true).write(true).open("/dev/null").unwrap()).unwrap();
    assert_eq!(null.mode(), Mode::Thread);
    assert_eq!((&null).read(&mut [0; 4]).unwrap(), 0);
    assert_eq!((&null).write(b"gone").unwrap(), 4);
}

#[test]
fn an_already_non_blocking_pipe_is_used_as_is() {
    let (r, w) = util::pipe();
    let number = r.as_raw_fd();
    let obj = FileObject::new(r).unwrap();
    assert_eq!(obj.mode(), Mode::Posix);
    assert_eq!(obj.as_raw_fd(), number);
    let writer = green::spawn(move || {
        green::sleep(Duration::from_millis(2));
        util::write_byte(&w, 7);
    });
    let mut b = [0; 1];
    (&obj).read_exact(&mut b).unwrap();
    assert_eq!(b, [7]);
    writer.join().unwrap();
    // Given back as it came: the same fd, still non-blocking.
    let back = OwnedFd::from(obj);
    assert_eq!(back.as_raw_fd(), number);
    assert!(is_nonblocking(&back));
}

#[test]
fn the_fd_comes_back_with_its_flags() {
    let (r, w) = blocking_pipe();
    let number = r.as_raw_fd();
    let obj = FileObject::new(r).unwrap();
    assert_eq!(obj.as_raw_fd(), number);
    let back = OwnedFd::from(obj);
    assert_eq!(back.as_raw_fd(), number);
    assert!(!is_nonblocking(&back));
    // Still the pipe.
    std::fs::File::from(w).write_all(b"ok").unwrap();
    let mut s = String::new();
    std::fs::File::from(back).read_to_string(&mut s).unwrap();
    assert_eq!(s, "ok");
}

#[test]
fn a_socket_uses_per_call_non_blocking_io() {
    let (a, b) = UnixStream::pair().unwrap();
    let obj = FileObject::new(a.try_clone().unwrap()).unwrap();
    assert_eq!(obj.mode(), Mode::Posix);
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let peer = green::spawn({
        let data = data.clone();
        move || {
            let b = FileObject::new(b).unwrap();
            let mut got = vec![0; data.len()];
            (&b).read_exact(&mut got).unwrap();
            (&b).write_all(b"bye").unwrap();
            got == data
        }
    });
    // More than the socket buffer: the write parks until the peer reads.
    (&obj).write_all(&data).unwrap();
    let mut bye = [0; 3];
    (&obj).read_exact(&mut bye).unwrap();
    assert_eq!(&bye, b"bye");
    assert!(peer.join().unwrap());
    assert!(!is_nonblocking(&a), "the socket's flags were changed");
}

#[test]
fn a_second_reader_of_one_object_is_refused() {
    let (r, w) = blocking_pipe();
    let obj = Rc::new(FileObject::new(r).unwrap());
    if obj.mode() != Mode::Posix {
        return;
    }
    let first = green::spawn({
        let obj = obj.clone();
        move || {
            let mut b = [0; 1];
            (&*obj).read_exact(&mut b).map(|()| b[0])
        }
    });
    green::yield_now(); // the first reader parks
    let err = (&*obj).read(&mut [0; 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceBusy);
    util::write_byte(&w, 9);
    assert_eq!(first.join().unwrap().unwrap(), 9);
}

/// A pseudo-terminal: (master, slave), the slave in raw mode. `None`
/// where the system has none to give.
fn raw_pty() -> Option<(OwnedFd, OwnedFd)> {
    let (master, slave) = util::pty()?;
    // SAFETY: termios is a plain C struct, filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: on the slave we own, with a live local.
    unsafe {
        assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
        libc::cfmakeraw(&mut t);
        assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
    }
    Some((master, slave))
}

#[test]
fn a_terminal_is_read_and_written_through_a_private_description() {
    let Some((master, slave)) = raw_pty() else { return };
    let obj = FileObject::new(dup(&slave)).unwrap();
    assert_eq!(obj.mode(), if REOPENS { Mode::Posix } else { Mode::Thread });
    if !REOPENS {
        return;
    }
    // Nothing typed yet: the read can be cut short, and the terminal's
    // shared description stays blocking.
    let got = green::with_timeout(Duration::from_millis(10), || (&obj).read(&mut [0; 8]));
    assert!(got.is_err());
    assert!(!is_nonblocking(&slave));
    let typist = green::spawn({
        let master = dup(&master);
        move || {
            green::sleep(Duration::from_millis(2));
            std::fs::File::from(master).write_all(b"typed").unwrap();
        }
    });
    let mut buf = [0; 5];
    (&obj).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"typed");
    typist.join().unwrap();
    (&obj).write_all(b"shown").unwrap();
    let mut shown = [0; 5];
    std::fs::File::from(dup(&master)).read_exact(&mut shown).unwrap();
    assert_eq!(&shown, b"shown");
    assert!(!is_nonblocking(&slave));
}

#[test]
fn a_terminal_master_is_not_opened_again() {
    let Some((master, _slave)) = raw_pty() else { return };
    // Opening it again would make a new terminal: the pool it is.
    assert_eq!(FileObject::new(master).unwrap().mode(), Mode::Thread);
}

/// Standard input, read through a pipe put in place of fd 0 (no other
/// test in this binary uses fd 0).
#[test]
fn stdin_reads_lines_from_a_pipe_under_its_lock() {
    let (r, w) = blocking_pipe();
    let saved = dup(&std::io::stdin());
    // SAFETY: dup2 replaces fd 0 with the pipe's read end (restored below).
    assert_eq!(unsafe { libc::dup2(r.as_raw_fd(), 0) }, 0);
    let stdin = green::io::stdin();
    assert_eq!(stdin.as_raw_fd(), 0);
    let order = Rc::new(std::cell::RefCell::new(Vec::new()));
    // Two greenlets read a line each: the second waits for the first's
    // lock, and neither sees part of the other's line.
    let readers: Vec<_> = ["first", "second"]
        .into_iter()
        .map(|who| {
            let order = order.clone();
            green::spawn(move || {
                let mut lock = green::io::stdin().lock();
                let mut line = String::new();
                lock.read_line(&mut line).unwrap();
                order.borrow_mut().push((who, line));
            })
        })
        .collect();
    let writer = green::spawn({
        let r = dup(&r);
        move || {
            let mut w = std::fs::File::from(w);
            for part in ["li", "ne 1\nline", " 2\nline 3\nline 4\n"] {
                green::sleep(Duration::from_millis(2));
                assert!(!is_nonblocking(&r), "stdin's description was made non-blocking");
                w.write_all(part.as_bytes()).unwrap();
            }
        }
    });
    green::joinall(readers).into_iter().for_each(|r| r.unwrap());
    writer.join().unwrap();
    assert_eq!(*order.borrow(), [("first", "line 1\n".to_owned()), ("second", "line 2\n".to_owned())]);
    // The rest of the input is buffered, and then the end of it.
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    assert_eq!(line, "line 3\n");
    let rest: Vec<String> = green::io::stdin().lines().collect::<Result<_, _>>().unwrap();
    assert_eq!(rest, ["line 4"]);
    assert_eq!((&stdin).read(&mut [0; 4]).unwrap(), 0);
    assert!(!is_nonblocking(&r));
    // SAFETY: puts the saved fd 0 back.
    assert_eq!(unsafe { libc::dup2(saved.as_raw_fd(), 0) }, 0);
}
