/* webhook_queue: a simulator's outgoing webhooks, retried a bounded number
 * of times. */
#include "sim/webhook_queue.h"
#include "core/err.h"
#include "core/jval.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64

typedef struct hook {
	struct hook *next;
	char *body;
	size_t len;
	int attempts;
	int64_t due_us;
} hook;

struct webhook_queue {
	pthread_mutex_t mu;
	char base[WEBHOOK_QUEUE_URL_MAX]; /* "http://host:port" */
	char path[WEBHOOK_QUEUE_URL_MAX]; /* "/v1/webhooks/stripe" */
	hook *head, *tail;
	size_t pending, max_pending;
	uint64_t delivered, failed, attempts, dropped;
};

webhook_queue *webhook_queue_new(size_t max_pending)
{
	webhook_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	pthread_mutex_init(&q->mu, NULL);
	q->max_pending = max_pending ? max_pending : 1;
	return q;
}

static void hook_free(hook *h)
{
	if (h) {
		free(h->body);
		free(h);
	}
}

/* Drops everything pending; under mu. */
static void drop_all(webhook_queue *q)
{
	while (q->head) {
		hook *h = q->head;
		q->head = h->next;
		hook_free(h);
		q->dropped++;
	}
	q->tail = NULL;
	q->pending = 0;
}

