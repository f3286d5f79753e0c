/* audit: cross-service invariants (`ecom audit`). */
#include "ops/audit.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"
#include "services/order.h"
#include "services/payment.h"
#include "sim/units.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "audit"
#define PAGE 500
/* Bounds on what one audit reads: pages per listing, and single orders
 * looked up for payments the listing did not have. */
#define MAX_PAGES 20000
#define MAX_LOOKUPS 1000
#define DEFAULT_GRACE_US (120 * 1000000LL)

static const char HELP[] =
	"usage: ecom audit [--state DIR | --url URL] [--json] [--wait D] [--grace D]\n"
	"\n"
	"Checks the platform's cross-service invariants, read from every service's\n"
	"admin API with the admin token:\n"
	"  orders_settled        every order CONFIRMED or CANCELLED with its saga ended,\n"
	"                        or PENDING/AWAITING_PAYMENT with a live saga\n"
	"  no_oversell           stock never negative and explained by the ledger; each\n"
	"                        CONFIRMED order's stock committed once, for its units\n"
	"  reserved_stock        reserved equals the HELD reservations, which belong to\n"
	"                        orders still in flight\n"
	"  money                 captured money equals the CONFIRMED orders' totals minus\n"
	"                        refunds; a CANCELLED order keeps nothing\n"
	"  payments_have_orders  every payment belongs to an order, for its amount\n"
	"  notifications         one confirmation notification per CONFIRMED order\n"
	"                        (skipped while no notification service is deployed)\n"
	"Each is shown ✓ or ✗ with the offending ids (up to 20 each). Exits 0 when all\n"
	"hold, 1 when any fails or cannot be checked.\n"
	"\n"
	"  --json      the report as JSON\n"
	"  --wait D    how long to wait for reads a service refuses for a moment (a breaker\n"
	"              open) and for confirmations still on their way (default 10s)\n"
	"  --grace D   how long past its reservation's expiry an order may still be in\n"
	"              flight (default 2m)\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL   the gateway (admin token from $ECOM_ADMIN_TOKEN)\n";

static const char *const NAMES[AUDIT_NCHECKS] = {
	"orders_settled", "no_oversell", "reserved_stock", "money", "payments_have_orders",
	"notifications",
};

static const char *const TITLES[AUDIT_NCHECKS] = {
	"every order final or in flight with a live saga",
	"no oversell: stock committed once per CONFIRMED order",
	"reserved stock equals the HELD reservations",
	"captured money equals CONFIRMED totals minus refunds",
	"every payment belongs to an order",
	"one confirmation notification per CONFIRMED order",
};

const char *audit_name(audit_id id) { return id < AUDIT_NCHECKS ? NAMES[id] : "?"; }
const char *audit_title(audit_id id) { return id < AUDIT_NCHECKS ? TITLES[id] : "?"; }

/* ---- reading ------------------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

void audit_data_clear(audit_data *d)
{
	json_decref(d->orders);
	json_decref(d->payments);
	json_decref(d->reservations);
	json_decref(d->invariants);
	json_decref(d->notifications);
	json_decref(d->order_lookups);
	memset(d, 0, sizeof(*d));
}

static int64_t real_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* How the audit reads: the getter, and until when (clock_mono_us) a read
 * that was refused for a moment (no answer, 503: a breaker open or no
 * instance ready, 504, 429) is tried again. */
typedef struct reader {
	audit_get_fn get;
	void *ud;
	int64_t until;
} reader;

static int transient(int rc, int status)
{
	return rc != 0 || status == 503 || status == 504 || status == 429;
}

/* One GET: 0 with *out the parsed JSON object (new reference) and *status;
 * otherwise an error with err saying why (no answer, not JSON). */
static int get_json(const reader *rd, const char *path, int *status, json_t **out, char *err,
		    size_t errlen)
{
	msg_resp r;
	msg_resp_init(&r);
	*out = NULL;
	*status = 0;
	int rc = rd->get(rd->ud, path, &r);
	while (transient(rc, r.status) && clock_mono_us() + 500000 < rd->until) {
		usleep(500000);
		msg_resp_clear(&r);
		msg_resp_init(&r);
		rc = rd->get(rd->ud, path, &r);
	}
	if (rc == 0) {
		*status = r.status;
		*out = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
		if (!json_is_object(*out)) {
			json_decref(*out);
			*out = NULL;
			snprintf(err, errlen, "GET %s: HTTP %d, not a JSON object", path, r.status);
			rc = ERR_IO;
		}
	} else {
		snprintf(err, errlen, "GET %s: %s", path, err_name(rc));
	}
	msg_resp_clear(&r);
	return rc;
}

