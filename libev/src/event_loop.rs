//! [`Loop`]: an owned libev event loop.

use crate::callbacks::CallbackQueue;
use crate::flags::{Backend, Events, LoopFlags};
use libev_sys as sys;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::{Rc, Weak};
use std::sync::Mutex;
use std::thread::{self, ThreadId};
use std::time::Duration;

/// A panic payload caught in a callback (what `catch_unwind` returns).
pub type PanicPayload = Box<dyn Any + Send + 'static>;

type ErrorHandler = Box<dyn FnMut(PanicPayload)>;

/// How far [`Loop::break_loop`] unwinds nested [`Loop::run`] calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// Undo an earlier break that has not taken effect yet.
    Cancel,
    /// Make the innermost `run` return.
    One,
    /// Make every nested `run` return.
    All,
}

/// A libev event loop.
///
/// `Loop` is a cheap handle (clone it freely); the loop is destroyed when
/// the last handle goes. Every watcher holds a handle, so a watcher can never
/// outlive its loop. A loop belongs to the thread that created it:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<libev::Loop>();
/// ```
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<libev::Loop>();
/// ```
///
/// # Panics in callbacks
///
/// A panic in a watcher callback never crosses into C: the trampoline
/// catches it, breaks the loop, and [`run`](Loop::run) re-raises it once
/// libev has returned, unless an error handler was installed with
/// [`set_error_handler`](Loop::set_error_handler), which then receives the
/// payload while the loop goes on (gevent's `error_handler`).
///
/// # Example
///
/// ```
/// use libev::{Loop, Timer};
/// use std::time::Duration;
///
/// let lp = Loop::new()?;
/// let timer = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |t, _| {
///     println!("fired; active again? {}", t.is_active());
/// });
/// timer.start();
/// lp.run(); // returns when no active watcher is left
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Loop {
    pub(crate) inner: Rc<LoopInner>,
}

/// What the `Rc` of a [`Loop`] holds. Destroying the loop is its `Drop`.
pub(crate) struct LoopInner {
    shared: NonNull<Shared>,
    is_default: bool,
    /// The `Shared` while the C loop exists (`None` once destroyed), for
    /// `Cleanup` watchers, which hold the loop weakly.
    pub(crate) live: Rc<Cell<Option<NonNull<Shared>>>>,
    /// For a loop borrowed from C ([`Loop::from_raw`]): the userdata C had
    /// set, given back when the Rust side lets go (the loop is not
    /// destroyed then).
    borrowed: Option<*mut std::ffi::c_void>,
}

/// The loop state callbacks reach from C (through libev's userdata). It is
/// a separate allocation so that callbacks run by `ev_loop_destroy` (cleanup
/// watchers) never alias the `&mut LoopInner` of its `Drop`.
pub(crate) struct Shared {
    raw: NonNull<sys::ev_loop>,
    /// The `LoopInner` that owns this (its `Rc` payload), so watchers can
    /// hold just this pointer plus a strong count of that `Rc`.
    pub(crate) inner: Cell<*const LoopInner>,
    /// `LOCKED` while libev runs a periodic's reschedule callback (libev
    /// must not be called then); `DESTROYING` during `ev_loop_destroy`.
    state: Cell<u8>,
    /// The first panic caught since the last re-raise; later ones are dropped.
    panic: Cell<Option<PanicPayload>>,
    /// Taken out while it runs, so a re-entrant panic cannot alias it.
    error_handler: Cell<Option<ErrorHandler>>,
    pub(crate) callbacks: CallbackQueue,
    /// Memory for this loop's watcher nodes.
    pub(crate) slab: crate::slab::Slab,
    /// The loop this one is embedded in (by an `Embed` watcher), if any:
    /// libev runs embedded loops from inside the parent's `ev_run`, so a
    /// panic here must also break the parent.
    pub(crate) parent: Cell<Option<NonNull<Shared>>>,
    /// Loops embedded in this one, whose panics this loop's `run`
    /// re-raises. Each is kept alive by its `Embed` watcher, which removes
    /// it from here when it goes.
    pub(crate) children: RefCell<Vec<NonNull<Shared>>>,
    /// Watchers dropped inside a periodic's reschedule callback, where
    /// libev must not be called to stop them: kept alive (and their
    /// callbacks silenced) until libev returns (see `defer_drop`).
    deferred: RefCell<Vec<Box<dyn Any>>>,
    /// Events that arrived for watchers whose callback was running (keyed
    /// by the `ev_*` struct's address), fed again when it returns: a
    /// node's `MISSED` flag says it has an entry (see `watcher.rs`).
    pub(crate) missed: RefCell<Vec<(usize, std::ffi::c_int)>>,
    /// Called before every `run` of this loop: the green layer refuses
    /// runs of a hub's loop from a greenlet (only the hub runs it).
    pub(crate) run_check: Cell<Option<fn()>>,
    /// Whether C code owns the loop ([`Loop::from_raw`]).
    pub(crate) borrowed: bool,
    /// On a borrowed loop, the active cleanup watchers, which run when the
    /// Rust side lets go (libev would only run them when C destroys it).
    pub(crate) cleanups: RefCell<Vec<NonNull<sys::ev_cleanup>>>,
    /// What [`Loop::set_userdata`] attached.
    userdata: RefCell<Option<Rc<dyn Any>>>,
    /// The watcher and queue of [`Loop::remote`], once made.
    pub(crate) remote: Cell<Option<NonNull<crate::remote::RemoteWatcher>>>,
    /// On io_uring loops, the fork workaround's watchers (`iouring_fix.rs`).
    pub(crate) iouring_fix: Cell<Option<NonNull<crate::iouring_fix::IouringForkFix>>>,
    /// `Loop::once` callbacks still waiting (see `once.rs`).
    pub(crate) onces: crate::once::Onces,
    /// The invoke-pending and release/acquire hooks (see `loop_hooks.rs`).
    pub(crate) hooks: crate::loop_hooks::Hooks,
}

