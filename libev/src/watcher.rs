//! The machinery shared by all watcher types.
//!
//! A watcher is one heap node: a [`Header`] (the `ev_*` struct first, then
//! the type's resources, if it has any) followed by the user's closure. The
//! node's own bookkeeping lives inside the `ev_*` struct, in room libev
//! leaves to its user (see [`Prefix`]): the loop in `data` (with a tag
//! bit for the hot paths), the reference
//! count and flags in the four bytes of padding before it. So a timer
//! whose closure captures nothing is 48 bytes, as in C. The public types
//! (`Io`, `Timer`, ...) are `#[repr(transparent)]` owners of a thin pointer
//! to it ([`NodeRef`]), whose `Drop` stops the watcher.
//!
//! libev calls [`dispatch`] through a trampoline generic over the concrete
//! closure type `F`, which recovers the node from the watcher pointer libev
//! passes: the `ev_*` struct starts the `#[repr(C)]` node (gevent's
//! `GET_OBJECT`).
//! While the callback runs:
//!
//! - the trampoline holds its own reference, so the callback may drop the
//!   watcher's owner (or anything else) without freeing the memory it is
//!   running in; the owner's `Drop` still stops the watcher at once;
//! - the node is marked busy, so the same closure is never entered twice
//!   (no aliased `&mut F`): an event for a busy watcher (nested `run`,
//!   `invoke` from its own callback) is remembered in the loop (see
//!   `Shared::missed`) and fed back to libev once the callback returns,
//!   unless the watcher was stopped or its pending events cleared in the
//!   meantime, or the callback panicked;
//! - panics are caught and handed to the loop (see [`Loop`]).
//!
//! Per-type resources (a periodic's reschedule closure, an embedded loop,
//! an async watcher's shared state, a cleanup watcher's link to its loop)
//! sit in the header's `extra` slot ([`DataSlot`]), and a `Stat`'s path in
//! its `ev_stat`; [`RawWatcher::release`] frees them after the watcher is
//! stopped for good.

use crate::event_loop::{Loop, LoopInner, Shared};
use crate::flags::Events;
use libev_sys as sys;
use std::alloc::{self, Layout};
use std::cell::{Cell, UnsafeCell};
use std::ffi::c_int;
use std::io;
use std::marker::{PhantomData, PhantomPinned};
use std::mem::{ManuallyDrop, MaybeUninit, offset_of};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::rc::{Rc, Weak};

/// An `ev_*` watcher struct with its start and stop functions.
///
/// # Safety
///
/// `start` and `stop` must be libev's functions for `Self`, and `release`
/// must only free what this crate put in the watcher's `extra` slot or its
/// own fields.
pub(crate) unsafe trait RawWatcher: sys::Watcher + 'static {
    /// What the node keeps for this type next to the `ev_*` struct: `()`,
    /// or a [`DataSlot`] for the resources a type hangs off its watcher.
    /// A fresh node holds the default; [`NodeRef::replace`] moves it.
    type Extra: Default + 'static;

    /// Whether the node holds its loop weakly (only `ev_cleanup`, whose
    /// point is to run while the loop is destroyed, which a strong handle
    /// would prevent). Weak nodes reach the loop's `Shared` through their
    /// `extra` slot (see `hooks.rs`).
    const WEAK_LOOP: bool = false;

    /// Whether starting or stopping this type while libev runs a periodic's
    /// reschedule callback would corrupt libev (only `ev_periodic`: that
    /// callback runs in the middle of periodic heap updates). Other types
    /// touch other structures and need no check on their hot paths.
    const GUARDED: bool = false;

    /// Whether `start` and `stop` are libev's own functions alone: a start
    /// never fails to activate, and a stop and start pair has no effect
    /// beyond libev (see `while_stopped`).
    const LIBEV_START: bool = false;

    /// Whether [`Header::start`] returns early for an active watcher before
    /// calling `start`. Needed where `start` does more than libev's own
    /// function (those types are not `LIBEV_START`), and worth it for types
    /// that callers restart while active on hot paths (`ev_io`: the green
    /// sockets start theirs on every wait). Elsewhere libev's own check is
    /// enough, and reading the watcher's state between two libev calls
    /// costs a timer's stop, set and start more than the call it saves
    /// (measured: see the benchmark page).
    const START_CHECKS_ACTIVE: bool = !Self::LIBEV_START;

    /// `ev_TYPE_start`.
    ///
    /// # Safety
    ///
    /// `l` and `w` valid, `w` initialised and not moving while active.
    unsafe fn start(l: *mut sys::ev_loop, w: *mut Self);

    /// `ev_TYPE_stop`.
    ///
    /// # Safety
    ///
    /// `l` valid and the loop `w` was started on, if it is active.
    unsafe fn stop(l: *mut sys::ev_loop, w: *mut Self);

    /// Frees what the crate keeps in the `extra` slot (or in fields of the
    /// `ev_*` struct); called once, on a stopped watcher, when its node is
    /// dropped.
    ///
    /// # Safety
    ///
    /// `w` valid, stopped, never started again.
    unsafe fn release(_w: *mut Self) {}

    /// Hands what the crate keeps in the fields of a stopped watcher
    /// (whatever `release` frees there) from `old` to `new`, a byte copy of
    /// it at another address, when a watcher's callback is replaced (see
    /// [`NodeRef::replace`], which moves the `extra` slot itself).
    /// Afterwards `old` owns nothing.
    ///
    /// # Safety
    ///
    /// `old` valid and stopped, `new` a byte copy of it, neither started.
    unsafe fn relocate(_old: *mut Self, _new: *mut Self) {}

    /// Runs `make`, which builds the watcher that replaces `old` (a copy
    /// made with `relocate`, started if `old` was active) and returns it,
    /// with whatever lock keeps other threads off `old` meanwhile (an
    /// `ev_async`'s senders), and hands them the new watcher.
    ///
    /// # Safety
    ///
    /// `old` is one of our stopped watchers on loop `l`.
    unsafe fn replace_locked(_l: *mut sys::ev_loop, _old: *mut Self, make: &mut dyn FnMut() -> *mut Self) {
        make();
    }

    /// For `WEAK_LOOP` types: the loop's `Shared` while the C loop exists.
    ///
    /// # Safety
    ///
    /// `w` valid.
    unsafe fn weak_shared(_w: *const Self) -> Option<NonNull<Shared>> {
        None
    }
}

/// Implements [`RawWatcher`] with libev's start and stop functions for
/// each type, with its `Extra` type after a comma (default `()`), plus any
/// extra items given in braces (`release`, flags).
macro_rules! raw_watchers {
    (@extra) => { () };
    (@extra $x:ty) => { $x };
    ($($t:ident => $start:ident, $stop:ident $(, $x:ty)? $({ $($extra:tt)* })?;)*) => {
        $(
            // SAFETY: these are libev's own start/stop functions for the
            // type; extra items uphold the trait's contract where written.
            unsafe impl crate::watcher::RawWatcher for libev_sys::$t {
                type Extra = crate::watcher::raw_watchers!(@extra $($x)?);
                const LIBEV_START: bool = true;
                #[inline]
                unsafe fn start(l: *mut libev_sys::ev_loop, w: *mut Self) {
                    // SAFETY: forwarded from the caller.
                    unsafe { libev_sys::$start(l, w) }
                }
                #[inline]
                unsafe fn stop(l: *mut libev_sys::ev_loop, w: *mut Self) {
                    // SAFETY: forwarded from the caller.
                    unsafe { libev_sys::$stop(l, w) }
                }
                $($($extra)*)?
            }
        )*
    };
}
pub(crate) use raw_watchers;

