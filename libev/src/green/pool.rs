//! [`Pool`] and [`Group`]: running and waiting for many greenlets
//! (gevent's `gevent.pool`).

use super::greenlet::{Greenlet, GreenletError, send_kill, wait_done};
use super::sync::{Queue, Semaphore, SemaphorePermit};
use super::task::Task;
use super::with_timeout;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A set of greenlets to wait for or kill together (gevent's `Group`).
/// Finished greenlets leave the set by themselves. Cloning gives another
/// handle to the same set.
///
/// ```
/// use libev::green::{self, pool::Group};
/// use std::time::Duration;
///
/// let group = Group::new();
/// for ms in [3, 1, 2] {
///     group.spawn(move || green::sleep(Duration::from_millis(ms)));
/// }
/// assert_eq!(group.len(), 3);
/// group.join();
/// assert!(group.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct Group {
    inner: Rc<GroupInner>,
}

#[derive(Default)]
struct GroupInner {
    members: RefCell<Vec<Rc<Task>>>,
    /// When `members` grows to this, finished ones are swept out.
    sweep_at: Cell<usize>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` (as [`spawn`](super::spawn) does) into the group.
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        let g = super::spawn(f);
        self.add(&g);
        g
    }

    /// Adds a greenlet spawned elsewhere (a finished one is ignored).
    pub fn add<T>(&self, greenlet: &Greenlet<T>) {
        let task = greenlet.task();
        if task.ended() {
            return;
        }
        let mut members = self.inner.members.borrow_mut();
        if members.len() >= self.inner.sweep_at.get() {
            members.retain(|t| !t.ended());
            self.inner.sweep_at.set((members.len() * 2).max(64));
        }
        members.push(task.clone());
    }

    /// Removes a greenlet from the group without killing it (gevent's
    /// `discard`); returns whether it was a member.
    ///
    /// ```
    /// use libev::green::{self, pool::Group};
    ///
    /// let group = Group::new();
    /// let g = group.spawn(|| green::sleep(std::time::Duration::from_secs(60)));
    /// assert!(group.discard(&g));
    /// group.join(); // no longer waits for it
    /// g.kill();
    /// ```
    pub fn discard<T>(&self, greenlet: &Greenlet<T>) -> bool {
        let mut members = self.inner.members.borrow_mut();
        let before = members.len();
        members.retain(|t| !Rc::ptr_eq(t, greenlet.task()));
        members.len() != before
    }

    /// Kills one member and waits until it has ended (gevent's
    /// `killone`); does nothing to a greenlet that is not a member.
    ///
    /// ```
    /// use libev::green::{self, pool::Group};
    ///
    /// let group = Group::new();
    /// let g = group.spawn(|| green::sleep(std::time::Duration::from_secs(60)));
    /// group.killone(&g);
    /// assert!(g.is_finished() && group.is_empty());
    /// ```
    pub fn killone<T>(&self, greenlet: &Greenlet<T>) {
        if self.contains(greenlet.task()) {
            greenlet.kill();
        }
    }

    /// Whether `task` is an unfinished member.
    fn contains(&self, task: &Rc<Task>) -> bool {
        self.inner.members.borrow().iter().any(|t| Rc::ptr_eq(t, task) && !t.ended())
    }

    /// The number of greenlets in the group that have not finished.
    pub fn len(&self) -> usize {
        let mut members = self.inner.members.borrow_mut();
        members.retain(|t| !t.ended());
        members.len()
    }

    /// Whether every greenlet of the group has finished.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Blocks the calling greenlet until every member has finished,
    /// including members added meanwhile. Their results stay with their
    /// [`Greenlet`] handles.
    ///
    /// # Panics
    ///
    /// Unwinds if the caller is killed or its timeout expires meanwhile;
    /// panics if the caller is a member itself.
    pub fn join(&self) {
        loop {
            let next = self.inner.members.borrow().iter().find(|t| !t.ended()).cloned();
            match next {
                // Where green calls do not wait (an unwind), this returns
                // with members unfinished.
                Some(task) if wait_done(&task) => {}
                Some(_) => return,
                None => break,
            }
        }
        self.inner.members.borrow_mut().clear();
    }

