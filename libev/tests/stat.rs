//! `Stat` on real files in a private temporary directory: changes of size,
//! creation and deletion, `attr`/`prev`, `refresh`, with inotify and with
//! pure polling (`LoopFlags::NOINOTIFY`). Every wait is bounded.

mod util;

use libev::{Events, Loop, LoopFlags, Stat, Timer};
use std::cell::{Cell, RefCell};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use util::{Counter, run_until};

/// libev polls at least every ~0.1 s; asking for less just means "often".
const INTERVAL: Duration = Duration::from_millis(10);
/// A unique directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("libev-rs-stat-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // libev wants an absolute path without `.`/`..` components.
        TempDir(dir.canonicalize().unwrap())
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(path).unwrap().write_all(bytes).unwrap();
}

/// Runs `lp` for about `d` (a timer breaks out), for "nothing happens" checks.
fn run_for(lp: &Loop, d: Duration) {
    let over = Rc::new(Cell::new(false));
    let o = over.clone();
    let t = Timer::new(lp, d, Duration::ZERO, move |_, _| o.set(true));
    t.start();
    while !over.get() {
        lp.run_once();
    }
}

/// What a callback saw: (events, prev size, prev nlink, attr size, attr nlink).
type Seen = (Events, libc::off_t, libc::nlink_t, libc::off_t, libc::nlink_t);

fn recording_stat(lp: &Loop, path: &Path) -> (Stat, Rc<RefCell<Vec<Seen>>>) {
    let seen: Rc<RefCell<Vec<Seen>>> = Rc::default();
    let s = seen.clone();
    let st = Stat::new(lp, path, INTERVAL, move |w, ev| {
        let (p, a) = (w.prev(), w.attr());
        s.borrow_mut().push((ev, p.st_size, p.st_nlink, a.st_size, a.st_nlink));
    })
    .unwrap();
    (st, seen)
}

fn append_is_detected(lp: &Loop, tag: &str) {
    let dir = TempDir::new(tag);
    let path = dir.file("data");
    fs::write(&path, b"abc").unwrap();
    let (st, seen) = recording_stat(lp, &path);
    assert_eq!(st.path(), path);
    st.start();
    // Starting stats the path.
    assert!(st.exists());
    assert_eq!(st.attr().st_size, 3);
    assert_eq!(st.attr().st_nlink, 1);

    append(&path, b"defgh");
    run_until(lp, "the append", || !seen.borrow().is_empty());
    let (ev, prev_size, prev_nlink, size, nlink) = seen.borrow()[0];
    assert!(ev.contains(Events::STAT), "{ev:?}");
    assert_eq!((prev_size, prev_nlink), (3, 1));
    assert_eq!((size, nlink), (8, 1));
    assert_eq!(st.attr().st_size, 8);
    assert_eq!(st.prev().st_size, 3);
    assert!(st.exists());

    // And a second change, relative to the first.
    let before = seen.borrow().len();
    append(&path, b"ij");
    run_until(lp, "the second append", || seen.borrow().len() > before);
    assert_eq!(st.attr().st_size, 10);
    assert_eq!(st.prev().st_size, 8);

    st.stop();
    assert!(!lp.run(), "a stopped Stat leaves nothing active");
}

#[test]
fn append_changes_size_and_runs_the_callback() {
    let lp = Loop::new().unwrap();
    append_is_detected(&lp, "append");
}

#[test]
fn append_is_detected_by_polling_without_inotify() {
    let lp = util::loop_with_flags(LoopFlags::NOINOTIFY);
    append_is_detected(&lp, "poll-append");
}