raw_watchers! {
    ev_timer => ev_timer_start, ev_timer_stop;
    ev_child => ev_child_start, ev_child_stop;
    ev_idle => ev_idle_start, ev_idle_stop;
    ev_prepare => ev_prepare_start, ev_prepare_stop;
    ev_check => ev_check_start, ev_check_stop;
    ev_fork => ev_fork_start, ev_fork_stop;
}

thread_local! {
    /// A panic from a closure's destructor, caught inside the trampoline
    /// that dropped the node and re-raised by `Header::dec_ref` (a leaked
    /// `PanicPayload`). A raw pointer, so that the thread-local has no
    /// destructor and stays usable while the thread's other thread-locals
    /// are destroyed, which may drop watchers.
    static DROP_PANIC: Cell<Option<NonNull<dyn std::any::Any + Send>>> = const { Cell::new(None) };
}

/// The user asked that this watcher not keep the loop alive.
const UNREF: u8 = 1;
/// We called `ev_unref` for it and owe an `ev_ref`.
const UNREF_APPLIED: u8 = 2;
/// Its callback is running.
const BUSY: u8 = 4;
/// Its owner was dropped inside a reschedule callback: the node waits to
/// be dropped (see `stop_on_drop`) and its callback is not called again.
const DETACHED: u8 = 8;
/// Events arrived while it was busy: they wait in `Shared::missed`.
const MISSED: u8 = 16;
/// Type-specific: an `Io` that owns its fd (it closes it on release).
pub(crate) const OWNS_FD: u8 = 32;
/// The flags that go with the watcher when its callback is replaced.
const CARRIED: u8 = UNREF | OWNS_FD;
/// The flags that send `stop`, `start` and `loop_if_plain` to their slow
/// paths, mirrored in `LINK_TAG` (see `Prefix::link`).
const ATTENTION: u8 = UNREF | UNREF_APPLIED | MISSED;
/// The bit of `Prefix::link` set while one of the `ATTENTION` flags is.
const LINK_TAG: usize = 1;

/// libev's watcher header as a node uses it. Every `ev_*` struct starts
/// with `ev_watcher`'s fields: `active`, `pending` and `priority` (three
/// `int`s libev owns), four bytes of padding, then `data`, a pointer libev
/// leaves to its user, then `cb`. The node keeps its reference count and
/// flags in the padding and its loop in `data` (as [`as_raw`]'s contract
/// tells C code: `data` is the crate's), so a node adds no bytes to the
/// `ev_*` struct. Only ever accessed field by field through raw pointers,
/// and nothing copies an `ev_*` struct of a node by value (a typed copy
/// need not carry padding).
///
/// [`as_raw`]: crate::Timer::as_raw
#[repr(C)]
struct Prefix {
    active: c_int,
    pending: c_int,
    priority: c_int,
    refs: u16,
    flags: u8,
    _spare: u8,
    /// `ev_watcher::data`: the loop. Normally the raw `ev_loop` (what hot
    /// paths need), and the node owns one strong count of the
    /// `Rc<LoopInner>` that the loop's `Shared::inner` points to; when
    /// `W::WEAK_LOOP`, a `*const LoopInner` from `Weak::into_raw`.
    ///
    /// The raw loop's lowest bit is `LINK_TAG`, set while one of the
    /// `ATTENTION` flags is. (It is zero in an `ev_loop`'s address: the
    /// struct holds pointers and doubles, so it is aligned to 8 bytes
    /// whoever made it, libev's allocator, the default loop's static or C
    /// code handing a loop to `Loop::from_raw`.) So the hot paths' one
    /// comparison of this word with the thread's last-used loop
    /// (`loop_guess`) finds both that the loop is the guessed one and that
    /// the watcher has no bookkeeping to settle. `Header::link` clears it;
    /// `set_flags` keeps it. Weak links never carry it.
    link: *const (),
}

// The padding really is padding (`priority` ends where `refs` starts and
// `data` follows the four bytes), at the same offsets in every watcher.
const _: () = assert!(
    offset_of!(sys::ev_watcher, active) == offset_of!(Prefix, active)
        && offset_of!(sys::ev_watcher, pending) == offset_of!(Prefix, pending)
        && offset_of!(sys::ev_watcher, priority) == offset_of!(Prefix, priority)
        && offset_of!(sys::ev_watcher, priority) + size_of::<c_int>() == offset_of!(Prefix, refs)
        && offset_of!(sys::ev_watcher, data) == offset_of!(Prefix, link)
        && offset_of!(Prefix, link) == offset_of!(Prefix, refs) + 4
        && size_of::<Prefix>() <= size_of::<sys::ev_watcher>()
);

/// The `extra` slot of types that hang a resource off their watcher: one
/// pointer, null when empty, owned as the type's `release` describes.
#[derive(Default)]
pub(crate) struct DataSlot(Cell<*mut std::ffi::c_void>);

impl DataSlot {
    /// The slot of the node whose `ev_*` struct is `w`.
    ///
    /// # Safety
    ///
    /// `w` is the `ev_*` struct of a live node whose `W::Extra` is
    /// `DataSlot`, and the returned reference is not held past its life.
    #[inline]
    pub(crate) unsafe fn of<'a, W: RawWatcher<Extra = DataSlot>>(w: *const W) -> &'a DataSlot {
        // SAFETY: per the contract, `w` starts a node's header, whose
        // `extra` field lies EXTRA_OFFSET bytes in.
        unsafe { &*w.byte_add(Header::<W>::EXTRA_OFFSET).cast::<DataSlot>() }
    }

    #[inline]
    pub(crate) fn get(&self) -> *mut std::ffi::c_void {
        self.0.get()
    }

    #[inline]
    pub(crate) fn set(&self, p: *mut std::ffi::c_void) {
        self.0.set(p)
    }

    /// Empties the slot, returning what it held.
    #[inline]
    pub(crate) fn take(&self) -> *mut std::ffi::c_void {
        self.0.replace(ptr::null_mut())
    }
}

/// The part of a node that does not depend on the closure type: the
/// `ev_*` struct (with the node's loop, count and flags inside, see
/// [`Prefix`]), then the type's `extra` slot.
#[repr(C)]
pub(crate) struct Header<W: RawWatcher> {
    /// The `ev_*` struct, at the start of the node. Only ever used through
    /// raw pointers: libev holds pointers to it too.
    raw: UnsafeCell<W>,
    extra: W::Extra,
    _pinned: PhantomPinned,
}

