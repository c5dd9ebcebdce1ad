//! [`UdpSocket`].

use super::{Interest, Source, resolve, resolve_first};
use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

/// A UDP socket whose sends and receives park only the calling greenlet
/// (std's [`std::net::UdpSocket`] on green threads).
///
/// ```
/// use libev::green::{self, net::UdpSocket};
///
/// let server = UdpSocket::bind("127.0.0.1:0")?;
/// let addr = server.local_addr()?;
/// let echo = green::spawn(move || -> std::io::Result<()> {
///     let mut buf = [0; 64];
///     let (n, peer) = server.recv_from(&mut buf)?;
///     server.send_to(&buf[..n], peer)?;
///     Ok(())
/// });
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.connect(addr)?;
/// client.send(b"ping")?;
/// let mut buf = [0; 64];
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"ping");
/// echo.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    // Declared first: the watchers go before the fd closes.
    source: Source,
    sock: net::UdpSocket,
}

impl UdpSocket {
    fn from_nonblocking(sock: net::UdpSocket) -> UdpSocket {
        UdpSocket { source: Source::new(sock.as_raw_fd()), sock }
    }

    /// Binds to `addr`, trying each address it resolves to in turn, as
    /// std's [`bind`](std::net::UdpSocket::bind) does.
    pub fn bind<A: ToSocketAddrs + Send>(addr: A) -> io::Result<UdpSocket> {
        let sock = net::UdpSocket::bind(&resolve(addr)?[..])?;
        sock.set_nonblocking(true)?;
        Ok(UdpSocket::from_nonblocking(sock))
    }

    /// Receives one datagram, waiting (parked) for it; returns its length
    /// and sender. A datagram longer than `buf` is truncated.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Interest::Read, || self.sock.recv_from(buf))
    }

    /// One receive attempt, without waiting.
    pub(crate) fn recv_from_now(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.recv_from(buf)
    }

    /// The socket's waiting side (for the server's receive loop).
    pub(crate) fn source(&self) -> &Source {
        &self.source
    }

    /// As [`recv_from`](UdpSocket::recv_from), leaving the datagram queued.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Interest::Read, || self.sock.peek_from(buf))
    }

    /// Sends `buf` to the first address `addr` resolves to. Names are
    /// resolved on the blocking pool; an address ([`SocketAddr`] and the
    /// like) or an IP literal (`"127.0.0.1:53"`) is used as it is.
    pub fn send_to<A: ToSocketAddrs + Send>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let to = resolve_first(addr)?;
        self.source.do_io(Interest::Write, || self.sock.send_to(buf, to))
    }

    /// The address of the peer set with [`connect`](UdpSocket::connect).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.sock.set_broadcast(broadcast)
    }

    /// Reads `SO_BROADCAST`.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.sock.broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.sock.set_multicast_loop_v4(on)
    }

    /// Reads `IP_MULTICAST_LOOP`.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.sock.multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_multicast_ttl_v4(ttl)
    }

    /// Reads `IP_MULTICAST_TTL`.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.sock.multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.sock.set_multicast_loop_v6(on)
    }

    /// Reads `IPV6_MULTICAST_LOOP`.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.sock.multicast_loop_v6()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.ttl()
    }

    /// Joins an IPv4 multicast group (`IP_ADD_MEMBERSHIP`).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.join_multicast_v4(multiaddr, interface)
    }

    /// Joins an IPv6 multicast group (`IPV6_ADD_MEMBERSHIP`).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.sock.leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.sock.leave_multicast_v6(multiaddr, interface)
    }

    /// Sets the default peer for [`send`](UdpSocket::send) and
    /// [`recv`](UdpSocket::recv), and filters received datagrams to it;
    /// the first address `addr` resolves to that works is used, as in std.
    pub fn connect<A: ToSocketAddrs + Send>(&self, addr: A) -> io::Result<()> {
        let addrs = resolve(addr)?;
        self.sock.connect(&addrs[..])
    }

    /// Sends `buf` to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Write, || self.sock.send(buf))
    }

    /// Receives one datagram from the connected peer, waiting (parked).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Read, || self.sock.recv(buf))
    }

    /// As [`recv`](UdpSocket::recv), leaving the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Interest::Read, || self.sock.peek(buf))
    }
}

socket_common!(UdpSocket);
socket_timeouts!(UdpSocket);
fd_conversions!(UdpSocket, net::UdpSocket, "a UDP socket");