/* The API error's message of v, or "". */
static const char *api_message(json_t *v)
{
	const char *m = json_string_value(json_object_get(json_object_get(v, "error"), "message"));
	return m ? m : "";
}

/* Every page of a listing (path has its query; "limit" and "page_token"
 * are added) into *out, a new array. 0, or an error with err filled;
 * *status is the failing page's status (0 when none came). */
static int get_all(const reader *rd, const char *path, json_t **out, int *status, char *err,
		   size_t errlen)
{
	*out = json_array();
	char token[256] = "";
	const char *sep = strchr(path, '?') ? "&" : "?";
	for (int page = 0; page < MAX_PAGES; page++) {
		char p[800];
		if (token[0])
			snprintf(p, sizeof(p), "%s%slimit=%d&page_token=%s", path, sep, PAGE, token);
		else
			snprintf(p, sizeof(p), "%s%slimit=%d", path, sep, PAGE);
		json_t *v = NULL;
		int rc = get_json(rd, p, status, &v, err, errlen);
		if (rc == 0 && *status != 200) {
			snprintf(err, errlen, "GET %s: HTTP %d %s", path, *status, api_message(v));
			rc = ERR_IO;
		}
		json_t *items = json_object_get(v, "items");
		if (rc == 0 && !json_is_array(items)) {
			snprintf(err, errlen, "GET %s: no items in the answer", path);
			rc = ERR_IO;
		}
		if (rc) {
			json_decref(v);
			json_decref(*out);
			*out = NULL;
			return rc;
		}
		json_array_extend(*out, items);
		const char *next = json_string_value(json_object_get(v, "next_page_token"));
		int more = next && next[0];
		if (more && (strlen(next) >= sizeof(token) || strcmp(next, token) == 0)) {
			snprintf(err, errlen, "GET %s: a page token that %s", path,
				 strcmp(next, token) == 0 ? "repeats" : "is too long");
			json_decref(v);
			json_decref(*out);
			*out = NULL;
			return ERR_IO;
		}
		if (more)
			snprintf(token, sizeof(token), "%s", next);
		json_decref(v);
		if (!more)
			return 0;
	}
	snprintf(err, errlen, "GET %s: more than %d pages", path, MAX_PAGES);
	json_decref(*out);
	*out = NULL;
	return ERR_TOO_LARGE;
}

/* 1 when the gateway lists an instance of service, 0 when it does not, -1
 * when it cannot tell. */
static int deployed(const reader *rd, const char *service)
{
	int status;
	json_t *v = NULL;
	char err[160];
	int found = -1;
	if (get_json(rd, "/admin/services", &status, &v, err, sizeof(err)) == 0 &&
	    status == 200) {
		found = 0;
		size_t i;
		json_t *s;
		json_array_foreach(json_object_get(v, "services"), i, s)
			if (strcmp(jstr(s, "name"), service) == 0 &&
			    json_array_size(json_object_get(s, "instances")) > 0)
				found = 1;
	}
	json_decref(v);
	return found;
}