impl<W: RawWatcher> Header<W> {
    /// Where the `extra` slot sits in a node.
    const EXTRA_OFFSET: usize = offset_of!(Header<W>, extra);
}

/// A node: the header, then the closure.
#[repr(C)]
struct Node<W: RawWatcher, F> {
    header: Header<W>,
    cb: UnsafeCell<F>,
}

// A timer or io watcher whose closure captures nothing costs what C's
// watcher does (the slab packs such nodes at 48 bytes).
const _: () = assert!(
    size_of::<Node<sys::ev_timer, ()>>() == size_of::<sys::ev_timer>()
        && size_of::<Node<sys::ev_io, ()>>() == size_of::<sys::ev_io>()
        && size_of::<sys::ev_timer>() == 48
);

/// A counted reference to a node: a thin pointer.
#[repr(transparent)]
pub(crate) struct NodeRef<W: RawWatcher> {
    ptr: NonNull<Header<W>>,
}

impl<W: RawWatcher> NodeRef<W> {
    /// Allocates a node for closure `f` whose `ev_*` callback is `tramp`,
    /// holding `lp` strongly (or weakly, if `W::WEAK_LOOP`); `init` sets the
    /// type's parameters on the fresh, inactive watcher.
    pub(crate) fn new<F: 'static>(
        lp: &Loop,
        tramp: sys::Callback<W>,
        f: F,
        init: impl FnOnce(*mut W),
    ) -> NodeRef<W> {
        const { assert!(offset_of!(Node<W, F>, header) == 0 && offset_of!(Header<W>, raw) == 0) };
        let link = if W::WEAK_LOOP {
            Weak::into_raw(Rc::downgrade(&lp.inner)).cast::<()>()
        } else {
            // Keep the loop alive; `link` finds it again through Shared::inner.
            let _ = Rc::into_raw(lp.inner.clone());
            lp.raw().cast_const().cast::<()>()
        };
        // SAFETY: every `ev_*` struct is plain data for which all-zero is a
        // valid, inactive value; ev_init then sets the header.
        let mut raw: W = unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: `raw` is a local, inactive watcher.
        unsafe { sys::ev_init(&mut raw, tramp) };
        let node = Node {
            header: Header { raw: UnsafeCell::new(raw), extra: W::Extra::default(), _pinned: PhantomPinned },
            cb: UnsafeCell::new(f),
        };
        let mem = if W::WEAK_LOOP {
            // Weak nodes may outlive the loop's slab.
            // SAFETY: a node is never zero-sized (it holds a watcher).
            NonNull::new(unsafe { alloc::alloc(Layout::new::<Node<W, F>>()) })
                .unwrap_or_else(|| alloc::handle_alloc_error(Layout::new::<Node<W, F>>()))
        } else {
            lp.shared().slab.alloc(Layout::new::<Node<W, F>>())
        };
        let mem = mem.cast::<Node<W, F>>();
        // SAFETY: fresh memory with the node's layout.
        unsafe { mem.write(node) };
        let ptr = mem.cast::<Header<W>>();
        let w = ptr.as_ptr().cast::<W>();
        init(w);
        // Written last: `init` may copy a whole `ev_*` struct over `w`.
        // SAFETY: the prefix of our fresh node's watcher (see `Prefix`).
        unsafe {
            let p = w.cast::<Prefix>();
            (*p).refs = 1;
            (*p).flags = 0;
            debug_assert!(W::WEAK_LOOP || link.addr() & LINK_TAG == 0, "a loop's address is aligned");
            (*p).link = link;
        }
        NodeRef { ptr }
    }

    #[inline]
    fn header(&self) -> &Header<W> {
        // SAFETY: our counted reference keeps the node alive.
        unsafe { self.ptr.as_ref() }
    }

    /// What an owner's `Drop` does: stop the watcher. Inside a periodic's
    /// reschedule callback (reached through a thread-local, say), where
    /// libev must not be called, a periodic is instead detached (its
    /// callback is not called again) and kept until libev returns, when
    /// the loop drops it, which stops it (see `Shared::defer_drop`).
    #[inline]
    pub(crate) fn stop_on_drop(&self) {
        if W::GUARDED
            && let Some(lp) = self.shared()
            && lp.is_locked()
        {
            self.set_flag(DETACHED, true);
            lp.defer_drop(Box::new(self.clone()));
            return;
        }
        self.stop();
    }

    /// A counted reference to the node whose `ev_*` struct is `w`, for
    /// code that libev calls with a pointer into a node (an internal
    /// watcher of `ev_embed`) and that must keep the node alive.
    ///
    /// # Safety
    ///
    /// `w` must be the `ev_*` struct of a live node made by
    /// [`NodeRef::new`].
    pub(crate) unsafe fn hold(w: *mut W) -> NodeRef<W> {
        // SAFETY: per the contract, `w` starts a live node, whose count we
        // raise for the reference we return.
        unsafe {
            let ptr = NonNull::new_unchecked(w).cast::<Header<W>>();
            ptr.as_ref().inc_ref();
            NodeRef { ptr }
        }
    }
}

impl<W: RawWatcher> NodeRef<W> {
    /// A node for closure `f` (called through `tramp`) that takes over
    /// this node's watcher: its parameters and resources, priority,
    /// `keeps_loop_alive`, activity and pending events. This node is left
    /// stopped and owning nothing; callers put the new node in its place.
    /// `None` for a `Cleanup` whose loop is gone (nothing can call it).
    ///
    /// # Panics
    ///
    /// From inside the watcher's own callback: the `&` watcher that
    /// callback holds would keep using the old node, whose resources have
    /// moved.
    pub(crate) fn replace<F: 'static>(&self, tramp: sys::Callback<W>, f: F) -> Option<NodeRef<W>> {
        if self.flag(BUSY) {
            busy_replace_panic();
        }
        let l = self.hot_loop()?;
        let lp = self.loop_handle()?;
        let was_active = self.is_active();
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(l, self.raw().cast()) } | self.take_missed();
        self.stop();
        let old = self.raw();
        let carried = self.flags() & CARRIED;
        let mut f = Some(f);
        let mut made = None;
        let mut make = || {
            let f = f.take().expect("replace_locked calls its closure once");
            let new = NodeRef::new(&lp, tramp, f, |w| {
                // SAFETY: `old` is stopped and not pending, `w` fresh: the
                // copy carries the parameters (`new` then rewrites the
                // prefix), the new callback replaces the copied one, and
                // the resources move: the `extra` slots swap (the fresh one
                // holds the default), `relocate` moves the rest.
                unsafe {
                    ptr::copy_nonoverlapping(old, w, 1);
                    sys::ev_set_cb(w, tramp);
                    ptr::swap(Header::extra_of(old), Header::extra_of(w));
                    W::relocate(old, w);
                }
            });
            new.set_flags(carried);
            self.set_flag(OWNS_FD, false);
            if was_active {
                new.start();
            }
            let raw = new.raw();
            made = Some(new);
            raw
        };
        // SAFETY: `old` is our stopped watcher on its live loop `l`.
        unsafe { W::replace_locked(l, old, &mut make) };
        let new = made.expect("replace_locked called its closure");
        if pending != 0 {
            // SAFETY: feeding our own (pinned) watcher on its live loop.
            unsafe { sys::ev_feed_event(l, new.raw().cast(), pending) };
        }
        Some(new)
    }
}

