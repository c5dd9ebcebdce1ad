//! libev::green::sync's queues: Queue, LifoQueue and PriorityQueue, task
//! tracking (JoinableQueue), peek, shutdown, iteration, and Channel's
//! rendezvous; kill and timeout at every point where they wait. Most
//! tests mirror a case of gevent's src/gevent/tests/test__queue.py or
//! test__monkey_queue.py, named in its comment. Each test runs on its own
//! thread, so each has its own hub.

mod sync_util;
mod util;

use libev::green::sync::{
    Channel, JoinableQueue, LifoQueue, Order, OrderedQueue, PriorityQueue, Queue, TaskDoneError,
};
use libev::green::{self, GreenletError};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;
use sync_util::*;
use util::Rng;

const QUEUE_SIZE: usize = 5;

/// Runs `block` in this greenlet while another greenlet runs `trigger`
/// 10 ms later, and checks that `block` waited for it (gevent's
/// `do_blocking_test`, with a greenlet for the thread).
fn blocking_test<R>(block: impl FnOnce() -> R, trigger: impl FnOnce() + 'static) -> R {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let t = green::spawn(move || {
        green::sleep(MS * 10);
        s.set(true);
        trigger();
    });
    let r = block();
    assert!(started.get(), "the blocking call returned before its trigger ran");
    t.join().unwrap();
    r
}

/// test__monkey_queue.py BaseQueueTest.simple_queue_test, for one order:
/// `first` is what comes out first of 111, 333, 222, 444, then `rest`.
fn simple_queue_test<O: Order<u32> + 'static>(q: &OrderedQueue<u32, O>, first: u32, rest: [u32; 3]) {
    assert!(q.is_empty());
    for v in [111, 333, 222, 444] {
        q.put(v);
    }
    assert_eq!((q.peek(), q.get()), (first, first), "peek and get agree");
    assert_eq!([q.get(), q.get(), q.get()], rest);
    for i in 0..QUEUE_SIZE as u32 - 1 {
        q.put(i);
        assert!(!q.is_empty());
    }
    assert!(!q.is_full());
    q.put(999);
    assert!(q.is_full());
    assert_eq!(q.try_put(888), Err(888));
    assert_eq!(took_at_least(MS * 10, |t| q.put_timeout(888, t)), Err(888));
    assert_eq!(q.len(), QUEUE_SIZE);
    let getter = |q: &OrderedQueue<u32, O>| {
        let q = q.clone();
        move || {
            q.get();
        }
    };
    blocking_test(|| q.put(888), getter(q));
    blocking_test(|| q.put_timeout(888, Duration::from_secs(10)).unwrap(), getter(q));
    for _ in 0..QUEUE_SIZE {
        q.get();
    }
    assert!(q.is_empty());
    assert_eq!(q.try_get(), None);
    assert_eq!(took_at_least(MS * 10, |t| q.get_timeout(t)), None);
    let putter = |q: &OrderedQueue<u32, O>| {
        let q = q.clone();
        move || q.put(7)
    };
    assert_eq!(blocking_test(|| q.get(), putter(q)), 7);
    assert_eq!(blocking_test(|| q.get_timeout(Duration::from_secs(10)), putter(q)), Some(7));
}

#[test]
fn simple_queue_test_in_each_order() {
    // test__monkey_queue.py BaseQueueTest / LifoQueueTest /
    // PriorityQueueTest.test_simple_queue: twice on one queue each.
    let q = Queue::bounded(QUEUE_SIZE);
    simple_queue_test(&q, 111, [333, 222, 444]);
    simple_queue_test(&q, 111, [333, 222, 444]);
    let q = LifoQueue::bounded(QUEUE_SIZE);
    simple_queue_test(&q, 444, [222, 333, 111]);
    simple_queue_test(&q, 444, [222, 333, 111]);
    let q = PriorityQueue::bounded(QUEUE_SIZE);
    simple_queue_test(&q, 111, [222, 333, 444]);
    simple_queue_test(&q, 111, [222, 333, 444]);
}

#[test]
fn priority_queue_hands_out_the_smallest_first() {
    // test__monkey_queue.py PriorityQueueTest.test__init (items given to
    // the constructor there, put here).
    let q = PriorityQueue::new();
    q.put((2, 'b'));
    q.put((1, 'a'));
    assert_eq!(q.try_get(), Some((1, 'a')));
    assert_eq!(q.try_get(), Some((2, 'b')));
    // Blocked putters' items are ordered once they go in.
    let q = PriorityQueue::bounded(1);
    q.put(5);
    let putters: Vec<_> = [9, 1, 4]
        .into_iter()
        .map(|v| {
            let q = q.clone();
            green::spawn(move || q.put(v))
        })
        .collect();
    settle();
    assert_eq!(q.get(), 5); // 9 moves in
    assert_eq!(q.get(), 9); // 1 moves in
    settle();
    assert_eq!([q.get(), q.get()], [1, 4]);
    green::joinall(putters);
}

// ---- task tracking (JoinableQueue) ----

