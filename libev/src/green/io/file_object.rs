//! [`FileObject`]: green reads and writes on any fd, in the [`Mode`] that
//! suits it (see the [module docs](super)).

use crate::green::fs::{File, forward_to_ref};
use crate::green::net::{Interest, Source};
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// How a [`FileObject`] waits (see the [module docs](super#two-ways-to-wait)).
///
/// ```
/// use libev::green::io::{FileObject, Mode};
///
/// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
/// assert_eq!(FileObject::new(a)?.mode(), Mode::Posix);
/// assert_eq!(FileObject::new(std::fs::File::open("/dev/null")?)?.mode(), Mode::Thread);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Non-blocking calls, parking on readiness (gevent's
    /// `FileObjectPosix`): pipes, FIFOs, sockets and terminals.
    Posix,
    /// Every call on the blocking pool (gevent's `FileObjectThread`):
    /// regular files, devices, and pipes or terminals that could not be
    /// made non-blocking without touching flags shared with others.
    Thread,
}

/// Any file descriptor, read and written from greenlets: a pipe (a
/// child's output), a FIFO, a terminal, a socket, a file (gevent's
/// `FileObject`). It picks its [`Mode`] from what the fd is, never changes
/// the fd's flags, and implements [`Read`], [`Write`] and [`Seek`] for
/// `FileObject` and `&FileObject`.
///
/// ```
/// use libev::green::io::{FileObject, Mode};
/// use std::io::{Read, Write};
///
/// // An fd from elsewhere (a pipe, a socket handed over by a parent, ...),
/// // written to by another thread.
/// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
/// let writer = std::thread::spawn(move || theirs.write_all(b"from a thread"));
/// let mut obj = FileObject::new(ours)?;
/// assert_eq!(obj.mode(), Mode::Posix);
/// let mut text = String::new();
/// obj.read_to_string(&mut text)?; // parks this greenlet only
/// assert_eq!(text, "from a thread");
/// writer.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// One greenlet at a time may wait to read, and one to write (as with
/// green sockets: a second gets
/// [`ResourceBusy`](io::ErrorKind::ResourceBusy) in [`Mode::Posix`]). A
/// file object belongs to its thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<libev::green::io::FileObject>();
/// ```
pub struct FileObject {
    inner: Inner,
}

enum Inner {
    Posix(Posix),
    Thread(File),
}

/// A [`Mode::Posix`] object.
struct Posix {
    // Declared first: the watchers go before the fds close.
    source: Source,
    /// The private non-blocking description that I/O goes through, if
    /// `fd`'s was not already non-blocking (see the module docs).
    private: Option<OwnedFd>,
    /// The fd handed in, flags untouched.
    fd: OwnedFd,
    /// A socket: I/O by `recv`/`send` with `MSG_DONTWAIT`.
    socket: bool,
}

/// Flags of every `send`: no wait, and `EPIPE` rather than `SIGPIPE` where
/// the system has the flag (as std's sockets do).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd"))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd")))]
const SEND_FLAGS: libc::c_int = libc::MSG_DONTWAIT;

impl FileObject {
    /// A green object for `fd`, in the mode its kind calls for (see the
    /// [module docs](super#the-non-blocking-flag-is-left-alone)). Takes
    /// anything that converts to an [`OwnedFd`]: std's `File`,
    /// `ChildStdout`, `UnixStream`, ... Fails with `fstat`'s error (and
    /// `EBADF` for an fd that is not open).
    ///
    /// ```
    /// use libev::green::io::{FileObject, Mode};
    ///
    /// let null = FileObject::new(std::fs::File::open("/dev/null")?)?;
    /// assert_eq!(null.mode(), Mode::Thread);
    /// let (a, _b) = std::os::unix::net::UnixStream::pair()?;
    /// assert_eq!(FileObject::new(a)?.mode(), Mode::Posix);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(fd: impl Into<OwnedFd>) -> io::Result<FileObject> {
        let fd = fd.into();
        let st = fstat(fd.as_fd())?;
        let kind = st.st_mode & libc::S_IFMT;
        let inner = if kind == libc::S_IFSOCK {
            Inner::Posix(Posix::new(fd, None, true))
        } else if kind == libc::S_IFIFO || kind == libc::S_IFCHR {
            if is_nonblocking(fd.as_fd())? {
                Inner::Posix(Posix::new(fd, None, false))
            } else if let Some(private) = reopen::nonblocking(fd.as_fd(), &st) {
                Inner::Posix(Posix::new(fd, Some(private), false))
            } else {
                Inner::Thread(File::from(fd))
            }
        } else {
            Inner::Thread(File::from(fd))
        };
        Ok(FileObject { inner })
    }

    /// A green object for standard fd `fd` (0, 1 or 2), which stays as it
    /// is: the object works on a duplicate.
    pub(super) fn for_std(fd: RawFd) -> io::Result<FileObject> {
        // SAFETY: F_DUPFD_CLOEXEC reads `fd` and makes a new fd, at 3 or
        // above so that it never fills in a closed standard fd.
        let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fcntl just made `dup`, which nothing else owns.
        FileObject::new(unsafe { OwnedFd::from_raw_fd(dup) })
    }

    /// How this object waits.
    ///
    /// ```
    /// use libev::green::io::{FileObject, Mode};
    ///
    /// let file = FileObject::new(std::fs::File::open("/dev/null")?)?;
    /// assert_eq!(file.mode(), Mode::Thread);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn mode(&self) -> Mode {
        match self.inner {
            Inner::Posix(_) => Mode::Posix,
            Inner::Thread(_) => Mode::Thread,
        }
    }
}