static void fetch_notifications(const reader *rd, audit_data *d)
{
	json_decref(d->notifications);
	d->notifications = NULL;
	d->notifications_err[0] = d->notifications_skip[0] = '\0';
	int status = 0;
	char err[160];
	/* Not registered: nothing to read (and no reason to wait for it). */
	if (deployed(rd, "notification") == 0 ||
	    (get_all(rd, "/admin/notifications?type=order_confirmed", &d->notifications, &status,
		     err, sizeof(err)) != 0 &&
	     status == 404))
		snprintf(d->notifications_skip, sizeof(d->notifications_skip),
			 "skipped: notification service not deployed");
	else if (!d->notifications)
		snprintf(d->notifications_err, sizeof(d->notifications_err), "%s", err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The order ids payments name that the listing does not have, looked up
 * one by one (they may have been placed after the listing was read). */
static void lookup_orders(const reader *rd, audit_data *d)
{
	d->order_lookups = json_object();
	size_t no = json_array_size(d->orders), np = json_array_size(d->payments);
	const char **ids = calloc(no + 1, sizeof(*ids));
	if (!ids)
		return;
	for (size_t i = 0; i < no; i++)
		ids[i] = jstr(json_array_get(d->orders, i), "order_id");
	qsort(ids, no, sizeof(*ids), cmp_str);
	int looked = 0;
	for (size_t i = 0; i < np && looked < MAX_LOOKUPS; i++) {
		const char *oid =
			json_string_value(json_object_get(json_array_get(d->payments, i), "order_id"));
		if (!oid || bsearch(&oid, ids, no, sizeof(*ids), cmp_str) ||
		    json_object_get(d->order_lookups, oid))
			continue;
		char path[256];
		snprintf(path, sizeof(path), "/admin/sagas/%s", oid);
		int status;
		json_t *v = NULL;
		char err[160];
		looked++;
		if (strlen(oid) < 100 && get_json(rd, path, &status, &v, err, sizeof(err)) == 0 &&
		    (status == 200 || status == 404))
			json_object_set_new(d->order_lookups, oid, json_integer(status == 200));
		json_decref(v);
	}
	free(ids);
}

static void fetch(const reader *rd, const audit_opts *o, audit_data *d)
{
	audit_data_clear(d);
	int status;
	d->now_us = o && o->now_us ? o->now_us : real_now_us();
	/* Orders first: whatever is read later and names an order that was in
	 * flight then is not held against it. */
	get_all(rd, "/admin/orders", &d->orders, &status, d->orders_err, sizeof(d->orders_err));
	if (get_json(rd, "/admin/inventory/invariants", &status, &d->invariants, d->invariants_err,
		     sizeof(d->invariants_err)) == 0 &&
	    status != 200) {
		snprintf(d->invariants_err, sizeof(d->invariants_err),
			 "GET /admin/inventory/invariants: HTTP %d %s", status,
			 api_message(d->invariants));
		json_decref(d->invariants);
		d->invariants = NULL;
	}
	get_all(rd, "/admin/inventory/reservations", &d->reservations, &status,
		d->reservations_err, sizeof(d->reservations_err));
	get_all(rd, "/admin/payments", &d->payments, &status, d->payments_err,
		sizeof(d->payments_err));
	fetch_notifications(rd, d);
	if (d->orders && d->payments)
		lookup_orders(rd, d);
}

static reader reader_for(audit_get_fn get, void *ud, const audit_opts *o)
{
	return (reader){ get, ud, clock_mono_us() + (o ? o->wait_us : 0) };
}

int audit_fetch(audit_get_fn get, void *ud, const audit_opts *o, audit_data *d)
{
	reader rd = reader_for(get, ud, o);
	fetch(&rd, o, d);
	return 0;
}

/* ---- the checks --------------------------------------------------------------------- */

typedef struct ord {
	const char *id, *currency, *saga, *pay_id, *rsv_id;
	int status;      /* ORDER_*, -1 unknown */
	int64_t total, units, expires_us;
	int queued, has_saga;
	/* from the payments */
	int64_t captured, refunded, held; /* held: payments AUTHORIZED or PENDING */
	int npay;
	/* from the notifications */
	int notified;
} ord;

typedef struct ord_index {
	ord *v;
	size_t n;
} ord_index;

static int cmp_ord(const void *a, const void *b)
{
	return strcmp(((const ord *)a)->id, ((const ord *)b)->id);
}

static ord *find_ord(const ord_index *ix, const char *id)
{
	if (!id)
		return NULL;
	ord key = { .id = id };
	return bsearch(&key, ix->v, ix->n, sizeof(ord), cmp_ord);
}


static void found(audit_verdict *c, const char *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void found(audit_verdict *c, const char *id, const char *fmt, ...)
{
	c->nfound++;
	if (c->nlisted >= AUDIT_MAX_LISTED)
		return;
	audit_finding *f = &c->found[c->nlisted++];
	snprintf(f->id, sizeof(f->id), "%s", id && id[0] ? id : "?");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
}

static void summary(audit_verdict *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void summary(audit_verdict *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->summary, sizeof(c->summary), fmt, ap);
	va_end(ap);
}

/* Marks c as not checkable when a source it needs could not be read (err
 * set). 1 then. */
static int needs(audit_verdict *c, const char *err)
{
	if (!err[0])
		return 0;
	c->result = AUDIT_ERROR;
	summary(c, "%s", err);
	return 1;
}

static int is_final(const ord *o) { return o->status == ORDER_CONFIRMED || o->status == ORDER_CANCELLED; }

static void money_fmt(int64_t cents, char *buf, size_t len)
{
	snprintf(buf, len, "%s%" PRId64 ".%02" PRId64, cents < 0 ? "-" : "",
		 (cents < 0 ? -cents : cents) / 100, (cents < 0 ? -cents : cents) % 100);
}

static void build_index(const audit_data *d, ord_index *ix)
{
	ix->n = json_array_size(d->orders);
	ix->v = calloc(ix->n + 1, sizeof(ord));
	if (!ix->v) {
		ix->n = 0;
		return;
	}
	for (size_t i = 0; i < ix->n; i++) {
		json_t *it = json_array_get(d->orders, i), *sg = json_object_get(it, "saga");
		ord *o = &ix->v[i];
		o->id = jstr(it, "order_id");
		o->status = order_status_parse(jstr(it, "status"));
		o->currency = jstr(it, "currency");
		o->total = jint(it, "total_cents");
		o->units = jint(it, "units");
		o->pay_id = jstr(it, "payment_id");
		o->rsv_id = jstr(it, "reservation_id");
		o->has_saga = json_is_object(sg);
		o->saga = o->has_saga ? jstr(sg, "state") : "";
		o->queued = json_is_true(json_object_get(sg, "queued"));
		if (clock_parse_rfc3339(jstr(sg, "expires_at"), &o->expires_us) != 0)
			o->expires_us = INT64_MAX;
	}
	qsort(ix->v, ix->n, sizeof(ord), cmp_ord);
}

static void check_orders(const audit_data *d, const ord_index *ix, int64_t grace, audit_verdict *c)
{
	if (needs(c, d->orders_err))
		return;
	int64_t n[ORDER_NSTATUS] = { 0 };
	for (size_t i = 0; i < ix->n; i++) {
		const ord *o = &ix->v[i];
		if (o->status < 0) {
			found(c, o->id, "unknown status");
			continue;
		}
		n[o->status]++;
		if (o->status == ORDER_CONFIRMED) {
			/* Confirmed at the pivot; the saga may still be clearing
			 * the cart, queued. */
			if (!(strcmp(o->saga, "COMPLETED") == 0 ||
			      (strcmp(o->saga, "CONFIRMING") == 0 && o->queued)))
				found(c, o->id, "CONFIRMED but its saga is %s%s",
				      o->has_saga ? o->saga : "missing",
				      o->has_saga && !o->queued ? " and not queued" : "");
		} else if (o->status == ORDER_CANCELLED) {
			if (strcmp(o->saga, "COMPENSATED") != 0)
				found(c, o->id, "CANCELLED but its saga is %s",
				      o->has_saga ? o->saga : "missing");
		} else if (!o->has_saga) {
			found(c, o->id, "%s without a saga", order_status_name(o->status));
		} else if (strcmp(o->saga, "COMPLETED") == 0 || strcmp(o->saga, "COMPENSATED") == 0) {
			found(c, o->id, "%s but its saga ended %s", order_status_name(o->status),
			      o->saga);
		} else if (!o->queued) {
			found(c, o->id, "%s, saga %s, not queued: nothing will move it",
			      order_status_name(o->status), o->saga);
		} else if (o->expires_us != INT64_MAX && d->now_us > o->expires_us + grace) {
			found(c, o->id, "%s, saga %s: its reservation expired %" PRId64 " s ago",
			      order_status_name(o->status), o->saga,
			      (d->now_us - o->expires_us) / 1000000);
		}
	}
	summary(c, "%zu orders: %" PRId64 " CONFIRMED, %" PRId64 " CANCELLED, %" PRId64
		   " in flight (%" PRId64 " AWAITING_PAYMENT)",
		ix->n, n[ORDER_CONFIRMED], n[ORDER_CANCELLED],
		n[ORDER_PENDING] + n[ORDER_AWAITING_PAYMENT], n[ORDER_AWAITING_PAYMENT]);
}

/* The inventory checker's violations named in checks (NULL-ended) into c. */
static int64_t inventory_violations(const audit_data *d, const char *const *checks, audit_verdict *c)
{
	int64_t n = 0;
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(d->invariants, "violations"), i, v) {
		const char *name = jstr(v, "check");
		for (int k = 0; checks[k]; k++)
			if (strcmp(name, checks[k]) == 0) {
				found(c, jstr(v, "sku"), "%s: %s", name, jstr(v, "message"));
				n++;
			}
		if (strcmp(name, "store") == 0 && !c->nfound) {
			c->result = AUDIT_ERROR;
			summary(c, "the inventory's checker could not read its store: %s",
				jstr(v, "message"));
		}
	}
	return n;
}

static json_t *reservation_of(const audit_data *d, const char *id)
{
	/* The listing is in reservation_id order, but compared by the
	 * database's collation: search it linearly only when bisection
	 * misses. */
	size_t lo = 0, hi = json_array_size(d->reservations);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		json_t *r = json_array_get(d->reservations, mid);
		int c = strcmp(jstr(r, "reservation_id"), id);
		if (c == 0)
			return r;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t i;
	json_t *r;
	json_array_foreach(d->reservations, i, r)
		if (strcmp(jstr(r, "reservation_id"), id) == 0)
			return r;
	return NULL;
}

static void check_oversell(const audit_data *d, const ord_index *ix, audit_verdict *c)
{
	if (needs(c, d->invariants_err) || needs(c, d->orders_err) || needs(c, d->reservations_err))
		return;
	static const char *const inv[] = { "non_negative", "ledger_sums", "ledger_without_stock",
					   "on_hand_moves", NULL };
	int64_t bad_stock = inventory_violations(d, inv, c);
	if (c->result == AUDIT_ERROR)
		return;
	int64_t confirmed = 0, units = 0;
	for (size_t i = 0; i < ix->n; i++) {
		const ord *o = &ix->v[i];
		if (!is_final(o))
			continue;
		json_t *r = reservation_of(d, o->rsv_id);
		const char *st = r ? jstr(r, "status") : "missing";
		if (o->status == ORDER_CONFIRMED) {
			confirmed++;
			units += o->units;
			if (strcmp(st, "COMMITTED") != 0)
				found(c, o->id, "CONFIRMED but its reservation %s is %s", o->rsv_id, st);
			else if (jint(r, "units") != o->units)
				found(c, o->id, "CONFIRMED for %" PRId64 " units, %" PRId64 " committed",
				      o->units, jint(r, "units"));
		} else if (strcmp(st, "COMMITTED") == 0) {
			found(c, o->id, "CANCELLED but its reservation %s took %" PRId64
					" units off the shelf",
			      o->rsv_id, jint(r, "units"));
		}
	}
	summary(c, "%" PRId64 " CONFIRMED orders, %" PRId64 " units sold; the inventory's own "
		   "checks %s",
		confirmed, units, bad_stock ? "failed" : "hold");
}

static void check_reserved(const audit_data *d, const ord_index *ix, int64_t grace, audit_verdict *c)
{
	if (needs(c, d->invariants_err) || needs(c, d->reservations_err) || needs(c, d->orders_err))
		return;
	static const char *const inv[] = { "reserved_matches_held", "held_without_stock", NULL };
	inventory_violations(d, inv, c);
	if (c->result == AUDIT_ERROR)
		return;
	int64_t held = 0, held_units = 0;
	size_t i;
	json_t *r;
	json_array_foreach(d->reservations, i, r) {
		if (strcmp(jstr(r, "status"), "HELD") != 0)
			continue;
		held++;
		held_units += jint(r, "units");
		const ord *o = find_ord(ix, jstr(r, "order_id"));
		/* Reservations of orders the listing did not have (newer, or
		 * made by hand) are the inventory's own business. */
		if (!o || !is_final(o))
			continue;
		int64_t expires = 0;
		clock_parse_rfc3339(jstr(r, "expires_at"), &expires);
		/* Past its expiry the inventory's sweep releases it soon. */
		if (expires && d->now_us > expires && d->now_us <= expires + grace)
			continue;
		found(c, jstr(r, "reservation_id"), "HELD for %" PRId64 " units, but order %s is %s",
		      jint(r, "units"), o->id, order_status_name(o->status));
	}
	summary(c, "%" PRId64 " HELD reservations (%" PRId64 " units)", held, held_units);
}

static void pay_by_order(const audit_data *d, ord_index *ix)
{
	size_t i;
	json_t *p;
	json_array_foreach(d->payments, i, p) {
		ord *o = find_ord(ix, jstr(p, "order_id"));
		if (!o)
			continue;
		o->npay++;
		o->captured += jint(p, "captured_cents");
		o->refunded += jint(p, "refunded_cents");
		int st = payment_state_parse(jstr(p, "status"));
		if (st == PAYMENT_AUTHORIZED || st == PAYMENT_PENDING)
			o->held++;
	}
}

/* Per currency: captured, refunded, CONFIRMED totals. */
typedef struct cur_sum {
	char cur[8];
	int64_t captured, refunded, confirmed;
} cur_sum;

static cur_sum *cur_of(cur_sum *v, int *n, int max, const char *cur)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(v[i].cur, cur) == 0)
			return &v[i];
	if (*n == max)
		return NULL;
	cur_sum *s = &v[(*n)++];
	memset(s, 0, sizeof(*s));
	snprintf(s->cur, sizeof(s->cur), "%s", cur);
	return s;
}

