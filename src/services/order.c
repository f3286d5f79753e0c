/* order: orders, the checkout saga's orchestration, the order processor. */
#include "services/order.h"
#include "core/err.h"
#include "core/ids.h"
#include "core/jval.h"
#include "net/router.h"
#include "resil/backoff.h"
#include "services/saga.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 63
#define KEY_MAX 255
#define TOKEN_MAX 255
#define ITEMS_MAX 100
#define QTY_MAX 1000
#define SKU_MAX 64
#define NAME_MAX_BYTES 200
#define PRICE_MAX 1000000000000LL
#define PAGE_DEFAULT 20
#define PAGE_MAX 100
#define ADMIN_PAGE_MAX 500
/* Attempts of one transaction when the database says "busy" or "serialize
 * again". */
#define TXN_TRIES 5
/* Moves one advance makes at most: more than the longest path (start,
 * reserve, authorize, capture, commit, clear the cart, complete, with a
 * compensation's void, refund and release). */
#define ADVANCE_MAX 24
/* order.workers' default: threads that drive a tick's due sagas. */
#define ORDER_WORKERS 4
/* How soon a saga whose advance met a database error is tried again. */
#define STORE_RETRY_US 1000000LL
#define US 1000000LL

/* The reasons an order is cancelled (API.md). */
#define R_OUT_OF_STOCK "out_of_stock"
#define R_DECLINED "payment_declined"
#define R_CUSTOMER "customer_cancelled"
#define R_EXPIRED "expired"

typedef struct order_svc {
	engine_ctx *ctx;
	router *rt;
	int64_t ttl_s;       /* reservations asked for */
	int64_t margin_us;   /* payment is not retried this close to expiry */
	int64_t lease_us;
	int64_t call_timeout_ms;
	int tick_batch;
	int confirm_inline;  /* the POST also captures and commits */
	backoff_policy retry;
	char token[24];      /* this life of the instance, for leases */
	saga_lease lease;
	/* The processor's helpers (order.workers - 1 threads): they drive a
	 * tick's due sagas alongside the tick's own thread. */
	pthread_mutex_t mu;
	pthread_cond_t work;      /* a tick's sagas are there to take, or stopping */
	pthread_cond_t idle;      /* the last saga of a tick is done */
	char (*batch)[SAGA_ID_MAX]; /* the tick's due sagas */
	int batch_n, batch_next, busy;
	int stopping;
	int nhelpers;
	pthread_t *helpers;
	int sync_ready;           /* mu and the conditions are initialised */
} order_svc;

/* ---- the order status machine ------------------------------------------------ */

static const char *const status_names[ORDER_NSTATUS] = { "PENDING", "AWAITING_PAYMENT",
							   "CONFIRMED", "CANCELLED" };

const char *order_status_name(int status)
{
	return status >= 0 && status < ORDER_NSTATUS ? status_names[status] : "?";
}

int order_status_parse(const char *name)
{
	for (int i = 0; name && i < ORDER_NSTATUS; i++)
		if (strcmp(status_names[i], name) == 0)
			return i;
	return -1;
}

int order_status_edge(int from, int to)
{
	switch (from) {
	case ORDER_PENDING:
		return to == ORDER_AWAITING_PAYMENT || to == ORDER_CONFIRMED || to == ORDER_CANCELLED
			       ? 0
			       : ERR_STATE;
	case ORDER_AWAITING_PAYMENT:
		return to == ORDER_PENDING || to == ORDER_CANCELLED ? 0 : ERR_STATE;
	default:
		return ERR_STATE;
	}
}

/* Moves order id from -> to (with reason when cancelled); the one place an
 * order's status changes. ERR_STATE for an illegal edge, ERR_RETRY when the
 * order is no longer in from. */
static int order_set_status(order_svc *o, const char *id, int from, int to, const char *reason,
			    int64_t now)
{
	if (order_status_edge(from, to) != 0) {
		log_error(o->ctx->log, "order %s: illegal transition %s -> %s refused", id,
			  order_status_name(from), order_status_name(to));
		return ERR_STATE;
	}
	int64_t changed = 0;
	int rc = store_runf(o->ctx->store,
			    "UPDATE orders SET status = ?, cancel_reason = ?, updated_at = ? "
			    "WHERE order_id = ? AND status = ?",
			    &changed, "ttitt", status_names[to],
			    to == ORDER_CANCELLED ? reason : NULL, now, id, status_names[from]);
	if (rc)
		return rc;
	if (changed != 1)
		return ERR_RETRY;
	log_info(o->ctx->log, "order %s: %s -> %s", id, status_names[from], status_names[to]);
	return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

static void count(order_svc *o, const char *name, const char *label, const char *value)
{
	char labels[96];
	snprintf(labels, sizeof(labels), "%s=\"%s\"", label, value);
	metrics_count(o->ctx->metrics, name, labels, 1);
}

/* A saga ended: counted by outcome, its duration observed. */
static void saga_finished(order_svc *o, const saga *sg, const char *outcome)
{
	char labels[48];
	snprintf(labels, sizeof(labels), "outcome=\"%s\"", outcome);
	metrics_count(o->ctx->metrics, "sagas_total", labels, 1);
	metrics_observe_us(o->ctx->metrics, "saga_duration_seconds", labels,
			   clock_now(o->ctx->clock) - sg->created_at);
}

/* The catalog's alphabet for skus. */
static int valid_sku(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SKU_MAX || s[0] == '_')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return 0;
	return 1;
}

static int valid_currency(const char *s)
{
	return s && strlen(s) == 3 && isupper((unsigned char)s[0]) &&
	       isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

/* Printable ASCII, 1..KEY_MAX bytes. */
static int valid_key(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/* The ids of the saga's remote effects, derived from the order id
 * ("ord_<hex>" -> "rsv_<hex>", "pay_<hex>"), so every attempt of a step
 * carries the same one. */
static void derived_id(const char *order_id, const char *prefix, char *out, size_t len)
{
	const char *us = strchr(order_id, '_');
	snprintf(out, len, "%s_%s", prefix, us ? us + 1 : order_id);
}

static json_t *parse_json(const char *text)
{
	return text ? json_loads(text, 0, NULL) : NULL;
}

/* ---- the order row -------------------------------------------------------------- */

typedef struct order_rec {
	char order_id[ID_MAX + 1];
	char user_id[ID_MAX + 1];
	int status;
	char cancel_reason[SAGA_REASON_MAX];
	char source[8];
	char currency[4];
	char pay_method[8];
	char address_id[ID_MAX + 1];
	int64_t total_cents;
	int64_t created_at;
	int64_t updated_at;
	int64_t response_status; /* 0 until the first answer is stored */
	char *items;             /* JSON array text */
	char *pay_token;
	char *fingerprint;
	char *response;
} order_rec;

static void order_rec_free(order_rec *r)
{
	free(r->items);
	free(r->pay_token);
	free(r->fingerprint);
	free(r->response);
	memset(r, 0, sizeof(*r));
}

#define ORDER_COLS                                                                             \
	"order_id, user_id, status, cancel_reason, source, currency, pay_method, address_id, " \
	"total_cents, created_at, updated_at, response_status, items, pay_token, fingerprint, " \
	"response"

static char *dup_col(store_stmt *st, int col)
{
	const char *v = store_col_text(st, col);
	return v ? strdup(v) : NULL;
}

static int order_read(store_stmt *st, order_rec *r)
{
	const char *t;
#define COPY(field, col)                                  \
	t = store_col_text(st, col);                      \
	snprintf(r->field, sizeof(r->field), "%s", t ? t : "")
	COPY(order_id, 0);
	COPY(user_id, 1);
	COPY(cancel_reason, 3);
	COPY(source, 4);
	COPY(currency, 5);
	COPY(pay_method, 6);
	COPY(address_id, 7);
#undef COPY
	r->status = order_status_parse(store_col_text(st, 2));
	r->total_cents = store_col_int(st, 8);
	r->created_at = store_col_int(st, 9);
	r->updated_at = store_col_int(st, 10);
	r->response_status = store_col_is_null(st, 11) ? 0 : store_col_int(st, 11);
	r->items = dup_col(st, 12);
	r->pay_token = dup_col(st, 13);
	r->fingerprint = dup_col(st, 14);
	r->response = dup_col(st, 15);
	if (!r->items || !r->pay_token || !r->fingerprint)
		return ERR_NOMEM;
	return r->status < 0 ? ERR_INTERNAL : 0;
}

/* Reads one order by the query sql with fmt's arguments: 0, ERR_NOT_FOUND or
 * an error. */
static int order_load_by(store *s, order_rec *r, const char *sql, const char *a, const char *b)
{
	memset(r, 0, sizeof(*r));
	int rc = 0;
	store_stmt *st = b ? store_queryf(s, sql, &rc, "tt", a, b) : store_queryf(s, sql, &rc, "t", a);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	if (rc == STORE_ROW)
		rc = order_read(st, r);
	else if (rc == STORE_DONE)
		rc = ERR_NOT_FOUND;
	store_reset(st);
	if (rc)
		order_rec_free(r);
	return rc;
}

static int order_load(store *s, const char *id, order_rec *r)
{
	return order_load_by(s, r, "SELECT " ORDER_COLS " FROM orders WHERE order_id = ?", id,
			     NULL);
}

static json_t *order_json(const order_rec *r, const saga *sg)
{
	char created[40], updated[40], pay_id[ID_MAX + 8];
	clock_fmt_rfc3339(r->created_at, created, sizeof(created));
	clock_fmt_rfc3339(r->updated_at, updated, sizeof(updated));
	derived_id(r->order_id, "pay", pay_id, sizeof(pay_id));
	json_t *items = parse_json(r->items);
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:s,s:s,s:s,s:{s:s,s:s}}", "order_id",
			      r->order_id, "user_id", r->user_id, "status",
			      order_status_name(r->status), "items", items ? items : json_array(),
			      "total_cents", (json_int_t)r->total_cents, "currency", r->currency,
			      "created_at", created, "updated_at", updated, "source", r->source,
			      "payment", "method", r->pay_method, "payment_id", pay_id);
	if (r->cancel_reason[0])
		json_object_set_new(o, "cancel_reason", json_string(r->cancel_reason));
	if (r->address_id[0])
		json_object_set_new(o, "address_id", json_string(r->address_id));
	if (sg)
		json_object_set_new(o, "saga",
				    json_pack("{s:s,s:o}", "state", saga_state_name(sg->state),
					      "steps", saga_steps_json(sg)));
	return o;
}

/* ---- transactions ---------------------------------------------------------------- */

/* Runs fn(o, arg) in a transaction (store_txn: again while the database
 * says "busy" or "serialize again"); each one committed is counted in
 * order_store_writes_total (every write of the order service goes through
 * here). */
typedef struct txn_call {
	order_svc *o;
	int (*fn)(order_svc *, void *);
	void *arg;
} txn_call;

static int txn_trampoline(void *a)
{
	txn_call *c = a;
	return c->fn(c->o, c->arg);
}

static int run_txn(order_svc *o, int (*fn)(order_svc *, void *), void *arg)
{
	txn_call c = { .o = o, .fn = fn, .arg = arg };
	int rc = store_txn(o->ctx->store, TXN_TRIES, txn_trampoline, &c);
	if (rc == 0)
		metrics_count(o->ctx->metrics, "order_store_writes_total", "", 1);
	return rc;
}

/* ---- remote calls ------------------------------------------------------------------ */

enum call_kind { CALL_OK, CALL_REFUSED, CALL_TRANSIENT };

typedef struct call_res {
	int kind;
	int status;   /* 0 when no answer came */
	json_t *body; /* the parsed answer, or NULL */
	char detail[SAGA_DETAIL_MAX];
} call_res;

static void call_res_clear(call_res *r)
{
	json_decref(r->body);
	r->body = NULL;
}

static const char *error_code(json_t *body)
{
	const char *c = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
	return c ? c : "";
}

/* Calls another service through the gateway as the order service and sorts
 * the answer: 2xx is done; 408, 429, 5xx and no answer at all are
 * transient (the step is tried again with the same key); a 404 is a refusal
 * only when the service said what it did not find (error details), since a
 * bare 404 is a route missing at the gateway; any other 4xx is a refusal. */
