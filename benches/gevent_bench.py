"""gevent's side of green-bench: the same workloads, printed as
`name ns_per_op [extra]` lines for green-bench to read."""
import os
import sys
import time

import gevent
from gevent.queue import Channel, Queue


def yield_roundtrip(n):
    def worker():
        for _ in range(n):
            gevent.sleep(0)
    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(worker), gevent.spawn(worker)])
    return (time.perf_counter_ns() - t0) / (2 * n)


def spawn_join(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        gevent.spawn(lambda: None).join()
    return (time.perf_counter_ns() - t0) / n


def ping_pong(n, make):
    ping, pong = make(), make()

    def echo():
        for _ in range(n):
            pong.put(ping.get())

    def player():
        for i in range(n):
            ping.put(i)
            assert pong.get() == i

    gs = [gevent.spawn(echo), gevent.spawn(player)]
    t0 = time.perf_counter_ns()
    gevent.joinall(gs, raise_error=True)
    return (time.perf_counter_ns() - t0) / n


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def parked(n):
    before = rss_kib()
    t0 = time.perf_counter_ns()
    gs = [gevent.spawn(gevent.sleep, 3600) for _ in range(n)]
    gevent.sleep(0)
    after = rss_kib()
    gevent.killall(gs)
    total = time.perf_counter_ns() - t0
    return total / n, (after - before) * 1024 / n


if __name__ == "__main__":
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print("yield", yield_roundtrip(int(200_000 * scale)))
    print("spawn_join", spawn_join(int(100_000 * scale)))
    print("queue", ping_pong(int(100_000 * scale), Queue))
    print("channel", ping_pong(int(100_000 * scale), Channel))
    ns, bytes_per = parked(int(100_000 * scale))
    print("parked", ns, bytes_per)
