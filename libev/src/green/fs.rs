//! Green files: [`std::fs::File`] for greenlets (gevent's
//! `FileObjectThread`), and std's `read`, `read_to_string` and `write`.
//!
//! Regular files cannot be waited on: the kernel reports them always
//! ready, and a read that misses the page cache or a write the kernel
//! throttles blocks the whole thread, every greenlet of it with it. So
//! each [`File`] system call that can wait for a disk or a network file
//! system (`open`, `read`, `write`, `fsync`, `ftruncate`, `fstat`, a seek
//! from the end) runs on the [blocking pool](super::spawn_blocking),
//! parking only the calling greenlet while its hub runs the others.
//!
//! ```
//! use libev::green::{self, fs::File};
//! use std::io::{Read, Seek, SeekFrom, Write};
//!
//! let path = std::env::temp_dir().join(format!("libev-doc-fs-{}", std::process::id()));
//! let ticker = green::spawn(|| (0..3).for_each(|_| green::sleep(std::time::Duration::from_millis(1))));
//! let mut f = File::options().read(true).write(true).create(true).truncate(true).open(&path)?;
//! f.write_all(b"hello, green world")?; // the ticker runs meanwhile
//! f.sync_all()?;
//! f.seek(SeekFrom::Start(7))?;
//! let mut rest = String::new();
//! f.read_to_string(&mut rest)?;
//! assert_eq!(rest, "green world");
//! ticker.join().unwrap();
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Cost: buffer small reads and writes
//!
//! A trip to the pool costs a hand-over to a worker thread and a wake-up
//! of the hub: tens of microseconds, where an 8 KiB write to the page
//! cache takes a few. As with std's `File`, every call is a system call
//! and buffering is the caller's choice: wrap the file in a
//! [`BufReader`](std::io::BufReader) or [`BufWriter`](std::io::BufWriter),
//! ideally with a large capacity (64 KiB), for many small reads or
//! writes. Calls that move a whole buffer (`read_to_end`,
//! `read_to_string`, `write_all`, `write!`, `read_exact_at`,
//! `write_all_at`, and the free functions [`read`], [`read_to_string`]
//! and [`write()`]) make one trip for all of it.
//!
//! On Linux with glibc, reads of up to 64 KiB are first tried on the
//! calling thread with `preadv2(RWF_NOWAIT)`, which the kernel serves only
//! from the page cache and otherwise refuses (`EAGAIN`) without waiting;
//! only a refused read goes to the pool. Files opened with `O_DIRECT`
//! (checked once, at the first read), file systems without `RWF_NOWAIT`,
//! and larger reads always use the pool. Like a socket whose data is
//! already there, a read served this way does not let other greenlets
//! run.
//!
//! # Where a green `File` differs from std's
//!
//! - **Interrupts wait for the call.** A [`kill`](super::Greenlet::kill)
//!   or [`with_timeout`](super::with_timeout) that arrives while a call
//!   runs on the pool cannot abandon it (a system call on a worker thread
//!   cannot be stopped half-way): the call finishes and returns its
//!   result, and the interrupt is raised at the greenlet's next blocking
//!   call, so nothing read or written is lost. To wait on a pipe or a FIFO
//!   with a prompt timeout, use [`io::FileObject`](super::io::FileObject).
//! - **Closing is std's.** `drop` closes the file on the calling thread,
//!   as std does. On a local file system that does not wait; on NFS the
//!   close writes back dirty data, so call [`sync_all`](File::sync_all)
//!   (on the pool) first.
//! - **Threads.** Unlike green sockets, a `File` holds no watcher: it is
//!   `Send` and `Sync`, and each call parks the greenlet that makes it, on
//!   whichever thread's hub.
//! - **Inside raw libev callbacks** (on the hub), calls that may go to
//!   the pool panic, as every blocking green call there does.

