"""gevent's side of green-bench.

`gevent_bench.py SCALE` prints `name ns_per_op [extra]` lines, at SCALE
times the default sizes, for green-bench to read. `gevent_bench.py N
PARKED [WORKLOAD...]` (green-bench --tsv --peer gevent) runs N operations
per workload and parks PARKED greenlets, printing bench-all's lines:
`result<TAB>green<TAB>WORKLOAD<TAB>gevent<TAB>N<TAB>VALUE<TAB>UNIT`."""
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


def tsv(n, n_parked, only):
    def emit(workload, size, value, unit):
        print("result\tgreen\t%s\tgevent\t%d\t%.2f\t%s" % (workload, size, value, unit))

    def want(name):
        return not only or name in only

    if want("yield"):
        emit("yield", n, yield_roundtrip(n), "ns/yield")
    if want("spawn_join"):
        emit("spawn_join", n, spawn_join(n), "ns/op")
    if want("queue"):
        emit("queue", n, ping_pong(n, Queue), "ns/rt")
    if want("parked"):
        ns, bytes_per = parked(n_parked)
        emit("parked", n_parked, ns, "ns/greenlet")
        emit("parked_rss", n_parked, bytes_per, "B/greenlet")


if __name__ == "__main__":
    if len(sys.argv) > 2:
        tsv(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
        sys.exit(0)
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    print("yield", yield_roundtrip(int(200_000 * scale)))
    print("spawn_join", spawn_join(int(100_000 * scale)))
    print("queue", ping_pong(int(100_000 * scale), Queue))
    print("channel", ping_pong(int(100_000 * scale), Channel))
    ns, bytes_per = parked(int(100_000 * scale))
    print("parked", ns, bytes_per)
