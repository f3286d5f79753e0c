/* loadgen: the open-model run, on one or more threads, each with its own
 * curl multi handle (a shard). */
#include "sim/loadgen.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/hist.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_multi.h"
#include "sim/arrivals.h"
#include "sim/journey.h"
#include "sim/order_log.h"
#include "sim/pool.h"
#include "sim/schedule.h"
#include "sim/units.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define PENDING_MAX 65536   /* arrivals waiting (within the slack) for a worker */
#define CATALOG_PAGES 50    /* products read: at most 50 pages of 100 */
#define MAX_WAIT_US 100000  /* the loop looks around at least this often */
#define RETRY_DELAY_US 200000
#define SETTLE_PARALLEL 32
#define SETTLE_PAUSE_US 250000
#define SNAPSHOT_US 500000  /* how often a shard shows the progress line its figures */

typedef enum slot_state { SLOT_FREE, SLOT_WAIT, SLOT_SEND } slot_state;

typedef struct loadgen loadgen;
typedef struct shard shard;

/* A worker: one journey at a time, one request of it in flight at most. */
typedef struct slot {
	shard *sh;
	int idx;
	http_xfer *x;
	slot_state st;
	journey_plan plan;
	const pool_user *user;
	int step;
	int attempt;  /* sends of the current step so far, minus one */
	int dup_done; /* the planned duplicate was sent */
	int64_t due;  /* intended start of the request in flight, or of the next one */
	char order_id[64];
	char key[64];
} slot;

typedef struct pending {
	int64_t due;
	uint64_t arrival;
} pending;

/* A thread's share of the run: arrivals k with k % nshards == index, a
 * share of the workers, and a multi handle, a report and an order log of
 * its own (merged into the run's at the end). Shard 0 runs on the calling
 * thread and also collects the schedule and draws the progress line. */
struct shard {
	loadgen *lg;
	int index;
	report *r;
	http_multi *m;
	slot *slots;
	int nslots;
	int *free_stack;
	int nfree;
	int *heap; /* waiting slots, earliest due first */
	int nheap;
	pending *q; /* a ring of arrivals due and not yet started */
	size_t qhead, qlen;
	arrivals *arr;
	int64_t next_due; /* from t0; -1 when no more */
	uint64_t next_arrival;
	int64_t end, stop_us;
	int stopping;
	order_log *orders;
	int rc;
	pthread_t th;
	int running; /* th was started */
	/* what the progress line reads, under mu */
	pthread_mutex_t mu;
	hist *snap;
	uint64_t snap_count, snap_errors, snap_dropped;
	int snap_in_flight;
	int64_t next_snap;
};

struct loadgen {
	const scenario *s;
	const loadgen_opts *o;
	report *r;
	journey_catalog *cat;
	pool *users;
	uint64_t nonce;
	int64_t t0, end;
	int nshards;
	shard *sh;
	schedule *sc;
	hist *tmp;
	hist *prev; /* the run's histogram at the last report, for the window's p99 */
	int64_t next_tick, last_tick;
	uint64_t last_count;
};

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- the waiting heap -------------------------------------------------------- */

static int64_t due_of(shard *sh, int k) { return sh->slots[sh->heap[k]].due; }

static void heap_swap(shard *sh, int a, int b)
{
	int t = sh->heap[a];
	sh->heap[a] = sh->heap[b];
	sh->heap[b] = t;
}

static void heap_push(shard *sh, int idx)
{
	int k = sh->nheap++;
	sh->heap[k] = idx;
	while (k > 0 && due_of(sh, (k - 1) / 2) > due_of(sh, k)) {
		heap_swap(sh, k, (k - 1) / 2);
		k = (k - 1) / 2;
	}
}

static int heap_pop(shard *sh)
{
	int top = sh->heap[0];
	sh->heap[0] = sh->heap[--sh->nheap];
	for (int k = 0;;) {
		int l = 2 * k + 1, r = l + 1, m = k;
		if (l < sh->nheap && due_of(sh, l) < due_of(sh, m))
			m = l;
		if (r < sh->nheap && due_of(sh, r) < due_of(sh, m))
			m = r;
		if (m == k)
			break;
		heap_swap(sh, k, m);
		k = m;
	}
	return top;
}

/* ---- journeys ---------------------------------------------------------------- */