    /// As [`join`](Group::join), for at most `timeout`; returns whether
    /// every member finished.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        with_timeout(timeout, || self.join()).is_ok() && self.is_empty()
    }

    /// Kills every member (they unwind, running their destructors) and
    /// waits until they have ended, including members spawned meanwhile.
    /// A caller that is itself a member unwinds after the others are sent
    /// their kill.
    pub fn kill(&self) {
        while let Some(members) = self.send_kills() {
            for t in &members {
                wait_done(t);
            }
        }
    }

    /// Kills every member as [`kill`](Group::kill) does, waiting at most
    /// `timeout` for them to end (gevent's `Group.kill(timeout=)`); returns
    /// whether all have. A kill stays pending until its greenlet ends (see
    /// [`Greenlet::kill`]): a member still running at the timeout stays in
    /// the group, and unwinds again at its next blocking call.
    ///
    /// ```
    /// use libev::green::{self, pool::Group};
    /// use std::time::Duration;
    ///
    /// let group = Group::new();
    /// group.spawn(|| green::sleep(Duration::from_secs(60)));
    /// assert!(group.kill_timeout(Duration::from_secs(5)));
    /// assert!(group.is_empty());
    /// ```
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        let _ = with_timeout(timeout, || {
            while let Some(members) = self.send_kills() {
                for t in &members {
                    wait_done(t);
                }
            }
        });
        self.is_empty()
    }

    /// Sends every unfinished member its kill (the caller's own last:
    /// it unwinds) and returns them; `None` if there were none. They
    /// leave the set as they end, so a caller interrupted while it waits
    /// leaves the group tracking those still unwinding.
    fn send_kills(&self) -> Option<Vec<Rc<Task>>> {
        let members: Vec<Rc<Task>> =
            self.inner.members.borrow().iter().filter(|t| !t.ended()).cloned().collect();
        if members.is_empty() {
            return None;
        }
        let me = super::hub::with_hub(|h| h.current());
        let mut killed_self = false;
        for t in &members {
            if Rc::ptr_eq(t, &me) {
                killed_self = true;
            } else {
                send_kill(t);
            }
        }
        if killed_self {
            send_kill(&me);
        }
        Some(members)
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}

/// At most `size` greenlets running at once (gevent's `Pool`):
/// [`spawn`](Pool::spawn) waits for a free slot.
///
/// ```
/// use libev::green::{self, pool::Pool};
///
/// let pool = Pool::new(2);
/// let squares = pool.map(|x: u64| { green::yield_now(); x * x }, 1..=4);
/// let squares: Vec<u64> = squares.into_iter().map(Result::unwrap).collect();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
#[derive(Clone)]
pub struct Pool {
    slots: Semaphore,
    group: Group,
    size: usize,
    /// The slot each member holds, by greenlet id, given back when it
    /// ends (a link) or leaves the pool (`discard`).
    held: Rc<RefCell<HashMap<u64, SemaphorePermit>>>,
}