impl Posix {
    fn new(fd: OwnedFd, private: Option<OwnedFd>, socket: bool) -> Posix {
        let io_fd = private.as_ref().unwrap_or(&fd).as_raw_fd();
        Posix { source: Source::new(io_fd), private, fd, socket }
    }

    /// The fd that I/O goes through.
    fn io_fd(&self) -> RawFd {
        self.private.as_ref().unwrap_or(&self.fd).as_raw_fd()
    }

    fn seek(&self, pos: SeekFrom) -> io::Result<u64> {
        let invalid = || io::Error::from_raw_os_error(libc::EINVAL);
        let (offset, whence) = match pos {
            SeekFrom::Start(at) => (i64::try_from(at).map_err(|_| invalid())?, libc::SEEK_SET),
            SeekFrom::Current(by) => (by, libc::SEEK_CUR),
            SeekFrom::End(by) => (by, libc::SEEK_END),
        };
        let offset = libc::off_t::try_from(offset).map_err(|_| invalid())?;
        // SAFETY: lseek on an fd this object keeps open.
        let at = unsafe { libc::lseek(self.io_fd(), offset, whence) };
        u64::try_from(at).map_err(|_| io::Error::last_os_error())
    }
}

/// Reads and writes of a [`Mode::Posix`] object (std's default
/// `read_to_end` and `write_all` on top).
impl Read for &Posix {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.io_fd();
        let len = buf.len();
        self.source.read_stream(len, || {
            // SAFETY: reads at most `len` bytes into `buf`, borrowed
            // mutably for the call, from an fd this object keeps open.
            let n = unsafe {
                if self.socket {
                    libc::recv(fd, buf.as_mut_ptr().cast(), len, libc::MSG_DONTWAIT)
                } else {
                    libc::read(fd, buf.as_mut_ptr().cast(), len)
                }
            };
            cvt(n)
        })
    }
}

impl Write for &Posix {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.io_fd();
        self.source.do_io(Interest::Write, || {
            // SAFETY: writes at most `buf.len()` bytes from `buf`, borrowed
            // for the call, to an fd this object keeps open.
            let n = unsafe {
                if self.socket {
                    libc::send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS)
                } else {
                    libc::write(fd, buf.as_ptr().cast(), buf.len())
                }
            };
            cvt(n)
        })
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A system call's byte count, or its error.
fn cvt(n: isize) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat fills `st`, a live local, for an fd `fd` keeps open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Whether `fd`'s description is non-blocking.
fn is_nonblocking(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFL reads the flags of an fd `fd` keeps open.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::O_NONBLOCK != 0)
}

/// A private non-blocking description of a pipe or terminal.
#[cfg(target_os = "linux")]
mod reopen {
    use super::fstat;
    use std::ffi::CString;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