impl<W: RawWatcher> std::ops::Deref for NodeRef<W> {
    type Target = Header<W>;
    #[inline]
    fn deref(&self) -> &Header<W> {
        self.header()
    }
}

impl<W: RawWatcher> Clone for NodeRef<W> {
    #[inline]
    fn clone(&self) -> Self {
        self.header().inc_ref();
        NodeRef { ptr: self.ptr }
    }
}

impl<W: RawWatcher> Drop for NodeRef<W> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we give up our counted reference.
        unsafe { Header::dec_ref(self.ptr) }
    }
}

/// Drops node `ptr` (a `Node<W, F>` made by `NodeRef::new`) and frees it.
///
/// # Safety
///
/// `ptr` is such a node and its last reference was just given up.
unsafe fn drop_node<W: RawWatcher, F>(ptr: NonNull<Header<W>>) {
    // SAFETY: per the contract the node is alive and ours alone.
    let header = unsafe { ptr.as_ref() };
    // Looked up once (an FFI call for ordinary watchers): used to stop the
    // watcher and, by `FreeNode`, to reach the slab and the loop count.
    let shared = header.shared();
    if let Some(lp) = shared {
        if W::GUARDED && lp.is_locked() {
            // Stopping it now, inside a periodic's reschedule callback,
            // would corrupt libev. Owners defer their drop out of there
            // (`stop_on_drop`), so no last reference goes here; were one
            // to, leaking the node (it stays in libev's heap) is the only
            // safe way out, and a panic on a drop path could abort.
            return;
        }
        let l = lp.raw();
        header.restore_ref(l);
        // Normally settled already (stopping or the callback's end takes
        // them), but the table must never outlive the node it names.
        header.take_missed();
        // SAFETY: stops (and clears any pending event of) our watcher on
        // its live loop, so libev keeps no pointer to it.
        unsafe { W::stop(l, header.raw()) };
    }
    // SAFETY: the watcher is stopped (or its loop is gone) for good.
    unsafe { W::release(header.raw()) };
    // Free the memory and give back the loop count even if the closure's
    // destructor panics. The closure goes first: its captures may hold
    // other watchers of this loop, and the loop count, released last, may
    // destroy the loop (and the slab).
    let _finish = FreeNode::<W> {
        mem: ptr.cast(),
        layout: Layout::new::<Node<W, F>>(),
        link: header.link(),
        shared: shared.map(NonNull::from),
        _w: PhantomData,
    };
    // SAFETY: drops the node in place, once; `_finish` frees it afterwards.
    unsafe { ptr::drop_in_place(ptr.cast::<Node<W, F>>().as_ptr()) };
}

/// Frees a dropped node's memory and gives back its loop count.
struct FreeNode<W: RawWatcher> {
    mem: NonNull<u8>,
    layout: Layout,
    link: *const (),
    /// The loop's `Shared`; always `Some` for strong (non-`WEAK_LOOP`) nodes.
    shared: Option<NonNull<Shared>>,
    _w: PhantomData<W>,
}

impl<W: RawWatcher> Drop for FreeNode<W> {
    fn drop(&mut self) {
        // SAFETY: `mem` was allocated in `NodeRef::new` with `layout`, from
        // the global allocator for weak nodes, else from the slab of the
        // node's loop (`shared`), which our count keeps alive until the end.
        // That count is given back exactly once: a Weak from Weak::into_raw
        // (`link`), or a strong count of Shared::inner's Rc.
        unsafe {
            if W::WEAK_LOOP {
                alloc::dealloc(self.mem.as_ptr(), self.layout);
                drop(Weak::from_raw(self.link.cast::<LoopInner>()));
            } else {
                let shared = self.shared.expect("a strong node's loop is alive").as_ref();
                shared.slab.free(self.mem, self.layout);
                drop(Rc::from_raw(shared.inner.get()));
            }
        }
    }
}

impl<W: RawWatcher> Header<W> {
    /// The header of the node whose `ev_*` struct is `w`.
    ///
    /// # Safety
    ///
    /// `w` is the `ev_*` struct of a live node made by [`NodeRef::new`],
    /// which outlives the returned reference.
    #[inline]
    pub(crate) unsafe fn of<'a>(w: *mut W) -> &'a Header<W> {
        // SAFETY: per the contract, `w` starts a live node's header.
        unsafe { &*w.cast::<Header<W>>() }
    }

    /// The node's bookkeeping inside its `ev_*` struct.
    #[inline(always)]
    fn prefix(&self) -> *mut Prefix {
        self.raw().cast()
    }

    /// The `extra` slot of the node whose `ev_*` struct is `w` (no access).
    #[inline]
    fn extra_of(w: *mut W) -> *mut W::Extra {
        w.wrapping_byte_add(Self::EXTRA_OFFSET).cast()
    }

    /// The node's loop, as documented on [`Prefix::link`].
    #[inline(always)]
    fn link(&self) -> *const () {
        let word = self.link_word();
        // A weak link is a `Weak::into_raw` pointer, never tagged, and is
        // given back to `Weak::from_raw` exactly as it was made.
        if W::WEAK_LOOP { word } else { word.map_addr(|a| a & !LINK_TAG) }
    }

    /// [`Prefix::link`] as stored: with `LINK_TAG` while an `ATTENTION`
    /// flag is set.
    #[inline(always)]
    fn link_word(&self) -> *const () {
        // SAFETY: reads our own field of the prefix (see `Prefix`).
        unsafe { (*self.prefix()).link }
    }

    #[inline(always)]
    fn flags(&self) -> u8 {
        // SAFETY: reads our own field of the prefix (see `Prefix`).
        unsafe { (*self.prefix()).flags }
    }

    /// Sets the flags, and `LINK_TAG` to match (see [`Prefix::link`]).
    #[inline(always)]
    fn set_flags(&self, flags: u8) {
        let was = self.flags();
        // SAFETY: writes our own fields of the prefix (see `Prefix`); no
        // reference to them exists.
        unsafe {
            (*self.prefix()).flags = flags;
            if !W::WEAK_LOOP && (was ^ flags) & ATTENTION != 0 {
                let tag = if flags & ATTENTION != 0 { LINK_TAG } else { 0 };
                (*self.prefix()).link = self.link().map_addr(|a| a | tag);
            }
        }
    }

    #[inline(always)]
    fn refs(&self) -> u16 {
        // SAFETY: reads our own field of the prefix (see `Prefix`).
        unsafe { (*self.prefix()).refs }
    }

    #[inline(always)]
    fn set_refs(&self, n: u16) {
        // SAFETY: writes our own field of the prefix (see `Prefix`).
        unsafe { (*self.prefix()).refs = n }
    }

