#![doc = include_str!("../README.md")]
//!
//! # What is where
//!
//! - [`Loop`]: an event loop (the default one or new ones), run, break,
//!   time, ref counting, fork handling, and gevent's callback queue
//!   ([`Loop::run_callback`]).
//! - The 13 watchers: [`Io`], [`Timer`], [`Periodic`], [`Signal`],
//!   [`Child`], [`Stat`], [`Idle`], [`Prepare`], [`Check`], [`Embed`],
//!   [`Fork`], [`Cleanup`], [`Async`] (with a thread-safe [`AsyncSender`]).
//! - [`TimerArray`]: many timers stored contiguously with one callback, at
//!   C's memory cost, for programs with tens of thousands of timers.
//! - The rest of libev's API: [`Loop::once`], hooks around `ev_run`
//!   ([`Loop::set_invoke_pending_hook`], [`Loop::set_release_hooks`]),
//!   process-wide calls ([`sleep`], [`feed_signal`],
//!   [`set_syserr_handler`], [`set_allocator`]), and [`Tstamp`], libev's
//!   time as a type. [`c_api`] maps every function, macro, flag and
//!   watcher member of libev's manual to its safe counterpart.
//! - The way out to C: [`sys`] (the raw bindings), [`Loop::as_raw`] and
//!   each watcher's `as_raw` to hand libev structs to C code, and
//!   [`Loop::from_raw`] to run Rust watchers on a loop C code owns.
//!
//! Each watcher owns its libev struct and a closure, which receives the
//! watcher itself and the [`Events`] that fired. A watcher holds its loop,
//! so it cannot outlive it; dropping an active watcher stops it. From a
//! callback you may stop, restart or drop that watcher or any other, start
//! new ones, feed events, break the loop or run it nested. A panic in a
//! callback breaks the loop and comes out of [`Loop::run`] (or goes to the
//! handler set with [`Loop::set_error_handler`]).
//!
//! [libev's manual](http://pod.tst.eu/http://cvs.schmorp.de/libev/ev.pod)
//! (`ev.pod`, also in the repository's `vendor/libev/`) describes the
//! semantics; the method docs here say where this crate differs.
//!
//! ```
//! use libev::{Events, Io, Loop};
//! use std::io::{Read, Write};
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//!
//! let lp = Loop::new()?;
//! let (mut a, b) = UnixStream::pair()?;
//! let mut b_reader = b.try_clone()?;
//! let io = Io::new(&lp, b.as_raw_fd(), Events::READ, move |io, events| {
//!     assert!(events.contains(Events::READ));
//!     let mut buf = [0; 5];
//!     b_reader.read_exact(&mut buf).unwrap();
//!     assert_eq!(&buf, b"hello");
//!     io.stop(); // the loop returns once nothing is active
//! })?;
//! io.start();
//! a.write_all(b"hello")?;
//! lp.run();
//! # Ok::<(), std::io::Error>(())
//! ```

