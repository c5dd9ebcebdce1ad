//! Green files (`green::fs`): std's `File` shapes, system calls on the
//! blocking pool (gevent's `FileObjectThread`). Cases from gevent's
//! `src/gevent/tests/test__fileobject.py` that apply to regular files are
//! named where they are ported.

mod util;

use libev::green::{self, fs, fs::File, fs::OpenOptions};
use std::cell::Cell;
use std::ffi::CString;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;
use util::TempDir;

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "{}", std::io::Error::last_os_error());
}

/// Opens the FIFO at `path` for writing once a reader has it open (a
/// non-blocking open fails with ENXIO before), sleeping greenly between
/// tries.
fn open_fifo_writer(path: &Path) -> std::fs::File {
    for _ in 0..5000 {
        match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
            Ok(f) => return f,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => green::sleep(Duration::from_millis(1)),
            Err(e) => panic!("open the FIFO for writing: {e}"),
        }
    }
    panic!("no reader opened the FIFO");
}

/// Deterministic bytes that are not all alike.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

#[test]
fn file_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<File>();
    assert_send_sync::<OpenOptions>();
}

#[test]
fn a_large_write_and_fsync_leave_the_hub_running() {
    let dir = TempDir::new("large-write");
    let path = dir.path("big");
    let data = pattern(32 << 20);
    let done = Rc::new(Cell::new(false));
    let ticks = Rc::new(Cell::new(0u64));
    let ticker = green::spawn({
        let (done, ticks) = (done.clone(), ticks.clone());
        move || {
            while !done.get() {
                ticks.set(ticks.get() + 1);
                green::yield_now();
            }
        }
    });
    let mut f = File::create(&path).unwrap();
    let before = ticks.get();
    f.write_all(&data).unwrap();
    let during_write = ticks.get() - before;
    f.sync_all().unwrap();
    let during_both = ticks.get() - before;
    done.set(true);
    ticker.join().unwrap();
    // Each call parked this greenlet, so the ticker ran while it went on.
    assert!(during_write > 0, "the ticker did not run during write_all");
    assert!(during_both > during_write, "the ticker did not run during sync_all");
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn open_and_read_of_a_fifo_wait_on_the_pool_while_greenlets_run() {
    let dir = TempDir::new("fifo");
    let path = dir.path("fifo");
    mkfifo(&path);
    let writer = green::spawn({
        let path = path.clone();
        move || {
            // Only this greenlet can let the open below return: it opens
            // the other end once the reader's open is under way.
            let mut w = open_fifo_writer(&path);
            green::sleep(Duration::from_millis(5));
            w.write_all(b"hello").unwrap();
        }
    });
    // Blocks in open(2) until the writer opens its end: on the pool.
    let mut f = File::open(&path).unwrap();
    let mut buf = [0; 16];
    // Blocks in read(2) until the writer writes: on the pool.
    let n = f.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    writer.join().unwrap();
    assert_eq!(f.read(&mut buf).unwrap(), 0, "end of file once the writer closed");
}

/// A timeout that expires while a read runs on the pool cannot cut it
/// short: the read returns what it read (nothing is lost), and the
/// timeout stays pending for the next blocking call.
#[test]
fn a_timeout_waits_for_the_call_and_keeps_what_it_read() {
    let dir = TempDir::new("timeout");
    let path = dir.path("fifo");
    mkfifo(&path);
    let wrote = Rc::new(Cell::new(false));
    let writer = green::spawn({
        let (path, wrote) = (path.clone(), wrote.clone());
        move || {
            let mut w = open_fifo_writer(&path);
            green::sleep(Duration::from_millis(30));
            w.write_all(b"late").unwrap();
            wrote.set(true);
            w
        }
    });
    let f = File::open(&path).unwrap();
    let mut got = [0; 8];
    let mut read = None;
    let r = green::with_timeout(Duration::from_millis(5), || {
        read = Some((&f).read(&mut got).unwrap());
        // Pending, the timeout is raised by the next blocking call.
        green::sleep(Duration::from_secs(60));
    });
    assert!(r.is_err());
    assert!(wrote.get(), "the read ran to its end first");
    assert_eq!(read, Some(4));
    assert_eq!(&got[..4], b"late", "what it read is kept");
    // The file is still usable.
    let mut w = writer.join().unwrap();
    w.write_all(b"more").unwrap();
    let mut buf = [0; 8];
    let n = (&f).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"more");
}