void webhook_queue_free(webhook_queue *q)
{
	if (!q)
		return;
	drop_all(q);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int webhook_queue_set_target(webhook_queue *q, const char *url)
{
	if (!q)
		return ERR_INVALID;
	char base[WEBHOOK_QUEUE_URL_MAX] = "", path[WEBHOOK_QUEUE_URL_MAX] = "";
	if (url && url[0]) {
		size_t scheme = strncmp(url, "http://", 7) == 0	   ? 7
				: strncmp(url, "https://", 8) == 0 ? 8
								   : 0;
		const char *slash = scheme ? strchr(url + scheme, '/') : NULL;
		if (!slash || slash == url + scheme || (size_t)(slash - url) >= sizeof(base) ||
		    strlen(slash) >= sizeof(path) || strpbrk(url, " \r\n\t"))
			return ERR_INVALID;
		memcpy(base, url, (size_t)(slash - url));
		base[slash - url] = '\0';
		snprintf(path, sizeof(path), "%s", slash);
	}
	pthread_mutex_lock(&q->mu);
	memcpy(q->base, base, sizeof(base));
	memcpy(q->path, path, sizeof(path));
	if (!base[0])
		drop_all(q);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

/* Appends h; under mu. */
static void append(webhook_queue *q, hook *h)
{
	h->next = NULL;
	if (q->tail)
		q->tail->next = h;
	else
		q->head = h;
	q->tail = h;
	q->pending++;
}

int webhook_queue_push(webhook_queue *q, const char *body, int64_t now_us)
{
	if (!q || !body)
		return 0;
	hook *h = calloc(1, sizeof(*h));
	if (h)
		h->body = strdup(body);
	pthread_mutex_lock(&q->mu);
	int queued = h && h->body && q->base[0] && q->pending < q->max_pending;
	if (queued) {
		h->len = strlen(body);
		h->due_us = now_us;
		append(q, h);
	} else {
		q->dropped++;
	}
	pthread_mutex_unlock(&q->mu);
	if (!queued)
		hook_free(h);
	return queued;
}

/* One POST of h; 1 when a 2xx came back. */
static int send_one(engine_ctx *ctx, const char *base, const char *path, const hook *h,
		    webhook_sign_fn sign, void *ud, int64_t now_us)
{
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	if (msg_req_init(&req, "POST", path) != 0)
		return 0;
	int ok = msg_req_add_header(&req, "Content-Type", "application/json; charset=utf-8") == 0 &&
		 msg_req_add_header(&req, "User-Agent", "ecom-sim-webhooks/1") == 0 &&
		 msg_req_set_body(&req, h->body, h->len) == 0 &&
		 (!sign || sign(ud, now_us, h->body, h->len, &req) == 0);
	if (ok) {
		int rc = ctx->call(ctx->call_ud, base, &req, &resp, WEBHOOK_QUEUE_TIMEOUT_MS);
		ok = rc == 0 && resp.status >= 200 && resp.status < 300;
		if (!ok)
			log_warn(ctx->log, "webhook to %s%s: %s, status %d (attempt %d)", base, path,
				 err_name(rc), resp.status, h->attempts + 1);
	}
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return ok;
}

int webhook_queue_deliver(webhook_queue *q, engine_ctx *ctx, webhook_sign_fn sign, void *ud,
			  int64_t now_us)
{
	if (!q || !ctx || !ctx->call)
		return 0;
	hook *batch[BATCH];
	int n = 0;
	char base[WEBHOOK_QUEUE_URL_MAX], path[WEBHOOK_QUEUE_URL_MAX];
	pthread_mutex_lock(&q->mu);
	memcpy(base, q->base, sizeof(base));
	memcpy(path, q->path, sizeof(path));
	/* Take the due ones out; the others keep their order. */
	hook *keep = NULL, *keep_tail = NULL;
	for (hook *h = q->head, *next; h; h = next) {
		next = h->next;
		h->next = NULL;
		if (n < BATCH && h->due_us <= now_us) {
			batch[n++] = h;
			q->pending--;
			continue;
		}
		if (keep_tail)
			keep_tail->next = h;
		else
			keep = h;
		keep_tail = h;
	}
	q->head = keep;
	q->tail = keep_tail;
	pthread_mutex_unlock(&q->mu);
	int delivered = 0;
	for (int i = 0; i < n; i++) {
		hook *h = batch[i];
		int ok = base[0] && send_one(ctx, base, path, h, sign, ud, now_us);
		pthread_mutex_lock(&q->mu);
		q->attempts++;
		h->attempts++;
		if (ok) {
			q->delivered++;
			delivered++;
		} else if (h->attempts >= WEBHOOK_QUEUE_ATTEMPTS || !q->base[0]) {
			q->failed++;
			log_warn(ctx->log, "webhook given up after %d attempts", h->attempts);
		} else {
			h->due_us = now_us + (WEBHOOK_QUEUE_BASE_DELAY_US << (h->attempts - 1));
			append(q, h);
			h = NULL;
		}
		pthread_mutex_unlock(&q->mu);
		hook_free(h); /* NULL when queued again */
	}
	return delivered;
}

void webhook_queue_admin(const engine_ctx *ctx, webhook_queue *q, msg_req *req, msg_resp *resp)
{
	if (engine_require_admin(ctx, req, resp))
		return;
	if (strcmp(req->method, "PUT") == 0) {
		json_t *body = NULL;
		if (engine_json_body(req, resp, &body))
			return;
		jval_error e = { { 0 }, { 0 } };
		const char *url = NULL;
		int bad = jval_str(body, "url", 1, 0, WEBHOOK_QUEUE_URL_MAX, &url, &e) ||
			  (webhook_queue_set_target(q, url) != 0 &&
			   jval_fail(&e, "url", "must be http://HOST:PORT/PATH, or \"\" for none"));
		json_decref(body);
		if (bad) {
			engine_bad_field(resp, e.field, e.message);
			return;
		}
	}
	msg_resp_json(resp, 200, webhook_queue_stats(q));
}

json_t *webhook_queue_stats(webhook_queue *q)
{
	pthread_mutex_lock(&q->mu);
	char url[2 * WEBHOOK_QUEUE_URL_MAX];
	snprintf(url, sizeof(url), "%s%s", q->base, q->path);
	json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I}", "url", url, "pending",
			      (json_int_t)q->pending, "delivered", (json_int_t)q->delivered, "failed",
			      (json_int_t)q->failed, "attempts", (json_int_t)q->attempts, "dropped",
			      (json_int_t)q->dropped);
	pthread_mutex_unlock(&q->mu);
	return o;
}