impl Pool {
    /// A pool running at most `size` greenlets at once.
    ///
    /// # Panics
    ///
    /// If `size` is zero: such a pool could never run anything.
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "a Pool needs at least one slot");
        Pool { slots: Semaphore::new(size), group: Group::new(), size, held: Rc::default() }
    }

    /// Spawns `f` once a slot is free, blocking the calling greenlet until
    /// then. The slot is freed when the greenlet ends, however it ends.
    ///
    /// # Panics
    ///
    /// Unwinds if the caller is killed or its timeout expires while it
    /// waits for a slot (nothing is spawned then).
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        let slot = self.slots.acquire();
        let g = build(f);
        self.hold(&g, Some(slot));
        g.start();
        g
    }

    /// Makes `g` a member, holding `slot` until it ends or is discarded.
    fn hold<T>(&self, g: &Greenlet<T>, slot: Option<SemaphorePermit>) {
        let id = g.id();
        if let Some(slot) = slot {
            self.held.borrow_mut().insert(id, slot);
        }
        let held = Rc::downgrade(&self.held);
        // Runs as `g` ends, however (killed before it started too), before
        // anyone waiting for it wakes: they find the slot free.
        g.on_end(move || {
            let slot = held.upgrade().and_then(|h| h.borrow_mut().remove(&id));
            drop(slot);
        });
        self.group.add(g);
    }

    /// Adds a greenlet spawned elsewhere, waiting for a free slot first
    /// (gevent's `Pool.add`); it holds the slot until it ends or is
    /// [`discard`](Pool::discard)ed. A finished greenlet is ignored.
    ///
    /// ```
    /// use libev::green::{self, pool::Pool};
    ///
    /// let pool = Pool::new(1);
    /// let g = green::spawn(|| green::sleep(std::time::Duration::from_millis(1)));
    /// pool.add(&g);
    /// assert_eq!(pool.free_count(), 0);
    /// pool.join();
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    ///
    /// # Panics
    ///
    /// Unwinds if the caller is killed or times out while it waits.
    pub fn add<T>(&self, greenlet: &Greenlet<T>) {
        if greenlet.is_finished() || self.group.contains(greenlet.task()) {
            return;
        }
        let slot = self.slots.acquire();
        self.hold(greenlet, Some(slot));
    }

    /// Removes a greenlet from the pool without killing it, freeing its
    /// slot at once (gevent's `discard`); returns whether it was a member.
    ///
    /// ```
    /// use libev::green::{self, pool::Pool};
    ///
    /// let pool = Pool::new(1);
    /// let g = pool.spawn(|| green::sleep(std::time::Duration::from_secs(60)));
    /// assert!(pool.discard(&g));
    /// assert_eq!(pool.free_count(), 1, "its slot is free though it runs");
    /// g.kill();
    /// ```
    pub fn discard<T>(&self, greenlet: &Greenlet<T>) -> bool {
        let slot = self.held.borrow_mut().remove(&greenlet.id());
        drop(slot);
        self.group.discard(greenlet)
    }

    /// Kills one of the pool's greenlets and waits until it has ended
    /// (gevent's `killone`); its slot is free when this returns.
    ///
    /// ```
    /// use libev::green::{self, pool::Pool};
    ///
    /// let pool = Pool::new(1);
    /// let g = pool.spawn(|| green::sleep(std::time::Duration::from_secs(60)));
    /// pool.killone(&g);
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn killone<T>(&self, greenlet: &Greenlet<T>) {
        self.group.killone(greenlet)
    }

    /// Waits (at most `timeout`; `None`: no limit) until a slot is free
    /// (gevent's `wait_available`); returns whether one is. Another
    /// greenlet may take it before the caller spawns.
    ///
    /// ```
    /// use libev::green::{self, pool::Pool};
    /// use std::time::Duration;
    ///
    /// let pool = Pool::new(1);
    /// pool.spawn(|| green::sleep(Duration::from_millis(2)));
    /// assert!(!pool.wait_available(Some(Duration::ZERO)));
    /// assert!(pool.wait_available(None));
    /// ```
    pub fn wait_available(&self, timeout: Option<Duration>) -> bool {
        let slot = match timeout {
            None => Some(self.slots.acquire()),
            Some(t) => self.slots.acquire_timeout(t),
        };
        slot.is_some()
    }

    /// Runs `f` in the pool and waits for its result (gevent's `apply`).
    /// Called from one of the pool's own greenlets, it runs `f` inline,
    /// as gevent does: waiting for a slot there could wait for ever.
    ///
    /// ```
    /// use libev::green::pool::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let p = pool.clone();
    /// // The only slot is taken by the outer call; the inner one runs inline.
    /// let r = pool.apply(move || p.apply(|| 6 * 7).unwrap());
    /// assert_eq!(r.unwrap(), 42);
    /// ```
    ///
    /// # Panics
    ///
    /// Unwinds if the caller is killed or times out while it waits.
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Result<T, GreenletError> {
        if self.runs_current() {
            return match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                Ok(v) => Ok(v),
                Err(p) if super::greenlet::is_interrupt(&p) => std::panic::resume_unwind(p),
                Err(p) => Err(GreenletError::Panicked(p)),
            };
        }
        self.spawn(f).join()
    }

    /// Spawns `f` in the pool and returns its greenlet without waiting
    /// (gevent's `apply_async`). On a full pool the greenlet is a member
    /// at once but waits for a slot before it runs `f`; called from one of
    /// the pool's own greenlets while the pool is full, `f` runs at once
    /// on a greenlet outside the pool instead, as in gevent, rather than
    /// wait for a slot its caller may hold.
    ///
    /// ```
    /// use libev::green::pool::Pool;
    ///
    /// let pool = Pool::new(1);
    /// let a = pool.apply_async(|| 1);
    /// let b = pool.apply_async(|| 2); // the pool is full: returns at once
    /// assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 2));
    /// ```
    ///
    /// # Panics
    ///
    /// If no stack can be mapped for the greenlet.
    pub fn apply_async<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        if let Some(slot) = self.slots.try_acquire() {
            let g = build(f);
            self.hold(&g, Some(slot));
            g.start();
            return g;
        }
        if self.runs_current() {
            return super::spawn(f);
        }
        let pool = self.clone();
        let g = build(move || {
            let slot = pool.slots.acquire();
            let me = super::hub::with_hub(|h| h.current());
            // Discarded meanwhile: no longer the pool's, it holds no slot.
            if pool.group.contains(&me) {
                pool.held.borrow_mut().insert(me.id, slot);
            }
            f()
        });
        self.hold(&g, None);
        g.start();
        g
    }

    /// Whether the running greenlet is one of the pool's.
    fn runs_current(&self) -> bool {
        self.group.contains(&super::hub::with_hub(|h| h.current()))
    }

    /// The most greenlets that run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The number of slots free now.
    pub fn free_count(&self) -> usize {
        self.slots.available_permits()
    }

    /// The number of the pool's greenlets that have not finished.
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether none of the pool's greenlets is unfinished.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Blocks until every greenlet of the pool has finished.
    pub fn join(&self) {
        self.group.join()
    }

    /// As [`join`](Pool::join), for at most `timeout`; returns whether all
    /// finished.
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.group.join_timeout(timeout)
    }

    /// Kills every greenlet of the pool and waits until they have ended.
    pub fn kill(&self) {
        self.group.kill()
    }

    /// Kills every greenlet of the pool, waiting at most `timeout` for them
    /// to end (see [`Group::kill_timeout`]); returns whether all have.
    pub fn kill_timeout(&self, timeout: Duration) -> bool {
        self.group.kill_timeout(timeout)
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at a time,
    /// and returns the results in the order of the items.
    pub fn map<I, R, F>(&self, f: F, items: I) -> Vec<Result<R, GreenletError>>
    where
        I: IntoIterator,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + 'static,
    {
        let f = Rc::new(f);
        let greenlets: Vec<_> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        super::joinall(greenlets)
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at a time,
    /// yielding the results in the order of the items (gevent's `imap`).
    /// Items are taken from `items` as slots free up.
    ///
    /// ```
    /// use libev::green::pool::Pool;
    /// use libev::green;
    /// use std::time::Duration;
    ///
    /// let pool = Pool::new(3);
    /// let order: Vec<u64> = pool
    ///     .imap(|ms: u64| { green::sleep(Duration::from_millis(ms)); ms }, [20, 1, 10])
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(order, [20, 1, 10]);
    /// ```
    pub fn imap<I, R, F>(&self, f: F, items: I) -> Imap<I::IntoIter, R, F>
    where
        I: IntoIterator,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + 'static,
    {
        Imap { feed: Feed::new(self, f, items), running: VecDeque::new() }
    }

    /// Runs `f` on every item, at most [`size`](Pool::size) at a time,
    /// yielding each result as soon as it is ready (gevent's
    /// `imap_unordered`). Items are taken from `items` as slots free up.
    ///
    /// ```
    /// use libev::green::pool::Pool;
    /// use libev::green;
    /// use std::time::Duration;
    ///
    /// let pool = Pool::new(3);
    /// let order: Vec<u64> = pool
    ///     .imap_unordered(|ms: u64| { green::sleep(Duration::from_millis(ms)); ms }, [20, 1, 10])
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(order, [1, 10, 20]);
    /// ```
    pub fn imap_unordered<I, R, F>(&self, f: F, items: I) -> ImapUnordered<I::IntoIter, R, F>
    where
        I: IntoIterator,
        I::Item: 'static,
        R: 'static,
        F: Fn(I::Item) -> R + 'static,
    {
        ImapUnordered { feed: Feed::new(self, f, items), running: HashMap::new(), finished: Queue::new() }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).field("free", &self.free_count()).finish()
    }
}