/// gevent: `TestFileObjectBlock.test_seek`.
#[test]
fn seek_then_read_matches_std() {
    let dir = TempDir::new("seek");
    let s = vec![b'a'; 1024];
    let mut content = vec![b'B'; 15];
    content.extend_from_slice(&s);
    let path = dir.write("file", &content);

    let mut native = std::fs::File::open(&path).unwrap();
    native.seek(SeekFrom::Start(15)).unwrap();
    let mut native_data = vec![0; 1024];
    native.read_exact(&mut native_data).unwrap();

    let mut f = File::open(&path).unwrap();
    assert_eq!(f.seek(SeekFrom::Start(15)).unwrap(), 15);
    assert_eq!(f.stream_position().unwrap(), 15);
    let mut data = vec![0; 1024];
    f.read_exact(&mut data).unwrap();
    assert_eq!(native_data, s);
    assert_eq!(data, native_data);
    // From the end (on the pool) and relative.
    assert_eq!(f.seek(SeekFrom::End(-4)).unwrap(), 1035);
    assert_eq!(f.seek(SeekFrom::Current(-11)).unwrap(), 1024);
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, [b'a'; 15]);
    assert_eq!(f.seek(SeekFrom::Current(-2000)).unwrap_err().kind(), ErrorKind::InvalidInput);
}

/// gevent: `TestFileObjectBlock.test_readinto_serial`.
#[test]
fn reads_of_several_sizes_in_a_row() {
    let dir = TempDir::new("readinto");
    let path = dir.write("file", b"hello world");
    let mut f = File::open(&path).unwrap();
    let mut buf = [0; 32];
    for (len, expected) in [(2, &b"he"[..]), (1, b"l"), (32, b"lo world"), (32, b"")] {
        let n = f.read(&mut buf[..len]).unwrap();
        assert_eq!(&buf[..n], expected);
    }
}

/// gevent: `test_str_default_to_native`, `test_r_readline_produces_native`
/// (`__check_native_matches`: the green object reads what std reads).
#[test]
fn whole_reads_and_lines_match_std() {
    let dir = TempDir::new("native");
    let text = "line1\nline2\r\nline3\rlastline\n\n\u{2603}";
    let path = dir.write("file", text);
    let mut s = String::new();
    File::open(&path).unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, std::fs::read_to_string(&path).unwrap());
    let mut v = Vec::new();
    File::open(&path).unwrap().read_to_end(&mut v).unwrap();
    assert_eq!(v, std::fs::read(&path).unwrap());
    let green_lines: Vec<String> =
        BufReader::new(File::open(&path).unwrap()).lines().collect::<Result<_, _>>().unwrap();
    let std_lines: Vec<String> =
        BufReader::new(std::fs::File::open(&path).unwrap()).lines().collect::<Result<_, _>>().unwrap();
    assert_eq!(green_lines, std_lines);
    // Not UTF-8: the same error as std's.
    std::fs::write(&path, [0xff, 0xfe]).unwrap();
    assert_eq!(File::open(&path).unwrap().read_to_string(&mut s).unwrap_err().kind(), ErrorKind::InvalidData);
    assert_eq!(fs::read_to_string(&path).unwrap_err().kind(), ErrorKind::InvalidData);
}