static void check_money(const audit_data *d, const ord_index *ix, audit_verdict *c)
{
	if (needs(c, d->orders_err) || needs(c, d->payments_err))
		return;
	cur_sum sums[8];
	int nsums = 0;
	int64_t final = 0;
	for (size_t i = 0; i < ix->n; i++) {
		const ord *o = &ix->v[i];
		if (!is_final(o))
			continue;
		final++;
		cur_sum *s = cur_of(sums, &nsums, 8, o->currency);
		if (s) {
			s->captured += o->captured;
			s->refunded += o->refunded;
			if (o->status == ORDER_CONFIRMED)
				s->confirmed += o->total;
		}
		char a[32], b[32];
		if (o->status == ORDER_CONFIRMED && o->captured != o->total) {
			money_fmt(o->total, a, sizeof(a));
			money_fmt(o->captured, b, sizeof(b));
			found(c, o->id, "CONFIRMED for %s %s but %s captured", a, o->currency, b);
		} else if (o->status == ORDER_CANCELLED && o->captured != o->refunded) {
			money_fmt(o->captured, a, sizeof(a));
			money_fmt(o->refunded, b, sizeof(b));
			found(c, o->id, "CANCELLED but %s %s captured and %s refunded", a, o->currency,
			      b);
		} else if (o->status == ORDER_CANCELLED && o->held) {
			found(c, o->id, "CANCELLED but its payment is still authorised (money held)");
		}
	}
	/* Money captured for no order at all counts too. */
	size_t i;
	json_t *p;
	json_array_foreach(d->payments, i, p) {
		const char *oid = jstr(p, "order_id");
		json_t *l = json_object_get(d->order_lookups, oid);
		if (find_ord(ix, oid) || (l && json_integer_value(l) == 1))
			continue;
		int64_t kept = jint(p, "captured_cents") - jint(p, "refunded_cents");
		cur_sum *s = cur_of(sums, &nsums, 8, jstr(p, "currency"));
		if (s) {
			s->captured += jint(p, "captured_cents");
			s->refunded += jint(p, "refunded_cents");
		}
		if (kept) {
			char a[32];
			money_fmt(kept, a, sizeof(a));
			found(c, jstr(p, "payment_id"), "%s %s captured for order %s, which does not exist",
			      a, jstr(p, "currency"), oid);
		}
	}
	char text[200] = "";
	size_t at = 0;
	for (int k = 0; k < nsums && at < sizeof(text); k++) {
		char a[32], b[32], e[32];
		money_fmt(sums[k].captured, a, sizeof(a));
		money_fmt(sums[k].refunded, b, sizeof(b));
		money_fmt(sums[k].confirmed, e, sizeof(e));
		at += (size_t)snprintf(text + at, sizeof(text) - at,
				       "%s%s captured %s - refunded %s, CONFIRMED %s", k ? "; " : ": ",
				       sums[k].cur, a, b, e);
	}
	summary(c, "%" PRId64 " final orders%s", final, text);
}

