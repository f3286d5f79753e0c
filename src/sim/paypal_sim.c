/* paypal_sim: OAuth2 tokens, orders, authorisations, captures, refunds,
 * request-id idempotency, faults and webhooks, in memory, answering in
 * PayPal's shapes. */
#include "sim/paypal_sim.h"
#include "core/err.h"
#include "core/jval.h"
#include "net/form.h"
#include "net/router.h"
#include "resil/fault.h"
#include "services/chaos.h"
#include "services/paypal.h"
#include "services/webhook.h"
#include "sim/stripe_sim.h"
#include "sim/webhook_queue.h"

#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAULT_TARGET "paypal"
#define ID_LEN 17                 /* PayPal's ids: 17 upper-case letters and digits */
#define TOKEN_RANDOM 80
#define MAX_TOKENS 100000
#define MAX_CUSTOM 127
#define MAX_REF 256
#define MAX_VALUE_DIGITS 10
#define AUTH_LIFE_S (29 * 86400LL) /* an authorisation's validity at PayPal */
#define FP_BYTES 16
#define LINK_BASE "https://api-m.sandbox.paypal.com"
#define WEBHOOKS_PENDING_MAX 10000
#define APP_ID "APP-80W284485P519543T"
#define SCOPE                                                                                   \
	"https://uri.paypal.com/services/payments/payment/authcapture "                         \
	"https://uri.paypal.com/services/payments/refund "                                      \
	"https://uri.paypal.com/services/payments/orders/client_sdk_orders_api"

/* ---- test payers ------------------------------------------------------------------------- */

enum payer_kind { P_OK, P_DECLINE, P_DENIED, P_CAPTURE_DECLINED };

typedef struct payer {
	const char *vault_id;
	enum payer_kind kind;
	const char *issue; /* P_DECLINE: the 422's issue */
	const char *description;
} payer;

static const payer PAYERS[] = {
	{ "paypal_ok", P_OK, NULL, NULL },
	{ "paypal_declined", P_DECLINE, "INSTRUMENT_DECLINED",
	  "The instrument presented was either declined by the processor or bank, or it can't be "
	  "used for this payment." },
	{ "paypal_refused", P_DECLINE, "TRANSACTION_REFUSED",
	  "The request was refused." },
	{ "paypal_cannot_pay", P_DECLINE, "PAYER_CANNOT_PAY",
	  "Combination of payer and payee settings do not allow this payment." },
	{ "paypal_denied", P_DENIED, NULL, NULL },
	{ "paypal_capture_declined", P_CAPTURE_DECLINED, NULL, NULL },
};
#define NPAYERS ((int)(sizeof(PAYERS) / sizeof(PAYERS[0])))

static int payer_find(const char *vault_id)
{
	for (int i = 0; vault_id && i < NPAYERS; i++)
		if (strcmp(PAYERS[i].vault_id, vault_id) == 0)
			return i;
	return -1;
}

/* ---- state ------------------------------------------------------------------------------- */

enum order_status { O_CREATED, O_APPROVED, O_COMPLETED };
static const char *const ORDER_STATUS[] = { "CREATED", "APPROVED", "COMPLETED" };
enum auth_status { A_CREATED, A_CAPTURED, A_VOIDED, A_DENIED };
static const char *const AUTH_STATUS[] = { "CREATED", "CAPTURED", "VOIDED", "DENIED" };
enum cap_status { C_COMPLETED, C_DECLINED, C_PARTIALLY_REFUNDED, C_REFUNDED };
static const char *const CAP_STATUS[] = { "COMPLETED", "DECLINED", "PARTIALLY_REFUNDED",
					  "REFUNDED" };

typedef struct pp_order {
	char id[ID_LEN + 1];
	int status;
	int payer; /* index in PAYERS, -1: none */
	char currency[4];
	int64_t amount;
	char custom_id[MAX_CUSTOM + 1];
	char reference_id[MAX_REF + 1];
	int auth; /* -1: none */
	int64_t created_us, updated_us;
} pp_order;

typedef struct pp_auth {
	char id[ID_LEN + 1];
	int order;
	int status;
	int64_t amount;
	int capture; /* -1: none */
	int64_t created_us, updated_us;
} pp_auth;

typedef struct pp_capture {
	char id[ID_LEN + 1];
	int auth;
	int status;
	int64_t amount, refunded;
	int64_t created_us, updated_us;
} pp_capture;

typedef struct pp_refund {
	char id[ID_LEN + 1];
	int capture;
	int64_t amount;
	int64_t created_us;
} pp_refund;

/* A stored first answer to a PayPal-Request-Id, in a ring from oldest to
 * newest. */
typedef struct reqid {
	char *key; /* "<client id>\n<request id>" */
	char *path;
	unsigned char fp[FP_BYTES];
	int status;
	char *body;
	size_t len;
	int64_t created_us;
} reqid;

typedef struct stats {
	uint64_t orders, authorizations, declines, captures, capture_declines, voids, refunds;
	int64_t captured_amount, refunded_amount;
	uint64_t tokens, token_refusals, replays, request_id_errors, full;
} stats;

/* A growing array of one kind of resource, with an index by id. */
typedef struct table {
	void *items;
	size_t n, cap, size;
	json_t *ix; /* id -> index */
} table;

typedef struct paypal_sim {
	engine_ctx *ctx;
	router *api;
	router *admin;
	fault_table *faults;
	chaos_sim_faults fault_admin;
	webhook_queue *hooks;
	char webhook_secret[256];
	pthread_mutex_t mu;
	table orders, auths, caps, refunds;
	json_t *tokens; /* token -> {exp, client} */
	reqid **ring;
	size_t ring_cap, ring_head, ring_n;
	json_t *reqix; /* key -> absolute sequence number */
	uint64_t ring_seq0; /* the sequence number of ring_head */
	size_t max_orders;
	int64_t token_ttl_us, reqid_ttl_us;
	char client_id[161], secret[161]; /* "": any */
	stats st;
	uint64_t requests, auth_failures, fault_failures, fault_outages; /* atomics */
} paypal_sim;

/* ---- helpers ----------------------------------------------------------------------------- */

static const char UPPER_ALNUM[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char TOKEN_CHARS[] =
	"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

static void random_chars(paypal_sim *s, const char *set, size_t nset, char *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = set[rng_below(s->ctx->rng, nset)];
	out[n] = '\0';
}

static void new_id(paypal_sim *s, char out[ID_LEN + 1])
{
	random_chars(s, UPPER_ALNUM, sizeof(UPPER_ALNUM) - 1, out, ID_LEN);
}

static void time_str(int64_t us, char *buf, size_t len)
{
	webhook_format_time(us / 1000000, buf, len);
}

static json_t *amount_json(int64_t cents, const char *currency)
{
	char v[32];
	paypal_format_amount(cents, currency, v, sizeof(v));
	return json_pack("{s:s,s:s}", "currency_code", currency, "value", v);
}

static json_t *link(const char *path, const char *id, const char *suffix, const char *rel,
		    const char *method)
{
	char href[256];
	snprintf(href, sizeof(href), LINK_BASE "%s/%s%s", path, id, suffix);
	return json_pack("{s:s,s:s,s:s}", "href", href, "rel", rel, "method", method);
}

static int table_init(table *t, size_t size)
{
	memset(t, 0, sizeof(*t));
	t->size = size;
	t->ix = json_object();
	return t->ix ? 0 : ERR_NOMEM;
}

static void table_clear(table *t)
{
	free(t->items);
	json_decref(t->ix);
}

/* A new zeroed item with id, or -1 out of memory. */
static int table_add(table *t, const char *id)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		void *p = realloc(t->items, cap * t->size);
		if (!p)
			return -1;
		t->items = p;
		t->cap = cap;
	}
	if (json_object_set_new(t->ix, id, json_integer((json_int_t)t->n)) != 0)
		return -1;
	memset((char *)t->items + t->n * t->size, 0, t->size);
	return (int)t->n++;
}

