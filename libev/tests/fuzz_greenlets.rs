//! A seeded random driver over greenlets (issue 17, "how to find the
//! rest"): greenlets running random programs of spawns, joins, kills
//! (from destructors and links too), timeouts nested in any order, yields,
//! sleeps, queue, channel, event, semaphore and mutex operations, and
//! destructors that make blocking calls while their greenlet unwinds; the
//! root kills, joins and waits at random; some cases end by leaving their
//! thread with greenlets still alive.
//!
//! Checked: every item put is received exactly once (or is still queued),
//! the mutex is never held twice (its value is checked across blocking
//! calls) and is free at the end, every permit comes back, no waiter is
//! left on any primitive, `std::thread::panicking()` is false wherever no
//! destructor runs, and every greenlet ends with its value, `Killed`,
//! `TimedOut` or the driver's own panic, never another panic.
//!
//! `LIBEV_FUZZ_SECS` and `LIBEV_FUZZ_SEED` as in `fuzz_watchers.rs`.
//! Cases that leave greenlets at thread exit run only where leaks are not
//! checked (they leak those greenlets by design): without ASan, or with
//! `LIBEV_FUZZ_THREAD_EXIT=1`.

mod util;

use libev::green::sync::{Channel, Event, Mutex, Queue, Semaphore};
use libev::green::{self, Greenlet, GreenletError, Timeout};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::Rng;

const PERMITS: usize = 2;
const DRIVER_PANIC: &str = "fuzz_greenlets: a panic of the program";

/// What the greenlets of one case share.
struct World {
    rng: RefCell<Rng>,
    queue: Queue<u64>,
    channel: Channel<u64>,
    event: Event,
    sem: Semaphore,
    mutex: Mutex<u64>,
    greenlets: RefCell<Vec<Rc<Greenlet<u64>>>>,
    next_item: Cell<u64>,
    sent: RefCell<HashSet<u64>>,
    received: RefCell<Vec<u64>>,
    /// Set by a check that failed inside a greenlet (their panics are
    /// caught as the greenlet's result; this makes them fail the case).
    broken: RefCell<Option<String>>,
    depth: Cell<u32>,
}

impl World {
    fn pick(&self, n: u64) -> u64 {
        self.rng.borrow_mut().below(n)
    }

    fn short(&self) -> Duration {
        Duration::from_micros(self.pick(2000))
    }

    fn fail(&self, what: String) {
        self.broken.borrow_mut().get_or_insert(what);
    }

    /// Outside destructors, no greenlet may see the thread unwinding.
    fn check_not_unwinding(&self, at: &str) {
        if std::thread::panicking() {
            self.fail(format!("thread::panicking() was true at {at}"));
        }
    }

    fn got(&self, item: u64) {
        self.received.borrow_mut().push(item);
    }

    fn new_item(&self) -> u64 {
        let i = self.next_item.get();
        self.next_item.set(i + 1);
        i
    }