static void check_payments(const audit_data *d, const ord_index *ix, audit_verdict *c)
{
	if (needs(c, d->orders_err) || needs(c, d->payments_err))
		return;
	size_t i;
	json_t *p;
	int64_t later = 0;
	json_array_foreach(d->payments, i, p) {
		const char *pid = jstr(p, "payment_id"), *oid = jstr(p, "order_id");
		const ord *o = find_ord(ix, oid);
		if (!o) {
			json_t *l = json_object_get(d->order_lookups, oid);
			if (l && json_integer_value(l) == 1)
				later++;
			else if (l)
				found(c, pid, "names order %s, which does not exist", oid);
			else
				found(c, pid, "names order %s, which could not be looked up", oid);
			continue;
		}
		if (jint(p, "amount_cents") != o->total || strcmp(jstr(p, "currency"), o->currency) != 0)
			found(c, pid, "for %" PRId64 " %s, but order %s totals %" PRId64 " %s",
			      jint(p, "amount_cents"), jstr(p, "currency"), oid, o->total, o->currency);
		else if (strcmp(pid, o->pay_id) != 0)
			found(c, pid, "is not the payment order %s makes (%s)", oid, o->pay_id);
	}
	summary(c, "%zu payments read%s", json_array_size(d->payments),
		later ? " (some for orders placed while the audit read)" : "");
}

