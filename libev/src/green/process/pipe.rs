//! The parent's ends of a child's standard streams, green: std's
//! `ChildStdin`, `ChildStdout` and `ChildStderr`, whose reads and writes
//! park only the calling greenlet.
//!
//! Each holds its pipe end in non-blocking mode and tries every operation
//! at once; on `WouldBlock` it parks on [`wait_readable`] /
//! [`wait_writable`] and tries again. Converted back to an fd or a
//! [`Stdio`] (to hand it to another child), the pipe end is made blocking
//! again: the flag belongs to the open pipe, which a child shares, and
//! programs expect blocking standard streams.

use crate::green::{hub_loop, wait_readable, wait_watcher, wait_writable};
use crate::{Events, Io};
use std::fmt;
use std::fs::File;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::process::Stdio;

/// Sets or clears `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL on a borrowed, open fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    let new = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    // SAFETY: F_SETFL on a borrowed, open fd, with its own flags changed.
    if new != flags && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A pipe end in non-blocking mode, whose operations park the greenlet.
struct Pipe(File);

impl Pipe {
    /// Makes `fd` non-blocking.
    ///
    /// # Panics
    ///
    /// If the OS refuses, which it does only for an fd that is not open.
    fn new(fd: OwnedFd) -> Pipe {
        if let Err(e) = set_nonblocking(fd.as_fd(), true) {
            panic!("libev::green::process: cannot make the pipe non-blocking: {e}");
        }
        Pipe(File::from(fd))
    }

    /// Runs `op` until it does not report `WouldBlock`, parking until
    /// the pipe is readable in between.
    fn read_with<R>(&self, mut op: impl FnMut(&File) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.0) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(&self.0, None)?,
                r => return r,
            }
        }
    }

    /// As [`read_with`](Pipe::read_with), for writing.
    fn write_with<R>(&self, mut op: impl FnMut(&File) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(&self.0) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(&self.0, None)?,
                r => return r,
            }
        }
    }

    /// Reads until end of file into `buf`: its number of bytes.
    fn read_to_end(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let start = buf.len();
        // File's read_to_end keeps what it read before a `WouldBlock`.
        self.read_with(|mut f| f.read_to_end(buf))?;
        Ok(buf.len() - start)
    }

    /// The pipe end, blocking again.
    ///
    /// # Panics
    ///
    /// As [`Pipe::new`].
    fn into_blocking(self) -> OwnedFd {
        if let Err(e) = set_nonblocking(self.0.as_fd(), false) {
            panic!("libev::green::process: cannot make the pipe blocking again: {e}");
        }
        self.0.into()
    }
}

/// Implements, for a green pipe type, what std implements for its own:
/// the fd traits, the conversions to and from `OwnedFd` and to `Stdio`,
/// and `Debug`.
macro_rules! pipe_conversions {
    ($green:ident, $std:ty) => {
        impl $green {
            /// The green handle for the std one a spawn made.
            pub(super) fn from_std(std: $std) -> $green {
                $green { pipe: Pipe::new(OwnedFd::from(std)) }
            }
        }

        impl AsFd for $green {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.0.as_fd()
            }
        }

        impl AsRawFd for $green {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.0.as_raw_fd()
            }
        }

        /// Makes the pipe end blocking again.
        ///
        /// # Panics
        ///
        /// If the OS refuses, which it does only for an fd that is not open.
        impl IntoRawFd for $green {
            fn into_raw_fd(self) -> RawFd {
                self.pipe.into_blocking().into_raw_fd()
            }
        }

        /// Makes the pipe end blocking again.
        ///
        /// # Panics
        ///
        /// If the OS refuses, which it does only for an fd that is not open.
        impl From<$green> for OwnedFd {
            fn from(green: $green) -> OwnedFd {
                green.pipe.into_blocking()
            }
        }

        /// Makes the pipe end non-blocking (for this handle's use).
        ///
        /// # Panics
        ///
        /// If the OS refuses, which it does only for an fd that is not open.
        impl From<OwnedFd> for $green {
            fn from(fd: OwnedFd) -> $green {
                $green { pipe: Pipe::new(fd) }
            }
        }

        /// For another child's standard stream (a shell pipeline): the
        /// pipe end is made blocking again, as that child expects.
        ///
        /// # Panics
        ///
        /// If the OS refuses, which it does only for an fd that is not open.
        impl From<$green> for Stdio {
            fn from(green: $green) -> Stdio {
                Stdio::from(green.pipe.into_blocking())
            }
        }

        impl fmt::Debug for $green {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($green)).field("fd", &self.as_raw_fd()).finish()
            }
        }
    };
}