static int table_find(const table *t, const char *id)
{
	json_t *v = id ? json_object_get(t->ix, id) : NULL;
	return v ? (int)json_integer_value(v) : -1;
}

#define ORDER(s, i) (&((pp_order *)(s)->orders.items)[i])
#define AUTH(s, i) (&((pp_auth *)(s)->auths.items)[i])
#define CAP(s, i) (&((pp_capture *)(s)->caps.items)[i])
#define REFUND(s, i) (&((pp_refund *)(s)->refunds.items)[i])

/* ---- PayPal's error shapes ---------------------------------------------------------------- */

static void pp_error(paypal_sim *s, msg_resp *resp, int status, const char *name,
		     const char *message, const char *issue, const char *field,
		     const char *description)
{
	char debug[14];
	random_chars(s, "0123456789abcdef", 16, debug, 13);
	json_t *o = json_pack("{s:s,s:s,s:s}", "name", name, "message", message, "debug_id", debug);
	if (issue) {
		json_t *d = json_pack("{s:s,s:s}", "issue", issue, "description",
				      description ? description : message);
		if (field) {
			json_object_set_new(d, "field", json_string(field));
			json_object_set_new(d, "location", json_string("body"));
		}
		json_object_set_new(o, "details", json_pack("[o]", d));
		char href[160];
		snprintf(href, sizeof(href), "https://developer.paypal.com/docs/api/orders/v2/#error-%s",
			 issue);
		json_object_set_new(o, "links", json_pack("[{s:s,s:s,s:s}]", "href", href, "rel",
							  "information_link", "method", "GET"));
	}
	msg_resp_json(resp, status, o);
}

static void invalid(paypal_sim *s, msg_resp *resp, const char *issue, const char *field,
		    const char *description)
{
	pp_error(s, resp, 400, "INVALID_REQUEST",
		 "Request is not well-formed, syntactically incorrect, or violates schema.", issue,
		 field, description);
}

static void unprocessable(paypal_sim *s, msg_resp *resp, const char *issue,
			  const char *description)
{
	pp_error(s, resp, 422, "UNPROCESSABLE_ENTITY",
		 "The requested action could not be performed, semantically incorrect, or failed "
		 "business validation.",
		 issue, NULL, description);
}

static void not_found(paypal_sim *s, msg_resp *resp)
{
	pp_error(s, resp, 404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.",
		 "INVALID_RESOURCE_ID",
		 NULL, "Specified resource ID does not exist. Please check the resource ID and try again.");
}

static void oauth_error(msg_resp *resp, int status, const char *error, const char *description)
{
	msg_resp_json(resp, status,
		      json_pack("{s:s,s:s}", "error", error, "error_description", description));
}

/* ---- the resources as JSON ------------------------------------------------------------------- */

static json_t *auth_json(paypal_sim *s, int ai)
{
	const pp_auth *a = AUTH(s, ai);
	const pp_order *o = ORDER(s, a->order);
	char created[32], updated[32], expires[32];
	time_str(a->created_us, created, sizeof(created));
	time_str(a->updated_us, updated, sizeof(updated));
	time_str(a->created_us + AUTH_LIFE_S * 1000000, expires, sizeof(expires));
	const char *P = "/v2/payments/authorizations";
	json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:{s:{s:s}},s:[o,o,o]}", "id", a->id,
			      "status", AUTH_STATUS[a->status], "amount",
			      amount_json(a->amount, o->currency), "expiration_time", expires,
			      "create_time", created, "update_time", updated, "supplementary_data",
			      "related_ids", "order_id", o->id, "links",
			      link(P, a->id, "", "self", "GET"), link(P, a->id, "/capture", "capture", "POST"),
			      link(P, a->id, "/void", "void", "POST"));
	if (j && o->custom_id[0])
		json_object_set_new(j, "custom_id", json_string(o->custom_id));
	return j;
}

static json_t *capture_json(paypal_sim *s, int ci)
{
	const pp_capture *c = CAP(s, ci);
	const pp_auth *a = AUTH(s, c->auth);
	const pp_order *o = ORDER(s, a->order);
	char created[32], updated[32];
	time_str(c->created_us, created, sizeof(created));
	time_str(c->updated_us, updated, sizeof(updated));
	const char *P = "/v2/payments/captures";
	json_t *j = json_pack(
		"{s:s,s:s,s:o,s:b,s:{s:s},s:{s:{s:s,s:s}},s:s,s:s,s:[o,o,o]}", "id", c->id, "status",
		CAP_STATUS[c->status], "amount", amount_json(c->amount, o->currency), "final_capture",
		1, "seller_protection", "status", "ELIGIBLE", "supplementary_data", "related_ids",
		"order_id", o->id, "authorization_id", a->id, "create_time", created, "update_time",
		updated, "links", link(P, c->id, "", "self", "GET"),
		link(P, c->id, "/refund", "refund", "POST"),
		link("/v2/payments/authorizations", a->id, "", "up", "GET"));
	if (j && o->custom_id[0])
		json_object_set_new(j, "custom_id", json_string(o->custom_id));
	return j;
}

static json_t *refund_json(paypal_sim *s, int ri)
{
	const pp_refund *r = REFUND(s, ri);
	const pp_capture *c = CAP(s, r->capture);
	const pp_order *o = ORDER(s, AUTH(s, c->auth)->order);
	char created[32];
	time_str(r->created_us, created, sizeof(created));
	json_t *j = json_pack("{s:s,s:s,s:o,s:s,s:s,s:[o,o]}", "id", r->id, "status", "COMPLETED",
			      "amount", amount_json(r->amount, o->currency), "create_time", created,
			      "update_time", created, "links",
			      link("/v2/payments/refunds", r->id, "", "self", "GET"),
			      link("/v2/payments/captures", c->id, "", "up", "GET"));
	if (j && o->custom_id[0])
		json_object_set_new(j, "custom_id", json_string(o->custom_id));
	return j;
}

static json_t *order_json(paypal_sim *s, int oi)
{
	const pp_order *o = ORDER(s, oi);
	char created[32], updated[32];
	time_str(o->created_us, created, sizeof(created));
	time_str(o->updated_us, updated, sizeof(updated));
	json_t *unit = json_pack("{s:s,s:o}", "reference_id",
				 o->reference_id[0] ? o->reference_id : "default", "amount",
				 amount_json(o->amount, o->currency));
	if (unit && o->custom_id[0])
		json_object_set_new(unit, "custom_id", json_string(o->custom_id));
	if (unit && o->auth >= 0)
		json_object_set_new(unit, "payments",
				    json_pack("{s:[o]}", "authorizations", auth_json(s, o->auth)));
	const char *P = "/v2/checkout/orders";
	json_t *links = json_pack("[o]", link(P, o->id, "", "self", "GET"));
	if (links && o->status == O_APPROVED)
		json_array_append_new(links, link(P, o->id, "/authorize", "authorize", "POST"));
	json_t *j = json_pack("{s:s,s:s,s:s,s:[o],s:s,s:s,s:o}", "id", o->id, "intent", "AUTHORIZE",
			      "status", ORDER_STATUS[o->status], "purchase_units", unit,
			      "create_time", created, "update_time", updated, "links", links);
	if (j && o->payer >= 0)
		json_object_set_new(j, "payment_source",
				    json_pack("{s:{s:s}}", "paypal", "account_status", "VERIFIED"));
	return j;
}

/* ---- webhooks ------------------------------------------------------------------------------ */

