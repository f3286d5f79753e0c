/* line_server: an accept thread and a thread per connection. */
#include "net/line_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* How often the accept loop looks at the stop flag. */
#define POLL_MS 100
/* Longest delay a handler may ask for before one answer. */
#define MAX_DELAY_US (120 * 1000000LL)

typedef struct conn {
	struct line_server *srv;
	int fd; /* -1 when the slot is free */
	pthread_t thread;
	int done; /* the thread has finished: join it */
	char peer[64];
} conn;

struct line_server {
	const line_proto *proto;
	void *ud;
	int fd;
	int port;
	unsigned timeout_s;
	pthread_t accept_thread;
	pthread_mutex_t mu;
	int stopping;
	conn *conns;
	int nconns;
};

void line_out_printf(line_out *out, const char *fmt, ...)
{
	if (out->len >= sizeof(out->data) - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out->data + out->len, sizeof(out->data) - out->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		out->len += (size_t)n < sizeof(out->data) - out->len ? (size_t)n
								  : sizeof(out->data) - 1 - out->len;
}

static int stopping(line_server *s)
{
	pthread_mutex_lock(&s->mu);
	int v = s->stopping;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* Waits delay_us in short slices, so that stopping is not held up. */
static void wait_delay(line_server *s, int64_t delay_us)
{
	if (delay_us > MAX_DELAY_US)
		delay_us = MAX_DELAY_US;
	while (delay_us > 0 && !stopping(s)) {
		int64_t slice = delay_us > 50000 ? 50000 : delay_us;
		usleep((useconds_t)slice);
		delay_us -= slice;
	}
}

/* Sends out (after its delay); 0, or -1 when the connection is gone. */
static int send_out(line_server *s, int fd, const line_out *out)
{
	wait_delay(s, out->delay_us);
	size_t off = 0;
	while (off < out->len) {
		ssize_t n = send(fd, out->data + off, out->len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/* Hands buf's complete lines to the protocol. line/len/truncated carry a
 * line across reads. Returns 1 when the connection is to be closed. */
static int feed(line_server *s, conn *c, void *state, const char *buf, size_t n, char *line,
		size_t *len, int *truncated)
{
	for (size_t i = 0; i < n; i++) {
		char ch = buf[i];
		if (ch != '\n') {
			if (*len < LINE_MAX_LEN)
				line[(*len)++] = ch;
			else
				*truncated = 1;
			continue;
		}
		size_t l = *len;
		if (l > 0 && line[l - 1] == '\r' && !*truncated)
			l--;
		line[l] = '\0';
		line_out out = { .len = 0 };
		s->proto->line(state, line, l, *truncated, &out);
		*len = 0;
		*truncated = 0;
		if (send_out(s, c->fd, &out) != 0 || out.close)
			return 1;
	}
	return 0;
}

static void *conn_main(void *arg)
{
	conn *c = arg;
	line_server *s = c->srv;
	struct timeval tv = { .tv_sec = (time_t)s->timeout_s };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	line_out out = { .len = 0 };
	void *state = s->proto->open(s->ud, c->peer, &out);
	int closing = send_out(s, c->fd, &out) != 0 || out.close || !state;
	char *line = malloc(LINE_MAX_LEN + 1);
	size_t len = 0;
	int truncated = 0;
	char buf[8192];
	while (!closing && line && !stopping(s)) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* closed, timed out or shut down */
		closing = feed(s, c, state, buf, (size_t)n, line, &len, &truncated);
	}
	free(line);
	if (s->proto->close)
		s->proto->close(state);
	pthread_mutex_lock(&s->mu);
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	c->fd = -1;
	c->done = 1;
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Joins the threads of finished connections, freeing their slots. Called
 * from the accept thread only. */
static void reap(line_server *s)
{
	for (int i = 0; i < s->nconns; i++) {
		pthread_mutex_lock(&s->mu);
		int done = s->conns[i].done;
		pthread_mutex_unlock(&s->mu);
		if (done) {
			pthread_join(s->conns[i].thread, NULL);
			pthread_mutex_lock(&s->mu);
			s->conns[i].done = 0;
			s->conns[i].thread = 0;
			pthread_mutex_unlock(&s->mu);
		}
	}
}

static conn *free_slot(line_server *s)
{
	for (int i = 0; i < s->nconns; i++)
		if (s->conns[i].fd < 0 && !s->conns[i].thread)
			return &s->conns[i];
	return NULL;
}

static void *accept_main(void *arg)
{
	line_server *s = arg;
	while (!stopping(s)) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int r = poll(&p, 1, POLL_MS);
		reap(s);
		if (r <= 0)
			continue;
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(s->fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		conn *c = s->stopping ? NULL : free_slot(s);
		if (c) {
			c->fd = fd;
			c->srv = s;
			char ip[INET_ADDRSTRLEN] = "?";
			inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
			snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, ntohs(peer.sin_port));
			if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
				c->fd = -1;
				c->thread = 0;
				c = NULL;
			}
		}
		pthread_mutex_unlock(&s->mu);
		if (!c)
			close(fd); /* full (or stopping): refused */
	}
	return NULL;
}

line_server *line_server_start(const line_server_opts *o, const line_proto *proto, void *ud,
			       char *err, size_t errlen)
{
	const char *host = o->host && o->host[0] ? o->host : "127.0.0.1";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	if (o->port < 0 || o->port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
	    o->max_connections < 1 || !proto || !proto->open || !proto->line) {
		snprintf(err, errlen, "line server: bad options (%s:%d)", host, o->port);
		return NULL;
	}
	line_server *s = calloc(1, sizeof(*s));
	if (!s || !(s->conns = calloc((size_t)o->max_connections, sizeof(conn)))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->proto = proto;
	s->ud = ud;
	s->nconns = o->max_connections;
	s->timeout_s = o->conn_timeout_s ? o->conn_timeout_s : 30;
	for (int i = 0; i < s->nconns; i++)
		s->conns[i].fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s->fd >= 0)
		setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	socklen_t alen = sizeof(a);
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(s->fd, 64) != 0 || getsockname(s->fd, (struct sockaddr *)&a, &alen) != 0) {
		snprintf(err, errlen, "%s:%d: %s", host, o->port, strerror(errno));
		if (s->fd >= 0)
			close(s->fd);
		pthread_mutex_destroy(&s->mu);
		free(s->conns);
		free(s);
		return NULL;
	}
	s->port = ntohs(a.sin_port);
	if (pthread_create(&s->accept_thread, NULL, accept_main, s) != 0) {
		snprintf(err, errlen, "cannot start the accept thread");
		close(s->fd);
		pthread_mutex_destroy(&s->mu);
		free(s->conns);
		free(s);
		return NULL;
	}
	return s;
}

int line_server_port(const line_server *s) { return s ? s->port : 0; }

void line_server_stop(line_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = 1;
	/* Wakes every connection blocked in recv. */
	for (int i = 0; i < s->nconns; i++)
		if (s->conns[i].fd >= 0)
			shutdown(s->conns[i].fd, SHUT_RDWR);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->accept_thread, NULL);
	for (int i = 0; i < s->nconns; i++)
		if (s->conns[i].thread)
			pthread_join(s->conns[i].thread, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->mu);
	free(s->conns);
	free(s);
}
