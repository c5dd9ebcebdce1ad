/* The raw C servers net-bench compares libev::green against: the same
 * vendored libev, the default loop, one io watcher per connection.
 * Each takes a listening, non-blocking socket and serves until killed.
 *
 * The threaded ones (bench_c_threaded_server) run one libev loop per
 * thread, each on its own SO_REUSEPORT listener; the raw-epoll pair
 * (bench_epoll_hello_server) compares SO_REUSEPORT with one listener
 * shared under EPOLLEXCLUSIVE, which libev cannot ask for. Each counts
 * its thread's operations in counts[8 * thread] (a cache line each) for
 * the spread. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_sys.h"

/* A threaded server's per-thread operation count (the loop's userdata;
 * null on the single-threaded servers). */
static void count(struct ev_loop *loop)
{
    unsigned long *n = ev_userdata(loop);
    if (n)
        __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
}

struct conn {
    ev_io io;
    size_t pending; /* bytes of buf still to write back */
    size_t off;
    char buf[4096];
};

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

/* Echo: read what is there, write it back; if the peer's buffer is full,
 * wait for writability with the rest before reading again. */
static void echo_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = (struct conn *)w;
    (void)revents;
    for (;;) {
        if (c->pending == 0) {
            ssize_t n = read(w->fd, c->buf, sizeof c->buf);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                conn_close(loop, c);
                return;
            }
            if (n < 0) {
                if (errno == EAGAIN && (w->events & EV_WRITE)) {
                    ev_io_stop(loop, w);
                    ev_io_set(w, w->fd, EV_READ);
                    ev_io_start(loop, w);
                }
                return;
            }
            c->pending = (size_t)n;
            c->off = 0;
            count(loop);
        }
        ssize_t m = write(w->fd, c->buf + c->off, c->pending);
        if (m < 0) {
            if (errno == EAGAIN) {
                if (!(w->events & EV_WRITE)) {
                    ev_io_stop(loop, w);
                    ev_io_set(w, w->fd, EV_WRITE);
                    ev_io_start(loop, w);
                }
                return;
            }
            if (errno != EINTR) {
                conn_close(loop, c);
                return;
            }
            continue;
        }
        c->pending -= (size_t)m;
        c->off += (size_t)m;
    }
}

static void echo_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or an error to retry on the next event */
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->pending = 0;
        c->off = 0;
        ev_io_init(&c->io, echo_cb, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

static void hello_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    static const char msg[] = "hello world\r\n";
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* 13 bytes into a fresh socket buffer never block. */
        ssize_t n = write(fd, msg, sizeof msg - 1);
        (void)n;
        close(fd);
        count(loop);
    }
}

static int serve(int listen_fd, void (*cb)(struct ev_loop *, ev_io *, int))
{
    struct ev_loop *loop = ev_default_loop(0);
    ev_io accept_w;
    ev_io_init(&accept_w, cb, listen_fd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_run(loop, 0);
    return 0;
}

int bench_c_echo_server(int listen_fd)
{
    return serve(listen_fd, echo_accept_cb);
}

int bench_c_hello_server(int listen_fd)
{
    return serve(listen_fd, hello_accept_cb);
}

struct thread_args {
    int fd;
    int echo;
    unsigned long *count;
};

static void *loop_thread(void *p)
{
    struct thread_args *a = p;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    ev_io accept_w;
    if (!loop)
        abort();
    ev_set_userdata(loop, a->count);
    ev_io_init(&accept_w, a->echo ? echo_accept_cb : hello_accept_cb, a->fd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_run(loop, 0);
    return NULL;
}

/* Serves on n threads, thread i with its own loop on fds[i] (SO_REUSEPORT
 * siblings), counting into counts[8 * i]; returns once they run (they serve
 * until the process ends), or -1. */
int bench_c_threaded_server(const int *fds, int n, int echo, unsigned long *counts)
{
    for (int i = 0; i < n; i++) {
        struct thread_args *a = malloc(sizeof *a);
        pthread_t t;
        if (!a)
            return -1;
        a->fd = fds[i];
        a->echo = echo;
        a->count = &counts[8 * i]; /* a cache line each */
        if (pthread_create(&t, NULL, loop_thread, a) != 0)
            return -1;
        pthread_detach(t);
    }
    return 0;
}

struct epoll_args {
    int fd;
    int exclusive;
    unsigned long *count;
};

/* The hello server on raw epoll: wait, accept all, greet, close. */
static void *epoll_thread(void *p)
{
    static const char msg[] = "hello world\r\n";
    struct epoll_args *a = p;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | (a->exclusive ? EPOLLEXCLUSIVE : 0), .data.fd = a->fd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, a->fd, &ev) != 0)
        abort();
    for (;;) {
        struct epoll_event got[8];
        if (epoll_wait(ep, got, 8, -1) < 0)
            continue;
        for (;;) {
            int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            ssize_t n = write(fd, msg, sizeof msg - 1);
            (void)n;
            close(fd);
            __atomic_fetch_add(a->count, 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

/* n raw-epoll hello threads: on fds[i] each (SO_REUSEPORT siblings), or
 * with exclusive set all on fds[0] with EPOLLEXCLUSIVE. As above. */
int bench_epoll_hello_server(const int *fds, int n, int exclusive, unsigned long *counts)
{
    for (int i = 0; i < n; i++) {
        struct epoll_args *a = malloc(sizeof *a);
        pthread_t t;
        if (!a)
            return -1;
        a->fd = exclusive ? fds[0] : fds[i];
        a->exclusive = exclusive;
        a->count = &counts[8 * i];
        if (pthread_create(&t, NULL, epoll_thread, a) != 0)
            return -1;
        pthread_detach(t);
    }
    return 0;
}