const LOCKED: u8 = 1;
const DESTROYING: u8 = 2;

/// Which thread owns libev's (process-wide) default loop, if any.
static DEFAULT_OWNER: Mutex<Option<ThreadId>> = Mutex::new(None);

/// Set once the Rust side has let go of a default loop borrowed from C:
/// C still has it (and its SIGCHLD watcher), so the crate never makes it
/// again, and keeps SIGCHLD claimed for it.
static DEFAULT_IS_C: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

thread_local! {
    static DEFAULT_LOOP: RefCell<Weak<LoopInner>> = const { RefCell::new(Weak::new()) };
}

impl Loop {
    /// Creates a new loop with libev's automatic backend choice.
    ///
    /// Signal and child watchers are best placed on the
    /// [`default_loop`](Loop::default_loop) (child watchers only work there).
    pub fn new() -> io::Result<Loop> {
        Loop::with_flags(LoopFlags::empty(), Backend::empty())
    }

    /// Creates a new loop with `flags`, using the first of `backends` that
    /// works here, in libev's order (io_uring, linuxaio, kqueue, epoll,
    /// poll, select); empty: libev's recommended ones.
    ///
    /// As in C, backends that are not compiled in or that the kernel
    /// refuses are skipped, so `Backend::all()` means "any". Fails with
    /// [`io::ErrorKind::Unsupported`] when none of `backends` works, and
    /// with the OS error when libev cannot create the loop for another
    /// reason.
    ///
    /// Unless `flags` has [`LoopFlags::NOENV`], libev lets the
    /// `LIBEV_FLAGS` environment variable (a number: flags and backends)
    /// replace `flags` and `backends`, as in C.
    pub fn with_flags(flags: LoopFlags, backends: Backend) -> io::Result<Loop> {
        crate::global::loop_created();
        // SAFETY: ev_loop_new has no preconditions; it returns null on failure.
        let raw = unsafe { sys::ev_loop_new(flags.bits() | backends.bits()) };
        let raw = NonNull::new(raw).ok_or_else(|| creation_error("a loop", backends))?;
        Ok(Loop::wrap(raw, false, None))
    }

    /// The default loop (libev's `ev_default_loop`): the only loop that can
    /// run [`Child`](crate::Child) watchers, and the one signals belong on.
    ///
    /// There is one per process, owned by the first thread that asks for it
    /// until every handle to it is dropped; a call from another thread in
    /// the meantime fails with [`io::ErrorKind::ResourceBusy`]. So does
    /// creating it while another loop watches SIGCHLD, which the default
    /// loop needs for child watchers.
    pub fn default_loop() -> io::Result<Loop> {
        Loop::default_loop_with_flags(LoopFlags::empty(), Backend::empty())
    }

    /// As [`default_loop`](Loop::default_loop); `flags` and `backends`
    /// apply only if this call creates it.
    pub fn default_loop_with_flags(flags: LoopFlags, backends: Backend) -> io::Result<Loop> {
        let known = DEFAULT_LOOP.try_with(|d| d.borrow().upgrade()).map_err(|_| {
            io::Error::other(
                "libev's default loop cannot be had while this thread's thread-locals are destroyed",
            )
        })?;
        if let Some(inner) = known {
            return Ok(Loop { inner });
        }
        Loop::claim_default(
            || {
                crate::global::loop_created();
                // SAFETY: the owner lock (held by `claim_default`) makes this
                // thread the only one using the default loop until it is
                // destroyed.
                let raw = unsafe { sys::ev_default_loop(flags.bits() | backends.bits()) };
                if raw.is_null() {
                    return Err(creation_error("the default loop", backends));
                }
                Ok(raw)
            },
            None,
        )
    }

