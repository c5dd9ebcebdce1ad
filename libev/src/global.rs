//! libev's process-wide functions: [`sleep`], [`feed_signal`],
//! [`set_syserr_handler`] and [`set_allocator`].

use crate::event_loop::{PanicPayload, tstamp};
use libev_sys as sys;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::{CStr, c_char, c_long, c_void};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the process stands with libev's allocator: no loop yet and no
/// `set_allocator` running (`OPEN`), one running (`SETTING`), or a loop was
/// created or borrowed (`FROZEN`: the allocator can no longer change).
/// Atomics rather than a lock, which a `fork` could leave held for ever in
/// the child.
static ALLOC_STATE: AtomicU8 = AtomicU8::new(OPEN);
const OPEN: u8 = 0;
const SETTING: u8 = 1;
const FROZEN: u8 = 2;

/// Called before libev allocates anything for a new loop.
#[inline]
pub(crate) fn loop_created() {
    loop {
        match ALLOC_STATE.compare_exchange_weak(OPEN, FROZEN, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(FROZEN) => return,
            // A `set_allocator` is storing its allocator: a few instructions.
            Err(_) => std::hint::spin_loop(),
        }
    }
}

/// Sleeps for `duration` (libev's `ev_sleep`), like
/// [`std::thread::sleep`]; as in C, a signal may end it early. Never call
/// it on a loop's thread while callbacks wait, unless that is the point.
pub fn sleep(duration: Duration) {
    // libev turns the seconds into a `long` for nanosleep, which overflows
    // (undefined in C) for durations of centuries: sleep in slices.
    const SLICE: Duration = Duration::from_secs(1 << 30);
    let mut left = duration;
    while !left.is_zero() {
        let now = left.min(SLICE);
        // SAFETY: no preconditions; `now` fits libev's conversion.
        unsafe { sys::ev_sleep(tstamp(now)) };
        left -= now;
    }
}

/// libev's `EV_NSIG`: signal numbers are `1..EV_NSIG`.
pub(crate) const EV_NSIG: i32 = if cfg!(any(target_os = "linux", target_os = "android")) { 65 } else { 32 };

/// Tells libev that signal `signum` arrived (libev's `ev_feed_signal`), as
/// its own handler would: the loop watching `signum` (if any) wakes up and
/// runs its [`Signal`](crate::Signal) watchers. For programs that install
/// their own signal handler (with `sigaction`) and still want libev's
/// watchers to see the signal.
///
/// Async-signal-safe: it allocates nothing, takes no lock and can be called
/// from a signal handler, or from any thread. Fails with `EINVAL` for a
/// signal number outside `1..65` (Linux).
pub fn feed_signal(signum: i32) -> io::Result<()> {
    if signum <= 0 || signum >= EV_NSIG {
        // A "simple" io::Error: no allocation.
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: libev's async-signal-safe call, with a signal number in range
    // (it indexes an array by it unchecked).
    unsafe { sys::ev_feed_signal(signum) };
    Ok(())
}

/// What [`set_syserr_handler`] installs.
type SyserrHandler = Arc<dyn Fn(&str, io::Error) + Send + Sync>;

static SYSERR: Mutex<Option<SyserrHandler>> = Mutex::new(None);

thread_local! {
    /// A panic of the syserr handler, caught in C's call and re-raised when
    /// libev returns to the crate on this thread (`take_syserr_panic`).
    static SYSERR_PANIC: Cell<Option<PanicPayload>> = const { Cell::new(None) };
}

/// Installs a process-wide handler for the system call failures libev
/// cannot recover from (libev's `ev_set_syserr_cb`), such as `epoll_wait`
/// failing with an error other than `EINTR`. It receives libev's message
/// and the OS error.
///
/// Without a handler libev prints the message and aborts the process;
/// with one, libev carries on after the handler returns, and most such
/// failures recur in the next iteration, so a handler typically logs and
/// exits, or makes the program stop its loops. A panic in the handler does
/// not cross into C: it is caught and re-raised on the same thread when
/// libev returns to this crate (from [`Loop::run`](crate::Loop::run) and
/// the other calls that run libev code, or
/// [`AsyncSender::send`](crate::AsyncSender::send) on another thread).
///
/// The handler may run on any thread that calls into libev (so it is
/// `Send + Sync`), with libev in the middle of an operation: it must not
/// call back into the loop that failed.
///
/// ```
/// libev::set_syserr_handler(|msg, err| {
///     eprintln!("libev: {msg}: {err}");
///     std::process::exit(70);
/// });
/// libev::clear_syserr_handler();
/// ```
pub fn set_syserr_handler(handler: impl Fn(&str, io::Error) + Send + Sync + 'static) {
    // The old handler is dropped outside the lock (its destructor may
    // reach libev, whose failure would call `on_syserr`).
    let old = SYSERR.lock().unwrap_or_else(|e| e.into_inner()).replace(Arc::new(handler));
    drop(old);
    // SAFETY: a plain function pointer store; `on_syserr` is valid forever.
    unsafe { sys::ev_set_syserr_cb(Some(on_syserr)) };
}

/// Removes the handler: libev prints and aborts again.
pub fn clear_syserr_handler() {
    // SAFETY: a plain function pointer store.
    unsafe { sys::ev_set_syserr_cb(None) };
    let old = SYSERR.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(old);
}

unsafe extern "C" fn on_syserr(msg: *const c_char) {
    let err = io::Error::last_os_error();
    let handler = SYSERR.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(handler) = handler else {
        // Cleared meanwhile: do what libev does without a handler.
        eprintln!("libev: {}: {err}", message(msg));
        std::process::abort();
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| handler(&message(msg), err)));
    if let Err(payload) = result {
        // Keep the first; if the thread is being torn down, it is dropped.
        let _ = SYSERR_PANIC.try_with(|p| {
            let first = p.take();
            p.set(Some(first.unwrap_or(payload)));
        });
    }
}

