/* payment: payments through the Stripe and PayPal adapters, idempotent on
 * payment_id; the providers' webhooks. */
#include "services/payment.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/router.h"
#include "services/provider.h"
#include "services/webhook.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX ENGINE_ID_MAX
#define TOKEN_MAX 255
/* Stripe's largest amount: refused here with a 400 rather than by Stripe. */
#define AMOUNT_MAX 99999999LL
/* Attempts of one transaction when the database says "busy" or "serialize
 * again". */
#define TXN_TRIES 3
/* Rounds of "look at the payment, act, record" per request: one to resolve
 * a PENDING authorisation, one to act, one to answer from the new state,
 * and some for requests racing on the same payment. */
#define OP_ROUNDS 6
/* Refunds listed by GET. */
#define REFUNDS_LISTED 100
/* A transaction body's "the payment is not as this request saw it; nothing
 * written, look again": not an error. */
#define TXN_MOVED 1
/* The prefix of refund ids the service makes up; callers' may not use it. */
#define AUTO_REFUND "auto-"

/* The largest webhook body taken (http.body_limit usually refuses sooner). */
#define WEBHOOK_BODY_MAX (256 * 1024)

typedef struct payment_svc {
	engine_ctx *ctx;
	router *rt;
	providers prov;
	char stripe_whsec[256];  /* stripe.webhook_secret; "": webhooks refused */
	char paypal_whsec[256];  /* paypal.webhook_secret */
	int64_t tolerance_s;     /* payment.webhook_tolerance_s */
} payment_svc;

/* A payments row, less the stored answer. */
typedef struct pay_row {
	char payment_id[ID_MAX + 1];
	char order_id[ID_MAX + 1];
	int status;
	char provider[16];
	char method[16];
	char token[TOKEN_MAX + 1];
	int64_t amount, captured, refunded;
	char currency[4];
	char provider_ref[64];
	char capture_ref[64];
	char decline_code[64];
	char failure_code[64];
	int64_t created_at, updated_at;
} pay_row;

/* ---- the state machine ------------------------------------------------------- */

static const char *const state_names[PAYMENT_NSTATES] = {
	"PENDING", "AUTHORIZED", "DECLINED", "FAILED", "CAPTURED", "VOIDED", "REFUNDED",
};

/* The event a move into each state writes ("payment.<state>"). */
static const char *const state_events[PAYMENT_NSTATES] = {
	NULL,		    "payment.authorized", "payment.declined", "payment.failed",
	"payment.captured", "payment.voided",	  "payment.refunded",
};

const char *payment_state_name(int state)
{
	return state >= 0 && state < PAYMENT_NSTATES ? state_names[state] : "?";
}

int payment_state_parse(const char *name)
{
	for (int i = 0; name && i < PAYMENT_NSTATES; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}

int payment_state_edge(int from, int to)
{
	int ok = 0;
	switch (from) {
	case PAYMENT_PENDING:
		ok = to == PAYMENT_AUTHORIZED || to == PAYMENT_DECLINED || to == PAYMENT_FAILED;
		break;
	case PAYMENT_AUTHORIZED:
		/* DECLINED: the provider declined the capture (PayPal). */
		ok = to == PAYMENT_CAPTURED || to == PAYMENT_VOIDED || to == PAYMENT_DECLINED;
		break;
	case PAYMENT_CAPTURED:
		ok = to == PAYMENT_REFUNDED;
		break;
	default:
		break;
	}
	return ok ? 0 : ERR_STATE;
}

/* ---- validation -------------------------------------------------------------- */

/* Printable ASCII without spaces: a token goes into a form field and into
 * the fingerprint, where a newline separates fields. */
static int valid_token(const char *s)
{
	for (; *s; s++)
		if (*s < 0x21 || *s > 0x7e)
			return 0;
	return 1;
}

static int valid_currency(const char *s)
{
	return s && strlen(s) == 3 && isupper((unsigned char)s[0]) &&
	       isupper((unsigned char)s[1]) && isupper((unsigned char)s[2]);
}

/* ---- the database ---------------------------------------------------------------- */

#define ROW_COLS \
	"payment_id, order_id, status, provider, method, token, amount_cents, currency, " \
	"captured_cents, refunded_cents, provider_ref, decline_code, failure_code, "      \
	"created_at, updated_at, capture_ref"

static void col_copy(store_stmt *st, int col, char *dst, size_t len)
{
	const char *v = store_col_text(st, col);
	snprintf(dst, len, "%s", v ? v : "");
}

/* Reads payment id into *r: STORE_ROW, STORE_DONE when there is none, or an
 * error (ERR_INTERNAL for a status this code does not know). */
static int row_load(payment_svc *p, const char *id, pay_row *r)
{
	int rc = 0;
	store_stmt *st =
		store_prepare(p->ctx->store, "SELECT " ROW_COLS " FROM payments WHERE payment_id = ?",
			      &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, id);
	rc = store_step(st);
	if (rc == STORE_ROW) {
		memset(r, 0, sizeof(*r));
		col_copy(st, 0, r->payment_id, sizeof(r->payment_id));
		col_copy(st, 1, r->order_id, sizeof(r->order_id));
		r->status = payment_state_parse(store_col_text(st, 2));
		col_copy(st, 3, r->provider, sizeof(r->provider));
		col_copy(st, 4, r->method, sizeof(r->method));
		col_copy(st, 5, r->token, sizeof(r->token));
		r->amount = store_col_int(st, 6);
		col_copy(st, 7, r->currency, sizeof(r->currency));
		r->captured = store_col_int(st, 8);
		r->refunded = store_col_int(st, 9);
		col_copy(st, 10, r->provider_ref, sizeof(r->provider_ref));
		col_copy(st, 11, r->decline_code, sizeof(r->decline_code));
		col_copy(st, 12, r->failure_code, sizeof(r->failure_code));
		r->created_at = store_col_int(st, 13);
		r->updated_at = store_col_int(st, 14);
		col_copy(st, 15, r->capture_ref, sizeof(r->capture_ref));
		if (r->status < 0) {
			log_error(p->ctx->log, "payment %s: unknown status in the database", id);
			rc = ERR_INTERNAL;
		}
	}
	store_reset(st);
	return rc;
}

/* row_load where the payment must exist: 0 with *r, or an error (a
 * payment that vanished is ERR_INTERNAL: payments are never deleted). */
static int row_get(payment_svc *p, const char *id, pay_row *r)
{
	int rc = row_load(p, id, r);
	return rc == STORE_ROW ? 0 : rc < 0 ? rc : ERR_INTERNAL;
}

/* The stored fingerprint and first answer of payment id (malloc'd; the
 * caller frees both): STORE_ROW, STORE_DONE or an error. *status is 0 while
 * no final answer is stored. */
static int answer_load(payment_svc *p, const char *id, char **fingerprint, int *status,
		       char **body)
{
	*fingerprint = *body = NULL;
	int rc = 0;
	store_stmt *st = store_prepare(
		p->ctx->store,
		"SELECT fingerprint, response_status, response FROM payments WHERE payment_id = ?",
		&rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, id);
	rc = store_step(st);
	if (rc == STORE_ROW) {
		const char *fp = store_col_text(st, 0), *b = store_col_text(st, 2);
		*status = (int)store_col_int(st, 1);
		*fingerprint = strdup(fp ? fp : "");
		*body = strdup(b ? b : "");
		if (!*fingerprint || !*body)
			rc = ERR_NOMEM;
	}
	store_reset(st);
	if (rc < 0) {
		free(*fingerprint);
		free(*body);
		*fingerprint = *body = NULL;
	}
	return rc;
}

/* Writes the mutable columns of after over the row, but only while the row
 * still holds before's status and refunded_cents: ERR_RETRY when another
 * transaction changed it first (the transaction runs again and sees it). */
static int row_update(payment_svc *p, const pay_row *before, const pay_row *after)
{
	int rc = 0;
	store_stmt *st = store_prepare(
		p->ctx->store,
		"UPDATE payments SET status = ?, captured_cents = ?, refunded_cents = ?, "
		"provider_ref = ?, decline_code = ?, failure_code = ?, updated_at = ?, "
		"capture_ref = ? WHERE payment_id = ? AND status = ? AND refunded_cents = ?",
		&rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, state_names[after->status]);
	store_bind_int(st, 2, after->captured);
	store_bind_int(st, 3, after->refunded);
	store_bind_text(st, 4, after->provider_ref);
	store_bind_text(st, 5, after->decline_code);
	store_bind_text(st, 6, after->failure_code);
	store_bind_int(st, 7, after->updated_at);
	store_bind_text(st, 8, after->capture_ref);
	store_bind_text(st, 9, before->payment_id);
	store_bind_text(st, 10, state_names[before->status]);
	store_bind_int(st, 11, before->refunded);
	rc = store_step(st);
	int64_t changed = rc >= 0 ? store_changes(st) : 0;
	store_reset(st);
	if (rc < 0)
		return rc;
	return changed == 1 ? 0 : ERR_RETRY;
}

/* One event on topic "payments", keyed by the payment: the payment's
 * figures after the change, plus the refund's when refund_id is set. */
static int outbox_put(payment_svc *p, const char *type, const pay_row *r, const char *refund_id,
		      int64_t refund_cents)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:s}", "type", type, "payment_id",
			      r->payment_id, "order_id", r->order_id, "status",
			      state_names[r->status], "amount_cents", (json_int_t)r->amount,
			      "currency", r->currency, "captured_cents", (json_int_t)r->captured,
			      "refunded_cents", (json_int_t)r->refunded, "provider_ref",
			      r->provider_ref);
	if (o && r->status == PAYMENT_DECLINED)
		json_object_set_new(o, "decline_code", json_string(r->decline_code));
	if (o && refund_id) {
		json_object_set_new(o, "refund_id", json_string(refund_id));
		json_object_set_new(o, "refund_cents", json_integer(refund_cents));
	}
	char *payload = o ? jval_dump(o) : NULL;
	json_decref(o);
	if (!payload)
		return ERR_NOMEM;
	int rc = 0;
	store_stmt *st = store_prepare(
		p->ctx->store,
		"INSERT INTO outbox (topic, key, payload, created_at, traceparent) "
		"VALUES (?, ?, ?, ?, ?)", &rc);
	if (st) {
		char tp[TRACE_PARENT_SIZE];
		store_bind_text(st, 1, "payments");
		store_bind_text(st, 2, r->payment_id);
		store_bind_text(st, 3, payload);
		store_bind_int(st, 4, r->updated_at);
		store_bind_text(st, 5, engine_traceparent(p->ctx, tp, sizeof(tp)));
		rc = store_step(st);
		store_reset(st);
	}
	free(payload);
	if (!st)
		return rc ? rc : ERR_STORE;
	return rc < 0 ? rc : 0;
}