use super::blocking::spawn_blocking_scoped;
use super::hub::{can_switch, with_hub};
use std::fmt;
use std::fs::{Metadata, Permissions};
use std::io::{self, IoSlice, IoSliceMut, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// `Read`, `Write` and `Seek` (those named) for an owned file type, every
/// method forwarded to the impl for a shared reference, which holds the
/// logic (as for std's `File`): `forward_to_ref!(File: Read, Write, Seek)`.
/// Methods the shared impl does not override are the traits' defaults
/// either way; those it does (a `read_to_end` in one trip to the pool, a
/// `write_fmt` that formats first) keep their behaviour for the owner.
/// The file objects of [`green::io`](super::io) use it too.
macro_rules! forward_to_ref {
    ($t:ty: $($tr:ident),+) => {
        $(forward_to_ref!(@$tr $t);)+
    };
    (@Read $t:ty) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }

            fn read_to_end(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
                std::io::Read::read_to_end(&mut &*self, buf)
            }

            fn read_to_string(&mut self, buf: &mut String) -> std::io::Result<usize> {
                std::io::Read::read_to_string(&mut &*self, buf)
            }

            fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
                std::io::Read::read_exact(&mut &*self, buf)
            }
        }
    };
    (@Write $t:ty) => {
        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                std::io::Write::write_all(&mut &*self, buf)
            }

            fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
                std::io::Write::write_fmt(&mut &*self, args)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                std::io::Write::flush(&mut &*self)
            }
        }
    };
    (@Seek $t:ty) => {
        impl std::io::Seek for $t {
            fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
                std::io::Seek::seek(&mut &*self, pos)
            }
        }
    };
}
pub(crate) use forward_to_ref;

/// `write_fmt` for a writer whose every call costs a trip (to the pool,
/// or a system call under a lock): formats the text on the calling thread
/// first, then writes it whole with one `write_all` (std's default writes
/// each piece of the format as it comes).
pub(crate) fn write_fmt_whole(w: &mut impl Write, args: fmt::Arguments<'_>) -> io::Result<()> {
    match args.as_str() {
        Some(s) => w.write_all(s.as_bytes()),
        None => w.write_all(args.to_string().as_bytes()),
    }
}

/// Runs `f` on the blocking pool and parks the calling greenlet until it
/// has finished; `f` may borrow from the caller. A kill or timeout that
/// arrives meanwhile stays pending for the next blocking call.
///
/// # Panics
///
/// Inside a raw libev callback (on the hub); re-raises a panic of `f`.
fn offload<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    refuse_on_hub();
    spawn_blocking_scoped("file I/O", f)
}

/// Panics inside a raw libev callback, where no greenlet can wait (before
/// any attempt, so that whether a call panics there does not depend on
/// the page cache).
fn refuse_on_hub() {
    if can_switch() {
        with_hub(|hub| hub.check_can_block(&"file I/O"));
    }
}

/// A file on the file system, whose operations park only the calling
/// greenlet (see the [module docs](self)). It has std's
/// [`File`](std::fs::File) methods and implements [`Read`], [`Write`],
/// [`Seek`] and [`FileExt`], for `File` and `&File`.
///
/// ```
/// use libev::green::fs::File;
/// use std::io::{BufRead, BufReader, Write};
///
/// let path = std::env::temp_dir().join(format!("libev-doc-file-{}", std::process::id()));
/// File::create(&path)?.write_all(b"one\ntwo\n")?;
/// // Many small reads: buffer them, as with std's File.
/// let lines: Vec<String> = BufReader::with_capacity(64 * 1024, File::open(&path)?).lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["one", "two"]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct File {
    file: std::fs::File,
    cache: cached::CachedReads,
}

