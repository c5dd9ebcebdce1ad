//! A seeded random driver over loops and every watcher type (issue 17,
//! "how to find the rest"): random sequences of create, start, stop, set,
//! feed, invoke, priority, keep-alive, drop (inside and outside callbacks),
//! loop drops, nested runs, `reinit_after_fork`, `run_callback` and its
//! cancellation, across three loops, one of which can be embedded in the
//! others. Callbacks themselves run random operations, so every path into
//! Rust (libev's own included: the embed hooks, cleanup during destroy,
//! reschedule-driven periodics) is exercised from every state.
//!
//! After each step it checks the crate's promises: a stopped watcher is
//! neither active nor pending, a fed one is pending, no callback runs after
//! its watcher was dropped or while it already runs; at the end of a case,
//! with every watcher dropped, no loop has an active watcher or an
//! unbalanced reference left. Memory errors are for ASan and valgrind,
//! which run this test in CI.
//!
//! `LIBEV_FUZZ_SECS` (default: a fixed number of cases) runs cases until
//! that many seconds have passed; `LIBEV_FUZZ_SEED` picks the first seed.
//! A failure prints its seed and the case's operations.

mod util;

use libev::{
    Async, Check, Cleanup, Embed, Events, Fork, Idle, Io, Loop, LoopFlags, Periodic, Prepare, Signal, Stat,
    Timer, TimerArray,
};
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::{Rc, Weak};
use std::time::Duration;
use util::Rng;

/// What a test knows about one watcher's callback.
#[derive(Default)]
struct Probe {
    alive: Cell<bool>,
    running: Cell<bool>,
}

enum W {
    Io(Io),
    Timer(Timer),
    Periodic(Periodic),
    Idle(Idle),
    Prepare(Prepare),
    Check(Check),
    Fork(Fork),
    Cleanup(Cleanup),
    Async(Async),
    Stat(Stat),
    Embed(Embed),
    Signal(Signal),
    Array(TimerArray),
}

/// Runs `$e` with `$x` bound to the watcher, for every type with the
/// common watcher methods (all but `TimerArray`).
macro_rules! each {
    ($w:expr, $x:ident => $e:expr, $array:ident => $a:expr) => {
        match $w {
            W::Io($x) => $e,
            W::Timer($x) => $e,
            W::Periodic($x) => $e,
            W::Idle($x) => $e,
            W::Prepare($x) => $e,
            W::Check($x) => $e,
            W::Fork($x) => $e,
            W::Cleanup($x) => $e,
            W::Async($x) => $e,
            W::Stat($x) => $e,
            W::Embed($x) => $e,
            W::Signal($x) => $e,
            W::Array($array) => $a,
        }
    };
}

struct Slot {
    w: W,
    probe: Rc<Probe>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.probe.alive.set(false);
    }
}

const LOOPS: usize = 3;
const SLOTS: usize = 16;
/// Nested depth of operations run from callbacks.
const MAX_DEPTH: u32 = 3;
/// Operations callbacks may run per top-level step (so that callbacks
/// feeding each other cannot run forever).
const BUDGET: u32 = 300;

