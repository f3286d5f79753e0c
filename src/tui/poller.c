/* poller: see poller.h. */
#include "tui/poller.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/state.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX 16
#define RETRY_MS 1000          /* a lost connection is tried again this often */
#define PRODUCTS_TTL_US 30000000LL
#define PRODUCTS_MAX 5000      /* the catalog read for the Inventory view, at most */
#define SAGAS_LIMIT 200
#define LOG_TAIL 65536         /* bytes read from the end of each log file */
#define LOG_FILES 64
#define BURST_THREADS 4

struct poller {
	client *cl;
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* the poller thread: wake, want changed, stop */
	pthread_cond_t act_cv; /* the actor thread: an action, stop */
	int stop, wake;
	poller_want want;
	snapshot *cur;
	uint64_t seq;
	action queue[QUEUE_MAX];
	int qhead, qlen, acting;
	poller_news news;
	/* the catalog, for the Inventory view and the orders' skus (under mu) */
	model_product *products;
	size_t nproducts;
	int64_t products_at;
	size_t next_sku;
	pthread_t th, actor;
	int th_ok, actor_ok;
};

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* ---- snapshots ------------------------------------------------------------------ */

static void snapshot_free(snapshot *s)
{
	if (!s)
		return;
	free(s->svcs);
	free(s->breakers);
	free(s->faults);
	free(s->queues);
	free(s->sagas);
	free(s->stock);
	model_saga_detail_free(s->detail);
	free(s->logs);
	free(s);
}

static void *dup_array(const void *src, size_t n, size_t size)
{
	void *d = malloc(n ? n * size : 1);
	if (d && n)
		memcpy(d, src, n * size);
	return d;
}

#define KEEP(s, prev, field, nfield)                                                               \
	do {                                                                                       \
		if (prev && prev->field && !s->field) {                                            \
			s->field = dup_array(prev->field, prev->nfield, sizeof(*prev->field));     \
			s->nfield = s->field ? prev->nfield : 0;                                   \
		}                                                                                  \
	} while (0)

static model_saga_detail *dup_detail(const model_saga_detail *d)
{
	if (!d)
		return NULL;
	model_saga_detail *c = malloc(sizeof(*c));
	if (!c)
		return NULL;
	*c = *d;
	c->spans = d->nspans ? dup_array(d->spans, d->nspans, sizeof(span)) : NULL;
	if (d->nspans && !c->spans)
		c->nspans = 0;
	return c;
}

/* What s could not fetch, taken from prev (the last known data). */
static void keep_old(snapshot *s, const snapshot *prev, const poller_want *w)
{
	if (!prev)
		return;
	KEEP(s, prev, svcs, nsvcs);
	KEEP(s, prev, breakers, nbreakers);
	KEEP(s, prev, faults, nfaults);
	KEEP(s, prev, queues, nqueues);
	KEEP(s, prev, sagas, nsagas);
	if (w->stock)
		KEEP(s, prev, stock, nstock);
	if (w->logs)
		KEEP(s, prev, logs, nlogs);
	/* A timeline belongs to one saga: the old one only for the same. */
	if (!s->detail && prev->detail && w->detail_id[0] &&
	    strcmp(prev->detail->saga.order_id, w->detail_id) == 0)
		s->detail = dup_detail(prev->detail);
	if (!s->connected)
		s->meters = prev->meters;
}

static void publish(poller *p, snapshot *s)
{
	pthread_mutex_lock(&p->mu);
	s->seq = ++p->seq;
	s->refs = 1;
	snapshot *old = p->cur;
	p->cur = s;
	int drop = old && --old->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (drop)
		snapshot_free(old);
}

snapshot *poller_acquire(poller *p)
{
	pthread_mutex_lock(&p->mu);
	snapshot *s = p->cur;
	s->refs++;
	pthread_mutex_unlock(&p->mu);
	return s;
}

void poller_release(poller *p, snapshot *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&p->mu);
	int drop = --s->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (drop)
		snapshot_free(s);
}

/* ---- fetching --------------------------------------------------------------------- */