    /// Borrows libev's default loop, which C code created (`from_raw`).
    pub(crate) fn adopt_default(
        raw: NonNull<sys::ev_loop>,
        userdata: *mut std::ffi::c_void,
    ) -> io::Result<Loop> {
        Loop::claim_default(
            || {
                crate::global::loop_created();
                Ok(raw.as_ptr())
            },
            Some(userdata),
        )
    }

    /// Makes this thread the default loop's owner and wraps the loop that
    /// `get` creates (or C created). Fails if another thread owns it, or
    /// if another loop watches SIGCHLD.
    fn claim_default(
        get: impl FnOnce() -> io::Result<*mut sys::ev_loop>,
        borrowed: Option<*mut std::ffi::c_void>,
    ) -> io::Result<Loop> {
        let mut owner = DEFAULT_OWNER.lock().unwrap_or_else(|e| e.into_inner());
        let me = thread::current().id();
        match *owner {
            Some(other) if other != me => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "libev's default loop belongs to another thread",
                ));
            }
            _ => {}
        }
        let c_owned = DEFAULT_IS_C.load(std::sync::atomic::Ordering::Acquire);
        let raw = match (c_owned, borrowed) {
            (true, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    "libev's default loop belongs to C code (borrow it with Loop::from_raw)",
                ));
            }
            // Borrowed again: its SIGCHLD claim was kept.
            (true, Some(_)) => get()?,
            (false, _) => crate::signal::create_default_loop(get)?,
        };
        let raw = NonNull::new(raw).expect("checked by `get`");
        *owner = Some(me);
        drop(owner);
        let lp = Loop::wrap(raw, true, borrowed);
        // The caller read it just before, on this thread: it is alive.
        let _ = DEFAULT_LOOP.try_with(|d| *d.borrow_mut() = Rc::downgrade(&lp.inner));
        Ok(lp)
    }

    /// The Rust side of C loop `raw`: a fresh `Shared` as its userdata.
    /// `borrowed` is the userdata to give back for a loop C owns.
    pub(crate) fn wrap(
        raw: NonNull<sys::ev_loop>,
        is_default: bool,
        borrowed: Option<*mut std::ffi::c_void>,
    ) -> Loop {
        let shared = NonNull::from(Box::leak(Box::new(Shared {
            raw,
            inner: Cell::new(std::ptr::null()),
            state: Cell::new(0),
            panic: Cell::new(None),
            error_handler: Cell::new(None),
            callbacks: CallbackQueue::new(),
            slab: crate::slab::Slab::new(),
            parent: Cell::new(None),
            children: RefCell::new(Vec::new()),
            deferred: RefCell::new(Vec::new()),
            missed: RefCell::new(Vec::new()),
            run_check: Cell::new(None),
            borrowed: borrowed.is_some(),
            cleanups: RefCell::new(Vec::new()),
            userdata: RefCell::new(None),
            remote: Cell::new(None),
            iouring_fix: Cell::new(None),
            onces: crate::once::Onces::default(),
            hooks: crate::loop_hooks::Hooks::default(),
        })));
        // SAFETY: `shared` stays at this address until LoopInner's Drop frees
        // it, after destroying the loop; trampolines find it here.
        unsafe { sys::ev_set_userdata(raw.as_ptr(), shared.as_ptr().cast()) };
        let inner = LoopInner { shared, is_default, live: Rc::new(Cell::new(Some(shared))), borrowed };
        inner.shared().callbacks.init();
        if borrowed.is_none() {
            crate::iouring_fix::install(inner.shared());
        }
        let inner = Rc::new(inner);
        inner.shared().inner.set(Rc::as_ptr(&inner));
        crate::raw::register(raw.as_ptr(), &inner);
        Loop { inner }
    }

    #[inline]
    pub(crate) fn raw(&self) -> *mut sys::ev_loop {
        self.inner.shared().raw()
    }

    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        self.inner.shared()
    }

    /// Whether this is libev's default loop.
    pub fn is_default(&self) -> bool {
        self.inner.is_default
    }

    /// Runs the loop until no active (referenced) watcher is left or
    /// [`break_loop`](Loop::break_loop) is called. Returns `true` if it was
    /// broken while watchers were still active.
    ///
    /// May be called from inside a callback (nested run).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from a callback (when no error handler is set),
    /// and panics if called from a periodic's reschedule callback.
    pub fn run(&self) -> bool {
        self.run_flags(0)
    }

    /// Runs one iteration, waiting for events if none is ready.
    ///
    /// # Panics
    ///
    /// As [`run`](Loop::run).
    pub fn run_once(&self) -> bool {
        self.run_flags(sys::EVRUN_ONCE as i32)
    }

    /// Runs one iteration without waiting: only what is ready now.
    ///
    /// # Panics
    ///
    /// As [`run`](Loop::run).
    pub fn run_nowait(&self) -> bool {
        self.run_flags(sys::EVRUN_NOWAIT as i32)
    }

    fn run_flags(&self, flags: i32) -> bool {
        // Hold a handle for the whole run, whatever callbacks drop.
        let this = self.clone();
        this.shared().check_unlocked();
        this.shared().check_run();
        // A panic caught outside a run (a reschedule closure called by
        // `Periodic::start`, say) is raised now: ev_run would cancel the
        // break that was meant to surface it.
        this.shared().rethrow();
        // SAFETY: the loop is alive (we hold a handle) and used on its
        // thread only; callbacks catch their panics, so none unwinds out.
        let more = unsafe { sys::ev_run(this.raw(), flags) } != 0;
        this.shared().rethrow();
        more
    }

    /// Asks the running loop to return (libev's `ev_break`); takes effect
    /// after the current callbacks.
    pub fn break_loop(&self, how: Break) {
        let how = match how {
            Break::Cancel => sys::EVBREAK_CANCEL,
            Break::One => sys::EVBREAK_ONE,
            Break::All => sys::EVBREAK_ALL,
        };
        // SAFETY: ev_break only sets a flag in a live loop.
        unsafe { sys::ev_break(self.raw(), how as i32) }
    }

    /// The loop's cached time (seconds since the epoch), as of the start of
    /// the current iteration; what timers are based on.
    pub fn now(&self) -> f64 {
        // SAFETY: reads a field of a live loop.
        unsafe { sys::ev_now(self.raw()) }
    }

    /// Refreshes [`now`](Loop::now) from the clock.
    ///
    /// # Panics
    ///
    /// If called from a periodic's reschedule callback; re-raises a panic
    /// from a reschedule closure that libev calls here.
    pub fn update_now(&self) {
        self.shared().check_unlocked();
        // SAFETY: live loop, not inside a reschedule callback.
        unsafe { sys::ev_now_update(self.raw()) }
        // A time jump makes libev call reschedule closures.
        self.shared().rethrow();
    }

    /// Adds a reference (libev's `ev_ref`): `run` keeps going while the
    /// count of active watchers plus references is positive.
    pub fn inc_ref(&self) {
        // SAFETY: adjusts a counter of a live loop.
        unsafe { sys::ev_ref(self.raw()) }
    }

    /// Removes a reference (libev's `ev_unref`), typically right after
    /// starting a watcher that should not keep `run` alive. Prefer
    /// `set_keeps_loop_alive(false)` on the watcher, which keeps the count
    /// balanced.
    pub fn dec_ref(&self) {
        // SAFETY: adjusts a counter of a live loop.
        unsafe { sys::ev_unref(self.raw()) }
    }

    /// Suspends time (libev's `ev_suspend`), e.g. before the process is
    /// suspended; pair with [`resume`](Loop::resume), which moves timers
    /// forward by the time spent suspended.
    pub fn suspend(&self) {
        self.shared().check_unlocked();
        // SAFETY: live loop.
        unsafe { sys::ev_suspend(self.raw()) }
    }

    /// Resumes after [`suspend`](Loop::suspend).
    ///
    /// # Panics
    ///
    /// Re-raises a panic from a periodic's reschedule closure, which libev
    /// calls here.
    pub fn resume(&self) {
        self.shared().check_unlocked();
        // SAFETY: live loop.
        unsafe { sys::ev_resume(self.raw()) }
        self.shared().rethrow();
    }

    /// Tells libev the process forked (libev's `ev_loop_fork`): in the
    /// child, call this before running the loop again; the kernel state is
    /// recreated at the start of the next iteration.
    pub fn reinit_after_fork(&self) {
        // SAFETY: only sets a flag in a live loop.
        unsafe { sys::ev_loop_fork(self.raw()) }
        crate::iouring_fix::note_fork(self.shared());
    }

    /// Number of iterations so far.
    pub fn iteration(&self) -> u32 {
        // SAFETY: reads a counter of a live loop.
        unsafe { sys::ev_iteration(self.raw()) }
    }

    /// How many `run` calls are active on this loop (nesting depth).
    pub fn depth(&self) -> u32 {
        // SAFETY: reads a counter of a live loop.
        unsafe { sys::ev_depth(self.raw()) }
    }

    /// Number of watchers with events waiting for their callback.
    pub fn pending_count(&self) -> u32 {
        // SAFETY: reads a counter of a live loop.
        unsafe { sys::ev_pending_count(self.raw()) }
    }

    /// Makes the loop wait at least `interval` between polls, to collect
    /// more io events per iteration (default zero). Intervals above
    /// [`MAX_COLLECT_INTERVAL`] (libev's longest single wait) count as it.
    pub fn set_io_collect_interval(&self, interval: Duration) {
        // SAFETY: sets a field of a live loop.
        unsafe { sys::ev_set_io_collect_interval(self.raw(), collect_interval(interval)) }
    }

    /// Lets timers that expire within `interval` of each other fire
    /// together (default zero). Intervals above [`MAX_COLLECT_INTERVAL`]
    /// (libev's longest single wait) count as it.
    pub fn set_timeout_collect_interval(&self, interval: Duration) {
        // SAFETY: sets a field of a live loop.
        unsafe { sys::ev_set_timeout_collect_interval(self.raw(), collect_interval(interval)) }
    }

    /// Feeds `events` to every io watcher on `fd`, as if the backend had
    /// reported them. Fails for a negative fd.
    pub fn feed_fd_event(&self, fd: RawFd, events: Events) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        self.shared().check_unlocked();
        // SAFETY: libev ignores fds it has no watchers for.
        unsafe { sys::ev_feed_fd_event(self.raw(), fd, events.to_revents()) }
        Ok(())
    }

    /// Feeds signal `signum` to this loop's signal watchers, as if it had
    /// been received. Fails for a signal number out of range.
    pub fn feed_signal_event(&self, signum: i32) -> io::Result<()> {
        crate::signal::check_signum(signum)?;
        self.shared().check_unlocked();
        // SAFETY: libev ignores signals this loop does not watch.
        unsafe { sys::ev_feed_signal_event(self.raw(), signum) }
        Ok(())
    }

    /// Checks libev's internal data structures (libev's `ev_verify`),
    /// aborting with a message if they are corrupt. The checks are libev's
    /// `assert`s, compiled in only with `libev-sys`'s `assertions`
    /// feature; without it this does nothing.
    pub fn verify(&self) {
        self.shared().check_unlocked();
        // SAFETY: live loop.
        unsafe { sys::ev_verify(self.raw()) }
    }

    /// The backend this loop uses.
    pub fn backend(&self) -> Backend {
        // SAFETY: reads a field of a live loop.
        Backend::from_bits_retain(unsafe { sys::ev_backend(self.raw()) })
    }

    /// Backends compiled in and working on this system.
    pub fn supported_backends() -> Backend {
        // SAFETY: no preconditions.
        Backend::from_bits_retain(unsafe { sys::ev_supported_backends() })
    }

    /// The supported backends libev recommends here (the automatic choice).
    pub fn recommended_backends() -> Backend {
        // SAFETY: no preconditions.
        Backend::from_bits_retain(unsafe { sys::ev_recommended_backends() })
    }

    /// Backends whose loops can be embedded in another loop with
    /// [`Embed`](crate::Embed).
    ///
    /// libev 4.33 also counts io_uring, but its io_uring backend has no
    /// file descriptor to embed by (`ev_embed_start` would index its fd
    /// table at -1): it is left out here, so [`Embed`](crate::Embed)
    /// refuses such loops.
    pub fn embeddable_backends() -> Backend {
        // SAFETY: no preconditions.
        Backend::from_bits_retain(unsafe { sys::ev_embeddable_backends() }) - Backend::IOURING
    }

    /// Installs a handler for panics in callbacks: instead of breaking the
    /// loop and re-raising from `run`, the payload goes to `handler` and the
    /// loop carries on. A panic inside the handler itself is re-raised from
    /// `run`.
    pub fn set_error_handler(&self, handler: impl FnMut(PanicPayload) + 'static) {
        self.shared().error_handler.set(Some(Box::new(handler)));
    }

    /// Removes the error handler: panics break the loop again.
    pub fn clear_error_handler(&self) {
        self.shared().error_handler.set(None);
    }

    /// Attaches `value` to the loop (the counterpart of libev's
    /// `ev_set_userdata`, whose slot the crate uses itself), replacing and
    /// returning what was attached before. It lives as long as the loop,
    /// or until replaced; a value holding a handle to its own loop keeps
    /// the loop alive (an `Rc` cycle) until it is replaced.
    ///
    /// ```
    /// let lp = libev::Loop::new()?;
    /// lp.set_userdata(String::from("config"));
    /// assert_eq!(lp.userdata::<String>().as_deref().map(String::as_str), Some("config"));
    /// assert!(lp.userdata::<u32>().is_none()); // another type
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_userdata<T: Any>(&self, value: T) -> Option<Rc<dyn Any>> {
        self.shared().userdata.replace(Some(Rc::new(value)))
    }

    /// What [`set_userdata`](Loop::set_userdata) attached, if it is a `T`.
    pub fn userdata<T: Any>(&self) -> Option<Rc<T>> {
        let value = self.shared().userdata.borrow().clone()?;
        value.downcast().ok()
    }

    /// Whether both handles refer to the same loop.
    pub fn ptr_eq(&self, other: &Loop) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loop")
            .field("default", &self.inner.is_default)
            .field("backend", &self.backend())
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

