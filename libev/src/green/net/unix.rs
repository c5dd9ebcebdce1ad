//! [`UnixListener`], [`UnixStream`] and [`UnixDatagram`].

use super::{Interest, Source, sys};
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self as unet, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// A Unix stream server socket whose [`accept`](UnixListener::accept)
/// parks only the calling greenlet (std's [`unet::UnixListener`] on green
/// threads).
///
/// ```
/// use libev::green::{self, net::{UnixListener, UnixStream}};
/// use std::io::{Read, Write};
///
/// let dir = std::env::temp_dir().join(format!("libev-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("listener.sock");
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let client = green::spawn({
///     let path = path.clone();
///     move || UnixStream::connect(&path)?.write_all(b"hi")
/// });
/// let (mut conn, _) = listener.accept()?;
/// let mut buf = String::new();
/// conn.read_to_string(&mut buf)?;
/// assert_eq!(buf, "hi");
/// client.join().unwrap()?;
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: unet::UnixListener,
}

impl UnixListener {
    fn from_nonblocking(sock: unet::UnixListener) -> UnixListener {
        UnixListener { source: Source::new(sock.as_raw_fd()), sock }
    }

    fn listening(sock: unet::UnixListener) -> io::Result<UnixListener> {
        sys::relisten(&sock)?;
        sock.set_nonblocking(true)?;
        Ok(UnixListener::from_nonblocking(sock))
    }

    /// Binds to the path `path` (which must not exist) and listens.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::listening(unet::UnixListener::bind(path)?)
    }

    /// Binds to `addr` (a path, or on Linux an abstract name) and listens.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::listening(unet::UnixListener::bind_addr(addr)?)
    }

    /// Waits for a connection (parking only this greenlet).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        self.source.do_io(Interest::Read, || {
            let (s, addr) = self.sock.accept()?;
            s.set_nonblocking(true)?;
            Ok((UnixStream::from_nonblocking(s), addr))
        })
    }

    /// An iterator over incoming connections; it never returns `None`.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }
}

socket_common!(UnixListener);
fd_conversions!(UnixListener, unet::UnixListener, "a listening Unix socket");

/// Iterator over a [`UnixListener`]'s connections (std's
/// `std::os::unix::net::Incoming`).
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// A Unix stream socket whose reads and writes park only the calling
/// greenlet (std's [`unet::UnixStream`] on green threads).
///
/// ```
/// use libev::green::{self, net::UnixStream};
/// use std::io::{Read, Write};
///
/// let (a, mut b) = UnixStream::pair()?;
/// let writer = green::spawn(move || {
///     let mut a = a;
///     a.write_all(&[7; 100_000]) // more than the socket buffer holds
/// });
/// let mut got = Vec::new();
/// b.read_to_end(&mut got)?;
/// assert_eq!(got.len(), 100_000);
/// writer.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: unet::UnixStream,
}

impl UnixStream {
    fn from_nonblocking(sock: unet::UnixStream) -> UnixStream {
        UnixStream { source: Source::new(sock.as_raw_fd()), sock }
    }

    /// Connects to the socket at `path`, parking only the calling
    /// greenlet.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_raw(&sys::unix_addr(path.as_ref().as_os_str().as_bytes(), false)?)
    }

    /// Connects to `addr`: a path or, on Linux, an abstract name.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        if let Some(path) = addr.as_pathname() {
            return UnixStream::connect(path);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            #[cfg(target_os = "android")]
            use std::os::android::net::SocketAddrExt;
            #[cfg(target_os = "linux")]
            use std::os::linux::net::SocketAddrExt;
            if let Some(name) = addr.as_abstract_name() {
                return UnixStream::connect_raw(&sys::unix_addr(name, true)?);
            }
        }
        Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot connect to an unnamed Unix socket address"))
    }

    fn connect_raw(addr: &socket2::SockAddr) -> io::Result<UnixStream> {
        // A full backlog makes a non-blocking connect fail with EAGAIN,
        // and no readiness event says when there is room again: retry
        // after a pause, doubling up to 50 ms.
        let mut pause = Duration::from_millis(1);
        loop {
            let (sock, in_progress) = match sys::unix_connect(addr)? {
                sys::UnixConnect::Done(sock) => (sock, false),
                sys::UnixConnect::InProgress(sock) => (sock, true),
                sys::UnixConnect::BacklogFull => {
                    if !crate::green::hub::can_switch() {
                        // No waiting here (a destructor during an unwind).
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                    crate::green::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                    continue;
                }
            };
            let stream = UnixStream::from_nonblocking(unet::UnixStream::from(sock));
            if in_progress {
                stream.source.wait(Interest::Write, None)?;
                if let Some(e) = stream.sock.take_error()? {
                    return Err(e);
                }
            }
            return Ok(stream);
        }
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unet::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixStream::from_nonblocking(a), UnixStream::from_nonblocking(b)))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Shuts down the read, write or both halves, waking the greenlets
    /// waiting in those directions on this handle or its clones (they see
    /// end of file or `BrokenPipe`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)?;
        self.source.wake_shut(how);
        Ok(())
    }
}

