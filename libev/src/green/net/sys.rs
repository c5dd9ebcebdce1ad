//! The few socket calls std has no non-blocking form of: creating a
//! socket in non-blocking mode, a connect that does not wait, an accept
//! that returns a non-blocking socket, and a deeper listen backlog.
//! Everything else goes through the std socket each green type wraps.

use std::ffi::c_int;
use std::io;
use std::mem::{self, offset_of, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The listen backlog of green listeners (tokio's choice; the kernel caps
/// it at `net.core.somaxconn`). std's 128 overflows under an accept storm
/// long before the server is the bottleneck.
const BACKLOG: c_int = 1024;

/// Turns a `-1` return into the thread's `errno` as an `io::Error`.
fn cvt(r: c_int) -> io::Result<c_int> {
    if r == -1 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// An IPv4 or IPv6 socket address in the kernel's layout.
#[repr(C)]
union RawAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawAddr {
    /// `addr` in the kernel's layout, and its length.
    fn new(addr: &SocketAddr) -> (RawAddr, libc::socklen_t) {
        match addr {
            SocketAddr::V4(a) => {
                // SAFETY: sockaddr_in is plain old data, valid all-zero.
                let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
                #[cfg(any(
                    target_os = "macos",
                    target_os = "ios",
                    target_os = "freebsd",
                    target_os = "openbsd",
                    target_os = "netbsd",
                    target_os = "dragonfly"
                ))]
                {
                    sin.sin_len = size_of::<libc::sockaddr_in>() as u8;
                }
                (RawAddr { v4: sin }, size_of::<libc::sockaddr_in>() as libc::socklen_t)
            }
            SocketAddr::V6(a) => {
                // SAFETY: sockaddr_in6 is plain old data, valid all-zero.
                let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
                sin6.sin6_flowinfo = a.flowinfo();
                sin6.sin6_scope_id = a.scope_id();
                #[cfg(any(
                    target_os = "macos",
                    target_os = "ios",
                    target_os = "freebsd",
                    target_os = "openbsd",
                    target_os = "netbsd",
                    target_os = "dragonfly"
                ))]
                {
                    sin6.sin6_len = size_of::<libc::sockaddr_in6>() as u8;
                }
                (RawAddr { v6: sin6 }, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
            }
        }
    }

    /// An all-zero buffer for the kernel to fill.
    fn empty() -> RawAddr {
        // SAFETY: both members are plain old data, valid all-zero.
        unsafe { mem::zeroed() }
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (self as *const RawAddr).cast()
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (self as *mut RawAddr).cast()
    }

    /// The address the kernel wrote (`len` bytes).
    fn to_socket_addr(&self, len: libc::socklen_t) -> io::Result<SocketAddr> {
        // SAFETY: every member starts with the family field (after the BSD
        // length byte, which the libc layout includes), and the buffer was
        // zeroed, so reading it is defined whatever the kernel wrote.
        let family = c_int::from(unsafe { self.v4.sin_family });
        let len = len as usize;
        if family == libc::AF_INET && len >= size_of::<libc::sockaddr_in>() {
            // SAFETY: the kernel wrote a whole sockaddr_in (family and length checked).
            let sin = unsafe { self.v4 };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        } else if family == libc::AF_INET6 && len >= size_of::<libc::sockaddr_in6>() {
            // SAFETY: the kernel wrote a whole sockaddr_in6 (family and length checked).
            let sin6 = unsafe { self.v6 };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            let port = u16::from_be(sin6.sin6_port);
            Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, sin6.sin6_flowinfo, sin6.sin6_scope_id)))
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "accept returned an address that is not IPv4 or IPv6",
            ))
        }
    }
}

/// The calls that can make a socket non-blocking and close-on-exec as
/// they create it (`socket` and `accept4` flags), and the fix-up for the
/// systems where they cannot.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
))]
mod atomic {
    use std::ffi::c_int;
    use std::io;
    use std::os::fd::OwnedFd;

    /// Flags for `socket`'s type and `accept4`.
    pub(super) const FLAGS: c_int = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;

    /// `accept4` with [`FLAGS`].
    ///
    /// # Safety
    ///
    /// `addr` must be writable for `*len` bytes.
    pub(super) unsafe fn accept(fd: c_int, addr: *mut libc::sockaddr, len: *mut libc::socklen_t) -> c_int {
        // SAFETY: forwarded from the caller.
        unsafe { libc::accept4(fd, addr, len, FLAGS) }
    }

    /// Nothing to do: the flags were set atomically.
    pub(super) fn fix_up(fd: OwnedFd) -> io::Result<OwnedFd> {
        Ok(fd)
    }
}

/// See the other `atomic`: here the flags are set after the call.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
    target_os = "illumos",
    target_os = "solaris"
)))]
mod atomic {
    use super::cvt;
    use std::ffi::c_int;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd};

    pub(super) const FLAGS: c_int = 0;

    /// Plain `accept`.
    ///
    /// # Safety
    ///
    /// `addr` must be writable for `*len` bytes.
    pub(super) unsafe fn accept(fd: c_int, addr: *mut libc::sockaddr, len: *mut libc::socklen_t) -> c_int {
        // SAFETY: forwarded from the caller.
        unsafe { libc::accept(fd, addr, len) }
    }

    /// Sets close-on-exec and non-blocking mode on a new socket.
    pub(super) fn fix_up(fd: OwnedFd) -> io::Result<OwnedFd> {
        let raw = fd.as_raw_fd();
        // SAFETY: fcntl on an open fd; no pointers involved.
        unsafe {
            cvt(libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC))?;
            let flags = cvt(libc::fcntl(raw, libc::F_GETFL))?;
            cvt(libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        }
        Ok(fd)
    }
}