fn message(msg: *const c_char) -> String {
    if msg.is_null() {
        return "(libev) system error".to_owned();
    }
    // SAFETY: libev passes a NUL-terminated string literal.
    unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned()
}

/// The syserr handler's panic caught on this thread, if any.
pub(crate) fn take_syserr_panic() -> Option<PanicPayload> {
    SYSERR_PANIC.try_with(Cell::take).ok().flatten()
}

/// Re-raises the syserr handler's panic caught on this thread, for calls
/// into libev that may run on a thread with no loop to re-raise it (a
/// wake-up write from another thread).
pub(crate) fn rethrow_syserr_panic() {
    if let Some(payload) = take_syserr_panic() {
        std::panic::resume_unwind(payload);
    }
}

type Allocator = &'static (dyn GlobalAlloc + Sync);

/// The allocator [`set_allocator`] installed (a leaked box: the fat
/// reference does not fit an atomic). Written only while no loop exists,
/// read by `ev_alloc` only while one does.
static ALLOCATOR: AtomicPtr<Allocator> = AtomicPtr::new(std::ptr::null_mut());

/// Routes libev's memory through `allocator` (libev's `ev_set_allocator`),
/// for instance the program's `#[global_allocator]`, or a counting or
/// arena allocator. Process-wide, and only before the first loop: memory
/// libev got from one allocator must go back to it. On allocation failure
/// libev prints a message and aborts, as with its default allocator.
///
/// Fails with [`ResourceBusy`](io::ErrorKind::ResourceBusy) once any loop
/// was created (or borrowed with [`Loop::from_raw`](crate::Loop::from_raw))
/// in this process. Loops created directly with [`crate::sys`] do not
/// count: set the allocator before making those.
///
/// ```
/// use std::alloc::System;
/// // Before any loop: libev's memory now comes from Rust's System allocator.
/// # let _ =
/// libev::set_allocator(&System);
/// ```
pub fn set_allocator(allocator: &'static (dyn GlobalAlloc + Sync)) -> io::Result<()> {
    loop {
        match ALLOC_STATE.compare_exchange_weak(OPEN, SETTING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => break,
            Err(FROZEN) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "libev's allocator can only be set before the first loop is created",
                ));
            }
            Err(_) => std::hint::spin_loop(),
        }
    }
    let old = ALLOCATOR.swap(Box::into_raw(Box::new(allocator)), Ordering::AcqRel);
    if !old.is_null() {
        // SAFETY: a box leaked by an earlier call; no loop exists, so no
        // `ev_alloc` can be reading it.
        drop(unsafe { Box::from_raw(old) });
    }
    // SAFETY: no loop exists (SETTING keeps one from being created), so no
    // memory from the previous allocator is live in libev; `ev_alloc` is
    // valid for ever.
    unsafe { sys::ev_set_allocator(Some(ev_alloc)) };
    ALLOC_STATE.store(OPEN, Ordering::Release);
    Ok(())
}

/// Room before each block for its size: libev's `realloc`-style interface
/// passes no old size, which `GlobalAlloc` needs.
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// libev's allocator interface (`realloc` semantics) over the installed
/// `GlobalAlloc`: `size` 0 frees, a null `ptr` allocates.
unsafe extern "C" fn ev_alloc(ptr: *mut c_void, size: c_long) -> *mut c_void {
    let alloc = ALLOCATOR.load(Ordering::Acquire);
    if alloc.is_null() {
        // Never: the callback is only installed after an allocator.
        return std::ptr::null_mut();
    }
    // SAFETY: a leaked box, freed only while no loop (so no call here) exists.
    let alloc = unsafe { *alloc };
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    // SAFETY: every non-null `ptr` libev passes came from this function,
    // HEADER bytes into a block whose first word holds its size.
    unsafe {
        let old = (!ptr.is_null()).then(|| {
            let base = ptr.cast::<u8>().sub(HEADER);
            (base, base.cast::<usize>().read())
        });
        match (old, size) {
            (None, 0) => std::ptr::null_mut(),
            (Some((base, old)), 0) => {
                alloc.dealloc(base, layout(old).expect("was allocated"));
                std::ptr::null_mut()
            }
            (old, size) => {
                let Some(new) = layout(size) else { return std::ptr::null_mut() };
                let base = match old {
                    None => alloc.alloc(new),
                    Some((base, old)) => alloc.realloc(base, layout(old).expect("was allocated"), new.size()),
                };
                if base.is_null() {
                    return std::ptr::null_mut();
                }
                base.cast::<usize>().write(size);
                base.add(HEADER).cast()
            }
        }
    }
}