static void check_notifications(const audit_data *d, ord_index *ix, audit_verdict *c,
				int64_t *missing)
{
	if (d->notifications_skip[0]) {
		c->result = AUDIT_SKIP;
		summary(c, "%s", d->notifications_skip);
		return;
	}
	if (needs(c, d->orders_err) || needs(c, d->notifications_err))
		return;
	for (size_t i = 0; i < ix->n; i++)
		ix->v[i].notified = 0;
	/* Per order and channel: one confirmation each. */
	json_t *seen = json_object();
	size_t i;
	json_t *n;
	int64_t confirmed = 0;
	json_array_foreach(d->notifications, i, n) {
		const char *oid = jstr(n, "order_id"), *ch = jstr(n, "channel");
		ord *o = find_ord(ix, oid);
		if (!o)
			continue; /* an order placed after the listing was read */
		o->notified++;
		char key[200];
		snprintf(key, sizeof(key), "%s/%s", oid, ch);
		json_int_t k = json_integer_value(json_object_get(seen, key)) + 1;
		json_object_set_new(seen, key, json_integer(k));
		if (k == 2)
			found(c, oid, "more than one %s confirmation", ch[0] ? ch : "");
		if (o->status == ORDER_CANCELLED)
			found(c, oid, "a confirmation (%s) for a CANCELLED order", ch);
	}
	json_decref(seen);
	for (size_t k = 0; k < ix->n; k++) {
		const ord *o = &ix->v[k];
		if (o->status != ORDER_CONFIRMED)
			continue;
		confirmed++;
		if (!o->notified) {
			found(c, o->id, "CONFIRMED without a confirmation notification");
			(*missing)++;
		}
	}
	summary(c, "%zu confirmations for %" PRId64 " CONFIRMED orders",
		json_array_size(d->notifications), confirmed);
}

