//! The load client of `net-bench`: one thread, raw epoll, non-blocking
//! sockets, so that it costs little next to the servers it drives.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// An epoll instance, closed on drop.
struct Epoll(i32);

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(fd >= 0, "epoll_create1: {}", std::io::Error::last_os_error());
        Epoll(fd)
    }

    fn add(&self, fd: i32, token: u64) {
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the call's duration.
        let r = unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        assert_eq!(r, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
    }

    /// Ready tokens, waiting at most 100 ms.
    fn wait<'a>(&self, events: &'a mut [libc::epoll_event]) -> impl Iterator<Item = u64> + 'a {
        // SAFETY: `events` is writable for `len` entries.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, 100) };
        events[..n.max(0) as usize].iter().map(|e| e.u64)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_nodelay(true).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// `conns` connections each bouncing a `size`-byte message off the echo
/// server for `time`; returns the round trips completed.
pub fn echo(addr: &str, conns: usize, size: usize, time: Duration) -> u64 {
    echo_steady(addr, conns, size, time, || ())
}

/// [`echo`], timed from the moment every connection has had its first
/// round trip (the server has accepted them all and each is busy), when
/// `steady` is called; the round trips after that.
pub fn echo_steady(addr: &str, conns: usize, size: usize, time: Duration, steady: impl FnOnce()) -> u64 {
    let ep = Epoll::new();
    let msg = vec![b'x'; size];
    let mut socks: Vec<(TcpStream, usize)> = (0..conns).map(|_| (connect(addr), 0)).collect();
    for (i, (s, _)) in socks.iter_mut().enumerate() {
        ep.add(s.as_raw_fd(), i as u64);
        s.write_all(&msg).unwrap();
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 64 * 1024];
    let mut trips = 0;
    // Connections yet to complete their first round trip: the clock
    // starts when none is left.
    let mut first = vec![true; conns];
    let mut waiting = conns;
    let mut steady = Some(steady);
    let mut end = Instant::now() + if waiting == 0 { time } else { Duration::from_secs(600) };
    while Instant::now() < end {
        for token in ep.wait(&mut events) {
            let before = trips;
            let (s, got) = &mut socks[token as usize];
            loop {
                match s.read(&mut buf) {
                    Ok(0) => panic!("echo server closed a connection"),
                    Ok(n) => *got += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("echo read: {e}"),
                }
            }
            while *got >= size {
                *got -= size;
                trips += 1;
                // 64 bytes into an empty socket buffer never block.
                s.write_all(&msg).unwrap();
            }
            if waiting > 0 && trips > before && std::mem::take(&mut first[token as usize]) {
                waiting -= 1;
                if waiting == 0 {
                    if let Some(f) = steady.take() {
                        f();
                    }
                    trips = 0;
                    end = Instant::now() + time;
                }
            }
        }
    }
    trips
}

/// Keeps `inflight` connections to the hello server, each read to EOF
/// and replaced, for `time`; returns the connections completed.
pub fn hello(addr: &str, inflight: usize, time: Duration) -> u64 {
    let ep = Epoll::new();
    let mut socks: Vec<Option<TcpStream>> = Vec::with_capacity(inflight);
    for i in 0..inflight {
        let s = connect(addr);
        ep.add(s.as_raw_fd(), i as u64);
        socks.push(Some(s));
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = [0u8; 256];
    let mut done = 0;
    let end = Instant::now() + time;
    while Instant::now() < end {
        for token in ep.wait(&mut events) {
            let slot = &mut socks[token as usize];
            let Some(s) = slot.as_mut() else { continue };
            let eof = loop {
                match s.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
                    Err(e) => panic!("hello read: {e}"),
                }
            };
            if eof {
                done += 1;
                // Closing removes the fd from the epoll set.
                let s = connect(addr);
                ep.add(s.as_raw_fd(), token);
                *slot = Some(s);
            }
        }
    }
    done
}

/// Opens `n` connections to the echo server and bounces one byte on
/// each, so that each handler has run and parked in `read` again.
pub fn idle(addr: &str, n: usize) -> Vec<TcpStream> {
    let conns: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    for c in &conns {
        (&*c).write_all(b"!").unwrap();
    }
    for c in &conns {
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut b = [0u8; 1];
        (&*c).read_exact(&mut b).unwrap();
    }
    conns
}
