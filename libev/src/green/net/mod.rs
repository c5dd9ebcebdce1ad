//! Green sockets: `std::net` and `std::os::unix::net` for greenlets.
//!
//! [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`],
//! [`UnixStream`] and [`UnixDatagram`] have std's methods, with std's
//! names, arguments and results, so swapping the `use` line is all it
//! takes to move blocking code onto green threads. An operation that
//! would block parks only the calling greenlet; the others keep running.
//! They implement [`Read`](std::io::Read) and [`Write`](std::io::Write)
//! (for `&T` too), so any library written against those traits runs on
//! green threads unchanged: this is this crate's form of gevent's monkey
//! patching.
//!
//! ```
//! use libev::green::{self, net::{TcpListener, TcpStream}};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let server = green::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _peer) = listener.accept()?;
//!     let mut buf = [0; 5];
//!     conn.read_exact(&mut buf)?;
//!     conn.write_all(&buf)
//! });
//! let mut client = TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! let mut echo = [0; 5];
//! client.read_exact(&mut echo)?;
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How waiting works
//!
//! Every socket is in non-blocking mode. Each operation is tried at once;
//! only when the OS says `WouldBlock` does the greenlet wait, on an io
//! watcher of its hub's loop, and then it tries again. So waits take part
//! in [`with_timeout`](super::with_timeout), [`Timeout`](super::Timeout)
//! and [`kill`](super::Greenlet::kill): the greenlet unwinds from the wait,
//! and the socket stays usable.
//!
//! # Where green sockets differ from std's
//!
//! - **One waiter per direction.** Two greenlets waiting to read from the
//!   same socket (say through an `Rc<TcpStream>`), or two waiting to
//!   write, would steal each other's wake-ups; the second gets an
//!   [`io::Error`] of kind
//!   [`ResourceBusy`](std::io::ErrorKind::ResourceBusy) instead (gevent's
//!   ConcurrentObjectUseError). One reader and one writer at a time are
//!   fine.
//! - **Shutdown wakes waiters.** `shutdown` wakes the greenlets waiting on
//!   the directions it shuts, on this handle and on every
//!   [`try_clone`](TcpStream::try_clone) of it, and they see what the OS
//!   reports (end of file, `BrokenPipe`), where std relies on the OS alone
//!   (which never reports a full `AF_UNIX` stream writable after
//!   `SHUT_WR`).
//! - **Timeouts** (`set_read_timeout`, `set_write_timeout`) bound a whole
//!   call and end it with [`TimedOut`](std::io::ErrorKind::TimedOut) (std
//!   on Unix reports `WouldBlock`). They are kept per handle: a
//!   `try_clone` copies them, where std's clones share the socket's.
//! - **`set_nonblocking(true)`** makes operations return `WouldBlock`
//!   instead of parking the greenlet; it is a flag of the handle (the fd is
//!   always non-blocking underneath).
//! - **Name resolution** (`connect("example.com:80")`, any
//!   [`ToSocketAddrs`] input that may need DNS) runs on the
//!   [blocking thread pool](super::spawn_blocking), parking only the
//!   calling greenlet, so the input must be `Send`. Inputs that already
//!   are addresses ([`SocketAddr`], `(IpAddr, u16)`, ...) are used in
//!   place, and IP literals given as text (`"127.0.0.1:80"`,
//!   `("::1", 80)`, as `&str` or `String`) are parsed in place.
//! - **Threads.** A green socket belongs to the thread that made it and is
//!   not `Send`. To hand one to another thread, convert it to the std type
//!   (`std::net::TcpStream::from(stream)`), send that, and convert it back
//!   there. Conversions from std set the fd non-blocking; conversions to
//!   std leave it non-blocking (other handles of the socket may still be
//!   green): call std's `set_nonblocking(false)` if the std side should
//!   block.
//! - **Listen backlog.** Green listeners listen with a backlog of 1024
//!   (std uses 128; the kernel caps it at `net.core.somaxconn`).
//!
//! Green sockets must not be used inside raw libev watcher callbacks (on
//! the hub), where no greenlet can wait: that panics, as every blocking
//! green call there does.