    #[inline]
    fn inc_ref(&self) {
        let n = self.refs();
        if n == u16::MAX {
            // Only nested callbacks of one watcher take references: the stack
            // would overflow long before this.
            std::process::abort();
        }
        self.set_refs(n + 1);
    }

    /// Gives up one reference, freeing the node on the last.
    ///
    /// # Safety
    ///
    /// The caller owns one of the counted references to `ptr`.
    #[inline]
    unsafe fn dec_ref(ptr: NonNull<Header<W>>) {
        // SAFETY: the caller's reference keeps it alive until here.
        let h = unsafe { ptr.as_ref() };
        let n = h.refs() - 1;
        h.set_refs(n);
        if n == 0 {
            // SAFETY: that was the last reference. The callback is our
            // trampoline for this node's closure type (set in `new`, never
            // changed); a null loop asks it to drop the node.
            unsafe {
                let tramp = sys::ev_cb(h.raw()).expect("watcher nodes always have a trampoline");
                tramp(std::ptr::null_mut(), h.raw(), 0);
            }
            if let Some(payload) = DROP_PANIC.take() {
                // SAFETY: leaked from a Box in `dispatch` just above, taken
                // out once.
                panic::resume_unwind(unsafe { Box::from_raw(payload.as_ptr()) });
            }
        }
    }

    /// The `ev_*` struct, as a raw pointer. Taken from the whole header
    /// rather than the field, so that it also reaches the `extra` slot
    /// after the struct (see [`DataSlot::of`]); writes through it stay
    /// within `UnsafeCell`s (the struct, and the slot's `Cell`).
    #[inline]
    pub(crate) fn raw(&self) -> *mut W {
        ptr::from_ref(self).cast_mut().cast()
    }

    /// The loop's shared state while the C loop exists (always, except for
    /// a `Cleanup` whose loop was destroyed). Callers must not run user code
    /// while they hold it, unless they also hold a strong loop handle.
    #[inline]
    pub(crate) fn shared(&self) -> Option<&Shared> {
        if W::WEAK_LOOP {
            // SAFETY: the weak link (see RawWatcher::weak_shared) is Some
            // exactly while the Shared is allocated; it can only be freed by
            // dropping the last `Loop`, which takes user code, and callers
            // run none while holding the reference.
            unsafe { W::weak_shared(self.raw()).map(|p| &*p.as_ptr()) }
        } else {
            // SAFETY: `link` is a loop this node holds a strong count of, so
            // it and its Shared are alive while the node is.
            Some(unsafe { Shared::from_raw(self.link().cast_mut().cast()) })
        }
    }

    /// The raw loop for a hot path: no lookup for ordinary watchers, the
    /// reschedule guard for `GUARDED` ones, liveness for `WEAK_LOOP` ones.
    #[inline(always)]
    pub(crate) fn hot_loop(&self) -> Option<*mut sys::ev_loop> {
        if W::WEAK_LOOP || W::GUARDED {
            let lp = self.shared()?;
            lp.check_unlocked();
            Some(lp.raw())
        } else {
            Some(crate::loop_guess::confirm(self.link().cast_mut().cast()))
        }
    }

    /// A handle to the loop (`None` only for a `Cleanup` whose loop is gone
    /// or being destroyed).
    pub(crate) fn loop_handle(&self) -> Option<Loop> {
        // SAFETY: `link` is as documented on the field and we still own its
        // count: borrow it without giving it back.
        unsafe {
            if W::WEAK_LOOP {
                ManuallyDrop::new(Weak::from_raw(self.link().cast::<LoopInner>()))
                    .upgrade()
                    .map(|inner| Loop { inner })
            } else {
                let inner = Shared::from_raw(self.link().cast_mut().cast()).inner.get();
                Rc::increment_strong_count(inner);
                Some(Loop { inner: Rc::from_raw(inner) })
            }
        }
    }

    #[inline]
    pub(crate) fn flag(&self, f: u8) -> bool {
        self.flags() & f != 0
    }

    #[inline]
    pub(crate) fn set_flag(&self, f: u8, on: bool) {
        let flags = self.flags();
        self.set_flags(if on { flags | f } else { flags & !f });
    }

    /// Remembers `revents` for a busy watcher (see [`dispatch`]), or
    /// again after [`take_missed`](Self::take_missed); zero is nothing.
    fn add_missed(&self, revents: c_int) {
        if revents == 0 {
            return;
        }
        let Some(lp) = self.shared() else { return };
        let key = self.raw() as usize;
        let mut missed = lp.missed.borrow_mut();
        if self.flag(MISSED) {
            if let Some(entry) = missed.iter_mut().find(|(k, _)| *k == key) {
                entry.1 |= revents;
            }
        } else {
            missed.push((key, revents));
            self.set_flag(MISSED, true);
        }
    }

    /// Takes the events remembered while busy (zero if none).
    #[inline]
    fn take_missed(&self) -> c_int {
        if !self.flag(MISSED) {
            return 0;
        }
        self.take_missed_slow()
    }

    #[cold]
    fn take_missed_slow(&self) -> c_int {
        self.set_flag(MISSED, false);
        let Some(lp) = self.shared() else { return 0 };
        let key = self.raw() as usize;
        let mut missed = lp.missed.borrow_mut();
        match missed.iter().position(|(k, _)| *k == key) {
            Some(i) => missed.swap_remove(i).1,
            None => 0,
        }
    }

    /// The loop, for a call that bypasses the bookkeeping of
    /// [`stop`](Self::stop) and [`start`](Self::start) (`Timer::restart`'s
    /// `ev_timer_again`): `None` when there is some to do, for a watcher
    /// that does not keep its loop alive or has events deferred, and for
    /// weak-loop and guarded types.
    #[inline(always)]
    pub(crate) fn loop_if_plain(&self) -> Option<*mut sys::ev_loop> {
        match self.fast_loop() {
            Some(l) => Some(l),
            None => self.loop_if_plain_slow(),
        }
    }

    /// [`loop_if_plain`](Self::loop_if_plain) when [`fast_loop`]
    /// (Self::fast_loop) cannot tell.
    #[cold]
    #[inline(never)]
    fn loop_if_plain_slow(&self) -> Option<*mut sys::ev_loop> {
        if W::WEAK_LOOP || W::GUARDED || self.flags() & (UNREF | MISSED) != 0 {
            return None;
        }
        self.hot_loop()
    }

    /// The loop, when it is the one last used on this thread and the
    /// watcher has none of the `ATTENTION` flags: one comparison of the
    /// node's link word with the thread's guess (see [`Prefix::link`] and
    /// `loop_guess`). `None` sends the caller to its slow path, which
    /// does the whole work (and updates the guess). Always `None` for
    /// weak-loop and guarded types.
    #[inline(always)]
    fn fast_loop(&self) -> Option<*mut sys::ev_loop> {
        if W::WEAK_LOOP || W::GUARDED {
            return None;
        }
        debug_assert_eq!(
            self.link_word().addr() & LINK_TAG != 0,
            self.flags() & ATTENTION != 0,
            "the loop word's tag mirrors the flags"
        );
        crate::loop_guess::matches(self.link_word().cast_mut().cast())
    }