/* Queues an event about resource (stolen); under mu. */
static void push_event(paypal_sim *s, const char *type, const char *resource_type,
		       json_t *resource, const char *summary, int64_t now)
{
	if (!s->webhook_secret[0] || !resource) {
		json_decref(resource);
		return;
	}
	char a[ID_LEN + 1], b[ID_LEN + 1], id[48], created[32];
	new_id(s, a);
	new_id(s, b);
	snprintf(id, sizeof(id), "WH-%s-%s", a, b);
	time_str(now, created, sizeof(created));
	json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "id", id, "event_version", "1.0",
			       "create_time", created, "resource_type", resource_type,
			       "resource_version", "2.0", "event_type", type, "summary", summary,
			       "resource", resource);
	char *body = ev ? jval_dump(ev) : NULL;
	json_decref(ev);
	if (body && webhook_queue_push(s->hooks, body, now) && s->ctx->wake)
		s->ctx->wake(s->ctx->wake_ud);
	free(body);
}

static int sign_delivery(void *ud, int64_t now_us, const char *body, size_t len, msg_req *req)
{
	paypal_sim *s = ud;
	char a[ID_LEN + 1], tid[48], tm[32], sig[WEBHOOK_SIG_MAX];
	new_id(s, a);
	snprintf(tid, sizeof(tid), "sim-%s", a);
	webhook_format_time(now_us / 1000000, tm, sizeof(tm));
	if (webhook_paypal_sign(s->webhook_secret, tid, tm, body, len, sig, sizeof(sig)) != 0)
		return ERR_INVALID;
	int rc = msg_req_add_header(req, WEBHOOK_PAYPAL_ID_HEADER, tid);
	rc = rc ? rc : msg_req_add_header(req, WEBHOOK_PAYPAL_TIME_HEADER, tm);
	rc = rc ? rc : msg_req_add_header(req, WEBHOOK_PAYPAL_ALGO_HEADER, WEBHOOK_PAYPAL_ALGO);
	rc = rc ? rc : msg_req_add_header(req, WEBHOOK_PAYPAL_SIG_HEADER, sig);
	return rc;
}

/* ---- reading request bodies ------------------------------------------------------------------- */

/* An amount object {currency_code, value} at field: 0 with *cents and the
 * currency copied, or ERR_INVALID with resp filled. */
static int read_amount(paypal_sim *s, json_t *a, const char *field, int64_t *cents,
		       char currency[4], msg_resp *resp)
{
	char f[128];
	const char *cur = json_string_value(json_object_get(a, "currency_code"));
	const char *val = json_string_value(json_object_get(a, "value"));
	if (!json_is_object(a) || !cur || !val) {
		snprintf(f, sizeof(f), "%s/%s", field, !json_is_object(a) || !cur ? "currency_code" : "value");
		invalid(s, resp, "MISSING_REQUIRED_PARAMETER", f,
			"A required field / parameter is missing.");
		return ERR_INVALID;
	}
	if (strlen(cur) != 3 || !isupper((unsigned char)cur[0]) || !isupper((unsigned char)cur[1]) ||
	    !isupper((unsigned char)cur[2])) {
		snprintf(f, sizeof(f), "%s/currency_code", field);
		invalid(s, resp, "INVALID_PARAMETER_VALUE", f,
			"The value of a field is invalid: a three-letter ISO 4217 code.");
		return ERR_INVALID;
	}
	snprintf(f, sizeof(f), "%s/value", field);
	const char *dot = strchr(val, '.');
	size_t whole = dot ? (size_t)(dot - val) : strlen(val);
	if (whole > MAX_VALUE_DIGITS || paypal_parse_amount(val, cur, cents) != 0) {
		/* Well formed but with too many decimals, or not a number at all. */
		size_t digits = strspn(val, "0123456789");
		int precision = whole <= MAX_VALUE_DIGITS && digits == whole && whole > 0 && dot &&
				dot[1] && strspn(dot + 1, "0123456789") == strlen(dot + 1);
		invalid(s, resp, precision ? "DECIMAL_PRECISION" : "INVALID_PARAMETER_VALUE", f,
			precision ? "If the currency supports decimals, only two decimal place "
				    "precision is supported."
				  : "The value of a field is invalid.");
		return ERR_INVALID;
	}
	if (*cents <= 0) {
		unprocessable(s, resp, "CANNOT_BE_ZERO_OR_NEGATIVE",
			      "Must be greater than zero. If the currency supports decimals, only "
			      "two decimal place precision is supported.");
		return ERR_INVALID;
	}
	memcpy(currency, cur, 4);
	return 0;
}

/* An optional string field of at most max bytes: 0 (absent: *out NULL), or
 * ERR_INVALID with resp filled. */
static int read_str(paypal_sim *s, json_t *o, const char *name, const char *field, size_t max,
		    const char **out, msg_resp *resp)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		invalid(s, resp, "INVALID_STRING_LENGTH", field,
			"The value of a field is either too short or too long.");
		return ERR_INVALID;
	}
	*out = json_string_value(v);
	return 0;
}

/* ---- operations (under mu) ------------------------------------------------------------------------ */

typedef struct pp_call {
	int64_t now;
	int representation; /* Prefer: return=representation */
} pp_call;

/* Each answers in resp and returns 1 when the answer is to be stored for its
 * request id (the call acted, or refused on business grounds), 0 when not. */
typedef int (*op_fn)(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		     msg_resp *resp);

static int op_create(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		     msg_resp *resp)
{
	(void)id;
	const char *intent = json_string_value(json_object_get(body, "intent"));
	if (!intent) {
		invalid(s, resp, "MISSING_REQUIRED_PARAMETER", "/intent",
			"A required field / parameter is missing.");
		return 0;
	}
	if (strcmp(intent, "AUTHORIZE") != 0) {
		invalid(s, resp, "INVALID_PARAMETER_VALUE", "/intent",
			"The simulator supports intent AUTHORIZE only.");
		return 0;
	}
	json_t *units = json_object_get(body, "purchase_units");
	if (json_array_size(units) != 1) {
		invalid(s, resp, json_array_size(units) ? "INVALID_ARRAY_MAX_ITEMS"
							: "MISSING_REQUIRED_PARAMETER",
			"/purchase_units", "The simulator takes exactly one purchase unit.");
		return 0;
	}
	json_t *unit = json_array_get(units, 0);
	int64_t amount = 0;
	char currency[4];
	const char *custom = NULL, *ref = NULL, *invoice = NULL;
	if (read_amount(s, json_object_get(unit, "amount"), "/purchase_units/@reference_id=='default'/amount",
			&amount, currency, resp) ||
	    read_str(s, unit, "custom_id", "/purchase_units/@reference_id=='default'/custom_id",
		     MAX_CUSTOM, &custom, resp) ||
	    read_str(s, unit, "reference_id", "/purchase_units/@reference_id=='default'/reference_id",
		     MAX_REF, &ref, resp) ||
	    read_str(s, unit, "invoice_id", "/purchase_units/@reference_id=='default'/invoice_id",
		     MAX_CUSTOM, &invoice, resp))
		return 0;
	int pi = -1;
	json_t *src = json_object_get(body, "payment_source");
	if (src) {
		const char *vault = json_string_value(
			json_object_get(json_object_get(src, "paypal"), "vault_id"));
		pi = payer_find(vault);
		if (pi < 0) {
			invalid(s, resp, "INVALID_PARAMETER_VALUE", "/payment_source/paypal/vault_id",
				"The vault_id names no payer of the simulator (paypal_ok, "
				"paypal_declined, paypal_refused, paypal_cannot_pay, paypal_denied, "
				"paypal_capture_declined).");
			return 0;
		}
	}
	if (s->orders.n >= s->max_orders) {
		s->st.full++;
		pp_error(s, resp, 503, "SERVICE_UNAVAILABLE",
			 "The simulator holds as many orders as it may (paypal_sim.max_orders).", NULL,
			 NULL, NULL);
		return 0;
	}
	char oid[ID_LEN + 1];
	do
		new_id(s, oid);
	while (table_find(&s->orders, oid) >= 0);
	int oi = table_add(&s->orders, oid);
	if (oi < 0) {
		pp_error(s, resp, 500, "INTERNAL_SERVER_ERROR", "Out of memory.", NULL, NULL, NULL);
		return 0;
	}
	pp_order *o = ORDER(s, oi);
	memcpy(o->id, oid, sizeof(oid));
	o->status = pi >= 0 ? O_APPROVED : O_CREATED;
	o->payer = pi;
	memcpy(o->currency, currency, 4);
	o->amount = amount;
	snprintf(o->custom_id, sizeof(o->custom_id), "%s", custom ? custom : "");
	snprintf(o->reference_id, sizeof(o->reference_id), "%s", ref ? ref : "");
	o->auth = -1;
	o->created_us = o->updated_us = c->now;
	s->st.orders++;
	log_info(s->ctx->log, "order %s: %s, %lld %s", o->id, ORDER_STATUS[o->status],
		 (long long)amount, currency);
	msg_resp_json(resp, 201, order_json(s, oi));
	return 1;
}

