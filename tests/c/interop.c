/*
 * A stand-in for a C library built on libev, for tests/c_interop.rs:
 * it starts watchers of its own on a loop Rust gives it, and makes a loop
 * of its own for Rust to borrow.
 */
#include "ev_sys.h"
#include <stdlib.h>
#include <unistd.h>

/* A C watcher as a library would keep it: the ev_io first, its state after. */
struct c_reader {
  ev_io io;
  int bytes;
  int stop_after;
};

static void
c_reader_cb (struct ev_loop *loop, ev_io *w, int revents)
{
  struct c_reader *r = (struct c_reader *)w;
  char buf[64];
  ssize_t n;

  (void)revents;
  n = read (w->fd, buf, sizeof buf);
  if (n > 0)
    r->bytes += (int)n;
  if (n <= 0 || r->bytes >= r->stop_after)
    ev_io_stop (loop, w);
}

/* Starts a C io watcher reading `fd` on `loop` until `stop_after` bytes. */
struct c_reader *
interop_reader_start (struct ev_loop *loop, int fd, int stop_after)
{
  struct c_reader *r = calloc (1, sizeof *r);
  if (!r)
    return 0;
  r->stop_after = stop_after;
  ev_io_init (&r->io, c_reader_cb, fd, EV_READ);
  ev_io_start (loop, &r->io);
  return r;
}

int
interop_reader_bytes (const struct c_reader *r)
{
  return r->bytes;
}

int
interop_reader_active (const struct c_reader *r)
{
  return ev_is_active (&r->io);
}

void
interop_reader_free (struct ev_loop *loop, struct c_reader *r)
{
  ev_io_stop (loop, &r->io);
  free (r);
}

/* A library's own loop, with its own userdata, and a C timer on it. */
static ev_timer c_timer;
static int c_timer_fired;
static int c_userdata = 42;

static void
c_timer_cb (struct ev_loop *loop, ev_timer *w, int revents)
{
  (void)loop; (void)w; (void)revents;
  c_timer_fired++;
}

struct ev_loop *
interop_loop_new (void)
{
  struct ev_loop *loop = ev_loop_new (EVFLAG_AUTO);
  if (!loop)
    return 0;
  ev_set_userdata (loop, &c_userdata);
  c_timer_fired = 0;
  ev_timer_init (&c_timer, c_timer_cb, 0.001, 0.);
  ev_timer_start (loop, &c_timer);
  return loop;
}

/* What the library's own code sees: its userdata, and its timer. */
int
interop_loop_userdata_intact (struct ev_loop *loop)
{
  return ev_userdata (loop) == &c_userdata;
}

int
interop_timer_fired (void)
{
  return c_timer_fired;
}

/* The library runs its loop itself. */
int
interop_loop_run (struct ev_loop *loop)
{
  return ev_run (loop, 0);
}

void
interop_loop_destroy (struct ev_loop *loop)
{
  ev_timer_stop (loop, &c_timer);
  ev_loop_destroy (loop);
}