static void part_set(part *pt, int rc, const char *err)
{
	if (rc == 0)
		pt->state = PART_OK;
	else if (rc == ERR_NOT_FOUND)
		pt->state = PART_NA;
	else
		pt->state = PART_ERR;
	snprintf(pt->err, sizeof(pt->err), "%s", rc ? err : "");
}

static int no_answer(int rc)
{
	return rc == ERR_UNAVAILABLE || rc == ERR_TIMEOUT || rc == ERR_IO;
}

/* GET path into a list with parse; sets the part. Returns the call's rc. */
#define FETCH_LIST(p, s, path, fn, field, nfield, which)                                              \
	({                                                                                         \
		json_t *v_ = NULL;                                                                 \
		char e_[200] = "";                                                                 \
		int rc_ = client_get_json((p)->cl, path, &v_, e_, sizeof(e_));                     \
		if (rc_ == 0 && (rc_ = fn(v_, &(s)->field, &(s)->nfield)) != 0)                    \
			snprintf(e_, sizeof(e_), "unexpected answer from %s", path);               \
		json_decref(v_);                                                                   \
		part_set(&(s)->pt.which, rc_, e_);                                                    \
		rc_;                                                                               \
	})

/* The supervisor's instances.json, when the console knows the state
 * directory: services expected but not registered show as down. */
static void merge_expected(poller *p, snapshot *s)
{
	const char *dir = client_state_dir(p->cl);
	char path[1200];
	if (!dir || state_path(dir, "instances.json", path, sizeof(path)) != 0)
		return;
	json_t *v = json_load_file(path, 0, NULL);
	if (v)
		model_merge_instances(v, &s->svcs, &s->nsvcs);
	json_decref(v);
}

static int by_name(const void *a, const void *b)
{
	const model_service *x = a, *y = b;
	/* The gateway first, then by name. */
	int gx = strcmp(x->name, "gateway") == 0, gy = strcmp(y->name, "gateway") == 0;
	if (gx != gy)
		return gy - gx;
	return strcmp(x->name, y->name);
}

static void fetch_services(poller *p, snapshot *s)
{
	json_t *v = NULL;
	char err[200] = "";
	int rc = client_get_json(p->cl, "/admin/stats", &v, err, sizeof(err));
	if (rc == 0 && model_merge_stats(v, &s->svcs, &s->nsvcs) != 0) {
		rc = ERR_PARSE;
		snprintf(err, sizeof(err), "unexpected answer from /admin/stats");
	}
	json_decref(v);
	part_set(&s->pt.stats, rc, err);
	merge_expected(p, s);
	/* The gateway answered: it is up, whatever the registry says. */
	for (size_t i = 0; i < s->nsvcs; i++)
		if (strcmp(s->svcs[i].name, "gateway") == 0 && s->svcs[i].instances == 0) {
			s->svcs[i].instances = s->svcs[i].healthy = 1;
		}
	if (s->nsvcs > 1)
		qsort(s->svcs, s->nsvcs, sizeof(*s->svcs), by_name);
}

/* The catalog for the Inventory view (and for the orders' skus), read again
 * every 30 s. */
static void refresh_products(poller *p, int64_t now)
{
	pthread_mutex_lock(&p->mu);
	int fresh = p->products && now - p->products_at < PRODUCTS_TTL_US;
	pthread_mutex_unlock(&p->mu);
	if (fresh)
		return;
	model_product *all = NULL;
	size_t n = 0;
	char path[256], token[160] = "";
	for (int page = 0; page < PRODUCTS_MAX / 100; page++) {
		if (token[0])
			snprintf(path, sizeof(path), "/v1/products?page_size=100&page_token=%s", token);
		else
			snprintf(path, sizeof(path), "/v1/products?page_size=100");
		json_t *v = NULL;
		char err[200];
		if (client_get_json(p->cl, path, &v, err, sizeof(err)) != 0)
			break;
		model_product *got = NULL;
		size_t ng = 0;
		if (model_parse_products(v, &got, &ng) == 0 && ng > 0) {
			model_product *grown = realloc(all, (n + ng) * sizeof(*all));
			if (grown) {
				all = grown;
				memcpy(all + n, got, ng * sizeof(*got));
				n += ng;
			}
		}
		free(got);
		const char *next = json_string_value(json_object_get(v, "next_page_token"));
		snprintf(token, sizeof(token), "%s", next ? next : "");
		json_decref(v);
		if (!token[0] || strlen(token) > 120)
			break;
	}
	if (!all)
		return;
	pthread_mutex_lock(&p->mu);
	free(p->products);
	p->products = all;
	p->nproducts = n;
	p->products_at = now;
	pthread_mutex_unlock(&p->mu);
}