static void remote(order_svc *o, const char *what, const char *method, const char *path,
		   json_t *body, call_res *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = CALL_TRANSIENT;
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	char *text = body ? json_dumps(body, JSON_COMPACT) : strdup("{}");
	json_decref(body);
	if (!text || msg_req_init(&req, method, path) != 0) {
		free(text);
		snprintf(out->detail, sizeof(out->detail), "out of memory");
		return;
	}
	msg_req_add_header(&req, "Accept", "application/json");
	if (strcmp(method, "POST") == 0) {
		msg_req_add_header(&req, "Content-Type", "application/json");
		msg_req_set_body(&req, text, strlen(text));
	}
	free(text);
	int rc = engine_call_service(o->ctx, &req, &resp, o->call_timeout_ms);
	msg_req_clear(&req);
	if (rc != 0) {
		snprintf(out->detail, sizeof(out->detail), "%s: no answer (%s)", what,
			 rc == ERR_TIMEOUT ? "timed out" : err_name(rc));
	} else {
		out->status = resp.status;
		out->body = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
		json_t *err = json_object_get(out->body, "error");
		const char *msg = json_string_value(json_object_get(err, "message"));
		json_t *details = json_object_get(err, "details");
		int s = resp.status;
		if (s >= 200 && s < 300)
			out->kind = CALL_OK;
		else if (s == 408 || s == 429 || s >= 500)
			out->kind = CALL_TRANSIENT;
		else if (s == 404 && !(json_is_object(details) && json_object_size(details) > 0))
			out->kind = CALL_TRANSIENT;
		else
			out->kind = CALL_REFUSED;
		if (out->kind != CALL_OK)
			snprintf(out->detail, sizeof(out->detail), "%s: %d %s%s%.100s", what, s,
				 error_code(out->body), msg ? ": " : "", msg ? msg : "");
	}
	msg_resp_clear(&resp);
	static const char *const kinds[] = { "ok", "refused", "transient" };
	char labels[96];
	snprintf(labels, sizeof(labels), "call=\"%s\",result=\"%s\"", what, kinds[out->kind]);
	metrics_count(o->ctx->metrics, "order_calls_total", labels, 1);
}

/* ---- advancing a saga ----------------------------------------------------------------- */

enum advance_result {
	ADV_CONTINUE, /* moved: look again */
	ADV_DONE,     /* finished (COMPLETED or COMPENSATED), off the queue */
	ADV_WAIT,     /* a step waits for a retry at due */
	ADV_QUEUED,   /* handed to the order processor */
	ADV_LOST,     /* the lease is someone else's now: hands off */
	ADV_ABORT     /* a database error: try again soon */
};

/* apply_body's "the lease is someone else's": roll back, hands off. */
#define LEASE_LOST 1

/* One advance of one saga: what it was asked to do and how far it got. */
typedef struct adv {
	int stop_at_queue;   /* stop once the saga is handed to the processor */
	int answer;          /* the POST's own advance: the write that ends it stores the
			      * first answer as well */
	int ready;           /* the step the last write of this advance began (the call
			      * not sent yet), or -1 */
	int finished;        /* a write took the saga off the queue */
	int released;        /* a write gave the lease back */
	int64_t due;         /* when it wants to be looked at again (ADV_WAIT, ADV_QUEUED) */
	int64_t resp_status; /* the first answer, stored with the last write (0: none) */
	char *resp_body;
} adv;

static adv adv_start(int stop_at_queue, int answer, int ready, int64_t due)
{
	return (adv){ .stop_at_queue = stop_at_queue, .answer = answer, .ready = ready,
		      .due = due };
}

/* What one transaction of the saga writes, besides renewing the lease. */
typedef struct saga_write {
	int begin;          /* step to begin, or -1 */
	int end;            /* step to end, or -1 */
	int end_status;
	const char *detail;
	int mark;           /* a step begun and done at once, or -1 */
	int to;             /* saga state, or -1 */
	const char *reason; /* with to = COMPENSATING */
	int order_to;       /* order status, or -1 */
	const char *event;  /* outbox event type, or NULL */
	int finish;         /* off the queue: the saga ends */
	int release;        /* the advance stops here: the lease goes back, due at due */
	int waits;          /* with release: a step waits for a retry (else: handed over) */
	int64_t due;
} saga_write;

static saga_write sw(void)
{
	return (saga_write){ .begin = -1, .end = -1, .mark = -1, .to = -1, .order_to = -1 };
}

typedef struct apply_op {
	saga *sg;
	const order_rec *r;
	const saga_write *w;
	int64_t now;
	int64_t resp_status; /* > 0: store resp_body as the order's first answer */
	const char *resp_body;
} apply_op;

static int write_event(order_svc *o, const order_rec *r, const char *type, const char *reason,
		      int64_t now)
{
	json_t *items = parse_json(r->items);
	json_t *ev = json_pack("{s:s,s:s,s:s,s:I,s:s,s:o}", "type", type, "order_id", r->order_id,
			       "user_id", r->user_id, "total_cents", (json_int_t)r->total_cents,
			       "currency", r->currency, "items", items ? items : json_array());
	if (reason)
		json_object_set_new(ev, "cancel_reason", json_string(reason));
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!text)
		return ERR_NOMEM;
	char tp[TRACE_PARENT_SIZE];
	int rc = store_runf(o->ctx->store,
			    "INSERT INTO outbox (topic, key, payload, created_at, traceparent) "
			    "VALUES (?, ?, ?, ?, ?)",
			    NULL, "tttit", "orders", r->order_id, text, now,
			    engine_traceparent(o->ctx, tp, sizeof(tp)));
	free(text);
	return rc;
}

/* Stores the first answer to the POST that placed order id (once). */
static int store_answer(order_svc *o, const char *id, int64_t status, const char *body)
{
	return store_runf(o->ctx->store,
			  "UPDATE orders SET response_status = ?, response = ? "
			  "WHERE order_id = ? AND response IS NULL",
			  NULL, "itt", status, body, id);
}

static int apply_body(order_svc *o, void *arg)
{
	apply_op *a = arg;
	store *s = o->ctx->store;
	const saga_write *w = a->w;
	const char *id = a->sg->order_id;
	/* The lease first: a saga whose lease ran out and was taken is not
	 * this instance's to write any more. */
	int rc = w->finish    ? saga_dequeue(s, id, &o->lease)
		 : w->release ? saga_release(s, id, &o->lease, w->due)
			      : saga_renew(s, id, &o->lease, a->now + o->lease_us);
	if (rc == ERR_STATE)
		return LEASE_LOST;
	if (rc == 0 && w->end >= 0)
		rc = saga_step_end(s, id, w->end, w->end_status, w->detail, a->now);
	if (rc == 0 && w->mark >= 0) {
		rc = saga_step_begin(s, id, w->mark, a->now);
		if (rc == 0)
			rc = saga_step_end(s, id, w->mark, SAGA_STEP_SUCCEEDED, NULL, a->now);
	}
	if (rc == 0 && w->begin >= 0)
		rc = saga_step_begin(s, id, w->begin, a->now);
	const char *reason = w->reason ? w->reason : a->sg->reason;
	if (rc == 0 && w->to >= 0)
		rc = saga_set_state(s, o->ctx->log, id, a->sg->state, w->to, w->reason, a->now);
	if (rc == 0 && w->order_to >= 0 && w->order_to != a->r->status)
		rc = order_set_status(o, id, a->r->status, w->order_to, reason, a->now);
	if (rc == 0 && w->event)
		rc = write_event(o, a->r, w->event, w->order_to == ORDER_CANCELLED ? reason : NULL,
				a->now);
	if (rc == 0 && a->resp_status > 0)
		rc = store_answer(o, id, a->resp_status, a->resp_body);
	return rc;
}

/* ---- the saga's next move ------------------------------------------------------------- */

/* next_move's answers that are not a step to call. */
enum move {
	MOVE_NONE = -1,        /* ended: nothing to do */
	MOVE_CANCEL = -2,      /* the customer called it off: compensate */
	MOVE_EXPIRE = -3,      /* the reservation runs out: compensate */
	MOVE_START = -4,       /* STARTED -> RESERVING */
	MOVE_COMPLETE = -5,    /* every forward step done: COMPLETED */
	MOVE_COMPENSATED = -6, /* every undo done: COMPENSATED, the order CANCELLED */
};

/* The moment a forward step gives up: the reservation's expiry, less the
 * margin before confirmation, in which payment is no longer retried. */
static int64_t forward_deadline(const order_svc *o, const saga *sg)
{
	return sg->state == SAGA_CONFIRMING ? sg->expires_at : sg->expires_at - o->margin_us;
}

/* The payment's undo still to try: a refund when the capture is known, else
 * a void (which answers 409 for a captured payment: then the refund), or -1
 * when nothing is left (undone, never touched, or both refused: it holds no
 * money). */
static int pay_undo_next(const saga *sg)
{
	const saga_step *st = sg->steps;
	int auth = st[SAGA_STEP_AUTHORIZE].status, cap = st[SAGA_STEP_CAPTURE].status;
	int touched = auth == SAGA_STEP_PENDING || auth == SAGA_STEP_SUCCEEDED ||
		      cap != SAGA_STEP_NONE;
	if (!touched || st[SAGA_STEP_VOID].status == SAGA_STEP_SUCCEEDED ||
	    st[SAGA_STEP_REFUND].status == SAGA_STEP_SUCCEEDED)
		return -1;
	int first = cap == SAGA_STEP_SUCCEEDED ? SAGA_STEP_REFUND : SAGA_STEP_VOID;
	int second = first == SAGA_STEP_REFUND ? SAGA_STEP_VOID : SAGA_STEP_REFUND;
	if (st[first].status != SAGA_STEP_FAILED)
		return first;
	if (st[second].status != SAGA_STEP_FAILED)
		return second;
	return -1;
}

/* What the saga does next at now: a step to call (a saga_step_name) or a
 * MOVE_*. The one place the saga's course is decided: advance_once acts on
 * it, and a write that ends a step asks it which step to begin in the same
 * transaction. */
static int next_move(const order_svc *o, const saga *sg, const order_rec *r, int64_t now)
{
	if (saga_terminal(sg->state))
		return MOVE_NONE;
	const saga_step *st = sg->steps;
	/* Until the capture is known the order may still be called off: by
	 * the customer, or by the clock (the reservation runs out). After it
	 * the commit may be on its way, and the saga only goes forward. */
	int pivot = st[SAGA_STEP_CAPTURE].status == SAGA_STEP_SUCCEEDED;
	if (sg->state != SAGA_COMPENSATING && !pivot) {
		if (sg->cancel_requested)
			return MOVE_CANCEL;
		if (now >= forward_deadline(o, sg))
			return MOVE_EXPIRE;
	}
	switch (sg->state) {
	case SAGA_STARTED:
		return MOVE_START;
	case SAGA_RESERVING:
		return SAGA_STEP_RESERVE;
	case SAGA_AUTHORIZING:
		return SAGA_STEP_AUTHORIZE;
	case SAGA_CONFIRMING: {
		/* Capture, commit (the pivot: afterwards the order only goes
		 * forward), empty the cart, complete. */
		if (!pivot)
			return SAGA_STEP_CAPTURE;
		if (st[SAGA_STEP_COMMIT].status != SAGA_STEP_SUCCEEDED)
			return SAGA_STEP_COMMIT;
		int clear = st[SAGA_STEP_CLEAR_CART].status;
		if (strcmp(r->source, "cart") == 0 && clear != SAGA_STEP_SUCCEEDED &&
		    clear != SAGA_STEP_FAILED)
			return SAGA_STEP_CLEAR_CART;
		return MOVE_COMPLETE;
	}
	default: {
		int undo = pay_undo_next(sg);
		if (undo >= 0)
			return undo;
		int res = st[SAGA_STEP_RESERVE].status, rel = st[SAGA_STEP_RELEASE].status;
		if ((res == SAGA_STEP_PENDING || res == SAGA_STEP_SUCCEEDED) &&
		    st[SAGA_STEP_COMMIT].status != SAGA_STEP_SUCCEEDED &&
		    rel != SAGA_STEP_SUCCEEDED && rel != SAGA_STEP_FAILED)
			return SAGA_STEP_RELEASE;
		return MOVE_COMPENSATED;
	}
	}
}

/* ---- writing the saga's progress ------------------------------------------------------ */