static void send_step(slot *sl);
static void start_journey(shard *sh, slot *sl, uint64_t arrival, int64_t due);

/* The next arrival number of this shard in a closed loop. */
static uint64_t next_closed(shard *sh)
{
	uint64_t k = sh->next_arrival;
	sh->next_arrival += (uint64_t)sh->lg->nshards;
	return k;
}

static void end_journey(slot *sl)
{
	shard *sh = sl->sh;
	sh->r->journeys_done++;
	sl->st = SLOT_FREE;
	int64_t now = clock_mono_us();
	/* Closed loop: the worker goes straight on with the next journey. */
	if (sh->lg->s->closed && !sh->stopping && now < sh->end) {
		sh->r->arrivals++;
		start_journey(sh, sl, next_closed(sh), now);
		return;
	}
	sh->free_stack[sh->nfree++] = sl->idx;
}

/* On to the next step at now plus its think time. */
static void advance(slot *sl, int64_t now)
{
	sl->step++;
	sl->attempt = 0;
	sl->dup_done = 0;
	if (sl->step >= sl->plan.nsteps) {
		end_journey(sl);
		return;
	}
	int64_t think = sl->plan.steps[sl->step].think_us;
	sl->due = now + think;
	if (think > 0) {
		sl->st = SLOT_WAIT;
		heap_push(sl->sh, sl->idx);
	} else {
		send_step(sl);
	}
}

static void on_done(http_xfer *x, void *ud);

static void send_step(slot *sl)
{
	shard *sh = sl->sh;
	loadgen *lg = sh->lg;
	const scenario *s = lg->s;
	journey_req q;
	int rc = journey_request(s, lg->cat, &sl->plan, sl->step, sl->order_id,
				 sl->user ? sl->user->address_id : NULL, &q);
	if (rc == ERR_NOT_FOUND) { /* cancel, but the checkout made no order */
		sh->r->orders.cancels_skipped++;
		advance(sl, sl->due);
		return;
	}
	const journey_step *st = &sl->plan.steps[sl->step];
	snprintf(sl->key, sizeof sl->key, "sim-%016llx-%llu-%d", (unsigned long long)lg->nonce,
		 (unsigned long long)sl->plan.arrival, sl->step);
	http_xfer_req hq = {
		.method = q.method,
		.target = q.target,
		.body = q.body[0] ? q.body : NULL,
		.bearer = sl->user ? sl->user->token : NULL,
		.idem_key = st->action == SCN_CHECKOUT ? sl->key : NULL,
		.timeout_ms = (long)(s->timeout_us / 1000),
		.keep_body = q.keep_body,
	};
	sl->st = SLOT_SEND;
	if (rc == 0)
		rc = http_multi_start(sh->m, sl->x, &hq, on_done, sl);
	if (rc != 0) { /* never sent: an error of the generator's own, counted as such */
		report_sample smp = { .t_us = sl->due - lg->t0, .latency_us = 0, .endpoint = st->action,
				      .err = ERR_IO, .outcome = REPORT_ERROR, .arrival = sl->plan.arrival,
				      .journey = sl->plan.journey, .user = sl->plan.user };
		report_record(sh->r, &smp);
		advance(sl, clock_mono_us());
	}
}

static void start_journey(shard *sh, slot *sl, uint64_t arrival, int64_t due)
{
	loadgen *lg = sh->lg;
	journey_plan_make(lg->s, lg->cat, lg->s->seed, arrival, &sl->plan);
	sl->user = pool_user_for(lg->users, sl->plan.user);
	sl->step = 0;
	sl->attempt = 0;
	sl->dup_done = 0;
	sl->order_id[0] = '\0';
	sl->due = due;
	sh->r->started++;
	send_step(sl);
}

/* What the answer to a checkout means for the journey's order. */
static void checkout_answer(slot *sl, int status, const char *body, size_t len)
{
	shard *sh = sl->sh;
	if ((status != 201 && status != 202) || !body)
		return;
	json_t *v = json_loadb(body, len, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "order_id"));
	if (id && id[0]) {
		if (!sl->order_id[0]) {
			snprintf(sl->order_id, sizeof sl->order_id, "%s", id);
			order_log_add(sh->orders, id, sl->plan.user, sl->plan.arrival, status);
		} else if (strcmp(id, sl->order_id) != 0) {
			/* The same key made a second order: both exist. */
			sh->r->orders.duplicate_mismatch++;
			order_log_add(sh->orders, id, sl->plan.user, sl->plan.arrival, status);
		}
	}
	json_decref(v);
}

