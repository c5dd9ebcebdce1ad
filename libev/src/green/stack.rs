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
//! Slabs are never unmapped: their stacks are recycled through the hub's
//! pool, like a thread pool keeps its threads.

use corosensei::stack::{Stack, StackPointer};
use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stacks per slab.
pub(crate) const SLAB_STACKS: usize = 64;

/// `MADV_GUARD_INSTALL` (Linux 6.13+); not in every libc crate yet.
#[cfg(any(target_os = "linux", target_os = "android"))]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Set once the kernel refused `MADV_GUARD_INSTALL`, to skip the attempt.
static NO_GUARD_ADVICE: AtomicBool = AtomicBool::new(false);

fn page_size() -> usize {
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

/// Rounds a requested stack size to whole pages, plus one guard page.
pub(crate) fn slot_size(stack_size: usize) -> usize {
    let page = page_size();
    stack_size.div_ceil(page) * page + page
}

/// Maps a slab for stacks of `stack_size` and returns its stacks.
pub(crate) fn map_slab(stack_size: usize) -> io::Result<Vec<SlabStack>> {
    let page = page_size();
    let slot = slot_size(stack_size);
    let len = slot * SLAB_STACKS;
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing; no existing memory is affected.
    let mem = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
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
        // SAFETY: still inside the mapping.
        let base = unsafe { limit.add(slot) };
        // SAFETY: the guard page's end, still inside the mapping.
        let usable = unsafe { limit.add(page) };
        super::valgrind::register_stack(usable, base);
        stacks.push(SlabStack {
            base: NonNull::new(base).expect("mapped"),
            limit: NonNull::new(limit).expect("mapped"),
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slab_gives_distinct_guarded_stacks_in_one_mapping() {
        let stacks = map_slab(64 * 1024).unwrap();
        assert_eq!(stacks.len(), SLAB_STACKS);
        let slot = slot_size(64 * 1024);
        for w in stacks.windows(2) {
            assert_eq!(w[1].limit.as_ptr() as usize - w[0].limit.as_ptr() as usize, slot);
        }
        // The usable part is writable end to end.
        let s = &stacks[3];
        // SAFETY: the byte just below base and the byte just above the
        // guard page are inside this stack's usable range.
        unsafe {
            s.base.as_ptr().sub(1).write(7);
            s.limit.as_ptr().add(page_size()).write(9);
        }
        // With MADV_GUARD_INSTALL the whole slab stays one mapping (the
        // kernel may merge it with a neighbour, so look for a line that
        // covers it), where mprotect guards would split it per stack.
        if !NO_GUARD_ADVICE.load(Ordering::Relaxed) {
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