struct World {
    rng: RefCell<Rng>,
    loops: RefCell<Vec<Option<Loop>>>,
    slots: RefCell<Vec<Option<Rc<Slot>>>>,
    queued: RefCell<Vec<libev::CallbackHandle>>,
    pipes: Vec<(OwnedFd, OwnedFd)>,
    stat_path: std::path::PathBuf,
    depth: Cell<u32>,
    budget: Cell<u32>,
    /// Set for the teardown: callbacks then do nothing.
    quiet: Cell<bool>,
    log: RefCell<Vec<String>>,
    me: RefCell<Weak<World>>,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two open descriptors.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn new_loop(i: usize) -> Loop {
    if i == 1 {
        // The embeddable one (epoll on Linux), where there is one.
        // Not from LIBEV_FLAGS: io_uring, which libev lists as
        // embeddable, can spin in the outer loop's prepare hook (see
        // tests/backends.rs).
        let usable = Loop::embeddable_backends() & Loop::supported_backends() & !libev::Backend::IOURING;
        if let Some(b) = usable.iter().next() {
            return Loop::with_flags(LoopFlags::NOENV, b).unwrap();
        }
    }
    Loop::new().unwrap()
}

impl World {
    fn new(seed: u64, dir: &std::path::Path) -> Rc<World> {
        let stat_path = dir.join(format!("stat-{seed}"));
        std::fs::write(&stat_path, b"0").unwrap();
        let w = Rc::new(World {
            rng: RefCell::new(Rng(seed.max(1))),
            loops: RefCell::new((0..LOOPS).map(|i| Some(new_loop(i))).collect()),
            slots: RefCell::new((0..SLOTS).map(|_| None).collect()),
            queued: RefCell::new(Vec::new()),
            pipes: (0..3).map(|_| pipe()).collect(),
            stat_path,
            depth: Cell::new(0),
            budget: Cell::new(BUDGET),
            quiet: Cell::new(false),
            log: RefCell::new(Vec::new()),
            me: RefCell::new(Weak::new()),
        });
        *w.me.borrow_mut() = Rc::downgrade(&w);
        w
    }

    fn pick(&self, n: usize) -> usize {
        self.rng.borrow_mut().below(n as u64) as usize
    }

    fn chance(&self, percent: u64) -> bool {
        self.rng.borrow_mut().chance(percent)
    }

    fn short(&self) -> Duration {
        Duration::from_micros(self.rng.borrow_mut().below(3000))
    }

    fn note(&self, what: String) {
        let depth = self.depth.get();
        self.log.borrow_mut().push(format!("{}{what}", "  ".repeat(depth as usize)));
    }

    fn a_loop(&self) -> Option<(usize, Loop)> {
        let i = self.pick(LOOPS);
        self.loops.borrow()[i].clone().map(|l| (i, l))
    }

    /// The watcher in a random slot, as a counted handle: the slot may be
    /// emptied (and the watcher dropped) by what the operation runs.
    fn a_slot(&self) -> Option<(usize, Rc<Slot>)> {
        let i = self.pick(SLOTS);
        self.slots.borrow()[i].clone().map(|s| (i, s))
    }