static int op_get_order(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
			msg_resp *resp)
{
	(void)body, (void)c;
	int oi = table_find(&s->orders, id);
	if (oi < 0)
		not_found(s, resp);
	else
		msg_resp_json(resp, 200, order_json(s, oi));
	return 0;
}

static int op_authorize(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
			msg_resp *resp)
{
	(void)body;
	int oi = table_find(&s->orders, id);
	if (oi < 0) {
		not_found(s, resp);
		return 0;
	}
	pp_order *o = ORDER(s, oi);
	if (o->status == O_CREATED) {
		unprocessable(s, resp, "ORDER_NOT_APPROVED",
			      "Payer has not yet approved the Order for payment.");
		return 1;
	}
	if (o->status == O_COMPLETED) {
		unprocessable(s, resp, "ORDER_ALREADY_AUTHORIZED", "Order already authorized.");
		return 1;
	}
	const payer *p = &PAYERS[o->payer];
	if (p->kind == P_DECLINE) {
		s->st.declines++;
		log_info(s->ctx->log, "order %s: authorization declined (%s)", o->id, p->issue);
		unprocessable(s, resp, p->issue, p->description);
		return 1;
	}
	char aid[ID_LEN + 1];
	do
		new_id(s, aid);
	while (table_find(&s->auths, aid) >= 0);
	int ai = table_add(&s->auths, aid);
	if (ai < 0) {
		pp_error(s, resp, 500, "INTERNAL_SERVER_ERROR", "Out of memory.", NULL, NULL, NULL);
		return 0;
	}
	o = ORDER(s, oi);
	pp_auth *a = AUTH(s, ai);
	memcpy(a->id, aid, sizeof(aid));
	a->order = oi;
	a->amount = o->amount;
	a->capture = -1;
	a->status = p->kind == P_DENIED ? A_DENIED : A_CREATED;
	a->created_us = a->updated_us = c->now;
	o->auth = ai;
	o->status = O_COMPLETED;
	o->updated_us = c->now;
	if (a->status == A_DENIED)
		s->st.declines++;
	else
		s->st.authorizations++;
	log_info(s->ctx->log, "order %s: authorization %s %s", o->id, a->id, AUTH_STATUS[a->status]);
	msg_resp_json(resp, 201, order_json(s, oi));
	return 1;
}

static int op_get_auth(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		       msg_resp *resp)
{
	(void)body, (void)c;
	int ai = table_find(&s->auths, id);
	if (ai < 0)
		not_found(s, resp);
	else
		msg_resp_json(resp, 200, auth_json(s, ai));
	return 0;
}

/* 422 for an action on an authorisation that is no longer CREATED. */
static void auth_state_error(paypal_sim *s, const pp_auth *a, msg_resp *resp)
{
	if (a->status == A_CAPTURED)
		unprocessable(s, resp, "AUTHORIZATION_ALREADY_CAPTURED",
			      "Authorization has been previously captured and hence cannot be "
			      "captured again or voided.");
	else if (a->status == A_VOIDED)
		unprocessable(s, resp, "AUTHORIZATION_VOIDED",
			      "A voided authorization cannot be captured or reauthorized.");
	else
		unprocessable(s, resp, "AUTHORIZATION_DENIED",
			      "A denied authorization cannot be captured or voided.");
}

static int op_capture(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		      msg_resp *resp)
{
	int ai = table_find(&s->auths, id);
	if (ai < 0) {
		not_found(s, resp);
		return 0;
	}
	pp_auth *a = AUTH(s, ai);
	pp_order *o = ORDER(s, a->order);
	int64_t amount = a->amount;
	json_t *amt = json_object_get(body, "amount");
	if (amt) {
		char cur[4];
		if (read_amount(s, amt, "/amount", &amount, cur, resp))
			return 0;
		if (strcmp(cur, o->currency) != 0) {
			unprocessable(s, resp, "CURRENCY_MISMATCH",
				      "Currency of capture must be the same as currency of "
				      "authorization.");
			return 1;
		}
	}
	if (a->status != A_CREATED) {
		auth_state_error(s, a, resp);
		return 1;
	}
	if (amount > a->amount) {
		unprocessable(s, resp, "MAX_CAPTURE_AMOUNT_EXCEEDED",
			      "Capture amount exceeds allowable limit.");
		return 1;
	}
	char cid[ID_LEN + 1];
	do
		new_id(s, cid);
	while (table_find(&s->caps, cid) >= 0);
	int ci = table_add(&s->caps, cid);
	if (ci < 0) {
		pp_error(s, resp, 500, "INTERNAL_SERVER_ERROR", "Out of memory.", NULL, NULL, NULL);
		return 0;
	}
	a = AUTH(s, ai);
	o = ORDER(s, a->order);
	pp_capture *cp = CAP(s, ci);
	memcpy(cp->id, cid, sizeof(cid));
	cp->auth = ai;
	cp->amount = amount;
	cp->created_us = cp->updated_us = c->now;
	a->capture = ci;
	a->updated_us = c->now;
	char summary[128], value[32];
	paypal_format_amount(amount, o->currency, value, sizeof(value));
	if (PAYERS[o->payer].kind == P_CAPTURE_DECLINED) {
		cp->status = C_DECLINED;
		a->status = A_DENIED;
		s->st.capture_declines++;
		snprintf(summary, sizeof(summary), "A payment capture for %s %s was declined.", value,
			 o->currency);
		push_event(s, "PAYMENT.CAPTURE.DECLINED", "capture", capture_json(s, ci), summary,
			   c->now);
	} else {
		cp->status = C_COMPLETED;
		a->status = A_CAPTURED;
		s->st.captures++;
		s->st.captured_amount += amount;
		snprintf(summary, sizeof(summary), "Payment completed for %s %s", value, o->currency);
		push_event(s, "PAYMENT.CAPTURE.COMPLETED", "capture", capture_json(s, ci), summary,
			   c->now);
	}
	log_info(s->ctx->log, "authorization %s: capture %s %s", a->id, cp->id,
		 CAP_STATUS[cp->status]);
	msg_resp_json(resp, 201, capture_json(s, ci));
	return 1;
}

