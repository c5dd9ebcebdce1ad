//! Drives the raw API end to end on the default loop: a timer, an io watcher
//! on a pipe, a signal and an async watcher sent from another thread, each
//! callback observed through the watcher's `data` pointer.

use libev_sys::*;
use std::ffi::{c_int, c_void};
use std::mem::zeroed;

/// What the callbacks saw, reached through each watcher's `data`.
#[derive(Default)]
struct Seen {
    order: Vec<&'static str>,
    io_byte: u8,
}

unsafe fn seen<'a>(data: *mut c_void) -> &'a mut Seen {
    // SAFETY: every watcher's `data` points at the test's `Seen`, which
    // outlives the loop run; callbacks run one at a time on this thread.
    unsafe { &mut *data.cast::<Seen>() }
}

unsafe extern "C" fn on_timer(l: *mut ev_loop, w: *mut ev_timer, revents: c_int) {
    assert_eq!(revents, EV_TIMER);
    // SAFETY: libev passes the watcher it was started with and its loop.
    unsafe {
        seen((*w).data).order.push("timer");
        // Fire the signal next: raise() delivers it to this thread.
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
        let _ = l;
    }
}

unsafe extern "C" fn on_signal(l: *mut ev_loop, w: *mut ev_signal, revents: c_int) {
    assert_eq!(revents, EV_SIGNAL);
    // SAFETY: as above.
    unsafe {
        seen((*w).data).order.push("signal");
        ev_signal_stop(l, w);
    }
}

unsafe extern "C" fn on_io(l: *mut ev_loop, w: *mut ev_io, revents: c_int) {
    assert_eq!(revents & EV_READ, EV_READ);
    // SAFETY: as above; the fd is the pipe's read end, open for the test.
    unsafe {
        let mut b = 0u8;
        assert_eq!(libc::read((*w).fd, (&mut b as *mut u8).cast(), 1), 1);
        let s = seen((*w).data);
        s.order.push("io");
        s.io_byte = b;
        ev_io_stop(l, w);
    }
}

unsafe extern "C" fn on_async(l: *mut ev_loop, w: *mut ev_async, revents: c_int) {
    assert_eq!(revents, EV_ASYNC);
    // SAFETY: as above.
    unsafe {
        seen((*w).data).order.push("async");
        ev_async_stop(l, w);
    }
}

#[test]
fn timer_io_signal_async_on_the_default_loop() {
    let mut seen = Seen::default();
    let data = (&mut seen as *mut Seen).cast::<c_void>();
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);

    // SAFETY: the watchers are locals that do not move while active and are
    // all stopped (or inactive) before they go out of scope; the loop is the
    // default loop, which lives for the whole process.
    unsafe {
        let l = ev_default_loop(EVFLAG_AUTO);
        assert!(!l.is_null());

        let mut timer: ev_timer = zeroed();
        ev_timer_init(&mut timer, Some(on_timer), 0.01, 0.0);
        timer.data = data;
        ev_timer_start(l, &mut timer);

        let mut sig: ev_signal = zeroed();
        ev_signal_init(&mut sig, Some(on_signal), libc::SIGUSR1);
        sig.data = data;
        ev_signal_start(l, &mut sig);

        let mut io: ev_io = zeroed();
        ev_io_init(&mut io, Some(on_io), fds[0], EV_READ);
        io.data = data;
        ev_io_start(l, &mut io);

        let mut asy: ev_async = zeroed();
        ev_async_init(&mut asy, Some(on_async));
        asy.data = data;
        ev_async_start(l, &mut asy);

        // The timer runs first (nothing else is ready), raises the signal.
        ev_run(l, EVRUN_ONCE as c_int);
        assert!(!ev_is_active(&timer));
        while seen.order.len() < 2 {
            ev_run(l, EVRUN_ONCE as c_int);
        }
        assert_eq!(seen.order, ["timer", "signal"]);

        // Another thread writes the pipe and sends the async.
        let write_fd = fds[1];
        let asy_addr = &mut asy as *mut ev_async as usize;
        let loop_addr = l as usize;
        std::thread::spawn(move || {
            assert_eq!(libc::write(write_fd, b"x".as_ptr().cast(), 1), 1);
            // ev_async_send is the one call libev allows from any thread.
            ev_async_send(loop_addr as *mut ev_loop, asy_addr as *mut ev_async);
        })
        .join()
        .unwrap();

        // Everything left stops itself, so ev_run returns on its own.
        ev_run(l, 0);
        assert_eq!(seen.order.len(), 4);
        assert!(seen.order.contains(&"io") && seen.order.contains(&"async"));
        assert_eq!(seen.io_byte, b'x');
        assert!(!ev_is_active(&io) && !ev_is_active(&asy) && !ev_is_active(&sig));
        assert_eq!(ev_pending_count(l), 0);
        ev_verify(l);

        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}