/// A greenlet for the pool, not started.
#[track_caller]
fn build<T: 'static>(f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
    super::Builder::new().build(f).unwrap_or_else(|e| panic!("libev::green::Pool: no stack: {e}"))
}

/// What the `imap` iterators share: the items, the function, and the
/// pool they spawn into.
struct Feed<I, F> {
    pool: Pool,
    items: I,
    exhausted: bool,
    f: Rc<F>,
}

impl<I: Iterator, F> Feed<I, F> {
    fn new(pool: &Pool, f: F, items: impl IntoIterator<IntoIter = I>) -> Feed<I, F> {
        Feed { pool: pool.clone(), items: items.into_iter(), exhausted: false, f: Rc::new(f) }
    }

    /// Spawns the next item's greenlet if a slot is free now, or, when
    /// `idle` (nothing of the iterator runs), waits for one.
    fn next_greenlet<R: 'static>(&mut self, idle: bool) -> Option<Greenlet<R>>
    where
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
    {
        if self.exhausted || !(idle || self.pool.free_count() > 0) {
            return None;
        }
        let Some(item) = self.items.next() else {
            self.exhausted = true;
            return None;
        };
        let f = self.f.clone();
        Some(self.pool.spawn(move || f(item)))
    }
}

/// The iterator of [`Pool::imap`]. Dropping it early leaves the greenlets
/// it started running (kill them with [`Pool::kill`]).
pub struct Imap<I, R, F> {
    feed: Feed<I, F>,
    /// Started greenlets, in the order of their items.
    running: VecDeque<Greenlet<R>>,
}

