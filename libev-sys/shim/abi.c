/*
 * libev-sys's C shim, compiled with libev and the same defines.
 *
 * 1. A table of layout facts (sizeof, alignof, offsetof) as the C compiler
 *    sees them, so Rust tests can compare the committed bindings against the
 *    C that was actually built.
 * 2. libev's function-like macros and static inline functions wrapped as
 *    real functions, so tests can check the `#[inline]` Rust versions in
 *    src/macros.rs against the originals.
 */
#include "ev.h"
#include <stddef.h>

struct libev_sys_abi_fact {
  const char *name;
  size_t value;
};

#define SIZE(T) \
  { "size_of::<" #T ">", sizeof (T) }, \
  { "align_of::<" #T ">", _Alignof (T) }
#define OFF(T, f) { "offset_of!(" #T ", " #f ")", offsetof (T, f) }
#define HEADER(T) \
  SIZE (T), OFF (T, active), OFF (T, pending), OFF (T, priority), OFF (T, data), OFF (T, cb)

static const struct libev_sys_abi_fact facts[] = {
  SIZE (ev_tstamp),
  SIZE (ev_statdata),
  HEADER (ev_watcher),
  HEADER (ev_watcher_list), OFF (ev_watcher_list, next),
  HEADER (ev_watcher_time), OFF (ev_watcher_time, at),
  HEADER (ev_io), OFF (ev_io, next), OFF (ev_io, fd), OFF (ev_io, events),
  HEADER (ev_timer), OFF (ev_timer, at), OFF (ev_timer, repeat),
  HEADER (ev_periodic), OFF (ev_periodic, at), OFF (ev_periodic, offset),
    OFF (ev_periodic, interval), OFF (ev_periodic, reschedule_cb),
  HEADER (ev_signal), OFF (ev_signal, next), OFF (ev_signal, signum),
  HEADER (ev_child), OFF (ev_child, next), OFF (ev_child, flags), OFF (ev_child, pid),
    OFF (ev_child, rpid), OFF (ev_child, rstatus),
  HEADER (ev_stat), OFF (ev_stat, next), OFF (ev_stat, timer), OFF (ev_stat, interval),
    OFF (ev_stat, path), OFF (ev_stat, prev), OFF (ev_stat, attr), OFF (ev_stat, wd),
  HEADER (ev_idle),
  HEADER (ev_prepare),
  HEADER (ev_check),
  HEADER (ev_embed), OFF (ev_embed, other), OFF (ev_embed, io), OFF (ev_embed, prepare),
    OFF (ev_embed, check), OFF (ev_embed, timer), OFF (ev_embed, periodic), OFF (ev_embed, idle),
    OFF (ev_embed, fork), OFF (ev_embed, cleanup),
  HEADER (ev_fork),
  HEADER (ev_cleanup),
  HEADER (ev_async), OFF (ev_async, sent),
};

const struct libev_sys_abi_fact *
libev_sys_abi_facts (size_t *len)
{
  *len = sizeof (facts) / sizeof (facts[0]);
  return facts;
}

/* The macros, as functions. */
#define INIT0(type) \
  void libev_sys_shim_##type##_init (ev_##type *w, void (*cb) (struct ev_loop *, ev_##type *, int)) \
  { ev_##type##_init (w, cb); }

void libev_sys_shim_init (ev_watcher *w, void (*cb) (struct ev_loop *, ev_watcher *, int)) { ev_init (w, cb); }
void libev_sys_shim_io_init (ev_io *w, void (*cb) (struct ev_loop *, ev_io *, int), int fd, int events) { ev_io_init (w, cb, fd, events); }
void libev_sys_shim_io_modify (ev_io *w, int events) { ev_io_modify (w, events); }
void libev_sys_shim_timer_init (ev_timer *w, void (*cb) (struct ev_loop *, ev_timer *, int), ev_tstamp after, ev_tstamp repeat) { ev_timer_init (w, cb, after, repeat); }
void libev_sys_shim_periodic_init (ev_periodic *w, void (*cb) (struct ev_loop *, ev_periodic *, int), ev_tstamp ofs, ev_tstamp ival, ev_tstamp (*rcb) (ev_periodic *, ev_tstamp)) { ev_periodic_init (w, cb, ofs, ival, rcb); }
void libev_sys_shim_signal_init (ev_signal *w, void (*cb) (struct ev_loop *, ev_signal *, int), int signum) { ev_signal_init (w, cb, signum); }
void libev_sys_shim_child_init (ev_child *w, void (*cb) (struct ev_loop *, ev_child *, int), int pid, int trace) { ev_child_init (w, cb, pid, trace); }
void libev_sys_shim_stat_init (ev_stat *w, void (*cb) (struct ev_loop *, ev_stat *, int), const char *path, ev_tstamp interval) { ev_stat_init (w, cb, path, interval); }
void libev_sys_shim_embed_init (ev_embed *w, void (*cb) (struct ev_loop *, ev_embed *, int), struct ev_loop *other) { ev_embed_init (w, cb, other); }
INIT0 (idle)
INIT0 (prepare)
INIT0 (check)
INIT0 (fork)
INIT0 (cleanup)
INIT0 (async)

int libev_sys_shim_is_active (ev_watcher *w) { return ev_is_active (w); }
int libev_sys_shim_is_pending (ev_watcher *w) { return ev_is_pending (w); }
int libev_sys_shim_priority (ev_watcher *w) { return ev_priority (w); }
void libev_sys_shim_set_priority (ev_watcher *w, int pri) { ev_set_priority (w, pri); }
ev_tstamp libev_sys_shim_periodic_at (ev_periodic *w) { return ev_periodic_at (w); }
int libev_sys_shim_async_pending (ev_async *w) { return ev_async_pending (w); }
struct ev_loop *libev_sys_shim_default_loop_uc (void) { return ev_default_loop_uc_ (); }
int libev_sys_shim_is_default_loop (struct ev_loop *loop) { return ev_is_default_loop (loop); }
