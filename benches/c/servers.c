/* The raw C servers net-bench compares libev::green against: the same
 * vendored libev, the default loop, one io watcher per connection.
 * Each takes a listening, non-blocking socket and serves until killed. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_sys.h"

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
    (void)loop;
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        /* 13 bytes into a fresh socket buffer never block. */
        ssize_t n = write(fd, msg, sizeof msg - 1);
        (void)n;
        close(fd);
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
