/* http_multi: libcurl's multi interface, driven by one thread through its
 * socket API: libcurl names the sockets it wants watched and the timeout it
 * needs, an epoll set watches them, and only sockets with something to do
 * are handed back (curl_multi_perform would look at every transfer on
 * every turn, which costs more the more transfers are in flight). */
#include "net/http_multi.h"
#include "core/clock.h"
#include "core/err.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A kept body past this is cut off (and the transfer failed with ERR_IO). */
#define KEEP_MAX (8u * 1024u * 1024u)

#define EVENTS 256

struct http_multi {
	CURLM *m;
	int ep;           /* the epoll set of libcurl's sockets */
	int64_t timer_us; /* when libcurl wants its timeout action (mono); -1 none */
	char *base;
	size_t baselen;
	int in_flight;
	struct http_xfer *head; /* the transfers in flight */
};

struct http_xfer {
	CURL *e;
	http_multi *owner; /* while in flight */
	struct http_xfer *prev, *next;
	struct curl_slist *hdrs;
	char *url;
	size_t urlcap;
	char *body;
	size_t len, cap;
	int keep;
	int status;
	int err;
	http_xfer_done cb;
	void *ud;
};

/* libcurl: watch socket s for what (or stop watching it). */
static int on_socket(CURL *e, curl_socket_t s, int what, void *ud, void *sp)
{
	http_multi *m = ud;
	(void)e;
	(void)sp;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(m->ep, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	struct epoll_event ev = { .data.fd = s };
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(m->ep, EPOLL_CTL_MOD, s, &ev) != 0 && errno == ENOENT)
		epoll_ctl(m->ep, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

/* libcurl: call me back (CURL_SOCKET_TIMEOUT) in ms; -1 never. */
static int on_timer(CURLM *multi, long ms, void *ud)
{
	http_multi *m = ud;
	(void)multi;
	m->timer_us = ms < 0 ? -1 : clock_mono_us() + (int64_t)ms * 1000;
	return 0;
}

http_multi *http_multi_new(const char *base_url, int max_conns)
{
	if (!base_url)
		return NULL;
	http_multi *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->timer_us = -1;
	m->ep = epoll_create1(EPOLL_CLOEXEC);
	m->baselen = strlen(base_url);
	while (m->baselen && base_url[m->baselen - 1] == '/')
		m->baselen--;
	m->base = strndup(base_url, m->baselen);
	m->m = curl_multi_init();
	if (!m->base || !m->m || m->ep < 0) {
		http_multi_free(m);
		return NULL;
	}
	curl_multi_setopt(m->m, CURLMOPT_MAXCONNECTS, (long)(max_conns > 0 ? max_conns : 64));
	curl_multi_setopt(m->m, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m->m, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->m, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m->m, CURLMOPT_TIMERDATA, m);
	return m;
}

void http_multi_free(http_multi *m)
{
	if (!m)
		return;
	/* Transfers still in flight: take them out so they can be freed. */
	while (m->head)
		http_multi_abort(m, m->head);
	if (m->m)
		curl_multi_cleanup(m->m);
	if (m->ep >= 0)
		close(m->ep);
	free(m->base);
	free(m);
}

http_xfer *http_xfer_new(void)
{
	http_xfer *x = calloc(1, sizeof *x);
	if (x && !(x->e = curl_easy_init())) {
		free(x);
		return NULL;
	}
	return x;
}

void http_xfer_free(http_xfer *x)
{
	if (!x)
		return;
	if (x->owner)
		http_multi_abort(x->owner, x);
	curl_easy_cleanup(x->e);
	curl_slist_free_all(x->hdrs);
	free(x->url);
	free(x->body);
	free(x);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	http_xfer *x = ud;
	size_t n = size * nmemb;
	if (!x->keep)
		return n;
	if (x->len + n + 1 > KEEP_MAX)
		return 0;
	if (x->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 1024;
		while (cap < x->len + n + 1)
			cap *= 2;
		char *b = realloc(x->body, cap);
		if (!b)
			return 0;
		x->body = b;
		x->cap = cap;
	}
	memcpy(x->body + x->len, data, n);
	x->len += n;
	x->body[x->len] = '\0';
	return n;
}

static int add_header(http_xfer *x, const char *name, const char *value)
{
	char line[2048];
	if (strpbrk(value, "\r\n") || (size_t)snprintf(line, sizeof line, "%s: %s", name, value) >= sizeof line)
		return ERR_INVALID;
	struct curl_slist *l = curl_slist_append(x->hdrs, line);
	if (!l)
		return ERR_NOMEM;
	x->hdrs = l;
	return 0;
}

static int set_url(http_multi *m, http_xfer *x, const char *target)
{
	size_t need = m->baselen + strlen(target) + 2;
	if (need > x->urlcap) {
		char *u = realloc(x->url, need);
		if (!u)
			return ERR_NOMEM;
		x->url = u;
		x->urlcap = need;
	}
	snprintf(x->url, x->urlcap, "%s%s%s", m->base, target[0] == '/' ? "" : "/", target);
	return 0;
}

int http_multi_start(http_multi *m, http_xfer *x, const http_xfer_req *r, http_xfer_done cb,
		     void *ud)
{
	if (!m || !x || !r || !r->method || !r->target)
		return ERR_INVALID;
	if (x->owner)
		return ERR_BUSY;
	CURL *e = x->e;
	curl_easy_reset(e); /* options only: connections live in the multi's pool */
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	x->len = 0;
	if (x->body)
		x->body[0] = '\0';
	x->keep = r->keep_body;
	x->status = 0;
	x->err = 0;
	int rc = set_url(m, x, r->target);
	if (rc == 0 && r->bearer) {
		char auth[1600];
		snprintf(auth, sizeof auth, "Bearer %s", r->bearer);
		rc = add_header(x, "Authorization", auth);
	}
	if (rc == 0 && r->idem_key)
		rc = add_header(x, "Idempotency-Key", r->idem_key);
	if (rc == 0 && r->body)
		rc = add_header(x, "Content-Type", "application/json");
	if (rc == 0) {
		struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
		if (l)
			x->hdrs = l;
		else
			rc = ERR_NOMEM;
	}
	if (rc)
		return rc;
	long to = r->timeout_ms > 0 ? r->timeout_ms : 5000;
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, to);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, to < 2000 ? to : 2000L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* Loopback load: no proxy (and no look at the proxy variables on every
	 * request). */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	/* As http_client: never reuse a connection idle long enough for the
	 * server to be closing it. */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 10L);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (r->source_ip) {
		char iface[80];
		snprintf(iface, sizeof iface, "host!%s", r->source_ip);
		curl_easy_setopt(e, CURLOPT_INTERFACE, iface);
	}
	if (strcmp(r->method, "GET") != 0) {
		if (strcmp(r->method, "HEAD") == 0) {
			curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
		} else {
			const char *b = r->body ? r->body : "";
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(b));
			curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, b);
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
		}
	}
	x->cb = cb;
	x->ud = ud;
	if (curl_multi_add_handle(m->m, e) != CURLM_OK)
		return ERR_NOMEM;
	x->owner = m;
	x->prev = NULL;
	x->next = m->head;
	if (m->head)
		m->head->prev = x;
	m->head = x;
	m->in_flight++;
	return 0;
}