static void on_done(http_xfer *x, void *ud)
{
	slot *sl = ud;
	shard *sh = sl->sh;
	int64_t now = clock_mono_us();
	int status = http_xfer_status(x), err = http_xfer_error(x);
	size_t len = 0;
	const char *body = http_xfer_body(x, &len);
	const journey_step *st = &sl->plan.steps[sl->step];
	report_sample smp = {
		.t_us = sl->due - sh->lg->t0,
		.latency_us = now - sl->due,
		.endpoint = st->action,
		.status = status,
		.err = err,
		.outcome = journey_classify(st->action, st->from_cart, status, err, body, len),
		.arrival = sl->plan.arrival,
		.journey = sl->plan.journey,
		.user = sl->plan.user,
		.attempt = sl->attempt,
	};
	report_record(sh->r, &smp);
	if (st->action == SCN_CHECKOUT) {
		checkout_answer(sl, status, body, len);
		int failed = err || status >= 500 || status == 429;
		if (failed && sl->attempt < sh->lg->s->retries) {
			/* A client that did not hear back tries again with the
			 * same key, after a pause. */
			sl->attempt++;
			sl->due = now + RETRY_DELAY_US;
			sl->st = SLOT_WAIT;
			heap_push(sh, sl->idx);
			return;
		}
		if (smp.outcome == REPORT_OK && st->duplicate && !sl->dup_done) {
			/* The double click: the same request, the same key, at once. */
			sl->dup_done = 1;
			sl->attempt++;
			sh->r->orders.duplicates_sent++;
			sl->due = now;
			send_step(sl);
			return;
		}
	}
	advance(sl, now);
}

/* ---- the run ----------------------------------------------------------------- */

/* The shard's figures for the progress line. */
static void snapshot(shard *sh, int64_t now)
{
	uint64_t count, errors;
	report_totals(sh->r, &count, &errors);
	pthread_mutex_lock(&sh->mu);
	report_merge(sh->r, sh->snap);
	sh->snap_count = count;
	sh->snap_errors = errors;
	sh->snap_dropped = sh->r->dropped[0] + sh->r->dropped[1];
	sh->snap_in_flight = http_multi_in_flight(sh->m);
	pthread_mutex_unlock(&sh->mu);
	sh->next_snap = now + SNAPSHOT_US;
}

/* The p99 of what was recorded since prev (which becomes now's copy). */
static int64_t window_p99(loadgen *lg)
{
	hist *now = lg->tmp, *prev = lg->prev;
	uint64_t count = 0;
	for (int b = 0; b < HIST_BUCKETS; b++) {
		uint64_t d = now->buckets[b] >= prev->buckets[b] ? now->buckets[b] - prev->buckets[b] : 0;
		prev->buckets[b] = d; /* prev holds the window for a moment */
		count += d;
	}
	prev->count = count;
	prev->max = now->max;
	prev->min = 0;
	prev->sum = 0;
	int64_t p = count ? hist_percentile(prev, 99) : 0;
	memcpy(prev, now, sizeof(*now));
	return p;
}

static int watched(const loadgen *lg)
{
	return lg->o->progress || lg->o->on_progress;
}