/* Moves the payment from before (as this transaction read it) to after:
 * refuses and logs an edge outside the state machine (ERR_STATE), changes
 * the row only while it is still before (ERR_RETRY otherwise), logs
 * "A -> B" and writes the state's event, all in the caller's
 * transaction. */
static int set_state(payment_svc *p, const pay_row *before, const pay_row *after)
{
	if (payment_state_edge(before->status, after->status) != 0) {
		log_error(p->ctx->log, "payment %s: illegal transition %s -> %s refused",
			  before->payment_id, payment_state_name(before->status),
			  payment_state_name(after->status));
		return ERR_STATE;
	}
	int rc = row_update(p, before, after);
	if (rc == 0)
		rc = outbox_put(p, state_events[after->status], after, NULL, 0);
	if (rc == 0)
		log_info(p->ctx->log, "payment %s: %s -> %s", before->payment_id,
			 state_names[before->status], state_names[after->status]);
	return rc;
}

/* ---- answers ------------------------------------------------------------------------ */

static json_t *payment_json(const pay_row *r)
{
	char created[40], updated[40];
	clock_fmt_rfc3339(r->created_at, created, sizeof(created));
	clock_fmt_rfc3339(r->updated_at, updated, sizeof(updated));
	json_t *o = json_pack(
		"{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:I,s:o,s:s,s:s}", "payment_id", r->payment_id,
		"order_id", r->order_id, "status", payment_state_name(r->status), "provider",
		r->provider, "method", r->method, "amount_cents", (json_int_t)r->amount, "currency",
		r->currency, "captured_cents", (json_int_t)r->captured, "refunded_cents",
		(json_int_t)r->refunded, "provider_ref",
		r->provider_ref[0] ? json_string(r->provider_ref) : json_null(), "created_at",
		created, "updated_at", updated);
	if (o && r->status == PAYMENT_DECLINED)
		json_object_set_new(o, "decline_code", json_string(r->decline_code));
	if (o && r->status == PAYMENT_FAILED)
		json_object_set_new(o, "failure_code", json_string(r->failure_code));
	if (o && r->capture_ref[0])
		json_object_set_new(o, "capture_ref", json_string(r->capture_ref));
	return o;
}

static void reply_payment(msg_resp *resp, int status, const pay_row *r)
{
	msg_resp_json(resp, status, payment_json(r));
}

static void no_payment(msg_resp *resp, const char *id)
{
	char msg[160];
	snprintf(msg, sizeof(msg), "no payment '%s'", id);
	msg_resp_error(resp, 404, "not_found", msg, json_pack("{s:s}", "payment_id", id));
}

/* 503: the provider's answer is unknown or transient; the payment is as it
 * was (status), and the same request may be sent again. */
static void reply_unavailable(msg_resp *resp, const pay_row *r, const char *why)
{
	char msg[400];
	snprintf(msg, sizeof(msg),
		 "the payment provider did not give an answer (%s); the payment is %s, send the "
		 "same request again",
		 why, payment_state_name(r->status));
	msg_resp_error(resp, 503, "unavailable", msg,
		       json_pack("{s:s,s:s,s:s}", "payment_id", r->payment_id, "status",
				 payment_state_name(r->status), "provider", r->provider));
	msg_resp_set_header(resp, "Retry-After", "1");
}

/* 503 after OP_ROUNDS: other requests kept moving the payment. */
static void reply_changing(msg_resp *resp, const char *id)
{
	msg_resp_error(resp, 503, "unavailable", "the payment is changing; try again",
		       json_pack("{s:s}", "payment_id", id));
	msg_resp_set_header(resp, "Retry-After", "1");
}

/* 422 provider_rejected: the provider refused the request itself. */
static void reply_rejected(msg_resp *resp, const pay_row *r, const provider_result *sr)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "the payment provider refused the request: %s", sr->message);
	const char *code = sr->error_code[0] ? sr->error_code
			   : sr->error_type[0] ? sr->error_type
					       : "rejected";
	msg_resp_error(resp, 422, "provider_rejected", msg,
		       json_pack("{s:s,s:s,s:s}", "payment_id", r->payment_id, "status",
				 payment_state_name(r->status), "provider_code", code));
}

static void reply_conflict(msg_resp *resp, const pay_row *r, const char *what, const char *hint)
{
	char msg[300];
	snprintf(msg, sizeof(msg), "payment '%s' is %s and cannot be %s%s", r->payment_id,
		 payment_state_name(r->status), what, hint);
	msg_resp_error(resp, 409, "conflict", msg,
		       json_pack("{s:s,s:s}", "payment_id", r->payment_id, "status",
				 payment_state_name(r->status)));
}

static void count_call(payment_svc *p, const char *provider, const char *op, const char *outcome)
{
	char labels[128];
	snprintf(labels, sizeof(labels), "provider=\"%s\",op=\"%s\",outcome=\"%s\"", provider, op,
		 outcome);
	metrics_count(p->ctx->metrics, "payment_provider_calls_total", labels, 1);
}

/* Sends op to the provider's outcome counter and, for an outcome that
 * leaves the payment as it was, fills resp: 503 for a transient failure or
 * a call the adapter refused to make (its configuration), 422 for a
 * refusal when refuse is set. Returns 0 when the caller goes on with sr. */
static int provider_answered(payment_svc *p, const char *op, int rc, const provider_result *sr,
			     const pay_row *r, int refuse, msg_resp *resp)
{
	count_call(p, r->provider, op, rc ? "not_sent" : provider_outcome_name(sr->outcome));
	if (rc) {
		/* Nothing was sent: the adapter's configuration (key, URL). */
		log_error(p->ctx->log, "payment %s: %s not sent: %s", r->payment_id, op, sr->message);
		reply_unavailable(resp, r, "the payment provider is not configured");
		return ERR_UNAVAILABLE;
	}
	if (sr->outcome == PROVIDER_FAILED) {
		reply_unavailable(resp, r, sr->message);
		return ERR_UNAVAILABLE;
	}
	if (refuse && sr->outcome != PROVIDER_OK) {
		reply_rejected(resp, r, sr);
		return ERR_INVALID;
	}
	return 0;
}

/* ---- authorising ---------------------------------------------------------------------- */

typedef struct auth_req {
	const char *payment_id;
	const char *order_id;
	int64_t amount;
	const char *currency;
	const char *method;
	const char *token;
	char fingerprint[ID_MAX + TOKEN_MAX + 64];
} auth_req;

/* Reads and checks the body of POST /v1/payments into a. Fills resp with
 * 400 naming the field on a bad one. */
static int auth_parse(json_t *body, auth_req *a, msg_resp *resp)
{
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "payment_id", 1, 1, ID_MAX, &a->payment_id, &e) ||
	    (!engine_valid_id(a->payment_id) && jval_fail(&e, "payment_id", "%s", ENGINE_ID_RULE)) ||
	    jval_str(body, "order_id", 1, 1, ID_MAX, &a->order_id, &e) ||
	    (!engine_valid_id(a->order_id) && jval_fail(&e, "order_id", "%s", ENGINE_ID_RULE)) ||
	    jval_int(body, "amount_cents", 1, 1, AMOUNT_MAX, &a->amount, NULL, &e) ||
	    jval_str(body, "currency", 1, 3, 3, &a->currency, &e) ||
	    (!valid_currency(a->currency) &&
	     jval_fail(&e, "currency", "must be a three-letter ISO 4217 code in capitals (USD)")) ||
	    jval_str(body, "method", 1, 1, 16, &a->method, &e) ||
	    (!provider_for_method(a->method) &&
	     jval_fail(&e, "method", "must be " PROVIDER_METHODS)) ||
	    jval_str(body, "token", 1, 1, TOKEN_MAX, &a->token, &e) ||
	    (!valid_token(a->token) &&
	     jval_fail(&e, "token", "must be printable ASCII without spaces")))
		return engine_bad_field(resp, e.field, e.message);
	/* Fields cannot hold a newline, so this form is unambiguous. */
	snprintf(a->fingerprint, sizeof(a->fingerprint), "%s\n%lld\n%s\n%s\n%s", a->order_id,
		 (long long)a->amount, a->currency, a->method, a->token);
	return 0;
}