/// Creates a non-blocking, close-on-exec socket.
pub(crate) fn socket(domain: c_int, ty: c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = cvt(unsafe { libc::socket(domain, ty | atomic::FLAGS, 0) })?;
    // SAFETY: `fd` was just opened and is owned by nobody else.
    atomic::fix_up(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds the socket `fd` to `addr`.
pub(crate) fn bind(fd: RawFd, addr: &SocketAddr) -> io::Result<()> {
    let (raw, len) = RawAddr::new(addr);
    // SAFETY: `raw` holds a valid address of `len` bytes.
    cvt(unsafe { libc::bind(fd, raw.as_ptr(), len) }).map(drop)
}

/// Turns on the `SOL_SOCKET` option `name` of socket `fd`.
pub(crate) fn set_flag(fd: RawFd, name: c_int) -> io::Result<()> {
    let one: c_int = 1;
    // SAFETY: `one` is a valid c_int for the call's duration.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&one as *const c_int).cast(),
            size_of::<c_int>() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

/// Starts connecting the non-blocking socket `fd` to the address at
/// `addr` (`len` bytes). `Ok(true)`: in progress (wait for writability,
/// then read `SO_ERROR`); `Ok(false)`: connected.
///
/// # Safety
///
/// `addr` must point to a valid socket address of `len` bytes.
unsafe fn connect_raw(fd: RawFd, addr: *const libc::sockaddr, len: libc::socklen_t) -> io::Result<bool> {
    // SAFETY: the caller vouches for `addr` and `len`.
    if unsafe { libc::connect(fd, addr, len) } == 0 {
        return Ok(false);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // A signal during a non-blocking connect leaves it in progress.
        Some(libc::EINPROGRESS) | Some(libc::EINTR) => Ok(true),
        _ => Err(e),
    }
}

/// A new non-blocking TCP socket, connecting (or connected) to `addr`:
/// `(socket, in_progress)`.
pub(crate) fn tcp_connect(addr: &SocketAddr) -> io::Result<(OwnedFd, bool)> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = socket(domain, libc::SOCK_STREAM)?;
    let (raw, len) = RawAddr::new(addr);
    // SAFETY: `raw` holds a valid address of `len` bytes.
    let pending = unsafe { connect_raw(fd.as_raw_fd(), raw.as_ptr(), len) }?;
    Ok((fd, pending))
}

/// Accepts a connection on the listening socket `fd` as a non-blocking,
/// close-on-exec socket, with the peer's address.
pub(crate) fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let mut addr = RawAddr::empty();
    let mut len = size_of::<RawAddr>() as libc::socklen_t;
    // SAFETY: `addr` is writable for `len` bytes, its whole size.
    let new = cvt(unsafe { atomic::accept(fd, addr.as_mut_ptr(), &mut len) })?;
    // SAFETY: the kernel just opened `new` for us.
    let new = atomic::fix_up(unsafe { OwnedFd::from_raw_fd(new) })?;
    Ok((new, addr.to_socket_addr(len)?))
}

/// Sets the listen backlog of a listening socket to [`BACKLOG`] (calling
/// `listen` again only changes the backlog).
pub(crate) fn relisten(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments.
    cvt(unsafe { libc::listen(fd, BACKLOG) }).map(drop)
}

/// A Unix socket address (`sockaddr_un`) and its length: a path, or (with
/// `abstract_name`) a name in Linux's abstract namespace.
pub(crate) fn unix_addr(
    name: &[u8],
    abstract_name: bool,
) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data, valid all-zero.
    let mut sun: libc::sockaddr_un = unsafe { mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let start = usize::from(abstract_name);
    if !abstract_name && name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "paths must not contain interior null bytes",
        ));
    }
    // A path needs room for its terminating NUL; an abstract name for its
    // leading one.
    if start + name.len() >= sun.sun_path.len() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "path must be shorter than SUN_LEN"));
    }
    for (dst, &src) in sun.sun_path[start..].iter_mut().zip(name) {
        *dst = src as libc::c_char;
    }
    let base = offset_of!(libc::sockaddr_un, sun_path);
    let len = if abstract_name { base + 1 + name.len() } else { base + name.len() + 1 };
    Ok((sun, len as libc::socklen_t))
}

/// What [`unix_connect`] did.
pub(crate) enum UnixConnect {
    /// Connected.
    Done(OwnedFd),
    /// Connecting: wait for writability, then read `SO_ERROR`.
    InProgress(OwnedFd),
    /// The listener's backlog is full (`EAGAIN`): a non-blocking connect
    /// cannot wait for room.
    BacklogFull,
}

/// A new non-blocking Unix stream socket connecting to `addr`.
pub(crate) fn unix_connect(addr: &libc::sockaddr_un, len: libc::socklen_t) -> io::Result<UnixConnect> {
    if len as usize > size_of::<libc::sockaddr_un>() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "Unix socket address length too large"));
    }
    let fd = socket(libc::AF_UNIX, libc::SOCK_STREAM)?;
    let ptr = (addr as *const libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: `addr` is a valid sockaddr_un, and `len` (checked above)
    // stays within it.
    match unsafe { connect_raw(fd.as_raw_fd(), ptr, len) } {
        Ok(false) => Ok(UnixConnect::Done(fd)),
        Ok(true) => Ok(UnixConnect::InProgress(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(UnixConnect::BacklogFull),
        Err(e) => Err(e),
    }
}
