//! The orders a [`Queue`](super::Queue) hands its items out in, and the
//! store behind each.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// The order a [`Queue`](super::Queue) hands out its items in:
/// [`Fifo`] (gevent's `Queue`), [`Lifo`] (`LifoQueue`) or [`Priority`]
/// (`PriorityQueue`). Implemented by those three types only.
pub trait Order<T>: sealed::Sealed<T> {}

/// Oldest item first: [`Queue`](super::Queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fifo;

/// Newest item first: [`LifoQueue`](super::LifoQueue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Lifo;

/// Smallest item first (by [`Ord`]): [`PriorityQueue`](super::PriorityQueue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Priority;

impl<T> Order<T> for Fifo {}
impl<T> Order<T> for Lifo {}
impl<T: Ord> Order<T> for Priority {}

pub(crate) mod sealed {
    /// What an [`Order`](super::Order) is made of: a name and a store.
    pub trait Sealed<T> {
        /// The queue type's name, for messages.
        const NAME: &'static str;
        /// Where the queue keeps its items.
        type Store: Store<T>;
    }

    /// A container of items, handing them out in its order.
    pub trait Store<T>: Default {
        fn push(&mut self, item: T);
        /// The next item out.
        fn pop(&mut self) -> Option<T>;
        /// The item `pop` would return.
        fn peek(&self) -> Option<&T>;
        fn len(&self) -> usize;
    }
}

use sealed::{Sealed, Store};

impl<T> Sealed<T> for Fifo {
    const NAME: &'static str = "Queue";
    type Store = VecDeque<T>;
}

impl<T> Sealed<T> for Lifo {
    const NAME: &'static str = "LifoQueue";
    type Store = Vec<T>;
}

impl<T: Ord> Sealed<T> for Priority {
    const NAME: &'static str = "PriorityQueue";
    // std's heap is a max-heap; gevent's (heapq) hands out the smallest.
    type Store = BinaryHeap<Reverse<T>>;
}

impl<T> Store<T> for VecDeque<T> {
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.front()
    }
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
}

impl<T> Store<T> for Vec<T> {
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn peek(&self) -> Option<&T> {
        self.last()
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
}

impl<T: Ord> Store<T> for BinaryHeap<Reverse<T>> {
    fn push(&mut self, item: T) {
        BinaryHeap::push(self, Reverse(item));
    }
    fn pop(&mut self) -> Option<T> {
        BinaryHeap::pop(self).map(|Reverse(item)| item)
    }
    fn peek(&self) -> Option<&T> {
        BinaryHeap::peek(self).map(|Reverse(item)| item)
    }
    fn len(&self) -> usize {
        BinaryHeap::len(self)
    }
}