/// test__monkey_queue.py BaseQueueTest.queue_join_test: two workers sum
/// 100 items; `None` stops them.
fn queue_join_test(q: &JoinableQueue<Option<u32>>) {
    let cum = Rc::new(Cell::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (q, cum) = (q.clone(), cum.clone());
            green::spawn(move || {
                loop {
                    let x = q.get();
                    let Some(x) = x else {
                        q.task_done().unwrap();
                        return;
                    };
                    cum.set(cum.get() + x);
                    green::yield_now();
                    q.task_done().unwrap();
                }
            })
        })
        .collect();
    for i in 0..100 {
        q.put(Some(i));
    }
    q.join();
    assert_eq!(cum.get(), (0..100).sum::<u32>(), "join did not wait for every task");
    for _ in 0..2 {
        q.put(None);
    }
    q.join(); // a queue can be joined twice
    for r in green::joinall(workers) {
        r.unwrap();
    }
}

#[test]
fn join_waits_until_every_task_is_done() {
    // test__monkey_queue.py BaseQueueTest.test_queue_join.
    let q = JoinableQueue::new();
    queue_join_test(&q);
    queue_join_test(&q);
    assert_eq!(q.task_done(), Err(TaskDoneError));
}

#[test]
fn task_done_counts_items_and_refuses_too_many_calls() {
    // test__queue.py TestQueue.test_task_done, and test__monkey_queue.py
    // test_queue_task_done.
    let q = Queue::new();
    assert_eq!(q.task_done(), Err(TaskDoneError));
    let p = {
        let q = q.clone();
        green::spawn(move || q.put("X"))
    };
    assert_eq!(q.get(), "X");
    p.join().unwrap();
    assert_eq!(q.unfinished_tasks(), 1);
    q.task_done().unwrap();
    assert_eq!(q.unfinished_tasks(), 0);
    assert_eq!(q.task_done().unwrap_err().to_string(), "task_done called more times than items were put");
}

#[test]
fn join_times_out_until_each_item_is_done() {
    // test__monkey_queue.py BaseQueueTest.test_queue_task_done_with_items.
    let q = Queue::new();
    for i in [1, 2, 3] {
        q.put(i);
    }
    for i in [1, 2, 3] {
        assert!(!q.join_timeout(MS));
        assert_eq!(q.get(), i);
        q.task_done().unwrap();
    }
    assert!(q.task_done().is_err());
    assert!(q.join_timeout(MS));
}

#[test]
fn join_with_nothing_put_returns_at_once() {
    // test__queue.py TestQueue.test_issue_45 (from the root: no LoopExit).
    let q: Queue<()> = Queue::new();
    q.join();
    assert!(q.join_timeout(Duration::ZERO));
    // Every order and a rendezvous count tasks too.
    let l = LifoQueue::bounded(0);
    let p = {
        let l = l.clone();
        green::spawn(move || l.put(1))
    };
    assert_eq!(l.get(), 1);
    assert_eq!(l.unfinished_tasks(), 1);
    l.task_done().unwrap();
    l.join();
    p.join().unwrap();
}

#[test]
fn interrupted_joiners_leave_no_trace() {
    let q = Queue::new();
    q.put(1);
    let done = log();
    let qq = q.clone();
    let gs = spawn_waiters(3, &done, move |i| match i {
        0 => qq.join_timeout(MS),
        1 => green::with_timeout(MS, || qq.join()).is_ok(),
        _ => {
            qq.join();
            true
        }
    });
    wait_until(|| done.borrow().len() == 2);
    done.borrow_mut().sort();
    let killed = {
        let q = q.clone();
        green::spawn(move || q.join())
    };
    settle();
    killed.kill();
    q.get();
    q.task_done().unwrap();
    green::joinall(gs);
    assert_eq!(*done.borrow(), [(0, false), (1, false), (2, true)]);
    assert!(matches!(killed.join(), Err(GreenletError::Killed)));
}

// ---- shutdown ----

#[test]
fn shutdown_all_methods_in_one_greenlet() {
    // test__queue.py TestQueue.test_shutdown_all_methods_in_one_thread
    // (Python 3.13's shutdown(immediate=False)): puts fail at once, gets
    // drain what is held and then fail at once.
    let q = Queue::new();
    q.put("L");
    q.try_put("O").unwrap();
    q.shutdown();
    assert!(q.is_shutdown());
    assert!(panic_message(|| q.put("E")).contains("Queue::put on a queue that was shut down"));
    assert_eq!(q.try_put("W"), Err("W"));
    assert_eq!(q.put_timeout("W", Duration::from_secs(10)), Err("W"));
    assert!("LO".contains(q.get()));
    q.task_done().unwrap();
    assert!("LO".contains(q.get()));
    q.task_done().unwrap();
    q.join();
    let msg = panic_message(|| {
        q.get();
    });
    assert!(msg.contains("Queue::get on a queue that was shut down and is empty"), "{msg}");
    assert_eq!(q.try_get(), None);
    // A shut-down queue does not wait.
    let start = std::time::Instant::now();
    assert_eq!(q.get_timeout(Duration::from_secs(10)), None);
    assert_eq!(q.peek_timeout(Duration::from_secs(10)), None);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        panic_message(|| {
            q.peek();
        })
        .contains("Queue::peek on a queue that was shut down")
    );
}