typedef struct claim_op {
	payment_svc *p;
	const auth_req *a;
	int64_t now;
	int inserted; /* out */
} claim_op;

/* Inserts the payment as PENDING unless its id is taken: concurrent
 * duplicates meet at the primary key. */
static int claim_body(void *arg)
{
	claim_op *op = arg;
	payment_svc *p = op->p;
	const auth_req *a = op->a;
	int rc = 0;
	store_stmt *st = store_prepare(
		p->ctx->store,
		"INSERT INTO payments (payment_id, order_id, status, provider, method, token, "
		"amount_cents, currency, fingerprint, created_at, updated_at) "
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (payment_id) DO NOTHING",
		&rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, a->payment_id);
	store_bind_text(st, 2, a->order_id);
	store_bind_text(st, 3, state_names[PAYMENT_PENDING]);
	store_bind_text(st, 4, provider_for_method(a->method));
	store_bind_text(st, 5, a->method);
	store_bind_text(st, 6, a->token);
	store_bind_int(st, 7, a->amount);
	store_bind_text(st, 8, a->currency);
	store_bind_text(st, 9, a->fingerprint);
	store_bind_int(st, 10, op->now);
	store_bind_int(st, 11, op->now);
	rc = store_step(st);
	op->inserted = rc >= 0 && store_changes(st) == 1;
	store_reset(st);
	if (rc == ERR_CONFLICT) {
		op->inserted = 0;
		return 0;
	}
	return rc < 0 ? rc : 0;
}

typedef struct auth_apply {
	payment_svc *p;
	const char *id;
	const provider_result *sr;
	int64_t now;
} auth_apply;

/* Records the provider's final answer to a PENDING payment's authorisation
 * and the answer POST /v1/payments gives from now on. TXN_MOVED when the
 * payment is no longer PENDING (another request recorded it first). */
static int auth_apply_body(void *arg)
{
	auth_apply *op = arg;
	payment_svc *p = op->p;
	const provider_result *sr = op->sr;
	pay_row before, after;
	int rc = row_get(p, op->id, &before);
	if (rc)
		return rc;
	if (before.status != PAYMENT_PENDING)
		return TXN_MOVED;
	after = before;
	after.updated_at = op->now;
	snprintf(after.provider_ref, sizeof(after.provider_ref), "%.63s", sr->ref);
	if (sr->outcome == PROVIDER_OK && sr->state == PAYMENT_AUTHORIZED) {
		after.status = PAYMENT_AUTHORIZED;
	} else if (sr->outcome == PROVIDER_DECLINED) {
		after.status = PAYMENT_DECLINED;
		snprintf(after.decline_code, sizeof(after.decline_code), "%.63s", sr->decline_code);
	} else {
		/* Refused outright, or an intent this service cannot complete
		 * (one that needs the customer's action, say). */
		after.status = PAYMENT_FAILED;
		snprintf(after.failure_code, sizeof(after.failure_code), "%.63s",
			 sr->error_code[0]   ? sr->error_code
			 : sr->error_type[0] ? sr->error_type
					     : "rejected");
	}
	if ((rc = set_state(p, &before, &after)) != 0)
		return rc;
	msg_resp answer;
	msg_resp_init(&answer);
	if (after.status == PAYMENT_FAILED) {
		provider_result why = *sr;
		snprintf(why.error_code, sizeof(why.error_code), "%.63s", after.failure_code);
		reply_rejected(&answer, &after, &why);
	} else {
		reply_payment(&answer, 201, &after);
	}
	store_stmt *st = store_prepare(p->ctx->store,
				       "UPDATE payments SET response_status = ?, response = ? "
				       "WHERE payment_id = ?",
				       &rc);
	if (st && answer.body) {
		store_bind_int(st, 1, answer.status);
		store_bind_text(st, 2, answer.body);
		store_bind_text(st, 3, op->id);
		rc = store_step(st);
		store_reset(st);
	} else if (st) {
		store_reset(st);
		rc = ERR_NOMEM;
	}
	msg_resp_clear(&answer);
	if (!st)
		return rc ? rc : ERR_STORE;
	return rc < 0 ? rc : 0;
}

/* Sends the authorisation of the PENDING payment r (again: the same
 * parameters under the same idempotency key, so the provider makes at most
 * one) and records a final answer. 0 when one is recorded, by this request
 * or another; otherwise resp is filled (503 while the answer is unknown, or
 * a store error) and the payment stays PENDING. */
static int authorize_pending(payment_svc *p, const pay_row *r, msg_resp *resp)
{
	char key[ID_MAX + 16];
	snprintf(key, sizeof(key), "%s-authorize", r->payment_id);
	provider_result sr;
	int rc = provider_authorize(&p->prov, r->provider, key, r->amount, r->currency, r->token,
				    r->payment_id, &sr);
	if (provider_answered(p, "authorize", rc, &sr, r, 0, resp) != 0)
		return ERR_UNAVAILABLE;
	auth_apply op = { .p = p, .id = r->payment_id, .sr = &sr, .now = clock_now(p->ctx->clock) };
	rc = store_txn(p->ctx->store, TXN_TRIES, auth_apply_body, &op);
	if (rc < 0) {
		engine_store_error(p->ctx, resp, rc, "record authorisation");
		return rc;
	}
	return 0;
}

static void create_payment(void *ud, msg_req *req, msg_resp *resp)
{
	payment_svc *p = ud;
	if (engine_require_service(p->ctx, req, resp))
		return;
	json_t *body;
	if (engine_json_body(req, resp, &body))
		return;
	auth_req a;
	memset(&a, 0, sizeof(a));
	if (auth_parse(body, &a, resp))
		goto done;
	claim_op claim = { .p = p, .a = &a, .now = clock_now(p->ctx->clock) };
	int rc = store_txn(p->ctx->store, TXN_TRIES, claim_body, &claim);
	if (rc) {
		engine_store_error(p->ctx, resp, rc, "create payment");
		goto done;
	}
	for (int round = 0; round < OP_ROUNDS; round++) {
		char *fp = NULL, *answer = NULL;
		int status = 0;
		rc = answer_load(p, a.payment_id, &fp, &status, &answer);
		int same = rc == STORE_ROW && strcmp(fp, a.fingerprint) == 0;
		if (rc == STORE_ROW && !same) {
			msg_resp_error(resp, 422, "idempotency_mismatch",
				       "this payment_id was used for a different payment",
				       json_pack("{s:s}", "payment_id", a.payment_id));
		} else if (same && status != 0) {
			msg_resp_set(resp, status, "application/json", answer, strlen(answer));
			if (round == 0)
				metrics_count(p->ctx->metrics, "payment_replays_total", NULL, 1);
		}
		free(fp);
		free(answer);
		if (rc == STORE_DONE)
			rc = ERR_INTERNAL; /* payments are never deleted */
		if (rc < 0) {
			engine_store_error(p->ctx, resp, rc, "read payment");
			goto done;
		}
		if (!same || status != 0)
			goto done;
		/* PENDING with no answer yet: new, or left by a failure. */
		pay_row r;
		if ((rc = row_get(p, a.payment_id, &r)) != 0) {
			engine_store_error(p->ctx, resp, rc, "read payment");
			goto done;
		}
		if (r.status == PAYMENT_PENDING && authorize_pending(p, &r, resp) != 0)
			goto done;
	}
	reply_changing(resp, a.payment_id);
done:
	json_decref(body);
}

/* ---- capture and void ------------------------------------------------------------------ */

typedef struct move_op {
	payment_svc *p;
	const char *id;
	int from;
	pay_row to; /* the row to write (its status the target) */
} move_op;

/* Moves the payment from op->from to op->to while it is still in from;
 * TXN_MOVED when it is not. */
static int move_body(void *arg)
{
	move_op *op = arg;
	payment_svc *p = op->p;
	pay_row before;
	int rc = row_get(p, op->id, &before);
	if (rc)
		return rc;
	if (before.status != op->from)
		return TXN_MOVED;
	op->to.refunded = before.refunded;
	return set_state(p, &before, &op->to);
}

/* Records that the AUTHORIZED payment r is now in state to, as the
 * provider's answer pr says (CAPTURED: the amount captured and the capture;
 * DECLINED: the decline code). TXN_MOVED (look again) or a store error
 * with resp filled. */