static void sim_begin(saga_step *p, int64_t now)
{
	if (p->status == SAGA_STEP_NONE) {
		p->attempts = 0;
		p->started_at = now;
		p->detail[0] = '\0';
	}
	p->status = SAGA_STEP_PENDING;
	p->attempts++;
	p->at = now;
}

static void sim_end(saga_step *p, int status, const char *detail, int64_t now)
{
	p->status = status;
	snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
	p->at = now;
}

/* Does to sg and r (in memory) what apply_body writes for w at now: they
 * become what a load after the write reads. r's strings stay shared. */
static void sim_write(saga *sg, order_rec *r, const saga_write *w, int64_t now)
{
	const char *reason = w->reason ? w->reason : sg->reason;
	if (w->end >= 0)
		sim_end(&sg->steps[w->end], w->end_status, w->detail, now);
	if (w->mark >= 0) {
		sim_begin(&sg->steps[w->mark], now);
		sim_end(&sg->steps[w->mark], SAGA_STEP_SUCCEEDED, NULL, now);
	}
	if (w->begin >= 0)
		sim_begin(&sg->steps[w->begin], now);
	if (w->order_to >= 0 && w->order_to != r->status) {
		r->status = w->order_to;
		snprintf(r->cancel_reason, sizeof(r->cancel_reason), "%s",
			 w->order_to == ORDER_CANCELLED && reason ? reason : "");
		r->updated_at = now;
	}
	if (w->to >= 0) {
		sg->state = w->to;
		if (w->reason)
			snprintf(sg->reason, sizeof(sg->reason), "%s", w->reason);
		sg->updated_at = now;
	}
}

/* Folds the saga's next move into w, a write that ends a step (or enters
 * compensation), so that one transaction records this step's end and the
 * next step's beginning (still before that step's call goes out), or the
 * saga's end when nothing is left to call. */
static void fuse_next(const order_svc *o, const saga *sg, const order_rec *r, saga_write *w,
		      int64_t now)
{
	saga s2 = *sg;
	order_rec r2 = *r;
	sim_write(&s2, &r2, w, now);
	int m = next_move(o, &s2, &r2, now);
	if (m >= 0 && w->begin < 0 && m != w->end) {
		w->begin = m;
	} else if (m == MOVE_COMPLETE && w->to < 0 && !w->finish) {
		w->to = SAGA_COMPLETED;
		w->finish = 1;
	} else if (m == MOVE_COMPENSATED && w->to < 0 && w->order_to < 0 && !w->event &&
		   !w->finish) {
		w->to = SAGA_COMPENSATED;
		w->order_to = ORDER_CANCELLED;
		w->event = "order.cancelled";
		w->finish = 1;
	}
}

/* The POST's answer once w is written: the order as a load after it would
 * read it; 201 once the saga ended or went to the processor, 202 while a
 * step waits for a retry (payment unreachable: AWAITING_PAYMENT). */
static char *answer_after(const saga *sg, const order_rec *r, const saga_write *w, int64_t now,
			  int64_t *status)
{
	saga s2 = *sg;
	order_rec r2 = *r;
	sim_write(&s2, &r2, w, now);
	*status = w->waits || r2.status == ORDER_AWAITING_PAYMENT ? 202 : 201;
	json_t *oj = order_json(&r2, &s2);
	char *text = json_dumps(oj, JSON_COMPACT);
	json_decref(oj);
	return text;
}

/* Writes w for sg (and its order r) in one transaction; sg follows. fuse:
 * w ends a step (or enters compensation): the next move goes with it
 * (fuse_next). The write that ends the POST's own advance stores its
 * answer too. 0, ADV_LOST or ADV_ABORT. */
static int apply(order_svc *o, adv *ad, saga *sg, const order_rec *r, saga_write *w, int fuse)
{
	int64_t now = clock_now(o->ctx->clock);
	if (fuse)
		fuse_next(o, sg, r, w, now);
	apply_op a = { .sg = sg, .r = r, .w = w, .now = now };
	char *answer = NULL;
	if (ad->answer && (w->finish || w->release)) {
		answer = answer_after(sg, r, w, now, &a.resp_status);
		a.resp_body = answer;
		if (!answer)
			a.resp_status = 0;
	}
	ad->ready = -1;
	int rc = run_txn(o, apply_body, &a);
	if (rc == LEASE_LOST) {
		free(answer);
		log_warn(o->ctx->log, "saga %s: lease lost; another instance carries on",
			 sg->order_id);
		return ADV_LOST;
	}
	if (rc) {
		free(answer);
		log_error(o->ctx->log, "saga %s: cannot record its progress: %s (%s)", sg->order_id,
			  err_name(rc), store_errmsg(o->ctx->store));
		return ADV_ABORT;
	}
	if (answer) {
		ad->resp_status = a.resp_status;
		ad->resp_body = answer;
	}
	ad->ready = w->begin;
	ad->finished = w->finish;
	ad->released = w->release;
	if (w->release)
		ad->due = w->due;
	if (w->begin >= 0)
		sg->steps[w->begin].attempts++;
	if (w->order_to >= 0 && w->order_to != r->status)
		count(o, "orders_total", "status", status_names[w->order_to]);
	if (w->to == SAGA_COMPLETED || w->to == SAGA_COMPENSATED)
		saga_finished(o, sg, w->to == SAGA_COMPLETED ? "completed" : "compensated");
	if (w->to >= 0)
		sg->state = w->to;
	return 0;
}

/* Calls step, recorded as begun before anything is sent (so a crash during
 * the call leaves the knowledge that it may have happened): by the write
 * that ended the step before (ad->ready), or here. 0, ADV_LOST or
 * ADV_ABORT. */
static int run_step(order_svc *o, adv *ad, saga *sg, const order_rec *r, int step,
		    const char *method, const char *path, json_t *body, call_res *res)
{
	if (ad->ready != step) {
		saga_write w = sw();
		w.begin = step;
		int rc = apply(o, ad, sg, r, &w, 0);
		if (rc) {
			json_decref(body);
			return rc;
		}
	}
	ad->ready = -1;
	remote(o, saga_step_name(step), method, path, body, res);
	return 0;
}

/* Ends step with status (detail from res), moving the saga to `to` (-1:
 * stay) with reason, and begins what comes next. ADV_CONTINUE or the
 * failure. */
static int step_done(order_svc *o, adv *ad, saga *sg, const order_rec *r, int step, int status,
		     const char *detail, int to, const char *reason)
{
	saga_write w = sw();
	w.end = step;
	w.end_status = status;
	w.detail = detail && detail[0] ? detail : NULL;
	w.to = to;
	w.reason = reason;
	int rc = apply(o, ad, sg, r, &w, 1);
	return rc ? rc : ADV_CONTINUE;
}

enum retry_limit {
	RETRY_FOREVER,  /* compensations and the commit: must happen */
	RETRY_FORWARD,  /* until the deadline or the attempts run out, then compensate */
	RETRY_BEST      /* until the attempts run out, then give the step up */
};

/* step got no definite answer: records that (and order_to, -1 for none)
 * with the lease given back and the saga due when it is to be tried
 * again. */
static int step_retry(order_svc *o, adv *ad, saga *sg, const order_rec *r, int step,
		      const call_res *res, enum retry_limit limit, int order_to)
{
	int64_t now = clock_now(o->ctx->clock);
	int64_t attempts = sg->steps[step].attempts;
	saga_write w = sw();
	w.end = step;
	w.end_status = SAGA_STEP_PENDING;
	w.detail = res->detail;
	w.order_to = order_to;
	if (limit != RETRY_FOREVER && attempts >= o->retry.max_attempts) {
		log_warn(o->ctx->log, "saga %s: %s gave up after %lld attempts: %s", sg->order_id,
			 saga_step_name(step), (long long)attempts, res->detail);
		if (limit == RETRY_FORWARD) {
			w.to = SAGA_COMPENSATING;
			w.reason = R_EXPIRED;
		} else {
			w.end_status = SAGA_STEP_FAILED;
		}
		int rc = apply(o, ad, sg, r, &w, 1);
		return rc ? rc : ADV_CONTINUE;
	}
	int64_t delay = backoff_delay_us(&o->retry, (int)(attempts > 1000 ? 1000 : attempts - 1),
					 o->ctx->rng);
	int64_t due = now + delay;
	if (limit == RETRY_FORWARD && due > forward_deadline(o, sg))
		due = forward_deadline(o, sg);
	w.release = 1;
	w.waits = 1;
	w.due = due;
	int rc = apply(o, ad, sg, r, &w, 0);
	if (rc)
		return rc;
	log_info(o->ctx->log, "saga %s: %s attempt %lld: %s; again in %lld ms", sg->order_id,
		 saga_step_name(step), (long long)attempts, res->detail,
		 (long long)((due - now) / 1000));
	return ADV_WAIT;
}

/* Starts compensating with reason. */
static int compensate(order_svc *o, adv *ad, saga *sg, const order_rec *r, const char *reason)
{
	saga_write w = sw();
	w.to = SAGA_COMPENSATING;
	w.reason = reason;
	int rc = apply(o, ad, sg, r, &w, 1);
	return rc ? rc : ADV_CONTINUE;
}

/* A step whose answer reads plainly: done moves the saga to ok_to (-1:
 * stay); a refusal fails the step and moves it to no_to with reason (-1:
 * stay); no answer is tried again under limit. body is stolen. */
typedef struct plain_step {
	int step;
	const char *method;
	const char *path;
	json_t *body;
	int ok_to;
	int no_to;
	const char *reason;
	enum retry_limit limit;
} plain_step;

static int run_plain(order_svc *o, adv *ad, saga *sg, const order_rec *r, const plain_step *ps)
{
	call_res res;
	int rc = run_step(o, ad, sg, r, ps->step, ps->method, ps->path, ps->body, &res);
	if (rc)
		return rc;
	if (res.kind == CALL_OK)
		rc = step_done(o, ad, sg, r, ps->step, SAGA_STEP_SUCCEEDED, NULL, ps->ok_to, NULL);
	else if (res.kind == CALL_REFUSED)
		rc = step_done(o, ad, sg, r, ps->step, SAGA_STEP_FAILED, res.detail, ps->no_to,
			       ps->reason);
	else
		rc = step_retry(o, ad, sg, r, ps->step, &res, ps->limit, -1);
	call_res_clear(&res);
	return rc;
}

static int do_reserve(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	char rid[ID_MAX + 8];
	derived_id(r->order_id, "rsv", rid, sizeof(rid));
	json_t *items = json_array(), *lines = parse_json(r->items);
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
		json_array_append_new(items, json_pack("{s:O,s:O}", "sku", json_object_get(line, "sku"),
						       "qty", json_object_get(line, "qty")));
	json_decref(lines);
	json_t *body = json_pack("{s:s,s:s,s:o,s:I}", "reservation_id", rid, "order_id",
				 r->order_id, "items", items, "ttl_s", (json_int_t)o->ttl_s);
	plain_step ps = { SAGA_STEP_RESERVE, "POST", "/v1/reservations", body, SAGA_AUTHORIZING,
			  SAGA_COMPENSATING, R_OUT_OF_STOCK, RETRY_FORWARD };
	return run_plain(o, ad, sg, r, &ps);
}