#[test]
fn shutdown_immediate_all_methods_in_one_greenlet() {
    // test__queue.py TestQueue.test_shutdown_immediate_all_methods_in_one_thread
    // (shutdown(immediate=True)); the removed items are returned here.
    let q = LifoQueue::new();
    q.put("L");
    q.try_put("O").unwrap();
    assert_eq!(q.shutdown_immediate(), ["O", "L"]);
    assert!(panic_message(|| q.put("E")).contains("LifoQueue::put on a queue that was shut down"));
    assert_eq!(q.try_put("W"), Err("W"));
    assert!(
        panic_message(|| {
            q.get();
        })
        .contains("shut down")
    );
    assert_eq!(q.try_get(), None);
    assert_eq!(q.task_done(), Err(TaskDoneError), "the removed items were marked done");
    q.join();
    // Items already taken stay unfinished until marked done.
    let p = PriorityQueue::new();
    p.put(2);
    p.put(1);
    assert_eq!(p.get(), 1);
    assert_eq!(p.shutdown_immediate(), [2]);
    assert_eq!(p.unfinished_tasks(), 1);
    assert!(!p.join_timeout(MS));
    p.task_done().unwrap();
    p.join();
}

#[test]
fn shutdown_wakes_every_waiter() {
    let q: Queue<u32> = Queue::new();
    let got = log();
    let qq = q.clone();
    let getters = spawn_waiters(4, &got, move |i| match i {
        0 => qq.get_timeout(Duration::from_secs(30)).map(|v| v.to_string()),
        1 => Some(qq.iter().map(|v| v.to_string()).collect::<String>()),
        2 => qq.peek_timeout(Duration::from_secs(30)).map(|v| v.to_string()),
        _ => Some(qq.get().to_string()), // panics: shut down
    });
    settle();
    q.shutdown();
    let results = green::joinall(getters);
    assert!(matches!(&results[3], Err(GreenletError::Panicked(_))));
    assert_eq!(*got.borrow(), [(0, None), (1, Some(String::new())), (2, None)]);

    let q = PriorityQueue::bounded(1);
    q.put(0u32);
    let back = log();
    let qq = q.clone();
    let putters = spawn_waiters(3, &back, move |i| match i {
        0 => qq.put_timeout(10, Duration::from_secs(30)),
        1 => qq.put_timeout(11, Duration::from_secs(30)),
        _ => {
            qq.put(12); // panics: shut down
            Ok(())
        }
    });
    settle();
    assert!(q.is_full());
    q.shutdown();
    let results = green::joinall(putters);
    let Err(GreenletError::Panicked(p)) = &results[2] else { panic!("{:?}", results[2]) };
    let msg = p.downcast_ref::<String>().unwrap();
    assert!(msg.contains("PriorityQueue::put on a queue that was shut down"), "{msg}");
    assert_eq!(*back.borrow(), [(0, Err(10)), (1, Err(11))], "the items came back");
    assert_eq!(q.try_get(), Some(0), "what was held is still delivered");
    assert_eq!(q.try_get(), None);
    assert!(format!("{q:?}").contains("getters: 0, putters: 0"), "{q:?}");
}

#[test]
fn a_putter_refused_by_shutdown_then_killed_keeps_its_item_and_dies() {
    let q = Queue::bounded(1);
    q.put(0);
    let back = log();
    let g = {
        let (q, back) = (q.clone(), back.clone());
        green::spawn(move || {
            let r = q.put_timeout(1, Duration::from_secs(30));
            back.borrow_mut().push(r);
            green::sleep(Duration::from_secs(30)); // the kill lands here
        })
    };
    settle();
    q.shutdown(); // served: refused...
    g.kill(); // ...and killed before it runs again
    assert_eq!(*back.borrow(), [Err(1)]);
    assert!(matches!(g.join(), Err(GreenletError::Killed)));
}

// ---- iteration ----

#[test]
fn iteration_ends_once_the_queue_is_shut_down_and_drained() {
    // test__queue.py TestChannel.test_iterable and gevent.queue's module
    // example (both stop at a StopIteration item; a shutdown here).
    let q = Queue::new();
    q.put(1);
    q.put(2);
    q.shutdown();
    assert_eq!((&q).into_iter().collect::<Vec<_>>(), [1, 2]);
    assert_eq!(q.iter().next(), None);
    assert_eq!(q.clone().into_iter().next(), None);

    // A consumer iterating over a rendezvous while a producer puts.
    let ch = LifoQueue::bounded(0);
    let consumer = {
        let ch = ch.clone();
        green::spawn(move || ch.into_iter().collect::<Vec<_>>())
    };
    for w in ["a", "b", "c"] {
        ch.put(w);
    }
    ch.shutdown();
    assert_eq!(consumer.join().unwrap(), ["a", "b", "c"]);
}

#[test]
fn iterating_consumers_share_the_items() {
    let q = Queue::bounded(2);
    let seen = log();
    let consumers: Vec<_> = (0..3)
        .map(|c| {
            let (q, seen) = (q.clone(), seen.clone());
            green::spawn(move || {
                for v in &q {
                    seen.borrow_mut().push((c, v));
                    green::yield_now();
                }
            })
        })
        .collect();
    for v in 0..30 {
        q.put(v);
    }
    q.shutdown();
    for r in green::joinall(consumers) {
        r.unwrap();
    }
    let seen = seen.borrow();
    let mut items: Vec<u32> = seen.iter().map(|x| x.1).collect();
    items.sort();
    assert_eq!(items, (0..30).collect::<Vec<_>>(), "each item once");
    for c in 0..3 {
        assert!(seen.iter().any(|x| x.0 == c), "consumer {c} got nothing");
    }
}

// ---- peek ----

#[test]
fn peek_after_put_sees_what_get_returns() {
    // test__queue.py TestQueue.test_send_first.
    let q = Queue::new();
    q.put("hi");
    assert_eq!(q.peek(), "hi");
    assert_eq!(q.try_peek(), Some("hi"));
    assert_eq!(q.get(), "hi");
    assert_eq!(q.try_peek(), None);
}