static int valid_sku(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 60)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return 0;
	return 1;
}

static void fetch_stock(poller *p, snapshot *s, const char *filter, int64_t now)
{
	refresh_products(p, now);
	s->stock = calloc(POLLER_STOCK_MAX + 1, sizeof(*s->stock));
	if (!s->stock) {
		part_set(&s->pt.stock, ERR_NOMEM, "out of memory");
		return;
	}
	int exact = 0;
	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->nproducts && s->nstock < POLLER_STOCK_MAX; i++) {
		const model_product *m = &p->products[i];
		if (filter[0] && !strcasestr(m->sku, filter) && !strcasestr(m->name, filter))
			continue;
		exact |= strcasecmp(m->sku, filter) == 0;
		model_stock *st = &s->stock[s->nstock++];
		snprintf(st->sku, sizeof(st->sku), "%s", m->sku);
		snprintf(st->name, sizeof(st->name), "%s", m->name);
	}
	pthread_mutex_unlock(&p->mu);
	/* A sku the catalog does not list may still have stock. */
	if (!exact && valid_sku(filter)) {
		model_stock *st = &s->stock[s->nstock++];
		snprintf(st->sku, sizeof(st->sku), "%s", filter);
	}
	int rc = 0, fails = 0;
	char err[200] = "";
	for (size_t i = 0; i < s->nstock; i++) {
		char path[128];
		snprintf(path, sizeof(path), "/v1/inventory/%s", s->stock[i].sku);
		json_t *v = NULL;
		char e[200];
		int r = client_get_json(p->cl, path, &v, e, sizeof(e));
		if (r == 0)
			model_parse_stock(v, &s->stock[i]);
		else if (r != ERR_NOT_FOUND) {
			fails++;
			snprintf(err, sizeof(err), "%s", e);
			if (no_answer(r))
				rc = r;
		}
		json_decref(v);
		if (no_answer(r))
			break; /* the rest would wait as long */
	}
	/* The explicit sku with no stock row and no product: not a row. */
	if (!exact && valid_sku(filter) && s->nstock > 0 && !s->stock[s->nstock - 1].known)
		s->nstock--;
	part_set(&s->pt.stock, fails ? (rc ? rc : ERR_STATE) : 0, err);
}

static void fetch_detail(poller *p, snapshot *s, const char *id)
{
	char path[160], err[200] = "";
	snprintf(path, sizeof(path), "/admin/sagas/%s", id);
	json_t *v = NULL;
	int rc = client_get_json(p->cl, path, &v, err, sizeof(err));
	if (rc == 0 && model_parse_saga_detail(v, &s->detail) != 0) {
		rc = ERR_PARSE;
		snprintf(err, sizeof(err), "unexpected answer from %s", path);
	}
	if (rc == ERR_NOT_FOUND)
		rc = ERR_STATE; /* no such order is an error here, not a missing route */
	json_decref(v);
	part_set(&s->pt.detail, rc, err);
}

/* ---- logs ----------------------------------------------------------------------------- */

static int by_time(const void *a, const void *b)
{
	const model_logline *x = a, *y = b;
	return x->ts_us < y->ts_us ? -1 : x->ts_us > y->ts_us ? 1 : 0;
}

