//! [`stdin`], [`stdout`] and [`stderr`]: the standard streams of this
//! thread, green (see the [module docs](super#standard-streams)).
//!
//! Each stream is a [`Shared`] value in a thread-local: a one-permit
//! semaphore, and the stream's state, which the holder of the permit
//! takes out while it holds it (so no `RefCell` borrow spans a wait).

use super::FileObject;
use crate::green::fs::{forward_to_ref, write_fmt_whole};
use crate::green::hub::can_switch;
use crate::green::sync::{Semaphore, SemaphorePermit};
use std::cell::Cell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;

/// Standard input's buffer (std's size).
const STDIN_BUFFER: usize = 8 * 1024;

/// The green object of a standard fd, made on first use.
struct Lazy {
    fd: RawFd,
    obj: Option<FileObject>,
}

impl Lazy {
    fn new(fd: RawFd) -> Lazy {
        Lazy { fd, obj: None }
    }

    /// The object, or `None` while the fd is closed (std's streams then
    /// read nothing and take every write).
    fn get(&mut self) -> io::Result<Option<&FileObject>> {
        if self.obj.is_none() {
            match FileObject::for_std(self.fd) {
                Ok(obj) => self.obj = Some(obj),
                Err(e) if e.raw_os_error() == Some(libc::EBADF) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(self.obj.as_ref())
    }
}

impl Read for Lazy {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.get()? {
            Some(mut obj) => obj.read(buf),
            None => Ok(0),
        }
    }
}

impl Write for Lazy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.get()? {
            Some(mut obj) => obj.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A stream's lock and its state (in `slot` while nobody holds the lock).
struct Shared<T> {
    lock: Semaphore,
    slot: Cell<Option<T>>,
}

impl<T> Shared<T> {
    fn new(value: T) -> Rc<Shared<T>> {
        Rc::new(Shared { lock: Semaphore::new(1), slot: Cell::new(Some(value)) })
    }

    /// Takes the lock, waiting for it; where no green call waits (in a
    /// destructor during an unwind) only if it is free.
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or times out while it waits.
    fn acquire(self: &Rc<Self>) -> Held<T> {
        let permit = if can_switch() { Some(self.lock.acquire()) } else { self.lock.try_acquire() };
        // The permit holder alone takes the state, and puts it back
        // before it gives the permit back.
        let value = permit.as_ref().and_then(|_| self.slot.take());
        Held { value, shared: self.clone(), _permit: permit }
    }
}

/// A held lock and the stream's state.
struct Held<T> {
    /// `None` if the lock could not be had.
    value: Option<T>,
    shared: Rc<Shared<T>>,
    // Declared last: given back after `drop` has put the state back.
    _permit: Option<SemaphorePermit>,
}

impl<T> Held<T> {
    fn get(&mut self) -> io::Result<&mut T> {
        self.value.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                "libev::green::io: another greenlet holds this standard stream, and no green call waits \
                 here (a greenlet unwinding, or its thread exiting)",
            )
        })
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        if let Some(value) = self.value.take() {
            self.shared.slot.set(Some(value));
        }
    }
}

type InState = Shared<BufReader<Lazy>>;
type OutState = Shared<Lazy>;

thread_local! {
    static STDIN: Rc<InState> = new_stdin();
    static STDOUT: Rc<OutState> = Shared::new(Lazy::new(libc::STDOUT_FILENO));
    static STDERR: Rc<OutState> = Shared::new(Lazy::new(libc::STDERR_FILENO));
}

fn new_stdin() -> Rc<InState> {
    Shared::new(BufReader::with_capacity(STDIN_BUFFER, Lazy::new(libc::STDIN_FILENO)))
}