impl<I, R, F> Iterator for Imap<I, R, F>
where
    I: Iterator,
    I::Item: 'static,
    R: 'static,
    F: Fn(I::Item) -> R + 'static,
{
    type Item = Result<R, GreenletError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(g) = self.feed.next_greenlet(self.running.is_empty()) {
            self.running.push_back(g);
        }
        Some(self.running.pop_front()?.join())
    }
}

impl<I, R, F> fmt::Debug for Imap<I, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap").field("running", &self.running.len()).finish_non_exhaustive()
    }
}

/// The iterator of [`Pool::imap_unordered`]. Dropping it early leaves the
/// greenlets it started running (kill them with [`Pool::kill`]).
pub struct ImapUnordered<I, R, F> {
    feed: Feed<I, F>,
    running: HashMap<u64, Greenlet<R>>,
    /// Ids of greenlets that ended, in the order they ended.
    finished: Queue<u64>,
}

impl<I, R, F> Iterator for ImapUnordered<I, R, F>
where
    I: Iterator,
    I::Item: 'static,
    R: 'static,
    F: Fn(I::Item) -> R + 'static,
{
    type Item = Result<R, GreenletError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(g) = self.feed.next_greenlet(self.running.is_empty()) {
            let id = g.id();
            let finished = self.finished.clone();
            g.link(move || finished.put(id));
            self.running.insert(id, g);
        }
        if self.running.is_empty() {
            return None;
        }
        let id = self.finished.get();
        let g = self.running.remove(&id).expect("a finished greenlet was started here");
        Some(g.join())
    }
}

impl<I, R, F> fmt::Debug for ImapUnordered<I, R, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered").field("running", &self.running.len()).finish_non_exhaustive()
    }
}