#[test]
fn peek_on_an_empty_queue() {
    // test__queue.py TestQueue.test_peek_empty: no putter, in the root:
    // LoopExit; in a greenlet, a timed peek times out.
    let q: Queue<u8> = Queue::new();
    let msg = panic_message(|| {
        q.peek();
    });
    assert!(msg.contains("LoopExit") && msg.contains("Queue::peek"), "{msg}");
    let waiter = {
        let q = q.clone();
        green::spawn(move || took_at_least(MS * 10, |t| q.peek_timeout(t)))
    };
    assert_eq!(waiter.join().unwrap(), None);
    // A rendezvous never holds an item.
    let r: Queue<u8> = Queue::bounded(0);
    assert_eq!(r.try_peek(), None);
    assert_eq!(r.peek_timeout(Duration::from_secs(30)), None);
    assert!(
        panic_message(|| {
            r.peek();
        })
        .contains("bounded(0)")
    );
}

#[test]
fn peekers_wait_for_an_item_and_leave_it() {
    // test__queue.py TestQueue.test_peek_multi_greenlet, with a getter
    // waiting as well: every peeker sees the item the getter takes.
    let q = Queue::new();
    let seen = log();
    let qq = q.clone();
    let gs = spawn_waiters(3, &seen, move |i| if i == 1 { qq.get() } else { qq.peek() });
    settle();
    q.put(1);
    for r in green::joinall(gs) {
        r.unwrap();
    }
    // The peekers were shown the item before the getter took it.
    assert_eq!(*seen.borrow(), [(0, 1), (2, 1), (1, 1)]);
    assert!(q.is_empty(), "the getter took it");
    q.put(2);
    assert_eq!(q.peek(), 2);
    assert_eq!(q.len(), 1);
}

/// An item whose clones are counted: a stale peeker would be shown one.
#[derive(Debug, PartialEq)]
struct Counted(u32, Rc<Cell<u32>>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.1.set(self.1.get() + 1);
        Counted(self.0, self.1.clone())
    }
}

#[test]
fn interrupted_peekers_leave_no_trace() {
    let q: LifoQueue<Counted> = LifoQueue::new();
    let seen = log();
    let qq = q.clone();
    let gs = spawn_waiters(3, &seen, move |i| match i {
        0 => qq.peek_timeout(MS).map(|c| c.0),
        1 => green::with_timeout(MS, || qq.peek().0).ok(),
        _ => Some(qq.peek().0),
    });
    wait_until(|| seen.borrow().len() == 2);
    seen.borrow_mut().sort();
    gs[2].kill();
    let clones = Rc::new(Cell::new(0));
    q.put(Counted(5, clones.clone()));
    assert_eq!(clones.get(), 0, "a peeker that stopped waiting was shown the item");
    green::joinall(gs);
    assert_eq!(*seen.borrow(), [(0, None), (1, None)]);
    assert_eq!(q.try_get().map(|c| c.0), Some(5));
}

#[test]
fn a_peeker_served_just_before_its_kill_keeps_its_copy() {
    let q = Queue::new();
    let seen = log();
    let g = {
        let (q, seen) = (q.clone(), seen.clone());
        green::spawn(move || {
            let v: u32 = q.peek();
            seen.borrow_mut().push(v);
            green::sleep(Duration::from_secs(30));
        })
    };
    settle();
    q.put(3);
    g.kill();
    assert_eq!(*seen.borrow(), [3]);
    assert_eq!(q.len(), 1);
}

#[test]
fn a_panicking_clone_leaves_the_peekers_waiting() {
    #[derive(Debug)]
    struct Fragile(bool);
    impl Clone for Fragile {
        fn clone(&self) -> Self {
            assert!(!self.0, "refused to clone");
            Fragile(false)
        }
    }
    let q: Queue<Fragile> = Queue::new();
    let p = {
        let q = q.clone();
        green::spawn(move || q.peek().0)
    };
    settle();
    assert!(panic_message(|| q.put(Fragile(true))).contains("refused to clone"));
    assert!(!p.is_finished(), "the peeker is still waiting");
    q.put(Fragile(false));
    assert!(!p.join().unwrap());
}

// ---- Channel: a rendezvous ----

#[test]
fn channel_put_returns_after_the_getter_has_run() {
    // test__queue.py TestChannel.test_send (and gevent's Channel example).
    let channel = Channel::new();
    let events: Log<String> = log();
    let g = {
        let (channel, events) = (channel.clone(), events.clone());
        green::spawn(move || {
            for _ in 0..2 {
                let v = channel.get();
                events.borrow_mut().push(v);
            }
        })
    };
    events.borrow_mut().push("sending".into());
    channel.put("hello".into());
    events.borrow_mut().push("sent hello".into());
    channel.put("world".into());
    events.borrow_mut().push("sent world".into());
    assert_eq!(*events.borrow(), ["sending", "hello", "sent hello", "world", "sent world"]);
    g.join().unwrap();
}