static void progress(loadgen *lg, int64_t now)
{
	uint64_t count = 0, errors = 0, dropped = 0;
	int in_flight = 0;
	hist_reset(lg->tmp);
	for (int i = 0; i < lg->nshards; i++) {
		shard *sh = &lg->sh[i];
		if (i == 0)
			snapshot(sh, now);
		pthread_mutex_lock(&sh->mu);
		hist_merge(lg->tmp, sh->snap);
		count += sh->snap_count;
		errors += sh->snap_errors;
		dropped += sh->snap_dropped;
		in_flight += sh->snap_in_flight;
		pthread_mutex_unlock(&sh->mu);
	}
	double dt = (now - lg->last_tick) / 1e6;
	double rps = dt > 0 && count >= lg->last_count ? (count - lg->last_count) / dt : 0.0;
	int64_t p99_all = hist_percentile(lg->tmp, 99);
	if (lg->o->progress) {
		char p99[32];
		units_fmt_us(p99_all, p99, sizeof p99);
		fprintf(stderr,
			"\r\033[K%s %6.1fs/%.0fs  %8.1f req/s  %llu requests  %.2f%% errors  p99 %s  "
			"dropped %llu  in flight %d",
			lg->s->name, (now - lg->t0) / 1e6, (lg->end - lg->t0) / 1e6, rps,
			(unsigned long long)count, count ? 100.0 * errors / count : 0.0, p99,
			(unsigned long long)dropped, in_flight);
		fflush(stderr);
	}
	if (lg->o->on_progress) {
		loadgen_progress pr = {
			.elapsed_s = (now - lg->t0) / 1e6,
			.planned_s = (lg->end - lg->t0) / 1e6,
			.rps = rps,
			.p99_all_ms = p99_all / 1000.0,
			.requests = count,
			.errors = errors,
			.dropped = dropped,
			.in_flight = in_flight,
		};
		pr.p99_ms = lg->prev ? window_p99(lg) / 1000.0 : pr.p99_all_ms;
		lg->o->on_progress(lg->o->progress_ud, &pr);
	}
	lg->last_count = count;
	lg->last_tick = now;
}

/* Arrival k belongs to shard k % nshards: the next one of this shard. */
static void next_arrival(shard *sh)
{
	do {
		sh->next_due = arrivals_next(sh->arr);
		sh->next_arrival++;
	} while (sh->next_due >= 0 && (int)((sh->next_arrival - 1) % (uint64_t)sh->lg->nshards) != sh->index);
	sh->next_arrival--; /* the number of the arrival now due next */
}

/* Starts what is due: arrivals into the queue, the queue onto free workers
 * (or dropped past the slack), waiting steps whose time has come. */
static void start_due(shard *sh, int64_t now)
{
	const scenario *s = sh->lg->s;
	report *r = sh->r;
	int64_t t0 = sh->lg->t0;
	/* Every arrival due before the end counts, also when the loop first
	 * looks after the end (a late wake on a busy machine): it is then
	 * queued and dropped late, never lost from the figures. */
	while (sh->next_due >= 0 && t0 + sh->next_due <= now && t0 + sh->next_due < sh->end) {
		r->arrivals++;
		if (sh->qlen == PENDING_MAX) {
			report_drop(r, REPORT_DROP_NO_WORKER, sh->next_due, sh->next_arrival);
		} else {
			pending *p = &sh->q[(sh->qhead + sh->qlen++) % PENDING_MAX];
			p->due = t0 + sh->next_due;
			p->arrival = sh->next_arrival;
		}
		sh->next_arrival++;
		next_arrival(sh);
	}
	while (sh->qlen) {
		pending p = sh->q[sh->qhead];
		if (now > p.due + s->slack_us) {
			/* Not started on time: dropped, never started late. A free
			 * worker means the generator itself came too late. */
			report_drop(r, sh->nfree ? REPORT_DROP_LATE : REPORT_DROP_NO_WORKER, p.due - t0,
				    p.arrival);
		} else if (sh->nfree) {
			slot *sl = &sh->slots[sh->free_stack[--sh->nfree]];
			start_journey(sh, sl, p.arrival, p.due);
		} else {
			break;
		}
		sh->qhead = (sh->qhead + 1) % PENDING_MAX;
		sh->qlen--;
	}
	while (sh->nheap && sh->slots[sh->heap[0]].due <= now)
		send_step(&sh->slots[heap_pop(sh)]);
}

