/*
 * The C side of libev-bench: the same three workloads as src/main.rs,
 * written directly against libev. Compiled by build.rs with the defines
 * libev-sys built libev with (ev_sys.h); the ev_* functions link from
 * libev-sys's static archive.
 *
 * Each function returns the elapsed time of the measured part in
 * nanoseconds (CLOCK_MONOTONIC). The Rust side must reproduce a check
 * value (a PRNG state or an operation count): idle and pipe_ring store it
 * in *check, the states of the timer and io workloads hand it out through
 * their _check functions.
 */

#include "ev_sys.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

struct libev_bench_timers;
struct libev_bench_timers *libev_bench_c_timers_new(uint32_t ntimers);
uint64_t libev_bench_c_timers_run(struct libev_bench_timers *t, uint64_t ops);
uint64_t libev_bench_c_timers_again_run(struct libev_bench_timers *t, uint64_t ops);
uint64_t libev_bench_c_timers_check(const struct libev_bench_timers *t);
void libev_bench_c_timers_free(struct libev_bench_timers *t);
struct libev_bench_timer_ptrs;
struct libev_bench_timer_ptrs *libev_bench_c_timer_ptrs_new(uint32_t ntimers);
uint64_t libev_bench_c_timer_ptrs_run(struct libev_bench_timer_ptrs *t, uint64_t ops);
uint64_t libev_bench_c_timer_ptrs_check(const struct libev_bench_timer_ptrs *t);
void libev_bench_c_timer_ptrs_free(struct libev_bench_timer_ptrs *t);
struct libev_bench_io_set;
struct libev_bench_io_set *libev_bench_c_io_set_new(uint32_t nfds, const int *fds);
uint64_t libev_bench_c_io_set_run(struct libev_bench_io_set *t, uint64_t ops);
uint64_t libev_bench_c_io_set_check(const struct libev_bench_io_set *t);
void libev_bench_c_io_set_free(struct libev_bench_io_set *t);
struct libev_bench_io_ptrs;
struct libev_bench_io_ptrs *libev_bench_c_io_ptrs_new(uint32_t nfds, const int *fds);
uint64_t libev_bench_c_io_ptrs_run(struct libev_bench_io_ptrs *t, uint64_t ops);
uint64_t libev_bench_c_io_ptrs_check(const struct libev_bench_io_ptrs *t);
void libev_bench_c_io_ptrs_free(struct libev_bench_io_ptrs *t);
uint64_t libev_bench_c_idle(uint64_t n, uint64_t *check);
uint64_t libev_bench_c_pipe_ring(uint32_t npipes, uint64_t hops, uint64_t *check);
uint64_t libev_bench_c_pipe_ring_on(uint32_t npipes, uint64_t hops, unsigned int flags,
                                    uint64_t *check, unsigned int *backend);

static uint64_t
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64; src/main.rs has the same generator and seed. */
#define XORSHIFT_SEED UINT64_C(0x9E3779B97F4A7C15)

static inline uint64_t
xorshift (uint64_t *s)
{
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}

/* A delay between 1000 and 2000 s in whole milliseconds, so no timer fires. */
static inline ev_tstamp
random_after (uint64_t *s)
{
  uint64_t ms = 1000000u + xorshift (s) % 1000000u;
  return (ev_tstamp)ms * 1e-3;
}

static void
never_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  (void)loop; (void)w; (void)revents;
  abort ();
}

/* The timers workload keeps its state between calls, so the driver can
   interleave short runs of C and Rust (see turns.rs). */
struct libev_bench_timers
{
  struct ev_loop *loop;
  ev_timer *timers;
  uint32_t ntimers;
  uint64_t s;
};

struct libev_bench_timers *
libev_bench_c_timers_new (uint32_t ntimers)
{
  struct libev_bench_timers *t = malloc (sizeof *t);
  uint32_t i;

  if (!t)
    abort ();
  t->loop = ev_loop_new (0);
  t->timers = malloc (sizeof (ev_timer) * ntimers);
  t->ntimers = ntimers;
  t->s = XORSHIFT_SEED;
  if (!t->loop || !t->timers)
    abort ();

  for (i = 0; i < ntimers; ++i)
    {
      ev_timer_init (&t->timers[i], never_cb, random_after (&t->s), 0.);
      ev_timer_start (t->loop, &t->timers[i]);
    }
  return t;
}