static int op_void(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		   msg_resp *resp)
{
	(void)body;
	int ai = table_find(&s->auths, id);
	if (ai < 0) {
		not_found(s, resp);
		return 0;
	}
	pp_auth *a = AUTH(s, ai);
	if (a->status != A_CREATED) {
		auth_state_error(s, a, resp);
		return 1;
	}
	a->status = A_VOIDED;
	a->updated_us = c->now;
	s->st.voids++;
	log_info(s->ctx->log, "authorization %s: voided", a->id);
	if (c->representation)
		msg_resp_json(resp, 200, auth_json(s, ai));
	else
		msg_resp_set(resp, 204, NULL, NULL, 0);
	return 1;
}

static int op_get_capture(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
			  msg_resp *resp)
{
	(void)body, (void)c;
	int ci = table_find(&s->caps, id);
	if (ci < 0)
		not_found(s, resp);
	else
		msg_resp_json(resp, 200, capture_json(s, ci));
	return 0;
}

/* Refunds amount (0: what is left) of capture ci: 201 with the refund, or
 * 422; the webhook is queued. Returns 1 (the answer is final). */
static int do_refund(paypal_sim *s, int ci, int64_t amount, const pp_call *c, msg_resp *resp)
{
	pp_capture *cp = CAP(s, ci);
	const pp_order *o = ORDER(s, AUTH(s, cp->auth)->order);
	if (cp->status == C_DECLINED) {
		unprocessable(s, resp, "CAPTURE_NOT_REFUNDABLE",
			      "A declined capture cannot be refunded.");
		return 1;
	}
	int64_t left = cp->amount - cp->refunded;
	if (left <= 0) {
		unprocessable(s, resp, "CAPTURE_FULLY_REFUNDED",
			      "The capture has already been fully refunded.");
		return 1;
	}
	if (amount == 0)
		amount = left;
	if (amount > left) {
		unprocessable(s, resp, "REFUND_AMOUNT_EXCEEDED",
			      "The refund amount must be less than or equal to the capture amount "
			      "that has not yet been refunded.");
		return 1;
	}
	char rid[ID_LEN + 1];
	do
		new_id(s, rid);
	while (table_find(&s->refunds, rid) >= 0);
	if (s->refunds.n >= 4 * s->max_orders) {
		s->st.full++;
		pp_error(s, resp, 503, "SERVICE_UNAVAILABLE", "The simulator holds too many refunds.",
			 NULL, NULL, NULL);
		return 0;
	}
	int ri = table_add(&s->refunds, rid);
	if (ri < 0) {
		pp_error(s, resp, 500, "INTERNAL_SERVER_ERROR", "Out of memory.", NULL, NULL, NULL);
		return 0;
	}
	cp = CAP(s, ci);
	pp_refund *r = REFUND(s, ri);
	memcpy(r->id, rid, sizeof(rid));
	r->capture = ci;
	r->amount = amount;
	r->created_us = c->now;
	cp->refunded += amount;
	cp->status = cp->refunded == cp->amount ? C_REFUNDED : C_PARTIALLY_REFUNDED;
	cp->updated_us = c->now;
	s->st.refunds++;
	s->st.refunded_amount += amount;
	char summary[128], value[32];
	paypal_format_amount(amount, o->currency, value, sizeof(value));
	snprintf(summary, sizeof(summary), "A %s %s capture payment was refunded", value,
		 o->currency);
	push_event(s, "PAYMENT.CAPTURE.REFUNDED", "refund", refund_json(s, ri), summary, c->now);
	log_info(s->ctx->log, "capture %s: refund %s of %lld", cp->id, r->id, (long long)amount);
	msg_resp_json(resp, 201, refund_json(s, ri));
	return 1;
}

static int op_refund(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
		     msg_resp *resp)
{
	int ci = table_find(&s->caps, id);
	if (ci < 0) {
		not_found(s, resp);
		return 0;
	}
	int64_t amount = 0;
	json_t *amt = json_object_get(body, "amount");
	if (amt) {
		char cur[4];
		if (read_amount(s, amt, "/amount", &amount, cur, resp))
			return 0;
		if (strcmp(cur, ORDER(s, AUTH(s, CAP(s, ci)->auth)->order)->currency) != 0) {
			unprocessable(s, resp, "REFUND_CURRENCY_MISMATCH",
				      "Refund must be in the same currency as the capture.");
			return 1;
		}
	}
	return do_refund(s, ci, amount, c, resp);
}

static int op_get_refund(paypal_sim *s, const char *id, json_t *body, const pp_call *c,
			 msg_resp *resp)
{
	(void)body, (void)c;
	int ri = table_find(&s->refunds, id);
	if (ri < 0)
		not_found(s, resp);
	else
		msg_resp_json(resp, 200, refund_json(s, ri));
	return 0;
}

/* ---- routing ------------------------------------------------------------------------------------------ */

typedef struct pp_route {
	const char *method;
	const char *pattern;
	const char *op; /* the fault target's suffix */
	op_fn fn;       /* NULL: the token endpoint */
} pp_route;

static const pp_route ROUTES[] = {
	{ "POST", "/v1/oauth2/token", "token", NULL },
	{ "POST", "/v2/checkout/orders", "create", op_create },
	{ "GET", "/v2/checkout/orders/{id}", "get", op_get_order },
	{ "POST", "/v2/checkout/orders/{id}/authorize", "authorize", op_authorize },
	{ "GET", "/v2/payments/authorizations/{id}", "get", op_get_auth },
	{ "POST", "/v2/payments/authorizations/{id}/capture", "capture", op_capture },
	{ "POST", "/v2/payments/authorizations/{id}/void", "void", op_void },
	{ "GET", "/v2/payments/captures/{id}", "get", op_get_capture },
	{ "POST", "/v2/payments/captures/{id}/refund", "refund", op_refund },
	{ "GET", "/v2/payments/refunds/{id}", "get", op_get_refund },
};
#define NROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))

static const char *const OPS[] = { "token", "create", "authorize", "capture",
				   "void",  "refund", "get",	   NULL };

static void route_stub(void *ud, msg_req *req, msg_resp *resp)
{
	(void)ud, (void)req, (void)resp;
}

/* ---- tokens (under mu) -------------------------------------------------------------------------------- */

static void tokens_prune(paypal_sim *s, int64_t now)
{
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe(s->tokens, tmp, k, v)
	{
		if (json_integer_value(json_object_get(v, "exp")) <= now)
			json_object_del(s->tokens, k);
	}
}

/* Checks Basic client_id:secret. 0 with the client id copied, else 401 in
 * resp. */
static int basic_auth(paypal_sim *s, const msg_req *req, char *client, size_t len,
		      msg_resp *resp)
{
	const char *auth = msg_req_header(req, "Authorization");
	unsigned char dec[400];
	size_t n = 0;
	const char *b64 = auth && strncasecmp(auth, "Basic ", 6) == 0 ? auth + 6 : NULL;
	int ok = b64 && strlen(b64) < 512 &&
		 sodium_base642bin(dec, sizeof(dec) - 1, b64, strlen(b64), NULL, &n, NULL,
				   sodium_base64_VARIANT_ORIGINAL) == 0;
	char *colon = NULL;
	if (ok) {
		dec[n] = '\0';
		colon = strchr((char *)dec, ':');
		ok = colon && colon != (char *)dec && colon[1] && strlen((char *)dec) == n &&
		     (size_t)(colon - (char *)dec) < len;
	}
	if (ok) {
		*colon = '\0';
		const char *id = (const char *)dec, *secret = colon + 1;
		for (const char *p = id; ok && *p; p++)
			ok = *p > 0x20 && *p < 0x7f;
		if (ok && s->client_id[0])
			ok = strlen(id) == strlen(s->client_id) && strlen(secret) == strlen(s->secret) &&
			     sodium_memcmp(id, s->client_id, strlen(id)) == 0 &&
			     sodium_memcmp(secret, s->secret, strlen(secret)) == 0;
		if (ok)
			snprintf(client, len, "%s", id);
	}
	sodium_memzero(dec, sizeof(dec));
	if (!ok) {
		__atomic_add_fetch(&s->auth_failures, 1, __ATOMIC_RELAXED);
		oauth_error(resp, 401, "invalid_client", "Client Authentication failed");
		msg_resp_set_header(resp, "WWW-Authenticate", "Basic realm=\"PayPal\"");
	}
	return ok ? 0 : ERR_UNAUTH;
}

