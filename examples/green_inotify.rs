//! Making a non-blocking C API green: Linux's inotify, through `libc`, in
//! a few lines.
//!
//! One greenlet watches a directory: it parks in `green::wait_readable`
//! until the inotify fd has events, then reads them without blocking.
//! Another greenlet creates and removes files meanwhile. Neither blocks
//! the other, or the hub.
//!
//! Run: `cargo run --example green_inotify [DIR]` (default: a fresh
//! directory under the temp dir). It prints each event and exits after
//! the writer's six changes have been seen.

#[path = "support/cli.rs"]
mod cli;

use libev::green;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// An inotify instance watching one directory.
struct Inotify {
    fd: OwnedFd,
}

impl Inotify {
    fn watch(dir: &Path) -> io::Result<Inotify> {
        // SAFETY: no pointers; returns a new fd or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: inotify_init1 just returned this fd, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let path = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let mask = libc::IN_CREATE | libc::IN_DELETE | libc::IN_CLOSE_WRITE;
        // SAFETY: a valid fd and NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), path.as_ptr(), mask) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Inotify { fd })
    }

    /// The events ready now, waiting (green) until there is at least one.
    fn next_events(&self) -> io::Result<Vec<(u32, String)>> {
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a live buffer of its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                return Ok(parse(&buf[..n as usize]));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock {
                return Err(err);
            }
            // The one line that makes it green.
            green::wait_readable(&self.fd, Some(Duration::from_secs(10)))?;
        }
    }
}

/// Splits a buffer of `struct inotify_event`s into (mask, name) pairs.
fn parse(mut buf: &[u8]) -> Vec<(u32, String)> {
    let header = std::mem::size_of::<libc::inotify_event>();
    let mut out = Vec::new();
    while buf.len() >= header {
        // SAFETY: the kernel wrote whole events; read_unaligned copes with
        // the byte buffer's alignment.
        let ev: libc::inotify_event = unsafe { std::ptr::read_unaligned(buf.as_ptr().cast()) };
        let end = header + ev.len as usize;
        let name = CStr::from_bytes_until_nul(&buf[header..end])
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((ev.mask, name));
        buf = &buf[end..];
    }
    out
}

fn describe(mask: u32) -> &'static str {
    if mask & libc::IN_CREATE != 0 {
        "created"
    } else if mask & libc::IN_CLOSE_WRITE != 0 {
        "written"
    } else if mask & libc::IN_DELETE != 0 {
        "deleted"
    } else {
        "other"
    }
}

const USAGE: &str = "usage: green_inotify [DIR]\n  DIR  the directory to watch and write in (default: a new one under the temp dir)\n";

fn main() -> ExitCode {
    let given = match cli::parse("green_inotify", USAGE, |args| {
        let mut dir = None;
        for arg in args {
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                a if a.starts_with('-') => return Err(format!("unknown option {a}")),
                _ if dir.is_some() => return Err(format!("unexpected argument {arg:?}")),
                _ => dir = Some(PathBuf::from(arg)),
            }
        }
        Ok(Some(dir))
    }) {
        Ok(given) => given,
        Err(code) => return code,
    };
    let dir = match &given {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("green_inotify-{}", std::process::id())),
    };
    match run(&dir, given.is_none()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::fail("green_inotify", format_args!("watching {}", dir.display()), e),
    }
}

/// Watches `dir` (made first, and removed after, if `own`) while a
/// greenlet writes and deletes two files in it.
fn run(dir: &Path, own: bool) -> io::Result<()> {
    if own {
        std::fs::create_dir_all(dir)?;
    }
    let inotify = Inotify::watch(dir)?;
    println!("watching {}", dir.display());

    let files: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("file{i}.txt"))).collect();
    let writer = {
        let files = files.clone();
        green::spawn(move || -> io::Result<()> {
            for f in &files {
                green::sleep(Duration::from_millis(5));
                std::fs::write(f, b"hello")?;
            }
            for f in &files {
                green::sleep(Duration::from_millis(5));
                std::fs::remove_file(f)?;
            }
            Ok(())
        })
    };

    // Two files, each created, written and deleted.
    let mut seen = 0;
    while seen < 6 {
        for (mask, name) in inotify.next_events()? {
            println!("{name}: {}", describe(mask));
            seen += 1;
        }
    }
    writer.join().map_err(|e| io::Error::other(format!("the writer greenlet: {e}")))??;
    if own {
        std::fs::remove_dir(dir)?;
    }
    println!("saw {seen} events");
    Ok(())
}
