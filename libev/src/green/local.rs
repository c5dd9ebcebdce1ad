//! Greenlet-local storage: [`green_local!`](crate::green_local) and
//! [`GreenLocal`] (gevent's `gevent.local.local`), mirroring std's
//! `thread_local!` and `LocalKey`.
//!
//! Each greenlet (and the thread's own stack, the root) has its own value
//! of each key, created by the key's initialiser on the first
//! [`with`](GreenLocal::with) in that greenlet. A greenlet's values are
//! dropped on its own stack when its body ends, however it ends (returned,
//! panicked, killed, timed out), before its joiners are woken and its
//! links run; the root's are dropped when the thread's hub is torn down.
//! A destructor may use green calls (a kill still pending makes them
//! unwind, as everywhere) but not its greenlet's local values, which are
//! being dropped: [`try_with`](GreenLocal::try_with) fails there, and
//! [`with`](GreenLocal::with) panics.

use super::hub::{hub_gone, with_hub};
use super::task::Task;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

/// A key for greenlet-local values of type `T`, made by
/// [`green_local!`](crate::green_local): each greenlet reaches its own
/// value through [`with`](GreenLocal::with).
pub struct GreenLocal<T: 'static> {
    init: fn() -> T,
    // `fn() -> T`: the key holds no `T`, so it is `Sync` for any `T` (a
    // static), while the values never leave their thread.
    _values: PhantomData<fn() -> T>,
}

/// The error of [`GreenLocal::try_with`] while the calling greenlet's
/// values are being dropped (and the key's value with them), or once the
/// thread's hub is gone (from a thread-local destructor at thread exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccessError;

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a greenlet-local value was accessed while the greenlet's values were being dropped")
    }
}

impl std::error::Error for AccessError {}

/// One greenlet's values, by key.
#[derive(Default)]
pub(crate) struct Locals {
    values: RefCell<Vec<(usize, Box<dyn Any>)>>,
    /// Set once its values are being dropped: no new ones.
    closed: std::cell::Cell<bool>,
}

impl<T: 'static> GreenLocal<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> GreenLocal<T> {
        GreenLocal { init, _values: PhantomData }
    }

    /// Runs `f` with the calling greenlet's value, creating it first if
    /// needed (as `LocalKey::with`).
    ///
    /// # Panics
    ///
    /// If the greenlet's values are being dropped (see
    /// [`try_with`](GreenLocal::try_with)), or if the initialiser panics.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.try_with(f).unwrap_or_else(|e| panic!("libev::green: {e}"))
    }

    /// [`with`](GreenLocal::with), but an [`AccessError`] instead of a
    /// panic while the calling greenlet's values are being dropped.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, AccessError> {
        // The thread's hub (and with it every greenlet's values) is gone
        // once torn down: from a thread-local destructor that runs later.
        if hub_gone() {
            return Err(AccessError);
        }
        let me = with_hub(|hub| hub.current());
        let value = self.value_of(&me)?;
        // SAFETY: the value is boxed in `me`'s table, which drops it only
        // when `me`'s values are dropped (`drop_locals`), and that runs on
        // `me`'s own stack after its body, or at hub teardown for the root:
        // never while this frame, also on `me`'s stack, is alive. Entries
        // added meanwhile move the box pointers, not the boxes.
        Ok(f(unsafe { &*value }))
    }

    /// The key's value in `task`'s table, created if missing.
    fn value_of(&'static self, task: &Task) -> Result<*const T, AccessError> {
        let key = self as *const Self as usize;
        let locals = &task.locals;
        if locals.closed.get() {
            return Err(AccessError);
        }
        if let Some(v) = find::<T>(locals, key) {
            return Ok(v);
        }
        // Not borrowed while the initialiser runs: it may use other keys.
        let fresh: Box<dyn Any> = Box::new((self.init)());
        if locals.closed.get() {
            return Err(AccessError);
        }
        // The initialiser may have set this very key (through `with`):
        // keep the first value, as std does not promise either way.
        if let Some(v) = find::<T>(locals, key) {
            drop(fresh);
            return Ok(v);
        }
        let ptr = fresh.downcast_ref::<T>().expect("a key's value has its type") as *const T;
        locals.values.borrow_mut().push((key, fresh));
        Ok(ptr)
    }
}