/* The last lines of one file, appended to *lines. */
static void tail_file(const char *path, const char *source, model_logline **lines, size_t *n,
		      size_t *cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	char *buf = NULL;
	ssize_t got = 0;
	off_t from = 0;
	if (fstat(fd, &st) == 0 && (buf = malloc(LOG_TAIL + 1)) != NULL) {
		from = st.st_size > LOG_TAIL ? st.st_size - LOG_TAIL : 0;
		got = pread(fd, buf, LOG_TAIL, from);
	}
	close(fd);
	if (got <= 0) {
		free(buf);
		return;
	}
	buf[got] = '\0';
	char *line = buf;
	if (from > 0) { /* begun in the middle of a line: skip it */
		char *nl = memchr(buf, '\n', (size_t)got);
		line = nl ? nl + 1 : buf + got;
	}
	while (line < buf + got) {
		char *nl = memchr(line, '\n', (size_t)(buf + got - line));
		size_t len = nl ? (size_t)(nl - line) : (size_t)(buf + got - line);
		if (*n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 1024;
			model_logline *g = realloc(*lines, ncap * sizeof(*g));
			if (!g)
				break;
			*lines = g;
			*cap = ncap;
		}
		if (model_parse_logline(line, len, source, &(*lines)[*n]) == 0)
			(*n)++;
		line += len + 1;
	}
	free(buf);
}

static void fetch_logs(poller *p, snapshot *s)
{
	const char *dir = client_state_dir(p->cl);
	char logdir[1200];
	if (!dir || state_path(dir, "log", logdir, sizeof(logdir)) != 0) {
		part_set(&s->pt.logs, ERR_NOT_FOUND, "the logs are read from the state directory: use --state");
		return;
	}
	DIR *d = opendir(logdir);
	if (!d) {
		char err[200];
		snprintf(err, sizeof(err), "cannot read %.120s: %s", logdir, strerror(errno));
		part_set(&s->pt.logs, ERR_IO, err);
		return;
	}
	model_logline *lines = NULL;
	size_t n = 0, cap = 0;
	int files = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL && files < LOG_FILES) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".log") != 0)
			continue;
		char path[1500], source[MODEL_NAME];
		snprintf(path, sizeof(path), "%s/%s", logdir, de->d_name);
		snprintf(source, sizeof(source), "%.*s", (int)(l - 4), de->d_name);
		tail_file(path, source, &lines, &n, &cap);
		files++;
	}
	closedir(d);
	if (n > 1)
		qsort(lines, n, sizeof(*lines), by_time);
	if (n > POLLER_LOG_LINES) {
		memmove(lines, lines + (n - POLLER_LOG_LINES), POLLER_LOG_LINES * sizeof(*lines));
		n = POLLER_LOG_LINES;
	}
	s->logs = lines ? lines : calloc(1, sizeof(*lines));
	s->nlogs = n;
	part_set(&s->pt.logs, 0, "");
}

/* ---- the cycle ----------------------------------------------------------------------- */

static void fetch_cycle(poller *p, const poller_want *w)
{
	snapshot *s = calloc(1, sizeof(*s));
	if (!s)
		return;
	const snapshot *prev = p->cur; /* only this thread replaces it */
	int64_t now = wall_us();
	s->at_us = now;
	char err[256] = "";
	if (client_resolve(p->cl, err, sizeof(err)) != 0) {
		s->connected = 0;
		snprintf(s->banner, sizeof(s->banner), "%s", err);
	} else {
		client_url(p->cl, s->url, sizeof(s->url));
		json_t *v = NULL;
		int rc = client_get_json(p->cl, "/admin/services", &v, err, sizeof(err));
		if (rc == 0 && model_parse_services(v, &s->svcs, &s->nsvcs) != 0) {
			rc = ERR_PARSE;
			snprintf(err, sizeof(err), "unexpected answer from /admin/services");
		}
		json_decref(v);
		part_set(&s->pt.services, rc, err);
		s->connected = !no_answer(rc);
		if (!s->connected)
			snprintf(s->banner, sizeof(s->banner), "%s", err);
		else if (rc == ERR_UNAUTH || rc == ERR_FORBIDDEN)
			snprintf(s->banner, sizeof(s->banner), "the admin token was refused: %s", err);
	}
	if (s->connected && s->pt.services.state == PART_OK) {
		fetch_services(p, s);
		FETCH_LIST(p, s, "/admin/breakers", model_parse_breakers, breakers, nbreakers, breakers);
		FETCH_LIST(p, s, "/admin/faults", model_parse_faults, faults, nfaults, faults);
		FETCH_LIST(p, s, "/admin/queues", model_parse_queues, queues, nqueues, queues);
		char path[64];
		snprintf(path, sizeof(path), "/admin/sagas?limit=%d", SAGAS_LIMIT);
		FETCH_LIST(p, s, path, model_parse_sagas, sagas, nsagas, sagas);
		if (w->stock)
			fetch_stock(p, s, w->stock_filter, now);
		if (w->detail_id[0])
			fetch_detail(p, s, w->detail_id);
		model_meters_compute(s->svcs, s->nsvcs, s->breakers, s->nbreakers, s->queues,
				     s->nqueues, s->sagas, s->nsagas, SAGAS_LIMIT,
				     s->pt.sagas.state == PART_OK, now, &s->meters);
	}
	if (w->logs)
		fetch_logs(p, s);
	if (!s->connected) {
		s->lost_at_us = prev && prev->lost_at_us ? prev->lost_at_us : now;
		if (prev) {
			s->pt = prev->pt;
		}
	}
	if (!w->logs) {
		free(s->logs);
		s->logs = NULL;
		s->nlogs = 0;
	}
	if (!w->stock) {
		free(s->stock);
		s->stock = NULL;
		s->nstock = 0;
	}
	keep_old(s, prev, w);
	publish(p, s);
}