void audit_check(const audit_data *d, const audit_opts *o, audit_report *r)
{
	int64_t grace = o && o->grace_us > 0 ? o->grace_us : DEFAULT_GRACE_US;
	memset(r->checks, 0, sizeof(r->checks));
	r->orders = (int64_t)json_array_size(d->orders);
	r->payments = (int64_t)json_array_size(d->payments);
	r->reservations = (int64_t)json_array_size(d->reservations);
	r->notifications = (int64_t)json_array_size(d->notifications);
	ord_index ix;
	build_index(d, &ix);
	pay_by_order(d, &ix);
	check_orders(d, &ix, grace, &r->checks[AUDIT_ORDERS_SETTLED]);
	check_oversell(d, &ix, &r->checks[AUDIT_NO_OVERSELL]);
	check_reserved(d, &ix, grace, &r->checks[AUDIT_RESERVED_STOCK]);
	check_money(d, &ix, &r->checks[AUDIT_MONEY]);
	check_payments(d, &ix, &r->checks[AUDIT_PAYMENTS_HAVE_ORDERS]);
	r->unconfirmed = 0;
	check_notifications(d, &ix, &r->checks[AUDIT_NOTIFICATIONS], &r->unconfirmed);
	for (int i = 0; i < AUDIT_NCHECKS; i++)
		if (r->checks[i].result == AUDIT_PASS && r->checks[i].nfound)
			r->checks[i].result = AUDIT_FAIL;
	free(ix.v);
}

void audit_collect(audit_get_fn get, void *ud, const audit_opts *o, audit_report *r)
{
	int64_t t0 = clock_mono_us();
	reader rd = reader_for(get, ud, o);
	audit_data d;
	memset(&d, 0, sizeof(d));
	fetch(&rd, o, &d);
	audit_check(&d, o, r);
	/* Confirmations travel by the bus after the order is confirmed: give
	 * those still missing a moment. */
	while (r->unconfirmed > 0 && clock_mono_us() + 500000 < rd.until) {
		usleep(500000);
		fetch_notifications(&rd, &d);
		audit_check(&d, o, r);
	}
	audit_data_clear(&d);
	r->elapsed_us = clock_mono_us() - t0;
}

typedef struct http_target {
	const char *url, *token;
} http_target;

static int http_get(void *ud, const char *path, msg_resp *resp)
{
	const http_target *t = ud;
	char full[1024];
	snprintf(full, sizeof(full), "%s%s", t->url, path);
	return http_client_simple("GET", full, NULL, t->token, resp, 15000);
}

void audit_run(const char *url, const char *token, const audit_opts *o, audit_report *r)
{
	http_target t = { url, token };
	audit_collect(http_get, &t, o, r);
}

/* ---- telling it ----------------------------------------------------------------------- */

int audit_failures(const audit_report *r)
{
	int n = 0;
	for (int i = 0; i < AUDIT_NCHECKS; i++)
		n += r->checks[i].result == AUDIT_FAIL || r->checks[i].result == AUDIT_ERROR;
	return n;
}

static const char *mark(audit_result res)
{
	switch (res) {
	case AUDIT_PASS: return "✓";
	case AUDIT_FAIL: return "✗";
	case AUDIT_SKIP: return "-";
	default: return "!";
	}
}

static const char *result_name(audit_result res)
{
	switch (res) {
	case AUDIT_PASS: return "pass";
	case AUDIT_FAIL: return "fail";
	case AUDIT_SKIP: return "skip";
	default: return "error";
	}
}