/// A standard fd, borrowed for as long as anyone likes.
fn borrow_std(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: the standard fds stay open for the process's life by
    // convention, as std's `Stdin::as_fd` assumes too.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// This thread's green standard input (std's [`stdin`](std::io::stdin),
/// parking only the calling greenlet while it waits for input). See the
/// [module docs](super#standard-streams) for how it differs from std's.
///
/// ```no_run
/// use libev::green::io;
///
/// let mut name = String::new();
/// io::stdin().read_line(&mut name)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stdin() -> Stdin {
    // During the thread's exit, a stream of its own.
    Stdin { shared: STDIN.try_with(Rc::clone).unwrap_or_else(|_| new_stdin()) }
}

/// This thread's green standard output (std's
/// [`stdout`](std::io::stdout), unbuffered). See the [module
/// docs](super#standard-streams) for how it differs from std's.
///
/// ```
/// use libev::green::io;
/// use std::io::Write;
///
/// writeln!(io::stdout(), "one write for the whole line: {}", 42)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stdout() -> Stdout {
    Stdout {
        shared: STDOUT.try_with(Rc::clone).unwrap_or_else(|_| Shared::new(Lazy::new(libc::STDOUT_FILENO))),
    }
}

/// This thread's green standard error (std's [`stderr`](std::io::stderr),
/// unbuffered as std's is). See the [module docs](super#standard-streams)
/// for how it differs from std's.
///
/// ```
/// use libev::green::io;
/// use std::io::Write;
///
/// writeln!(io::stderr(), "a warning")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn stderr() -> Stderr {
    Stderr {
        shared: STDERR.try_with(Rc::clone).unwrap_or_else(|_| Shared::new(Lazy::new(libc::STDERR_FILENO))),
    }
}

/// A handle to this thread's green standard input; see [`stdin`]. Reads
/// go through an 8 KiB buffer shared by the thread's handles, under a
/// lock: [`lock`](Stdin::lock) holds it across calls and gives
/// [`BufRead`].
///
/// ```no_run
/// use libev::green::io;
/// use std::io::Read;
///
/// let mut all = Vec::new();
/// io::stdin().read_to_end(&mut all)?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// Belongs to its thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<libev::green::io::Stdin>();
/// ```
pub struct Stdin {
    shared: Rc<InState>,
}

/// A locked [`Stdin`]: other greenlets that read standard input wait
/// until it is dropped. Implements [`BufRead`].
///
/// ```no_run
/// use libev::green::io;
/// use std::io::BufRead;
///
/// let mut input = io::stdin().lock();
/// let (mut name, mut age) = (String::new(), String::new());
/// input.read_line(&mut name)?; // no other greenlet reads in between
/// input.read_line(&mut age)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct StdinLock<'a> {
    held: Held<BufReader<Lazy>>,
    _stdin: PhantomData<&'a Stdin>,
}

impl Stdin {
    /// Takes the lock of standard input (waiting for another greenlet to
    /// drop its lock), for [`BufRead`] calls.
    ///
    /// ```no_run
    /// use libev::green::io;
    /// use std::io::BufRead;
    ///
    /// let mut words = 0;
    /// for line in io::stdin().lock().lines() {
    ///     words += line?.split_whitespace().count();
    /// }
    /// println!("{words} words");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or times out while it waits for
    /// the lock. Where no green call waits (in a destructor during an
    /// unwind) a lock that is taken is not waited for: the calls through
    /// the returned lock then fail with
    /// [`WouldBlock`](io::ErrorKind::WouldBlock).
    pub fn lock(&self) -> StdinLock<'static> {
        StdinLock { held: self.shared.acquire(), _stdin: PhantomData }
    }

    /// Reads a line into `buf`, as [`BufRead::read_line`] (std's
    /// `Stdin::read_line`).
    ///
    /// ```no_run
    /// use libev::green::io;
    ///
    /// let mut line = String::new();
    /// let n = io::stdin().read_line(&mut line)?;
    /// println!("{n} bytes: {line:?}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read_line(&self, buf: &mut String) -> io::Result<usize> {
        self.lock().read_line(buf)
    }

    /// The lines of standard input, holding its lock (std's
    /// `Stdin::lines`).
    ///
    /// ```no_run
    /// use libev::green::io;
    ///
    /// for line in io::stdin().lines() {
    ///     println!("got {}", line?);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn lines(self) -> io::Lines<StdinLock<'static>> {
        self.lock().lines()
    }
}