static void *poll_thread(void *arg)
{
	poller *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		poller_want w = p->want;
		int paused = w.paused && p->cur->seq > 0;
		p->wake = 0;
		pthread_mutex_unlock(&p->mu);
		int connected = 1;
		if (!paused) {
			fetch_cycle(p, &w);
			pthread_mutex_lock(&p->mu);
			connected = p->cur->connected;
			pthread_mutex_unlock(&p->mu);
		}
		long ms = w.interval_ms > 0 ? w.interval_ms : 2000;
		if (!connected && ms > RETRY_MS)
			ms = RETRY_MS;
		struct timespec until;
		clock_deadline(&until, CLOCK_MONOTONIC, (int64_t)ms * 1000);
		pthread_mutex_lock(&p->mu);
		while (!p->stop && !p->wake)
			if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&p->mu);
	return NULL; /* the thread's curl handle goes with it */
}

/* ---- the actor -------------------------------------------------------------------------- */

static void news(poller *p, int bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void news(poller *p, int bad, const char *fmt, ...)
{
	char msg[POLLER_MSG];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&p->mu);
	snprintf(p->news.message, sizeof(p->news.message), "%s", msg);
	p->news.bad = bad;
	p->news.at_us = wall_us();
	pthread_mutex_unlock(&p->mu);
}

/* A sku for the next order: the given one first, then the catalog's in
 * turn. 0 or ERR_NOT_FOUND. */
