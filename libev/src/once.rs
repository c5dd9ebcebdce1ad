//! [`Loop::once`]: libev's `ev_once`, a callback for one event.
//!
//! libev's own `ev_once` allocates its watchers where nothing can reach
//! them: a loop destroyed (or given back to C) before they fire would leak
//! them, or call into a Rust side that is gone. So the pair of watchers
//! lives here, in a node the loop lists (`Onces`), and the loop stops and
//! frees whatever is left when it goes, dropping those callbacks unrun.
//! The nodes hold no loop handle: a waiting `once` keeps `run` going, as
//! in C, but not the loop alive.

use crate::event_loop::{Loop, Shared, report_orphan_panic, tstamp};
use crate::flags::Events;
use libev_sys as sys;
use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::io;
use std::mem::{MaybeUninit, offset_of};
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::Duration;

type OnceFn = Box<dyn FnOnce(Events)>;

/// The watchers of one `once`, at a stable heap address.
#[repr(C)]
struct OnceNode {
    io: sys::ev_io,
    timer: sys::ev_timer,
    /// Its index in `Onces::nodes`.
    slot: Cell<usize>,
    f: Cell<Option<OnceFn>>,
}

/// The loop's waiting `once` nodes.
#[derive(Default)]
pub(crate) struct Onces {
    nodes: RefCell<Vec<NonNull<OnceNode>>>,
}

impl Loop {
    /// Calls `f` once, on the first of: `fd` becoming ready for `events`
    /// (`READ`, `WRITE` or both), or `timeout` passing (libev's `ev_once`).
    /// `f` receives the events: `READ`/`WRITE`, [`Events::TIMER`], or
    /// [`Events::ERROR`] if the fd is not valid when the loop polls it.
    /// Either trigger may be `None`, not both.
    ///
    /// A waiting `once` keeps [`run`](Loop::run) going, like an active
    /// watcher, but not the loop alive: if the loop is dropped first, `f`
    /// is dropped without being called.
    ///
    /// Fails with `EBADF` for a negative or closed fd, and with
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for events other than
    /// `READ | WRITE`, or when neither trigger is given.
    ///
    /// ```
    /// use libev::{Events, Loop};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    ///
    /// let lp = Loop::new()?;
    /// let got = Rc::new(Cell::new(Events::empty()));
    /// let seen = got.clone();
    /// lp.once(None, Some(Duration::from_millis(1)), move |ev| seen.set(ev))?;
    /// lp.run();
    /// assert_eq!(got.get(), Events::TIMER);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn once(
        &self,
        fd: Option<(RawFd, Events)>,
        timeout: Option<Duration>,
        f: impl FnOnce(Events) + 'static,
    ) -> io::Result<()> {
        if fd.is_none() && timeout.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Loop::once needs an fd or a timeout (or both)",
            ));
        }
        if let Some((fd, events)) = fd {
            crate::io_watcher::check(fd, events)?;
            if events.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "Loop::once: no events to wait for"));
            }
        }
        let shared = self.shared();
        let mut nodes = shared.onces.nodes.borrow_mut();
        let node = Box::new(OnceNode {
            // SAFETY: all-zero is a valid inactive watcher; initialised below.
            io: unsafe { MaybeUninit::zeroed().assume_init() },
            // SAFETY: as above.
            timer: unsafe { MaybeUninit::zeroed().assume_init() },
            slot: Cell::new(nodes.len()),
            f: Cell::new(Some(Box::new(f))),
        });
        let node = NonNull::from(Box::leak(node));
        nodes.push(node);
        drop(nodes);
        let l = self.raw();
        // SAFETY: the node's watchers are fresh and never move; the loop
        // stops them before the node is freed (`fire` or `shutdown`).
        unsafe {
            let n = node.as_ptr();
            if let Some((fd, events)) = fd {
                sys::ev_io_init(&raw mut (*n).io, Some(on_io), fd, events.to_revents());
                sys::ev_io_start(l, &raw mut (*n).io);
            }
            if let Some(timeout) = timeout {
                sys::ev_timer_init(&raw mut (*n).timer, Some(on_timer), tstamp(timeout), 0.0);
                sys::ev_timer_start(l, &raw mut (*n).timer);
            }
        }
        Ok(())
    }
}

impl Onces {
    /// Unlists `node` and stops its watchers; the caller frees it.
    fn remove(&self, l: *mut sys::ev_loop, node: NonNull<OnceNode>) {
        let mut nodes = self.nodes.borrow_mut();
        // SAFETY: listed nodes are alive.
        let slot = unsafe { node.as_ref() }.slot.get();
        nodes.swap_remove(slot);
        if let Some(moved) = nodes.get(slot) {
            // SAFETY: as above.
            unsafe { moved.as_ref() }.slot.set(slot);
        }
        // SAFETY: our watchers on the loop they were started on.
        unsafe {
            sys::ev_io_stop(l, &raw mut (*node.as_ptr()).io);
            sys::ev_timer_stop(l, &raw mut (*node.as_ptr()).timer);
        }
    }

    /// Stops and frees every waiting node, dropping the callbacks unrun:
    /// the loop is going.
    pub(crate) fn shutdown(&self, l: *mut sys::ev_loop) {
        loop {
            let Some(&node) = self.nodes.borrow().last() else { break };
            self.remove(l, node);
            // SAFETY: allocated in `Loop::once`, unlisted and stopped: ours.
            let node = unsafe { Box::from_raw(node.as_ptr()) };
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(node))) {
                report_orphan_panic(&p);
            }
        }
    }
}

/// Runs the `once` of `node` with `revents`, after freeing the node.
///
/// # Safety
///
/// `node` is a listed node of loop `l`, which libev calls back for.
unsafe fn fire(l: *mut sys::ev_loop, node: NonNull<OnceNode>, revents: c_int) {
    // SAFETY: libev calls back only for live loops made by `Loop::wrap`.
    let lp = unsafe { Shared::from_raw(l) };
    lp.onces.remove(l, node);
    // SAFETY: allocated in `Loop::once`, now unlisted and stopped: ours.
    let node = unsafe { Box::from_raw(node.as_ptr()) };
    let f = node.f.take();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        drop(node);
        if let Some(f) = f {
            f(Events::from_revents(revents));
        }
    }));
    if let Err(payload) = result {
        lp.handle_panic(payload);
    }
}

unsafe extern "C" fn on_io(l: *mut sys::ev_loop, w: *mut sys::ev_io, revents: c_int) {
    // SAFETY: `io` is the first field of a listed `OnceNode`.
    unsafe { fire(l, NonNull::new_unchecked(w.cast()), revents) }
}

unsafe extern "C" fn on_timer(l: *mut sys::ev_loop, w: *mut sys::ev_timer, revents: c_int) {
    // SAFETY: `timer` lies at its offset in a listed `OnceNode`.
    unsafe { fire(l, NonNull::new_unchecked(w.byte_sub(offset_of!(OnceNode, timer)).cast()), revents) }
}
