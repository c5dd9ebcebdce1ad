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
        let path = CString::new(path.as_ref().as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        let path = path.into_raw();
        Ok(Stat::from_closure(lp, callback, |w| {
            // SAFETY: a fresh, inactive watcher; `release` frees the path.
            unsafe { sys::ev_stat_set(w, path, tstamp(interval)) }
        }))
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