/// Why libev returned no loop: none of the requested backends works here
/// (`Unsupported`), or the OS error libev ran into.
fn creation_error(what: &str, backends: Backend) -> io::Error {
    let os = io::Error::last_os_error();
    if !backends.is_empty() {
        let supported = Loop::supported_backends();
        return io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "libev could not create {what}: none of the backends {backends:?} works here \
                 (compiled in and supported by this kernel: {supported:?}; last OS error: {os})"
            ),
        );
    }
    io::Error::new(os.kind(), format!("libev could not create {what}: {os}"))
}

impl LoopInner {
    #[inline]
    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: allocated in `Loop::wrap`, freed only in our Drop.
        unsafe { self.shared.as_ref() }
    }
}

impl Shared {
    /// The `Shared` of a loop created by this crate.
    ///
    /// # Safety
    ///
    /// `raw` must be a loop created by `Loop::wrap` that has not been
    /// destroyed (true whenever libev calls back into us for it).
    pub(crate) unsafe fn from_raw<'a>(raw: *mut sys::ev_loop) -> &'a Shared {
        // SAFETY: `wrap` stored the address of the live Shared as the
        // loop's userdata.
        unsafe { &*sys::ev_userdata(raw).cast::<Shared>() }
    }

    #[inline]
    pub(crate) fn raw(&self) -> *mut sys::ev_loop {
        self.raw.as_ptr()
    }

