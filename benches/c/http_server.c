/* The raw C HTTP/1.1 keep-alive server net-bench compares the Rust ones
 * against (`net-bench --serve c-http ADDR`): the same vendored libev, the
 * default loop, one io watcher per connection, every request answered
 * with `Hello, world!` (the reply of examples/support/hello_http.rs).
 *
 * Written the plain libev way: it looks for the end of each request's
 * head ("\r\n\r\n") and answers it, without parsing further (no bodies:
 * the load is wrk's GETs). Requests that arrived together get their
 * replies in one write. A reply that does not fit in the socket buffer
 * closes the connection: a client that waits for each reply before the
 * next request (wrk) never fills it. */
#define _GNU_SOURCE /* accept4, memmem */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_sys.h"

int bench_c_http_server(int listen_fd);

static const char REPLY[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
#define REPLY_LEN (sizeof REPLY - 1)
#define MAX_REPLIES 32

struct http_conn {
    ev_io io;
    size_t filled;
    char buf[8192];
};

static void http_close(struct ev_loop *loop, struct http_conn *c)
{
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c);
}

/* One read per callback (the loop is level-triggered: what is left
 * wakes it again). */
static void http_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct http_conn *c = (struct http_conn *)w;
    char out[MAX_REPLIES * REPLY_LEN];
    size_t used = 0, replies = 0;
    (void)revents;
    ssize_t n = read(w->fd, c->buf + c->filled, sizeof c->buf - c->filled);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        http_close(loop, c);
        return;
    }
    c->filled += (size_t)n;
    while (replies < MAX_REPLIES) {
        char *end = memmem(c->buf + used, c->filled - used, "\r\n\r\n", 4);
        if (!end)
            break;
        memcpy(out + replies * REPLY_LEN, REPLY, REPLY_LEN);
        ++replies;
        used = (size_t)(end - c->buf) + 4;
    }
    if (replies && write(w->fd, out, replies * REPLY_LEN) != (ssize_t)(replies * REPLY_LEN)) {
        http_close(loop, c);
        return;
    }
    memmove(c->buf, c->buf + used, c->filled - used);
    c->filled -= used;
    if (c->filled == sizeof c->buf) /* a head longer than the buffer */
        http_close(loop, c);
}

static void http_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct http_conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->filled = 0;
        ev_io_init(&c->io, http_cb, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

int bench_c_http_server(int listen_fd)
{
    struct ev_loop *loop = ev_default_loop(0);
    ev_io accept_w;
    ev_io_init(&accept_w, http_accept_cb, listen_fd, EV_READ);
    ev_io_start(loop, &accept_w);
    ev_run(loop, 0);
    return 0;
}