#[test]
fn channel_get_returns_before_the_putter_runs_on() {
    // test__queue.py TestChannel.test_wait.
    let channel = Channel::new();
    let events: Log<String> = log();
    let g = {
        let (channel, events) = (channel.clone(), events.clone());
        green::spawn(move || {
            events.borrow_mut().push("sending hello".into());
            channel.put("hello".into());
            events.borrow_mut().push("sending world".into());
            channel.put("world".into());
            events.borrow_mut().push("sent world".into());
        })
    };
    events.borrow_mut().push("waiting".into());
    let v = channel.get();
    events.borrow_mut().push(v);
    let v = channel.get();
    events.borrow_mut().push(v);
    assert_eq!(*events.borrow(), ["waiting", "sending hello", "hello", "sending world", "world"]);
    green::yield_now();
    assert_eq!(
        *events.borrow(),
        ["waiting", "sending hello", "hello", "sending world", "world", "sent world"]
    );
    g.join().unwrap();
}

#[test]
fn channel_sender_waits_for_a_receiver() {
    // test__queue.py TestChannel.test_zero_max_size.
    let q = Channel::new();
    let e1 = log();
    let p1 = {
        let (q, e1) = (q.clone(), e1.clone());
        green::spawn(move || {
            q.put("hi");
            e1.borrow_mut().push("done");
        })
    };
    green::sleep(MS);
    assert!(e1.borrow().is_empty());
    let p2 = {
        let q = q.clone();
        green::spawn(move || q.get())
    };
    assert_eq!(p2.join().unwrap(), "hi");
    p1.join().unwrap();
    assert_eq!(*e1.borrow(), ["done"]);
}

#[test]
fn a_bounded_zero_queue_is_the_same_rendezvous() {
    // test__queue.py TestChannel.test_send on Queue::bounded(0).
    let q = Queue::bounded(0);
    let events = log();
    let g = {
        let (q, events) = (q.clone(), events.clone());
        green::spawn(move || {
            for _ in 0..2 {
                let v = q.get();
                events.borrow_mut().push(v);
            }
        })
    };
    for w in ["hello", "world"] {
        q.put(w);
        events.borrow_mut().push("sent");
    }
    assert_eq!(*events.borrow(), ["hello", "sent", "world", "sent"]);
    g.join().unwrap();
}

#[test]
fn channel_try_put_hands_over_without_waiting_for_the_getter() {
    let ch = Channel::new();
    let g = {
        let ch = ch.clone();
        green::spawn(move || ch.get())
    };
    settle();
    assert_eq!(ch.try_put(1), Ok(()));
    assert!(!g.is_finished(), "try_put returned before the getter ran");
    assert_eq!(g.join().unwrap(), 1);
}

/// A greenlet that takes one item from `ch` and logs it, then sleeps for
/// a kill to land there.
fn logging_getter(ch: &Channel<u32>, got: &Log<String>) -> green::Greenlet<()> {
    let (ch, got) = (ch.clone(), got.clone());
    let g = green::spawn(move || {
        let v = ch.get();
        got.borrow_mut().push(format!("got {v}"));
        green::sleep(Duration::from_secs(30));
    });
    settle();
    g
}

/// A greenlet that kills `g` and returns how it ended.
fn killer(g: green::Greenlet<()>) -> green::Greenlet<Result<(), GreenletError>> {
    green::spawn(move || {
        g.kill();
        g.join()
    })
}

#[test]
fn a_putter_killed_while_its_getter_runs_has_delivered() {
    // The put's item is taken; the kill lands at its next blocking call,
    // not in the put (which would look failed, though delivered).
    let ch = Channel::new();
    let got = log();
    let getter = logging_getter(&ch, &got);
    let putter = {
        let (ch, got) = (ch.clone(), got.clone());
        green::spawn(move || {
            ch.put(1);
            got.borrow_mut().push("put returned".to_owned());
            green::sleep(Duration::from_secs(30));
        })
    };
    // Runs after the putter parks and before the getter it woke.
    let killer = killer(putter);
    assert!(matches!(killer.join().unwrap(), Err(GreenletError::Killed)));
    assert_eq!(*got.borrow(), ["got 1", "put returned"]);
    getter.kill();
}

#[test]
fn a_getter_killed_before_it_runs_keeps_the_item_and_frees_the_putter() {
    let ch = Channel::new();
    let got = log();
    let getter = logging_getter(&ch, &got);
    let putter = {
        let ch = ch.clone();
        green::spawn(move || ch.put(7))
    };
    // Runs after the putter parks and before the getter it woke.
    let killer = killer(getter);
    putter.join().unwrap();
    assert!(matches!(killer.join().unwrap(), Err(GreenletError::Killed)));
    assert_eq!(*got.borrow(), ["got 7"]);
    assert_eq!(ch.balance(), 0);
}

#[test]
fn channel_put_inside_a_libev_callback_is_refused_before_handing_over() {
    let ch = Channel::new();
    let g = {
        let ch = ch.clone();
        green::spawn(move || ch.get_timeout(Duration::from_secs(30)))
    };
    settle();
    let c = ch.clone();
    green::hub_loop().run_callback(move || c.put(1));
    // The callback's panic comes out of the root's wait.
    let msg = panic_message(|| green::sleep(MS * 20));
    assert!(msg.contains("BlockingSwitchOutError") && msg.contains("Channel::put"), "{msg}");
    assert_eq!(ch.balance(), -1, "the getter still waits: nothing was handed over");
    // try_put works there: it does not wait for the getter to run.
    let c = ch.clone();
    green::hub_loop().run_callback(move || c.try_put(2).unwrap());
    assert_eq!(g.join().unwrap(), Some(2));
}