static int run_loop(shard *sh)
{
	loadgen *lg = sh->lg;
	const scenario *s = lg->s;
	int64_t grace_end = 0;
	if (s->closed) {
		while (sh->nfree) {
			sh->r->arrivals++;
			start_journey(sh, &sh->slots[sh->free_stack[--sh->nfree]], next_closed(sh), lg->t0);
		}
	}
	for (;;) {
		int64_t now = clock_mono_us();
		if (lg->o->interrupted && *lg->o->interrupted && !sh->r->interrupted) {
			sh->r->interrupted = 1;
			sh->end = now < sh->end ? now : sh->end;
			sh->stopping = 1;
			grace_end = now; /* cut at once */
		}
		if (!sh->stopping && now >= sh->end) {
			sh->stopping = 1;
			grace_end = sh->end + s->grace_us;
		}
		start_due(sh, now);
		if (sh->index == 0) {
			schedule_collect(lg->sc, sh->r);
			if (watched(lg) && now >= lg->next_tick) {
				progress(lg, now);
				lg->next_tick = now + 1000000;
			}
		} else if (watched(lg) && now >= sh->next_snap) {
			snapshot(sh, now);
		}
		if (sh->stopping &&
		    ((http_multi_in_flight(sh->m) == 0 && sh->nheap == 0 && sh->qlen == 0) || now >= grace_end))
			break;
		int64_t wake = now + MAX_WAIT_US;
		if (!sh->stopping && sh->next_due >= 0)
			wake = min64(wake, lg->t0 + sh->next_due);
		if (sh->qlen)
			wake = min64(wake, sh->q[sh->qhead].due + s->slack_us + 1);
		if (sh->nheap)
			wake = min64(wake, sh->slots[sh->heap[0]].due);
		if (watched(lg))
			wake = min64(wake, sh->index == 0 ? lg->next_tick : sh->next_snap);
		wake = min64(wake, sh->stopping ? grace_end : sh->end);
		int ms = wake > now ? (int)((wake - now) / 1000) : 0;
		if (http_multi_run(sh->m, ms) < 0)
			return ERR_IO;
	}
	sh->stop_us = clock_mono_us();
	return 0;
}

static void *shard_thread(void *arg)
{
	shard *sh = arg;
	sh->rc = run_loop(sh);
	return NULL;
}

/* Ends the shard's run: what is still under way is cut, what is still
 * queued is dropped. */
static void cut(shard *sh)
{
	while (sh->qlen) {
		pending p = sh->q[sh->qhead];
		report_drop(sh->r, REPORT_DROP_NO_WORKER, p.due - sh->lg->t0, p.arrival);
		sh->qhead = (sh->qhead + 1) % PENDING_MAX;
		sh->qlen--;
	}
	for (int i = 0; i < sh->nslots; i++) {
		slot *sl = &sh->slots[i];
		if (sl->st == SLOT_FREE)
			continue;
		if (sl->st == SLOT_SEND) {
			http_multi_abort(sh->m, sl->x);
			sh->r->requests_cut++;
		}
		sl->st = SLOT_FREE;
		sh->r->journeys_cut++;
		sh->free_stack[sh->nfree++] = i;
	}
	sh->nheap = 0;
}

/* ---- reading the orders back -------------------------------------------------- */

typedef struct reader {
	shard *sh;
	http_xfer *x;
	size_t order;
	int busy;
} reader;

static void on_order(http_xfer *x, void *ud)
{
	reader *rd = ud;
	order_log *ol = rd->sh->orders;
	rd->busy = 0;
	int status = http_xfer_status(x);
	size_t len;
	const char *body = http_xfer_body(x, &len);
	if (status == 404) {
		order_log_set(ol, rd->order, NULL, NULL, NULL);
		return;
	}
	if (status != 200 || !body)
		return; /* read again next round */
	json_t *v = json_loadb(body, len, 0, NULL);
	const char *st = json_string_value(json_object_get(v, "status"));
	if (st)
		order_log_set(ol, rd->order, st, json_string_value(json_object_get(v, "cancel_reason")),
			      json_string_value(json_object_get(json_object_get(v, "saga"), "state")));
	json_decref(v);
}

/* Reads every order (all in shard 0's log by now) back until all are final
 * or the settle time is up. */
