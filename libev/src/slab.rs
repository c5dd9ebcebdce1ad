//! A per-loop slab for watcher nodes.
//!
//! Watcher nodes are small and short-lived (a server creates an io watcher
//! and a timer per connection). The global allocator would place a
//! cache-line-aligned 64-byte node on a 192-byte stride (glibc's
//! `memalign`), tripling the memory a loop with many timers walks. Nodes of
//! up to 64 or 128 bytes come from here instead: 64-byte-aligned slots in
//! 8 KiB chunks, recycled through an intrusive free list. Chunks go back to
//! the system when the loop is destroyed; nodes hold their loop, so no node
//! can outlive its slab (cleanup watchers, which hold the loop weakly, use
//! the global allocator).

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};

/// Slot alignment: one cache line.
const ALIGN: usize = 64;
/// Bytes per chunk.
const CHUNK: usize = 8192;

/// One size class.
struct Class {
    slot: usize,
    /// Head of the free list; each free slot starts with the next pointer.
    free: Cell<*mut u8>,
    chunks: RefCell<Vec<NonNull<u8>>>,
}

impl Class {
    const fn new(slot: usize) -> Class {
        Class { slot, free: Cell::new(ptr::null_mut()), chunks: RefCell::new(Vec::new()) }
    }

    #[inline]
    fn alloc(&self) -> NonNull<u8> {
        let head = self.free.get();
        if let Some(slot) = NonNull::new(head) {
            // SAFETY: a free slot stores the next free slot's address.
            self.free.set(unsafe { head.cast::<*mut u8>().read() });
            return slot;
        }
        self.refill()
    }

    #[cold]
    fn refill(&self) -> NonNull<u8> {
        let layout = Layout::from_size_align(CHUNK, ALIGN).expect("valid chunk layout");
        // SAFETY: the layout has a non-zero size.
        let chunk = NonNull::new(unsafe { alloc::alloc(layout) })
            .unwrap_or_else(|| alloc::handle_alloc_error(layout));
        self.chunks.borrow_mut().push(chunk);
        // Hand out the first slot; thread the rest onto the free list.
        let base = chunk.as_ptr();
        let n = CHUNK / self.slot;
        for i in (1..n).rev() {
            // SAFETY: slot `i` lies inside the chunk and is aligned for a pointer.
            unsafe {
                let slot = base.add(i * self.slot);
                slot.cast::<*mut u8>().write(self.free.get());
                self.free.set(slot);
            }
        }
        chunk
    }

    /// # Safety
    ///
    /// `p` came from this class's `alloc` and is not used afterwards.
    #[inline]
    unsafe fn free(&self, p: NonNull<u8>) {
        // SAFETY: the slot is ours again; its first word links the list.
        unsafe { p.as_ptr().cast::<*mut u8>().write(self.free.get()) };
        self.free.set(p.as_ptr());
    }
}

impl Drop for Class {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(CHUNK, ALIGN).expect("valid chunk layout");
        for chunk in self.chunks.get_mut().drain(..) {
            // SAFETY: allocated in `refill` with this layout.
            unsafe { alloc::dealloc(chunk.as_ptr(), layout) };
        }
    }
}

/// The slab: size classes of 64 and 128 bytes.
pub(crate) struct Slab {
    small: Class,
    large: Class,
}

impl Slab {
    pub(crate) const fn new() -> Slab {
        Slab { small: Class::new(64), large: Class::new(128) }
    }

    fn class(&self, layout: Layout) -> Option<&Class> {
        if layout.align() > ALIGN {
            None
        } else if layout.size() <= self.small.slot {
            Some(&self.small)
        } else if layout.size() <= self.large.slot {
            Some(&self.large)
        } else {
            None
        }
    }

    /// Memory for `layout`: a slab slot if one fits, else the global
    /// allocator's.
    #[inline]
    pub(crate) fn alloc(&self, layout: Layout) -> NonNull<u8> {
        match self.class(layout) {
            Some(c) => c.alloc(),
            // SAFETY: node layouts are never zero-sized (they hold a watcher).
            None => NonNull::new(unsafe { alloc::alloc(layout) })
                .unwrap_or_else(|| alloc::handle_alloc_error(layout)),
        }
    }

    /// # Safety
    ///
    /// `p` came from `self.alloc(layout)` with the same layout, and is not
    /// used afterwards.
    #[inline]
    pub(crate) unsafe fn free(&self, p: NonNull<u8>, layout: Layout) {
        match self.class(layout) {
            // SAFETY: forwarded from the caller.
            Some(c) => unsafe { c.free(p) },
            // SAFETY: forwarded from the caller.
            None => unsafe { alloc::dealloc(p.as_ptr(), layout) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_distinct_and_recycled() {
        let slab = Slab::new();
        let small = Layout::from_size_align(40, 8).unwrap();
        let large = Layout::from_size_align(100, 64).unwrap();
        let huge = Layout::from_size_align(500, 8).unwrap();
        let mut seen = std::collections::HashSet::new();
        let ps: Vec<_> = (0..1000).map(|_| slab.alloc(small)).collect();
        for p in &ps {
            assert_eq!(p.as_ptr() as usize % ALIGN, 0);
            assert!(seen.insert(p.as_ptr() as usize), "slot handed out twice");
        }
        // Consecutive slots are packed at the class stride.
        let packed = ps
            .windows(2)
            .filter(|w| (w[1].as_ptr() as isize).wrapping_sub(w[0].as_ptr() as isize) == 64)
            .count();
        assert!(packed > 900, "{packed}");
        let last = *ps.last().unwrap();
        // SAFETY: from this slab with this layout; not used again.
        unsafe { slab.free(last, small) };
        assert_eq!(slab.alloc(small), last, "freed slot reused first");
        let l = slab.alloc(large);
        assert_eq!(l.as_ptr() as usize % ALIGN, 0);
        let h = slab.alloc(huge);
        // SAFETY: from this slab with these layouts; not used again.
        unsafe {
            slab.free(l, large);
            slab.free(h, huge);
            for p in ps {
                slab.free(p, small);
            }
        }
    }
}