static int next_sku(poller *p, char *sku, size_t len)
{
	pthread_mutex_lock(&p->mu);
	int rc = ERR_NOT_FOUND;
	if (p->nproducts) {
		/* The first few products: stock there is the catalog's default. */
		size_t few = p->nproducts < 20 ? p->nproducts : 20;
		snprintf(sku, len, "%s", p->products[p->next_sku++ % few].sku);
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

typedef struct burst {
	poller *p;
	long long todo; /* orders this thread places */
	char first_sku[MODEL_NAME];
	long long ok, queued, failed;
	char last_id[MODEL_NAME], last_status[24], last_err[160];
} burst;

static void *burst_thread(void *arg)
{
	burst *b = arg;
	for (long long i = 0; i < b->todo; i++) {
		char sku[MODEL_NAME], id[MODEL_NAME], status[24], err[160];
		int rc = ERR_NOT_FOUND;
		/* A sku out of stock: the next one, a few times. */
		for (int tries = 0; tries < 4; tries++) {
			if (i == 0 && tries == 0 && b->first_sku[0])
				snprintf(sku, sizeof(sku), "%s", b->first_sku);
			else if (next_sku(b->p, sku, sizeof(sku)) != 0)
				break;
			rc = client_place_order(b->p->cl, sku, id, sizeof(id), status, sizeof(status),
						err, sizeof(err));
			if (rc != ERR_CONFLICT && rc != ERR_NOT_FOUND)
				break;
		}
		if (rc == 0) {
			b->ok++;
			b->queued += strcmp(status, "AWAITING_PAYMENT") == 0;
			snprintf(b->last_id, sizeof(b->last_id), "%s", id);
			snprintf(b->last_status, sizeof(b->last_status), "%s", status);
			pthread_mutex_lock(&b->p->mu);
			snprintf(b->p->news.last_order, sizeof(b->p->news.last_order), "%s", id);
			pthread_mutex_unlock(&b->p->mu);
		} else {
			b->failed++;
			snprintf(b->last_err, sizeof(b->last_err), "%s",
				 rc == ERR_NOT_FOUND && !err[0] ? "no product to order" : err);
			if (no_answer(rc) || rc == ERR_UNAUTH)
				break; /* the rest would fail the same way */
		}
	}
	return NULL;
}

static void place_orders(poller *p, const action *a)
{
	long long n = a->n < 1 ? 1 : a->n > POLLER_BURST_MAX ? POLLER_BURST_MAX : a->n;
	refresh_products(p, wall_us());
	int nth = n < BURST_THREADS ? (int)n : BURST_THREADS;
	burst b[BURST_THREADS];
	pthread_t th[BURST_THREADS];
	int started[BURST_THREADS] = { 0 };
	memset(b, 0, sizeof(b));
	if (n > 1)
		news(p, 0, "placing %lld orders...", n);
	for (int i = 0; i < nth; i++) {
		b[i].p = p;
		b[i].todo = n / nth + (i < n % nth);
		if (i == 0)
			snprintf(b[i].first_sku, sizeof(b[i].first_sku), "%.*s",
				 (int)sizeof(b[i].first_sku) - 1, a->a);
		if (nth == 1 || pthread_create(&th[i], NULL, burst_thread, &b[i]) != 0)
			burst_thread(&b[i]);
		else
			started[i] = 1;
	}
	long long ok = 0, queued = 0, failed = 0;
	const char *last_err = "", *last_id = "", *last_status = "";
	for (int i = 0; i < nth; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		ok += b[i].ok;
		queued += b[i].queued;
		failed += b[i].failed;
		if (b[i].last_err[0])
			last_err = b[i].last_err;
		if (b[i].last_id[0]) {
			last_id = b[i].last_id;
			last_status = b[i].last_status;
		}
	}
	if (n == 1 && ok == 1)
		news(p, 0, "order %s placed: %s", last_id, last_status);
	else if (n == 1)
		news(p, 1, "the order failed: %s", last_err);
	else
		news(p, failed > 0, "%lld of %lld orders placed (%lld awaiting payment)%s%s", ok, n,
		     queued, failed ? "; last failure: " : "", failed ? last_err : "");
}

static void perform(poller *p, const action *a)
{
	char path[256], err[200] = "";
	json_t *v = NULL;
	int rc;
	switch (a->kind) {
	case ACT_TRIP:
	case ACT_RESET:
		snprintf(path, sizeof(path), "/admin/breakers/%s/%s", a->a,
			 a->kind == ACT_TRIP ? "trip" : "reset");
		rc = client_admin(p->cl, "POST", path, NULL, &v, err, sizeof(err));
		if (rc == 0) {
			size_t failed = json_array_size(json_object_get(v, "failed"));
			news(p, failed > 0, "breakers into %s %s%s", a->a,
			     a->kind == ACT_TRIP ? "forced open (FORCED_OPEN)" : "reset (CLOSED)",
			     failed ? "; some instances did not answer" : "");
		} else {
			news(p, 1, "%s %s: %s", a->kind == ACT_TRIP ? "trip" : "reset", a->a, err);
		}
		break;
	case ACT_FAULT_SET:
	case ACT_FAULT_CLEAR:
		snprintf(path, sizeof(path), "/admin/faults/%s", a->a);
		rc = client_admin(p->cl, a->kind == ACT_FAULT_SET ? "PUT" : "DELETE", path,
				  a->kind == ACT_FAULT_SET ? a->body : NULL, &v, err, sizeof(err));
		if (rc == 0)
			news(p, json_array_size(json_object_get(v, "failed")) > 0, "fault on %s %s", a->a,
			     a->kind == ACT_FAULT_SET ? "set" : "cleared");
		else
			news(p, 1, "fault on %s: %s", a->a, err);
		break;
	case ACT_STOCK_SET: {
		char body[64];
		snprintf(path, sizeof(path), "/v1/inventory/%s", a->a);
		snprintf(body, sizeof(body), "{\"on_hand\":%lld}", a->n);
		rc = client_admin(p->cl, "PUT", path, body, &v, err, sizeof(err));
		if (rc == 0)
			news(p, 0, "%s: on hand %lld", a->a, a->n);
		else
			news(p, 1, "set stock of %s: %s", a->a, err);
		break;
	}
	case ACT_REPLAY:
		snprintf(path, sizeof(path), "/admin/queues/%s/replay%s%s", a->a, a->b[0] ? "?consumer=" : "",
			 a->b);
		rc = client_admin(p->cl, "POST", path, NULL, &v, err, sizeof(err));
		if (rc == 0)
			news(p, 0, "%lld dead letters of %s moved back for replay",
			     (long long)json_integer_value(json_object_get(v, "moved")), a->a);
		else
			news(p, 1, "replay %s: %s", a->a, err);
		break;
	case ACT_ORDERS:
		place_orders(p, a);
		break;
	}
	json_decref(v);
}

static void *actor_thread(void *arg)
{
	poller *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->qlen == 0)
			pthread_cond_wait(&p->act_cv, &p->mu);
		if (p->stop)
			break;
		action a = p->queue[p->qhead];
		p->qhead = (p->qhead + 1) % QUEUE_MAX;
		p->qlen--;
		p->acting = 1;
		pthread_mutex_unlock(&p->mu);
		perform(p, &a);
		pthread_mutex_lock(&p->mu);
		p->acting = 0;
		p->wake = 1; /* show the effect at once */
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* ---- the API ------------------------------------------------------------------------------ */

poller *poller_new(client *cl, const poller_want *want)
{
	poller *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cl = cl;
	p->want = *want;
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&p->act_cv, NULL);
	p->cur = calloc(1, sizeof(*p->cur));
	if (!p->cur) {
		poller_free(p);
		return NULL;
	}
	p->cur->refs = 1;
	p->cur->connected = 1;
	snprintf(p->cur->banner, sizeof(p->cur->banner), "connecting...");
	http_client_global_init();
	p->th_ok = pthread_create(&p->th, NULL, poll_thread, p) == 0;
	p->actor_ok = p->th_ok && pthread_create(&p->actor, NULL, actor_thread, p) == 0;
	if (!p->th_ok || !p->actor_ok) {
		poller_free(p);
		return NULL;
	}
	return p;
}

void poller_free(poller *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_cond_broadcast(&p->act_cv);
	pthread_mutex_unlock(&p->mu);
	if (p->th_ok)
		pthread_join(p->th, NULL);
	if (p->actor_ok)
		pthread_join(p->actor, NULL);
	if (p->th_ok)
		http_client_global_cleanup();
	if (p->cur && --p->cur->refs == 0)
		snapshot_free(p->cur);
	free(p->products);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->act_cv);
	free(p);
}

void poller_want_set(poller *p, const poller_want *w, int wake)
{
	pthread_mutex_lock(&p->mu);
	p->want = *w;
	if (wake) {
		p->wake = 1;
		pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

void poller_wake(poller *p)
{
	pthread_mutex_lock(&p->mu);
	p->wake = 1;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int poller_act(poller *p, const action *a)
{
	pthread_mutex_lock(&p->mu);
	int rc = 0;
	if (p->qlen == QUEUE_MAX) {
		rc = ERR_BUSY;
	} else {
		p->queue[(p->qhead + p->qlen) % QUEUE_MAX] = *a;
		p->qlen++;
		pthread_cond_signal(&p->act_cv);
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void poller_news_get(poller *p, poller_news *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->news;
	out->busy = p->qlen > 0 || p->acting;
	pthread_mutex_unlock(&p->mu);
}
