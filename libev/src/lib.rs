//! Safe bindings to libev 4.33 (bundled, see `libev-sys`).
//!
//! - [`Loop`]: an event loop (the default one or new ones), run, break,
//!   time, ref counting, fork handling, and gevent's callback queue
//!   ([`Loop::run_callback`]).
//! - The 13 watchers: [`Io`], [`Timer`], [`Periodic`], [`Signal`],
//!   [`Child`], [`Stat`], [`Idle`], [`Prepare`], [`Check`], [`Embed`],
//!   [`Fork`], [`Cleanup`], [`Async`] (with a thread-safe [`AsyncSender`]).
//! - [`TimerArray`]: many timers stored contiguously with one callback, at
//!   C's memory cost, for programs with tens of thousands of timers.
//!
//! Each watcher owns its libev struct and a closure, which receives the
//! watcher itself and the [`Events`] that fired. A watcher holds its loop,
//! so it cannot outlive it; dropping an active watcher stops it. From a
//! callback you may stop, restart or drop that watcher or any other, start
//! new ones, feed events, break the loop or run it nested. A panic in a
//! callback breaks the loop and comes out of [`Loop::run`] (or goes to the
//! handler set with [`Loop::set_error_handler`]).
//!
//! libev's manual (`ev.pod`, vendored with its sources) describes the
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

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod async_watcher;
mod callbacks;
mod child;
mod embed;
mod event_loop;
mod flags;
#[cfg(feature = "green")]
pub mod green;
mod hooks;
mod io_watcher;
mod periodic;
mod signal;
mod slab;
mod stat;
mod timer;
mod timer_array;
mod watcher;

pub use async_watcher::{Async, AsyncCallback, AsyncSender};
pub use callbacks::{CallbackHandle, DEFAULT_CALLBACK_BUDGET};
pub use child::{Child, ChildCallback};
pub use embed::{Embed, EmbedCallback};
pub use event_loop::{Break, Loop, MAX_COLLECT_INTERVAL, PanicPayload, time, version};
pub use flags::{Backend, Events, LoopFlags};
pub use hooks::{
    Check, CheckCallback, Cleanup, CleanupCallback, Fork, ForkCallback, Idle, IdleCallback, Prepare,
    PrepareCallback,
};
pub use io_watcher::{Io, IoCallback};
pub use periodic::{Periodic, PeriodicCallback};
pub use signal::{Signal, SignalCallback};
pub use stat::{Stat, StatCallback};
pub use timer::{Timer, TimerCallback};
pub use timer_array::{TimerArray, TimerArrayCallback};