static int do_authorize(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	char pid[ID_MAX + 8];
	derived_id(r->order_id, "pay", pid, sizeof(pid));
	json_t *body = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s}", "payment_id", pid, "order_id",
				 r->order_id, "amount_cents", (json_int_t)r->total_cents, "currency",
				 r->currency, "method", r->pay_method, "token", r->pay_token);
	call_res res;
	int rc = run_step(o, ad, sg, r, SAGA_STEP_AUTHORIZE, "POST", "/v1/payments", body, &res);
	if (rc)
		return rc;
	const char *status = json_string_value(json_object_get(res.body, "status"));
	if (res.kind == CALL_OK && status && strcmp(status, "AUTHORIZED") == 0) {
		/* Authorized: the order is queued for the processor (the same
		 * transaction makes the payment step and the hand-over, and
		 * gives the lease back; inline, it begins the capture). */
		saga_write w = sw();
		w.end = SAGA_STEP_AUTHORIZE;
		w.end_status = SAGA_STEP_SUCCEEDED;
		w.mark = SAGA_STEP_ENQUEUE;
		w.to = SAGA_CONFIRMING;
		w.order_to = ORDER_PENDING;
		w.release = ad->stop_at_queue;
		w.due = clock_now(o->ctx->clock);
		rc = apply(o, ad, sg, r, &w, !ad->stop_at_queue);
		if (rc == 0) {
			ad->due = w.due;
			rc = ad->stop_at_queue ? ADV_QUEUED : ADV_CONTINUE;
		}
	} else if (res.kind == CALL_OK && status && strcmp(status, "DECLINED") == 0) {
		const char *code = json_string_value(json_object_get(res.body, "decline_code"));
		char detail[SAGA_DETAIL_MAX];
		snprintf(detail, sizeof(detail), "declined%s%.100s", code ? ": " : "",
			 code ? code : "");
		rc = step_done(o, ad, sg, r, SAGA_STEP_AUTHORIZE, SAGA_STEP_FAILED, detail,
			       SAGA_COMPENSATING, R_DECLINED);
	} else if (res.kind == CALL_REFUSED) {
		rc = step_done(o, ad, sg, r, SAGA_STEP_AUTHORIZE, SAGA_STEP_FAILED, res.detail,
			       SAGA_COMPENSATING, R_DECLINED);
	} else {
		if (res.kind == CALL_OK) {
			log_error(o->ctx->log, "saga %s: payment answered status %s", sg->order_id,
				  status ? status : "(none)");
			snprintf(res.detail, sizeof(res.detail), "authorize: unexpected status %.40s",
				 status ? status : "(none)");
		}
		/* Payment unreachable: the order waits for it, queued. */
		rc = step_retry(o, ad, sg, r, SAGA_STEP_AUTHORIZE, &res, RETRY_FORWARD,
				ORDER_AWAITING_PAYMENT);
	}
	call_res_clear(&res);
	return rc;
}

static int do_capture(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	char path[128], id[ID_MAX + 8];
	derived_id(r->order_id, "pay", id, sizeof(id));
	snprintf(path, sizeof(path), "/v1/payments/%s/capture", id);
	plain_step ps = { SAGA_STEP_CAPTURE, "POST", path, NULL, -1, SAGA_COMPENSATING, R_DECLINED,
			  RETRY_FORWARD };
	return run_plain(o, ad, sg, r, &ps);
}

/* The commit, the pivot: afterwards the order only goes forward. */
static int do_commit(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	char path[128], id[ID_MAX + 8];
	call_res res;
	derived_id(r->order_id, "rsv", id, sizeof(id));
	snprintf(path, sizeof(path), "/v1/reservations/%s/commit", id);
	int rc = run_step(o, ad, sg, r, SAGA_STEP_COMMIT, "POST", path, NULL, &res);
	if (rc)
		return rc;
	if (res.kind == CALL_OK) {
		/* Confirmed: payment captured, stock committed; the
		 * notification request goes with it (and the saga's end, or
		 * the cart's emptying). */
		saga_write w = sw();
		w.end = SAGA_STEP_COMMIT;
		w.end_status = SAGA_STEP_SUCCEEDED;
		w.mark = SAGA_STEP_NOTIFY;
		w.order_to = ORDER_CONFIRMED;
		w.event = "order.confirmed";
		rc = apply(o, ad, sg, r, &w, 1);
		rc = rc ? rc : ADV_CONTINUE;
	} else if (res.kind == CALL_REFUSED) {
		/* The reservation expired (or is gone): the capture is
		 * refunded. */
		rc = step_done(o, ad, sg, r, SAGA_STEP_COMMIT, SAGA_STEP_FAILED, res.detail,
			       SAGA_COMPENSATING, R_EXPIRED);
	} else {
		rc = step_retry(o, ad, sg, r, SAGA_STEP_COMMIT, &res, RETRY_FOREVER, -1);
	}
	call_res_clear(&res);
	return rc;
}

static int do_clear_cart(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	char path[128];
	snprintf(path, sizeof(path), "/v1/internal/carts/%s", r->user_id);
	/* Best effort: a cart left full does not undo a confirmed order. */
	plain_step ps = { SAGA_STEP_CLEAR_CART, "DELETE", path, NULL, -1, -1, NULL, RETRY_BEST };
	return run_plain(o, ad, sg, r, &ps);
}

/* One compensating call (void, refund or release) and its outcome: a 404
 * naming the thing means there is nothing to undo. */
static int undo_step(order_svc *o, adv *ad, saga *sg, const order_rec *r, int step)
{
	char path[128], id[ID_MAX + 8];
	derived_id(r->order_id, step == SAGA_STEP_RELEASE ? "rsv" : "pay", id, sizeof(id));
	snprintf(path, sizeof(path), step == SAGA_STEP_RELEASE ? "/v1/reservations/%s/%s"
							       : "/v1/payments/%s/%s",
		 id, saga_step_name(step));
	call_res res;
	int rc = run_step(o, ad, sg, r, step, "POST", path, NULL, &res);
	if (rc)
		return rc;
	if (res.kind == CALL_OK)
		rc = step_done(o, ad, sg, r, step, SAGA_STEP_SUCCEEDED, NULL, -1, NULL);
	else if (res.kind == CALL_REFUSED && res.status == 404)
		rc = step_done(o, ad, sg, r, step, SAGA_STEP_SUCCEEDED, "nothing to undo", -1, NULL);
	else if (res.kind == CALL_REFUSED)
		rc = step_done(o, ad, sg, r, step, SAGA_STEP_FAILED, res.detail, -1, NULL);
	else
		rc = step_retry(o, ad, sg, r, step, &res, RETRY_FOREVER, -1);
	if (res.kind == CALL_REFUSED && res.status != 404 && step == SAGA_STEP_RELEASE)
		log_error(o->ctx->log, "saga %s: the release was refused: %s", sg->order_id,
			  res.detail);
	call_res_clear(&res);
	return rc;
}

/* The end of the saga that next_move says has come. */
static int saga_end(order_svc *o, adv *ad, saga *sg, const order_rec *r, int completed)
{
	saga_write w = sw();
	w.finish = 1;
	if (completed) {
		w.to = SAGA_COMPLETED;
	} else {
		w.to = SAGA_COMPENSATED;
		w.order_to = ORDER_CANCELLED;
		w.event = "order.cancelled";
	}
	int rc = apply(o, ad, sg, r, &w, 0);
	return rc ? rc : ADV_DONE;
}

static int advance_once(order_svc *o, adv *ad, saga *sg, const order_rec *r)
{
	int m = next_move(o, sg, r, clock_now(o->ctx->clock));
	switch (m) {
	case MOVE_NONE:
		return ADV_DONE;
	case MOVE_CANCEL:
		return compensate(o, ad, sg, r, R_CUSTOMER);
	case MOVE_EXPIRE:
		return compensate(o, ad, sg, r, R_EXPIRED);
	case MOVE_START: {
		saga_write w = sw();
		w.to = SAGA_RESERVING;
		int rc = apply(o, ad, sg, r, &w, 1);
		return rc ? rc : ADV_CONTINUE;
	}
	case MOVE_COMPLETE:
		return saga_end(o, ad, sg, r, 1);
	case MOVE_COMPENSATED:
		return saga_end(o, ad, sg, r, 0);
	case SAGA_STEP_RESERVE:
		return do_reserve(o, ad, sg, r);
	case SAGA_STEP_AUTHORIZE:
		return do_authorize(o, ad, sg, r);
	case SAGA_STEP_CAPTURE:
		return do_capture(o, ad, sg, r);
	case SAGA_STEP_COMMIT:
		return do_commit(o, ad, sg, r);
	case SAGA_STEP_CLEAR_CART:
		return do_clear_cart(o, ad, sg, r);
	default:
		return undo_step(o, ad, sg, r, m);
	}
}

/* Advances the saga of order id, whose lease this instance holds, as far as
 * it can go now (see adv). */
static int advance(order_svc *o, const char *id, adv *ad)
{
	static const char *const results[] = { "continue", "done", "wait", "queued", "lost",
					       "abort" };
	store *s = o->ctx->store;
	/* One span per advance, in the order's trace (the saga keeps its
	 * traceparent): steps the processor drives from the queue later join
	 * the trace of the request that placed the order. */
	engine_span es = { .on = 0 };
	int begun = 0, from = -1, to = -1, res = ADV_WAIT;
	for (int i = 0; i < ADVANCE_MAX; i++) {
		saga sg;
		order_rec r;
		int rc = saga_load(s, id, &sg);
		if (rc == 0) {
			rc = order_load(s, id, &r);
			if (rc)
				log_error(o->ctx->log, "saga %s: its order cannot be read: %s", id,
					  err_name(rc));
		} else {
			log_error(o->ctx->log, "saga %s cannot be read: %s", id, err_name(rc));
		}
		if (rc) {
			res = ADV_ABORT;
			goto out;
		}
		if (!begun) {
			trace_ctx tc;
			int have = trace_parse(sg.traceparent, &tc) == 0;
			engine_span_begin(o->ctx, &es, have ? &tc : NULL, "saga", SPAN_INTERNAL);
			engine_span_attr(&es, "order_id", id);
			begun = 1;
			from = sg.state;
		}
		res = advance_once(o, ad, &sg, &r);
		to = sg.state;
		order_rec_free(&r);
		if (res == ADV_CONTINUE && ad->finished)
			res = ADV_DONE;
		if (res != ADV_CONTINUE)
			goto out;
	}
	log_warn(o->ctx->log, "saga %s: still moving after %d moves; later", id, ADVANCE_MAX);
	ad->due = clock_now(o->ctx->clock);
	res = ADV_WAIT;
out:
	if (begun) {
		snprintf(es.s.name, sizeof(es.s.name), "saga %s -> %s", saga_state_name(from),
			 saga_state_name(to));
		engine_span_attr(&es, "result", results[res]);
		engine_span_end(o->ctx, &es, res == ADV_ABORT ? SPAN_ERROR : SPAN_OK,
				res == ADV_ABORT ? "the store failed" : NULL);
	}
	return res;
}

/* ---- driving: lease, advance, give back ---------------------------------------------------- */

typedef struct release_op {
	const char *id;
	int dequeued;      /* the saga is off the queue already */
	int64_t due;
	int64_t resp_status; /* > 0: store this as the order's first answer */
	const char *resp_body;
} release_op;

static int release_body(order_svc *o, void *arg)
{
	release_op *a = arg;
	int rc = a->dequeued ? 0 : saga_release(o->ctx->store, a->id, &o->lease, a->due);
	if (rc == ERR_STATE) /* not ours any more: nothing to give back */
		rc = 0;
	if (rc == 0 && a->resp_status > 0)
		rc = store_answer(o, a->id, a->resp_status, a->resp_body);
	return rc;
}

/* After an advance of id ending in res: gives the lease back with the saga
 * due when it wants to be, unless the advance's last write did (and stores
 * the first answer when resp_status > 0), and wakes the processor for a
 * saga handed to it. */
static void drive_end(order_svc *o, const char *id, int res, const adv *ad,
		      int64_t resp_status, const char *resp_body)
{
	int64_t now = clock_now(o->ctx->clock);
	release_op a = { .id = id,
			 .dequeued = res == ADV_DONE || res == ADV_LOST || ad->released ||
				     ad->finished,
			 .due = res == ADV_ABORT ? now + STORE_RETRY_US : ad->due,
			 .resp_status = resp_status,
			 .resp_body = resp_body };
	if (!a.dequeued || resp_status > 0) {
		int rc = run_txn(o, release_body, &a);
		if (rc)
			log_error(o->ctx->log, "saga %s: cannot give its lease back: %s (it runs out)",
				  id, err_name(rc));
	}
	if (res == ADV_QUEUED && o->ctx->wake)
		o->ctx->wake(o->ctx->wake_ud);
}

/* claim_body's "no": the lease is held elsewhere, or the saga is not
 * queued (positive: roll back, not "try again"). */
#define CLAIM_HELD 1
#define CLAIM_GONE 2

typedef struct claim_op {
	const char *id;
	int64_t now;
	int ready; /* out: the step begun with the claim, or -1 */
} claim_op;

/* Takes the lease of the saga and, when its next move is a call, begins
 * that step in the same transaction. */