void audit_print(const audit_report *r, FILE *out)
{
	fprintf(out, "audit: %" PRId64 " orders, %" PRId64 " payments, %" PRId64
		     " reservations read in %.2f s\n",
		r->orders, r->payments, r->reservations, (double)r->elapsed_us / 1e6);
	for (int i = 0; i < AUDIT_NCHECKS; i++) {
		const audit_verdict *c = &r->checks[i];
		fprintf(out, "  %s %-21s %s\n", mark(c->result), NAMES[i], TITLES[i]);
		fprintf(out, "    %-21s %s\n", "", c->summary);
		if (c->result != AUDIT_FAIL)
			continue;
		fprintf(out, "    %-21s %" PRId64 " offending:\n", "", c->nfound);
		for (int k = 0; k < c->nlisted; k++)
			fprintf(out, "      %-28s %s\n", c->found[k].id, c->found[k].message);
		if (c->nfound > c->nlisted)
			fprintf(out, "      ... and %" PRId64 " more\n", c->nfound - c->nlisted);
	}
	int failed = audit_failures(r);
	fprintf(out, "audit: %s\n", failed ? "FAILED" : "every invariant holds");
}

void audit_line(const audit_report *r, char *buf, size_t len)
{
	int n[4] = { 0 };
	for (int i = 0; i < AUDIT_NCHECKS; i++)
		n[r->checks[i].result]++;
	size_t at = (size_t)snprintf(buf, len, "%d invariants: %d ✓", AUDIT_NCHECKS, n[AUDIT_PASS]);
	if (n[AUDIT_SKIP] && at < len)
		at += (size_t)snprintf(buf + at, len - at, ", %d skipped", n[AUDIT_SKIP]);
	for (int i = 0; i < AUDIT_NCHECKS && at < len; i++) {
		const audit_verdict *c = &r->checks[i];
		if (c->result == AUDIT_FAIL)
			at += (size_t)snprintf(buf + at, len - at, ", ✗ %s (%" PRId64 ": %s %s)",
					       NAMES[i], c->nfound, c->found[0].id,
					       c->found[0].message);
		else if (c->result == AUDIT_ERROR)
			at += (size_t)snprintf(buf + at, len - at, ", ! %s (%s)", NAMES[i], c->summary);
	}
}

json_t *audit_json(const audit_report *r)
{
	json_t *checks = json_array();
	for (int i = 0; i < AUDIT_NCHECKS; i++) {
		const audit_verdict *c = &r->checks[i];
		json_t *off = json_array();
		for (int k = 0; k < c->nlisted; k++)
			json_array_append_new(off, json_pack("{s:s,s:s}", "id", c->found[k].id,
							     "message", c->found[k].message));
		json_array_append_new(checks,
				      json_pack("{s:s,s:s,s:s,s:s,s:I,s:o}", "name", NAMES[i], "title",
						TITLES[i], "result", result_name(c->result), "summary",
						c->summary, "count", (json_int_t)c->nfound,
						"offenders", off));
	}
	int failed = audit_failures(r);
	return json_pack("{s:b,s:i,s:I,s:I,s:I,s:I,s:I,s:o}", "ok", failed == 0, "failed", failed,
			 "orders", (json_int_t)r->orders, "payments", (json_int_t)r->payments,
			 "reservations", (json_int_t)r->reservations, "notifications",
			 (json_int_t)r->notifications, "elapsed_ms",
			 (json_int_t)(r->elapsed_us / 1000), "checks", checks);
}

int audit_loadgen_hook(void *ud, const char *url, const char *admin_token, char *text,
		       size_t len)
{
	audit_report mine, *r = ud ? ud : &mine;
	audit_opts o = { .wait_us = 10 * 1000000LL };
	audit_run(url, admin_token, &o, r);
	audit_line(r, text, len);
	return audit_failures(r);
}

/* ---- ecom audit ------------------------------------------------------------------------ */

int audit_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		CLI_TARGET_OPTIONS,
		{ "wait", required_argument, NULL, 'w' },
		{ "grace", required_argument, NULL, 'g' },
		{ NULL, 0, NULL, 0 },
	};
	cli_target t = { 0 };
	audit_opts o = { .wait_us = 10 * 1000000LL, .grace_us = DEFAULT_GRACE_US };
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (cli_target_opt(c, optarg, &t))
			continue;
		int64_t *dur = c == 'w' ? &o.wait_us : &o.grace_us;
		if ((c == 'w' || c == 'g') &&
		    (units_duration_us(optarg, dur) == 0 || (strcmp(optarg, "0") == 0 && !(*dur = 0))))
			continue;
		if (c == 'w' || c == 'g')
			return cli_usage(CMD, "--%s: expected a duration such as 10s or 2m, got '%s'",
					 c == 'w' ? "wait" : "grace", optarg);
		return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	char url[512], token[256];
	if (cli_platform(CMD, t.state, t.url, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	http_client_global_init();
	audit_report r;
	audit_run(url, token, &o, &r);
	http_client_global_cleanup();
	if (t.json) {
		json_t *v = audit_json(&r);
		char *s = json_dumps(v, JSON_INDENT(2));
		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(v);
	} else {
		audit_print(&r, stdout);
	}
	return audit_failures(&r) ? 1 : 0;
}