static int move(payment_svc *p, const pay_row *r, int to, const provider_result *pr,
		msg_resp *resp)
{
	move_op op = { .p = p, .id = r->payment_id, .from = r->status, .to = *r };
	op.to.status = to;
	op.to.updated_at = clock_now(p->ctx->clock);
	if (to == PAYMENT_CAPTURED) {
		op.to.captured = pr->amount > 0 && pr->amount <= r->amount ? pr->amount : r->amount;
		if (pr->capture_ref[0])
			snprintf(op.to.capture_ref, sizeof(op.to.capture_ref), "%s", pr->capture_ref);
	}
	if (to == PAYMENT_DECLINED)
		snprintf(op.to.decline_code, sizeof(op.to.decline_code), "%.63s",
			 pr->decline_code[0] ? pr->decline_code : "capture_declined");
	int rc = store_txn(p->ctx->store, TXN_TRIES, move_body, &op);
	if (rc < 0) {
		engine_store_error(p->ctx, resp, rc, "record payment");
		return rc;
	}
	return TXN_MOVED;
}

#define STATE_BIT(s) (1u << (s))

/* Capture and void: an action on the authorisation, done once. */
typedef struct intent_action {
	const char *name;    /* the idempotency key's suffix and the metric's op */
	const char *past;    /* for the 409 */
	const char *hint;
	unsigned done;       /* the states in which it is answered 200 as they are */
	int target;          /* the state it moves an AUTHORIZED payment to */
	int (*send)(providers *, const char *, const char *, const char *, provider_result *);
} intent_action;

static const intent_action CAPTURE = {
	"capture", "captured", "", STATE_BIT(PAYMENT_CAPTURED) | STATE_BIT(PAYMENT_REFUNDED),
	PAYMENT_CAPTURED, provider_capture,
};
/* A DECLINED or FAILED payment holds nothing: the void's aim is met. */
static const intent_action VOID = {
	"void", "voided", "; refund it instead",
	STATE_BIT(PAYMENT_VOIDED) | STATE_BIT(PAYMENT_DECLINED) | STATE_BIT(PAYMENT_FAILED),
	PAYMENT_VOIDED, provider_void,
};

/* One round of a capture or void: answers (0, resp filled) or changes the
 * payment and asks for another look (TXN_MOVED). */
static int intent_step(payment_svc *p, const pay_row *r, const intent_action *act,
		       msg_resp *resp)
{
	if (act->done & STATE_BIT(r->status)) {
		reply_payment(resp, 200, r);
		return 0;
	}
	if (r->status != PAYMENT_AUTHORIZED) {
		reply_conflict(resp, r, act->past, act->hint);
		return 0;
	}
	char key[ID_MAX + 16];
	snprintf(key, sizeof(key), "%s-%s", r->payment_id, act->name);
	provider_result sr;
	int rc = act->send(&p->prov, r->provider, key, r->provider_ref, &sr);
	if (provider_answered(p, act->name, rc, &sr, r, 0, resp) != 0)
		return 0;
	/* A declined capture (PayPal) holds nothing any more; a refusal that
	 * tells where the payment stands is news to record. */
	int to = sr.outcome == PROVIDER_OK	  ? act->target
		 : sr.outcome == PROVIDER_DECLINED ? (act->target == PAYMENT_CAPTURED ? PAYMENT_DECLINED : -1)
						  : sr.state;
	if (to != PAYMENT_CAPTURED && to != PAYMENT_VOIDED && to != PAYMENT_DECLINED) {
		reply_rejected(resp, r, &sr);
		return 0;
	}
	return move(p, r, to, &sr, resp) == TXN_MOVED ? TXN_MOVED : 0;
}

/* ---- refunds ---------------------------------------------------------------------------- */

typedef struct refund_args {
	int64_t amount; /* 0: all that is left */
	const char *refund_id; /* NULL: made up */
} refund_args;

/* The amount of refund refund_id of payment id: STORE_ROW with *amount,
 * STORE_DONE, or an error. */
static int refund_find(payment_svc *p, const char *id, const char *refund_id, int64_t *amount)
{
	int rc = 0;
	store_stmt *st = store_prepare(
		p->ctx->store,
		"SELECT amount_cents FROM payment_refunds WHERE payment_id = ? AND refund_id = ?",
		&rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, id);
	store_bind_text(st, 2, refund_id);
	rc = store_step(st);
	if (rc == STORE_ROW)
		*amount = store_col_int(st, 0);
	store_reset(st);
	return rc;
}

/* The refunds of payment id: all of them, or (own) those this service
 * asked for (a refund a webhook brought is recorded under the provider's
 * id, refund_id = provider_ref, until this service's own request for it is
 * recorded). */
static int refund_count(payment_svc *p, const char *id, int own, int64_t *n)
{
	*n = 0;
	return store_intf(p->ctx->store, n,
			  own ? "SELECT COUNT(*) FROM payment_refunds WHERE payment_id = ? AND "
				"refund_id <> provider_ref"
			      : "SELECT COUNT(*) FROM payment_refunds WHERE payment_id = ?",
			  "t", id);
}

typedef struct refund_op {
	payment_svc *p;
	const char *id;
	const char *refund_id;
	int64_t amount;
	const char *provider_ref; /* the refund's ("re_...", PayPal's refund id) */
	const char *capture_ref;  /* the capture refunded, when the payment lacks it */
	int64_t now;
	pay_row after; /* out */
	int known;     /* out: the refund was recorded before (nothing changed) */
} refund_op;

/* The refund_id of payment id's refund whose provider_ref is ref, into
 * out: STORE_ROW, STORE_DONE, or an error. */
static int refund_by_ref(payment_svc *p, const char *id, const char *ref, char *out, size_t len)
{
	int rc = 0;
	store_stmt *st = store_queryf(p->ctx->store,
				      "SELECT refund_id FROM payment_refunds WHERE payment_id = ? AND "
				      "provider_ref = ?",
				      &rc, "tt", id, ref);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	if (rc == STORE_ROW)
		col_copy(st, 0, out, len);
	store_reset(st);
	return rc;
}

/* Records a refund the provider made, in the caller's transaction: the
 * refund row, refunded_cents, REFUNDED once everything captured is
 * refunded, and the event. 0, with op->known set when the refund is there
 * already (its refund_id, or its provider_ref: a webhook may have brought
 * it first, in which case it takes this request's refund_id, so that the
 * refunds this service asked for keep being counted right); TXN_MOVED
 * when a concurrent transaction inserted it (roll back and look again);
 * ERR_STATE, nothing written, when it does not fit the payment as the
 * transaction reads it (not CAPTURED, or more than is left). */
static int refund_record(payment_svc *p, refund_op *op)
{
	pay_row before;
	int rc = row_get(p, op->id, &before);
	if (rc)
		return rc;
	op->known = 0;
	op->after = before;
	int64_t had = 0;
	/* A refund recorded already: the payment is answered as it is now. On
	 * PostgreSQL (READ COMMITTED) each statement sees what committed
	 * before it, so the refund row found here may be newer than the
	 * payment row read above: read the row again. */
	if ((rc = refund_find(p, op->id, op->refund_id, &had)) != STORE_DONE) {
		if (rc != STORE_ROW)
			return rc;
		op->known = 1;
		return row_get(p, op->id, &op->after);
	}
	char existing[ID_MAX + 1] = "";
	if (op->provider_ref && op->provider_ref[0] &&
	    (rc = refund_by_ref(p, op->id, op->provider_ref, existing, sizeof(existing))) !=
		    STORE_DONE) {
		if (rc != STORE_ROW)
			return rc;
		op->known = 1;
		if (strcmp(existing, op->provider_ref) == 0 && strcmp(op->refund_id, existing) != 0) {
			log_info(p->ctx->log, "payment %s: refund %s is the %s a webhook brought",
				 op->id, op->refund_id, existing);
			rc = store_runf(p->ctx->store,
					"UPDATE payment_refunds SET refund_id = ? WHERE payment_id = ? "
					"AND refund_id = ?",
					NULL, "ttt", op->refund_id, op->id, existing);
			if (rc)
				return rc;
		}
		return row_get(p, op->id, &op->after);
	}
	if (before.status != PAYMENT_CAPTURED || before.refunded + op->amount > before.captured) {
		log_warn(p->ctx->log,
			 "payment %s: a refund of %lld does not fit a %s payment with %lld of %lld "
			 "refunded",
			 op->id, (long long)op->amount, state_names[before.status],
			 (long long)before.refunded, (long long)before.captured);
		return ERR_STATE;
	}
	int64_t n = 0;
	if ((rc = refund_count(p, op->id, 0, &n)) != 0)
		return rc;
	store_stmt *st = store_prepare(p->ctx->store,
				       "INSERT INTO payment_refunds (payment_id, refund_id, seq, "
				       "amount_cents, provider_ref, created_at) VALUES (?, ?, ?, ?, ?, ?) "
				       "ON CONFLICT (payment_id, refund_id) DO NOTHING",
				       &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, op->id);
	store_bind_text(st, 2, op->refund_id);
	store_bind_int(st, 3, n + 1);
	store_bind_int(st, 4, op->amount);
	store_bind_text(st, 5, op->provider_ref ? op->provider_ref : "");
	store_bind_int(st, 6, op->now);
	rc = store_step(st);
	int inserted = rc >= 0 && store_changes(st) == 1;
	store_reset(st);
	if (rc < 0 && rc != ERR_CONFLICT)
		return rc;
	if (!inserted)
		return TXN_MOVED; /* a concurrent insert; rolled back, look again */
	pay_row *after = &op->after;
	*after = before;
	after->refunded += op->amount;
	after->updated_at = op->now;
	if (!after->capture_ref[0] && op->capture_ref)
		snprintf(after->capture_ref, sizeof(after->capture_ref), "%s", op->capture_ref);
	if (after->refunded == after->captured) {
		after->status = PAYMENT_REFUNDED;
		rc = set_state(p, &before, after);
	} else {
		rc = row_update(p, &before, after);
	}
	/* set_state wrote the state's event; a partial refund writes its
	 * own. Both carry the refund. */
	if (rc == 0 && after->status == PAYMENT_CAPTURED)
		rc = outbox_put(p, "payment.refunded", after, op->refund_id, op->amount);
	if (rc == 0)
		log_info(p->ctx->log, "payment %s: refund %s of %lld (%lld of %lld refunded)", op->id,
			 op->refund_id, (long long)op->amount, (long long)after->refunded,
			 (long long)after->captured);
	return rc;
}