impl File {
    /// Opens a file for reading, as [`std::fs::File::open`] (on the pool).
    ///
    /// ```
    /// use libev::green::fs::File;
    ///
    /// let err = File::open("/no/such/file").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Creates a file for writing, truncating it if it exists, as
    /// [`std::fs::File::create`] (on the pool).
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-create-{}", std::process::id()));
    /// File::create(&path)?.write_all(b"data")?;
    /// assert_eq!(std::fs::read(&path)?, b"data");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path)
    }

    /// Creates a new file for reading and writing, failing with
    /// [`AlreadyExists`](io::ErrorKind::AlreadyExists) if there is one,
    /// as [`std::fs::File::create_new`] (on the pool).
    ///
    /// ```
    /// use libev::green::fs::File;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-create-new-{}", std::process::id()));
    /// let _f = File::create_new(&path)?;
    /// assert_eq!(File::create_new(&path).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).create_new(true).open(path)
    }

    /// Options to open a file with, as [`std::fs::File::options`].
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-options-{}", std::process::id()));
    /// File::create(&path)?.write_all(b"a")?;
    /// File::options().append(true).open(&path)?.write_all(b"b")?;
    /// assert_eq!(std::fs::read(&path)?, b"ab");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Writes the file's data and metadata to the device (`fsync`), on the
    /// pool.
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-sync-all-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"durable")?;
    /// f.sync_all()?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        offload(|| self.file.sync_all())
    }

    /// Writes the file's data, and the metadata needed to read it back,
    /// to the device (`fdatasync`), on the pool.
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-sync-data-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"durable")?;
    /// f.sync_data()?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync_data(&self) -> io::Result<()> {
        offload(|| self.file.sync_data())
    }

    /// Truncates or extends the file to `size` bytes, as
    /// [`std::fs::File::set_len`] (on the pool).
    ///
    /// ```
    /// use libev::green::fs::File;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-set-len-{}", std::process::id()));
    /// let f = File::create(&path)?;
    /// f.set_len(10)?;
    /// assert_eq!(f.metadata()?.len(), 10);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        offload(|| self.file.set_len(size))
    }

    /// The file's metadata (`fstat`), on the pool.
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Write;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-metadata-{}", std::process::id()));
    /// let mut f = File::create(&path)?;
    /// f.write_all(b"four")?;
    /// assert_eq!(f.metadata()?.len(), 4);
    /// assert!(f.metadata()?.is_file());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn metadata(&self) -> io::Result<Metadata> {
        offload(|| self.file.metadata())
    }

    /// Changes the file's permissions (`fchmod`), on the pool.
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-set-permissions-{}", std::process::id()));
    /// let f = File::create(&path)?;
    /// f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    /// assert_eq!(f.metadata()?.permissions().mode() & 0o777, 0o600);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        offload(|| self.file.set_permissions(perm))
    }

    /// Another handle to the same open file (`dup`, which does not wait):
    /// the two share the file position.
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::{Read, Write};
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-try-clone-{}", std::process::id()));
    /// File::create(&path)?.write_all(b"abcd")?;
    /// let mut a = File::open(&path)?;
    /// let mut b = a.try_clone()?;
    /// let mut two = [0; 2];
    /// a.read_exact(&mut two)?;
    /// b.read_exact(&mut two)?;
    /// assert_eq!(&two, b"cd");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_clone(&self) -> io::Result<File> {
        Ok(File::from_std(self.file.try_clone()?))
    }

    /// A green handle to a std file (a free conversion; also `From`).
    ///
    /// ```
    /// use libev::green::fs::File;
    /// use std::io::Read;
    ///
    /// let mut f = File::from_std(std::fs::File::open("/dev/null")?);
    /// let mut buf = Vec::new();
    /// assert_eq!(f.read_to_end(&mut buf)?, 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn from_std(file: std::fs::File) -> File {
        File { file, cache: cached::CachedReads::new() }
    }

    /// The std file (a free conversion; also `From`).
    ///
    /// ```
    /// use libev::green::fs::File;
    ///
    /// use std::os::unix::fs::FileTypeExt;
    ///
    /// let std_file: std::fs::File = File::open("/dev/null")?.into_std();
    /// assert!(std_file.metadata()?.file_type().is_char_device());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn into_std(self) -> std::fs::File {
        self.file
    }

    /// The std file, to call what the green one does not offer (those
    /// calls run on the calling thread).
    ///
    /// ```
    /// use libev::green::fs::File;
    ///
    /// let f = File::open("/dev/null")?;
    /// assert!(f.as_std().metadata().is_ok());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn as_std(&self) -> &std::fs::File {
        &self.file
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.file, f)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        refuse_on_hub();
        if let Some(n) = self.cache.try_read(self.file.as_fd(), buf, None) {
            return Ok(n);
        }
        let file = &self.file;
        spawn_blocking_scoped("file I/O", || (&*file).read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let file = &self.file;
        offload(|| (&*file).read_vectored(bufs))
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let file = &self.file;
        offload(|| (&*file).read_to_end(buf))
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let file = &self.file;
        offload(|| (&*file).read_to_string(buf))
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = &self.file;
        offload(|| (&*file).write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let file = &self.file;
        offload(|| (&*file).write_vectored(bufs))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let file = &self.file;
        offload(|| (&*file).write_all(buf))
    }

    /// Formats on the calling thread, then writes it all in one trip.
    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        write_fmt_whole(self, args)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    /// Seeks from the start or the current position on the calling thread
    /// (the kernel only sets a number), from the end on the pool (the
    /// size may have to be fetched from a network file system).
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let file = &self.file;
        match pos {
            SeekFrom::End(_) => offload(|| (&*file).seek(pos)),
            SeekFrom::Start(_) | SeekFrom::Current(_) => (&*file).seek(pos),
        }
    }
}

forward_to_ref!(File: Read, Write, Seek);