    /// The callback every watcher gets: check the probe, then run a few
    /// random operations one level deeper.
    fn callback(&self, probe: &Probe, what: &str) {
        assert!(probe.alive.get(), "a callback ran after its watcher was dropped ({what})");
        assert!(!probe.running.get(), "a callback was re-entered ({what})");
        if self.quiet.get() {
            return;
        }
        probe.running.set(true);
        struct Done<'a>(&'a Probe);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.running.set(false);
            }
        }
        let _done = Done(probe);
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return;
        }
        let n = self.pick(3);
        for _ in 0..n {
            if self.budget.get() == 0 {
                return;
            }
            self.budget.set(self.budget.get() - 1);
            self.depth.set(depth + 1);
            self.step();
            self.depth.set(depth);
        }
    }

    fn create(&self) {
        let free: Vec<usize> =
            self.slots.borrow().iter().enumerate().filter(|(_, s)| s.is_none()).map(|(i, _)| i).collect();
        let Some(&slot) = free.get(self.pick(free.len().max(1))) else { return };
        let Some((li, lp)) = self.a_loop() else { return };
        let probe = Rc::new(Probe { alive: Cell::new(true), running: Cell::new(false) });
        let me = self.me.borrow().clone();
        let kind = self.pick(13);
        macro_rules! cb {
            ($what:expr) => {{
                let (me, probe) = (me.clone(), probe.clone());
                move |_: &_, _: Events| {
                    if let Some(world) = me.upgrade() {
                        world.callback(&probe, $what)
                    }
                }
            }};
        }
        let (r, w) = &self.pipes[self.pick(self.pipes.len())];
        let w = match kind {
            0 => W::Io(Io::new(&lp, r.as_raw_fd(), Events::READ, cb!("io")).unwrap()),
            1 => W::Io(Io::new(&lp, w.as_raw_fd(), Events::WRITE, cb!("io")).unwrap()),
            2 => W::Timer(Timer::new(&lp, self.short(), self.short(), cb!("timer"))),
            3 => {
                if self.chance(50) {
                    W::Periodic(
                        Periodic::interval(
                            &lp,
                            0.0,
                            self.short().max(Duration::from_micros(100)),
                            cb!("periodic"),
                        )
                        .unwrap(),
                    )
                } else {
                    W::Periodic(Periodic::reschedule(&lp, |now| now + 0.001, cb!("periodic")))
                }
            }
            4 => W::Idle(Idle::new(&lp, cb!("idle"))),
            5 => W::Prepare(Prepare::new(&lp, cb!("prepare"))),
            6 => W::Check(Check::new(&lp, cb!("check"))),
            7 => W::Fork(Fork::new(&lp, cb!("fork"))),
            8 => W::Cleanup(Cleanup::new(&lp, cb!("cleanup"))),
            9 => W::Async(Async::new(&lp, cb!("async"))),
            10 => W::Stat(Stat::new(&lp, &self.stat_path, Duration::from_millis(5), cb!("stat")).unwrap()),
            11 => {
                // Embed the embeddable loop in another one, if it is free.
                let Some(inner) = self.loops.borrow()[1].clone() else { return };
                if li == 1 {
                    return;
                }
                match Embed::new(&lp, &inner, cb!("embed")) {
                    Ok(e) => W::Embed(e),
                    Err(_) => return,
                }
            }
            _ => {
                if self.chance(30) {
                    match Signal::new(&lp, libc::SIGUSR2, cb!("signal")) {
                        Ok(s) => W::Signal(s),
                        Err(_) => return,
                    }
                } else {
                    let (me, p) = (me.clone(), probe.clone());
                    W::Array(TimerArray::new(&lp, 3, move |_, _, _| {
                        if let Some(world) = me.upgrade() {
                            world.callback(&p, "timer array")
                        }
                    }))
                }
            }
        };
        self.note(format!("create slot {slot}: kind {kind} on loop {li}"));
        self.slots.borrow_mut()[slot] = Some(Rc::new(Slot { w, probe }));
    }

    /// One random operation.
    fn step(&self) {
        let op = self.pick(22);
        match op {
            0..=3 => self.create(),
            4..=6 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("start {i}"));
                each!(&s.w, x => { let _ = start(x); }, a => {
                    let k = self.pick(3);
                    a.set(k, self.short(), self.short());
                    a.start(k);
                });
            }
            7 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("stop {i}"));
                each!(&s.w, x => {
                    x.stop();
                    assert!(!x.is_active() && !x.is_pending(), "slot {i} stopped but active or pending");
                }, a => {
                    let k = self.pick(3);
                    a.stop(k);
                    assert!(!a.is_active(k) && !a.is_pending(k));
                });
            }
            8 | 9 => {
                let i = self.pick(SLOTS);
                self.note(format!("drop {i}"));
                let taken = self.slots.borrow_mut()[i].take();
                drop(taken);
            }
            10 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("feed {i}"));
                each!(&s.w, x => {
                    x.feed_event(Events::CUSTOM);
                    if !matches!(s.w, W::Cleanup(_)) {
                        assert!(x.is_pending(), "slot {i} fed but not pending");
                    }
                }, a => {
                    let k = self.pick(3);
                    a.feed_event(k, Events::TIMER);
                    assert!(a.is_pending(k));
                });
            }
            11 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("invoke {i}"));
                each!(&s.w, x => x.invoke(Events::CUSTOM), _a => {});
            }
            12 => {
                let Some((i, s)) = self.a_slot() else { return };
                let p = self.pick(7) as i32 - 3;
                self.note(format!("priority {i} {p}"));
                each!(&s.w, x => {
                    let r = x.set_priority(p);
                    assert_eq!(r.is_ok(), (-2..=2).contains(&p));
                }, _a => {});
            }
            13 => {
                let Some((i, s)) = self.a_slot() else { return };
                let keep = self.chance(50);
                self.note(format!("keep-alive {i} {keep}"));
                each!(&s.w, x => x.set_keeps_loop_alive(keep), a => a.set_keeps_loop_alive(keep));
            }
            14 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("clear {i}"));
                each!(&s.w, x => { x.clear_pending(); }, a => { a.clear_pending(self.pick(3)); });
            }
            15 => {
                let Some((i, s)) = self.a_slot() else { return };
                self.note(format!("special {i}"));
                self.special(&s.w);
            }
            16 | 17 => {
                let Some((i, lp)) = self.a_loop() else { return };
                if self.depth.get() >= MAX_DEPTH - 1 {
                    return;
                }
                self.note(format!("run_nowait {i}"));
                lp.run_nowait();
            }
            18 => {
                let Some((i, lp)) = self.a_loop() else { return };
                self.note(format!("run_callback {i}"));
                let me = self.me.borrow().clone();
                let probe = Rc::new(Probe { alive: Cell::new(true), running: Cell::new(false) });
                let h = lp.run_callback(move || {
                    if let Some(world) = me.upgrade() {
                        world.callback(&probe, "queued callback")
                    }
                });
                if self.chance(30) {
                    self.queued.borrow_mut().push(h);
                }
            }
            19 => {
                let h = self.queued.borrow_mut().pop();
                if let Some(h) = h {
                    self.note("cancel".into());
                    h.cancel();
                    assert!(!h.is_pending());
                }
            }
            20 => {
                let i = self.pick(LOOPS);
                let mut loops = self.loops.borrow_mut();
                if loops[i].is_some() && self.chance(50) {
                    self.note(format!("drop loop {i}"));
                    let l = loops[i].take();
                    drop(loops);
                    drop(l);
                } else if loops[i].is_none() {
                    self.note(format!("new loop {i}"));
                    loops[i] = Some(new_loop(i));
                }
            }
            _ => {
                let Some((i, lp)) = self.a_loop() else { return };
                match self.pick(4) {
                    0 => {
                        self.note(format!("reinit_after_fork {i}"));
                        lp.reinit_after_fork();
                    }
                    1 => {
                        self.note(format!("break {i}"));
                        lp.break_loop(libev::Break::One);
                    }
                    2 => {
                        self.note(format!("feed signal {i}"));
                        lp.feed_signal_event(libc::SIGUSR2).unwrap();
                    }
                    _ => {
                        self.note("io".into());
                        let (r, w) = &self.pipes[self.pick(self.pipes.len())];
                        // SAFETY: writes one byte from a live local / reads
                        // into one, on our own non-blocking pipe.
                        unsafe {
                            if self.chance(50) {
                                libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1);
                            } else {
                                let mut b = [0u8; 64];
                                libc::read(r.as_raw_fd(), b.as_mut_ptr().cast(), b.len());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The type's own operations.
    fn special(&self, w: &W) {
        match w {
            W::Io(io) => {
                let ev = if self.chance(50) { Events::READ } else { Events::READ | Events::WRITE };
                let _ = io.set_events(ev);
            }
            W::Timer(t) => match self.pick(4) {
                0 => t.set(self.short(), self.short()),
                1 => t.restart(self.short(), self.short()),
                2 => t.again(),
                _ => {
                    let _ = t.remaining();
                }
            },
            W::Periodic(p) => p.again(),
            W::Async(a) => {
                if self.chance(80) {
                    a.send();
                } else {
                    let sender = a.sender();
                    std::thread::spawn(move || sender.send()).join().unwrap();
                }
            }
            W::Stat(s) => {
                if self.chance(50) {
                    std::fs::write(&self.stat_path, self.pick(1000).to_string()).unwrap();
                }
                s.refresh();
            }
            W::Embed(e) => e.sweep(),
            W::Array(a) => {
                let k = self.pick(3);
                match self.pick(3) {
                    0 => a.restart(k, self.short(), self.short()),
                    1 => a.again(k),
                    _ => {
                        let _ = a.remaining(k);
                    }
                }
            }
            _ => {}
        }
    }

    /// Ends a case: callbacks go quiet, queued callbacks drain, every
    /// watcher is dropped; then no loop may have anything active left.
    fn teardown(&self) {
        self.quiet.set(true);
        self.queued.borrow_mut().clear();
        let loops: Vec<Loop> = self.loops.borrow().iter().flatten().cloned().collect();
        for lp in &loops {
            lp.run_nowait();
        }
        let slots: Vec<_> = self.slots.borrow_mut().iter_mut().map(Option::take).collect();
        drop(slots);
        let indices: Vec<usize> = (0..LOOPS).filter(|&i| self.loops.borrow()[i].is_some()).collect();
        for (&i, lp) in indices.iter().zip(&loops) {
            // Queued callbacks drained, watchers gone: nothing active, no
            // reference owed (an unbalanced ev_unref would show here).
            lp.run_nowait();
            assert!(!lp.run_nowait(), "loop {i} still has active watchers or unbalanced references");
        }
    }
}

fn start<T: Startable>(x: &T) -> std::io::Result<()> {
    x.start_any()
}

/// `start` for every type (Signal's can fail).
trait Startable {
    fn start_any(&self) -> std::io::Result<()>;
}

macro_rules! startable {
    ($($t:ty),*) => {$(
        impl Startable for $t {
            fn start_any(&self) -> std::io::Result<()> {
                self.start();
                Ok(())
            }
        }
    )*};
}
startable!(Io, Timer, Periodic, Idle, Prepare, Check, Fork, Cleanup, Async, Stat, Embed);

impl Startable for Signal {
    fn start_any(&self) -> std::io::Result<()> {
        self.start()
    }
}

/// Runs one case of `steps` operations from `seed`.
fn case(seed: u64, steps: usize, dir: &std::path::Path) {
    let world = World::new(seed, dir);
    let r = catch_unwind(AssertUnwindSafe(|| {
        for _ in 0..steps {
            world.budget.set(BUDGET);
            world.step();
        }
        world.teardown();
    }));
    if let Err(p) = r {
        let log = world.log.borrow();
        let tail = &log[log.len().saturating_sub(60)..];
        eprintln!("fuzz_watchers: seed {seed} failed; its last operations:\n{}", tail.join("\n"));
        std::panic::resume_unwind(p);
    }
    let _ = std::fs::remove_file(&world.stat_path);
}

#[test]
fn random_operations_on_every_watcher_type_keep_every_promise() {
    let dir = std::env::temp_dir().join(format!("libev-fuzz-watchers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // On linuxaio every loop dropped and every reinit_after_fork destroys
    // an AIO context, which waits for the kernel (io_destroy, about 35 ms
    // here): a tenth of the cases keeps that run near a second.
    let cases = if util::env_backends() == libev::Backend::LINUXAIO { 20 } else { 200 };
    util::fuzz_seeds("fuzz_watchers", cases, |seed| case(seed, 200, &dir));
    let _ = std::fs::remove_dir_all(&dir);
}

/// This file's tests again, once per backend that works here
/// (`util::run_suite_on_every_backend`).
#[test]
fn suite_on_every_backend() {
    util::run_suite_on_every_backend("suite_on_every_backend");
}