/* A refund this service asked for: the provider decided that it fits, so
 * one that does not fit the row is a bug somewhere. */
static int refund_body(void *arg)
{
	refund_op *op = arg;
	int rc = refund_record(op->p, op);
	return rc == ERR_STATE ? ERR_INTERNAL : rc;
}

static int refund_step(payment_svc *p, const pay_row *r, const refund_args *a, msg_resp *resp)
{
	if (a->refund_id) {
		int64_t had = 0;
		int rc = refund_find(p, r->payment_id, a->refund_id, &had);
		if (rc < 0) {
			engine_store_error(p->ctx, resp, rc, "read refund");
			return 0;
		}
		if (rc == STORE_ROW) {
			if (a->amount && a->amount != had)
				msg_resp_error(resp, 422, "idempotency_mismatch",
					       "this refund_id was used for another amount",
					       json_pack("{s:s,s:s,s:I}", "payment_id", r->payment_id,
							 "refund_id", a->refund_id, "amount_cents",
							 (json_int_t)had));
			else
				reply_payment(resp, 200, r);
			return 0;
		}
	}
	if (r->status == PAYMENT_REFUNDED && !a->amount && !a->refund_id) {
		reply_payment(resp, 200, r); /* "refund everything" is done */
		return 0;
	}
	if (r->status != PAYMENT_CAPTURED) {
		reply_conflict(resp, r, "refunded",
			       r->status == PAYMENT_AUTHORIZED ? "; void it instead"
			       : r->status == PAYMENT_REFUNDED ? ": nothing is left to refund"
							       : ": nothing was captured");
		return 0;
	}
	int64_t left = r->captured - r->refunded;
	int64_t amount = a->amount ? a->amount : left;
	if (amount > left) {
		char msg[200];
		snprintf(msg, sizeof(msg), "cannot refund %lld of payment '%s': %lld is left to refund",
			 (long long)amount, r->payment_id, (long long)left);
		msg_resp_error(resp, 409, "conflict", msg,
			       json_pack("{s:s,s:s,s:I}", "payment_id", r->payment_id, "status",
					 payment_state_name(r->status), "refundable_cents",
					 (json_int_t)left));
		return 0;
	}
	/* A made-up id counts the refunds recorded so far: a refund repeated
	 * after its answer was lost gets the same id and key, so the provider
	 * replays it instead of refunding twice. */
	char rid[ID_MAX + 1];
	if (a->refund_id) {
		snprintf(rid, sizeof(rid), "%s", a->refund_id);
	} else {
		int64_t n = 0;
		int rc = refund_count(p, r->payment_id, 1, &n);
		if (rc) {
			engine_store_error(p->ctx, resp, rc, "count refunds");
			return 0;
		}
		snprintf(rid, sizeof(rid), AUTO_REFUND "%lld", (long long)n + 1);
	}
	char key[2 * ID_MAX + 16], capture_key[ID_MAX + 16];
	snprintf(key, sizeof(key), "%s-refund-%s", r->payment_id, rid);
	snprintf(capture_key, sizeof(capture_key), "%s-capture", r->payment_id);
	provider_result sr;
	int rc = provider_refund(&p->prov, r->provider, key, r->provider_ref, r->capture_ref,
				 capture_key, amount, r->currency, &sr);
	if (provider_answered(p, "refund", rc, &sr, r, 1, resp) != 0)
		return 0;
	refund_op op = { .p = p,
			 .id = r->payment_id,
			 .refund_id = rid,
			 .amount = amount,
			 .provider_ref = sr.refund_ref,
			 .capture_ref = sr.capture_ref[0] ? sr.capture_ref : NULL,
			 .now = clock_now(p->ctx->clock) };
	/* A webhook's record of the same refund, committed meanwhile, rolls
	 * the insert back (the unique provider_ref): once more, and the
	 * refund takes this request's refund_id. */
	rc = store_txn(p->ctx->store, TXN_TRIES, refund_body, &op);
	for (int again = 0; rc == TXN_MOVED && again < 2; again++)
		rc = store_txn(p->ctx->store, TXN_TRIES, refund_body, &op);
	if (rc == 0) {
		reply_payment(resp, 200, &op.after);
		return 0;
	}
	if (rc < 0) {
		engine_store_error(p->ctx, resp, rc, "record refund");
		return 0;
	}
	/* Recorded meanwhile by a request with the same refund_id: its answer. */
	pay_row now;
	rc = row_load(p, r->payment_id, &now);
	if (rc == STORE_ROW)
		reply_payment(resp, 200, &now);
	else
		engine_store_error(p->ctx, resp, rc < 0 ? rc : ERR_INTERNAL, "read payment");
	return 0;
}

/* Reads the optional body of a refund. Fills resp with 400 when bad. */
static int refund_parse(const msg_req *req, msg_resp *resp, refund_args *a, json_t **keep)
{
	memset(a, 0, sizeof(*a));
	*keep = NULL;
	if (!req->body || req->body_len == 0)
		return 0;
	if (engine_json_body(req, resp, keep))
		return ERR_INVALID;
	jval_error e = { { 0 }, { 0 } };
	if (jval_int(*keep, "amount_cents", 0, 1, AMOUNT_MAX, &a->amount, NULL, &e) ||
	    jval_str(*keep, "refund_id", 0, 1, ID_MAX, &a->refund_id, &e) ||
	    (a->refund_id && !engine_valid_id(a->refund_id) &&
	     jval_fail(&e, "refund_id", "%s", ENGINE_ID_RULE)) ||
	    (a->refund_id && strncmp(a->refund_id, AUTO_REFUND, strlen(AUTO_REFUND)) == 0 &&
	     jval_fail(&e, "refund_id", "must not start with '" AUTO_REFUND "'")))
		return engine_bad_field(resp, e.field, e.message);
	return 0;
}

enum op_kind { OP_CAPTURE, OP_VOID, OP_REFUND };

/* capture, void, refund: look at the payment, act, record; again while
 * the payment moves (a PENDING authorisation resolved, a state recorded, a
 * concurrent request's change), and answer from where it stands. */
static void payment_op(payment_svc *p, msg_req *req, msg_resp *resp, enum op_kind kind)
{
	if (engine_require_service(p->ctx, req, resp))
		return;
	const char *id = msg_req_param(req, 0);
	if (!engine_valid_id(id)) {
		no_payment(resp, id ? id : "");
		return;
	}
	refund_args ra = { 0, NULL };
	json_t *body = NULL;
	if (kind == OP_REFUND && refund_parse(req, resp, &ra, &body))
		goto done;
	for (int round = 0; round < OP_ROUNDS; round++) {
		pay_row r;
		int rc = row_load(p, id, &r);
		if (rc == STORE_DONE) {
			no_payment(resp, id);
			goto done;
		}
		if (rc < 0) {
			engine_store_error(p->ctx, resp, rc, "read payment");
			goto done;
		}
		if (r.status == PAYMENT_PENDING) {
			if (authorize_pending(p, &r, resp) != 0)
				goto done;
			continue;
		}
		rc = kind == OP_CAPTURE ? intent_step(p, &r, &CAPTURE, resp)
		     : kind == OP_VOID	? intent_step(p, &r, &VOID, resp)
					: refund_step(p, &r, &ra, resp);
		if (rc != TXN_MOVED)
			goto done;
	}
	reply_changing(resp, id);
done:
	json_decref(body);
}

static void capture_payment(void *ud, msg_req *req, msg_resp *resp)
{
	payment_op(ud, req, resp, OP_CAPTURE);
}

static void void_payment(void *ud, msg_req *req, msg_resp *resp)
{
	payment_op(ud, req, resp, OP_VOID);
}