fn creation_and_deletion(lp: &Loop, tag: &str) {
    let dir = TempDir::new(tag);
    let path = dir.file("later");
    let (st, seen) = recording_stat(lp, &path);
    st.start();
    assert!(!st.exists(), "the path does not exist yet");
    assert_eq!(st.attr().st_nlink, 0);

    fs::write(&path, b"xyz").unwrap();
    run_until(lp, "the creation", || st.exists() && st.attr().st_size == 3);
    {
        let seen = seen.borrow();
        // The first change seen is "path appeared".
        let (ev, _, prev_nlink, _, nlink) = seen[0];
        assert!(ev.contains(Events::STAT));
        assert_eq!(prev_nlink, 0, "before: did not exist");
        assert!(nlink >= 1, "after: exists");
    }

    let before = seen.borrow().len();
    fs::remove_file(&path).unwrap();
    run_until(lp, "the deletion", || seen.borrow().len() > before && !st.exists());
    let (_, prev_size, prev_nlink, _, nlink) = *seen.borrow().last().unwrap();
    assert_eq!(nlink, 0);
    assert_eq!((prev_size, prev_nlink), (3, 1), "prev describes the deleted file");
    assert_eq!(st.prev().st_nlink, 1);
    assert!(!st.exists());
}

#[test]
fn creation_and_deletion_are_changes() {
    let lp = Loop::new().unwrap();
    creation_and_deletion(&lp, "create");
}

#[test]
fn creation_and_deletion_are_detected_by_polling_without_inotify() {
    let lp = util::loop_with_flags(LoopFlags::NOINOTIFY);
    creation_and_deletion(&lp, "poll-create");
}

#[test]
fn refresh_updates_attr_without_running_the_callback() {
    let lp = Loop::new().unwrap();
    let dir = TempDir::new("refresh");
    let path = dir.file("data");
    fs::write(&path, b"12345").unwrap();
    let (st, seen) = recording_stat(&lp, &path);

    // Not started: nothing was stat'ed yet.
    assert_eq!(st.attr().st_nlink, 0);
    assert!(!st.exists());
    st.refresh();
    assert!(st.exists());
    assert_eq!(st.attr().st_size, 5);
    assert!(!st.is_active());

    st.start();
    append(&path, b"678");
    // Taking the change in by hand means the watcher does not report it.
    st.refresh();
    assert_eq!(st.attr().st_size, 8);
    run_for(&lp, Duration::from_millis(300));
    assert!(seen.borrow().is_empty(), "refresh hid that change: {:?}", seen.borrow());

    // Later changes are relative to the refreshed attributes.
    append(&path, b"9");
    run_until(&lp, "the append", || !seen.borrow().is_empty());
    let (_, prev_size, _, size, _) = seen.borrow()[0];
    assert_eq!((prev_size, size), (8, 9));
    st.stop();
}

#[test]
fn callback_may_stop_and_drop_its_watcher() {
    let lp = Loop::new().unwrap();
    let dir = TempDir::new("stop");
    let path = dir.file("data");
    fs::write(&path, b"a").unwrap();
    let slot: Rc<RefCell<Option<Stat>>> = Rc::default();
    let n = Counter::new();
    let (s, c) = (slot.clone(), n.clone());
    let st = Stat::new(&lp, &path, INTERVAL, move |w, _| {
        c.bump();
        assert_eq!(w.attr().st_size, 2);
        drop(s.borrow_mut().take());
        assert!(!w.is_active());
    })
    .unwrap();
    st.start();
    *slot.borrow_mut() = Some(st);
    append(&path, b"b");
    run_until(&lp, "the append", || n.get() > 0);
    assert!(slot.borrow().is_none());
    assert!(!lp.run(), "the dropped watcher no longer keeps the loop alive");
    assert_eq!(n.get(), 1);
}

#[test]
fn nul_byte_in_path_is_invalid_input() {
    let lp = Loop::new().unwrap();
    let err = Stat::new(&lp, "/tmp/a\0b", INTERVAL, |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn path_round_trips_non_utf8_bytes() {
    let lp = Loop::new().unwrap();
    let dir = TempDir::new("bytes");
    let path = dir.0.join(OsStr::from_bytes(b"caf\xe9"));
    let st = Stat::new(&lp, &path, Duration::ZERO, |_, _| {}).unwrap();
    assert_eq!(st.path(), path);
    st.start();
    assert!(!st.exists());
    fs::write(&path, b"").unwrap();
    st.refresh();
    assert!(st.exists());
    assert_eq!(st.attr().st_size, 0);
    fs::remove_file(&path).unwrap();
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
