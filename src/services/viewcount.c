/* viewcount: a jansson object (a hash table) behind a mutex. */
#include "services/viewcount.h"
#include "bus/outbox.h"
#include "core/err.h"
#include "core/jval.h"

#include <pthread.h>
#include <stdlib.h>

struct viewcount {
	pthread_mutex_t mu;
	json_t *counts;
	size_t max;
	int64_t dropped;
};

viewcount *viewcount_new(size_t max_skus)
{
	if (max_skus == 0)
		return NULL;
	viewcount *v = calloc(1, sizeof(*v));
	if (!v || !(v->counts = json_object())) {
		free(v);
		return NULL;
	}
	pthread_mutex_init(&v->mu, NULL);
	v->max = max_skus;
	return v;
}

void viewcount_free(viewcount *v)
{
	if (!v)
		return;
	json_decref(v->counts);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

void viewcount_add(viewcount *v, const char *sku, int64_t n)
{
	if (!v || !sku || n <= 0)
		return;
	pthread_mutex_lock(&v->mu);
	json_t *c = json_object_get(v->counts, sku);
	if (c)
		json_integer_set(c, json_integer_value(c) + n);
	else if (json_object_size(v->counts) < v->max)
		json_object_set_new(v->counts, sku, json_integer(n));
	else
		v->dropped += n;
	pthread_mutex_unlock(&v->mu);
}

json_t *viewcount_take(viewcount *v, int64_t *total)
{
	*total = 0;
	json_t *fresh = json_object();
	if (!fresh)
		return NULL;
	pthread_mutex_lock(&v->mu);
	json_t *out = v->counts;
	v->counts = fresh;
	pthread_mutex_unlock(&v->mu);
	const char *k;
	json_t *n;
	json_object_foreach(out, k, n)
		*total += json_integer_value(n);
	if (*total == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

int viewcount_flush(viewcount *v, store *s, int64_t now_us)
{
	int64_t total = 0;
	json_t *views = viewcount_take(v, &total);
	if (!views)
		return 0;
	json_t *ev = json_pack("{s:s,s:O,s:I}", "type", "product.viewed", "views", views, "total",
			       (json_int_t)total);
	char *text = ev ? jval_dump(ev) : NULL;
	json_decref(ev);
	int rc = text ? outbox_put(s, "analytics", "views", text, NULL, now_us) : ERR_NOMEM;
	free(text);
	if (rc) {
		const char *sku;
		json_t *n;
		json_object_foreach(views, sku, n)
			viewcount_add(v, sku, json_integer_value(n));
	}
	json_decref(views);
	return rc ? rc : (int)(total > 1000000000 ? 1000000000 : total);
}

int64_t viewcount_dropped(viewcount *v)
{
	pthread_mutex_lock(&v->mu);
	int64_t d = v->dropped;
	pthread_mutex_unlock(&v->mu);
	return d;
}
