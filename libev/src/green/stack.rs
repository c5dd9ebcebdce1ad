//! Greenlet stacks carved from large slabs, each with a guard page.
//!
//! A stack per `mmap` with an `mprotect`ed guard page costs two kernel
//! mappings, which caps a process near 32k greenlets at the default
//! `vm.max_map_count` (65530). Instead, stacks of one size come from slabs
//! of [`SLAB_STACKS`] stacks mapped at once (`MAP_NORESERVE`: memory is
//! committed only as pages are touched), and each stack's lowest page
//! becomes a guard with `madvise(MADV_GUARD_INSTALL)` (Linux 6.13+), which
//! faults on access without splitting the mapping. Where the kernel answers
//! `EINVAL` (older kernels, other systems) the guard falls back to
//! `mprotect(PROT_NONE)`.
//!
//! Slabs are never unmapped: a stack may be abandoned with a greenlet that
//! blocks forever, and something (a blocking-pool job writing a result)
//! may still write into it. Stacks are recycled instead: every greenlet
//! that ends, however it ends, gives its stack back to its hub's pool, and
//! a hub that goes (its thread exits) hands its pool to [`SPARE`], from
//! which later hubs take stacks before they map new slabs. Memory is thus
//! bounded by the most stacks in use at once, as a thread pool's is by its
//! most threads. Every slab is recorded in [`SLABS`], where the stack
//! overflow handler (`overflow.rs`) recognises its guard pages.

use corosensei::stack::{Stack, StackPointer};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Stacks per slab.
pub(crate) const SLAB_STACKS: usize = 64;

/// Stack tops are staggered within their page, by [`COLOR_STEP`] bytes
/// from one stack of a slab to the next, over [`COLORS`] offsets. Slots
/// are whole pages, so unstaggered tops would all sit at one offset in
/// their page, and the few cache lines every switch touches there (the
/// frames of the wait and of the switch) would all compete for the same
/// L1 sets: an 8-way, 32 KiB L1 holds those lines of at most 8 greenlets
/// at once, however few run. Each slot has one page more, so the
/// stagger takes nothing from the size asked for; the unused bytes above
/// a top are never touched, so it costs no memory either.
const COLORS: usize = 16;
const COLOR_STEP: usize = 64;

/// `MADV_GUARD_INSTALL` (Linux 6.13+); not in every libc crate yet.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Set once the kernel refused `MADV_GUARD_INSTALL`, to skip the attempt.
static NO_GUARD_ADVICE: AtomicBool = AtomicBool::new(false);

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// One greenlet stack: `[limit, limit + page)` is the guard, the stack
/// grows down from `base`.
#[derive(Debug)]
pub(crate) struct SlabStack {
    base: NonNull<u8>,
    limit: NonNull<u8>,
}

// SAFETY: base and limit bound a mapped, writable region (above a guard
// page that is part of [limit, base)) that stays mapped for the process's
// life (slabs are never unmapped) and belongs to this stack alone.
unsafe impl Stack for SlabStack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.base.as_ptr() as usize).expect("non-null")
    }
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.limit.as_ptr() as usize).expect("non-null")
    }
}

// SAFETY: a SlabStack is the exclusive right to use a region of memory
// that stays mapped for the process's life; nothing runs on it while a
// pool holds it, so handing it to another thread's hub (through SPARE)
// moves only that right.
unsafe impl Send for SlabStack {}

impl SlabStack {
    /// Gives the stack's touched pages back to the kernel (they read as
    /// zero afterwards); the guard page stays a guard.
    fn release_pages(&self) {
        let start = self.limit.as_ptr().wrapping_add(page_size());
        let len = self.base.as_ptr() as usize - start as usize;
        // SAFETY: [start, base) is this stack's usable part, inside a
        // mapping of ours, and nothing runs on the stack. MADV_DONTNEED
        // leaves guard markers in place; it fails only on bad arguments,
        // and then the pages just stay resident.
        unsafe { libc::madvise(start.cast(), len, libc::MADV_DONTNEED) };
    }
}

/// Stacks left by hubs whose threads exited, by stack size.
static SPARE: Mutex<Vec<(usize, SlabStack)>> = Mutex::new(Vec::new());

/// A stack of `size` bytes from the spare pool, if one is there.
pub(crate) fn take_spare(size: usize) -> Option<SlabStack> {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    let i = spare.iter().rposition(|(s, _)| *s == size)?;
    Some(spare.swap_remove(i).1)
}

