//! `set_allocator` (libev's `ev_set_allocator`). Its own test binary: it
//! must run before any loop of the process exists.

use libev::{Loop, Timer, TimerArray};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Duration;

/// Counts what goes through it, then hands over to the system allocator.
struct Counting {
    live: AtomicIsize,
    calls: AtomicUsize,
}

// SAFETY: forwards every call to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.live.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

static COUNTING: Counting = Counting { live: AtomicIsize::new(0), calls: AtomicUsize::new(0) };

#[test]
fn libevs_memory_goes_through_the_allocator_and_comes_back() {
    libev::set_allocator(&COUNTING).unwrap();
    // Setting it again before any loop is fine.
    libev::set_allocator(&COUNTING).unwrap();
    {
        let lp = Loop::new().unwrap();
        // Enough timers to make libev grow its heap (realloc) a few times.
        let timers = TimerArray::new(&lp, 10_000, |_, _, _| {});
        for i in 0..timers.len() {
            timers.set(i, Duration::from_secs(60 + i as u64), Duration::ZERO);
            timers.start(i);
        }
        let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
        t.start();
        lp.run_once();
        assert!(COUNTING.calls.load(Ordering::Relaxed) >= 3, "libev allocated through it");
        assert!(COUNTING.live.load(Ordering::Relaxed) > 10_000 * 8, "the timer heap is in it");
    }
    assert_eq!(COUNTING.live.load(Ordering::Relaxed), 0, "all of it given back");
    let err = libev::set_allocator(&System).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceBusy);
}
