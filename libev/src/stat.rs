//! [`Stat`]: changes to a path's attributes.

use crate::event_loop::{Loop, tstamp};
use crate::watcher::{plain_start, raw_watchers, watcher_type};
use libev_sys as sys;
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

// libev's own functions; `release` frees only the path CString we
// leaked into the watcher.
raw_watchers! {
    ev_stat => ev_stat_start, ev_stat_stop {
        unsafe fn relocate(old: *mut Self, _new: *mut Self) {
            // SAFETY: the new copy now owns the path.
            unsafe { (*old).path = std::ptr::null() }
        }
        unsafe fn release(w: *mut Self) {
            // SAFETY: `path` is null or a CString we leaked; the watcher is
            // stopped, so libev no longer reads it.
            unsafe {
                let path = (*w).path.cast_mut();
                if !path.is_null() {
                    (*w).path = std::ptr::null();
                    drop(CString::from_raw(path));
                }
            }
        }
    };
}

watcher_type! {
    /// Watches a path for attribute changes (libev's `ev_stat`): creation,
    /// deletion, size, times, permissions. Uses inotify on Linux where it
    /// can, else polls every `interval`. The callback runs when
    /// [`attr`](Stat::attr) differs from [`prev`](Stat::prev).
    Stat, ev_stat, StatCallback
}
plain_start!(Stat);

impl Stat {
    /// A stopped watcher for `path`, polled every `interval` when it must
    /// poll (zero: libev's default of about 5 s). The path need not exist.
    /// Fails with [`InvalidInput`](io::ErrorKind::InvalidInput) if it
    /// contains a NUL byte.
    pub fn new<F>(lp: &Loop, path: impl AsRef<Path>, interval: Duration, callback: F) -> io::Result<Stat>
    where
        F: FnMut(&Stat, crate::Events) + 'static,
    {
        let path = c_path(path.as_ref())?.into_raw();
        Ok(Stat::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` frees the path.
            unsafe { sys::ev_stat_set(w, path, tstamp(interval)) }
        }))
    }

    /// Watches `path` every `interval` instead (libev's `ev_stat_set`); an
    /// active watcher is restarted on them, keeping a pending event, and
    /// [`attr`](Stat::attr) is refreshed for the new path when it starts.
    /// Fails as [`Stat::new`] does, leaving the watcher unchanged.
    pub fn set(&self, path: impl AsRef<Path>, interval: Duration) -> io::Result<()> {
        let path = c_path(path.as_ref())?.into_raw();
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`, so libev
            // no longer reads the old path, which we free; `release` frees
            // the new one.
            unsafe {
                let old = (*w).path.cast_mut();
                if !old.is_null() {
                    drop(CString::from_raw(old));
                }
                sys::ev_stat_set(w, path, tstamp(interval));
            }
        });
        Ok(())
    }

    /// How often the path is polled when libev must poll it (libev's
    /// `interval` member; zero: libev's default). libev raises a nonzero
    /// interval below about 0.107 s to that minimum when it starts.
    pub fn interval(&self) -> Duration {
        // SAFETY: reads a field of our watcher.
        crate::event_loop::duration(unsafe { (*self.node.raw()).interval })
    }

    /// Sets the polling interval; an active watcher is restarted with it.
    pub fn set_interval(&self, interval: Duration) {
        let w = self.node.raw();
        self.node.while_stopped(|| {
            // SAFETY: the watcher is stopped inside `while_stopped`.
            unsafe { (*w).interval = tstamp(interval) }
        });
    }

    /// The watched path.
    pub fn path(&self) -> PathBuf {
        // SAFETY: `path` is our CString, alive as long as the watcher.
        let c = unsafe { CStr::from_ptr((*self.node.raw()).path) };
        PathBuf::from(std::ffi::OsStr::from_bytes(c.to_bytes()))
    }

    /// The attributes found by the latest check (`st_nlink == 0`: the path
    /// does not exist). Filled once the watcher is started or
    /// [`refresh`](Stat::refresh) is called.
    pub fn attr(&self) -> libc::stat {
        // SAFETY: reads a field of our watcher; libev writes it only while
        // the loop runs on this thread.
        unsafe { (*self.node.raw()).attr }
    }

    /// The attributes before the latest change.
    pub fn prev(&self) -> libc::stat {
        // SAFETY: as in `attr`.
        unsafe { (*self.node.raw()).prev }
    }

    /// Whether the path existed at the latest check.
    pub fn exists(&self) -> bool {
        self.attr().st_nlink != 0
    }

    /// Stats the path now and updates [`attr`](Stat::attr) (libev's
    /// `ev_stat_stat`), without calling the callback.
    pub fn refresh(&self) {
        let Some(lp) = self.node.shared() else {
            return;
        };
        lp.check_unlocked();
        // SAFETY: our watcher on its live loop; `path` is valid.
        unsafe { sys::ev_stat_stat(lp.raw(), self.node.raw()) }
    }
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}
