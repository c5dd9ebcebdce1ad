//! `ev_stat`, written by hand because it embeds the platform's `struct stat`.
//!
//! bindgen would freeze one platform's `struct stat` into the committed
//! bindings; taking it from `libc` keeps them right on every 64-bit Unix.
//! `tests/abi.rs` checks this layout against the compiled C.

use crate::{ev_loop, ev_timer, ev_tstamp, ev_watcher_list};
use core::ffi::{c_char, c_int, c_void};

/// `ev_statdata`: the platform's `struct stat` (`st_nlink == 0` means the
/// path does not exist or could not be stat'ed).
pub type ev_statdata = libc::stat;

/// `ev_stat`: invoked each time the stat data of `path` changes.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct ev_stat {
    /// private
    pub active: c_int,
    /// private
    pub pending: c_int,
    /// private
    pub priority: c_int,
    /// rw: free for the user (`EV_COMMON`)
    pub data: *mut c_void,
    /// private: set with `ev_init`/`ev_set_cb`
    pub cb: Option<unsafe extern "C" fn(loop_: *mut ev_loop, w: *mut ev_stat, revents: c_int)>,
    /// private
    pub next: *mut ev_watcher_list,
    /// private: the polling timer
    pub timer: ev_timer,
    /// ro: polling interval (0 lets libev choose)
    pub interval: ev_tstamp,
    /// ro: the path watched; must stay valid while the watcher is active
    pub path: *const c_char,
    /// ro: the previous attributes
    pub prev: ev_statdata,
    /// ro: the most recent attributes
    pub attr: ev_statdata,
    /// private: inotify watch descriptor, or kqueue fd
    pub wd: c_int,
}

impl core::fmt::Debug for ev_stat {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ev_stat")
            .field("active", &self.active)
            .field("pending", &self.pending)
            .field("priority", &self.priority)
            .field("interval", &self.interval)
            .field("path", &self.path)
            .field("wd", &self.wd)
            .finish_non_exhaustive()
    }
}
