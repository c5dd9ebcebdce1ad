//! Green standard streams and file objects: [`stdin`], [`stdout`] and
//! [`stderr`] (std's functions of those names, on green threads), and
//! [`FileObject`] for any other file descriptor (gevent's `FileObject`).
//!
//! ```no_run
//! use libev::green::{self, io};
//! use std::io::{BufRead, Write};
//! use std::time::Duration;
//!
//! // Waiting for a line of input parks only this greenlet.
//! let ticker = green::spawn(|| loop { green::sleep(Duration::from_secs(1)); eprint!(".") });
//! let mut line = String::new();
//! io::stdin().lock().read_line(&mut line)?;
//! ticker.kill();
//! writeln!(io::stdout(), "you said {}", line.trim_end())?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Two ways to wait
//!
//! A [`FileObject`] picks one of two [`Mode`]s for its fd, by what the fd
//! is (`fstat`):
//!
//! - [`Mode::Posix`] (gevent's `FileObjectPosix`) for pipes, FIFOs,
//!   sockets and terminals: non-blocking system calls, and on
//!   `WouldBlock` the greenlet parks until the hub's loop reports the fd
//!   ready, as [green sockets](super::net) do. Waits can be interrupted
//!   ([`kill`](super::Greenlet::kill), [`with_timeout`](super::with_timeout))
//!   and lose nothing.
//! - [`Mode::Thread`] (gevent's `FileObjectThread`) for regular files,
//!   block devices, character devices other than terminals (`/dev/null`)
//!   and the pipes and terminals that cannot be made non-blocking (see
//!   below): every call runs on the [blocking pool](super::spawn_blocking),
//!   as a [`fs::File`](super::fs::File)'s do. Readiness means nothing for
//!   those: the kernel reports a regular file always ready, and then
//!   blocks the thread on the disk. A kill or timeout cannot cut a call
//!   short: it is raised at the next blocking call, after the call has
//!   returned what it read (see the [`fs`](super::fs) module).
//!
//! # The non-blocking flag is left alone
//!
//! `O_NONBLOCK` is a flag of the *open file description*, which an fd
//! shares with its duplicates, and which standard streams share with the
//! parent shell and the other processes of a pipeline. gevent's
//! `FileObjectPosix` sets it on the fd and leaves it set: the programs
//! sharing the description (the shell on the same terminal, the next
//! command of a pipeline) then get `EAGAIN` where they expected to wait,
//! and many fail on it (`cat: Resource temporarily unavailable`). So this
//! module never changes the flags of an fd that it did not open itself:
//!
//! - a socket is read and written with `recv`/`send` and `MSG_DONTWAIT`,
//!   a flag of the call, not of the fd;
//! - a pipe, FIFO or terminal whose description is already non-blocking
//!   is used as it is;
//! - otherwise, on Linux, its file is opened again through
//!   `/proc/self/fd/N`, non-blocking: a new description of the same pipe
//!   or terminal, private to the object, which does its I/O through it.
//!   The open is checked to have reached the same file (device and inode),
//!   and is not tried for a pseudo-terminal master (opening it again would
//!   make a new terminal) or for other character devices (whose open may
//!   have effects, a tape rewinding on close);
//! - where that is impossible (no `/proc`, other systems, no permission
//!   to open the file), the object uses [`Mode::Thread`] on the fd as it
//!   is.
//!
//! The private description holds one more reference to the pipe for the
//! object's life: the other end sees the pipe closed only once the object
//! is dropped too (for the standard streams: when the thread exits), and
//! when the description handed in was already non-blocking the object
//! relies on it staying so (whoever clears the flag makes its reads block
//! the thread, as with gevent).
//!
//! # Standard streams
//!
//! - **Per thread.** Each thread makes its own objects for fds 0, 1 and
//!   2 on first use (their watchers belong to its hub); the handles are
//!   not `Send`. They refer to what the fds were at that first use.
//! - **[`Stdin`] is buffered** (8 KiB, as std's is) and
//!   [`lock`](Stdin::lock) gives [`BufRead`](std::io::BufRead)
//!   (`read_line`, `lines`). The buffer is not std's: what
//!   [`std::io::stdin`] has read ahead is not seen here, and the other
//!   way round, so read standard input through one of the two (and
//!   through one thread).
//! - **[`Stdout`] and [`Stderr`] are unbuffered**: each `write` is one
//!   system call, and each `write!` formats its text first and writes it
//!   whole (one call unless the pipe is full). They are separate from
//!   std's line buffer: flush [`std::io::stdout`] before writing here,
//!   or output interleaves out of order. For many small writes, wrap the
//!   lock in a [`LineWriter`](std::io::LineWriter) or
//!   [`BufWriter`](std::io::BufWriter), and flush it before it goes.
//! - **Locks.** A [`lock`](Stdout::lock) is held across the waits of the
//!   calls made through it, so what one greenlet writes through a lock (or
//!   one `write_all`/`write!` on the handle) is not interleaved with
//!   other greenlets' output. Other greenlets that use the stream wait
//!   for the lock.
//! - **A closed standard fd** reads as empty and takes writes without
//!   error, as std's streams do.

mod file_object;
mod stdio;

pub use file_object::{FileObject, Mode};
pub use stdio::{Stderr, StderrLock, Stdin, StdinLock, Stdout, StdoutLock, stderr, stdin, stdout};