stream_io!(UnixStream);

socket_common!(UnixStream);
socket_timeouts!(UnixStream);
fd_conversions!(UnixStream, unet::UnixStream, "a connected Unix stream socket");

/// A Unix datagram socket whose sends and receives park only the calling
/// greenlet (std's [`unet::UnixDatagram`] on green threads).
///
/// ```
/// use libev::green::{self, net::UnixDatagram};
///
/// let (a, b) = UnixDatagram::pair()?;
/// let echo = green::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 16];
///     let n = b.recv(&mut buf)?;
///     b.send(&buf[..n])?;
///     Ok(())
/// });
/// a.send(b"ping")?;
/// let mut buf = [0; 16];
/// let n = a.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"ping");
/// echo.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: unet::UnixDatagram,
}

impl UnixDatagram {
    fn from_nonblocking(sock: unet::UnixDatagram) -> UnixDatagram {
        UnixDatagram { source: Source::new(sock.as_raw_fd()), sock }
    }

    fn nonblocking(sock: unet::UnixDatagram) -> io::Result<UnixDatagram> {
        sock.set_nonblocking(true)?;
        Ok(UnixDatagram::from_nonblocking(sock))
    }

    /// A socket bound to the path `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(unet::UnixDatagram::bind(path)?)
    }

    /// A socket bound to `addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(unet::UnixDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::nonblocking(unet::UnixDatagram::unbound()?)
    }

    /// A connected pair of sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = unet::UnixDatagram::pair()?;
        Ok((UnixDatagram::nonblocking(a)?, UnixDatagram::nonblocking(b)?))
    }

    /// Sets the default peer to the socket at `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.sock.connect(path)
    }

    /// Sets the default peer to `addr`.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock.connect_addr(addr)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Receives one datagram and its sender, waiting (parked) for it.
    /// Once reading is shut down (through any handle) it returns an empty
    /// datagram from an unnamed address instead of waiting, as std's
    /// blocking `recv_from` does.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Interest::Read, || match self.sock.recv_from(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.source.read_shut() => {
                Ok((0, unet::UnixDatagram::unbound()?.local_addr()?))
            }
            r => r,
        })
    }

    /// Receives one datagram, waiting (parked) for it. Once reading is
    /// shut down (through any handle) it returns 0 instead of waiting, as
    /// std's blocking `recv` does.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Read, || match self.sock.recv(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.source.read_shut() => Ok(0),
            r => r,
        })
    }

    /// Sends `buf` to the socket at `path`, waiting (parked) while the
    /// receiver's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        self.source.do_io(Interest::Write, || self.sock.send_to(buf, path))
    }

    /// Sends `buf` to `addr`.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.source.do_io(Interest::Write, || self.sock.send_to_addr(buf, addr))
    }

    /// Sends `buf` to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Write, || self.sock.send(buf))
    }

    /// Shuts down the read, write or both halves, waking the greenlets
    /// waiting in those directions on this handle or its clones.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)?;
        self.source.wake_shut(how);
        Ok(())
    }
}

socket_common!(UnixDatagram);
socket_timeouts!(UnixDatagram);
fd_conversions!(UnixDatagram, unet::UnixDatagram, "a Unix datagram socket");