/// Makes a socket non-blocking for a green handle.
///
/// # Panics
///
/// If the OS refuses, which it does only for an fd that is not open.
fn make_nonblocking(result: io::Result<()>) {
    if let Err(e) = result {
        panic!("libev::green::net: cannot make the socket non-blocking: {e}");
    }
}

/// Implements the fd traits and the conversions to and from std and
/// `OwnedFd` for a green socket type `$green` wrapping `$std`.
macro_rules! fd_conversions {
    ($green:ident, $std:ty, $what:literal) => {
        impl std::fmt::Debug for $green {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.sock, f)
            }
        }

        /// Sets the fd non-blocking.
        ///
        /// # Panics
        ///
        /// If the OS refuses, which it does only for an fd that is not open.
        impl From<$std> for $green {
            fn from(sock: $std) -> $green {
                $crate::green::net::make_nonblocking(sock.set_nonblocking(true));
                $green::from_nonblocking(sock)
            }
        }

        /// The fd stays non-blocking (see the [module docs](super)).
        impl From<$green> for $std {
            fn from(s: $green) -> $std {
                let $green { source, sock } = s;
                drop(source);
                sock
            }
        }

        impl From<std::os::fd::OwnedFd> for $green {
            #[doc = concat!("Takes ", $what, "; sets it non-blocking.")]
            fn from(fd: std::os::fd::OwnedFd) -> $green {
                $green::from(<$std>::from(fd))
            }
        }

        impl From<$green> for std::os::fd::OwnedFd {
            fn from(s: $green) -> std::os::fd::OwnedFd {
                <$std>::from(s).into()
            }
        }

        impl std::os::fd::AsFd for $green {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.sock)
            }
        }

        impl std::os::fd::AsRawFd for $green {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.sock)
            }
        }

        impl std::os::fd::IntoRawFd for $green {
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(<$std>::from(self))
            }
        }

        impl std::os::fd::FromRawFd for $green {
            #[doc = concat!("Takes ownership of ", $what, "; sets it non-blocking.")]
            ///
            /// # Safety
            ///
            /// `fd` must be an open socket that nothing else owns (as for
            /// std's `from_raw_fd`).
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $green {
                // SAFETY: forwarded from the caller.
                $green::from(unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) })
            }
        }
    };
}

/// The methods every green socket type shares: `try_clone`, `take_error`
/// and `set_nonblocking`.
macro_rules! socket_common {
    ($t:ident) => {
        impl $t {
            /// Another handle to the same socket (the fd is duplicated). It
            /// starts with this handle's timeouts and non-blocking flag and
            /// keeps its own afterwards (see the [module
            /// docs](super#where-green-sockets-differ-from-stds)).
            pub fn try_clone(&self) -> std::io::Result<$t> {
                let sock = self.sock.try_clone()?;
                let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
                Ok($t { source: self.source.clone_for(fd), sock })
            }

            /// Reads and clears the socket's pending error (`SO_ERROR`).
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.sock.take_error()
            }

            /// With `true`, calls that cannot proceed at once (accepts,
            /// reads, writes) return
            /// [`WouldBlock`](std::io::ErrorKind::WouldBlock) instead of
            /// parking the greenlet; the fd itself is non-blocking either
            /// way.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.source.set_nonblocking(nonblocking);
                Ok(())
            }
        }
    };
}