//!
//! Watchers, like loops, stay on their loop's thread:
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<libev::Timer>();
//! ```
//!
//! ```compile_fail
//! fn assert_send<T: Send>() {}
//! assert_send::<libev::Io>();
//! ```
//!
//! Only [`AsyncSender`] crosses threads:
//!
//! ```
//! fn assert_send_sync<T: Send + Sync>() {}
//! assert_send_sync::<libev::AsyncSender>();
//! ```
//!
//! # Safety and failure model
//!
//! A program with no `unsafe` of its own cannot cause undefined behaviour
//! through this crate, and nothing it does through the crate aborts the
//! process, with two exceptions std shares: a stack overflow (a
//! greenlet's, like a thread's, is reported and aborts), and a panic that
//! leaves a destructor while the thread unwinds.
//!
//! **Errors.** Input libev would abort on or misuse is refused with an
//! [`io::Error`](std::io::Error): a negative or closed fd
//! (`EBADF`), a signal number out of range or a non-finite time
//! (`InvalidInput`), a signal another loop holds or the default loop owned
//! by another thread (`ResourceBusy`), a backend this system lacks
//! (`Unsupported`), a priority outside -2..=2, a loop embedded in itself,
//! twice or in a cycle, a greenlet stack too large for the address space.
//! Green sockets fail as std's do.
//!
//! **Clamps.** Values libev cannot represent are clamped, documented where
//! they apply: collect intervals to [`MAX_COLLECT_INTERVAL`]; a socket
//! timeout too far away for a deadline means none; a reschedule closure's
//! time in the past means now.
//!
//! **Panics in callbacks** never cross into C: the trampoline catches
//! them, breaks the loop, and the Rust call that entered libev re-raises
//! them once libev has returned ([`Loop::run`] and its variants,
//! `invoke`, [`Embed::sweep`], [`Periodic::start`], [`Loop::update_now`],
//! [`Loop::resume`]), unless an error handler takes them
//! ([`Loop::set_error_handler`]). A panic in a loop libev runs from inside
//! another (an embedded one) breaks and surfaces from the outer loop too.
//! A panic of a closure's destructor, run when the crate drops a watcher,
//! surfaces the same way.
//!
//! **Panics that name a misuse** (a bug of the caller, with a message
//! saying which): calling libev from a periodic's reschedule closure or a
//! loop release hook;
//! a blocking green call inside a raw watcher callback (gevent's
//! `BlockingSwitchOutError`); the root greenlet waiting for something
//! nothing can bring (gevent's `LoopExit`); a greenlet running its hub's
//! loop; a greenlet joining itself; a green call that can only return by
//! waiting, made where nothing waits (below).
//!
//! **Re-entrancy.** A callback may stop, restart or drop its own watcher
//! or any other, start new ones, feed or invoke events, run any loop
//! nested, queue or cancel [`Loop::run_callback`]s, or drop the last
//! handle of a loop it does not run in. The paths libev takes into Rust on
//! its own hold what they use: the prepare and fork watchers inside an
//! [`Embed`] (which run the embedded loop) keep it and the `Embed` alive,
//! and a [`Periodic`] dropped inside a reschedule closure, where libev must
//! not be called, is stopped as soon as libev returns, its callback
//! silenced meanwhile. The other ways libev enters Rust: [`Loop::once`]
//! callbacks (whose watchers the loop stops and frees when it goes, so
//! none outlives it), the invoke-pending and release hooks (reset before
//! the loop is destroyed; the release hooks run with libev locked, as a
//! reschedule closure does), the syserr handler and the allocator
//! (process-wide, callable on any thread). A loop borrowed from C
//! ([`Loop::from_raw`]) is left with none of the crate's watchers when
//! the Rust side lets go.
//!
//! ## Green threads
//!
//! **Kills and timeouts** ([`Greenlet::kill`](green::Greenlet::kill),
//! [`with_timeout`](green::with_timeout), [`Timeout`](green::Timeout))
//! unwind the target's stack from where it waits, running its destructors,
//! with a payload of their own (no panic message is printed). A panic ends
//! only its greenlet: [`join`](green::Greenlet::join) returns it.
//!
//! **While a greenlet unwinds, it does not switch.** std counts panics per
//! OS thread: a greenlet suspended in the middle of an unwind would make
//! `std::thread::panicking()` true in every other greenlet (poisoning the
//! std mutexes they unlock, turning their commit guards into rollbacks),
//! and a kill raised inside a destructor would abort. So green calls made
//! by destructors during an unwind (or during the thread's exit) do not
//! wait; each does what it can at once:
//!
//! | call | while unwinding |
//! | --- | --- |
//! | socket and fd operations | one try; `WouldBlock` instead of waiting |
//! | `sleep`, `yield_now` | return at once |
//! | timed waits (`lock_timeout`, `get_timeout`, ...) | time out at once unless ready |
//! | `Event::wait`, `AsyncResult::wait`, `Group::join`, `Queue::join`, `Condvar::wait` | return at once |
//! | `Queue::put`, `Channel::put` | queue the item (past a full queue's bound) |
//! | queue iteration | ends at the first empty moment |
//! | `Greenlet::kill`, `Group::kill` | send the kill, do not wait for it |
//! | `spawn_blocking`, name lookups | run on the calling thread |
//! | `Mutex::lock`, `RLock::lock`, `Semaphore::acquire`, `Queue::get`, `Queue::peek`, `Channel::get`, `AsyncResult::get`, `Greenlet::join`, `Condvar::wait_while` | return what is there now, else panic with a message (which, leaving a destructor, aborts: use the `try_` forms there) |
//! | `green::scope` | refused (panics): it could not wait for its greenlets |
//!
//! No kill or timeout is raised inside an unwind; one that arrives
//! meanwhile stays pending for after it. A `BufWriter` over a green socket
//! therefore flushes in its destructor what the socket takes at once.
//! Cleanup that must wait belongs before the unwind (or in a
//! [`link`](green::Greenlet::link), which may block). This differs from
//! gevent, whose `finally` blocks may block; Rust's destructors cannot.
//!
//! **A thread that exits with greenlets alive**: those that never ran are
//! dropped unrun, as a kill would (closures dropped, joiners woken, links
//! run); those blocked at that moment are never resumed: their stacks are
//! not unwound and what they hold stays allocated, as with a thread that
//! blocks for ever. The thread's idle greenlet stacks go to a process-wide
//! pool that later threads draw from. Green objects dropped afterwards by
//! other thread-locals' destructors work (their wake-ups go nowhere); a
//! blocking green call after the thread's hub is gone panics.
//!
//! **fork.** The child of a `fork` has only the thread that forked. A
//! `pthread_atfork` handler (registered with the first hub) makes that
//! thread's hub loop recreate its kernel state and the blocking pool start
//! afresh in every child, however `fork` was called. What cannot carry
//! over: pool jobs queued or running at the fork never finish in the child
//! (their greenlets stay blocked), the thread's other loops need their own
//! [`Loop::reinit_after_fork`], other threads' hubs do not exist, and, as
//! for any fork of a threaded process (which is why `libc::fork` is
//! `unsafe`), no other thread may hold a lock the child will need.

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod async_watcher;
mod callbacks;
mod child;
mod embed;
mod event_loop;
mod flags;
mod global;
#[cfg(feature = "green")]
pub mod green;