    #[inline]
    pub(crate) fn start(&self) {
        let Some(l) = self.fast_loop() else { return self.start_slow() };
        if W::START_CHECKS_ACTIVE && self.is_active() {
            return;
        }
        // SAFETY: the node never moves and outlives its activity (dropping
        // it stops it); `l` is its live loop. libev's start ignores an
        // active watcher.
        unsafe { W::start(l, self.raw()) };
    }

    /// [`start`](Self::start) when [`fast_loop`](Self::fast_loop) cannot
    /// tell: another loop than the last, a watcher with flags to honour, a
    /// weak-loop or guarded type.
    #[cold]
    #[inline(never)]
    fn start_slow(&self) {
        let Some(l) = self.hot_loop() else { return };
        if W::START_CHECKS_ACTIVE && self.is_active() {
            return;
        }
        if W::WEAK_LOOP || self.flag(UNREF) {
            return self.start_unref(l);
        }
        // SAFETY: the node never moves and outlives its activity (dropping
        // it stops it); `l` is its live loop. libev's start ignores an
        // active watcher.
        unsafe { W::start(l, self.raw()) };
    }

    /// [`start`](Self::start) for a watcher that must not keep its loop
    /// alive, or of a weak loop. Tested before the call rather than after
    /// it: reading the flags right after libev's start cost a timer's
    /// stop, set and start a few percent.
    #[cold]
    fn start_unref(&self, l: *mut sys::ev_loop) {
        if self.is_active() {
            return;
        }
        // libev forbids starting cleanup watchers while it destroys the loop.
        if W::WEAK_LOOP && self.shared().is_none_or(Shared::destroying) {
            return;
        }
        // SAFETY: as in `start`.
        unsafe { W::start(l, self.raw()) };
        if self.flags() & (UNREF | UNREF_APPLIED) == UNREF {
            // SAFETY: live loop; balanced by `ev_ref` in stop/fix_ref.
            unsafe { sys::ev_unref(l) };
            self.set_flag(UNREF_APPLIED, true);
        }
    }

    #[inline]
    pub(crate) fn stop(&self) {
        let Some(l) = self.fast_loop() else { return self.stop_slow() };
        // SAFETY: `l` is the loop the watcher was started on; stopping an
        // inactive watcher only clears a pending event.
        unsafe { W::stop(l, self.raw()) };
    }

    /// [`stop`](Self::stop) when [`fast_loop`](Self::fast_loop) cannot
    /// tell (as for [`start_slow`](Self::start_slow)).
    #[cold]
    #[inline(never)]
    fn stop_slow(&self) {
        let Some(l) = self.hot_loop() else { return };
        if self.flags() & (UNREF_APPLIED | MISSED) != 0 {
            self.restore_ref(l);
            // Events deferred while the callback runs are pending events too.
            self.take_missed();
        }
        // SAFETY: `l` is the loop the watcher was started on; stopping an
        // inactive watcher only clears a pending event.
        unsafe { W::stop(l, self.raw()) };
    }

    #[inline]
    fn restore_ref(&self, l: *mut sys::ev_loop) {
        if self.flag(UNREF_APPLIED) {
            self.set_flag(UNREF_APPLIED, false);
            // SAFETY: live loop; pays back our earlier ev_unref.
            unsafe { sys::ev_ref(l) };
        }
    }

    /// libev stops some watchers itself (a non-repeating timer that fired,
    /// an io watcher with a bad fd): pay back our `ev_unref` then.
    #[inline]
    fn fix_ref(&self, l: *mut sys::ev_loop) {
        if self.flag(UNREF_APPLIED) && !self.is_active() {
            self.restore_ref(l);
        }
    }

    /// Restores the bookkeeping after libev itself restarted or stopped
    /// the watcher and cleared its pending event (`ev_timer_again`,
    /// `ev_periodic_again`): the reference count, and deferred events,
    /// which count as pending.
    pub(crate) fn after_external_change(&self, was_active: bool) {
        let Some(lp) = self.shared() else { return };
        let l = lp.raw();
        self.take_missed();
        if !self.is_active() {
            self.restore_ref(l);
        } else if !was_active && self.flags() & (UNREF | UNREF_APPLIED) == UNREF {
            // SAFETY: live loop; balanced by restore_ref.
            unsafe { sys::ev_unref(l) };
            self.set_flag(UNREF_APPLIED, true);
        }
    }

    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        // A weak watcher's loop may be gone: libev never resets the
        // watchers of a destroyed loop.
        if W::WEAK_LOOP && self.shared().is_none() {
            return false;
        }
        // SAFETY: reads the header of our live watcher.
        unsafe { sys::ev_is_active(self.raw()) }
    }

    /// Pending in libev, or deferred while the callback runs.
    #[inline]
    pub(crate) fn is_pending(&self) -> bool {
        // A weak watcher's loop may be gone, with the watcher's pending
        // index left behind (libev never resets a destroyed loop's
        // watchers): no event can come any more.
        if W::WEAK_LOOP && self.shared().is_none() {
            return false;
        }
        // SAFETY: reads the header of our live watcher.
        let pending = unsafe { sys::ev_is_pending(self.raw()) };
        pending || self.flag(MISSED)
    }

    #[inline]
    pub(crate) fn priority(&self) -> i32 {
        // SAFETY: reads the header of our live watcher.
        unsafe { sys::ev_priority(self.raw()) }
    }

    /// Sets the priority; an active or pending watcher is stopped first and
    /// restarted (with its pending events fed again) afterwards, since libev
    /// forbids changing it in those states.
    pub(crate) fn set_priority(&self, priority: i32) -> io::Result<()> {
        if !(sys::EV_MINPRI..=sys::EV_MAXPRI as i32).contains(&priority) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("priority {priority} is outside libev's range -2..=2"),
            ));
        }
        self.while_stopped(|| {
            // SAFETY: the watcher is neither active nor pending here.
            unsafe { sys::ev_set_priority(self.raw(), priority) }
        });
        Ok(())
    }

    /// Runs `f` with the watcher stopped and not pending, then restores
    /// both states (libev forbids changing most parameters otherwise).
    /// Events deferred while the callback runs (`MISSED`) are not libev's:
    /// they wait in the loop's table, through libev's stop and start alike.
    #[inline]
    pub(crate) fn while_stopped<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: reads libev's `active` and `pending` of our watcher.
        let (active, pending) = unsafe { ((*self.prefix()).active, (*self.prefix()).pending) };
        if pending == 0 {
            if active == 0 {
                return f();
            }
            if W::LIBEV_START
                && let Some(l) = self.hot_loop()
            {
                // Active, nothing pending: libev's stop and
                // start around the change, as C would. Its start never
                // fails, so the watcher ends active again and what it owes
                // the loop's reference count (`UNREF_APPLIED`) stays as it is.
                // SAFETY: our watcher on its live loop; `f` changes
                // parameters of the stopped watcher only.
                unsafe { W::stop(l, self.raw()) };
                let r = f();
                // SAFETY: as above; the node never moves while active.
                unsafe { W::start(l, self.raw()) };
                return r;
            }
        }
        self.while_stopped_slow(self.is_active(), f)
    }

    #[cold]
    fn while_stopped_slow<R>(&self, was_active: bool, f: impl FnOnce() -> R) -> R {
        let Some(l) = self.hot_loop() else { return f() };
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(l, self.raw().cast()) };
        // Settle a stopped watcher's `ev_ref` now: the event fed back below
        // finds nothing owed.
        self.fix_ref(l);
        let missed = self.take_missed();
        if was_active {
            self.stop();
        }
        let r = f();
        if was_active {
            self.start();
        }
        self.add_missed(missed);
        if pending != 0 {
            // SAFETY: feeding an event to our own (pinned) watcher.
            unsafe { sys::ev_feed_event(l, self.raw().cast(), pending) };
        }
        r
    }

    pub(crate) fn set_keeps_loop_alive(&self, keep: bool) {
        self.set_flag(UNREF, !keep);
        let Some(lp) = self.shared() else { return };
        let l = lp.raw();
        if keep {
            self.restore_ref(l);
        } else if self.is_active() && !self.flag(UNREF_APPLIED) {
            // SAFETY: live loop; balanced by restore_ref.
            unsafe { sys::ev_unref(l) };
            self.set_flag(UNREF_APPLIED, true);
        }
    }

    pub(crate) fn keeps_loop_alive(&self) -> bool {
        !self.flag(UNREF)
    }

    /// Feeding and clearing events touch only libev's pending queues, never
    /// the periodic heap, so they are fine even in a reschedule callback.
    #[inline]
    pub(crate) fn feed_event(&self, events: Events) {
        let Some(l) = self.hot_loop() else { return };
        // SAFETY: our pinned watcher; dropping it clears the pending event.
        unsafe { sys::ev_feed_event(l, self.raw().cast(), events.to_revents()) }
    }

    pub(crate) fn clear_pending(&self) -> Events {
        let Some(l) = self.hot_loop() else { return Events::empty() };
        // SAFETY: our watcher on its live loop.
        let pending = unsafe { sys::ev_clear_pending(l, self.raw().cast()) };
        // A one-shot timer libev stopped is owed its `ev_ref` by the
        // callback this cancels.
        self.fix_ref(l);
        Events::from_revents(pending | self.take_missed())
    }

    pub(crate) fn invoke(&self, events: Events) {
        // A strong handle: the callback may drop every other one.
        let Some(lp) = self.loop_handle() else { return };
        lp.shared().check_unlocked();
        // SAFETY: calls our trampoline with our own watcher, like libev does.
        unsafe { sys::ev_invoke(lp.raw(), self.raw().cast(), events.to_revents()) };
        lp.shared().rethrow();
    }
}

