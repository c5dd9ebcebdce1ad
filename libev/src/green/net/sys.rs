//! The few socket calls std has no non-blocking form of: creating a
//! socket in non-blocking mode, a connect that does not wait, an accept
//! that returns a non-blocking socket, and a deeper listen backlog.
//! Everything else goes through the std socket each green type wraps.
//!
//! They go through [`socket2`] rather than hand-written `libc` calls
//! (issue 23): its `SockAddr` does the address conversions (IPv4, IPv6,
//! Unix paths and abstract names) that this module used to write out, in
//! 20 `unsafe` blocks and 3 `unsafe fn`s; it now has none. The move
//! also fixed two differences from std: an empty Unix path connected to
//! the abstract name "" instead of failing with `InvalidInput`, and the
//! longest abstract name std accepts (107 bytes on Linux) was refused.
//!
//! Speed, measured before and after the move (decision: nothing stays
//! hand-written).
//! Connect, bind, socket options and address conversion are cold; the
//! hot path is the accept of the hello workload. It is the same single
//! system call as before, `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`
//! (not socket2's own [`Socket::accept`], which sets close-on-exec only
//! and would cost an `ioctl` per connection for non-blocking mode), and
//! the system calls per connection are the same (`strace -c` of the green
//! hello server: `accept4`, `sendto`, `close`). What socket2 adds is a
//! 128-byte `sockaddr_storage` to zero and read instead of a 28-byte
//! union: callgrind counts 161 instructions per accept call against 65
//! before, about 30 ns, 0.1% of the hello server's 40 µs of CPU per
//! connection. `net-bench --no-gevent echo hello`, the hand-written and
//! the socket2 build in turns, 7 runs each plus 8 more of `hello` alone
//! (2 shared cores, load average 4.5 to 5.9), server CPU per operation of
//! the green server, medians: echo 9,618 against 9,641 ns per round trip
//! (green/C 0.957 against 0.963); hello 41,039 against 42,082 ns per
//! connection over the 15 runs (green/C 1.103 against 1.106), with single
//! runs spread from 29.5 to 48.9 µs: no difference above the noise.

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use std::ffi::c_int;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;

/// The listen backlog of green listeners (tokio's choice; the kernel caps
/// it at `net.core.somaxconn`). std's 128 overflows under an accept storm
/// long before the server is the bottleneck.
const BACKLOG: c_int = 1024;

/// Where `socket` and `accept4` take `SOCK_NONBLOCK` (and socket2 adds
/// `SOCK_CLOEXEC`): one system call makes a socket of the right kind.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos"
))]
mod atomic {
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::io;

    pub(super) fn socket(domain: Domain, ty: Type) -> io::Result<Socket> {
        Socket::new(domain, ty.nonblocking(), None)
    }

    pub(super) fn accept(listener: &Socket) -> io::Result<(Socket, SockAddr)> {
        listener.accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
    }
}

/// See the other `atomic`: here non-blocking mode is set after the call
/// (socket2 sets close-on-exec).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos"
)))]
mod atomic {
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::io;

    pub(super) fn socket(domain: Domain, ty: Type) -> io::Result<Socket> {
        let s = Socket::new(domain, ty, None)?;
        s.set_nonblocking(true)?;
        Ok(s)
    }

    pub(super) fn accept(listener: &Socket) -> io::Result<(Socket, SockAddr)> {
        let (s, addr) = listener.accept()?;
        s.set_nonblocking(true)?;
        Ok((s, addr))
    }
}

/// Creates a non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: Domain, ty: Type) -> io::Result<Socket> {
    atomic::socket(domain, ty)
}

/// Starts connecting the non-blocking socket `sock` to `addr`. `Ok(true)`:
/// in progress (wait for writability, then read `SO_ERROR`); `Ok(false)`:
/// connected.
fn start_connect(sock: &Socket, addr: &SockAddr) -> io::Result<bool> {
    match sock.connect(addr) {
        Ok(()) => Ok(false),
        // A signal during a non-blocking connect leaves it in progress.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINPROGRESS | libc::EINTR)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// A new non-blocking TCP socket, connecting (or connected) to `addr`:
/// `(socket, in_progress)`.
pub(crate) fn tcp_connect(addr: &SocketAddr) -> io::Result<(Socket, bool)> {
    let sock = socket(Domain::for_address(*addr), Type::STREAM)?;
    let pending = start_connect(&sock, &SockAddr::from(*addr))?;
    Ok((sock, pending))
}

/// Accepts a connection on the listening TCP socket `listener` as a
/// non-blocking, close-on-exec socket, with the peer's address.
pub(crate) fn accept(listener: &impl AsFd) -> io::Result<(Socket, SocketAddr)> {
    let (sock, addr) = atomic::accept(&SockRef::from(listener))?;
    let addr = addr.as_socket().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "accept returned an address that is not IPv4 or IPv6")
    })?;
    Ok((sock, addr))
}

/// Sets the listen backlog of a listening socket to [`BACKLOG`] (calling
/// `listen` again only changes the backlog).
pub(crate) fn relisten(listener: &impl AsFd) -> io::Result<()> {
    SockRef::from(listener).listen(BACKLOG)
}

/// A Unix socket address: a path, or (with `abstract_name`) a name in
/// Linux's abstract namespace. The checks and errors are std's.
pub(crate) fn unix_addr(name: &[u8], abstract_name: bool) -> io::Result<SockAddr> {
    use std::os::unix::ffi::OsStrExt;
    if abstract_name {
        // socket2 takes a name as a "path" that starts with a NUL.
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
    }
    if name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "paths must not contain interior null bytes",
        ));
    }
    SockAddr::unix(std::ffi::OsStr::from_bytes(name))
}

/// What [`unix_connect`] did.
pub(crate) enum UnixConnect {
    /// Connected.
    Done(Socket),
    /// Connecting: wait for writability, then read `SO_ERROR`.
    InProgress(Socket),
    /// The listener's backlog is full (`EAGAIN`): a non-blocking connect
    /// cannot wait for room.
    BacklogFull,
}

/// A new non-blocking Unix stream socket connecting to `addr`.
pub(crate) fn unix_connect(addr: &SockAddr) -> io::Result<UnixConnect> {
    let sock = socket(Domain::UNIX, Type::STREAM)?;
    match start_connect(&sock, addr) {
        Ok(false) => Ok(UnixConnect::Done(sock)),
        Ok(true) => Ok(UnixConnect::InProgress(sock)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(UnixConnect::BacklogFull),
        Err(e) => Err(e),
    }
}
