//! [`Pool`] and [`Group`]: running and waiting for many greenlets
//! (gevent's `gevent.pool`).

use super::greenlet::{Greenlet, GreenletError, send_kill, wait_done};
use super::sync::{Queue, Semaphore};
use super::task::Task;
use super::with_timeout;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
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
        while let Some(members) = self.send_kills(true) {
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
            while let Some(members) = self.send_kills(false) {
                for t in &members {
                    wait_done(t);
                }
            }
        });
        self.is_empty()
    }

    /// Sends every unfinished member its kill (the caller's own last:
    /// it unwinds) and returns them; `None` if there were none. `take`:
    /// they leave the set at once, not as they end.
    fn send_kills(&self, take: bool) -> Option<Vec<Rc<Task>>> {
        let members: Vec<Rc<Task>> = if take {
            std::mem::take(&mut *self.inner.members.borrow_mut())
        } else {
            self.inner.members.borrow().iter().filter(|t| !t.ended()).cloned().collect()
        };
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
}

impl Pool {
    /// A pool running at most `size` greenlets at once.
    ///
    /// # Panics
    ///
    /// If `size` is zero: such a pool could never run anything.
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "a Pool needs at least one slot");
        Pool { slots: Semaphore::new(size), group: Group::new(), size }
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
        self.group.spawn(move || {
            // Dropped when `f` returns or unwinds, or with the closure if
            // the greenlet is killed before it starts.
            let _slot = slot;
            f()
        })
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
        ImapUnordered {
            pool: self.clone(),
            items: items.into_iter(),
            exhausted: false,
            f: Rc::new(f),
            running: HashMap::new(),
            finished: Queue::new(),
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("size", &self.size).field("free", &self.free_count()).finish()
    }
}

/// The iterator of [`Pool::imap_unordered`]. Dropping it early leaves the
/// greenlets it started running (kill them with [`Pool::kill`]).
pub struct ImapUnordered<I, R, F> {
    pool: Pool,
    items: I,
    exhausted: bool,
    f: Rc<F>,
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
        // Start what fits now; with nothing running, wait for a slot.
        while !self.exhausted && (self.running.is_empty() || self.pool.free_count() > 0) {
            let Some(item) = self.items.next() else {
                self.exhausted = true;
                break;
            };
            let f = self.f.clone();
            let g = self.pool.spawn(move || f(item));
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