static int is_form(const char *ct)
{
	static const char F[] = "application/x-www-form-urlencoded";
	return ct && strncasecmp(ct, F, sizeof(F) - 1) == 0;
}

static void op_token(paypal_sim *s, const msg_req *req, int64_t now, msg_resp *resp)
{
	char client[161];
	if (basic_auth(s, req, client, sizeof(client), resp))
		return;
	form f;
	form_init(&f);
	const char *grant = NULL;
	if (is_form(msg_req_header(req, "Content-Type")) &&
	    form_parse(&f, req->body, req->body_len, 16) == 0)
		grant = form_get(&f, "grant_type");
	if (!grant || strcmp(grant, "client_credentials") != 0) {
		form_clear(&f);
		oauth_error(resp, 400, "unsupported_grant_type",
			    grant ? "Grant Type is not supported" : "Grant Type is NULL");
		return;
	}
	form_clear(&f);
	char tok[6 + TOKEN_RANDOM];
	memcpy(tok, "A21AA", 5);
	random_chars(s, TOKEN_CHARS, sizeof(TOKEN_CHARS) - 1, tok + 5, TOKEN_RANDOM);
	pthread_mutex_lock(&s->mu);
	tokens_prune(s, now);
	if (json_object_size(s->tokens) >= MAX_TOKENS) {
		pthread_mutex_unlock(&s->mu);
		pp_error(s, resp, 429, "RATE_LIMIT_REACHED",
			 "Too many requests. Blocked due to rate limiting.", NULL, NULL, NULL);
		return;
	}
	json_object_set_new(s->tokens, tok,
			    json_pack("{s:I,s:s}", "exp", (json_int_t)(now + s->token_ttl_us),
				      "client", client));
	s->st.tokens++;
	pthread_mutex_unlock(&s->mu);
	char nonce[64], tm[32], rnd[24];
	webhook_format_time(now / 1000000, tm, sizeof(tm));
	random_chars(s, TOKEN_CHARS, sizeof(TOKEN_CHARS) - 1, rnd, 20);
	snprintf(nonce, sizeof(nonce), "%s%s", tm, rnd);
	msg_resp_json(resp, 200,
		      json_pack("{s:s,s:s,s:s,s:s,s:I,s:s}", "scope", SCOPE, "access_token", tok,
				"token_type", "Bearer", "app_id", APP_ID, "expires_in",
				(json_int_t)(s->token_ttl_us / 1000000), "nonce", nonce));
}

/* The client of a valid bearer token into client; else 401 in resp. Under
 * mu. */
static int bearer(paypal_sim *s, const msg_req *req, int64_t now, char *client, size_t len,
		  msg_resp *resp)
{
	const char *auth = msg_req_header(req, "Authorization");
	const char *tok = auth && strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
	json_t *t = tok && strlen(tok) < 256 ? json_object_get(s->tokens, tok) : NULL;
	if (t && json_integer_value(json_object_get(t, "exp")) > now) {
		snprintf(client, len, "%s", json_string_value(json_object_get(t, "client")));
		return 0;
	}
	if (t)
		json_object_del(s->tokens, tok);
	s->st.token_refusals++;
	if (!tok)
		oauth_error(resp, 401, "invalid_token", "Authorization header is missing or invalid");
	else
		oauth_error(resp, 401, "invalid_token", "Access Token not found in cache");
	return ERR_UNAUTH;
}

/* ---- request ids (under mu) ---------------------------------------------------------------------------- */

static void reqid_free(reqid *r)
{
	if (!r)
		return;
	free(r->key);
	free(r->path);
	free(r->body);
	free(r);
}

static void reqid_drop_oldest(paypal_sim *s)
{
	reqid *r = s->ring[s->ring_head];
	json_object_del(s->reqix, r->key);
	reqid_free(r);
	s->ring[s->ring_head] = NULL;
	s->ring_head = (s->ring_head + 1) % s->ring_cap;
	s->ring_n--;
	s->ring_seq0++;
}

static void reqid_trim(paypal_sim *s, int64_t now)
{
	while (s->ring_n && s->ring[s->ring_head]->created_us + s->reqid_ttl_us <= now)
		reqid_drop_oldest(s);
}

static reqid *reqid_get(paypal_sim *s, const char *key)
{
	json_t *v = json_object_get(s->reqix, key);
	if (!v)
		return NULL;
	uint64_t seq = (uint64_t)json_integer_value(v);
	return s->ring[(s->ring_head + (size_t)(seq - s->ring_seq0)) % s->ring_cap];
}

static void reqid_store(paypal_sim *s, const char *key, const char *path,
			const unsigned char fp[FP_BYTES], int64_t now, const msg_resp *resp)
{
	if (s->ring_n == s->ring_cap)
		reqid_drop_oldest(s);
	reqid *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->key = strdup(key);
	r->path = strdup(path);
	r->body = malloc(resp->body_len + 1);
	if (!r->key || !r->path || !r->body) {
		reqid_free(r);
		return;
	}
	memcpy(r->fp, fp, FP_BYTES);
	r->status = resp->status;
	if (resp->body_len)
		memcpy(r->body, resp->body, resp->body_len);
	r->len = resp->body_len;
	r->created_us = now;
	uint64_t seq = s->ring_seq0 + s->ring_n;
	if (json_object_set_new(s->reqix, key, json_integer((json_int_t)seq)) != 0) {
		reqid_free(r);
		return;
	}
	s->ring[(s->ring_head + s->ring_n) % s->ring_cap] = r;
	s->ring_n++;
}

static int valid_request_id(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > PAYPAL_MAX_REQUEST_ID)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- the API pipeline ------------------------------------------------------------------------------------ */

/* Faults first, the operation's own before the provider's: trouble in front
 * of PayPal, so a failed call changes nothing and stores nothing. */
static int apply_fault(paypal_sim *s, const char *op, int64_t now, msg_resp *resp,
		       int64_t *delay_us)
{
	fault_decision d = { 0 };
	*delay_us = 0;
	if (op) {
		char target[32];
		snprintf(target, sizeof(target), FAULT_TARGET ".%s", op);
		fault_decide(s->faults, target, now, s->ctx->rng, &d);
	}
	if (!d.active)
		fault_decide(s->faults, FAULT_TARGET, now, s->ctx->rng, &d);
	if (!d.active)
		return 0;
	*delay_us = d.delay_us;
	if (d.outage) {
		__atomic_add_fetch(&s->fault_outages, 1, __ATOMIC_RELAXED);
		pp_error(s, resp, 503, "SERVICE_UNAVAILABLE", "Service Unavailable (simulated outage).",
			 NULL, NULL, NULL);
		msg_resp_set_header(resp, STRIPE_SIM_OUTAGE_HEADER, "1");
		return 1;
	}
	if (!d.fail)
		return 0;
	__atomic_add_fetch(&s->fault_failures, 1, __ATOMIC_RELAXED);
	if (d.status == 429)
		pp_error(s, resp, 429, "RATE_LIMIT_REACHED",
			 "Too many requests. Blocked due to rate limiting (simulated).", NULL, NULL,
			 NULL);
	else
		pp_error(s, resp, d.status,
			 d.status >= 500 ? "INTERNAL_SERVER_ERROR" : "SIMULATED_FAULT",
			 "An internal server error has occurred (simulated fault).", NULL, NULL, NULL);
	return 1;
}