#[test]
fn small_buffered_reads_and_one_large_read_agree() {
    let dir = TempDir::new("sizes");
    let data = pattern(1 << 20);
    let path = dir.write("file", &data);
    // 8 KiB reads (tried from the page cache first where the OS allows).
    let mut small = Vec::new();
    let mut r = BufReader::with_capacity(8 * 1024, File::open(&path).unwrap());
    loop {
        let chunk = r.fill_buf().unwrap();
        if chunk.is_empty() {
            break;
        }
        small.extend_from_slice(chunk);
        let n = chunk.len();
        r.consume(n);
    }
    assert_eq!(small, data);
    // One read of it all (on the pool).
    let mut big = vec![0; data.len()];
    File::open(&path).unwrap().read_exact(&mut big).unwrap();
    assert_eq!(big, data);
    // Odd sizes and positions, plain and positioned.
    let f = File::open(&path).unwrap();
    for (at, len) in [(0usize, 1usize), (4095, 3), (70_000, 65_536), (1_000_000, 65_537), (1 << 20, 10)] {
        let mut buf = vec![0; len];
        let n = f.read_at(&mut buf, at as u64).unwrap();
        let end = (at + len).min(data.len());
        assert!(n > 0 || at == data.len(), "read_at({at}, {len}) read nothing");
        assert_eq!(&buf[..n], &data[at..at + n]);
        assert!(at + n <= end);
    }
}