uint64_t
libev_bench_c_timers_run (struct libev_bench_timers *t, uint64_t ops)
{
  struct ev_loop *loop = t->loop;
  ev_timer *timers = t->timers;
  uint32_t ntimers = t->ntimers;
  uint64_t s = t->s;
  uint64_t start, end, i;

  start = now_ns ();
  for (i = 0; i < ops; ++i)
    {
      ev_timer *w = &timers[xorshift (&s) % ntimers];
      ev_timer_stop (loop, w);
      ev_timer_set (w, random_after (&s), 0.);
      ev_timer_start (loop, w);
    }
  end = now_ns ();

  t->s = s;
  return end - start;
}

/* The same timers moved the way Timer::restart and TimerArray::restart
   move them: ev_timer_again with the new delay as the repeat, one heap
   adjustment where stop and start take the timer out and put it back. */
uint64_t
libev_bench_c_timers_again_run (struct libev_bench_timers *t, uint64_t ops)
{
  struct ev_loop *loop = t->loop;
  ev_timer *timers = t->timers;
  uint32_t ntimers = t->ntimers;
  uint64_t s = t->s;
  uint64_t start, end, i;

  start = now_ns ();
  for (i = 0; i < ops; ++i)
    {
      ev_timer *w = &timers[xorshift (&s) % ntimers];
      w->repeat = random_after (&s);
      ev_timer_again (loop, w);
      w->repeat = 0.;
    }
  end = now_ns ();

  t->s = s;
  return end - start;
}

uint64_t
libev_bench_c_timers_check (const struct libev_bench_timers *t)
{
  return t->s;
}

void
libev_bench_c_timers_free (struct libev_bench_timers *t)
{
  uint32_t i;

  for (i = 0; i < t->ntimers; ++i)
    ev_timer_stop (t->loop, &t->timers[i]);
  free (t->timers);
  ev_loop_destroy (t->loop);
  free (t);
}

/* The same workload with each 48-byte ev_timer in its own allocation,
   reached through an array of pointers: one handle per timer, as a
   Vec<Timer> has, at the least it can cost (no reference count, no
   flags, no loop pointer in the node). */
struct libev_bench_timer_ptrs
{
  struct ev_loop *loop;
  ev_timer **timers;
  uint32_t ntimers;
  uint64_t s;
};

struct libev_bench_timer_ptrs *
libev_bench_c_timer_ptrs_new (uint32_t ntimers)
{
  struct libev_bench_timer_ptrs *t = malloc (sizeof *t);
  uint32_t i;

  if (!t)
    abort ();
  t->loop = ev_loop_new (0);
  t->timers = malloc (sizeof (ev_timer *) * ntimers);
  t->ntimers = ntimers;
  t->s = XORSHIFT_SEED;
  if (!t->loop || !t->timers)
    abort ();

  for (i = 0; i < ntimers; ++i)
    {
      ev_timer *w = malloc (sizeof *w);
      if (!w)
        abort ();
      ev_timer_init (w, never_cb, random_after (&t->s), 0.);
      ev_timer_start (t->loop, w);
      t->timers[i] = w;
    }
  return t;
}

uint64_t
libev_bench_c_timer_ptrs_run (struct libev_bench_timer_ptrs *t, uint64_t ops)
{
  struct ev_loop *loop = t->loop;
  ev_timer **timers = t->timers;
  uint32_t ntimers = t->ntimers;
  uint64_t s = t->s;
  uint64_t start, end, i;

  start = now_ns ();
  for (i = 0; i < ops; ++i)
    {
      ev_timer *w = timers[xorshift (&s) % ntimers];
      ev_timer_stop (loop, w);
      ev_timer_set (w, random_after (&s), 0.);
      ev_timer_start (loop, w);
    }
  end = now_ns ();

  t->s = s;
  return end - start;
}

uint64_t
libev_bench_c_timer_ptrs_check (const struct libev_bench_timer_ptrs *t)
{
  return t->s;
}

void
libev_bench_c_timer_ptrs_free (struct libev_bench_timer_ptrs *t)
{
  uint32_t i;

  for (i = 0; i < t->ntimers; ++i)
    {
      ev_timer_stop (t->loop, t->timers[i]);
      free (t->timers[i]);
    }
  free (t->timers);
  ev_loop_destroy (t->loop);
  free (t);
}

/* The io_set workload: nfds io watchers, one on each of the fds the
   caller opened (and keeps open), all started on a loop that never runs.
   Each operation changes a random watcher's events to a random one of
   READ, WRITE and both: stop, modify, start. Nothing is polled: libev
   only queues each changed fd once in its fdchanges list, for the next
   loop iteration that never comes, so this measures the watcher
   operations themselves. */