static void fingerprint(const msg_req *req, unsigned char fp[FP_BYTES])
{
	crypto_generichash(fp, FP_BYTES, (const unsigned char *)(req->body ? req->body : ""),
			   req->body ? req->body_len : 0, NULL, 0);
}

static void paypal_api(paypal_sim *s, msg_req *req, msg_resp *resp)
{
	int64_t now = clock_now(s->ctx->clock), delay = 0;
	__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
	resp->route = "/v2";
	router_fn fn;
	void *ud = NULL;
	char allow[64];
	enum router_match m = router_match(s->api, req, &fn, &ud, allow, sizeof(allow));
	const pp_route *r = m == ROUTER_OK ? ud : NULL;
	json_t *body = NULL;
	if (apply_fault(s, r ? r->op : NULL, now, resp, &delay))
		goto out;
	if (!r) {
		if (m == ROUTER_METHOD_NOT_ALLOWED)
			pp_error(s, resp, 405, "METHOD_NOT_SUPPORTED",
				 "The server does not implement the requested HTTP method.", NULL, NULL,
				 NULL);
		else
			pp_error(s, resp, 404, "RESOURCE_NOT_FOUND",
				 "The specified resource does not exist.", NULL, NULL, NULL);
		goto out;
	}
	resp->route = r->pattern;
	if (!r->fn) {
		op_token(s, req, now, resp);
		goto out;
	}
	const char *rid = NULL;
	if (strcmp(r->method, "POST") == 0) {
		if (req->body_len) {
			jval_error e = { { 0 }, { 0 } };
			const char *ct = msg_req_header(req, "Content-Type");
			body = ct && strncasecmp(ct, "application/json", 16) == 0
				       ? jval_parse_object(req->body, req->body_len, &e)
				       : NULL;
			if (!body) {
				invalid(s, resp, "MALFORMED_REQUEST_JSON", NULL,
					"The request JSON is not well formed.");
				goto out;
			}
		}
		rid = msg_req_header(req, "PayPal-Request-Id");
		if (rid && !valid_request_id(rid)) {
			invalid(s, resp, "INVALID_PARAMETER_SYNTAX", "PayPal-Request-Id",
				"PayPal-Request-Id must be 1 to 108 printable characters.");
			goto out;
		}
	}
	if (!body)
		body = json_object();
	pp_call c = { .now = now };
	const char *prefer = msg_req_header(req, "Prefer");
	c.representation = prefer && strstr(prefer, "return=representation") != NULL;
	char client[161];
	unsigned char fp[FP_BYTES];
	char key[161 + PAYPAL_MAX_REQUEST_ID + 2];
	pthread_mutex_lock(&s->mu);
	if (bearer(s, req, now, client, sizeof(client), resp)) {
		pthread_mutex_unlock(&s->mu);
		goto out;
	}
	if (rid) {
		snprintf(key, sizeof(key), "%s\n%s", client, rid);
		fingerprint(req, fp);
		reqid_trim(s, now);
		reqid *e = reqid_get(s, key);
		if (e && (strcmp(e->path, req->path) != 0 || memcmp(e->fp, fp, FP_BYTES) != 0)) {
			s->st.request_id_errors++;
			pthread_mutex_unlock(&s->mu);
			unprocessable(s, resp, "DUPLICATE_REQUEST_ID",
				      "The PayPal-Request-Id was used before for another request.");
			goto out;
		}
		if (e) {
			s->st.replays++;
			msg_resp_set(resp, e->status, e->len ? "application/json" : NULL, e->body,
				     e->len);
			pthread_mutex_unlock(&s->mu);
			goto out;
		}
	}
	const char *id = msg_req_param(req, 0);
	int keep = r->fn(s, id ? id : "", body, &c, resp);
	if (keep && rid)
		reqid_store(s, key, req->path, fp, now, resp);
	pthread_mutex_unlock(&s->mu);
out:
	json_decref(body);
	if (!msg_resp_header(resp, "Paypal-Debug-Id")) {
		char debug[14];
		random_chars(s, "0123456789abcdef", 16, debug, 13);
		msg_resp_set_header(resp, "Paypal-Debug-Id", debug);
	}
	stripe_sim_set_delay(resp, delay);
}

/* ---- operators' routes (API.md shapes, admin token) -------------------------------------------------------- */

static int valid_target(const char *t)
{
	if (strcmp(t, FAULT_TARGET) == 0)
		return 1;
	if (strncmp(t, FAULT_TARGET ".", sizeof(FAULT_TARGET)) != 0)
		return 0;
	for (int i = 0; OPS[i]; i++)
		if (strcmp(t + sizeof(FAULT_TARGET), OPS[i]) == 0)
			return 1;
	return 0;
}

static void admin_stats(void *ud, msg_req *req, msg_resp *resp)
{
	paypal_sim *s = ud;
	if (engine_require_admin(s->ctx, req, resp))
		return;
	pthread_mutex_lock(&s->mu);
	stats st = s->st;
	size_t norders = s->orders.n, nids = s->ring_n, ntokens = json_object_size(s->tokens);
	uint64_t by[3] = { 0, 0, 0 };
	for (size_t i = 0; i < s->orders.n; i++)
		by[ORDER(s, i)->status]++;
	pthread_mutex_unlock(&s->mu);
	json_t *o = json_object();
	json_object_set_new(o, "orders", json_integer((json_int_t)norders));
	json_object_set_new(o, "orders_by_status",
			    json_pack("{s:I,s:I,s:I}", "CREATED", (json_int_t)by[0], "APPROVED",
				      (json_int_t)by[1], "COMPLETED", (json_int_t)by[2]));
	json_object_set_new(o, "authorizations", json_integer((json_int_t)st.authorizations));
	json_object_set_new(o, "declines", json_integer((json_int_t)st.declines));
	json_object_set_new(o, "captures", json_integer((json_int_t)st.captures));
	json_object_set_new(o, "capture_declines", json_integer((json_int_t)st.capture_declines));
	json_object_set_new(o, "captured_amount", json_integer(st.captured_amount));
	json_object_set_new(o, "voids", json_integer((json_int_t)st.voids));
	json_object_set_new(o, "refunds", json_integer((json_int_t)st.refunds));
	json_object_set_new(o, "refunded_amount", json_integer(st.refunded_amount));
	json_object_set_new(o, "tokens_issued", json_integer((json_int_t)st.tokens));
	json_object_set_new(o, "tokens_live", json_integer((json_int_t)ntokens));
	json_object_set_new(o, "token_refusals", json_integer((json_int_t)st.token_refusals));
	json_object_set_new(o, "replays", json_integer((json_int_t)st.replays));
	json_object_set_new(o, "request_id_errors", json_integer((json_int_t)st.request_id_errors));
	json_object_set_new(o, "request_ids", json_integer((json_int_t)nids));
	json_object_set_new(o, "refused_full", json_integer((json_int_t)st.full));
	json_object_set_new(o, "requests",
			    json_integer((json_int_t)__atomic_load_n(&s->requests, __ATOMIC_RELAXED)));
	json_object_set_new(o, "auth_failures",
			    json_integer((json_int_t)__atomic_load_n(&s->auth_failures,
								     __ATOMIC_RELAXED)));
	json_object_set_new(
		o, "faults",
		json_pack("{s:I,s:I}", "failed",
			  (json_int_t)__atomic_load_n(&s->fault_failures, __ATOMIC_RELAXED), "outages",
			  (json_int_t)__atomic_load_n(&s->fault_outages, __ATOMIC_RELAXED)));
	json_object_set_new(o, "webhooks", webhook_queue_stats(s->hooks));
	msg_resp_json(resp, 200, o);
}

