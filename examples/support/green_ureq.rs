//! `ureq` on green sockets: a connector, transport and resolver that park
//! only the calling greenlet, so one thread runs many requests at once.
//!
//! ureq lets the caller supply the connection
//! ([`Agent::with_parts`](ureq::Agent::with_parts) with a
//! [`Connector`] and a [`Resolver`]). Its [`Transport`] must be
//! `Send + Sync`, which a green `TcpStream` (tied to its thread's hub) is
//! not; so the transport holds a plain non-blocking
//! [`std::net::TcpStream`] and waits with [`green::wait_readable`] /
//! [`green::wait_writable`], which park the current greenlet on whichever
//! thread it runs. The connection itself is made with the green
//! `TcpStream::connect`. These ureq traits are outside its semver promise
//! (`ureq::unversioned`), hence this lives with the examples rather than
//! in the crate.
//!
//! Shared by `examples/http_fetch.rs` and `tests/http_client.rs`.

use libev::green;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, ShutdownHandle, Transport,
};
use ureq::{Agent, Error, config::Config, http::Uri};

/// An agent whose connections and name lookups park only the calling
/// greenlet. Share it between greenlets (it is cheap to clone) to share
/// its pool of kept-alive connections.
pub fn agent(config: Config) -> Agent {
    Agent::with_parts(config, GreenConnector, GreenResolver)
}

/// Opens connections with the green `TcpStream`.
#[derive(Debug)]
pub struct GreenConnector;

impl Connector for GreenConnector {
    type Out = GreenTransport;

    /// Starts a chain: no transport comes before it (`()`).
    fn connect(&self, details: &ConnectionDetails, _: Option<()>) -> Result<Option<GreenTransport>, Error> {
        let timeout = details.timeout;
        let deadline = deadline(timeout)?;
        let mut last = None;
        // Each address in turn, as std's `connect` does, within one
        // deadline; the first that answers wins.
        for addr in details.addrs.iter() {
            let attempt = match deadline.map(|d| d.saturating_duration_since(Instant::now())) {
                Some(Duration::ZERO) => return Err(Error::Timeout(timeout.reason)),
                Some(left) => green::net::TcpStream::connect_timeout(addr, left),
                None => green::net::TcpStream::connect(*addr),
            };
            match attempt {
                Ok(stream) => {
                    stream.set_nodelay(details.config.no_delay())?;
                    // The fd stays non-blocking.
                    let stream = Arc::new(std::net::TcpStream::from(stream));
                    let shutdown: Arc<dyn ShutdownHandle> = stream.clone();
                    (details.register_shutdown)(Arc::downgrade(&shutdown))?;
                    let buffers = LazyBuffers::new(
                        details.config.input_buffer_size(),
                        details.config.output_buffer_size(),
                    );
                    return Ok(Some(GreenTransport { stream, buffers }));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(Error::Timeout(timeout.reason)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::ErrorKind::ConnectionRefused.into()).into())
    }
}

/// One connection: a non-blocking socket whose waits park the greenlet.
#[derive(Debug)]
pub struct GreenTransport {
    /// Shared (weakly) with the agent, which shuts it down on
    /// `Agent::shutdown`: that wakes a greenlet parked on it.
    stream: Arc<std::net::TcpStream>,
    buffers: LazyBuffers,
}

/// When a transfer given `timeout` must end: `None` for never. Fails at
/// once if no time is left.
fn deadline(timeout: NextTimeout) -> Result<Option<Instant>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|t| Instant::now() + *t))
}

/// Runs `op` on the non-blocking `stream`, parking the greenlet while it
/// would block, until `op` succeeds or `deadline` passes.
fn green_io<T>(
    stream: &std::net::TcpStream,
    readable: bool,
    deadline: Option<Instant>,
    timeout: NextTimeout,
    mut op: impl FnMut(&std::net::TcpStream) -> io::Result<T>,
) -> Result<T, Error> {
    loop {
        match op(stream) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                if left == Some(Duration::ZERO) {
                    return Err(Error::Timeout(timeout.reason));
                }
                let waited = if readable {
                    green::wait_readable(stream, left)
                } else {
                    green::wait_writable(stream, left)
                };
                match waited {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return Err(Error::Timeout(timeout.reason));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            other => return Ok(other?),
        }
    }
}

impl Transport for GreenTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        // One deadline for the whole transfer, however many writes it takes.
        let deadline = deadline(timeout)?;
        let mut output = &self.buffers.output()[..amount];
        while !output.is_empty() {
            let n = green_io(&self.stream, false, deadline, timeout, |mut s| s.write(output))?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero).into());
            }
            output = &output[n..];
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let deadline = deadline(timeout)?;
        let input = self.buffers.input_append_buf();
        let n = green_io(&self.stream, true, deadline, timeout, |mut s| s.read(input))?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // A kept-alive connection is reusable while it has nothing to say:
        // data or the end of file before a request means it is not.
        let mut probe = [0u8];
        matches!((&*self.stream).read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// Resolves names on the blocking pool (IP literals at once), parking
/// only the calling greenlet. ureq's default resolver would block the
/// whole thread, or with a timeout wait on a channel for a thread of its
/// own.
#[derive(Debug)]
pub struct GreenResolver;

impl Resolver for GreenResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        let (scheme, authority) = match (uri.scheme(), uri.authority()) {
            (Some(s), Some(a)) => (s, a),
            _ => return Err(Error::BadUri(format!("{uri} is not an absolute URL"))),
        };
        let host_port = DefaultResolver::host_and_port(scheme, authority)
            .ok_or_else(|| Error::BadUri(format!("{uri}: no port for this scheme")))?;
        let found: Vec<SocketAddr> = match host_port.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) => {
                let lookup =
                    move || green::spawn_blocking(move || host_port.to_socket_addrs().map(Vec::from_iter));
                match timeout.not_zero() {
                    None => lookup()?,
                    Some(t) => {
                        green::with_timeout(*t, lookup).map_err(|_| Error::Timeout(timeout.reason))??
                    }
                }
            }
        };
        let mut addrs = self.empty();
        for addr in config.ip_family().keep_wanted(found.into_iter()) {
            // ureq keeps at most 16.
            if addrs.try_push(addr).is_err() {
                break;
            }
        }
        if addrs.is_empty() { Err(Error::HostNotFound) } else { Ok(addrs) }
    }
}