    /// Panics if libev is in a context where it must not be re-entered.
    #[inline]
    pub(crate) fn check_unlocked(&self) {
        if self.is_locked() {
            locked_panic();
        }
    }

    /// Runs the check installed for runs of this loop (see `run_check`).
    #[inline]
    pub(crate) fn check_run(&self) {
        if let Some(check) = self.run_check.get() {
            check();
        }
    }

    /// Whether `ev_loop_destroy` is running (only cleanup callbacks run then).
    #[inline]
    pub(crate) fn destroying(&self) -> bool {
        self.state.get() & DESTROYING != 0
    }

    /// Whether libev runs a periodic's reschedule callback now.
    #[inline]
    pub(crate) fn is_locked(&self) -> bool {
        self.state.get() & LOCKED != 0
    }

    /// Keeps `node` (a watcher whose owner was dropped while the loop is
    /// locked) until libev has returned, when it is dropped, which stops
    /// the watcher. libev returns either to the crate's call that entered
    /// it, which drains the list on its way out (`rethrow`), or, inside
    /// `ev_run`, to its pending-callback phase, where the callback queue's
    /// prepare watcher, fed here, drains it.
    pub(crate) fn defer_drop(&self, node: Box<dyn Any>) {
        self.deferred.borrow_mut().push(node);
        self.callbacks.feed(self.raw());
    }