static void admin_webhook(void *ud, msg_req *req, msg_resp *resp)
{
	paypal_sim *s = ud;
	webhook_queue_admin(s->ctx, s->hooks, req, resp);
}

static void admin_refund(void *ud, msg_req *req, msg_resp *resp)
{
	paypal_sim *s = ud;
	json_t *body = NULL;
	if (engine_require_admin(s->ctx, req, resp) || engine_json_body(req, resp, &body))
		return;
	jval_error e = { { 0 }, { 0 } };
	const char *cap = NULL, *auth = NULL;
	int64_t amount = 0;
	if (jval_str(body, "capture_id", 0, 1, 64, &cap, &e) ||
	    jval_str(body, "authorization_id", 0, 1, 64, &auth, &e) ||
	    jval_int(body, "amount_cents", 0, 1, 999999999999LL, &amount, NULL, &e) ||
	    (!cap && !auth && jval_fail(&e, "capture_id", "capture_id or authorization_id is needed"))) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	pp_call c = { .now = clock_now(s->ctx->clock), .representation = 1 };
	pthread_mutex_lock(&s->mu);
	int ci = cap ? table_find(&s->caps, cap) : -1;
	if (!cap) {
		int ai = table_find(&s->auths, auth);
		ci = ai >= 0 ? AUTH(s, ai)->capture : -1;
	}
	if (ci < 0) {
		pthread_mutex_unlock(&s->mu);
		msg_resp_error(resp, 404, "not_found", "no such capture",
			       json_pack("{s:s}", "capture_id", cap ? cap : auth));
	} else {
		do_refund(s, ci, amount, &c, resp);
		pthread_mutex_unlock(&s->mu);
		if (resp->status == 201)
			resp->status = 200;
	}
	json_decref(body);
}

/* ---- engine ---------------------------------------------------------------------------------------------------- */

static void sim_destroy(void *eng)
{
	paypal_sim *s = eng;
	if (!s)
		return;
	while (s->ring && s->ring_n)
		reqid_drop_oldest(s);
	free(s->ring);
	json_decref(s->reqix);
	json_decref(s->tokens);
	table_clear(&s->orders);
	table_clear(&s->auths);
	table_clear(&s->caps);
	table_clear(&s->refunds);
	webhook_queue_free(s->hooks);
	router_free(s->api);
	router_free(s->admin);
	fault_table_free(s->faults);
	sodium_memzero(s->secret, sizeof(s->secret));
	sodium_memzero(s->webhook_secret, sizeof(s->webhook_secret));
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static const char *cfg_str(const config *c, const char *key)
{
	const char *v = c ? config_get(c, key) : NULL;
	return v ? v : "";
}

static void *sim_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx || !ctx->clock || !ctx->rng || sodium_init() < 0) {
		snprintf(err, errlen, "paypal-sim needs a clock, an rng and libsodium");
		return NULL;
	}
	paypal_sim *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	const config *c = ctx->config;
	s->max_orders = (size_t)config_int_range(c, "paypal_sim.max_orders", PAYPAL_SIM_MAX_ORDERS, 1,
					100000000);
	s->ring_cap = (size_t)config_int_range(c, "paypal_sim.max_request_ids", PAYPAL_SIM_MAX_REQUEST_IDS,
				      1, 100000000);
	s->token_ttl_us = config_int_range(c, "paypal_sim.token_ttl_s", PAYPAL_SIM_TOKEN_TTL_S, 1,
				  30 * 86400) * 1000000;
	s->reqid_ttl_us = config_int_range(c, "paypal_sim.request_id_ttl_s", PAYPAL_SIM_REQUEST_ID_TTL_S, 1,
				  30 * 86400) * 1000000;
	const char *id = cfg_str(c, "paypal_sim.client_id"), *secret = cfg_str(c, "paypal_sim.secret");
	const char *whs = cfg_str(c, "paypal.webhook_secret");
	if ((id[0] != 0) != (secret[0] != 0) || strlen(id) >= sizeof(s->client_id) ||
	    strlen(secret) >= sizeof(s->secret) || strchr(id, ':') ||
	    strlen(whs) >= sizeof(s->webhook_secret)) {
		snprintf(err, errlen, "paypal_sim.client_id and paypal_sim.secret go together (at most "
				      "160 characters, no ':' in the id); paypal.webhook_secret at most "
				      "255");
		sim_destroy(s);
		return NULL;
	}
	snprintf(s->client_id, sizeof(s->client_id), "%s", id);
	snprintf(s->secret, sizeof(s->secret), "%s", secret);
	snprintf(s->webhook_secret, sizeof(s->webhook_secret), "%s", whs);
	s->faults = fault_table_new();
	s->api = router_new();
	s->admin = router_new();
	s->hooks = webhook_queue_new(WEBHOOKS_PENDING_MAX);
	s->tokens = json_object();
	s->reqix = json_object();
	s->ring = calloc(s->ring_cap, sizeof(*s->ring));
	int bad = !s->faults || !s->api || !s->admin || !s->hooks || !s->tokens || !s->reqix ||
		  !s->ring || table_init(&s->orders, sizeof(pp_order)) ||
		  table_init(&s->auths, sizeof(pp_auth)) || table_init(&s->caps, sizeof(pp_capture)) ||
		  table_init(&s->refunds, sizeof(pp_refund));
	for (size_t i = 0; !bad && i < NROUTES; i++)
		bad = router_add(s->api, ROUTES[i].method, ROUTES[i].pattern, route_stub,
				 (void *)&ROUTES[i]) != 0;
	s->fault_admin = (chaos_sim_faults){
		.ctx = ctx,
		.table = s->faults,
		.valid = valid_target,
		.hint = "this simulator takes faults for paypal, or paypal.<op> with op one of "
			"token, create, authorize, capture, void, refund, get",
	};
	bad = bad || chaos_sim_fault_routes(s->admin, &s->fault_admin) ||
	      router_add(s->admin, "GET", "/admin/paypal/stats", admin_stats, s) ||
	      router_add(s->admin, "GET", "/admin/paypal/webhook", admin_webhook, s) ||
	      router_add(s->admin, "PUT", "/admin/paypal/webhook", admin_webhook, s) ||
	      router_add(s->admin, "POST", "/admin/paypal/refund", admin_refund, s);
	if (bad) {
		snprintf(err, errlen, "paypal-sim: out of memory");
		sim_destroy(s);
		return NULL;
	}
	if (webhook_queue_set_target(s->hooks, cfg_str(c, "paypal_sim.webhook_url")) != 0) {
		snprintf(err, errlen, "paypal_sim.webhook_url must be http://HOST:PORT/PATH");
		sim_destroy(s);
		return NULL;
	}
	return s;
}

static void sim_handle(void *eng, msg_req *req, msg_resp *resp)
{
	paypal_sim *s = eng;
	if (strncmp(req->path, "/v1/", 4) == 0 || strncmp(req->path, "/v2/", 4) == 0)
		paypal_api(s, req, resp);
	else
		router_dispatch(s->admin, req, resp);
}

static void sim_tick(void *eng, int64_t now_us)
{
	paypal_sim *s = eng;
	pthread_mutex_lock(&s->mu);
	reqid_trim(s, now_us);
	pthread_mutex_unlock(&s->mu);
	webhook_queue_deliver(s->hooks, s->ctx, sign_delivery, s, now_us);
}

const engine_def paypal_sim_engine = {
	.name = "paypal-sim",
	.needs_store = 0,
	.create = sim_create,
	.handle = sim_handle,
	.tick = sim_tick,
	.ready = NULL,
	.destroy = sim_destroy,
	.serves_resil_admin = 1,
};
