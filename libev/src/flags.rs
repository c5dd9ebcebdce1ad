//! Bit sets that cross the C boundary: received events, backends, loop flags.

use libev_sys as sys;

bitflags::bitflags! {
    /// The events a watcher callback receives (libev's `revents`), and the
    /// interest mask of an [`Io`](crate::Io) watcher (`READ`/`WRITE`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Events: u32 {
        /// The fd is readable (io watchers).
        const READ = sys::EV_READ as u32;
        /// The fd is writable (io watchers).
        const WRITE = sys::EV_WRITE as u32;
        /// A [`Timer`](crate::Timer) expired.
        const TIMER = sys::EV_TIMER as u32;
        /// A [`Periodic`](crate::Periodic) fired.
        const PERIODIC = sys::EV_PERIODIC as u32;
        /// A [`Signal`](crate::Signal) was received.
        const SIGNAL = sys::EV_SIGNAL as u32;
        /// A [`Child`](crate::Child) changed status.
        const CHILD = sys::EV_CHILD as u32;
        /// A [`Stat`](crate::Stat) path's attributes changed.
        const STAT = sys::EV_STAT as u32;
        /// The loop is idle ([`Idle`](crate::Idle)).
        const IDLE = sys::EV_IDLE as u32;
        /// The loop is about to block ([`Prepare`](crate::Prepare)).
        const PREPARE = sys::EV_PREPARE as u32;
        /// The loop has just blocked ([`Check`](crate::Check)).
        const CHECK = sys::EV_CHECK as u32;
        /// An embedded loop needs a sweep ([`Embed`](crate::Embed)).
        const EMBED = sys::EV_EMBED as u32;
        /// The loop resumed in a forked child ([`Fork`](crate::Fork)).
        const FORK = sys::EV_FORK as u32;
        /// The loop is being destroyed ([`Cleanup`](crate::Cleanup)).
        const CLEANUP = sys::EV_CLEANUP as u32;
        /// An [`Async`](crate::Async) watcher was sent.
        const ASYNC = sys::EV_ASYNC as u32;
        /// Free for user code (e.g. with `feed_event`).
        const CUSTOM = sys::EV_CUSTOM as u32;
        /// libev stopped the watcher because of an error (for example an
        /// io watcher whose fd was closed or is invalid).
        const ERROR = sys::EV_ERROR as u32;
    }
}

impl Events {
    pub(crate) fn from_revents(revents: core::ffi::c_int) -> Events {
        Events::from_bits_retain(revents as u32)
    }

    pub(crate) fn to_revents(self) -> core::ffi::c_int {
        self.bits() as core::ffi::c_int
    }
}

bitflags::bitflags! {
    /// Event notification mechanisms libev can use
    /// (see [`Loop::supported_backends`](crate::Loop::supported_backends)).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Backend: u32 {
        /// `select(2)`: everywhere, limited to `FD_SETSIZE` descriptors.
        const SELECT = sys::EVBACKEND_SELECT;
        /// `poll(2)`.
        const POLL = sys::EVBACKEND_POLL;
        /// Linux `epoll(7)`.
        const EPOLL = sys::EVBACKEND_EPOLL;
        /// BSD and macOS `kqueue(2)`.
        const KQUEUE = sys::EVBACKEND_KQUEUE;
        /// Solaris `/dev/poll` (never compiled in).
        const DEVPOLL = sys::EVBACKEND_DEVPOLL;
        /// Solaris event ports (never compiled in).
        const PORT = sys::EVBACKEND_PORT;
        /// Linux AIO (`io_submit(2)` with `IOCB_CMD_POLL`, kernel 4.19+).
        ///
        /// Compiled in on Linux, but experimental in libev 4.33 and not
        /// among [`Loop::recommended_backends`](crate::Loop::recommended_backends),
        /// so a loop uses it only when asked:
        /// `Loop::with_flags(LoopFlags::empty(), Backend::LINUXAIO)` (add
        /// [`LoopFlags::NOENV`] to keep `LIBEV_FLAGS` from overriding the
        /// choice). It runs on top of an epoll set, which takes the fds AIO
        /// cannot poll; when no AIO context can be had (the system-wide
        /// `/proc/sys/fs/aio-max-nr`), creation skips it, and if the kernel
        /// refuses later the loop switches to epoll for good, so check
        /// [`Loop::backend`](crate::Loop::backend). Not embeddable; does
        /// not survive `fork` without
        /// [`Loop::reinit_after_fork`](crate::Loop::reinit_after_fork).
        const LINUXAIO = sys::EVBACKEND_LINUXAIO;
        /// Linux io_uring (kernel 5.6.1+).
        ///
        /// Compiled in on Linux, but experimental in libev 4.33 and not
        /// among [`Loop::recommended_backends`](crate::Loop::recommended_backends),
        /// so a loop uses it only when asked:
        /// `Loop::with_flags(LoopFlags::empty(), Backend::IOURING)` (add
        /// [`LoopFlags::NOENV`] to keep `LIBEV_FLAGS` from overriding the
        /// choice). Listed in [`Loop::supported_backends`](crate::Loop::supported_backends)
        /// on new enough kernels, but creation still fails (or moves on to
        /// the next requested backend) where the kernel or a sandbox
        /// refuses `io_uring_setup` (`/proc/sys/kernel/io_uring_disabled`,
        /// seccomp filters). If its completion queue overflows at the
        /// kernel's size limit, the loop switches to epoll for good. Listed
        /// among [`Loop::embeddable_backends`](crate::Loop::embeddable_backends);
        /// does not survive `fork` without
        /// [`Loop::reinit_after_fork`](crate::Loop::reinit_after_fork).
        const IOURING = sys::EVBACKEND_IOURING;
    }
}

bitflags::bitflags! {
    /// Options for a new loop (libev's `EVFLAG_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct LoopFlags: u32 {
        /// Ignore the `LIBEV_FLAGS` environment variable.
        const NOENV = sys::EVFLAG_NOENV;
        /// Check for a fork in every iteration (`getpid` each time), so
        /// [`Loop::reinit_after_fork`](crate::Loop::reinit_after_fork) is
        /// not needed.
        const FORKCHECK = sys::EVFLAG_FORKCHECK;
        /// Do not use inotify for [`Stat`](crate::Stat) watchers.
        const NOINOTIFY = sys::EVFLAG_NOINOTIFY;
        /// Use signalfd for signal watchers where available.
        const SIGNALFD = sys::EVFLAG_SIGNALFD;
        /// Do not change the thread's signal mask.
        const NOSIGMASK = sys::EVFLAG_NOSIGMASK;
        /// Do not create a timerfd to detect time jumps.
        const NOTIMERFD = sys::EVFLAG_NOTIMERFD;
    }
}