static void
never_io_cb (struct ev_loop *loop, ev_io *w, int revents)
{
  (void)loop; (void)w; (void)revents;
  abort ();
}

/* One of READ, WRITE and both; src/io_set.rs picks the same way. */
static inline int
random_events (uint64_t *s)
{
  static const int events[3] = { EV_READ, EV_WRITE, EV_READ | EV_WRITE };
  return events[xorshift (s) % 3u];
}

/* ev_io_modify, whose macro in ev.h trips -Wparentheses. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wparentheses"
static inline void
io_modify (ev_io *w, int events)
{
  ev_io_modify (w, events);
}
#pragma GCC diagnostic pop

struct libev_bench_io_set
{
  struct ev_loop *loop;
  ev_io *ios;
  uint32_t nfds;
  uint64_t s;
};

struct libev_bench_io_set *
libev_bench_c_io_set_new (uint32_t nfds, const int *fds)
{
  struct libev_bench_io_set *t = malloc (sizeof *t);
  uint32_t i;

  if (!t)
    abort ();
  t->loop = ev_loop_new (0);
  t->ios = malloc (sizeof (ev_io) * nfds);
  t->nfds = nfds;
  t->s = XORSHIFT_SEED;
  if (!t->loop || !t->ios)
    abort ();

  for (i = 0; i < nfds; ++i)
    {
      ev_io_init (&t->ios[i], never_io_cb, fds[i], EV_READ);
      ev_io_start (t->loop, &t->ios[i]);
    }
  return t;
}

uint64_t
libev_bench_c_io_set_run (struct libev_bench_io_set *t, uint64_t ops)
{
  struct ev_loop *loop = t->loop;
  ev_io *ios = t->ios;
  uint32_t nfds = t->nfds;
  uint64_t s = t->s;
  uint64_t start, end, i;

  start = now_ns ();
  for (i = 0; i < ops; ++i)
    {
      ev_io *w = &ios[xorshift (&s) % nfds];
      ev_io_stop (loop, w);
      io_modify (w, random_events (&s));
      ev_io_start (loop, w);
    }
  end = now_ns ();

  t->s = s;
  return end - start;
}

uint64_t
libev_bench_c_io_set_check (const struct libev_bench_io_set *t)
{
  return t->s;
}

void
libev_bench_c_io_set_free (struct libev_bench_io_set *t)
{
  uint32_t i;

  for (i = 0; i < t->nfds; ++i)
    ev_io_stop (t->loop, &t->ios[i]);
  free (t->ios);
  ev_loop_destroy (t->loop);
  free (t);
}

/* The same workload with each 48-byte ev_io in its own allocation,
   reached through an array of pointers: one handle per watcher, as a
   Vec<Io> has, at the least it can cost (as timer_ptrs for timers). */
struct libev_bench_io_ptrs
{
  struct ev_loop *loop;
  ev_io **ios;
  uint32_t nfds;
  uint64_t s;
};

struct libev_bench_io_ptrs *
libev_bench_c_io_ptrs_new (uint32_t nfds, const int *fds)
{
  struct libev_bench_io_ptrs *t = malloc (sizeof *t);
  uint32_t i;

  if (!t)
    abort ();
  t->loop = ev_loop_new (0);
  t->ios = malloc (sizeof (ev_io *) * nfds);
  t->nfds = nfds;
  t->s = XORSHIFT_SEED;
  if (!t->loop || !t->ios)
    abort ();

  for (i = 0; i < nfds; ++i)
    {
      ev_io *w = malloc (sizeof *w);
      if (!w)
        abort ();
      ev_io_init (w, never_io_cb, fds[i], EV_READ);
      ev_io_start (t->loop, w);
      t->ios[i] = w;
    }
  return t;
}

uint64_t
libev_bench_c_io_ptrs_run (struct libev_bench_io_ptrs *t, uint64_t ops)
{
  struct ev_loop *loop = t->loop;
  ev_io **ios = t->ios;
  uint32_t nfds = t->nfds;
  uint64_t s = t->s;
  uint64_t start, end, i;

  start = now_ns ();
  for (i = 0; i < ops; ++i)
    {
      ev_io *w = ios[xorshift (&s) % nfds];
      ev_io_stop (loop, w);
      io_modify (w, random_events (&s));
      ev_io_start (loop, w);
    }
  end = now_ns ();

  t->s = s;
  return end - start;
}