static int claim_body(order_svc *o, void *arg)
{
	claim_op *c = arg;
	store *s = o->ctx->store;
	c->ready = -1;
	int rc = saga_claim(s, c->id, &o->lease, c->now + o->lease_us, c->now);
	if (rc == ERR_BUSY)
		return CLAIM_HELD;
	if (rc == ERR_NOT_FOUND)
		return CLAIM_GONE;
	if (rc)
		return rc;
	saga sg;
	order_rec r;
	if (saga_load(s, c->id, &sg) != 0 || order_load(s, c->id, &r) != 0)
		return 0; /* the advance reads it again and says what is wrong */
	int m = next_move(o, &sg, &r, c->now);
	order_rec_free(&r);
	if (m >= 0) {
		rc = saga_step_begin(s, c->id, m, c->now);
		if (rc == 0)
			c->ready = m;
	}
	return rc;
}

/* Claims id and, when this instance got it, advances it all the way it can
 * go now. Returns the advance's result, or -1 when the lease is held
 * elsewhere (or the saga is not queued). */
static int drive(order_svc *o, const char *id)
{
	int64_t now = clock_now(o->ctx->clock);
	claim_op c = { .id = id, .now = now };
	int rc = run_txn(o, claim_body, &c);
	if (rc) {
		if (rc != CLAIM_HELD && rc != CLAIM_GONE)
			log_warn(o->ctx->log, "saga %s: claim failed: %s", id, err_name(rc));
		return -1;
	}
	adv ad = adv_start(0, 0, c.ready, now);
	int res = advance(o, id, &ad);
	drive_end(o, id, res, &ad, 0, NULL);
	return res;
}

/* ---- pricing ------------------------------------------------------------------------ */

typedef struct priced {
	json_t *items; /* [{sku, name, qty, price_cents, line_total_cents}] */
	int64_t total;
	char currency[4];
	const char *source;
} priced;

static void unavailable(msg_resp *resp, const char *service, const char *what)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "the %s service cannot be reached to %s; no order was placed, "
		 "try again", service, what);
	msg_resp_error(resp, 503, "unavailable", msg, json_pack("{s:s}", "service", service));
	msg_resp_set_header(resp, "Retry-After", "1");
}

static int add_line(priced *p, const char *sku, const char *name, int64_t qty, int64_t price)
{
	p->total += qty * price;
	return json_array_append_new(p->items,
				     json_pack("{s:s,s:s,s:I,s:I,s:I}", "sku", sku, "name", name,
					       "qty", (json_int_t)qty, "price_cents",
					       (json_int_t)price, "line_total_cents",
					       (json_int_t)(qty * price)));
}

/* Prices explicit items at the catalog's current prices. 0, or an error
 * with resp filled. */
static int price_items(order_svc *o, json_t *items, priced *p, msg_resp *resp)
{
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *sku = json_string_value(json_object_get(it, "sku"));
		char path[32 + SKU_MAX];
		snprintf(path, sizeof(path), "/v1/products/%s", sku);
		call_res res;
		remote(o, "price", "GET", path, NULL, &res);
		json_t *v = res.body;
		int status = res.status;
		json_t *price = json_object_get(v, "price_cents");
		const char *cur = json_string_value(json_object_get(v, "currency"));
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *named = json_string_value(json_object_get(
			json_object_get(json_object_get(v, "error"), "details"), "sku"));
		if (status == 404 && named && strcmp(named, sku) == 0) {
			msg_resp_error(resp, 404, "not_found", "the catalog has no product with this sku",
				       json_pack("{s:s}", "sku", sku));
			json_decref(v);
			return ERR_NOT_FOUND;
		}
		int ok = status == 200 && json_is_integer(price) && json_integer_value(price) >= 0 &&
			 json_integer_value(price) <= PRICE_MAX && valid_currency(cur) && name &&
			 strlen(name) <= NAME_MAX_BYTES;
		if (!ok) {
			log_warn(o->ctx->log, "pricing %s: %s", sku,
				 res.detail[0] ? res.detail : "the catalog's answer is no product");
			json_decref(v);
			unavailable(resp, "catalog", "price the items");
			return ERR_UNAVAILABLE;
		}
		if (i == 0)
			snprintf(p->currency, sizeof(p->currency), "%s", cur);
		if (strcmp(cur, p->currency) != 0) {
			msg_resp_error(resp, 409, "conflict",
				       "the items are priced in different currencies; order them "
				       "separately",
				       json_pack("{s:s,s:s,s:s}", "sku", sku, "currency", cur,
						 "order_currency", p->currency));
			json_decref(v);
			return ERR_CONFLICT;
		}
		add_line(p, sku, name, (int64_t)json_integer_value(json_object_get(it, "qty")),
			 (int64_t)json_integer_value(price));
		json_decref(v);
	}
	p->source = "items";
	return 0;
}

/* Prices the user's cart: its snapshot prices, re-checked by the cart
 * against the catalog. A price that changed since the item was put in the
 * cart is shown, not charged: 409 price_changed, and no order. */
static int price_cart(order_svc *o, const char *user_id, priced *p, msg_resp *resp)
{
	char path[64 + ID_MAX];
	snprintf(path, sizeof(path), "/v1/internal/carts/%s?refresh=1", user_id);
	call_res res;
	remote(o, "cart", "GET", path, NULL, &res);
	json_t *cart = res.status == 200 ? res.body : NULL;
	if (!cart) {
		log_warn(o->ctx->log, "reading the cart of %s: %s", user_id, res.detail);
		call_res_clear(&res);
	}
	json_t *items = json_object_get(cart, "items");
	const char *cur = json_string_value(json_object_get(cart, "currency"));
	if (!json_is_array(items)) {
		json_decref(cart);
		unavailable(resp, "cart", "read the cart");
		return ERR_UNAVAILABLE;
	}
	if (json_array_size(items) == 0) {
		json_decref(cart);
		return engine_bad_field(resp, "items",
					"the cart is empty: put items in it, or list them in items");
	}
	if (json_array_size(items) > ITEMS_MAX || !valid_currency(cur)) {
		json_decref(cart);
		unavailable(resp, "cart", "read the cart");
		return ERR_UNAVAILABLE;
	}
	snprintf(p->currency, sizeof(p->currency), "%s", cur);
	json_t *changed = json_array();
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		const char *sku = json_string_value(json_object_get(it, "sku"));
		const char *name = json_string_value(json_object_get(it, "name"));
		json_t *qty = json_object_get(it, "qty"), *price = json_object_get(it, "price_cents");
		if (!valid_sku(sku) || !name || !json_is_integer(qty) || !json_is_integer(price)) {
			json_decref(changed);
			json_decref(cart);
			unavailable(resp, "cart", "read the cart");
			return ERR_UNAVAILABLE;
		}
		if (json_is_false(json_object_get(it, "available"))) {
			json_decref(changed);
			json_decref(cart);
			msg_resp_error(resp, 409, "conflict",
				       "an item in the cart is no longer sold; remove it and order "
				       "again",
				       json_pack("{s:s}", "sku", sku));
			return ERR_CONFLICT;
		}
		if (json_is_true(json_object_get(it, "price_changed")))
			json_array_append_new(changed,
					      json_pack("{s:s,s:O,s:O,s:O}", "sku", sku, "price_cents",
							price, "current_price_cents",
							json_object_get(it, "current_price_cents"),
							"current_currency",
							json_object_get(it, "current_currency")));
		add_line(p, sku, name, (int64_t)json_integer_value(qty),
			 (int64_t)json_integer_value(price));
	}
	if (json_array_size(changed) > 0) {
		msg_resp_error(resp, 409, "price_changed",
			       "prices changed since the items were put in the cart; put them in the "
			       "cart again to accept the new prices, then order",
			       json_pack("{s:o,s:I,s:O}", "items", changed, "total_cents",
					 (json_int_t)p->total, "current_total_cents",
					 json_object_get(cart, "current_total_cents")));
		json_decref(cart);
		return ERR_CONFLICT;
	}
	json_decref(changed);
	json_decref(cart);
	p->source = "cart";
	return 0;
}

/* ---- POST /v1/orders ------------------------------------------------------------------ */

typedef struct order_req {
	const char *method;
	const char *token;
	const char *address_id;
	json_t *items; /* borrowed from the body, or NULL: the cart */
} order_req;

static int parse_order(json_t *body, order_req *q, msg_resp *resp)
{
	jval_error e = { { 0 }, { 0 } };
	json_t *pay = json_object_get(body, "payment");
	if (!json_is_object(pay))
		return engine_bad_field(resp, "payment", "must be an object {method, token}");
	if (jval_str(pay, "method", 1, 1, 16, &q->method, &e) ||
	    (strcmp(q->method, "card") != 0 && strcmp(q->method, "paypal") != 0 &&
	     jval_fail(&e, "method", "must be \"card\" or \"paypal\"")) ||
	    jval_str(pay, "token", 1, 1, TOKEN_MAX, &q->token, &e)) {
		char field[80];
		snprintf(field, sizeof(field), "payment.%s", e.field);
		return engine_bad_field(resp, field, e.message);
	}
	if (jval_str(body, "address_id", 0, 1, ID_MAX, &q->address_id, &e) ||
	    (q->address_id && !engine_valid_id(q->address_id) &&
	     jval_fail(&e, "address_id", "is not an address id")))
		return engine_bad_field(resp, e.field, e.message);
	json_t *items = json_object_get(body, "items");
	if (!items || json_is_null(items))
		return 0;
	if (!json_is_array(items) || json_array_size(items) == 0 ||
	    json_array_size(items) > ITEMS_MAX)
		return engine_bad_field(resp, "items", "must be an array of 1 to 100 items {sku, qty}");
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it) {
		char field[96];
		const char *sku;
		int64_t qty;
		snprintf(field, sizeof(field), "items[%zu]", i);
		if (!json_is_object(it))
			return engine_bad_field(resp, field, "must be an object {sku, qty}");
		if (jval_str(it, "sku", 1, 1, SKU_MAX, &sku, &e) ||
		    (!valid_sku(sku) &&
		     jval_fail(&e, "sku", "must be 1-64 letters, digits, '-', '_', '.'")) ||
		    jval_int(it, "qty", 1, 1, QTY_MAX, &qty, NULL, &e)) {
			snprintf(field, sizeof(field), "items[%zu].%s", i, e.field);
			return engine_bad_field(resp, field, e.message);
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(json_string_value(json_object_get(json_array_get(items, j), "sku")),
				   sku) == 0) {
				snprintf(field, sizeof(field), "items[%zu].sku", i);
				return engine_bad_field(resp, field,
							"repeats an sku; give each sku once");
			}
	}
	q->items = items;
	return 0;
}

static int sku_cmp(const void *a, const void *b)
{
	return strcmp(json_string_value(json_array_get(*(json_t *const *)a, 0)),
		      json_string_value(json_array_get(*(json_t *const *)b, 0)));
}

/* The canonical form of the request: [method, token, address_id, items]
 * with items as [[sku, qty], ...] in sku order (null: the cart). Two
 * bodies with one meaning have one fingerprint. Malloc'd. */
static char *fingerprint(const order_req *q)
{
	json_t *items = json_null();
	if (q->items) {
		size_t n = json_array_size(q->items);
		json_t **pairs = calloc(n, sizeof(*pairs));
		if (!pairs)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			json_t *it = json_array_get(q->items, i);
			pairs[i] = json_pack("[O,O]", json_object_get(it, "sku"),
					     json_object_get(it, "qty"));
		}
		qsort(pairs, n, sizeof(*pairs), sku_cmp);
		items = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, pairs[i]);
		free(pairs);
	}
	json_t *fp = json_pack("[s,s,s?,o]", q->method, q->token, q->address_id, items);
	char *text = json_dumps(fp, JSON_COMPACT);
	json_decref(fp);
	return text;
}

/* Answers a repeat of (user, key): 1 when answered (the first answer, the
 * order as it is now while that is not stored yet, or 422 for another
 * body), 0 when the key is new, or a store error. */
