//! A per-loop slab for watcher nodes.
//!
//! Watcher nodes are small and short-lived (a server creates an io watcher
//! and a timer per connection). The global allocator would place a 48-byte
//! node on a 64-byte stride (its chunk header), a third more memory for a
//! loop with many timers to walk. Nodes of up to 48, 64 or 128 bytes come
//! from here instead: slots packed at those strides in 8 KiB chunks (48-byte
//! slots 16-byte aligned, like an array of C's `ev_timer`s, the others on a
//! cache line), recycled through an intrusive free list. Chunks go back to
//! the system when the loop is destroyed; nodes hold their loop, so no node
//! can outlive its slab (cleanup watchers, which hold the loop weakly, use
//! the global allocator).

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};

/// Chunk alignment: one cache line. A slot is aligned to the largest power
/// of two that divides its size, up to this.
const ALIGN: usize = 64;
/// Bytes per chunk.
const CHUNK: usize = 8192;

/// One size class.
struct Class {
    slot: usize,
    /// What every slot's address is a multiple of.
    align: usize,
    /// Head of the free list; each free slot starts with the next pointer.
    free: Cell<*mut u8>,
    chunks: RefCell<Vec<NonNull<u8>>>,
}

impl Class {
    const fn new(slot: usize) -> Class {
        let align = if slot.is_multiple_of(ALIGN) { ALIGN } else { 1 << slot.trailing_zeros() };
        Class { slot, align, free: Cell::new(ptr::null_mut()), chunks: RefCell::new(Vec::new()) }
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

/// The slab: size classes of 48, 64 and 128 bytes.
pub(crate) struct Slab {
    small: Class,
    medium: Class,
    large: Class,
}

impl Slab {
    pub(crate) const fn new() -> Slab {
        Slab { small: Class::new(48), medium: Class::new(64), large: Class::new(128) }
    }

    #[inline]
    fn class(&self, layout: Layout) -> Option<&Class> {
        let fits = |c: &Class| layout.size() <= c.slot && layout.align() <= c.align;
        [&self.small, &self.medium, &self.large].into_iter().find(|c| fits(c))
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

    /// Allocates 1,000 slots of `layout`, checks their alignment, that
    /// they are distinct and mostly packed at `stride`, and frees them.
    fn check_class(layout: Layout, align: usize, stride: isize) {
        let slab = Slab::new();
        let mut seen = std::collections::HashSet::new();
        let ps: Vec<_> = (0..1000).map(|_| slab.alloc(layout)).collect();
        for p in &ps {
            assert_eq!(p.as_ptr() as usize % align, 0, "{layout:?}");
            assert!(seen.insert(p.as_ptr() as usize), "slot handed out twice");
        }
        // Consecutive slots are packed at the class stride.
        let packed = ps
            .windows(2)
            .filter(|w| (w[1].as_ptr() as isize).wrapping_sub(w[0].as_ptr() as isize) == stride)
            .count();
        assert!(packed > 900, "{layout:?}: {packed}");
        let last = *ps.last().unwrap();
        // SAFETY: from this slab with this layout; not used again.
        unsafe { slab.free(last, layout) };
        assert_eq!(slab.alloc(layout), last, "freed slot reused first");
        for p in ps {
            // SAFETY: from this slab with this layout; not used again.
            unsafe { slab.free(p, layout) };
        }
    }

    #[test]
    fn slots_are_aligned_distinct_packed_and_recycled() {
        // A timer whose closure captures nothing: 48 bytes, like C's.
        check_class(Layout::from_size_align(48, 8).unwrap(), 16, 48);
        check_class(Layout::from_size_align(40, 16).unwrap(), 16, 48);
        // Too aligned for the 48-byte class: the next one up.
        check_class(Layout::from_size_align(40, 32).unwrap(), 64, 64);
        check_class(Layout::from_size_align(56, 8).unwrap(), 64, 64);
        check_class(Layout::from_size_align(100, 64).unwrap(), 64, 128);
        // Beyond the slab: the global allocator's.
        let slab = Slab::new();
        let huge = Layout::from_size_align(500, 8).unwrap();
        let h = slab.alloc(huge);
        // SAFETY: from this slab with this layout; not used again.
        unsafe { slab.free(h, huge) };
    }
}