#[test]
fn channel_get_nowait_from_the_hub_frees_a_blocked_putter() {
    // test__queue.py TestChannel.test_get_nowait_unlock_channel.
    let q = Channel::new();
    let p = {
        let q = q.clone();
        green::spawn(move || q.put(5))
    };
    green::sleep(MS);
    assert_eq!(q.balance(), 1);
    let result = log();
    let (qq, r) = (q.clone(), result.clone());
    green::hub_loop().run_callback(move || r.borrow_mut().push(qq.try_get()));
    green::sleep(MS);
    assert_eq!(*result.borrow(), [Some(5)]);
    assert!(p.is_finished());
    p.join().unwrap();
}

// ---- gevent's UsesOnlyOneItemMixin and TestQueue cases ----

#[test]
fn put_nowait_from_the_hub() {
    // test__queue.py UsesOnlyOneItemMixin.test_put_nowait_simple, for
    // Queue(1) and Channel: two put_nowait calls from loop callbacks.
    // Relies on yield_now (gevent's sleep(0)) running queued loop
    // callbacks before it returns.
    let results = log();
    let q = Queue::bounded(1);
    for v in [2, 3] {
        let (q, r) = (q.clone(), results.clone());
        green::hub_loop().run_callback(move || r.borrow_mut().push(q.try_put(v)));
    }
    green::yield_now();
    assert_eq!(*results.borrow(), [Ok(()), Err(3)]);
    results.borrow_mut().clear();
    let ch = Channel::new();
    for v in [2, 3] {
        let (ch, r) = (ch.clone(), results.clone());
        green::hub_loop().run_callback(move || r.borrow_mut().push(ch.try_put(v)));
    }
    green::yield_now();
    assert_eq!(*results.borrow(), [Err(2), Err(3)], "a channel holds nothing");
}

#[test]
fn get_nowait_from_the_hub() {
    // test__queue.py TestQueue.test_get_nowait_simple and
    // test_get_nowait_unlock. Relies on yield_now (gevent's sleep(0))
    // running queued loop callbacks before it returns.
    let q = Queue::bounded(1);
    q.put(4);
    let results = log();
    for _ in 0..2 {
        let (q, r) = (q.clone(), results.clone());
        green::hub_loop().run_callback(move || r.borrow_mut().push(q.try_get()));
    }
    green::yield_now();
    assert_eq!(*results.borrow(), [Some(4), None]);

    results.borrow_mut().clear();
    let p = {
        let q = q.clone();
        green::spawn(move || q.put(5))
    };
    assert!(q.is_empty());
    green::yield_now();
    assert!(q.is_full());
    let (qq, r) = (q.clone(), results.clone());
    green::hub_loop().run_callback(move || r.borrow_mut().push(qq.try_get()));
    green::yield_now();
    assert!(q.is_empty());
    assert_eq!(*results.borrow(), [Some(5)]);
    assert!(p.is_finished());
}

#[test]
fn put_nowait_from_the_hub_wakes_a_getter() {
    // test__queue.py UsesOnlyOneItemMixin.test_put_nowait_unlock, for
    // Queue and Channel.
    fn case(try_put: impl Fn(u32) -> Result<(), u32> + 'static, getter: green::Greenlet<u32>) {
        green::sleep(MS);
        let result = log();
        let r = result.clone();
        green::hub_loop().run_callback(move || r.borrow_mut().push(try_put(10)));
        assert!(!getter.is_finished());
        green::sleep(MS);
        assert_eq!(*result.borrow(), [Ok(())]);
        assert_eq!(getter.join().unwrap(), 10);
    }
    let q = Queue::new();
    let g = {
        let q = q.clone();
        green::spawn(move || q.get())
    };
    assert!(q.is_empty() && !q.is_full());
    case(move |v| q.try_put(v), g);
    let ch = Channel::new();
    let g = {
        let ch = ch.clone();
        green::spawn(move || ch.get())
    };
    case(move |v| ch.try_put(v), g);
}

#[test]
fn a_put_wakes_a_getter_that_waits_with_a_timeout() {
    // test__queue.py UsesOnlyOneItemMixin.test_send_last (Queue, Channel).
    let q = Queue::new();
    let p = {
        let q = q.clone();
        green::spawn(move || green::with_timeout(Duration::from_secs(10), || q.get()))
    };
    green::sleep(MS * 10);
    q.put("hi2");
    green::sleep(MS * 10);
    assert_eq!(p.join().unwrap(), Ok("hi2"));
    let ch = Channel::new();
    let p = {
        let ch = ch.clone();
        green::spawn(move || green::with_timeout(Duration::from_secs(10), || ch.get()))
    };
    green::sleep(MS * 10);
    ch.put("hi2");
    assert_eq!(p.join().unwrap(), Ok("hi2"));
}

#[test]
fn a_bounded_putter_blocks_at_the_bound() {
    // test__queue.py TestQueue.test_max_size.
    let q = Queue::bounded(2);
    let results = log();
    let p = {
        let (q, results) = (q.clone(), results.clone());
        green::spawn(move || {
            for v in ['a', 'b', 'c'] {
                q.put(v);
                results.borrow_mut().push(v);
            }
            "OK"
        })
    };
    green::yield_now();
    assert_eq!(*results.borrow(), ['a', 'b']);
    assert_eq!(q.get(), 'a');
    green::yield_now();
    assert_eq!(*results.borrow(), ['a', 'b', 'c']);
    assert_eq!(q.get(), 'b');
    assert_eq!(q.get(), 'c');
    assert_eq!(p.join().unwrap(), "OK");
}

