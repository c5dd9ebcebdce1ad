//! Greenlet-local storage (`green_local!`, gevent's `gevent.local.local`),
//! with cases from gevent's `src/gevent/tests/test__local.py`:
//! `test_objects` (each greenlet sees its own value),
//! `test_locals_collected_when_greenlet_dead_but_still_referenced` (values
//! are dropped when their greenlet ends, though its handle lives on), and
//! what `thread_local!` promises (lazy creation, a value per greenlet
//! including the root), plus kills and destructors.

use libev::green::{self, GreenletError};
use libev::green_local;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    static CREATED: Cell<u32> = const { Cell::new(0) };
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Counts its creations and records its drops.
struct Sentinel(Cell<u32>);

impl Sentinel {
    fn new() -> Sentinel {
        CREATED.with(|c| c.set(c.get() + 1));
        Sentinel(Cell::new(0))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        DROPPED.with(|d| d.borrow_mut().push(self.0.get()));
    }
}

green_local! {
    static SENTINEL: Sentinel = Sentinel::new();
    /// A plain counter.
    pub(crate) static COUNT: Cell<u32> = Cell::new(0);
}

fn dropped() -> Vec<u32> {
    DROPPED.with(|d| d.borrow().clone())
}

/// `test_objects`: each greenlet sees its own value, and the root its own.
#[test]
fn each_greenlet_has_its_own_value_made_lazily() {
    let gs: Vec<_> = (1..=3)
        .map(|i| {
            green::spawn(move || {
                COUNT.with(|c| c.set(c.get() + i));
                green::sleep(Duration::from_millis(1));
                COUNT.with(Cell::get)
            })
        })
        .collect();
    COUNT.with(|c| c.set(100));
    let got: Vec<u32> = gs.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(COUNT.with(Cell::get), 100);
    // Lazily: a greenlet that never uses the key creates nothing.
    let before = CREATED.with(Cell::get);
    green::spawn(|| ()).join().unwrap();
    assert_eq!(CREATED.with(Cell::get), before);
}

/// `test_locals_collected_when_greenlet_dead_but_still_referenced`: five
/// greenlets touch the local and end; their values are dropped though
/// their handles live, before their joiners resume.
#[test]
fn values_are_dropped_when_their_greenlet_ends() {
    let before = CREATED.with(Cell::get);
    let gs: Vec<_> = (0..5)
        .map(|i| {
            green::spawn(move || {
                SENTINEL.with(|s| s.0.set(i));
                green::yield_now();
            })
        })
        .collect();
    for g in &gs {
        assert!(g.wait(None));
    }
    assert_eq!(CREATED.with(Cell::get) - before, 5);
    let mut d = dropped();
    d.sort();
    assert_eq!(d, [0, 1, 2, 3, 4]);
    drop(gs);
}

/// A killed greenlet's values are dropped too, on its way out, and a
/// panicking one's.
#[test]
fn values_are_dropped_when_the_greenlet_is_killed_or_panics() {
    let killed = green::spawn(|| {
        SENTINEL.with(|s| s.0.set(7));
        green::sleep(Duration::from_secs(60));
    });
    green::yield_now();
    killed.kill();
    assert!(matches!(killed.join(), Err(GreenletError::Killed)));
    assert_eq!(dropped(), [7]);
    let panicked = green::spawn(|| {
        SENTINEL.with(|s| s.0.set(8));
        panic!("boom");
    });
    assert!(matches!(panicked.join(), Err(GreenletError::Panicked(_))));
    assert_eq!(dropped(), [7, 8]);
}

green_local! {
    static REENTER: RefCell<Option<Reenter>> = RefCell::new(None);
    static OTHER: Cell<u32> = Cell::new(0);
}

/// Its destructor tries another key and its own, and records whether each
/// was refused, and the error's text.
struct Reenter(Rc<RefCell<Vec<(bool, bool)>>>, Rc<RefCell<String>>);

impl Drop for Reenter {
    fn drop(&mut self) {
        let other = OTHER.try_with(Cell::get);
        let own = REENTER.try_with(|_| ());
        if let Err(e) = own {
            *self.1.borrow_mut() = e.to_string();
        }
        self.0.borrow_mut().push((other.is_err(), own.is_err()));
    }
}

/// A destructor cannot reach its greenlet's values once they are being
/// dropped: `try_with` says so (as `LocalKey::try_with` during thread
/// exit), for its own key and the others.
#[test]
fn a_destructor_cannot_reach_values_being_dropped() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let text = Rc::new(RefCell::new(String::new()));
    let (l, t) = (log.clone(), text.clone());
    green::spawn(move || {
        OTHER.with(|o| o.set(3));
        REENTER.with(|r| *r.borrow_mut() = Some(Reenter(l, t)));
    })
    .join()
    .unwrap();
    assert_eq!(*log.borrow(), [(true, true)], "both refused");
    assert!(text.borrow().contains("being dropped"), "{}", text.borrow());
}

/// A value is reachable from nested `with` calls of other keys, and from
/// an initialiser that uses another key.
#[test]
fn nested_use_of_several_keys() {
    green_local! {
        static A: Cell<u32> = Cell::new(COUNT.with(Cell::get) + 1);
    }
    green::spawn(|| {
        COUNT.with(|c| {
            c.set(41);
            A.with(|a| assert_eq!(a.get(), 42));
            assert_eq!(c.get(), 41);
        })
    })
    .join()
    .unwrap();
}

green_local! {
    static ROOT_VALUE: RefCell<Option<SendFlag>> = RefCell::new(None);
}

/// Sets its flag when dropped.
struct SendFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for SendFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The root's values are dropped when the thread's hub is torn down.
#[test]
fn the_roots_values_are_dropped_with_the_hub() {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        ROOT_VALUE.with(|v| *v.borrow_mut() = Some(SendFlag(f)));
        green::sleep(Duration::from_millis(1));
    })
    .join()
    .unwrap();
    assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
}