/// libev's C API, name by name, and where each piece is in this crate.
#[doc = include_str!("../docs/c-api.md")]
pub mod c_api {}
mod hooks;
mod io_watcher;
mod iouring_fix;
mod loop_guess;
mod loop_hooks;
mod once;
mod periodic;
mod raw;
mod remote;
mod signal;
mod slab;
mod stat;
mod timer;
mod timer_array;
mod tstamp;
mod watcher;

/// The raw C API (the `libev-sys` crate), for mixing C code and
/// [`Loop::as_raw`] / [`Loop::from_raw`] and the watchers' `as_raw`.
pub use libev_sys as sys;

pub use async_watcher::{Async, AsyncCallback, AsyncSender};
pub use callbacks::{CallbackHandle, DEFAULT_CALLBACK_BUDGET};
pub use child::{Child, ChildCallback};
pub use embed::{Embed, EmbedCallback};
pub use event_loop::{Break, Loop, MAX_COLLECT_INTERVAL, PanicPayload, time, version};
pub use flags::{Backend, Events, LoopFlags};
pub use global::{clear_syserr_handler, feed_signal, set_allocator, set_syserr_handler, sleep};
pub use hooks::{
    Check, CheckCallback, Cleanup, CleanupCallback, Fork, ForkCallback, Idle, IdleCallback, Prepare,
    PrepareCallback,
};
pub use io_watcher::{Io, IoCallback};
pub use periodic::{Periodic, PeriodicCallback};
pub use remote::LoopRemote;
pub use signal::{Signal, SignalCallback};
pub use stat::{Stat, StatCallback};
pub use timer::{Timer, TimerCallback};
pub use timer_array::{TimerArray, TimerArrayCallback};
pub use tstamp::Tstamp;