/* x leaves m's list of transfers in flight. */
static void unlink_xfer(http_multi *m, http_xfer *x)
{
	if (x->prev)
		x->prev->next = x->next;
	else
		m->head = x->next;
	if (x->next)
		x->next->prev = x->prev;
	x->prev = x->next = NULL;
	x->owner = NULL;
	m->in_flight--;
}

static int error_of(CURL *e, CURLcode cc)
{
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
		return ERR_UNAVAILABLE;
	if (cc != CURLE_OPERATION_TIMEDOUT)
		return ERR_IO;
	long sent = 0; /* a deadline met before a byte went out: no connection */
	curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &sent);
	return sent == 0 ? ERR_UNAVAILABLE : ERR_TIMEOUT;
}

/* Calls back every finished transfer; the count. */
static int dispatch(http_multi *m)
{
	int n = 0, left;
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(m->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		CURL *e = msg->easy_handle;
		CURLcode cc = msg->data.result;
		http_xfer *x = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
		if (!x)
			continue;
		if (cc == CURLE_OK) {
			long st = 0;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &st);
			x->status = (int)st;
		} else {
			x->err = error_of(e, cc);
		}
		curl_multi_remove_handle(m->m, e);
		unlink_xfer(m, x);
		n++;
		if (x->cb)
			x->cb(x, x->ud);
	}
	return n;
}

/* Runs libcurl's timeout action when it is due. ERR_IO on failure. */
static int timer_due(http_multi *m)
{
	int running;
	if (m->timer_us < 0 || clock_mono_us() < m->timer_us)
		return 0;
	m->timer_us = -1;
	return curl_multi_socket_action(m->m, CURL_SOCKET_TIMEOUT, 0, &running) == CURLM_OK ? 0 : ERR_IO;
}

int http_multi_run(http_multi *m, int timeout_ms)
{
	if (timer_due(m))
		return ERR_IO;
	int n = dispatch(m);
	if (n > 0)
		return n;
	int64_t wait = timeout_ms > 0 ? timeout_ms : 0;
	if (m->timer_us >= 0) {
		int64_t t = (m->timer_us - clock_mono_us() + 999) / 1000;
		if (t < wait)
			wait = t < 0 ? 0 : t;
	}
	struct epoll_event ev[EVENTS];
	int nev = epoll_wait(m->ep, ev, EVENTS, (int)wait);
	if (nev < 0 && errno != EINTR)
		return ERR_IO;
	for (int i = 0; i < nev; i++) {
		int flags = 0, running;
		if (ev[i].events & EPOLLIN)
			flags |= CURL_CSELECT_IN;
		if (ev[i].events & EPOLLOUT)
			flags |= CURL_CSELECT_OUT;
		if (ev[i].events & (EPOLLERR | EPOLLHUP))
			flags |= CURL_CSELECT_ERR;
		if (curl_multi_socket_action(m->m, ev[i].data.fd, flags, &running) != CURLM_OK)
			return ERR_IO;
	}
	if (timer_due(m))
		return ERR_IO;
	return dispatch(m);
}

int http_multi_in_flight(const http_multi *m) { return m ? m->in_flight : 0; }

void http_multi_abort(http_multi *m, http_xfer *x)
{
	if (!m || !x || x->owner != m)
		return;
	curl_multi_remove_handle(m->m, x->e);
	unlink_xfer(m, x);
}

int http_xfer_status(const http_xfer *x) { return x->status; }

int http_xfer_error(const http_xfer *x) { return x->err; }

const char *http_xfer_body(const http_xfer *x, size_t *len)
{
	if (len)
		*len = x->keep ? x->len : 0;
	return x->keep ? (x->body ? x->body : "") : NULL;
}
