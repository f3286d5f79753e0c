/* mailbox: a ring of items behind a mutex. */
#include "sim/mailbox.h"
#include "core/clock.h"
#include "core/err.h"
#include "services/engine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_MAX 10000

typedef struct item {
	char id[MAILBOX_ID_MAX];
	char *from, *subject, *message_id, *body, *data, *key;
	char **to;
	int nto;
	int64_t at;
} item;

struct mailbox {
	pthread_mutex_t mu;
	item *ring;
	size_t cap, head, n; /* the oldest is ring[head] */
	uint64_t next_id, dropped;
	char prefix[16];
};

mailbox *mailbox_new(size_t max_items, const char *prefix)
{
	if (max_items < 1)
		return NULL;
	mailbox *mb = calloc(1, sizeof(*mb));
	if (!mb || !(mb->ring = calloc(max_items, sizeof(item)))) {
		free(mb);
		return NULL;
	}
	pthread_mutex_init(&mb->mu, NULL);
	mb->cap = max_items;
	mb->next_id = 1;
	snprintf(mb->prefix, sizeof(mb->prefix), "%s", prefix ? prefix : "msg_");
	return mb;
}

static void item_clear(item *it)
{
	free(it->from);
	free(it->subject);
	free(it->message_id);
	free(it->body);
	free(it->data);
	free(it->key);
	for (int i = 0; i < it->nto; i++)
		free(it->to[i]);
	free(it->to);
	memset(it, 0, sizeof(*it));
}

size_t mailbox_clear(mailbox *mb)
{
	pthread_mutex_lock(&mb->mu);
	size_t n = mb->n;
	for (size_t i = 0; i < mb->n; i++)
		item_clear(&mb->ring[(mb->head + i) % mb->cap]);
	mb->head = mb->n = 0;
	pthread_mutex_unlock(&mb->mu);
	return n;
}

void mailbox_free(mailbox *mb)
{
	if (!mb)
		return;
	mailbox_clear(mb);
	pthread_mutex_destroy(&mb->mu);
	free(mb->ring);
	free(mb);
}

size_t mailbox_count(mailbox *mb)
{
	pthread_mutex_lock(&mb->mu);
	size_t n = mb->n;
	pthread_mutex_unlock(&mb->mu);
	return n;
}

/* strdup of s, NULL staying NULL; *bad set when a copy failed. */
static char *dup_or_null(const char *s, int *bad)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*bad = 1;
	return d;
}

int mailbox_add(mailbox *mb, const mailbox_item *in, int64_t now_us, char *id)
{
	if (!in || !in->from || !in->body || in->nto < 1 || in->nto > MAILBOX_MAX_TO)
		return ERR_INVALID;
	item it;
	memset(&it, 0, sizeof(it));
	int bad = 0;
	it.from = dup_or_null(in->from, &bad);
	it.subject = dup_or_null(in->subject, &bad);
	it.message_id = dup_or_null(in->message_id, &bad);
	it.body = dup_or_null(in->body, &bad);
	it.data = dup_or_null(in->data, &bad);
	it.key = dup_or_null(in->key, &bad);
	it.to = calloc((size_t)in->nto, sizeof(char *));
	for (int i = 0; it.to && i < in->nto; i++, it.nto++)
		it.to[i] = dup_or_null(in->to[i] ? in->to[i] : "", &bad);
	if (bad || !it.to) {
		item_clear(&it);
		return ERR_NOMEM;
	}
	it.at = now_us;
	pthread_mutex_lock(&mb->mu);
	for (size_t i = 0; it.key && i < mb->n; i++) {
		const item *old = &mb->ring[(mb->head + i) % mb->cap];
		if (old->key && strcmp(old->key, it.key) == 0) {
			if (id)
				snprintf(id, MAILBOX_ID_MAX, "%s", old->id);
			pthread_mutex_unlock(&mb->mu);
			item_clear(&it);
			return ERR_CONFLICT;
		}
	}
	if (mb->n == mb->cap) {
		item_clear(&mb->ring[mb->head]);
		mb->head = (mb->head + 1) % mb->cap;
		mb->n--;
		mb->dropped++;
	}
	snprintf(it.id, sizeof(it.id), "%s%llu", mb->prefix, (unsigned long long)mb->next_id++);
	mb->ring[(mb->head + mb->n) % mb->cap] = it;
	mb->n++;
	pthread_mutex_unlock(&mb->mu);
	if (id)
		snprintf(id, MAILBOX_ID_MAX, "%s", it.id);
	return 0;
}

static json_t *item_json(const item *it)
{
	json_t *to = json_array();
	for (int i = 0; i < it->nto; i++)
		json_array_append_new(to, json_string(it->to[i]));
	char at[40];
	clock_fmt_rfc3339(it->at, at, sizeof(at));
	return json_pack("{s:s,s:s,s:o,s:s?,s:s?,s:s,s:s?,s:s?,s:s}", "id", it->id, "from", it->from,
			 "to", to, "subject", it->subject, "message_id", it->message_id, "body",
			 it->body, "data", it->data, "key", it->key, "received_at", at);
}

json_t *mailbox_get(mailbox *mb, const char *id)
{
	json_t *out = NULL;
	pthread_mutex_lock(&mb->mu);
	for (size_t i = 0; id && i < mb->n && !out; i++) {
		const item *it = &mb->ring[(mb->head + i) % mb->cap];
		if (strcmp(it->id, id) == 0)
			out = item_json(it);
	}
	pthread_mutex_unlock(&mb->mu);
	return out;
}

static int matches(const item *it, const char *to, const char *contains)
{
	if (to && to[0]) {
		int hit = 0;
		for (int i = 0; i < it->nto && !hit; i++)
			hit = strcasecmp(it->to[i], to) == 0;
		if (!hit)
			return 0;
	}
	if (contains && contains[0])
		return (it->subject && strstr(it->subject, contains)) ||
		       (it->body && strstr(it->body, contains)) ||
		       (it->data && strstr(it->data, contains));
	return 1;
}

json_t *mailbox_list(mailbox *mb, const char *to, const char *contains, int limit)
{
	json_t *items = json_array();
	pthread_mutex_lock(&mb->mu);
	size_t total = 0;
	for (size_t i = 0; i < mb->n; i++)
		total += (size_t)matches(&mb->ring[(mb->head + i) % mb->cap], to, contains);
	/* the last `limit` of them, oldest first */
	size_t skip = limit > 0 && total > (size_t)limit ? total - (size_t)limit : 0;
	for (size_t i = 0; i < mb->n; i++) {
		const item *it = &mb->ring[(mb->head + i) % mb->cap];
		if (!matches(it, to, contains))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		json_array_append_new(items, item_json(it));
	}
	json_t *out = json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total,
				"kept", (json_int_t)mb->n, "dropped", (json_int_t)mb->dropped);
	pthread_mutex_unlock(&mb->mu);
	return out;
}

void mailbox_http_list(mailbox *mb, const msg_req *req, msg_resp *resp)
{
	char to[320] = "", contains[512] = "";
	int64_t limit = 1000;
	if (msg_req_query(req, "to", to, sizeof(to)) < 0 ||
	    msg_req_query(req, "contains", contains, sizeof(contains)) < 0) {
		engine_bad_field(resp, "query", "a query parameter is too long");
		return;
	}
	if (engine_query_int(req, resp, "limit", 1, LIST_MAX, &limit) >= 0)
		msg_resp_json(resp, 200, mailbox_list(mb, to, contains, (int)limit));
}