static void refund_payment(void *ud, msg_req *req, msg_resp *resp)
{
	payment_op(ud, req, resp, OP_REFUND);
}

/* ---- webhooks ------------------------------------------------------------------------------ */

/* What a provider's event asks of a payment. */
enum wh_kind { WH_NONE, WH_CAPTURE, WH_REFUND };

#define WH_REFUNDS_MAX 16

typedef struct wh_refund {
	const char *id; /* the provider's refund id, also the refund_id recorded */
	int64_t amount;
} wh_refund;

/* One event, read from its body (strings borrowed from the parsed body),
 * and what applying it did. */
typedef struct wh_event {
	payment_svc *p;
	const char *provider;
	const char *event_id;
	const char *type;
	enum wh_kind kind;
	const char *ref;         /* the payment's provider_ref */
	const char *capture_ref; /* the capture (PayPal) */
	const char *custom_id;   /* the payment_id (PayPal's custom_id), or NULL */
	int64_t captured;        /* the amount captured, 0 when the event does not say */
	wh_refund refunds[WH_REFUNDS_MAX];
	int nrefunds;
	int64_t refunded_total;  /* -1, or all refunded so far (a charge without its list) */
	int64_t now;
	const char *outcome;     /* out: applied, already, ignored, unknown_payment, duplicate */
	char payment_id[ID_MAX + 1]; /* out */
} wh_event;

static void count_webhook(payment_svc *p, const char *provider, const char *outcome)
{
	char labels[96];
	snprintf(labels, sizeof(labels), "provider=\"%s\",outcome=\"%s\"", provider, outcome);
	metrics_count(p->ctx->metrics, "payment_webhooks_total", labels, 1);
}

static const char *jstr_at(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

/* An id the payment table can hold, or NULL. */
static const char *usable_id(const char *s) { return s && engine_valid_id(s) ? s : NULL; }

/* A non-negative integer member, or -1. */
static int64_t jamount(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) && json_integer_value(v) >= 0 ? (int64_t)json_integer_value(v) : -1;
}

/* Reads a Stripe event: {id, type, data: {object}}. 0, or ERR_INVALID with
 * the field named in e. */
static int stripe_event(json_t *ev, wh_event *w, jval_error *e)
{
	json_t *obj = json_object_get(json_object_get(ev, "data"), "object");
	if (jval_str(ev, "id", 1, 1, 255, &w->event_id, e) ||
	    jval_str(ev, "type", 1, 1, 255, &w->type, e))
		return ERR_INVALID;
	if (!json_is_object(obj))
		return jval_fail(e, "data.object", "must be an object");
	const char *t = w->type;
	if (strcmp(t, "payment_intent.succeeded") == 0) {
		w->kind = WH_CAPTURE;
		w->ref = jstr_at(obj, "id");
		w->captured = jamount(obj, "amount_received");
	} else if (strcmp(t, "charge.captured") == 0) {
		w->kind = WH_CAPTURE;
		w->ref = jstr_at(obj, "payment_intent");
		w->captured = jamount(obj, "amount_captured");
	} else if (strcmp(t, "charge.refunded") == 0) {
		w->kind = WH_REFUND;
		w->ref = jstr_at(obj, "payment_intent");
		w->captured = jamount(obj, "amount_captured");
		json_t *list = json_object_get(json_object_get(obj, "refunds"), "data");
		size_t i;
		json_t *rf;
		json_array_foreach(list, i, rf)
		{
			const char *st = jstr_at(rf, "status");
			if (w->nrefunds < WH_REFUNDS_MAX && st && strcmp(st, "succeeded") == 0 &&
			    usable_id(jstr_at(rf, "id")) && jamount(rf, "amount") > 0)
				w->refunds[w->nrefunds++] =
					(wh_refund){ jstr_at(rf, "id"), jamount(rf, "amount") };
		}
		if (!json_is_array(list))
			w->refunded_total = jamount(obj, "amount_refunded");
	} else if (strcmp(t, "refund.created") == 0 || strcmp(t, "refund.updated") == 0) {
		const char *st = jstr_at(obj, "status");
		w->ref = jstr_at(obj, "payment_intent");
		if (st && strcmp(st, "succeeded") == 0 && usable_id(jstr_at(obj, "id")) &&
		    jamount(obj, "amount") > 0) {
			w->kind = WH_REFUND;
			w->refunds[w->nrefunds++] = (wh_refund){ jstr_at(obj, "id"), jamount(obj, "amount") };
		}
	}
	if (w->kind != WH_NONE && !w->ref)
		return jval_fail(e, "data.object", "names no payment intent");
	if (w->captured < 0)
		w->captured = 0;
	return 0;
}

/* PayPal's amount object of o in minor units, or -1. */
static int64_t paypal_amount(json_t *o)
{
	json_t *a = json_object_get(o, "amount");
	const char *cur = jstr_at(a, "currency_code");
	int64_t cents = -1;
	if (!cur || paypal_parse_amount(jstr_at(a, "value"), cur, &cents) != 0)
		return -1;
	return cents;
}

/* The id at the end of the href of o's link rel (".../captures/ID"), or
 * NULL; copied into buf. */
static const char *link_id(json_t *o, const char *rel, char *buf, size_t len)
{
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(o, "links"), i, l)
	{
		const char *r = jstr_at(l, "rel"), *href = jstr_at(l, "href");
		const char *slash = href ? strrchr(href, '/') : NULL;
		if (r && slash && strcmp(r, rel) == 0 && strlen(slash + 1) < len) {
			snprintf(buf, len, "%s", slash + 1);
			return usable_id(buf);
		}
	}
	return NULL;
}

/* Reads a PayPal event: {id, event_type, resource}. */
static int paypal_event(json_t *ev, wh_event *w, char *up, size_t uplen, jval_error *e)
{
	json_t *res = json_object_get(ev, "resource");
	if (jval_str(ev, "id", 1, 1, 255, &w->event_id, e) ||
	    jval_str(ev, "event_type", 1, 1, 255, &w->type, e))
		return ERR_INVALID;
	if (!json_is_object(res))
		return jval_fail(e, "resource", "must be an object");
	w->custom_id = usable_id(jstr_at(res, "custom_id"));
	if (strcmp(w->type, "PAYMENT.CAPTURE.COMPLETED") == 0) {
		w->kind = WH_CAPTURE;
		w->capture_ref = usable_id(jstr_at(res, "id"));
		w->ref = jstr_at(json_object_get(json_object_get(res, "supplementary_data"),
						 "related_ids"),
				 "authorization_id");
		w->captured = paypal_amount(res);
		if (!w->capture_ref)
			return jval_fail(e, "resource.id", "must be a capture id");
	} else if (strcmp(w->type, "PAYMENT.CAPTURE.REFUNDED") == 0) {
		const char *st = jstr_at(res, "status");
		int64_t amount = paypal_amount(res);
		w->capture_ref = link_id(res, "up", up, uplen);
		if (!usable_id(jstr_at(res, "id")) || amount <= 0)
			return jval_fail(e, "resource", "must be a refund with an id and an amount");
		if (st && (strcmp(st, "COMPLETED") == 0 || strcmp(st, "PENDING") == 0)) {
			w->kind = WH_REFUND;
			w->refunds[w->nrefunds++] = (wh_refund){ jstr_at(res, "id"), amount };
		}
	}
	if (w->kind != WH_NONE && !w->ref && !w->capture_ref && !w->custom_id)
		return jval_fail(e, "resource", "names no authorization, capture or custom_id");
	if (w->captured < 0)
		w->captured = 0;
	return 0;
}

/* The payment the event is about, into *r: STORE_ROW, STORE_DONE, or an
 * error. By provider_ref, else by capture_ref, else by custom_id. */
static int wh_find(payment_svc *p, wh_event *w, pay_row *r)
{
	static const char *const by[] = {
		"SELECT payment_id FROM payments WHERE provider = ? AND provider_ref = ?",
		"SELECT payment_id FROM payments WHERE provider = ? AND capture_ref = ?",
	};
	const char *keys[] = { w->ref, w->capture_ref };
	for (int i = 0; i < 2; i++) {
		if (!keys[i] || !keys[i][0])
			continue;
		int rc = 0;
		store_stmt *st = store_queryf(p->ctx->store, by[i], &rc, "tt", w->provider, keys[i]);
		if (!st)
			return rc ? rc : ERR_STORE;
		char id[ID_MAX + 1] = "";
		rc = store_step(st);
		if (rc == STORE_ROW)
			col_copy(st, 0, id, sizeof(id));
		store_reset(st);
		if (rc < 0)
			return rc;
		if (id[0])
			return row_load(p, id, r);
	}
	if (w->custom_id) {
		int rc = row_load(p, w->custom_id, r);
		if (rc != STORE_ROW || strcmp(r->provider, w->provider) == 0)
			return rc;
	}
	return STORE_DONE;
}