    /// Whether watchers wait in `defer_drop`'s list.
    #[inline]
    pub(crate) fn has_deferred(&self) -> bool {
        !self.deferred.borrow().is_empty()
    }

    /// Drops the watchers kept by `defer_drop`; a destructor's panic
    /// propagates.
    pub(crate) fn drain_deferred(&self) {
        let nodes = std::mem::take(&mut *self.deferred.borrow_mut());
        drop(nodes);
    }

    /// Runs `f` with libev calls forbidden (a reschedule callback).
    pub(crate) fn locked<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Restore<'a>(&'a Cell<u8>, u8);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let was = self.state.get();
        let _restore = Restore(&self.state, was);
        self.state.set(was | LOCKED);
        f()
    }

    /// Handles a panic caught in a callback: to the error handler if there
    /// is one, else kept for `run` to re-raise, and the loop breaks.
    pub(crate) fn handle_panic(&self, payload: PanicPayload) {
        if let Some(mut handler) = self.error_handler.take() {
            let result = panic::catch_unwind(AssertUnwindSafe(|| handler(payload)));
            // Put it back unless the handler installed another meanwhile.
            let newer = self.error_handler.take();
            self.error_handler.set(Some(newer.unwrap_or(handler)));
            if let Err(p) = result {
                self.store_panic(p);
            }
        } else {
            self.store_panic(payload);
        }
    }

    fn store_panic(&self, payload: PanicPayload) {
        let first = self.panic.take();
        self.panic.set(Some(first.unwrap_or(payload)));
        // SAFETY: only sets a flag in the live loop.
        unsafe { sys::ev_break(self.raw(), sys::EVBREAK_ALL as i32) }
        // Break the loops this one is embedded in too: libev may be running
        // this loop from inside theirs.
        let mut up = self.parent.get();
        while let Some(p) = up {
            // SAFETY: a parent is alive while its Embed watcher (which set
            // the link and clears it when dropped) exists.
            let p = unsafe { p.as_ref() };
            // SAFETY: only sets a flag in the live loop.
            unsafe { sys::ev_break(p.raw(), sys::EVBREAK_ALL as i32) }
            up = p.parent.get();
        }
    }

    /// Whether a caught panic is waiting to be re-raised.
    pub(crate) fn panicking(&self) -> bool {
        let p = self.panic.take();
        let is = p.is_some();
        self.panic.set(p);
        is
    }

    /// Re-raises a panic caught in a callback, after libev returned, and
    /// drops watchers whose drop was deferred while libev ran.
    pub(crate) fn rethrow(&self) {
        if self.has_deferred() {
            self.drain_deferred();
        }
        if let Some(payload) = self.take_panic().or_else(crate::global::take_syserr_panic) {
            panic::resume_unwind(payload);
        }
    }

    /// This loop's caught panic, or one of a loop embedded in it (which
    /// libev may have run from inside this loop's `ev_run`).
    fn take_panic(&self) -> Option<PanicPayload> {
        if let Some(p) = self.panic.take() {
            return Some(p);
        }
        let children = self.children.borrow();
        children.iter().find_map(|c| {
            // SAFETY: children are alive while registered (see the field).
            unsafe { c.as_ref() }.take_panic()
        })
    }
}