/// std's read and write timeouts for a green socket type that reads and
/// writes (all but the listeners).
macro_rules! socket_timeouts {
    ($t:ident) => {
        impl $t {
            /// Bounds every read (receive, `peek`) to `timeout`, after which
            /// it fails with [`TimedOut`](std::io::ErrorKind::TimedOut);
            /// `None` waits for ever. A zero duration is refused with
            /// [`InvalidInput`](std::io::ErrorKind::InvalidInput), as in std.
            pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_timeout($crate::green::net::Interest::Read, timeout)
            }

            /// Bounds every write (send) as
            /// [`set_read_timeout`](Self::set_read_timeout) bounds reads.
            pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_timeout($crate::green::net::Interest::Write, timeout)
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.timeout($crate::green::net::Interest::Read))
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.timeout($crate::green::net::Interest::Write))
            }
        }
    };
}

/// `Read` and `Write` for a green stream socket type and for a shared
/// reference to it: every call goes through its [`Source`] (stream reads
/// through [`Source::read_stream`]).
macro_rules! stream_io {
    ($t:ident) => {
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.source.read_stream(buf.len(), || std::io::Read::read(&mut &self.sock, buf))
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                let len = bufs.iter().map(|b| b.len()).sum();
                self.source.read_stream(len, || std::io::Read::read_vectored(&mut &self.sock, bufs))
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.source.do_io($crate::green::net::Interest::Write, || {
                    std::io::Write::write(&mut &self.sock, buf)
                })
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.source.do_io($crate::green::net::Interest::Write, || {
                    std::io::Write::write_vectored(&mut &self.sock, bufs)
                })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

mod source;
pub(crate) mod sys;
mod tcp;
mod udp;
mod unix;

pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

/// Re-exported from std, for `use libev::green::net::*` in place of
/// `use std::net::*`.
pub use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs,
};

pub(crate) use source::{Interest, Source};

use std::io;

/// Whether `A` is one of std's address types, whose `to_socket_addrs`
/// never looks anything up.
fn is_address<A: ToSocketAddrs>() -> bool {
    let id = typeid::of::<A>();
    [
        typeid::of::<SocketAddr>(),
        typeid::of::<&SocketAddr>(),
        typeid::of::<SocketAddrV4>(),
        typeid::of::<SocketAddrV6>(),
        typeid::of::<(IpAddr, u16)>(),
        typeid::of::<(Ipv4Addr, u16)>(),
        typeid::of::<(Ipv6Addr, u16)>(),
        typeid::of::<&[SocketAddr]>(),
    ]
    .contains(&id)
}

/// The address an IP literal given as text stands for (`"127.0.0.1:80"`,
/// `("::1", 80)`, as `&str`, `String` or, alone, `&String`), parsed as
/// std's `to_socket_addrs` parses it before it falls back to a lookup.
/// `None` for a host name, or a type not known here (which then costs a
/// trip to the blocking pool, with the same result).
fn literal<A: ToSocketAddrs>(addr: &A) -> Option<SocketAddr> {
    if let Some(text) = as_text(addr) {
        return text.parse().ok();
    }
    let (host, port) = as_host_port(addr)?;
    host.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port))
}

/// The text of an address given as `&str`, `String` or `&String`.
fn as_text<A>(addr: &A) -> Option<&str> {
    let id = typeid::of::<A>();
    if id == typeid::of::<&str>() {
        // SAFETY: `A` is `&'a str` for some 'a (typeid compares types with
        // their lifetimes erased), and 'a outlives the borrow `addr`, which
        // the returned `&str` is tied to.
        Some(unsafe { *(addr as *const A).cast::<&str>() })
    } else if id == typeid::of::<String>() {
        // SAFETY: `A` is `String`, a type without lifetimes.
        Some(unsafe { &*(addr as *const A).cast::<String>() })
    } else if id == typeid::of::<&String>() {
        // SAFETY: as for `&str`: `A` is `&'a String`, 'a outliving `addr`.
        Some(unsafe { *(addr as *const A).cast::<&String>() })
    } else {
        None
    }
}