/* A capture the provider reports, in the webhook's transaction. */
static int wh_capture(payment_svc *p, wh_event *w, const pay_row *r)
{
	pay_row after = *r;
	after.updated_at = w->now;
	if (w->capture_ref && !r->capture_ref[0])
		snprintf(after.capture_ref, sizeof(after.capture_ref), "%s", w->capture_ref);
	if (r->status == PAYMENT_AUTHORIZED) {
		after.status = PAYMENT_CAPTURED;
		after.captured = w->captured > 0 && w->captured <= r->amount ? w->captured : r->amount;
		w->outcome = "applied";
		return set_state(p, r, &after);
	}
	if (r->status == PAYMENT_CAPTURED || r->status == PAYMENT_REFUNDED) {
		if (strcmp(after.capture_ref, r->capture_ref) == 0) {
			w->outcome = "already";
			return 0;
		}
		w->outcome = "applied";
		return row_update(p, r, &after);
	}
	log_warn(p->ctx->log, "payment %s: %s reports a capture of a %s payment; ignored",
		 r->payment_id, w->provider, state_names[r->status]);
	w->outcome = "ignored";
	return 0;
}

/* Refunds the provider reports (a capture first when the payment is still
 * AUTHORIZED here: a refund means it was captured). */
static int wh_refunds(payment_svc *p, wh_event *w, pay_row *r)
{
	int rc;
	if (r->status == PAYMENT_AUTHORIZED) {
		if ((rc = wh_capture(p, w, r)) != 0 || (rc = row_get(p, r->payment_id, r)) != 0)
			return rc;
	}
	if (w->refunded_total > r->refunded && w->nrefunds == 0)
		w->refunds[w->nrefunds++] = (wh_refund){ w->event_id, w->refunded_total - r->refunded };
	int applied = 0, known = 0;
	for (int i = 0; i < w->nrefunds; i++) {
		refund_op op = { .p = p,
				 .id = r->payment_id,
				 .refund_id = w->refunds[i].id,
				 .amount = w->refunds[i].amount,
				 .provider_ref = w->refunds[i].id,
				 .capture_ref = w->capture_ref,
				 .now = w->now };
		rc = refund_record(p, &op);
		if (rc == 0 && op.known)
			known++;
		else if (rc == 0)
			applied++;
		else if (rc != ERR_STATE)
			return rc; /* TXN_MOVED included: roll back, look again */
	}
	w->outcome = applied ? "applied" : known ? "already" : "ignored";
	return 0;
}

static int webhook_body(void *arg)
{
	wh_event *w = arg;
	payment_svc *p = w->p;
	int64_t inserted = 0;
	int rc = store_runf(p->ctx->store,
			    "INSERT INTO webhook_events (provider, event_id, type, payment_id, outcome, "
			    "received_at) VALUES (?, ?, ?, '', '', ?) "
			    "ON CONFLICT (provider, event_id) DO NOTHING",
			    &inserted, "ttti", w->provider, w->event_id, w->type, w->now);
	if (rc)
		return rc;
	w->payment_id[0] = '\0';
	if (inserted != 1) {
		w->outcome = "duplicate";
		return 0;
	}
	w->outcome = "ignored";
	if (w->kind != WH_NONE) {
		pay_row r;
		rc = wh_find(p, w, &r);
		if (rc < 0)
			return rc;
		if (rc == STORE_DONE) {
			w->outcome = "unknown_payment";
		} else {
			snprintf(w->payment_id, sizeof(w->payment_id), "%s", r.payment_id);
			rc = w->kind == WH_CAPTURE ? wh_capture(p, w, &r) : wh_refunds(p, w, &r);
			if (rc)
				return rc;
		}
	}
	return store_runf(p->ctx->store,
			  "UPDATE webhook_events SET outcome = ?, payment_id = ? "
			  "WHERE provider = ? AND event_id = ?",
			  NULL, "tttt", w->outcome, w->payment_id, w->provider, w->event_id);
}

/* POST /v1/webhooks/{provider}: no caller identity; the signature is the
 * authentication. */
static void webhook(payment_svc *p, msg_req *req, msg_resp *resp, const char *provider)
{
	int is_stripe = strcmp(provider, "stripe") == 0;
	const char *secret = is_stripe ? p->stripe_whsec : p->paypal_whsec;
	if (req->body_len > WEBHOOK_BODY_MAX) {
		count_webhook(p, provider, "invalid");
		msg_resp_error(resp, 413, "payload_too_large", "the webhook body is too large", NULL);
		return;
	}
	if (!secret[0]) {
		log_warn(p->ctx->log, "a %s webhook arrived, but no %s.webhook_secret is configured",
			 provider, provider);
		msg_resp_error(resp, 503, "unavailable", "webhooks from this provider are not configured",
			       json_pack("{s:s}", "provider", provider));
		return;
	}
	const char *body = req->body ? req->body : "";
	int64_t now = clock_now(p->ctx->clock);
	char why[160] = "";
	int rc = is_stripe
			 ? webhook_stripe_verify(secret, msg_req_header(req, WEBHOOK_STRIPE_HEADER), body,
						 req->body_len, now / 1000000, p->tolerance_s, why,
						 sizeof(why))
			 : webhook_paypal_verify(secret, msg_req_header(req, WEBHOOK_PAYPAL_ID_HEADER),
						 msg_req_header(req, WEBHOOK_PAYPAL_TIME_HEADER),
						 msg_req_header(req, WEBHOOK_PAYPAL_ALGO_HEADER),
						 msg_req_header(req, WEBHOOK_PAYPAL_SIG_HEADER), body,
						 req->body_len, now / 1000000, p->tolerance_s, why,
						 sizeof(why));
	if (rc) {
		count_webhook(p, provider, "refused");
		log_warn(p->ctx->log, "%s webhook refused: %s", provider, why);
		msg_resp_error(resp, 401, "unauthenticated", why, json_pack("{s:s}", "provider", provider));
		return;
	}
	jval_error e = { { 0 }, { 0 } };
	json_t *doc = jval_parse_object(body, req->body_len, &e);
	wh_event w = { .p = p, .provider = provider, .now = now, .refunded_total = -1 };
	char up[64];
	if (!doc || (is_stripe ? stripe_event(doc, &w, &e) : paypal_event(doc, &w, up, sizeof(up), &e))) {
		count_webhook(p, provider, "invalid");
		engine_bad_field(resp, e.field, e.message);
		json_decref(doc);
		return;
	}
	/* A refund inserted meanwhile rolls the transaction back: once more. */
	rc = store_txn(p->ctx->store, TXN_TRIES, webhook_body, &w);
	if (rc == TXN_MOVED)
		rc = store_txn(p->ctx->store, TXN_TRIES, webhook_body, &w);
	if (rc != 0) {
		if (rc > 0) {
			msg_resp_error(resp, 503, "unavailable", "the payment is changing; send it again",
				       NULL);
			msg_resp_set_header(resp, "Retry-After", "1");
		} else {
			engine_store_error(p->ctx, resp, rc, "record webhook");
		}
		json_decref(doc);
		return;
	}
	count_webhook(p, provider, w.outcome);
	log_info(p->ctx->log, "%s webhook %s (%s): %s%s%s", provider, w.event_id, w.type, w.outcome,
		 w.payment_id[0] ? ", payment " : "", w.payment_id);
	json_t *out = json_pack("{s:b,s:s,s:s,s:s}", "received", 1, "event_id", w.event_id, "type",
				w.type, "outcome", w.outcome);
	if (out && w.payment_id[0])
		json_object_set_new(out, "payment_id", json_string(w.payment_id));
	msg_resp_json(resp, 200, out);
	json_decref(doc);
}

static void webhook_stripe(void *ud, msg_req *req, msg_resp *resp)
{
	webhook(ud, req, resp, "stripe");
}

static void webhook_paypal(void *ud, msg_req *req, msg_resp *resp)
{
	webhook(ud, req, resp, "paypal");
}

/* ---- reading ------------------------------------------------------------------------------ */

