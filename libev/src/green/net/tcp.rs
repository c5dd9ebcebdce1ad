//! [`TcpListener`] and [`TcpStream`].

use super::{Interest, Source, each_addr, resolve, sys};
use std::io;
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// A TCP server socket whose [`accept`](TcpListener::accept) parks only
/// the calling greenlet (std's [`std::net::TcpListener`] on green threads).
///
/// ```
/// use libev::green::{self, net::{TcpListener, TcpStream}};
/// use std::io::{Read, Write};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let clients: Vec<_> = (0..3u8)
///     .map(|i| green::spawn(move || TcpStream::connect(addr)?.write_all(&[i])))
///     .collect();
/// let mut seen = Vec::new();
/// for stream in listener.incoming().take(3) {
///     let mut byte = [0];
///     stream?.read_exact(&mut byte)?;
///     seen.push(byte[0]);
/// }
/// seen.sort();
/// assert_eq!(seen, [0, 1, 2]);
/// for c in green::joinall(clients) {
///     c.unwrap()?;
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: net::TcpListener,
}

impl TcpListener {
    /// Binds to `addr` and listens, like std's
    /// [`bind`](std::net::TcpListener::bind): each address `addr` resolves
    /// to is tried in turn. Names are resolved on the blocking pool (IP
    /// literals and addresses are not: see the [module docs](super)).
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpListener> {
        let sock = net::TcpListener::bind(&resolve(addr)?[..])?;
        sys::relisten(&sock)?;
        sock.set_nonblocking(true)?;
        Ok(TcpListener::from_nonblocking(sock))
    }

    fn from_nonblocking(sock: net::TcpListener) -> TcpListener {
        TcpListener { source: Source::new(sock.as_raw_fd()), sock }
    }

    /// Waits for a connection (parking only this greenlet) and returns it
    /// with the peer's address. The new stream has default settings (no
    /// timeouts, blocking from the greenlet's point of view).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.source.do_io(Interest::Read, || self.accept_now())
    }

    /// One accept attempt, without waiting.
    pub(crate) fn accept_now(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (sock, peer) = sys::accept(&self.sock)?;
        Ok((TcpStream::from_nonblocking(net::TcpStream::from(sock)), peer))
    }

    /// The listener's waiting side (for the server's accept loop).
    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// An iterator over incoming connections, like std's
    /// [`incoming`](std::net::TcpListener::incoming): it never returns
    /// `None`.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }
}

/// Iterator over a [`TcpListener`]'s connections, from
/// [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

socket_common!(TcpListener);
fd_conversions!(TcpListener, net::TcpListener, "a listening socket");

/// A TCP connection whose reads and writes park only the calling greenlet
/// (std's [`std::net::TcpStream`] on green threads).
///
/// `Read` and `Write` are implemented for `&TcpStream` too, so one
/// greenlet can read while another writes:
///
/// ```
/// use libev::green::{self, net::{TcpListener, TcpStream}};
/// use std::io::{Read, Write};
/// use std::rc::Rc;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let client = TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
///
/// let server = Rc::new(server);
/// let writer = {
///     let server = server.clone();
///     green::spawn(move || (&*server).write_all(b"ping"))
/// };
/// let mut buf = [0; 4];
/// (&client).read_exact(&mut buf)?;
/// assert_eq!(&buf, b"ping");
/// writer.join().unwrap()?;
///
/// // Timeouts end a call with TimedOut, as std's do.
/// client.set_read_timeout(Some(std::time::Duration::from_millis(5)))?;
/// let err = (&client).read(&mut buf).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: net::TcpStream,
}

impl TcpStream {
    fn from_nonblocking(sock: net::TcpStream) -> TcpStream {
        TcpStream { source: Source::new(sock.as_raw_fd()), sock }
    }

    /// Connects to `addr`, trying each address it resolves to in turn, as
    /// std's [`connect`](std::net::TcpStream::connect) does; parks only
    /// the calling greenlet, both for name resolution (on the blocking
    /// pool) and for the handshake.
    pub fn connect<A: ToSocketAddrs + Send>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| TcpStream::connect_inner(a, None))
    }

    /// Connects to `addr`, giving up with
    /// [`TimedOut`](io::ErrorKind::TimedOut) after `timeout` (a zero
    /// timeout is an error, as in std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::connect_inner(addr, Some(timeout))
    }

    /// The non-blocking connect: start it, wait for writability, read the
    /// outcome from `SO_ERROR`.
    fn connect_inner(addr: &SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let (sock, in_progress) = sys::tcp_connect(addr)?;
        let stream = TcpStream::from_nonblocking(net::TcpStream::from(sock));
        if in_progress {
            if !stream.source.wait(Interest::Write, timeout)? {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if let Some(e) = stream.sock.take_error()? {
                return Err(e);
            }
        }
        Ok(stream)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Shuts down the read, write or both halves, and wakes the greenlets
    /// waiting in those directions on this handle or its clones: they see
    /// what the OS reports now (end of file for reads, `BrokenPipe` for
    /// writes).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)?;
        self.source.wake_shut(how);
        Ok(())
    }

    /// Reads without consuming, waiting (parked) until data arrives.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Read, || self.sock.peek(buf))
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }
}

stream_io!(TcpStream);

socket_common!(TcpStream);
socket_timeouts!(TcpStream);
fd_conversions!(TcpStream, net::TcpStream, "a connected socket");