    /// One random action of a greenlet's program.
    fn act(self: &Rc<Self>) {
        self.check_not_unwinding("an action");
        match self.pick(24) {
            0 => green::yield_now(),
            1 => green::sleep(self.short()),
            2 => {
                let item = self.new_item();
                self.queue.put(item);
                self.sent.borrow_mut().insert(item);
            }
            3 => {
                let item = self.new_item();
                if self.queue.put_timeout(item, self.short()).is_ok() {
                    self.sent.borrow_mut().insert(item);
                }
            }
            4 => {
                let item = self.queue.get();
                self.got(item);
            }
            5 => {
                if let Some(item) = self.queue.get_timeout(self.short()) {
                    self.got(item);
                }
            }
            6 => {
                let item = self.new_item();
                if self.channel.put_timeout(item, self.short()).is_ok() {
                    self.sent.borrow_mut().insert(item);
                }
            }
            7 => {
                if let Some(item) = self.channel.get_timeout(self.short()) {
                    self.got(item);
                }
            }
            8 => {
                self.event.wait_timeout(self.short());
            }
            9 => {
                if self.pick(2) == 0 {
                    self.event.set()
                } else {
                    self.event.clear()
                }
            }
            10 => {
                let _permit = self.sem.acquire();
                green::sleep(self.short());
            }
            11 => {
                if let Some(_p) = self.sem.acquire_timeout(self.short()) {
                    green::yield_now();
                }
            }
            12 | 13 => {
                let guard = if self.pick(2) == 0 {
                    Some(self.mutex.lock())
                } else {
                    self.mutex.lock_timeout(self.short())
                };
                if let Some(mut g) = guard {
                    // Held across a blocking call: nobody else may change it.
                    *g += 1;
                    let mine = *g;
                    green::sleep(self.short());
                    if *g != mine {
                        self.fail(format!("the mutex's value changed under its holder: {mine} -> {}", *g));
                    }
                }
            }
            14 | 15 => {
                let me = self.clone();
                let _ = green::with_timeout(self.short(), move || me.program(2));
            }
            16 => {
                let _t = Timeout::start(self.short());
                let me = self.clone();
                let r = catch_unwind(AssertUnwindSafe(move || me.program(2)));
                if let Err(p) = r {
                    // Our own Timeout's expiry is caught here; all else
                    // (a kill, an outer timeout, the driver's panic) goes on.
                    if p.downcast_ref::<green::Elapsed>().is_none() {
                        std::panic::resume_unwind(p);
                    }
                }
            }
            17 => self.spawn_one(),
            18 => {
                let g = self.some_greenlet();
                if let Some(g) = g {
                    g.kill();
                }
            }
            19 => {
                let g = self.some_greenlet();
                if let Some(g) = g
                    && !g.is_finished()
                {
                    let _ = green::with_timeout(self.short(), || {
                        while !g.is_finished() {
                            green::sleep(Duration::from_micros(200));
                        }
                    });
                }
            }
            20 => {
                // A destructor that blocks, run by an unwind or a return.
                let me = self.clone();
                let _guard = BlockingDrop(me);
                self.program(2);
            }
            21 => {
                if self.pick(4) == 0 {
                    std::panic::panic_any(DRIVER_PANIC);
                }
            }
            22 => {
                let ms = self.pick(2);
                let n = green::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    ms
                });
                if n != ms {
                    self.fail("spawn_blocking returned another value".into());
                }
            }
            _ => {
                let g = self.some_greenlet();
                if let Some(g) = g {
                    let me = self.clone();
                    g.link(move || {
                        // Links may block.
                        if me.pick(2) == 0 {
                            green::sleep(me.short());
                        }
                        me.event.set();
                    });
                }
            }
        }
    }

    /// A random program of a few actions, at most `depth` levels deep.
    fn program(self: &Rc<Self>, extra: u32) {
        let depth = self.depth.get();
        if depth > 4 {
            return;
        }
        self.depth.set(depth + extra);
        struct Back<'a>(&'a Cell<u32>, u32);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                self.0.set(self.1);
            }
        }
        let _back = Back(&self.depth, depth);
        for _ in 0..1 + self.pick(4) {
            self.act();
        }
    }

    fn some_greenlet(&self) -> Option<Rc<Greenlet<u64>>> {
        let gs = self.greenlets.borrow();
        if gs.is_empty() {
            return None;
        }
        Some(gs[self.pick(gs.len() as u64) as usize].clone())
    }

    fn spawn_one(self: &Rc<Self>) {
        if self.greenlets.borrow().len() >= 40 {
            return;
        }
        let me = self.clone();
        let id = self.next_item.get();
        let g = green::spawn(move || {
            me.program(0);
            me.check_not_unwinding("a greenlet's end");
            id
        });
        self.greenlets.borrow_mut().push(Rc::new(g));
    }
}

/// Blocking calls in a destructor, possibly while its greenlet unwinds:
/// none may abort; none may wait while unwinding.
struct BlockingDrop(Rc<World>);

impl Drop for BlockingDrop {
    fn drop(&mut self) {
        let w = &self.0;
        let unwinding = std::thread::panicking();
        let t0 = Instant::now();
        green::sleep(Duration::from_micros(300));
        green::yield_now();
        let item = w.new_item();
        w.queue.put(item);
        w.sent.borrow_mut().insert(item);
        if let Some(mut g) = w.mutex.try_lock() {
            *g += 1;
        }
        if let Some(item) = w.queue.try_get() {
            w.got(item);
        }
        if let Some(g) = w.some_greenlet() {
            g.kill();
        }
        if unwinding && t0.elapsed() > Duration::from_millis(50) {
            w.fail(format!("a destructor waited {:?} during an unwind", t0.elapsed()));
        }
    }
}