static int refunds_json(payment_svc *p, const char *id, json_t **out)
{
	*out = json_array();
	int rc = 0;
	store_stmt *st = store_prepare(p->ctx->store,
				       "SELECT refund_id, amount_cents, provider_ref, created_at "
				       "FROM payment_refunds WHERE payment_id = ? "
				       "ORDER BY seq, refund_id LIMIT ?",
				       &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	store_bind_text(st, 1, id);
	store_bind_int(st, 2, REFUNDS_LISTED);
	while ((rc = store_step(st)) == STORE_ROW) {
		char at[40];
		clock_fmt_rfc3339(store_col_int(st, 3), at, sizeof(at));
		json_array_append_new(*out, json_pack("{s:s,s:I,s:s,s:s}", "refund_id",
						      store_col_text(st, 0), "amount_cents",
						      (json_int_t)store_col_int(st, 1),
						      "provider_ref", store_col_text(st, 2),
						      "created_at", at));
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

static void get_payment(void *ud, msg_req *req, msg_resp *resp)
{
	payment_svc *p = ud;
	if (engine_require_service(p->ctx, req, resp))
		return;
	const char *id = msg_req_param(req, 0);
	if (!engine_valid_id(id)) {
		no_payment(resp, id ? id : "");
		return;
	}
	pay_row r;
	int rc = row_load(p, id, &r);
	if (rc == STORE_DONE) {
		no_payment(resp, id);
		return;
	}
	json_t *refunds = NULL;
	if (rc == STORE_ROW)
		rc = refunds_json(p, id, &refunds);
	if (rc < 0) {
		json_decref(refunds);
		engine_store_error(p->ctx, resp, rc, "read payment");
		return;
	}
	json_t *out = payment_json(&r);
	json_object_set_new(out, "refunds", refunds);
	msg_resp_json(resp, 200, out);
}

/* ---- admin: listing and totals, for `ecom audit` ------------------------------------------ */

#define ADMIN_PAGE_MAX 500

/* GET /admin/payments?status=&order_id=&limit=&page_token=: payments in
 * payment_id order (page_token: the last payment_id of the page before),
 * each as GET /v1/payments/{id} shows it, without the refunds. */
static void admin_payments(void *ud, msg_req *req, msg_resp *resp)
{
	payment_svc *p = ud;
	if (engine_require_admin(p->ctx, req, resp))
		return;
	char status[32] = "", order[ID_MAX + 1] = "", after[ID_MAX + 1] = "";
	int64_t limit = 100;
	if (engine_query_int(req, resp, "limit", 1, ADMIN_PAGE_MAX, &limit) < 0 ||
	    engine_query_id(req, resp, "order_id", order, sizeof(order)) < 0 ||
	    engine_query_id(req, resp, "page_token", after, sizeof(after)) < 0)
		return;
	int q = msg_req_query(req, "status", status, sizeof(status));
	if (q < 0 || (q > 0 && payment_state_parse(status) < 0)) {
		engine_bad_field(resp, "status",
				 "must be PENDING, AUTHORIZED, DECLINED, FAILED, CAPTURED, VOIDED or "
				 "REFUNDED");
		return;
	}
	/* The ids first, then each row as row_load reads it. An absent filter
	 * binds NULL: COALESCE makes it match every row. */
	int rc = 0;
	store_stmt *st = store_queryf(
		p->ctx->store,
		"SELECT payment_id FROM payments WHERE payment_id > ? AND "
		"status = COALESCE(?, status) AND order_id = COALESCE(?, order_id) "
		"ORDER BY payment_id LIMIT ?",
		&rc, "ttti", after, status[0] ? status : NULL, order[0] ? order : NULL, limit + 1);
	if (!st) {
		engine_store_error(p->ctx, resp, rc, "list payments");
		return;
	}
	char(*ids)[ID_MAX + 1] = calloc((size_t)limit + 1, sizeof(*ids));
	int64_t n = 0;
	while (ids && n <= limit && (rc = store_step(st)) == STORE_ROW)
		snprintf(ids[n++], sizeof(ids[0]), "%s", store_col_text(st, 0));
	store_reset(st);
	if (!ids)
		rc = ERR_NOMEM;
	json_t *items = json_array();
	for (int64_t i = 0; rc >= 0 && i < n && i < limit; i++) {
		pay_row r;
		rc = row_load(p, ids[i], &r);
		if (rc == STORE_ROW)
			json_array_append_new(items, payment_json(&r));
	}
	json_t *next = rc >= 0 && n > limit ? json_string(ids[limit - 1]) : json_null();
	free(ids);
	if (rc < 0) {
		json_decref(items);
		json_decref(next);
		engine_store_error(p->ctx, resp, rc, "list payments");
		return;
	}
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "items", items, "next_page_token", next));
}

/* GET /admin/payments/summary: payments by status, and per currency the
 * amounts authorised, captured and refunded. */
static void admin_payments_summary(void *ud, msg_req *req, msg_resp *resp)
{
	payment_svc *p = ud;
	if (engine_require_admin(p->ctx, req, resp))
		return;
	json_t *by_status = json_object(), *cur = json_object();
	for (int i = 0; i < PAYMENT_NSTATES; i++)
		json_object_set_new(by_status, state_names[i], json_integer(0));
	int64_t total = 0;
	int rc = 0;
	store_stmt *st = store_queryf(p->ctx->store,
				      "SELECT status, currency, COUNT(*), SUM(captured_cents), "
				      "SUM(refunded_cents) FROM payments GROUP BY status, currency",
				      &rc, "");
	while (st && (rc = store_step(st)) == STORE_ROW) {
		const char *status = store_col_text(st, 0), *c = store_col_text(st, 1);
		int64_t n = store_col_int(st, 2);
		total += n;
		jval_add_int(by_status, status ? status : "?", n);
		json_t *f = json_object_get(cur, c ? c : "?");
		if (!f) {
			f = json_object();
			json_object_set_new(cur, c ? c : "?", f);
		}
		jval_add_int(f, "captured_cents", store_col_int(st, 3));
		jval_add_int(f, "refunded_cents", store_col_int(st, 4));
	}
	store_reset(st);
	if (!st || rc < 0) {
		json_decref(by_status);
		json_decref(cur);
		engine_store_error(p->ctx, resp, rc, "summarise payments");
		return;
	}
	msg_resp_json(resp, 200,
		      json_pack("{s:I,s:o,s:o}", "payments", (json_int_t)total, "by_status", by_status,
				"currencies", cur));
}

/* ---- engine ------------------------------------------------------------------------------- */

static void payment_destroy(void *eng)
{
	payment_svc *p = eng;
	if (!p)
		return;
	router_free(p->rt);
	providers_clear(&p->prov);
	sodium_memzero(p->stripe_whsec, sizeof(p->stripe_whsec));
	sodium_memzero(p->paypal_whsec, sizeof(p->paypal_whsec));
	free(p);
}

static void *payment_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx->store) {
		snprintf(err, errlen, "the payment service needs a store");
		return NULL;
	}
	payment_svc *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->ctx = ctx;
	if (providers_init(&p->prov, ctx, err, errlen) != 0) {
		free(p);
		return NULL;
	}
	const char *sw = ctx->config ? config_get(ctx->config, "stripe.webhook_secret") : NULL;
	const char *pw = ctx->config ? config_get(ctx->config, "paypal.webhook_secret") : NULL;
	if ((sw && strlen(sw) >= sizeof(p->stripe_whsec)) ||
	    (pw && strlen(pw) >= sizeof(p->paypal_whsec))) {
		snprintf(err, errlen, "stripe.webhook_secret or paypal.webhook_secret is too long");
		payment_destroy(p);
		return NULL;
	}
	snprintf(p->stripe_whsec, sizeof(p->stripe_whsec), "%s", sw ? sw : "");
	snprintf(p->paypal_whsec, sizeof(p->paypal_whsec), "%s", pw ? pw : "");
	p->tolerance_s = ctx->config ? config_int(ctx->config, "payment.webhook_tolerance_s",
						  WEBHOOK_DEFAULT_TOLERANCE_S)
				     : WEBHOOK_DEFAULT_TOLERANCE_S;
	if (p->tolerance_s < 1)
		p->tolerance_s = WEBHOOK_DEFAULT_TOLERANCE_S;
	if (!p->prov.stripe.secret_key[0])
		log_warn(ctx->log, "no stripe.secret_key (ECOM_STRIPE_SECRET_KEY): card payments "
				   "will answer 503 until one is configured");
	if (!p->prov.paypal.client_id[0] || !p->prov.paypal.secret[0])
		log_warn(ctx->log, "no paypal.client_id and paypal.secret: PayPal payments will "
				   "answer 503 until they are configured");
	log_info(ctx->log, "card payments go to %s, PayPal payments to %s",
		 p->prov.stripe.base_url, p->prov.paypal.base_url);
	metrics_help(ctx->metrics, "payment_provider_calls_total",
		     "Calls to the payment providers by provider, operation and outcome (ok, "
		     "declined, failed, rejected, not_sent).");
	metrics_help(ctx->metrics, "payment_webhooks_total",
		     "Provider webhooks by provider and outcome (applied, already, ignored, "
		     "unknown_payment, duplicate, refused, invalid).");
	metrics_help(ctx->metrics, "payment_replays_total",
		     "Repeated POST /v1/payments answered with the stored first answer.");
	static const engine_route routes[] = {
		{ "POST", "/v1/payments", create_payment },
		{ "GET", "/v1/payments/{id}", get_payment },
		{ "POST", "/v1/payments/{id}/capture", capture_payment },
		{ "POST", "/v1/payments/{id}/void", void_payment },
		{ "POST", "/v1/payments/{id}/refund", refund_payment },
		{ "POST", "/v1/webhooks/stripe", webhook_stripe },
		{ "POST", "/v1/webhooks/paypal", webhook_paypal },
		{ "GET", "/admin/payments", admin_payments },
		{ "GET", "/admin/payments/summary", admin_payments_summary },
	};
	p->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), p, err, errlen);
	if (!p->rt) {
		payment_destroy(p);
		return NULL;
	}
	return p;
}

static void payment_handle(void *eng, msg_req *req, msg_resp *resp)
{
	payment_svc *p = eng;
	router_dispatch(p->rt, req, resp);
}

const engine_def payment_engine = {
	.name = "payment",
	.needs_store = 1,
	.create = payment_create,
	.handle = payment_handle,
	.tick = NULL,
	.ready = NULL,
	.destroy = payment_destroy,
};