static int replay(order_svc *o, const char *user, const char *key, const char *fp,
		  msg_resp *resp)
{
	order_rec r;
	int rc = order_load_by(o->ctx->store, &r,
			       "SELECT " ORDER_COLS " FROM orders WHERE user_id = ? AND idem_key = ?",
			       user, key);
	if (rc == ERR_NOT_FOUND)
		return 0;
	if (rc)
		return rc;
	if (strcmp(r.fingerprint, fp) != 0) {
		msg_resp_error(resp, 422, "idempotency_mismatch",
			       "this Idempotency-Key was used for a different order",
			       json_pack("{s:s}", "order_id", r.order_id));
		count(o, "order_requests_total", "result", "mismatch");
	} else if (r.response_status > 0 && r.response) {
		msg_resp_set(resp, (int)r.response_status, "application/json", r.response,
			     strlen(r.response));
		msg_resp_set_header(resp, "Idempotent-Replayed", "true");
		count(o, "order_requests_total", "result", "replayed");
	} else {
		/* The first request is still at work (or died before it could
		 * answer): the order as it stands, 202 while its saga runs. */
		saga sg;
		int have = saga_load(o->ctx->store, r.order_id, &sg) == 0;
		msg_resp_json(resp, have && saga_terminal(sg.state) ? 201 : 202,
			      order_json(&r, have ? &sg : NULL));
		msg_resp_set_header(resp, "Idempotent-Replayed", "true");
		count(o, "order_requests_total", "result", "replayed");
	}
	order_rec_free(&r);
	return 1;
}

typedef struct create_op {
	const char *order_id;
	const char *user_id;
	const char *key;
	const char *fp;
	const order_req *q;
	const priced *p;
	const char *items;
	int64_t now;
	int lost; /* out: another request with the key got there first */
} create_op;

static int create_body(order_svc *o, void *arg)
{
	create_op *c = arg;
	store *s = o->ctx->store;
	int64_t changed = 0;
	c->lost = 0;
	int rc = store_runf(s,
			    "INSERT INTO orders (order_id, user_id, idem_key, fingerprint, status, "
			    "cancel_reason, source, items, total_cents, currency, pay_method, "
			    "pay_token, address_id, response_status, response, created_at, "
			    "updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, "
			    "?, ?) ON CONFLICT DO NOTHING",
			    &changed, "tttttttitttt" "ii", c->order_id, c->user_id, c->key, c->fp,
			    status_names[ORDER_PENDING], c->p->source, c->items, c->p->total,
			    c->p->currency, c->q->method, c->q->token, c->q->address_id, c->now,
			    c->now);
	if (rc == ERR_CONFLICT || (rc == 0 && changed == 0)) {
		c->lost = 1;
		return 1; /* roll back: the other request's order stands */
	}
	char tp[TRACE_PARENT_SIZE];
	if (rc == 0)
		rc = saga_insert(s, c->order_id, c->now + o->ttl_s * US, c->now);
	if (rc == 0)
		rc = saga_set_traceparent(s, c->order_id, engine_traceparent(o->ctx, tp, sizeof(tp)));
	if (rc == 0)
		rc = saga_enqueue(s, c->order_id, c->now + o->lease_us, &o->lease,
				  c->now + o->lease_us, c->now);
	/* The saga's first move and its first step go with the order: it is
	 * RESERVING, the reservation begun (before its call goes out). */
	if (rc == 0)
		rc = saga_set_state(s, o->ctx->log, c->order_id, SAGA_STARTED, SAGA_RESERVING, NULL,
				    c->now);
	if (rc == 0)
		rc = saga_step_begin(s, c->order_id, SAGA_STEP_RESERVE, c->now);
	return rc;
}

static void post_order(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	identity id;
	if (engine_require_user(o->ctx, req, resp, &id))
		return;
	const char *key = msg_req_header(req, "Idempotency-Key");
	if (!key) {
		engine_bad_field(resp, "Idempotency-Key",
				 "the header Idempotency-Key is required to place an order");
		return;
	}
	if (!valid_key(key)) {
		engine_bad_field(resp, "Idempotency-Key", "must be 1-255 printable ASCII characters");
		return;
	}
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	order_req q = { NULL };
	priced p = { .items = json_array() };
	char *fp = NULL, *items = NULL, *answer = NULL;
	if (parse_order(body, &q, resp))
		goto out;
	if (!(fp = fingerprint(&q))) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
		goto out;
	}
	int rc = replay(o, id.sub, key, fp, resp);
	if (rc) {
		if (rc < 0)
			engine_store_error(o->ctx, resp, rc, "read order");
		goto out;
	}
	if ((q.items ? price_items(o, q.items, &p, resp) : price_cart(o, id.sub, &p, resp)) != 0) {
		count(o, "order_requests_total", "result", "refused");
		goto out;
	}
	char order_id[ID_MAX + 1];
	/* Time-ordered: the order's rows, and the payment and reservation
	 * named after it in their services, go in at the end of their keys. */
	int64_t now = clock_now(o->ctx->clock);
	ids_new_timed(o->ctx->rng, now, "ord", order_id, sizeof(order_id));
	items = json_dumps(p.items, JSON_COMPACT);
	create_op c = { .order_id = order_id, .user_id = id.sub, .key = key, .fp = fp, .q = &q,
			.p = &p, .items = items, .now = now };
	rc = items ? run_txn(o, create_body, &c) : ERR_NOMEM;
	if (c.lost) {
		rc = replay(o, id.sub, key, fp, resp);
		if (rc <= 0)
			engine_store_error(o->ctx, resp, rc ? rc : ERR_INTERNAL, "read order");
		goto out;
	}
	if (rc) {
		engine_store_error(o->ctx, resp, rc, "create order");
		goto out;
	}
	count(o, "order_requests_total", "result", "created");
	count(o, "orders_total", "status", status_names[ORDER_PENDING]);
	log_info(o->ctx->log, "order %s placed by %s: %lld %s from the %s", order_id, id.sub,
		 (long long)p.total, p.currency, p.source);
	/* The saga runs here as far as it can for the caller's sake (stock and
	 * payment); the processor takes it from the queue for the rest. The
	 * write that ends this advance stores the first answer as well. */
	adv ad = adv_start(!o->confirm_inline, 1, SAGA_STEP_RESERVE, c.now);
	int res = advance(o, order_id, &ad);
	if (ad.resp_body) {
		answer = ad.resp_body;
		drive_end(o, order_id, res, &ad, 0, NULL);
		msg_resp_set(resp, (int)ad.resp_status, "application/json", answer, strlen(answer));
	} else {
		/* It stopped otherwise (lost its lease, or the store failed):
		 * the order as it stands. */
		order_rec r;
		saga sg;
		rc = order_load(o->ctx->store, order_id, &r);
		if (rc == 0 && (rc = saga_load(o->ctx->store, order_id, &sg)) != 0)
			order_rec_free(&r);
		if (rc) {
			drive_end(o, order_id, res, &ad, 0, NULL);
			engine_store_error(o->ctx, resp, rc, "read order");
			goto out;
		}
		int status = (res == ADV_DONE || res == ADV_QUEUED) &&
					     r.status != ORDER_AWAITING_PAYMENT
				     ? 201
				     : 202;
		json_t *oj = order_json(&r, &sg);
		answer = json_dumps(oj, JSON_COMPACT);
		json_decref(oj);
		order_rec_free(&r);
		drive_end(o, order_id, res, &ad, answer ? status : 0, answer);
		if (answer)
			msg_resp_set(resp, status, "application/json", answer, strlen(answer));
		else
			msg_resp_error(resp, 500, "internal", "out of memory", NULL);
	}
	char location[32 + ID_MAX];
	snprintf(location, sizeof(location), "/v1/orders/%s", order_id);
	msg_resp_set_header(resp, "Location", location);
out:
	free(answer);
	free(items);
	free(fp);
	json_decref(p.items);
	json_decref(body);
}

/* ---- reading orders ------------------------------------------------------------------ */

/* Reads query parameter name as an integer in [1, max] (def when absent).
 * 0, or ERR_INVALID with 400 in resp. */
static int query_limit(const msg_req *req, const char *name, int64_t def, int64_t max,
		       int64_t *out, msg_resp *resp)
{
	char buf[24];
	*out = def;
	int q = msg_req_query(req, name, buf, sizeof(buf));
	if (q == 0)
		return 0;
	char *end;
	errno = 0;
	long long v = q > 0 ? strtoll(buf, &end, 10) : 0;
	if (q < 0 || !buf[0] || errno || *end || v < 1 || v > max) {
		char msg[64];
		snprintf(msg, sizeof(msg), "must be an integer between 1 and %lld", (long long)max);
		return engine_bad_field(resp, name, msg);
	}
	*out = v;
	return 0;
}

static void no_order(msg_resp *resp, const char *id)
{
	msg_resp_error(resp, 404, "not_found", "no such order", json_pack("{s:s}", "order_id", id));
}

/* The order named in the path with its saga, for its owner or an admin;
 * otherwise resp is filled (401, 403, 404, 503) and an error returned. */
static int owned_order(order_svc *o, const msg_req *req, msg_resp *resp, order_rec *r, saga *sg)
{
	identity me;
	if (engine_caller(o->ctx, req, &me) != 0 || me.role != IDENTITY_ADMIN) {
		if (engine_require_user(o->ctx, req, resp, &me))
			return ERR_UNAUTH;
	}
	const char *id = msg_req_param(req, 0);
	if (!engine_valid_id(id)) {
		no_order(resp, id ? id : "");
		return ERR_NOT_FOUND;
	}
	int rc = order_load(o->ctx->store, id, r);
	if (rc == 0 && me.role != IDENTITY_ADMIN && strcmp(r->user_id, me.sub) != 0) {
		order_rec_free(r);
		msg_resp_error(resp, 403, "forbidden", "this order belongs to another user",
			       json_pack("{s:s}", "order_id", id));
		return ERR_FORBIDDEN;
	}
	if (rc == 0 && (rc = saga_load(o->ctx->store, id, sg)) != 0)
		order_rec_free(r);
	if (rc == ERR_NOT_FOUND)
		no_order(resp, id);
	else if (rc)
		engine_store_error(o->ctx, resp, rc, "read order");
	return rc;
}

static void get_order(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	order_rec r;
	saga sg;
	if (owned_order(o, req, resp, &r, &sg))
		return;
	msg_resp_json(resp, 200, order_json(&r, &sg));
	order_rec_free(&r);
}

/* page_token: "<created_at>.<order_id>" of the last order of the page
 * before; the next page starts below it in (created_at, order_id) order,
 * so orders placed meanwhile never shift a page. */
static int parse_page_token(const char *t, int64_t *created, char *id, size_t idlen)
{
	char *end;
	errno = 0;
	long long v = strtoll(t, &end, 10);
	if (errno || end == t || *end != '.' || v < 0 || !engine_valid_id(end + 1))
		return ERR_INVALID;
	*created = v;
	snprintf(id, idlen, "%s", end + 1);
	return 0;
}

static void list_orders(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	identity me;
	if (engine_require_user(o->ctx, req, resp, &me))
		return;
	int64_t limit, after_created = 0;
	char tok[128], after_id[ID_MAX + 1] = "";
	if (query_limit(req, "limit", PAGE_DEFAULT, PAGE_MAX, &limit, resp))
		return;
	int q = msg_req_query(req, "page_token", tok, sizeof(tok));
	if (q < 0 || (q > 0 && parse_page_token(tok, &after_created, after_id, sizeof(after_id)))) {
		engine_bad_field(resp, "page_token", "is not a page token of this listing");
		return;
	}
	store *s = o->ctx->store;
	int rc = 0;
	store_stmt *st =
		after_id[0]
			? store_queryf(s,
				       "SELECT " ORDER_COLS " FROM orders WHERE user_id = ? AND "
				       "(created_at < ? OR (created_at = ? AND order_id < ?)) "
				       "ORDER BY created_at DESC, order_id DESC LIMIT ?",
				       &rc, "tiiti", me.sub, after_created, after_created, after_id,
				       limit + 1)
			: store_queryf(s,
				       "SELECT " ORDER_COLS " FROM orders WHERE user_id = ? "
				       "ORDER BY created_at DESC, order_id DESC LIMIT ?",
				       &rc, "ti", me.sub, limit + 1);
	if (!st) {
		engine_store_error(o->ctx, resp, rc, "list orders");
		return;
	}
	order_rec *recs = calloc((size_t)limit + 1, sizeof(*recs));
	int n = 0;
	while (recs && n <= limit && (rc = store_step(st)) == STORE_ROW)
		if ((rc = order_read(st, &recs[n++])) != 0)
			break;
	store_reset(st);
	if (!recs)
		rc = ERR_NOMEM;
	json_t *items = json_array();
	int more = n > limit;
	for (int i = 0; rc >= 0 && i < n && i < limit; i++) {
		saga sg;
		int have = saga_load(s, recs[i].order_id, &sg) == 0;
		json_array_append_new(items, order_json(&recs[i], have ? &sg : NULL));
	}
	json_t *next = json_null();
	if (rc >= 0 && more) {
		char t[128];
		snprintf(t, sizeof(t), "%lld.%s", (long long)recs[limit - 1].created_at,
			 recs[limit - 1].order_id);
		next = json_string(t);
	}
	for (int i = 0; i < n; i++)
		order_rec_free(&recs[i]);
	free(recs);
	if (rc < 0) {
		json_decref(items);
		json_decref(next);
		engine_store_error(o->ctx, resp, rc, "list orders");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "items", items, "next_page_token", next));
}