#[cold]
#[inline(never)]
fn locked_panic() -> ! {
    panic!("libev must not be called from a periodic's reschedule callback or a loop release hook")
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        let shared = self.shared();
        crate::raw::unregister(shared.raw());
        shared.callbacks.shutdown(shared.raw());
        crate::remote::shutdown(shared);
        crate::iouring_fix::shutdown(shared);
        // User code (its destructor) may run: outside the borrow, and its
        // panic has nobody to go to.
        let userdata = shared.userdata.take();
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| drop(userdata))) {
            report_orphan_panic(&p);
        }
        shared.onces.shutdown(shared.raw());
        shared.hooks.shutdown(shared.raw());
        shared.state.set(DESTROYING);
        if let Some(userdata) = self.borrowed {
            // C owns the loop: run and stop our cleanup watchers, give the
            // loop back as C left it.
            crate::raw::let_go(shared, userdata);
        } else {
            // SAFETY: no handle and no watcher refers to the loop any more
            // (each holds a handle), except Cleanup watchers, which hold it
            // weakly, run here, and learn from `live` afterwards that it is
            // gone.
            unsafe { sys::ev_loop_destroy(shared.raw()) };
        }
        self.live.set(None);
        crate::loop_guess::forget(shared.raw());
        if let Some(p) = shared.panic.take() {
            // A Cleanup callback panicked with nobody left to re-raise to.
            report_orphan_panic(&p);
        }
        // SAFETY: allocated with Box in `wrap`; libev, the only other user
        // of the pointer, is gone or no longer has it as userdata.
        drop(unsafe { Box::from_raw(self.shared.as_ptr()) });
        if self.is_default {
            if self.borrowed.is_some() {
                DEFAULT_IS_C.store(true, std::sync::atomic::Ordering::Release);
            } else {
                crate::signal::release_sigchld();
            }
            let mut owner = DEFAULT_OWNER.lock().unwrap_or_else(|e| e.into_inner());
            *owner = None;
        }
    }
}

pub(crate) fn report_orphan_panic(payload: &PanicPayload) {
    eprintln!("libev: a cleanup callback panicked while its loop was destroyed: {}", panic_message(payload));
}

/// A panic payload's message: the `&str` or `String` `panic!` makes, or
/// `Box<dyn Any>` for other payloads.
pub(crate) fn panic_message(payload: &PanicPayload) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>")
}

/// The longest collect interval passed to libev: its `MAX_BLOCKTIME`, the
/// longest it ever waits in one poll. libev turns the wait into a whole
/// number of milliseconds for the kernel, which overflows (undefined in C)
/// for intervals of weeks; longer intervals could only stall the loop.
pub const MAX_COLLECT_INTERVAL: Duration = Duration::from_millis(59_743);

fn collect_interval(interval: Duration) -> f64 {
    tstamp(interval.min(MAX_COLLECT_INTERVAL))
}