uint64_t
libev_bench_c_io_ptrs_check (const struct libev_bench_io_ptrs *t)
{
  return t->s;
}

void
libev_bench_c_io_ptrs_free (struct libev_bench_io_ptrs *t)
{
  uint32_t i;

  for (i = 0; i < t->nfds; ++i)
    {
      ev_io_stop (t->loop, t->ios[i]);
      free (t->ios[i]);
    }
  free (t->ios);
  ev_loop_destroy (t->loop);
  free (t);
}

struct idle_ctx
{
  ev_idle w;
  uint64_t count;
  uint64_t n;
};

static void
idle_cb (struct ev_loop *loop, ev_idle *w, int revents)
{
  struct idle_ctx *ctx = (struct idle_ctx *)w;
  (void)revents;
  if (++ctx->count == ctx->n)
    ev_idle_stop (loop, w);
}

uint64_t
libev_bench_c_idle (uint64_t n, uint64_t *check)
{
  struct ev_loop *loop = ev_loop_new (0);
  struct idle_ctx ctx;
  uint64_t start, end;

  if (!loop)
    abort ();
  ctx.count = 0;
  ctx.n = n;
  ev_idle_init (&ctx.w, idle_cb);
  ev_idle_start (loop, &ctx.w);

  start = now_ns ();
  ev_run (loop, 0);
  end = now_ns ();

  ev_loop_destroy (loop);
  *check = ctx.count;
  return end - start;
}

struct ring_io
{
  ev_io w;
  int next_wfd;  /* write end of the next pipe in the ring */
  uint64_t *hops;
  uint64_t n;
};

static void
ring_cb (struct ev_loop *loop, ev_io *w, int revents)
{
  struct ring_io *r = (struct ring_io *)w;
  char token;
  (void)revents;
  if (read (w->fd, &token, 1) != 1)
    abort ();
  if (++*r->hops == r->n)
    {
      ev_break (loop, EVBREAK_ALL);
      return;
    }
  if (write (r->next_wfd, &token, 1) != 1)
    abort ();
}

static void
set_nonblock (int fd)
{
  int flags = fcntl (fd, F_GETFL);
  if (flags == -1 || fcntl (fd, F_SETFL, flags | O_NONBLOCK) == -1)
    abort ();
}

/* The pipe ring on a loop created with `flags` (ev_loop_new's flags and
   backends: 0 for libev's choice); *backend receives the backend the loop
   used at the end of the run (libev's linuxaio and io_uring may switch to
   epoll on their own). */
uint64_t
libev_bench_c_pipe_ring_on (uint32_t npipes, uint64_t hops, unsigned int flags,
                            uint64_t *check, unsigned int *backend)
{
  struct ev_loop *loop = ev_loop_new (flags);
  int (*fds)[2] = malloc (sizeof (int[2]) * npipes);
  struct ring_io *ios = malloc (sizeof (struct ring_io) * npipes);
  uint64_t count = 0;
  uint64_t start, end;
  uint32_t i;

  if (!loop || !fds || !ios)
    abort ();
  for (i = 0; i < npipes; ++i)
    {
      if (pipe (fds[i]) != 0)
        abort ();
      set_nonblock (fds[i][0]);
      set_nonblock (fds[i][1]);
    }
  for (i = 0; i < npipes; ++i)
    {
      ev_io_init (&ios[i].w, ring_cb, fds[i][0], EV_READ);
      ios[i].next_wfd = fds[(i + 1) % npipes][1];
      ios[i].hops = &count;
      ios[i].n = hops;
      ev_io_start (loop, &ios[i].w);
    }
  if (write (fds[0][1], "t", 1) != 1)
    abort ();

  start = now_ns ();
  ev_run (loop, 0);
  end = now_ns ();

  *backend = ev_backend (loop);
  for (i = 0; i < npipes; ++i)
    {
      ev_io_stop (loop, &ios[i].w);
      close (fds[i][0]);
      close (fds[i][1]);
    }
  free (ios);
  free (fds);
  ev_loop_destroy (loop);
  *check = count;
  return end - start;
}

uint64_t
libev_bench_c_pipe_ring (uint32_t npipes, uint64_t hops, uint64_t *check)
{
  unsigned int backend;

  return libev_bench_c_pipe_ring_on (npipes, hops, 0, check, &backend);
}