impl Read for &Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.lock().read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.lock().read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        self.lock().read_to_string(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.lock().read_exact(buf)
    }
}

forward_to_ref!(Stdin: Read);

impl Read for StdinLock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.held.get()?.read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.held.get()?.read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        self.held.get()?.read_to_string(buf)
    }
}

impl BufRead for StdinLock<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.held.get()?.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if let Some(reader) = self.held.value.as_mut() {
            reader.consume(amt);
        }
    }
}

/// The green standard output and error handles and locks: `Write` (each
/// call under the lock), the fd traits and `Debug`.
macro_rules! output {
    ($handle:ident, $lock:ident, $fd:expr, $name:literal) => {
        impl $handle {
            #[doc = concat!("Takes the lock of standard ", $name, " (waiting for another greenlet to")]
            /// drop its lock): what is written through it is not
            /// interleaved with other greenlets' writes.
            ///
            /// ```
            /// use libev::green::io;
            /// use std::io::Write;
            ///
            #[doc = concat!("let mut out = io::std", $name, "().lock();")]
            /// for i in 0..3 {
            ///     writeln!(out, "line {i}")?;
            /// }
            /// # Ok::<(), std::io::Error>(())
            /// ```
            ///
            /// # Panics
            ///
            /// As [`Stdin::lock`].
            pub fn lock(&self) -> $lock<'static> {
                $lock { held: self.shared.acquire(), _handle: PhantomData }
            }
        }

        impl Write for &$handle {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.lock().write(buf)
            }

            fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
                self.lock().write_all(buf)
            }

            fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
                self.lock().write_fmt(args)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        forward_to_ref!($handle: Write);

        impl Write for $lock<'_> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.held.get()?.write(buf)
            }

            /// Formats the text first, then writes it whole.
            fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
                write_fmt_whole(self, args)
            }

            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }

        std_fd!($handle, $fd);
        std_fd!($lock<'_>, $fd);
    };
}

/// The fd traits and `Debug` for a handle or lock of standard fd `$fd`.
macro_rules! std_fd {
    ($t:ty, $fd:expr) => {
        /// The standard fd itself (not the object's duplicate).
        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                borrow_std($fd)
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                $fd
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    };
}

std_fd!(Stdin, libc::STDIN_FILENO);
std_fd!(StdinLock<'_>, libc::STDIN_FILENO);

/// A handle to this thread's green standard output; see [`stdout`].
/// Unbuffered: each `write` is one system call, each `write!` one
/// `write_all`.
///
/// ```
/// use libev::green::io;
/// use std::io::{LineWriter, Write};
///
/// // Many small writes: buffer them, and flush before the buffer goes.
/// let mut out = LineWriter::new(io::stdout());
/// for word in ["many", "small", "writes"] {
///     write!(out, "{word} ")?;
/// }
/// writeln!(out)?;
/// out.flush()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Stdout {
    shared: Rc<OutState>,
}

/// A locked [`Stdout`]: other greenlets that write to standard output
/// wait until it is dropped; see [`Stdout::lock`].
pub struct StdoutLock<'a> {
    held: Held<Lazy>,
    _handle: PhantomData<&'a Stdout>,
}

output!(Stdout, StdoutLock, libc::STDOUT_FILENO, "out");

/// A handle to this thread's green standard error; see [`stderr`].
/// Unbuffered, as [`Stdout`].
///
/// ```
/// use libev::green::io;
/// use std::io::Write;
///
/// let err = io::stderr();
/// (&err).write_all(b"written whole, however full the pipe\n")?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Stderr {
    shared: Rc<OutState>,
}

/// A locked [`Stderr`]: other greenlets that write to standard error
/// wait until it is dropped; see [`Stderr::lock`].
pub struct StderrLock<'a> {
    held: Held<Lazy>,
    _handle: PhantomData<&'a Stderr>,
}

output!(Stderr, StderrLock, libc::STDERR_FILENO, "err");