static void settle(loadgen *lg)
{
	shard *sh = &lg->sh[0];
	report_orders *ro = &lg->r->orders;
	order_log *ol = sh->orders;
	int64_t settle = lg->r->interrupted && lg->s->settle_us > 2000000 ? 2000000 : lg->s->settle_us;
	int64_t start = clock_mono_us(), deadline = start + settle;
	reader rd[SETTLE_PARALLEL];
	int nr = sh->nslots < SETTLE_PARALLEL ? sh->nslots : SETTLE_PARALLEL;
	for (int i = 0; i < nr; i++)
		rd[i] = (reader){ .sh = sh, .x = sh->slots[i].x };
	for (int round = 0; ol->n > 0; round++) {
		size_t next = 0;
		int open = 0;
		for (;;) {
			for (int i = 0; i < nr; i++) {
				while (!rd[i].busy && next < ol->n) {
					size_t k = next++;
					if (order_log_final(ol, k))
						continue;
					const pool_user *u = pool_user_for(lg->users, ol->v[k].user);
					char path[128];
					snprintf(path, sizeof path, "/v1/orders/%s", ol->v[k].id);
					http_xfer_req q = { .method = "GET", .target = path,
							    .bearer = u ? u->token : NULL,
							    .timeout_ms = 5000, .keep_body = 1 };
					rd[i].order = k;
					if (http_multi_start(sh->m, rd[i].x, &q, on_order, &rd[i]) == 0)
						rd[i].busy = 1;
				}
			}
			if (http_multi_in_flight(sh->m) == 0 && next >= ol->n)
				break;
			if (http_multi_run(sh->m, 50) < 0)
				break;
		}
		for (size_t k = 0; k < ol->n; k++)
			open += !order_log_final(ol, k);
		if (open == 0 || clock_mono_us() + SETTLE_PAUSE_US >= deadline)
			break;
		http_multi_run(sh->m, SETTLE_PAUSE_US / 1000); /* nothing in flight: a pause */
	}
	order_log_tally(ol, ro);
	ro->polled = 1;
	ro->settle_us = clock_mono_us() - start;
}

/* ---- setup -------------------------------------------------------------------- */
/* ---- setup -------------------------------------------------------------------- */

static int needs_catalog(const scenario *s)
{
	for (int j = 0; j < s->njourneys; j++)
		for (int k = 0; k < s->journeys[j].nsteps; k++)
			if (s->journeys[j].steps[k] != SCN_HEALTH && s->journeys[j].steps[k] != SCN_CART &&
			    s->journeys[j].steps[k] != SCN_ORDERS)
				return 1;
	return 0;
}

static int read_catalog(loadgen *lg, char *err, size_t errlen)
{
	char url[1024], page[256] = "";
	for (int n = 0; n < CATALOG_PAGES; n++) {
		snprintf(url, sizeof url, "%s/v1/products?page_size=100%s%s", lg->o->url,
			 page[0] ? "&page_token=" : "", page);
		msg_resp resp;
		msg_resp_init(&resp);
		int rc = http_client_simple("GET", url, NULL, NULL, &resp, 10000);
		json_t *v = rc == 0 && resp.status == 200 && resp.body
				    ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
		int status = resp.status;
		msg_resp_clear(&resp);
		if (!v) {
			snprintf(err, errlen, "cannot read the catalog (GET %s: %s)", url,
				 rc ? err_name(rc) : status ? "not a product list" : "no answer");
			if (rc == 0 && status != 200)
				snprintf(err, errlen, "cannot read the catalog (GET %s answered %d)", url, status);
			return rc ? rc : ERR_UNAVAILABLE;
		}
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(v, "items"), i, p)
			journey_catalog_add(lg->cat, json_string_value(json_object_get(p, "sku")),
					    json_string_value(json_object_get(p, "category")),
					    json_string_value(json_object_get(p, "name")));
		const char *tok = json_string_value(json_object_get(v, "next_page_token"));
		int more = tok && tok[0] && strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
							"0123456789-_.~") == strlen(tok) &&
			   strlen(tok) < sizeof page;
		if (more)
			snprintf(page, sizeof page, "%s", tok);
		json_decref(v);
		if (!more)
			break;
	}
	return journey_catalog_seal(lg->cat, lg->s, err, errlen);
}

static int apply_setup(loadgen *lg, char *err, size_t errlen)
{
	for (int i = 0; i < lg->s->nstock; i++) {
		const scenario_stock *st = &lg->s->stock[i];
		char url[1024], body[64];
		snprintf(url, sizeof url, "%s/v1/inventory/%s", lg->o->url, st->sku);
		snprintf(body, sizeof body, "{\"on_hand\":%lld}", (long long)st->on_hand);
		msg_resp resp;
		msg_resp_init(&resp);
		int rc = http_client_simple("PUT", url, body, lg->o->admin_token, &resp, 10000);
		int status = resp.status;
		msg_resp_clear(&resp);
		if (rc || status != 200) {
			snprintf(err, errlen, "[setup] stock %s %lld: %s", st->sku, (long long)st->on_hand,
				 rc ? err_name(rc) : status == 401 || status == 403 ? "the admin token was refused"
										: "refused");
			return rc ? rc : ERR_UNAVAILABLE;
		}
	}
	return 0;
}