/* ---- cancelling --------------------------------------------------------------------- */

enum cancel_outcome { CANCEL_FLAGGED, CANCEL_ALREADY, CANCEL_TOO_LATE };

typedef struct cancel_op {
	const char *id;
	int64_t now;
	int outcome; /* out */
} cancel_op;

static int cancel_body(order_svc *o, void *arg)
{
	cancel_op *c = arg;
	saga sg;
	int rc = saga_load(o->ctx->store, c->id, &sg);
	if (rc)
		return rc;
	if (sg.state == SAGA_COMPENSATED || sg.state == SAGA_COMPENSATING) {
		c->outcome = CANCEL_ALREADY;
		return 0;
	}
	/* Once the capture is known the commit may be on its way: too late. */
	if (sg.state == SAGA_COMPLETED ||
	    sg.steps[SAGA_STEP_CAPTURE].status == SAGA_STEP_SUCCEEDED) {
		c->outcome = CANCEL_TOO_LATE;
		return 0;
	}
	c->outcome = CANCEL_FLAGGED;
	rc = saga_request_cancel(o->ctx->store, c->id, c->now);
	if (rc == 0)
		rc = saga_hurry(o->ctx->store, c->id, c->now);
	return rc;
}

static void too_late(msg_resp *resp, const order_rec *r)
{
	msg_resp_error(resp, 409, "conflict",
		       r->status == ORDER_CONFIRMED
			       ? "the order is confirmed and can no longer be cancelled"
			       : "the order is being confirmed and can no longer be cancelled",
		       json_pack("{s:s,s:s}", "order_id", r->order_id, "status",
				 order_status_name(r->status)));
}

static void cancel_order(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	order_rec r;
	saga sg;
	if (owned_order(o, req, resp, &r, &sg))
		return;
	char id[ID_MAX + 1];
	snprintf(id, sizeof(id), "%s", r.order_id);
	order_rec_free(&r);
	cancel_op c = { .id = id, .now = clock_now(o->ctx->clock) };
	int rc = run_txn(o, cancel_body, &c);
	if (rc) {
		engine_store_error(o->ctx, resp, rc, "cancel order");
		return;
	}
	if (c.outcome != CANCEL_TOO_LATE) {
		if (c.outcome == CANCEL_FLAGGED)
			log_info(o->ctx->log, "order %s: the customer asks to cancel", id);
		/* Compensate now when nobody else is advancing it; otherwise the
		 * one who is sees the request at its next move. */
		drive(o, id);
	}
	rc = order_load(o->ctx->store, id, &r);
	if (rc == 0 && (rc = saga_load(o->ctx->store, id, &sg)) != 0)
		order_rec_free(&r);
	if (rc) {
		engine_store_error(o->ctx, resp, rc, "read order");
		return;
	}
	if (r.status == ORDER_CONFIRMED || c.outcome == CANCEL_TOO_LATE)
		too_late(resp, &r);
	else
		msg_resp_json(resp, r.status == ORDER_CANCELLED ? 200 : 202, order_json(&r, &sg));
	order_rec_free(&r);
}

/* ---- admin ------------------------------------------------------------------------- */

static void admin_sagas(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	if (engine_require_admin(o->ctx, req, resp))
		return;
	int64_t limit;
	char state[32];
	if (query_limit(req, "limit", 50, ADMIN_PAGE_MAX, &limit, resp))
		return;
	int q = msg_req_query(req, "state", state, sizeof(state));
	if (q < 0 || (q > 0 && saga_state_parse(state) < 0)) {
		engine_bad_field(resp, "state",
				 "must be STARTED, RESERVING, AUTHORIZING, CONFIRMING, "
				 "COMPENSATING, COMPLETED or COMPENSATED");
		return;
	}
#define SAGA_LIST                                                                     \
	"SELECT s.order_id, s.state, s.reason, s.created_at, s.updated_at, o.status, " \
	"o.user_id FROM saga s JOIN orders o ON o.order_id = s.order_id "
	int rc = 0;
	store_stmt *st =
		q > 0 ? store_queryf(o->ctx->store,
				     SAGA_LIST "WHERE s.state = ? "
					       "ORDER BY s.updated_at DESC, s.order_id DESC LIMIT ?",
				     &rc, "ti", state, limit)
		      : store_queryf(o->ctx->store,
				     SAGA_LIST "ORDER BY s.updated_at DESC, s.order_id DESC LIMIT ?",
				     &rc, "i", limit);
#undef SAGA_LIST
	if (!st) {
		engine_store_error(o->ctx, resp, rc, "list sagas");
		return;
	}
	json_t *items = json_array();
	while ((rc = store_step(st)) == STORE_ROW) {
		char created[40], updated[40];
		clock_fmt_rfc3339(store_col_int(st, 3), created, sizeof(created));
		clock_fmt_rfc3339(store_col_int(st, 4), updated, sizeof(updated));
		const char *reason = store_col_text(st, 2);
		json_t *it = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "order_id",
				       store_col_text(st, 0), "state", store_col_text(st, 1),
				       "status", store_col_text(st, 5), "user_id",
				       store_col_text(st, 6), "created_at", created, "updated_at",
				       updated);
		if (reason)
			json_object_set_new(it, "reason", json_string(reason));
		json_array_append_new(items, it);
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(o->ctx, resp, rc, "list sagas");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:o}", "items", items));
}

/* The queue row of id: {due_at, lease_owner, lease_until, enqueued_at}, or
 * null once the saga is finished. */
static json_t *queue_json(store *s, const char *id)
{
	int rc = 0;
	store_stmt *st = store_queryf(s,
				      "SELECT due_at, lease_owner, lease_until, enqueued_at "
				      "FROM order_queue WHERE order_id = ?",
				      &rc, "t", id);
	if (!st)
		return json_null();
	json_t *out = json_null();
	if (store_step(st) == STORE_ROW) {
		char due[40], until[40], enq[40];
		clock_fmt_rfc3339(store_col_int(st, 0), due, sizeof(due));
		clock_fmt_rfc3339(store_col_int(st, 2), until, sizeof(until));
		clock_fmt_rfc3339(store_col_int(st, 3), enq, sizeof(enq));
		const char *owner = store_col_text(st, 1);
		int leased = owner && owner[0];
		out = json_pack("{s:s,s:s?,s:s?,s:s}", "due_at", due, "lease_owner",
				leased ? owner : NULL, "lease_until", leased ? until : NULL,
				"enqueued_at", enq);
	}
	store_reset(st);
	return out;
}

static void admin_saga(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	if (engine_require_admin(o->ctx, req, resp))
		return;
	order_rec r;
	saga sg;
	if (owned_order(o, req, resp, &r, &sg))
		return;
	char created[40], updated[40], expires[40];
	clock_fmt_rfc3339(sg.created_at, created, sizeof(created));
	clock_fmt_rfc3339(sg.updated_at, updated, sizeof(updated));
	clock_fmt_rfc3339(sg.expires_at, expires, sizeof(expires));
	/* The trace of the order: this instance's spans of it; the gateway
	 * replaces them with every process's (GET /admin/traces/{id}). */
	trace_ctx tc;
	int traced = trace_parse(sg.traceparent, &tc) == 0;
	char tid[TRACE_ID_HEX];
	if (traced)
		trace_id_hex(tc.trace_id, tid);
	json_t *spans = traced && o->ctx->tracer
				? tracer_find_json(o->ctx->tracer, tc.trace_id, TRACER_FIND_MAX)
				: NULL;
	json_t *out = json_pack("{s:s,s:s,s:s?,s:b,s:s,s:s,s:s,s:o,s:o,s:o,s:s?,s:s?,s:o}",
				"order_id", sg.order_id, "state", saga_state_name(sg.state),
				"reason", sg.reason[0] ? sg.reason : NULL, "cancel_requested",
				sg.cancel_requested, "expires_at", expires, "created_at", created,
				"updated_at", updated, "steps", saga_steps_json(&sg), "queue",
				queue_json(o->ctx->store, sg.order_id), "order", order_json(&r, &sg),
				"trace_id", traced ? tid : NULL, "traceparent",
				traced ? sg.traceparent : NULL, "spans", spans ? spans : json_array());
	order_rec_free(&r);
	msg_resp_json(resp, 200, out);
}

/* GET /admin/orders?status=&limit=&page_token=: every order (newest or not)
 * in order_id order, with its saga's state and queue row, for `ecom audit`.
 * page_token is the last order_id of the page before, so a page never
 * shifts when orders are placed meanwhile (new ids land anywhere, and are
 * seen or not, but nothing is listed twice). */
static void admin_orders(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	if (engine_require_admin(o->ctx, req, resp))
		return;
	int64_t limit;
	char status[32], after[ID_MAX + 1] = "";
	if (query_limit(req, "limit", 100, ADMIN_PAGE_MAX, &limit, resp))
		return;
	int q = msg_req_query(req, "status", status, sizeof(status));
	if (q < 0 || (q > 0 && order_status_parse(status) < 0)) {
		engine_bad_field(resp, "status",
				 "must be PENDING, AWAITING_PAYMENT, CONFIRMED or CANCELLED");
		return;
	}
	int t = msg_req_query(req, "page_token", after, sizeof(after));
	if (t < 0 || (t > 0 && !engine_valid_id(after))) {
		engine_bad_field(resp, "page_token", "is not a page token of this listing");
		return;
	}
#define ADMIN_ORDERS                                                                     \
	"SELECT o.order_id, o.user_id, o.status, o.cancel_reason, o.total_cents, "        \
	"o.currency, o.created_at, o.updated_at, s.state, s.reason, s.expires_at, "       \
	"q.due_at, o.items FROM orders o LEFT JOIN saga s ON s.order_id = o.order_id "    \
	"LEFT JOIN order_queue q ON q.order_id = o.order_id WHERE o.order_id > ? "
	int rc = 0;
	store_stmt *st =
		q > 0 ? store_queryf(o->ctx->store,
				     ADMIN_ORDERS "AND o.status = ? ORDER BY o.order_id LIMIT ?", &rc,
				     "tti", after, status, limit + 1)
		      : store_queryf(o->ctx->store, ADMIN_ORDERS "ORDER BY o.order_id LIMIT ?", &rc,
				     "ti", after, limit + 1);
#undef ADMIN_ORDERS
	if (!st) {
		engine_store_error(o->ctx, resp, rc, "list orders");
		return;
	}
	json_t *items = json_array();
	char last[ID_MAX + 1] = "";
	int64_t n = 0;
	while ((rc = store_step(st)) == STORE_ROW && ++n <= limit) {
		char created[40], updated[40], pay_id[ID_MAX + 8], rsv_id[ID_MAX + 8];
		const char *id = store_col_text(st, 0);
		snprintf(last, sizeof(last), "%s", id ? id : "");
		clock_fmt_rfc3339(store_col_int(st, 6), created, sizeof(created));
		clock_fmt_rfc3339(store_col_int(st, 7), updated, sizeof(updated));
		derived_id(last, "pay", pay_id, sizeof(pay_id));
		derived_id(last, "rsv", rsv_id, sizeof(rsv_id));
		json_t *it = json_pack("{s:s,s:s,s:s,s:I,s:s,s:s,s:s,s:s,s:s}", "order_id", last,
				       "user_id", store_col_text(st, 1), "status",
				       store_col_text(st, 2), "total_cents",
				       (json_int_t)store_col_int(st, 4), "currency",
				       store_col_text(st, 5), "created_at", created, "updated_at",
				       updated, "payment_id", pay_id, "reservation_id", rsv_id);
		if (!store_col_is_null(st, 3))
			json_object_set_new(it, "cancel_reason", json_string(store_col_text(st, 3)));
		/* The units ordered, to hold against the stock committed. */
		json_t *lines = parse_json(store_col_text(st, 12)), *line;
		json_int_t units = 0;
		size_t k;
		json_array_foreach(lines, k, line)
			units += json_integer_value(json_object_get(line, "qty"));
		json_decref(lines);
		json_object_set_new(it, "units", json_integer(units));
		json_t *sg = json_null();
		if (!store_col_is_null(st, 8)) {
			char expires[40];
			clock_fmt_rfc3339(store_col_int(st, 10), expires, sizeof(expires));
			sg = json_pack("{s:s,s:s,s:b}", "state", store_col_text(st, 8), "expires_at",
				       expires, "queued", !store_col_is_null(st, 11));
			if (!store_col_is_null(st, 9))
				json_object_set_new(sg, "reason", json_string(store_col_text(st, 9)));
			if (!store_col_is_null(st, 11)) {
				char due[40];
				clock_fmt_rfc3339(store_col_int(st, 11), due, sizeof(due));
				json_object_set_new(sg, "due_at", json_string(due));
			}
		}
		json_object_set_new(it, "saga", sg);
		json_array_append_new(items, it);
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(o->ctx, resp, rc, "list orders");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:o,s:o}", "items", items, "next_page_token",
				n > limit ? json_string(last) : json_null()));
}