/// `LocalKey`'s shortcuts for a `Cell` value.
impl<T: 'static> GreenLocal<Cell<T>> {
    /// Sets the calling greenlet's value.
    ///
    /// ```
    /// use libev::green_local;
    /// use std::cell::Cell;
    ///
    /// green_local!(static N: Cell<u32> = Cell::new(1));
    /// N.set(5);
    /// assert_eq!(N.get(), 5);
    /// assert_eq!(N.replace(6), 5);
    /// assert_eq!(N.take(), 6);
    /// assert_eq!(N.get(), 0);
    /// ```
    pub fn set(&'static self, value: T) {
        self.with(|c| c.set(value))
    }

    /// A copy of the calling greenlet's value.
    pub fn get(&'static self) -> T
    where
        T: Copy,
    {
        self.with(Cell::get)
    }

    /// Takes the calling greenlet's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(Cell::take)
    }

    /// Replaces the calling greenlet's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

/// `LocalKey`'s shortcuts for a `RefCell` value.
impl<T: 'static> GreenLocal<RefCell<T>> {
    /// Runs `f` with a shared borrow of the calling greenlet's value.
    ///
    /// ```
    /// use libev::green_local;
    /// use std::cell::{Cell, RefCell};
    ///
    /// green_local!(static LOG: RefCell<Vec<u32>> = RefCell::new(Vec::new()));
    /// LOG.with_borrow_mut(|l| l.push(1));
    /// assert_eq!(LOG.with_borrow(|l| l.len()), 1);
    /// LOG.set(vec![2, 3]);
    /// assert_eq!(LOG.take(), [2, 3]);
    /// ```
    ///
    /// # Panics
    ///
    /// If the value is mutably borrowed.
    pub fn with_borrow<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.with(|c| f(&c.borrow()))
    }

    /// Runs `f` with a mutable borrow of the calling greenlet's value.
    ///
    /// # Panics
    ///
    /// If the value is borrowed.
    pub fn with_borrow_mut<R>(&'static self, f: impl FnOnce(&mut T) -> R) -> R {
        self.with(|c| f(&mut c.borrow_mut()))
    }

    /// Sets the calling greenlet's value.
    pub fn set(&'static self, value: T) {
        self.with(|c| *c.borrow_mut() = value)
    }

    /// Takes the calling greenlet's value, leaving `T::default()`.
    pub fn take(&'static self) -> T
    where
        T: Default,
    {
        self.with(RefCell::take)
    }

    /// Replaces the calling greenlet's value, returning the old one.
    pub fn replace(&'static self, value: T) -> T {
        self.with(|c| c.replace(value))
    }
}

fn find<T: 'static>(locals: &Locals, key: usize) -> Option<*const T> {
    let values = locals.values.borrow();
    let (_, v) = values.iter().find(|(k, _)| *k == key)?;
    Some(v.downcast_ref::<T>().expect("a key's value has its type") as *const T)
}

impl<T: 'static> fmt::Debug for GreenLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenLocal").finish_non_exhaustive()
    }
}

/// Drops `task`'s values (the last one created first, as std drops
/// thread-locals in no promised order either), and refuses new ones. A
/// destructor's panic is handed to `on_panic`; the others still run.
pub(crate) fn drop_locals(task: &Task, mut on_panic: impl FnMut(crate::PanicPayload)) {
    let locals = &task.locals;
    if locals.values.borrow().is_empty() {
        locals.closed.set(true);
        return;
    }
    locals.closed.set(true);
    loop {
        let next = locals.values.borrow_mut().pop();
        let Some((_, value)) = next else { break };
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(value))) {
            on_panic(p);
        }
    }
}

/// Declares greenlet-local keys, as `thread_local!` declares thread-local
/// ones: each `static NAME: T = init;` becomes a
/// [`GreenLocal<T>`](crate::green::GreenLocal), and each greenlet gets its
/// own value, made by `init` on its first use (gevent's
/// `gevent.local.local`).
///
/// ```
/// use libev::{green, green_local};
/// use std::cell::Cell;
///
/// green_local! {
///     /// How many requests this greenlet served.
///     static SERVED: Cell<u32> = Cell::new(0);
/// }
///
/// let g = green::spawn(|| {
///     SERVED.with(|s| s.set(s.get() + 5));
///     SERVED.with(Cell::get)
/// });
/// SERVED.with(|s| s.set(1));
/// assert_eq!(g.join().unwrap(), 5);
/// assert_eq!(SERVED.with(Cell::get), 1, "the root has its own");
/// ```
#[macro_export]
macro_rules! green_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::green_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::green_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::green::GreenLocal<$t> = $crate::green::GreenLocal::new({
            fn __green_local_init() -> $t {
                $init
            }
            __green_local_init
        });
    };
}
