//! The blocking monitor (`green::monitor`, gevent's `monitor_thread` with
//! `max_blocking_time`; behaviour as in gevent's
//! `src/gevent/tests/test__monitor.py`: a greenlet that blocks past the
//! threshold is reported once per episode, a hub that keeps switching or
//! waits in its loop is not).
//!
//! The report handler is process-wide: every test installs the same one,
//! which files reports by thread, and reads its own thread's (each test
//! runs on a thread named after it).

use libev::green::{self, Builder, monitor};
use std::collections::HashMap;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

static REPORTS: Mutex<Option<HashMap<String, Vec<monitor::BlockingReport>>>> = Mutex::new(None);

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        monitor::set_handler(|r| {
            let mut all = REPORTS.lock().unwrap();
            let key = r.thread_name.clone().unwrap_or_default();
            all.get_or_insert_with(HashMap::new).entry(key).or_default().push(r.clone());
        })
    });
}

/// The reports filed for the calling thread's hub so far.
fn mine() -> Vec<monitor::BlockingReport> {
    let me = std::thread::current().name().unwrap().to_owned();
    REPORTS.lock().unwrap().as_ref().and_then(|m| m.get(&me).cloned()).unwrap_or_default()
}

/// gevent's default; longer under valgrind, whose threads run slower and
/// one at a time, so that a hub that keeps switching is never mistaken for
/// a blocked one.
fn threshold() -> Duration {
    if std::env::var_os("LIBEV_UNDER_VALGRIND").is_some() {
        Duration::from_millis(400)
    } else {
        monitor::DEFAULT_MAX_BLOCKING_TIME
    }
}

#[test]
fn a_greenlet_blocking_its_thread_is_reported_once_with_where_it_was_spawned() {
    install();
    monitor::start(threshold()).unwrap();
    assert!(monitor::is_started());
    let line = line!() + 1;
    let g = Builder::new().name("sleeper").spawn(|| std::thread::sleep(3 * threshold())).unwrap();
    let id = g.id();
    g.join().unwrap();
    // A second, shorter block in another episode is reported on its own.
    let h = green::spawn(|| std::thread::sleep(2 * threshold()));
    let h_id = h.id();
    h.join().unwrap();
    monitor::stop();
    let reports = mine();
    assert_eq!(reports.len(), 2, "one report per episode: {reports:?}");
    let r = &reports[0];
    assert_eq!((r.greenlet_id, r.greenlet_name.as_deref()), (id, Some("sleeper")));
    let at = r.spawned_at.expect("a spawned greenlet has a location");
    assert_eq!((at.file(), at.line()), (file!(), line));
    assert!(r.blocked_for >= threshold(), "{:?}", r.blocked_for);
    assert!(r.to_string().contains("sleeper"), "{r}");
    assert_eq!((reports[1].greenlet_id, reports[1].greenlet_name.as_deref()), (h_id, None));
}

#[test]
fn a_greenlet_that_yields_every_millisecond_is_not_reported() {
    install();
    monitor::start(threshold()).unwrap();
    let busy = green::spawn(|| {
        let end = Instant::now() + 3 * threshold();
        while Instant::now() < end {
            let slice = Instant::now() + Duration::from_millis(1);
            while Instant::now() < slice {
                std::hint::spin_loop();
            }
            green::yield_now();
        }
    });
    // Another greenlet that sleeps in the loop meanwhile.
    let sleeper = green::spawn(|| green::sleep(threshold()));
    busy.join().unwrap();
    sleeper.join().unwrap();
    monitor::stop();
    assert!(mine().is_empty(), "{:?}", mine());
}

#[test]
fn a_hub_waiting_in_its_loop_is_idle_not_blocked() {
    install();
    monitor::start(threshold()).unwrap();
    green::sleep(3 * threshold());
    let g = green::spawn(|| green::sleep(2 * threshold()));
    g.join().unwrap();
    monitor::stop();
    assert!(mine().is_empty(), "{:?}", mine());
}

#[test]
fn the_root_blocking_is_reported_as_the_root() {
    install();
    monitor::start(threshold()).unwrap();
    std::thread::sleep(3 * threshold());
    green::yield_now();
    monitor::stop();
    let reports = mine();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    assert_eq!((r.greenlet_id, r.greenlet_name.as_deref(), r.spawned_at), (0, Some("root"), None));
}

#[test]
fn a_stopped_monitor_reports_nothing_and_a_zero_threshold_is_refused() {
    install();
    assert_eq!(monitor::start(Duration::ZERO).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    monitor::start(threshold()).unwrap();
    monitor::stop();
    assert!(!monitor::is_started());
    green::spawn(|| std::thread::sleep(2 * threshold())).join().unwrap();
    assert!(mine().is_empty(), "{:?}", mine());
}

#[test]
fn start_from_inside_a_greenlet_reports_that_greenlet() {
    install();
    let g = green::spawn(|| {
        monitor::start(threshold()).unwrap();
        std::thread::sleep(3 * threshold());
        green::current().id
    });
    let id = g.join().unwrap();
    monitor::stop();
    let reports = mine();
    assert_eq!(reports.iter().map(|r| r.greenlet_id).collect::<Vec<_>>(), [id], "{reports:?}");
}