    /// A new non-blocking open file description of the pipe, FIFO or
    /// terminal `fd` refers to (`st` is its `fstat`), with `fd`'s access
    /// mode; `None` where that cannot be had safely.
    pub(super) fn nonblocking(fd: BorrowedFd<'_>, st: &libc::stat) -> Option<OwnedFd> {
        if st.st_mode & libc::S_IFMT == libc::S_IFCHR && !is_reopenable_tty(fd) {
            return None;
        }
        // SAFETY: F_GETFL reads the flags of an fd `fd` keeps open.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        if flags < 0 {
            return None;
        }
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
        // No controlling terminal from this open; non-blocking also keeps
        // a FIFO's open from waiting for the other side.
        let how = (flags & libc::O_ACCMODE) | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
        // SAFETY: opens a NUL-terminated path that lives for the call.
        let raw = unsafe { libc::open(path.as_ptr(), how) };
        if raw < 0 {
            return None;
        }
        // SAFETY: open just made `raw`, which nothing else owns.
        let private = above_std_fds(unsafe { OwnedFd::from_raw_fd(raw) })?;
        let same = fstat(private.as_fd()).ok().is_some_and(|p| {
            p.st_dev == st.st_dev
                && p.st_ino == st.st_ino
                && p.st_rdev == st.st_rdev
                && p.st_mode & libc::S_IFMT == st.st_mode & libc::S_IFMT
        });
        same.then_some(private)
    }

    /// Whether `fd` is a terminal that a second open reaches again: not a
    /// pseudo-terminal master (`TIOCGPTN` answers only on one), whose
    /// device makes a new terminal on each open.
    fn is_reopenable_tty(fd: BorrowedFd<'_>) -> bool {
        // SAFETY: isatty only inspects the fd.
        if unsafe { libc::isatty(fd.as_raw_fd()) } != 1 {
            return false;
        }
        let mut n: libc::c_uint = 0;
        // SAFETY: TIOCGPTN writes one unsigned int to `n`, a live local.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) != 0 }
    }

    /// `fd` moved to a number above 2 if it took the place of a closed
    /// standard fd (which the next `open` of someone else expects to get
    /// or to find closed).
    fn above_std_fds(fd: OwnedFd) -> Option<OwnedFd> {
        if fd.as_raw_fd() > 2 {
            return Some(fd);
        }
        // SAFETY: F_DUPFD_CLOEXEC reads `fd` and makes a new fd at 3 or
        // above; `fd` itself is closed when dropped here.
        let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        // SAFETY: fcntl just made `moved`, which nothing else owns.
        (moved >= 0).then(|| unsafe { OwnedFd::from_raw_fd(moved) })
    }
}

/// Other systems have no way to open a pipe's file again: such pipes and
/// terminals use the pool.
#[cfg(not(target_os = "linux"))]
mod reopen {
    use std::os::fd::{BorrowedFd, OwnedFd};

    pub(super) fn nonblocking(_fd: BorrowedFd<'_>, _st: &libc::stat) -> Option<OwnedFd> {
        None
    }
}

impl Read for &FileObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Posix(p) => {
                let mut p = p;
                p.read(buf)
            }
            Inner::Thread(f) => (&*f).read(buf),
        }
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match &self.inner {
            Inner::Posix(p) => {
                let mut p = p;
                p.read_to_end(buf)
            }
            Inner::Thread(f) => (&*f).read_to_end(buf),
        }
    }
}

impl Write for &FileObject {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.inner {
            Inner::Posix(p) => {
                let mut p = p;
                p.write(buf)
            }
            Inner::Thread(f) => (&*f).write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &self.inner {
            Inner::Posix(p) => {
                let mut p = p;
                p.write_all(buf)
            }
            Inner::Thread(f) => (&*f).write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &FileObject {
    /// Seeks the fd (`ESPIPE` for a pipe, a socket or a terminal, as the
    /// OS says).
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match &self.inner {
            Inner::Posix(p) => p.seek(pos),
            Inner::Thread(f) => (&*f).seek(pos),
        }
    }
}

forward_to_ref!(FileObject: Read, Write, Seek);

/// The fd handed in (not the private description, if there is one).
impl AsFd for FileObject {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.inner {
            Inner::Posix(p) => p.fd.as_fd(),
            Inner::Thread(f) => f.as_fd(),
        }
    }
}

impl AsRawFd for FileObject {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// The fd handed in, with its flags as they were (a private description,
/// if there was one, is closed).
impl From<FileObject> for OwnedFd {
    fn from(obj: FileObject) -> OwnedFd {
        match obj.inner {
            Inner::Posix(Posix { source, private, fd, .. }) => {
                drop(source);
                drop(private);
                fd
            }
            Inner::Thread(f) => f.into(),
        }
    }
}

impl fmt::Debug for FileObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileObject").field("fd", &self.as_raw_fd()).field("mode", &self.mode()).finish()
    }
}