/* GET /admin/orders/summary: orders by status, the CONFIRMED total per
 * currency, sagas by state. One statement per figure. */
static void admin_orders_summary(void *ud, msg_req *req, msg_resp *resp)
{
	order_svc *o = ud;
	if (engine_require_admin(o->ctx, req, resp))
		return;
	json_t *by_status = json_object(), *confirmed = json_object(), *by_state = json_object();
	for (int i = 0; i < ORDER_NSTATUS; i++)
		json_object_set_new(by_status, status_names[i], json_integer(0));
	for (int i = 0; i < SAGA_NSTATES; i++)
		json_object_set_new(by_state, saga_state_name(i), json_integer(0));
	int64_t total = 0;
	int rc = 0;
	store_stmt *st = store_queryf(o->ctx->store,
				      "SELECT status, currency, COUNT(*), SUM(total_cents) FROM orders "
				      "GROUP BY status, currency",
				      &rc, "");
	while (st && (rc = store_step(st)) == STORE_ROW) {
		const char *status = store_col_text(st, 0), *cur = store_col_text(st, 1);
		int64_t n = store_col_int(st, 2);
		total += n;
		jval_add_int(by_status, status ? status : "?", n);
		if (status && cur && strcmp(status, "CONFIRMED") == 0)
			json_object_set_new(confirmed, cur, json_integer(store_col_int(st, 3)));
	}
	store_reset(st);
	if (st && rc >= 0) {
		st = store_queryf(o->ctx->store, "SELECT state, COUNT(*) FROM saga GROUP BY state", &rc,
				  "");
		while (st && (rc = store_step(st)) == STORE_ROW) {
			const char *state = store_col_text(st, 0);
			json_object_set_new(by_state, state ? state : "?",
					    json_integer(store_col_int(st, 1)));
		}
		store_reset(st);
	}
	if (!st || rc < 0) {
		json_decref(by_status);
		json_decref(confirmed);
		json_decref(by_state);
		engine_store_error(o->ctx, resp, rc, "summarise orders");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:I,s:o,s:o,s:o}", "orders", (json_int_t)total, "by_status",
				by_status, "confirmed_total_cents", confirmed, "sagas_by_state",
				by_state));
}

/* ---- the processor ------------------------------------------------------------------ */

/* Takes the tick's next due saga and drives it, while there is one; called
 * and returns with o->mu held. */
static void drive_batch(order_svc *o)
{
	while (o->batch_next < o->batch_n) {
		const char *id = o->batch[o->batch_next++];
		o->busy++;
		pthread_mutex_unlock(&o->mu);
		drive(o, id);
		pthread_mutex_lock(&o->mu);
		o->busy--;
	}
	if (o->busy == 0)
		pthread_cond_broadcast(&o->idle);
}

static void *helper_main(void *arg)
{
	order_svc *o = arg;
	pthread_mutex_lock(&o->mu);
	while (!o->stopping) {
		if (o->batch_next < o->batch_n)
			drive_batch(o);
		else
			pthread_cond_wait(&o->work, &o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* The processor: the sagas due now, each claimed and driven (by this
 * thread and the helpers together); returns once all are. */
static void order_tick(void *eng, int64_t now_us)
{
	order_svc *o = eng;
	char(*ids)[SAGA_ID_MAX] = calloc((size_t)o->tick_batch, sizeof(*ids));
	int n = 0;
	int rc = ids ? saga_due(o->ctx->store, now_us, o->tick_batch, ids, &n) : ERR_NOMEM;
	if (rc)
		log_warn(o->ctx->log, "order queue: %s (%s)", err_name(rc),
			 store_errmsg(o->ctx->store));
	if (o->nhelpers == 0 || n <= 1) {
		for (int i = 0; i < n; i++)
			drive(o, ids[i]);
	} else {
		pthread_mutex_lock(&o->mu);
		o->batch = ids;
		o->batch_n = n;
		o->batch_next = 0;
		pthread_cond_broadcast(&o->work);
		drive_batch(o);
		while (o->busy > 0)
			pthread_cond_wait(&o->idle, &o->mu);
		o->batch = NULL;
		o->batch_n = o->batch_next = 0;
		pthread_mutex_unlock(&o->mu);
	}
	free(ids);
}

/* ---- engine ------------------------------------------------------------------------- */

static void order_destroy(void *eng)
{
	order_svc *o = eng;
	if (!o)
		return;
	if (o->sync_ready) {
		pthread_mutex_lock(&o->mu);
		o->stopping = 1;
		pthread_cond_broadcast(&o->work);
		pthread_mutex_unlock(&o->mu);
		for (int i = 0; i < o->nhelpers; i++)
			pthread_join(o->helpers[i], NULL);
		pthread_cond_destroy(&o->work);
		pthread_cond_destroy(&o->idle);
		pthread_mutex_destroy(&o->mu);
	}
	free(o->helpers);
	router_free(o->rt);
	free(o);
}

/* Reads an integer setting into *out; 0, or ERR_INVALID with err filled
 * when it is not within [min, max]. */
static int setting(const engine_ctx *ctx, const char *key, int64_t def, int64_t min, int64_t max,
		   int64_t *out, char *err, size_t errlen)
{
	*out = config_int(ctx->config, key, def);
	if (*out >= min && *out <= max)
		return 0;
	snprintf(err, errlen, "%s must be between %lld and %lld", key, (long long)min,
		 (long long)max);
	return ERR_INVALID;
}

static void *order_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx->store) {
		snprintf(err, errlen, "the order service needs a store");
		return NULL;
	}
	order_svc *o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	o->ctx = ctx;
	int64_t margin_s, lease_ms, base_ms, cap_ms, attempts, batch, inl, workers;
	if (setting(ctx, "order.reservation_ttl_s", 900, 10, 86400, &o->ttl_s, err, errlen) ||
	    setting(ctx, "order.expiry_margin_s", 30, 1, o->ttl_s - 1, &margin_s, err, errlen) ||
	    setting(ctx, "order.call_timeout_ms", 6000, 1, 600000, &o->call_timeout_ms, err,
		    errlen) ||
	    setting(ctx, "order.lease_ms", 20000, 2 * o->call_timeout_ms, 3600000, &lease_ms, err,
		    errlen) ||
	    setting(ctx, "order.retry_base_ms", 200, 1, 3600000, &base_ms, err, errlen) ||
	    setting(ctx, "order.retry_cap_ms", 30000, base_ms, 3600000, &cap_ms, err, errlen) ||
	    setting(ctx, "order.retry_attempts", 100, 1, 1000000, &attempts, err, errlen) ||
	    setting(ctx, "order.tick_batch", 32, 1, 1000, &batch, err, errlen) ||
	    setting(ctx, "order.confirm_inline", 0, 0, 1, &inl, err, errlen) ||
	    setting(ctx, "order.workers", ORDER_WORKERS, 1, 64, &workers, err, errlen)) {
		order_destroy(o);
		return NULL;
	}
	o->margin_us = margin_s * US;
	o->lease_us = lease_ms * 1000;
	o->retry = (backoff_policy){ .max_attempts = (int)attempts,
				     .base_us = base_ms * 1000,
				     .cap_us = cap_ms * 1000 };
	o->tick_batch = (int)batch;
	o->confirm_inline = (int)inl;
	ids_new(ctx->rng, "life", o->token, sizeof(o->token));
	o->lease.owner = ctx->instance_id && ctx->instance_id[0] ? ctx->instance_id : "order";
	o->lease.token = o->token;
	/* A previous life of this instance died holding leases: they are
	 * nobody's now, and those sagas are due. */
	int64_t freed = 0;
	int rc = saga_release_owner(ctx->store, o->lease.owner, clock_now(ctx->clock), &freed);
	if (rc) {
		snprintf(err, errlen, "freeing the leases of %s: %s (%s)", o->lease.owner,
			 err_name(rc), store_errmsg(ctx->store));
		order_destroy(o);
		return NULL;
	}
	if (freed > 0)
		log_info(ctx->log, "took back %lld saga%s that %s held when it stopped",
			 (long long)freed, freed == 1 ? "" : "s", o->lease.owner);
	static const engine_route routes[] = {
		{ "POST", "/v1/orders", post_order },
		{ "GET", "/v1/orders", list_orders },
		{ "GET", "/v1/orders/{id}", get_order },
		{ "POST", "/v1/orders/{id}/cancel", cancel_order },
		{ "GET", "/admin/sagas", admin_sagas },
		{ "GET", "/admin/sagas/{order_id}", admin_saga },
		{ "GET", "/admin/orders", admin_orders },
		{ "GET", "/admin/orders/summary", admin_orders_summary },
	};
	o->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), o, err, errlen);
	if (!o->rt) {
		order_destroy(o);
		return NULL;
	}
	if (pthread_mutex_init(&o->mu, NULL) != 0 || pthread_cond_init(&o->work, NULL) != 0 ||
	    pthread_cond_init(&o->idle, NULL) != 0) {
		snprintf(err, errlen, "cannot initialise the processor's lock");
		order_destroy(o);
		return NULL;
	}
	o->sync_ready = 1;
	o->helpers = calloc((size_t)workers, sizeof(*o->helpers));
	for (int i = 0; o->helpers && i < workers - 1; i++, o->nhelpers++)
		if (pthread_create(&o->helpers[i], NULL, helper_main, o) != 0)
			break;
	if (!o->helpers || o->nhelpers < workers - 1) {
		snprintf(err, errlen, "cannot start the order processor's %lld threads",
			 (long long)workers);
		order_destroy(o);
		return NULL;
	}
	metrics_help(ctx->metrics, "order_requests_total",
		     "Order requests by result (created, replayed, mismatch, refused).");
	metrics_help(ctx->metrics, "orders_total",
		     "Orders by the status they entered (PENDING when placed, AWAITING_PAYMENT, "
		     "CONFIRMED, CANCELLED).");
	metrics_help(ctx->metrics, "sagas_total",
		     "Checkout sagas finished, by outcome (completed, compensated).");
	metrics_help(ctx->metrics, "saga_duration_seconds",
		     "Time from an order's placing to the end of its saga, by outcome.");
	metrics_help(ctx->metrics, "order_store_writes_total",
		     "Write transactions the order service committed (orders, sagas, the "
		     "queue and its leases).");
	metrics_help(ctx->metrics, "order_calls_total",
		     "Calls the saga made to other services, by step and result "
		     "(ok, refused, transient).");
	return o;
}

static void order_handle(void *eng, msg_req *req, msg_resp *resp)
{
	order_svc *o = eng;
	router_dispatch(o->rt, req, resp);
}

const engine_def order_engine = {
	.name = "order",
	.needs_store = 1,
	.create = order_create,
	.handle = order_handle,
	.tick = order_tick,
	.ready = NULL,
	.destroy = order_destroy,
};