#[cold]
#[inline(never)]
fn busy_replace_panic() -> ! {
    panic!(
        "libev: set_callback called from inside the watcher's own callback; \
         switch behaviour inside one closure (an enum of states) instead"
    )
}

/// Implemented by each public watcher type, a `#[repr(transparent)]`
/// wrapper of a [`NodeRef`].
///
/// # Safety
///
/// `Self` must be `#[repr(transparent)]` over `NodeRef<Self::Raw>`.
pub(crate) unsafe trait Owner: Sized {
    type Raw: RawWatcher;
}

/// The body of every trampoline: runs the closure of the node that owns
/// `w`, with the re-entrancy, lifetime and panic rules described above.
/// Called with a null `l` by [`Header::dec_ref`], it drops the node instead.
///
/// # Safety
///
/// `w` must be the `ev_*` struct of a live `Node<W, F>` made by
/// [`NodeRef::new`], and `l` its loop, or null when the node's last
/// reference was just given up.
#[inline]
pub(crate) unsafe fn dispatch<W, F, T>(l: *mut sys::ev_loop, w: *mut W, revents: c_int)
where
    W: RawWatcher,
    F: FnMut(&T, Events) + 'static,
    T: Owner<Raw = W>,
{
    // SAFETY: per the contract, `w` starts a node.
    let ptr = unsafe { NonNull::new_unchecked(w).cast::<Header<W>>() };
    if l.is_null() {
        // Dropping runs user destructors, whose panics must not unwind out
        // of this extern "C" function: `dec_ref` re-raises them.
        // SAFETY: the contract: the last reference is gone.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| unsafe { drop_node::<W, F>(ptr) })) {
            DROP_PANIC.set(Some(NonNull::from(Box::leak(payload))));
        }
        return;
    }
    // SAFETY: the node is alive (contract); this counted reference keeps it
    // so for the whole callback, whatever the callback drops.
    let header = unsafe { ptr.as_ref() };
    header.inc_ref();
    header.fix_ref(l);
    if W::GUARDED && header.flag(DETACHED) {
        // Its owner is gone: nothing to call. The deferred drop stops it.
        // SAFETY: gives back the reference taken above; the deferred drop
        // holds another.
        unsafe { Header::dec_ref(ptr) };
        return;
    }
    if header.flag(BUSY) {
        // Re-entered (nested run or invoke from its own callback): keep the
        // events for later rather than alias the running closure.
        header.add_missed(revents);
        // SAFETY: gives back the reference taken above; the running outer
        // call holds another, so the node survives.
        unsafe { Header::dec_ref(ptr) };
        return;
    }
    header.set_flag(BUSY, true);
    // SAFETY: libev calls back only for loops made by `Loop`, while they
    // exist. The Shared outlives this call even after the node is released:
    // whoever entered libev (`run`, `invoke`, `sweep`, or the loop's own
    // Drop) holds the loop for the duration. Looked up only on a panic.
    let lp = || unsafe { Shared::from_raw(l) };
    let cb = ptr.cast::<Node<W, F>>();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `T` is repr(transparent) over NodeRef<W>, itself over
        // NonNull<Header<W>>, so `&ptr` is a valid `&T`: a view that is never
        // dropped, so it neither stops the watcher nor touches the count.
        let view = unsafe { &*(&ptr as *const NonNull<Header<W>>).cast::<T>() };
        // SAFETY: BUSY guarantees this is the only live reference to the
        // closure, which the node (kept alive above) owns.
        let f = unsafe { &mut *(*cb.as_ptr()).cb.get() };
        f(view, Events::from_revents(revents))
    }));
    header.set_flag(BUSY, false);
    // Deferred events are delivered even to a watcher that is no longer
    // active (a one-shot timer that fired in a nested run, an `invoke`):
    // stopping it or clearing its pending events discards them instead, and
    // so does a panic (which breaks the loop), lest a callback that feeds
    // itself and panics be called again forever within one iteration.
    let missed = header.take_missed();
    if missed != 0 && result.is_ok() {
        // SAFETY: our pinned watcher on its live loop; libev allows feeding
        // inactive watchers, and dropping the node stops it, which clears
        // the event.
        unsafe { sys::ev_feed_event(l, w.cast(), missed) };
    }
    if let Err(payload) = result {
        lp().handle_panic(payload);
    }
    // Releasing our reference may free the node (its owner is gone),
    // running user destructors: keep their panics out of C as well.
    // SAFETY: gives back the reference taken above.
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| unsafe { Header::dec_ref(ptr) })) {
        lp().handle_panic(payload);
    }
}