/// Positioned reads and writes (`pread`, `pwrite`), which leave the file
/// position alone; reads take the page-cache path of [`Read::read`].
///
/// ```
/// use libev::green::fs::File;
/// use std::os::unix::fs::FileExt;
///
/// let path = std::env::temp_dir().join(format!("libev-doc-file-ext-{}", std::process::id()));
/// let f = File::create_new(&path)?;
/// f.write_all_at(b"world", 6)?;
/// f.write_all_at(b"hello ", 0)?;
/// let mut buf = [0; 5];
/// f.read_exact_at(&mut buf, 6)?;
/// assert_eq!(&buf, b"world");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
impl FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        refuse_on_hub();
        if let Some(n) = self.cache.try_read(self.file.as_fd(), buf, Some(offset)) {
            return Ok(n);
        }
        spawn_blocking_scoped("file I/O", || self.file.read_at(buf, offset))
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        offload(|| self.file.write_at(buf, offset))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        offload(|| self.file.read_exact_at(buf, offset))
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        offload(|| self.file.write_all_at(buf, offset))
    }
}

impl From<std::fs::File> for File {
    fn from(file: std::fs::File) -> File {
        File::from_std(file)
    }
}

impl From<File> for std::fs::File {
    fn from(file: File) -> std::fs::File {
        file.file
    }
}

impl From<OwnedFd> for File {
    fn from(fd: OwnedFd) -> File {
        File::from_std(fd.into())
    }
}

impl From<File> for OwnedFd {
    fn from(file: File) -> OwnedFd {
        file.file.into()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl IntoRawFd for File {
    fn into_raw_fd(self) -> RawFd {
        self.file.into_raw_fd()
    }
}

impl FromRawFd for File {
    /// Takes ownership of an open file descriptor.
    ///
    /// # Safety
    ///
    /// `fd` must be open and owned by nothing else (as for std's
    /// `from_raw_fd`).
    unsafe fn from_raw_fd(fd: RawFd) -> File {
        // SAFETY: forwarded from the caller.
        File::from_std(unsafe { std::fs::File::from_raw_fd(fd) })
    }
}

/// How to open a [`File`]: std's [`OpenOptions`](std::fs::OpenOptions)
/// (with [`OpenOptionsExt`]), whose `open` runs on the pool.
///
/// ```
/// use libev::green::fs::OpenOptions;
/// use std::io::{Read, Write};
/// use std::os::unix::fs::OpenOptionsExt;
///
/// let path = std::env::temp_dir().join(format!("libev-doc-open-options-{}", std::process::id()));
/// let mut f = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
/// f.write_all(b"x")?;
/// assert_eq!(OpenOptions::new().read(true).open(&path)?.bytes().count(), 1);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// Options with every flag off, as [`std::fs::OpenOptions::new`].
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-new-{}", std::process::id()));
    /// let mut options = OpenOptions::new();
    /// options.write(true).create(true);
    /// options.open(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Opens for reading.
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-read-{}", std::process::id()));
    /// std::fs::write(&path, "r")?;
    /// let _reader = OpenOptions::new().read(true).open(&path)?;
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Opens for writing.
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-write-{}", std::process::id()));
    /// std::fs::write(&path, "abc")?;
    /// std::io::Write::write_all(&mut OpenOptions::new().write(true).open(&path)?, b"X")?;
    /// assert_eq!(std::fs::read(&path)?, b"Xbc");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Writes at the end of the file (`O_APPEND`).
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-append-{}", std::process::id()));
    /// std::fs::write(&path, "a")?;
    /// std::io::Write::write_all(&mut OpenOptions::new().append(true).open(&path)?, b"b")?;
    /// assert_eq!(std::fs::read(&path)?, b"ab");
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncates an existing file to 0 bytes (`O_TRUNC`).
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-truncate-{}", std::process::id()));
    /// std::fs::write(&path, "old")?;
    /// OpenOptions::new().write(true).truncate(true).open(&path)?;
    /// assert!(std::fs::read(&path)?.is_empty());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Creates the file if it does not exist (`O_CREAT`).
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-create-{}", std::process::id()));
    /// OpenOptions::new().write(true).create(true).open(&path)?;
    /// assert!(path.exists());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Creates the file, failing if it exists (`O_CREAT | O_EXCL`).
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let path = std::env::temp_dir().join(format!("libev-doc-oo-create-new-{}", std::process::id()));
    /// OpenOptions::new().write(true).create_new(true).open(&path)?;
    /// let again = OpenOptions::new().write(true).create_new(true).open(&path);
    /// assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the pool; fails as
    /// [`std::fs::OpenOptions::open`] does.
    ///
    /// ```
    /// use libev::green::fs::OpenOptions;
    ///
    /// let err = OpenOptions::new().write(true).open("/no/such/dir/file").unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let path = path.as_ref();
        offload(|| self.0.open(path)).map(File::from_std)
    }
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    fn from(options: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions(options)
    }
}

impl OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.0.mode(mode);
        self
    }

    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.0.custom_flags(flags);
        self
    }
}