static int users_needed(const scenario *s)
{
	for (int j = 0; j < s->njourneys; j++)
		for (int k = 0; k < s->journeys[j].nsteps; k++)
			if (scenario_action_needs_user(s->journeys[j].steps[k]))
				return s->users;
	return 0;
}

static void shard_clear(shard *sh)
{
	for (int i = 0; sh->slots && i < sh->nslots; i++)
		http_xfer_free(sh->slots[i].x);
	http_multi_free(sh->m);
	free(sh->slots);
	free(sh->free_stack);
	free(sh->heap);
	free(sh->q);
	arrivals_free(sh->arr);
	order_log_free(sh->orders);
	hist_free(sh->snap);
	if (sh->index > 0 && sh->r) {
		/* Its outputs are the run's: not its to close. */
		sh->r->ndjson = sh->r->csv = NULL;
		report_free(sh->r);
	}
	pthread_mutex_destroy(&sh->mu);
}

static void loadgen_clear(loadgen *lg)
{
	for (int i = 0; lg->sh && i < lg->nshards; i++)
		shard_clear(&lg->sh[i]);
	free(lg->sh);
	journey_catalog_free(lg->cat);
	pool_free(lg->users);
	hist_free(lg->tmp);
	hist_free(lg->prev);
}

static int shard_init(loadgen *lg, shard *sh, int index)
{
	const scenario *s = lg->s;
	sh->lg = lg;
	sh->index = index;
	pthread_mutex_init(&sh->mu, NULL);
	/* The workers, shared out; shard 0 takes the remainder. */
	sh->nslots = s->workers / lg->nshards + (index == 0 ? s->workers % lg->nshards : 0);
	if (sh->nslots < 1)
		sh->nslots = 1;
	sh->r = index == 0 ? lg->r : report_new(s);
	if (sh->r && index > 0) {
		sh->r->ndjson = lg->r->ndjson; /* stdio locks each line */
		sh->r->csv = lg->r->csv;
	}
	sh->m = http_multi_new(lg->o->url, sh->nslots + 16);
	sh->slots = calloc((size_t)sh->nslots, sizeof *sh->slots);
	sh->free_stack = calloc((size_t)sh->nslots, sizeof(int));
	sh->heap = calloc((size_t)sh->nslots, sizeof(int));
	sh->q = calloc(PENDING_MAX, sizeof *sh->q);
	sh->arr = arrivals_new(s, s->seed);
	sh->orders = order_log_new();
	sh->snap = hist_new();
	if (!sh->r || !sh->m || !sh->slots || !sh->free_stack || !sh->heap || !sh->q || !sh->arr ||
	    !sh->orders || !sh->snap)
		return ERR_NOMEM;
	for (int i = sh->nslots - 1; i >= 0; i--) {
		slot *sl = &sh->slots[i];
		sl->sh = sh;
		sl->idx = i;
		if (!(sl->x = http_xfer_new()))
			return ERR_NOMEM;
		sh->free_stack[sh->nfree++] = i;
	}
	sh->next_arrival = (uint64_t)index; /* closed loop: index, index + n, ... */
	return 0;
}

static int prepare(loadgen *lg, char *err, size_t errlen)
{
	const scenario *s = lg->s;
	lg->nshards = s->threads > 0 ? s->threads : 1;
	if (lg->nshards > s->workers)
		lg->nshards = s->workers;
	lg->sh = calloc((size_t)lg->nshards, sizeof *lg->sh);
	lg->cat = journey_catalog_new();
	lg->tmp = hist_new();
	if (lg->o->on_progress)
		lg->prev = hist_new(); /* NULL: the run's p99 stands in for the window's */
	if (!lg->sh || !lg->cat || !lg->tmp) {
		snprintf(err, errlen, "out of memory");
		return ERR_NOMEM;
	}
	for (int i = 0; i < lg->nshards; i++)
		if (shard_init(lg, &lg->sh[i], i) != 0) {
			snprintf(err, errlen, "out of memory");
			return ERR_NOMEM;
		}
	int rc;
	if (needs_catalog(s) && (rc = read_catalog(lg, err, errlen)) != 0)
		return rc;
	if ((rc = apply_setup(lg, err, errlen)) != 0)
		return rc;
	int n = users_needed(s);
	if (n > 0) {
		if (!(lg->users = pool_new(n, s->seed))) {
			snprintf(err, errlen, "out of memory");
			return ERR_NOMEM;
		}
		if (lg->o->log)
			fprintf(lg->o->log, "ecom sim: signing in %d users...\n", n);
		int64_t timeout = 30000000LL + (int64_t)n * 1000000LL;
		if ((rc = pool_sign_in(lg->users, lg->o->url, 8, timeout, lg->o->interrupted, lg->o->log,
				       err, errlen)) != 0)
			return rc;
		lg->r->users_ready = lg->users->nready;
	}
	return 0;
}

