//! Signals for greenlets: [`wait`] parks the calling greenlet until a
//! signal arrives, and [`signal_handler`] (gevent's `signal_handler`)
//! runs a function on a new greenlet at each delivery.
//!
//! Both use libev [`Signal`] watchers on the hub's loop, so libev's rule
//! applies: a signal belongs to one loop at a time, and asking for one
//! that another thread's loop watches fails with
//! [`ResourceBusy`](io::ErrorKind::ResourceBusy).
//!
//! ```no_run
//! use libev::green::{self, server::StreamServer};
//! use std::time::Duration;
//!
//! let server = StreamServer::bind("127.0.0.1:8000", |_stream, _peer| {})?;
//! // Stop gracefully on Ctrl-C or `kill`: serve_forever then returns Ok.
//! let stopper = server.clone();
//! let _int = green::signal::signal_handler(libc::SIGINT, move || stopper.stop(Duration::from_secs(5)))?;
//! let stopper = server.clone();
//! let _term = green::signal::signal_handler(libc::SIGTERM, move || stopper.stop(Duration::from_secs(5)))?;
//! server.serve_forever()
//! # ;Ok::<(), std::io::Error>(())
//! ```

use super::greenlet::spawn;
use super::watch::wait_watcher;
use crate::{Events, Signal};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// Parks the calling greenlet until signal `signum` arrives (from the
/// root too, running the hub meanwhile). Several greenlets may wait for
/// the same signal: one delivery wakes them all.
///
/// Fails with [`TimedOut`](io::ErrorKind::TimedOut) when `timeout` passes
/// first; as [`Signal::new`] for a bad signal number; with
/// [`ResourceBusy`](io::ErrorKind::ResourceBusy) when another thread's
/// loop watches `signum`; and with [`WouldBlock`](io::ErrorKind::WouldBlock)
/// where green calls do not wait.
///
/// # Panics
///
/// As [`wait_watcher`].
///
/// ```
/// use libev::green;
///
/// let waiter = green::spawn(|| green::signal::wait(libc::SIGUSR2, None));
/// green::sleep(std::time::Duration::from_millis(1));
/// // SAFETY: raising a signal this process handles.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// waiter.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait(signum: i32, timeout: Option<Duration>) -> io::Result<()> {
    let got = wait_watcher(timeout, |wake| {
        let w = Signal::new(&super::hub_loop(), signum, move |_, ev| wake.wake(ev))?;
        w.start()?;
        Ok(w)
    })?;
    match got {
        Some(_) => Ok(()),
        None => {
            Err(io::Error::new(io::ErrorKind::TimedOut, format!("timed out waiting for signal {signum}")))
        }
    }
}

/// Runs `f` on a new greenlet each time signal `signum` arrives, until the
/// returned handler is cancelled or dropped (gevent's `signal_handler`).
/// The handler does not keep the hub running by itself (as in gevent): a
/// program whose greenlets have all ended does not wait for signals.
///
/// Fails as [`wait`] does.
pub fn signal_handler(signum: i32, f: impl Fn() + 'static) -> io::Result<SignalHandler> {
    let f = Rc::new(f);
    let watcher = Signal::new(&super::hub_loop(), signum, move |_, ev| {
        if ev.contains(Events::SIGNAL) {
            let f = f.clone();
            spawn(move || f());
        }
    })?;
    watcher.start()?;
    watcher.set_keeps_loop_alive(false);
    Ok(SignalHandler { watcher })
}

/// A running [`signal_handler`]; dropping it cancels it.
pub struct SignalHandler {
    watcher: Signal,
}

impl SignalHandler {
    /// Stops running the function for new deliveries (gevent's `cancel`).
    pub fn cancel(&self) {
        self.watcher.stop();
    }

    /// The signal number.
    pub fn signum(&self) -> i32 {
        self.watcher.signum()
    }

    /// Whether it still runs the function for new deliveries.
    pub fn is_active(&self) -> bool {
        self.watcher.is_active()
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum())
            .field("active", &self.is_active())
            .finish()
    }
}