/// Hands a departing hub's idle stacks to the spare pool, their memory
/// given back to the kernel first.
pub(crate) fn give_spare(stacks: Vec<(usize, SlabStack)>) {
    for (_, s) in &stacks {
        s.release_pages();
    }
    SPARE.lock().unwrap_or_else(|e| e.into_inner()).extend(stacks);
}

/// A mapped slab, as the overflow handler needs it: `count` slots of
/// `slot` bytes from `start`, each beginning with a guard page. Entries
/// are leaked and linked from [`SLABS`]; they are never freed or changed,
/// so a signal handler may walk the list.
pub(crate) struct SlabRecord {
    pub(crate) start: usize,
    pub(crate) slot: usize,
    pub(crate) count: usize,
    pub(crate) page: usize,
    next: *const SlabRecord,
}

/// The newest slab; each record links to the one mapped before it.
static SLABS: AtomicPtr<SlabRecord> = AtomicPtr::new(ptr::null_mut());

fn record_slab(start: usize, slot: usize, page: usize) {
    let rec = Box::leak(Box::new(SlabRecord { start, slot, count: SLAB_STACKS, page, next: ptr::null() }));
    let mut head = SLABS.load(Ordering::Acquire);
    loop {
        rec.next = head;
        match SLABS.compare_exchange_weak(head, rec, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// Whether `addr` lies in the guard page of a greenlet stack. Only reads
/// immutable, never-freed records: callable from a signal handler.
pub(crate) fn is_guard_page(addr: usize) -> bool {
    let mut p = SLABS.load(Ordering::Acquire).cast_const();
    while !p.is_null() {
        // SAFETY: records are leaked boxes, fully written before being
        // published with release ordering, and never changed or freed.
        let r = unsafe { &*p };
        if addr >= r.start && addr - r.start < r.slot * r.count {
            return (addr - r.start) % r.slot < r.page;
        }
        p = r.next;
    }
    false
}

fn too_large(stack_size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a greenlet stack of {stack_size} bytes is too large"),
    )
}

/// Rounds a requested stack size to whole pages, plus one guard page and
/// one page of room for the top's stagger ([`COLORS`]); fails if a slab
/// of such stacks would not fit the address space.
pub(crate) fn slot_size(stack_size: usize) -> io::Result<usize> {
    let page = page_size();
    stack_size
        .div_ceil(page)
        .checked_mul(page)
        .and_then(|s| s.checked_add(2 * page))
        .filter(|s| s.checked_mul(SLAB_STACKS).is_some_and(|len| len <= isize::MAX as usize))
        .ok_or_else(|| too_large(stack_size))
}

/// Maps a slab for stacks of `stack_size` and returns its stacks.
pub(crate) fn map_slab(stack_size: usize) -> io::Result<Vec<SlabStack>> {
    let page = page_size();
    let slot = slot_size(stack_size)?;
    // The stagger fits the page of room `slot_size` adds (pages are at
    // least 4 KiB wherever this runs; the SAFETY below relies on it).
    assert!(COLORS * COLOR_STEP < page, "a {page}-byte page cannot hold the stack-top stagger");
    let len = slot * SLAB_STACKS;
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing; no existing memory is affected.
    let mem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let mem = mem.cast::<u8>();
    let mut stacks = Vec::with_capacity(SLAB_STACKS);
    for i in 0..SLAB_STACKS {
        // SAFETY: slot i lies inside the mapping just made.
        let limit = unsafe { mem.add(i * slot) };
        if let Err(e) = guard(limit, page) {
            // SAFETY: unmaps exactly the mapping made above; no stack of it
            // has been handed out yet.
            unsafe { libc::munmap(mem.cast(), len) };
            return Err(e);
        }
        // SAFETY: still inside the mapping (the stagger is less than the
        // page of room `slot_size` adds, and keeps 16-byte alignment).
        let base = unsafe { limit.add(slot - (i % COLORS) * COLOR_STEP) };
        // SAFETY: the guard page's end, still inside the mapping.
        let usable = unsafe { limit.add(page) };
        super::valgrind::register_stack(usable, base);
        stacks.push(SlabStack {
            base: NonNull::new(base).expect("mapped"),
            limit: NonNull::new(limit).expect("mapped"),
        });
    }
    record_slab(mem as usize, slot, page);
    Ok(stacks)
}

/// Makes the page at `at` fault on any access.
fn guard(at: *mut u8, page: usize) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if !NO_GUARD_ADVICE.load(Ordering::Relaxed) {
        // SAFETY: `at` is a page of our own fresh mapping.
        if unsafe { libc::madvise(at.cast(), page, MADV_GUARD_INSTALL) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
        NO_GUARD_ADVICE.store(true, Ordering::Relaxed);
    }
    // SAFETY: as above; costs a split of the mapping.
    if unsafe { libc::mprotect(at.cast(), page, libc::PROT_NONE) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes later slabs use `mprotect` guards, as on kernels without
/// `MADV_GUARD_INSTALL` (for tests of that fallback).
#[cfg(test)]
pub(crate) fn force_mprotect_guards() {
    NO_GUARD_ADVICE.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slab_gives_distinct_guarded_stacks_in_one_mapping() {
        let advice = !NO_GUARD_ADVICE.load(Ordering::Relaxed);
        let stacks = map_slab(64 * 1024).unwrap();
        assert_eq!(stacks.len(), SLAB_STACKS);
        let slot = slot_size(64 * 1024).unwrap();
        for w in stacks.windows(2) {
            assert_eq!(w[1].limit.as_ptr() as usize - w[0].limit.as_ptr() as usize, slot);
        }
        // Each holds at least the size asked for, and the tops of
        // neighbours sit at different offsets in their pages.
        for (i, s) in stacks.iter().enumerate() {
            let usable = s.base.as_ptr() as usize - s.limit.as_ptr() as usize - page_size();
            assert!(usable >= 64 * 1024, "stack {i}: {usable} bytes");
            assert_eq!(s.base.as_ptr() as usize % 16, 0);
        }
        let offsets: std::collections::HashSet<usize> =
            stacks[..COLORS].iter().map(|s| s.base.as_ptr() as usize % page_size()).collect();
        assert_eq!(offsets.len(), COLORS);
        // The usable part is writable end to end.
        let s = &stacks[3];
        // SAFETY: the byte just below base and the byte just above the
        // guard page are inside this stack's usable range.
        unsafe {
            s.base.as_ptr().sub(1).write(7);
            s.limit.as_ptr().add(page_size()).write(9);
        }
        // The overflow handler knows the guard pages, and only them.
        let limit = s.limit.as_ptr() as usize;
        assert!(is_guard_page(limit) && is_guard_page(limit + page_size() - 1));
        assert!(!is_guard_page(limit + page_size()) && !is_guard_page(limit - 1));
        // With MADV_GUARD_INSTALL the whole slab stays one mapping (the
        // kernel may merge it with a neighbour, so look for a line that
        // covers it), where mprotect guards would split it per stack.
        if advice && !NO_GUARD_ADVICE.load(Ordering::Relaxed) {
            let (start, end) =
                (stacks[0].limit.as_ptr() as usize, stacks[SLAB_STACKS - 1].base.as_ptr() as usize);
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
            let covering = maps.lines().any(|l| {
                let range = l.split_whitespace().next().unwrap();
                let (a, b) = range.split_once('-').unwrap();
                let (a, b) = (usize::from_str_radix(a, 16).unwrap(), usize::from_str_radix(b, 16).unwrap());
                a <= start && end <= b
            });
            assert!(covering, "one mapping covers the slab");
        }
    }

    #[test]
    fn stack_sizes_that_overflow_the_arithmetic_are_refused() {
        for size in [usize::MAX, usize::MAX - 4095, isize::MAX as usize, usize::MAX / SLAB_STACKS] {
            let e = slot_size(size).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{size}");
            assert_eq!(map_slab(size).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(slot_size(1).unwrap(), 3 * page_size()); // stack, guard, stagger room
    }

    #[test]
    fn released_pages_read_as_zero_and_the_guard_stays() {
        let stacks = map_slab(16 * 1024).unwrap();
        let s = &stacks[5];
        // SAFETY: the byte below base is in the stack's usable range.
        unsafe { s.base.as_ptr().sub(1).write(42) };
        s.release_pages();
        // SAFETY: as above; the page is mapped again, zero-filled.
        assert_eq!(unsafe { s.base.as_ptr().sub(1).read() }, 0);
        assert!(is_guard_page(s.limit.as_ptr() as usize));
    }

    #[test]
    fn touching_the_guard_page_faults() {
        // Run in a child process: the fault kills it with SIGSEGV.
        let stacks = map_slab(16 * 1024).unwrap();
        let guard_page = stacks[1].limit.as_ptr();
        // SAFETY: fork in a test; the child only writes to memory and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: restores the default action (a sanitizer runtime may
            // have installed handlers), then deliberately touches the guard
            // page, which must fault.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
                guard_page.write_volatile(1);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child we just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert!(matches!(libc::WTERMSIG(status), libc::SIGSEGV | libc::SIGBUS));
    }
}