#[test]
fn a_missing_path_is_not_found() {
    let dir = TempDir::new("missing");
    assert_eq!(File::open(dir.path("nothing")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::read(dir.path("nothing")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(File::create(dir.path("no-dir").join("file")).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(OpenOptions::new().write(true).open(&dir.0).unwrap_err().kind(), ErrorKind::IsADirectory);
    // Neither read nor write asked for: std's error.
    assert_eq!(OpenOptions::new().open(dir.path("x")).unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[test]
fn writing_a_file_opened_for_reading_fails() {
    let dir = TempDir::new("read-only");
    let path = dir.write("file", b"keep");
    let mut f = File::open(&path).unwrap();
    assert_eq!(f.write(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(f.write_all(b"x").unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert_eq!(f.write_at(b"x", 0).unwrap_err().raw_os_error(), Some(libc::EBADF));
    let n = 1;
    assert_eq!(write!(f, "{n}").unwrap_err().raw_os_error(), Some(libc::EBADF));
    assert!(f.set_len(0).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    // And reading one opened for writing.
    let mut w = File::create(dir.path("w")).unwrap();
    assert_eq!(w.read(&mut [0; 4]).unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn create_new_refuses_an_existing_file() {
    let dir = TempDir::new("create-new");
    let path = dir.path("file");
    let mut f = File::create_new(&path).unwrap();
    f.write_all(b"first").unwrap();
    assert_eq!(File::create_new(&path).unwrap_err().kind(), ErrorKind::AlreadyExists);
    // create_new opens for reading too, as std's does.
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "first");
}

#[test]
fn options_append_truncate_and_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("options");
    let path = dir.path("file");
    File::options().write(true).create(true).mode(0o640).open(&path).unwrap().write_all(b"ab").unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640 & !umask());
    File::options().append(true).open(&path).unwrap().write_all(b"cd").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
    let mut std_options = std::fs::OpenOptions::new();
    std_options.write(true).truncate(true);
    OpenOptions::from(std_options).open(&path).unwrap().write_all(b"e").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"e");
}

/// The process's umask, read without changing it (other tests create
/// files meanwhile).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Umask in /proc/self/status");
    u32::from_str_radix(line.trim(), 8).unwrap()
}

#[test]
fn set_len_metadata_and_syncs() {
    let dir = TempDir::new("set-len");
    let path = dir.path("file");
    let mut f = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.write_all(b"0123456789").unwrap();
    f.sync_data().unwrap();
    assert_eq!(f.metadata().unwrap().len(), 10);
    f.set_len(4).unwrap();
    f.sync_all().unwrap();
    assert_eq!(f.metadata().unwrap().len(), 4);
    f.rewind().unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "0123");
    f.set_len(6).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123\0\0");
}

#[test]
fn positioned_io_leaves_the_position() {
    let dir = TempDir::new("positioned");
    let path = dir.path("file");
    let mut f = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    f.write_all(b"abc").unwrap();
    f.write_all_at(b"XY", 1).unwrap();
    assert_eq!(f.write_at(b"Z", 5).unwrap(), 1);
    let mut buf = [0; 6];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"aXY\0\0Z");
    assert_eq!(f.stream_position().unwrap(), 3);
    assert_eq!(f.read_exact_at(&mut buf, 3).unwrap_err().kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn free_functions_round_trip() {
    let dir = TempDir::new("free");
    let path = dir.path("file");
    fs::write(&path, "some text").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"some text");
    assert_eq!(fs::read_to_string(&path).unwrap(), "some text");
    fs::write(&path, vec![1u8, 2]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), [1, 2]);
}

#[test]
fn write_fmt_and_vectored_io() {
    let dir = TempDir::new("fmt");
    let path = dir.path("file");
    let mut f = File::create(&path).unwrap();
    let (one, two) = (1, "two");
    write!(f, "{one}-{two}").unwrap();
    let n = f.write_vectored(&[std::io::IoSlice::new(b"+a"), std::io::IoSlice::new(b"b")]).unwrap();
    assert!(n > 0);
    drop(f);
    let content = std::fs::read_to_string(&path).unwrap();
    assert!(content.starts_with("1-two+"), "{content}");
    let mut f = File::open(&path).unwrap();
    let (mut a, mut b) = ([0; 3], [0; 16]);
    let n =
        f.read_vectored(&mut [std::io::IoSliceMut::new(&mut a), std::io::IoSliceMut::new(&mut b)]).unwrap();
    assert_eq!(n, content.len());
    assert_eq!(&a, b"1-t");
}

#[test]
fn conversions_keep_the_open_file() {
    let dir = TempDir::new("conversions");
    let path = dir.write("file", b"xyz");
    let mut std_file = std::fs::File::open(&path).unwrap();
    std_file.seek(SeekFrom::Start(1)).unwrap();
    let mut f = File::from_std(std_file);
    let mut c = f.try_clone().unwrap();
    let mut one = [0; 1];
    c.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"y", "a clone shares the position");
    let owned: std::os::fd::OwnedFd = f.into();
    f = File::from(owned);
    f.read_exact(&mut one).unwrap();
    assert_eq!(&one, b"z");
    let back = f.into_std();
    assert_eq!(back.metadata().unwrap().len(), 3);
    assert!(format!("{:?}", File::from(back)).contains("File"));
}

#[test]
fn a_file_moves_to_another_thread() {
    let dir = TempDir::new("threads");
    let path = dir.path("file");
    let f = File::create(&path).unwrap();
    let t = std::thread::spawn(move || {
        // That thread's own hub runs a greenlet while the write waits.
        let other = green::spawn(|| 7);
        (&f).write_all(b"from a thread").unwrap();
        other.join().unwrap()
    });
    assert_eq!(t.join().unwrap(), 7);
    assert_eq!(std::fs::read(&path).unwrap(), b"from a thread");
}

#[test]
fn file_io_inside_a_hub_callback_is_refused() {
    let dir = TempDir::new("callback");
    let path = dir.write("file", b"cached");
    let f = File::open(&path).unwrap();
    let lp = green::hub_loop();
    // Even a read the page cache could serve: whether it panics does not
    // depend on the cache.
    let t = libev::Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, move |_, _| {
        let _ = (&f).read(&mut [0; 4]);
    });
    t.start();
    let err = catch_unwind(AssertUnwindSafe(|| green::sleep(Duration::from_millis(50)))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("file I/O") && msg.contains("BlockingSwitchOutError"), "{msg}");
}

#[test]
fn many_greenlets_read_and_write_files_at_once() {
    let dir = Rc::new(TempDir::new("many"));
    let gs: Vec<_> = (0..50u8)
        .map(|i| {
            let dir = dir.clone();
            green::spawn(move || {
                let path = dir.path(&format!("f{i}"));
                let data = vec![i; 10_000 + usize::from(i)];
                let mut f = File::create(&path).unwrap();
                f.write_all(&data).unwrap();
                drop(f);
                fs::read(&path).unwrap() == data
            })
        })
        .collect();
    assert!(green::joinall(gs).into_iter().all(|r| r.unwrap()));
}