/* Shard i's figures and orders into the run's (shard 0's). */
static void gather(loadgen *lg)
{
	shard *s0 = &lg->sh[0];
	for (int i = 1; i < lg->nshards; i++) {
		shard *sh = &lg->sh[i];
		report_add(lg->r, sh->r);
		for (size_t k = 0; k < sh->orders->n; k++) {
			const order_entry *e = &sh->orders->v[k];
			order_log_add(s0->orders, e->id, e->user, e->arrival, e->created_status);
		}
	}
}

int loadgen_run(const scenario *s, const loadgen_opts *o, report *r, char *err, size_t errlen)
{
	loadgen lg = { .s = s, .o = o, .r = r };
	lg.nonce = o->nonce ? o->nonce : rng_os_seed();
	int rc = prepare(&lg, err, errlen);
	if (rc == 0 && o->interrupted && *o->interrupted) {
		snprintf(err, errlen, "interrupted before the run started");
		rc = ERR_STATE;
	}
	if (rc) {
		loadgen_clear(&lg);
		return rc;
	}
	lg.t0 = clock_mono_us();
	if (o->on_start)
		o->on_start(o->on_start_ud, lg.t0);
	lg.end = lg.t0 + scenario_duration_us(s);
	lg.last_tick = lg.t0;
	lg.next_tick = lg.t0 + 1000000;
	for (int i = 0; i < lg.nshards; i++) {
		shard *sh = &lg.sh[i];
		sh->end = lg.end;
		sh->next_snap = lg.t0 + SNAPSHOT_US;
		sh->next_due = -1;
		if (!s->closed) {
			sh->next_arrival = 0;
			next_arrival(sh);
		}
	}
	schedule_opts so = { .url = o->url, .token = o->admin_token, .state_dir = o->state_dir,
			     .t0_mono = lg.t0 };
	lg.sc = schedule_start(s, &so);
	for (int i = 1; i < lg.nshards; i++) {
		shard *sh = &lg.sh[i];
		if (pthread_create(&sh->th, NULL, shard_thread, sh) == 0)
			sh->running = 1;
		else
			sh->rc = ERR_NOMEM; /* the run fails: its share never ran */
	}
	rc = run_loop(&lg.sh[0]);
	int64_t stop = lg.sh[0].stop_us ? lg.sh[0].stop_us : clock_mono_us();
	for (int i = 1; i < lg.nshards; i++) {
		shard *sh = &lg.sh[i];
		if (sh->running)
			pthread_join(sh->th, NULL);
		if (sh->rc && !rc)
			rc = sh->rc;
		if (sh->stop_us > stop)
			stop = sh->stop_us;
	}
	for (int i = 0; i < lg.nshards; i++)
		cut(&lg.sh[i]);
	schedule_stop(lg.sc, r);
	if (o->progress)
		fprintf(stderr, "\r\033[K");
	for (int i = 1; i < lg.nshards; i++)
		r->interrupted |= lg.sh[i].r->interrupted;
	gather(&lg);
	r->elapsed_us = min64(stop, lg.end) - lg.t0;
	r->drain_us = stop > lg.end ? stop - lg.end : 0;
	if (rc == 0) {
		if (o->log && lg.sh[0].orders->n)
			fprintf(o->log, "ecom sim: reading %zu orders back...\n", lg.sh[0].orders->n);
		settle(&lg);
		if (o->audit) {
			r->audit_hooked = 1;
			int a = o->audit(o->audit_ud, o->url, o->admin_token, r->audit_text,
					 sizeof r->audit_text);
			r->audit_ran = a >= 0;
			r->audit_failures = a >= 0 ? a : 0;
		}
		report_decide(r);
	} else {
		snprintf(err, errlen, "the run stopped: %s", err_name(rc));
	}
	loadgen_clear(&lg);
	return rc;
}