/// Generates a public watcher type: the owner struct, its `Drop`, `Debug`,
/// the trampoline, and the methods every watcher has.
macro_rules! watcher_type {
    (
        $(#[$meta:meta])*
        $name:ident, $raw:ident, $cb:ident
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        pub struct $name {
            node: crate::watcher::NodeRef<libev_sys::$raw>,
        }

        #[doc = concat!("The closure type a [`", stringify!($name), "`] calls: it receives the watcher and the events.")]
        pub type $cb = dyn FnMut(&$name, crate::Events) + 'static;

        // SAFETY: repr(transparent) over NodeRef<$raw>, just above.
        unsafe impl crate::watcher::Owner for $name {
            type Raw = libev_sys::$raw;
        }

        impl $name {
            /// Builds the node around a concrete closure.
            fn from_closure<F>(lp: &crate::Loop, f: F, init: impl FnOnce(*mut libev_sys::$raw)) -> $name
            where
                F: FnMut(&$name, crate::Events) + 'static,
            {
                $name { node: crate::watcher::NodeRef::new(lp, Some(Self::trampoline::<F>), f, init) }
            }

            /// What libev calls for a node with closure type `F`.
            unsafe extern "C" fn trampoline<F>(
                l: *mut libev_sys::ev_loop,
                w: *mut libev_sys::$raw,
                revents: std::ffi::c_int,
            ) where
                F: FnMut(&$name, crate::Events) + 'static,
            {
                // SAFETY: libev passes back a watcher whose node was built with
                // this trampoline (`from_closure`, `set_callback`): the start
                // of a live `Node<_, F>`.
                unsafe { crate::watcher::dispatch::<libev_sys::$raw, F, $name>(l, w, revents) }
            }

            /// Stops watching (libev's `ev_*_stop`) and cancels a pending event;
            /// does nothing if inactive.
            #[inline]
            pub fn stop(&self) {
                self.node.stop()
            }

            /// Whether the watcher was started and not yet stopped (by you, or
            /// by libev: a non-repeating timer stops when it fires).
            #[inline]
            pub fn is_active(&self) -> bool {
                self.node.is_active()
            }

            /// Whether an event is waiting for the callback to run.
            #[inline]
            pub fn is_pending(&self) -> bool {
                self.node.is_pending()
            }

            /// The priority, -2 (lowest) to 2 (highest); default 0.
            #[inline]
            pub fn priority(&self) -> i32 {
                self.node.priority()
            }

            /// Sets the priority, -2..=2: among pending watchers, higher ones run
            /// first. Allowed in any state (an active or pending watcher is
            /// stopped and restarted around the change, keeping its events).
            /// Fails with [`InvalidInput`](std::io::ErrorKind::InvalidInput) out of range.
            pub fn set_priority(&self, priority: i32) -> std::io::Result<()> {
                self.node.set_priority(priority)
            }

            /// gevent's `ref`: whether this watcher, while active, keeps
            /// [`Loop::run`](crate::Loop::run) from returning (default `true`).
            pub fn set_keeps_loop_alive(&self, keep: bool) {
                self.node.set_keeps_loop_alive(keep)
            }

            /// See [`set_keeps_loop_alive`](Self::set_keeps_loop_alive).
            pub fn keeps_loop_alive(&self) -> bool {
                self.node.keeps_loop_alive()
            }

            /// Makes the watcher pending with `events`, as if they had happened;
            /// the callback runs in the loop's next pending-processing phase.
            /// Works on inactive watchers too.
            #[inline]
            pub fn feed_event(&self, events: crate::Events) {
                self.node.feed_event(events)
            }

            /// Cancels a pending event; returns the events it had (empty if none).
            pub fn clear_pending(&self) -> crate::Events {
                self.node.clear_pending()
            }

            /// Replaces the callback (libev's `ev_set_cb`), keeping everything
            /// else: parameters, priority, [`keeps_loop_alive`](Self::keeps_loop_alive),
            /// whether it is active, and its pending events, which the new
            /// callback receives.
            ///
            /// # Panics
            ///
            /// From inside this watcher's own callback (through a `RefCell`,
            /// say): the `&` watcher that callback received would go on
            /// referring to the old one. Switch behaviour inside one closure
            /// there (an enum of states) instead.
            pub fn set_callback<F>(&mut self, callback: F)
            where
                F: FnMut(&$name, crate::Events) + 'static,
            {
                if let Some(node) = self.node.replace(Some(Self::trampoline::<F>), callback) {
                    self.node = node;
                }
            }

            /// The libev watcher (`ev_*` struct) inside this one, for C code
            /// and [`crate::sys`] calls. It never moves and stays valid while
            /// this watcher exists.
            ///
            /// On the loop's thread, C code may read its fields, feed it events,
            /// and start or stop it on its own loop (bypassing what the safe
            /// methods add: [`set_keeps_loop_alive`](Self::set_keeps_loop_alive)
            /// bookkeeping, and for signals the one-loop-per-signal count, which
            /// a C start must therefore be paired with a C stop). It must not
            /// free or re-initialise it, change its callback or `data` (the
            /// crate's), change its parameters while it is active, or start or
            /// stop a `Cleanup` (the crate tracks those on borrowed loops).
            pub fn as_raw(&self) -> *mut libev_sys::$raw {
                self.node.raw()
            }

            /// Calls the callback now with `events` (libev's `ev_invoke`). From
            /// inside the watcher's own callback the call is deferred until that
            /// callback returns.
            ///
            /// # Panics
            ///
            /// Re-raises a panic from the callback.
            pub fn invoke(&self, events: crate::Events) {
                self.node.invoke(events)
            }
        }

        impl Drop for $name {
            #[inline]
            fn drop(&mut self) {
                self.node.stop_on_drop();
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("active", &self.is_active())
                    .field("pending", &self.is_pending())
                    .field("priority", &self.priority())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use watcher_type;

/// Adds the usual `start` and `loop_handle` for types whose start cannot fail.
macro_rules! plain_start {
    ($name:ident) => {
        impl $name {
            /// Starts watching (libev's `ev_*_start`); does nothing if already
            /// active. While active it keeps [`Loop::run`](crate::Loop::run)
            /// going, unless [`set_keeps_loop_alive(false)`](Self::set_keeps_loop_alive).
            #[inline]
            pub fn start(&self) {
                self.node.start()
            }

            /// The loop this watcher belongs to.
            pub fn loop_handle(&self) -> crate::Loop {
                self.node.loop_handle().expect("only Cleanup watchers outlive their loop")
            }
        }
    };
}
pub(crate) use plain_start;