/// `d` in seconds, as libev's `ev_tstamp`. Like `Duration::as_secs_f64`
/// but cheaper on the critical path of every timer (re)start, where the
/// value feeds libev's heap comparisons: it multiplies instead of dividing
/// by 1e9 (about 2 ns of ~45 in libev-bench's timers workload), and below
/// 146 years converts one integer count, which lets the compiler merge the
/// conversion with however `d` was built. A whole number of milliseconds
/// (`from_millis`, `from_secs`) converts as milliseconds: the compiler
/// then folds `Duration::from_millis(ms)` back into `ms as f64 * 1e-3`,
/// C's one multiply, where the nanosecond count it cannot fold costs five
/// dependent multiplications more. The result is within two units in the
/// last place of `as_secs_f64`, far below libev's clock resolution.
#[inline]
pub(crate) fn tstamp(d: std::time::Duration) -> f64 {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    if nanos % 1_000_000 == 0
        && let Some(ms) = secs.checked_mul(1_000)
        && ms < 1 << 62
    {
        return (ms + u64::from(nanos / 1_000_000)) as f64 * 1e-3;
    }
    match secs.checked_mul(1_000_000_000) {
        Some(ns) if ns < 1 << 62 => (ns + u64::from(nanos)) as f64 * 1e-9,
        _ => secs as f64 + f64::from(nanos) * 1e-9,
    }
}

/// An `ev_tstamp` interval as a `Duration`, saturating: negative or NaN
/// gives zero, too large for a `Duration` gives `Duration::MAX` (a repeat
/// set from `Duration::MAX` rounds up to 2^64 s as an `f64`).
pub(crate) fn duration(secs: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 {
        std::time::Duration::MAX
    } else {
        std::time::Duration::ZERO
    })
}

/// libev's clock: seconds since the epoch (libev's `ev_time`).
pub fn time() -> f64 {
    // SAFETY: no preconditions.
    unsafe { sys::ev_time() }
}

/// libev's major and minor version (4, 33).
pub fn version() -> (i32, i32) {
    // SAFETY: no preconditions.
    unsafe { (sys::ev_version_major(), sys::ev_version_minor()) }
}

#[cfg(test)]
mod tests {
    use super::tstamp;
    use std::time::Duration;

    #[test]
    fn tstamp_matches_as_secs_f64_within_two_ulps() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut cases =
            vec![Duration::ZERO, Duration::MAX, Duration::from_nanos(1), Duration::from_secs(1 << 32)];
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every magnitude from nanoseconds to Duration::MAX.
            let secs = x >> (x % 64);
            cases.push(Duration::new(secs, (x % 1_000_000_000) as u32));
            cases.push(Duration::from_millis(x % 10_000_000_000));
            // Whole milliseconds and seconds of every magnitude, on both
            // sides of the millisecond path's 2^62 bound.
            cases.push(Duration::from_millis(x >> (x % 64)));
            cases.push(Duration::from_secs(secs));
        }
        let bound = (1u64 << 62) / 1000;
        cases.extend([bound - 1, bound, bound + 1].map(Duration::from_secs));
        for d in cases {
            let (got, want) = (tstamp(d), d.as_secs_f64());
            let ulps = (got.to_bits() as i64 - want.to_bits() as i64).unsigned_abs();
            assert!(ulps <= 2, "{d:?}: {got} vs {want} ({ulps} ulps)");
        }
    }

    #[test]
    fn tstamp_of_whole_milliseconds_is_exact_where_the_f64_is() {
        assert_eq!(tstamp(Duration::from_millis(1500)), 1.5);
        assert_eq!(tstamp(Duration::from_millis(250)), 0.25);
        assert_eq!(tstamp(Duration::from_secs(86_400)), 86_400.0);
        assert_eq!(tstamp(Duration::ZERO), 0.0);
    }

    #[test]
    fn collect_intervals_are_clamped_to_libevs_longest_wait() {
        use super::{MAX_COLLECT_INTERVAL, collect_interval};
        assert_eq!(collect_interval(Duration::MAX), 59.743);
        assert_eq!(collect_interval(Duration::from_secs(86_400 * 365)), 59.743);
        assert_eq!(collect_interval(MAX_COLLECT_INTERVAL), 59.743);
        assert_eq!(collect_interval(Duration::from_millis(20)), 0.02);
        assert_eq!(collect_interval(Duration::ZERO), 0.0);
    }

    #[test]
    fn duration_saturates() {
        use super::duration;
        assert_eq!(duration(1.5), Duration::from_millis(1500));
        assert_eq!(duration(-1.0), Duration::ZERO);
        assert_eq!(duration(f64::NAN), Duration::ZERO);
        assert_eq!(duration(tstamp(Duration::MAX)), Duration::MAX);
        assert_eq!(duration(f64::INFINITY), Duration::MAX);
    }
}