/// The parent's end of a child's standard input (std's
/// [`ChildStdin`](std::process::ChildStdin)), green: a write that would
/// block parks only the calling greenlet. Closing it (dropping it, or
/// [`Child::wait`](super::Child::wait), which drops it first) gives the
/// child end of file.
///
/// ```
/// use libev::green::process::{Command, Stdio};
/// use std::io::Write;
///
/// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
/// child.stdin.take().unwrap().write_all(b"meow")?; // dropped: cat sees the end
/// assert_eq!(child.wait_with_output()?.stdout, b"meow");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ChildStdin {
    pipe: Pipe,
}

/// The parent's end of a child's standard output (std's
/// [`ChildStdout`](std::process::ChildStdout)), green: a read that would
/// block parks only the calling greenlet.
///
/// ```
/// use libev::green::process::{Command, Stdio};
/// use std::io::Read;
///
/// let mut child = Command::new("echo").arg("hello").stdout(Stdio::piped()).spawn()?;
/// let mut out = String::new();
/// child.stdout.take().unwrap().read_to_string(&mut out)?;
/// assert_eq!(out, "hello\n");
/// assert!(child.wait()?.success());
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ChildStdout {
    pipe: Pipe,
}

/// The parent's end of a child's standard error (std's
/// [`ChildStderr`](std::process::ChildStderr)), green: a read that would
/// block parks only the calling greenlet.
///
/// ```
/// use libev::green::process::{Command, Stdio};
/// use std::io::Read;
///
/// let mut child = Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped()).spawn()?;
/// let mut err = String::new();
/// child.stderr.take().unwrap().read_to_string(&mut err)?;
/// assert_eq!(err, "oops\n");
/// child.wait()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ChildStderr {
    pipe: Pipe,
}

pipe_conversions!(ChildStdin, std::process::ChildStdin);
pipe_conversions!(ChildStdout, std::process::ChildStdout);
pipe_conversions!(ChildStderr, std::process::ChildStderr);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write_with(|mut f| f.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.pipe.write_with(|mut f| f.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `Read` for the two output pipes.
macro_rules! pipe_read {
    ($green:ident) => {
        impl Read for $green {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.pipe.read_with(|mut f| f.read(buf))
            }

            fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
                self.pipe.read_with(|mut f| f.read_vectored(bufs))
            }

            fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                self.pipe.read_to_end(buf)
            }
        }
    };
}

pipe_read!(ChildStdout);
pipe_read!(ChildStderr);

/// Reads both output pipes to their end at once, so that a child blocked
/// writing to one while the parent waits on the other cannot deadlock
/// (std's `read2`): one greenlet, parked on both pipes when neither has
/// data.
pub(super) fn read_both(
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
    let (Some(out), Some(err)) = (&out, &err) else {
        if let Some(out) = &out {
            out.pipe.read_to_end(&mut out_buf)?;
        }
        if let Some(err) = &err {
            err.pipe.read_to_end(&mut err_buf)?;
        }
        return Ok((out_buf, err_buf));
    };
    let mut open = [Some(&out.pipe.0), Some(&err.pipe.0)];
    loop {
        for (pipe, buf) in open.iter_mut().zip([&mut out_buf, &mut err_buf]) {
            if let Some(mut f) = *pipe {
                match f.read_to_end(buf) {
                    Ok(_) => *pipe = None,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
        match open {
            [None, None] => return Ok((out_buf, err_buf)),
            [Some(a), Some(b)] => wait_either(a, b)?,
            [Some(f), None] | [None, Some(f)] => wait_readable(f, None)?,
        }
    }
}

/// Parks the greenlet until `a` or `b` is readable.
fn wait_either(a: &File, b: &File) -> io::Result<()> {
    wait_watcher(None, |wake| {
        let lp = hub_loop();
        let watch = |f: &File| {
            let wake = wake.clone();
            Io::borrowing(&lp, f, Events::READ, move |_, ev| wake.wake(ev)).inspect(Io::start)
        };
        Ok((watch(a)?, watch(b)?))
    })
    .map(drop)
}