#[test]
fn each_waiting_getter_gets_one_item() {
    // test__queue.py TestQueue.test_multiple_waiters.
    let q = Queue::new();
    let got = log();
    let qq = q.clone();
    let gs = spawn_waiters(4, &got, move |_| qq.get());
    green::sleep(MS * 10);
    fn values(got: &Log<(u32, &'static str)>) -> HashSet<&'static str> {
        got.borrow().iter().map(|x| x.1).collect()
    }
    q.put("1");
    green::sleep(MS);
    assert_eq!(values(&got).len(), 1);
    q.put("2");
    green::sleep(MS);
    assert_eq!(values(&got).len(), 2);
    q.put("3");
    q.put("4");
    green::joinall(gs);
    assert_eq!(values(&got), HashSet::from(["1", "2", "3", "4"]));
}

#[test]
fn getters_that_give_up_do_not_take_items() {
    // test__queue.py TestQueue.test_waiters_that_cancel,
    // test_two_waiters_one_dies and test_two_bogus_waiters (a Timeout(0)
    // around get there: a with_timeout of zero here).
    let q = Queue::new();
    let r = green::spawn({
        let q = q.clone();
        move || green::with_timeout(Duration::ZERO, || q.get()).map_err(|_| "timed out")
    });
    assert_eq!(r.join().unwrap(), Err("timed out"));
    q.put("hi");
    assert_eq!(q.get(), "hi");

    let got = log();
    let qq = q.clone();
    let gs = spawn_waiters(3, &got, move |i| match i {
        1 => Some(qq.get()),
        _ => green::with_timeout(Duration::ZERO, || qq.get()).ok(),
    });
    green::sleep(MS * 10);
    q.put("sent");
    green::joinall(gs);
    let mut got = got.borrow().clone();
    got.sort();
    assert_eq!(got, [(0, None), (1, Some("sent")), (2, None)]);

    let got = log();
    let qq = q.clone();
    let gs = spawn_waiters(2, &got, move |_| green::with_timeout(Duration::ZERO, || qq.get()).ok());
    green::sleep(MS * 10);
    q.put("sent");
    green::joinall(gs);
    assert_eq!(got.borrow().len(), 2);
    assert!(got.borrow().iter().all(|x| x.1.is_none()));
    assert_eq!(q.get(), "sent");
}

#[test]
fn a_getter_gets_from_a_sender_that_then_ends() {
    // test__queue.py TestQueue.test_senders_that_die (Queue, Channel).
    let q = Queue::new();
    let sender = green::spawn({
        let q = q.clone();
        move || q.put("sent")
    });
    assert_eq!(q.get(), "sent");
    sender.join().unwrap();
    let ch = Channel::new();
    let sender = green::spawn({
        let ch = ch.clone();
        move || ch.put("sent")
    });
    assert_eq!(ch.get(), "sent");
    // It ends once it has seen the getter run (a greenlet still parked
    // when the thread exits is leaked, see the crate docs).
    sender.join().unwrap();
}

// ---- TestGetInterrupt* / TestPutInterrupt*: each kind ----

/// A get and a full put for one order: a timed wait takes its time and
/// returns nothing; an outer timeout is raised, not lost.
fn timed_waits<O: Order<u8>>(q: OrderedQueue<u8, O>) {
    assert_eq!(took_at_least(MS * 10, |t| q.get_timeout(t)), None);
    outer_timeout_is_not_lost(|t| q.get_timeout(t));
    while !q.is_full() {
        q.put(1);
    }
    assert_eq!(took_at_least(MS * 10, |t| q.put_timeout(2, t)), Err(2));
    outer_timeout_is_not_lost(|t| q.put_timeout(2, t));
}

#[test]
fn timed_gets_and_puts_of_every_kind() {
    // test__queue.py TestGetInterrupt{,JoinableQueue,LifoQueue,
    // PriorityQueue,Channel} and TestPutInterrupt*:
    // test_raises_timeout_number and test_outer_timeout_is_not_lost.
    timed_waits(Queue::bounded(1));
    timed_waits(LifoQueue::bounded(1));
    timed_waits(PriorityQueue::bounded(1));
    let ch: Channel<u8> = Channel::new();
    assert_eq!(took_at_least(MS * 10, |t| ch.get_timeout(t)), None);
    outer_timeout_is_not_lost(|t| ch.get_timeout(t));
    assert_eq!(took_at_least(MS * 10, |t| ch.put_timeout(2, t)), Err(2));
    outer_timeout_is_not_lost(|t| ch.put_timeout(2, t));
    assert_eq!(ch.balance(), 0);
}

/// Getters and putters interrupted while waiting leave no trace, in one
/// order.
fn interrupted_waiters<O: Order<u32> + 'static>(q: OrderedQueue<u32, O>) {
    let got = log();
    let qq = q.clone();
    let gs = spawn_waiters(4, &got, move |i| match i {
        0 => qq.get_timeout(MS).unwrap_or(u32::MAX),
        1 => green::with_timeout(MS, || qq.get()).unwrap_or(u32::MAX),
        _ => qq.get(),
    });
    wait_until(|| got.borrow().len() == 2);
    got.borrow_mut().sort();
    gs[2].kill();
    q.put(100);
    green::joinall(gs);
    assert_eq!(*got.borrow(), [(0, u32::MAX), (1, u32::MAX), (3, 100)]);

    q.put(0);
    let done = log();
    let qq = q.clone();
    let gs = spawn_waiters(4, &done, move |i| match i {
        0 => qq.put_timeout(10, MS).is_ok(),
        1 => green::with_timeout(MS, || qq.put(11)).is_ok(),
        _ => {
            qq.put(10 + i);
            true
        }
    });
    wait_until(|| done.borrow().len() == 2);
    done.borrow_mut().sort();
    gs[2].kill();
    let mut rest = vec![q.get(), q.get()];
    rest.sort();
    assert_eq!(rest, [0, 13], "only the last putter's item went in");
    green::joinall(gs);
    assert_eq!(*done.borrow(), [(0, false), (1, false), (3, true)]);
    assert!(q.is_empty());
}

#[test]
fn interrupted_getters_and_putters_leave_no_trace_in_every_order() {
    interrupted_waiters(Queue::bounded(1));
    interrupted_waiters(LifoQueue::bounded(1));
    interrupted_waiters(PriorityQueue::bounded(1));
}

// ---- randomized interleavings ----

/// Producers, consumers and peekers over one queue of one order, with
/// random yields and kills, and either a shutdown or blocking puts and
/// gets (which a shutdown would make panic): every item a put accepted is
/// taken exactly once or still held, every refused one came back, and
/// every peeked one was accepted.
fn random_queue_ops<O: Order<u64> + 'static>(seed: u64, q: OrderedQueue<u64, O>, shutdown: bool) {
    let rng = Rc::new(RefCell::new(Rng(seed)));
    let accepted: Rc<RefCell<HashSet<u64>>> = Rc::default();
    let taken: Rc<RefCell<HashSet<u64>>> = Rc::default();
    let peeked: Rc<RefCell<HashSet<u64>>> = Rc::default();
    let mut gs = Vec::new();
    for g in 0..24u64 {
        let (q, rng) = (q.clone(), rng.clone());
        let (accepted, taken, peeked) = (accepted.clone(), taken.clone(), peeked.clone());
        gs.push(green::spawn(move || {
            for k in 0..20u64 {
                let op = rng.borrow_mut().below(if shutdown { 4 } else { 6 });
                let short = MS * rng.borrow_mut().below(3) as u32;
                match g % 3 {
                    0 => {
                        let item = g * 1000 + k;
                        let r = match op {
                            0 | 1 => q.put_timeout(item, short),
                            2 | 3 => q.try_put(item),
                            _ => {
                                q.put(item);
                                Ok(())
                            }
                        };
                        match r {
                            Ok(()) => assert!(accepted.borrow_mut().insert(item)),
                            Err(back) => assert_eq!(back, item, "seed {seed}: another item came back"),
                        }
                    }
                    1 => {
                        let item = match op {
                            0 => q.try_get(),
                            1 => q.iter().next(),
                            2 | 3 => q.get_timeout(short),
                            _ => Some(q.get()),
                        };
                        if let Some(item) = item {
                            assert!(taken.borrow_mut().insert(item), "seed {seed}: {item} taken twice");
                        }
                    }
                    _ => {
                        let item = if op < 2 { q.peek_timeout(short) } else { q.try_peek() };
                        peeked.borrow_mut().extend(item);
                    }
                }
                let pause = rng.borrow_mut().below(3);
                for _ in 0..pause {
                    green::yield_now();
                }
            }
        }));
    }
    for step in 0..200 {
        let n = rng.borrow_mut().below(3);
        for _ in 0..n {
            green::yield_now();
        }
        if rng.borrow_mut().chance(10) {
            let victim = rng.borrow_mut().below(gs.len() as u64) as usize;
            gs[victim].kill();
        }
        if shutdown && step == 150 {
            q.shutdown();
        }
    }
    // Greenlets still blocked would wait forever for killed ones: stop
    // everyone, then take what is left.
    for g in &gs {
        g.kill();
    }
    while let Some(item) = q.try_get() {
        assert!(taken.borrow_mut().insert(item), "seed {seed}: {item} both taken and still held");
    }
    let (accepted, taken, peeked) = (accepted.borrow(), taken.borrow(), peeked.borrow());
    assert_eq!(*accepted, *taken, "seed {seed}: accepted and delivered items differ");
    assert!(peeked.is_subset(&accepted), "seed {seed}: peeked an item never accepted");
}

#[test]
fn no_lost_or_duplicated_item_in_any_order_under_random_interleavings() {
    for seed in 1..=30u64 {
        let seed = seed * 0x9E37_79B9;
        let cap = (seed % 3) as usize; // 0: a rendezvous
        for shutdown in [false, true] {
            random_queue_ops(seed, Queue::bounded(cap), shutdown);
            random_queue_ops(seed + 1, LifoQueue::bounded(cap), shutdown);
            random_queue_ops(seed + 2, PriorityQueue::bounded(cap), shutdown);
            random_queue_ops(seed + 3, Queue::new(), shutdown);
        }
    }
}

#[test]
fn debug_names_the_kind() {
    let q: PriorityQueue<u8> = PriorityQueue::bounded(3);
    q.put(1);
    assert_eq!(
        format!("{q:?}"),
        "PriorityQueue { len: 1, capacity: Some(3), getters: 0, putters: 0, \
         unfinished_tasks: 1, is_shutdown: false }"
    );
    let l: LifoQueue<u8> = LifoQueue::default();
    assert!(format!("{:?}", l.iter()).starts_with("QueueIter { queue: LifoQueue {"));
}