/// The whole content of the file at `path`, as [`std::fs::read`], in one
/// trip to the pool.
///
/// ```
/// use libev::green::fs;
///
/// let path = std::env::temp_dir().join(format!("libev-doc-read-{}", std::process::id()));
/// fs::write(&path, [1, 2, 3])?;
/// assert_eq!(fs::read(&path)?, [1, 2, 3]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    offload(|| std::fs::read(path))
}

/// The whole content of the file at `path` as text, as
/// [`std::fs::read_to_string`] ([`InvalidData`](io::ErrorKind::InvalidData)
/// if it is not UTF-8), in one trip to the pool.
///
/// ```
/// use libev::green::fs;
///
/// let path = std::env::temp_dir().join(format!("libev-doc-read-to-string-{}", std::process::id()));
/// fs::write(&path, "text")?;
/// assert_eq!(fs::read_to_string(&path)?, "text");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref();
    offload(|| std::fs::read_to_string(path))
}

/// Writes `contents` as the whole content of the file at `path`, creating
/// or truncating it, as [`std::fs::write`], in one trip to the pool.
///
/// ```
/// use libev::green::fs;
///
/// let path = std::env::temp_dir().join(format!("libev-doc-write-{}", std::process::id()));
/// fs::write(&path, b"bytes")?;
/// assert_eq!(std::fs::read(&path)?, b"bytes");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let (path, contents) = (path.as_ref(), contents.as_ref());
    offload(|| std::fs::write(path, contents))
}

/// Reads served from the page cache on the calling thread.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod cached {
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::sync::atomic::{AtomicU8, Ordering};

    /// Reads larger than this go to the pool: a copy of more would hold
    /// up the hub's other greenlets for longer than a pool trip costs.
    const MAX: usize = 64 * 1024;

    /// Not known yet whether the file allows it.
    const UNKNOWN: u8 = 0;
    const USABLE: u8 = 1;
    const UNUSABLE: u8 = 2;

    /// Whether a file's reads may try `preadv2(RWF_NOWAIT)` first.
    pub(super) struct CachedReads(AtomicU8);

    impl CachedReads {
        pub(super) fn new() -> CachedReads {
            CachedReads(AtomicU8::new(UNKNOWN))
        }

        /// Reads into `buf` (at `offset`, or the file position) what the
        /// page cache holds, without waiting; `None` if that is nothing
        /// (or not known: at the end of the file, which the pool confirms),
        /// or the file does not allow it.
        pub(super) fn try_read(
            &self,
            fd: BorrowedFd<'_>,
            buf: &mut [u8],
            offset: Option<u64>,
        ) -> Option<usize> {
            if buf.is_empty() || buf.len() > MAX {
                return None;
            }
            // -1 reads at the file position; a larger offset than the
            // kernel takes is left to the pool to refuse.
            let offset = match offset {
                None => -1,
                Some(at) => i64::try_from(at).ok()?,
            };
            match self.0.load(Ordering::Relaxed) {
                UNUSABLE => return None,
                UNKNOWN if !allows_nowait(fd) => {
                    self.0.store(UNUSABLE, Ordering::Relaxed);
                    return None;
                }
                UNKNOWN => self.0.store(USABLE, Ordering::Relaxed),
                _ => {}
            }
            let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
            // SAFETY: one iovec over `buf`, which is borrowed mutably for
            // the call; the kernel writes at most `buf.len()` bytes.
            let n = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
            if n > 0 {
                return usize::try_from(n).ok();
            }
            if n < 0
                && matches!(
                    io::Error::last_os_error().raw_os_error(),
                    Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
                )
            {
                // Not for this file (or kernel): the pool from now on.
                self.0.store(UNUSABLE, Ordering::Relaxed);
            }
            None
        }
    }

    /// Whether `fd` may be read with `RWF_NOWAIT` without waiting: not
    /// with `O_DIRECT`, whose reads go to the device even then.
    fn allows_nowait(fd: BorrowedFd<'_>) -> bool {
        // SAFETY: F_GETFL reads the flags of an fd `fd` keeps open.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_DIRECT == 0
    }
}

/// Without `preadv2(RWF_NOWAIT)`, every read goes to the pool.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod cached {
    use std::os::fd::BorrowedFd;

    pub(super) struct CachedReads;

    impl CachedReads {
        pub(super) fn new() -> CachedReads {
            CachedReads
        }

        pub(super) fn try_read(
            &self,
            _fd: BorrowedFd<'_>,
            _buf: &mut [u8],
            _offset: Option<u64>,
        ) -> Option<usize> {
            None
        }
    }
}