/// One case from `seed`. With `exit_thread`, the case's thread returns
/// with its greenlets alive instead of ending them.
fn case(seed: u64, exit_thread: bool) -> Result<(), String> {
    let world = Rc::new(World {
        rng: RefCell::new(Rng(seed.max(1))),
        queue: Queue::bounded(2),
        channel: Channel::new(),
        event: Event::new(),
        sem: Semaphore::new(PERMITS),
        mutex: Mutex::new(0),
        greenlets: RefCell::new(Vec::new()),
        next_item: Cell::new(0),
        sent: RefCell::new(HashSet::new()),
        received: RefCell::new(Vec::new()),
        broken: RefCell::new(None),
        depth: Cell::new(0),
    });
    let w = Rc::downgrade(&world);
    green::set_unjoined_panic_handler(move |r| {
        if r.message != DRIVER_PANIC
            && let Some(w) = w.upgrade()
        {
            w.fail(format!("greenlet {} panicked: {}", r.id, r.message));
        }
    });
    for _ in 0..4 + world.pick(8) {
        world.spawn_one();
    }
    // The root's own random moves.
    for _ in 0..20 {
        match world.pick(6) {
            0 => green::yield_now(),
            1 => green::sleep(world.short()),
            2 => {
                if let Some(g) = world.some_greenlet() {
                    g.kill();
                }
            }
            3 => world.spawn_one(),
            4 => {
                let w = world.clone();
                let r = catch_unwind(AssertUnwindSafe(|| {
                    green::with_timeout(world.short(), move || w.program(3))
                }));
                if let Err(p) = r
                    && p.downcast_ref::<&str>() != Some(&DRIVER_PANIC)
                {
                    std::panic::resume_unwind(p);
                }
            }
            _ => {
                if let Some(item) = world.queue.try_get() {
                    world.got(item);
                }
            }
        }
    }
    if exit_thread {
        // Leave the rest to the thread's exit.
        world.greenlets.borrow_mut().clear();
        return Ok(());
    }
    // The end: kill whatever still runs (killing may spawn more), join all.
    loop {
        let gs: Vec<_> = world.greenlets.borrow_mut().drain(..).collect();
        if gs.is_empty() {
            break;
        }
        for g in &gs {
            g.kill();
        }
        for g in gs {
            let g = Rc::try_unwrap(g).expect("no other handle is left");
            match g.join() {
                Ok(_) | Err(GreenletError::Killed) | Err(GreenletError::TimedOut) => {}
                Err(GreenletError::Panicked(p)) if p.downcast_ref::<&str>() == Some(&DRIVER_PANIC) => {}
                Err(e) => return Err(format!("a greenlet ended with {e}")),
            }
        }
    }
    // Let links finish.
    green::sleep(Duration::from_millis(3));
    if let Some(what) = world.broken.borrow_mut().take() {
        return Err(what);
    }
    while let Some(item) = world.queue.try_get() {
        world.got(item);
    }
    let received = world.received.borrow();
    let unique: HashSet<u64> = received.iter().copied().collect();
    if unique.len() != received.len() {
        return Err("an item was received twice".into());
    }
    if unique != *world.sent.borrow() {
        return Err(format!("items sent {:?}, received {:?}", world.sent.borrow(), unique));
    }
    if world.sem.available_permits() != PERMITS || world.sem.waiters() != 0 {
        return Err(format!("semaphore: {:?}", world.sem));
    }
    if world.mutex.is_locked() {
        return Err("the mutex is still locked".into());
    }
    if world.channel.balance() != 0 || !world.queue.is_empty() {
        return Err(format!("waiters left: {:?} {:?}", world.channel, world.queue));
    }
    Ok(())
}

#[test]
fn random_greenlet_programs_keep_every_promise() {
    let thread_exit = std::env::var_os("LIBEV_FUZZ_THREAD_EXIT").is_some_and(|v| v == "1")
        || std::env::var_os("ASAN_OPTIONS").is_none();
    // The programs' own panics are expected: keep them quiet.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&DRIVER_PANIC) {
            hook(info)
        }
    }));
    util::fuzz_seeds("fuzz_greenlets", 80, |seed| {
        let exit_thread = thread_exit && seed % 5 == 0;
        match std::thread::spawn(move || case(seed, exit_thread)).join() {
            Ok(Ok(())) => {}
            Ok(Err(what)) => panic!("fuzz_greenlets: seed {seed}: {what}"),
            Err(_) => panic!("fuzz_greenlets: seed {seed}: the case's thread panicked"),
        }
    });
}