/// The host and port of an address given as `(&str, u16)` or
/// `(String, u16)`.
fn as_host_port<A>(addr: &A) -> Option<(&str, u16)> {
    let id = typeid::of::<A>();
    if id == typeid::of::<(&str, u16)>() {
        // SAFETY: `A` is `(&'a str, u16)` for some 'a that outlives the
        // borrow `addr`, which the returned `&str` is tied to.
        let (host, port) = unsafe { *(addr as *const A).cast::<(&str, u16)>() };
        Some((host, port))
    } else if id == typeid::of::<(String, u16)>() {
        // SAFETY: `A` is `(String, u16)`, a type without lifetimes.
        let (host, port) = unsafe { &*(addr as *const A).cast::<(String, u16)>() };
        Some((host, *port))
    } else {
        None
    }
}

/// Every address `addr` stands for, looked up off the hub when that may
/// need the network.
pub(crate) fn resolve<A: ToSocketAddrs + Send>(addr: A) -> io::Result<Vec<SocketAddr>> {
    if is_address::<A>() {
        return addr.to_socket_addrs().map(Iterator::collect);
    }
    if let Some(a) = literal(&addr) {
        return Ok(vec![a]);
    }
    super::blocking::spawn_blocking_scoped("name resolution", move || {
        addr.to_socket_addrs().map(Iterator::collect)
    })
}

/// The first address `addr` stands for (what std's `send_to` uses),
/// without allocating unless a lookup is needed.
pub(crate) fn resolve_first<A: ToSocketAddrs + Send>(addr: A) -> io::Result<SocketAddr> {
    let first = if is_address::<A>() {
        addr.to_socket_addrs()?.next()
    } else if let Some(a) = literal(&addr) {
        Some(a)
    } else {
        super::blocking::spawn_blocking_scoped("name resolution", move || {
            addr.to_socket_addrs().map(|mut a| a.next())
        })?
    };
    first.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

/// Runs `f` on each address `addr` resolves to until one succeeds, like
/// std's `connect` and `bind`; the last error otherwise.
pub(crate) fn each_addr<A: ToSocketAddrs + Send, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in resolve(addr)? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ip_literals_need_no_lookup() {
        assert!(is_address::<SocketAddr>());
        assert!(is_address::<&SocketAddr>());
        assert!(is_address::<SocketAddrV4>());
        assert!(is_address::<(IpAddr, u16)>());
        assert!(is_address::<&[SocketAddr]>());
        assert!(!is_address::<&str>());
        assert!(!is_address::<String>());
        // Text: `&str`, `String` and `&String`, alone or with a port.
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(literal(&"127.0.0.1:80"), Some(v4));
        assert_eq!(literal(&String::from("[::1]:80")), Some(v6));
        assert_eq!(literal(&&String::from("[::1]:80")), Some(v6));
        assert_eq!(literal(&("::1", 80)), Some(v6));
        assert_eq!(literal(&(String::from("127.0.0.1"), 80)), Some(v4));
        // Names, and types not listed, go to the blocking pool.
        assert_eq!(literal(&"localhost:80"), None);
        assert_eq!(literal(&String::from("localhost:80")), None);
        assert_eq!(literal(&("localhost", 80)), None);
        assert_eq!(literal(&"no port"), None);
        assert_eq!(literal(&&"127.0.0.1:80"), None);
        // A literal needs no lookup wherever its text came from.
        let owned = String::from("127.0.0.1:80");
        let borrowed: &str = &owned;
        assert_eq!(literal(&borrowed), Some(v4));
    }

    #[test]
    fn resolution_gives_every_address_or_an_error() {
        let a: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(resolve(a).unwrap(), [a]);
        assert_eq!(resolve("127.0.0.1:7").unwrap(), [a]);
        assert_eq!(resolve_first([a, a].as_slice()).unwrap(), a);
        let none: &[SocketAddr] = &[];
        assert_eq!(resolve_first(none).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        let err = each_addr(none, |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // The last address's error is the one reported.
        let mut tried = Vec::new();
        let err = each_addr([a, a].as_slice(), |x| -> io::Result<()> {
            tried.push(*x);
            Err(io::Error::other(format!("attempt {}", tried.len())))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "attempt 2");
    }
}
