/* stripe_sim: payment intents, refunds, idempotency and faults, in memory,
 * answering in Stripe's shapes. */
#include "sim/stripe_sim.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"
#include "net/form.h"
#include "net/router.h"
#include "resil/fault.h"
#include "services/chaos.h"
#include "services/webhook.h"
#include "sim/webhook_queue.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAULT_TARGET "stripe"
#define MAX_FIELDS 100          /* form pairs in one request */
#define MAX_IDEM_KEY 255        /* Stripe's limit on Idempotency-Key */
#define MAX_API_KEY 127
#define MAX_AMOUNT 99999999LL   /* Stripe's eight-digit ceiling */
#define MAX_META_KEYS 50
#define MAX_META_KEY 40
#define MAX_META_VALUE 500
#define MAX_PM 255
#define ID_RANDOM 24            /* characters after the prefix of an id */
#define ID_MAX 32
/* Memory budgets beside the counts: metadata makes sizes vary. */
#define INTENT_BYTES_MAX ((size_t)512 << 20)
#define IDEM_BYTES_MAX ((size_t)128 << 20)
#define DOC_URL "https://stripe.com/docs/error-codes/"
#define WEBHOOKS_PENDING_MAX 10000

/* ---- test cards ----------------------------------------------------------------- */

typedef struct card {
	const char *names[3];     /* tok_..., tok_visa_..., pm_card_... */
	const char *code;         /* NULL: approves */
	const char *decline_code;
	const char *message;
} card;

static const card CARDS[] = {
	{ { "tok_visa", "pm_card_visa", NULL }, NULL, NULL, NULL },
	{ { "tok_mastercard", "pm_card_mastercard", NULL }, NULL, NULL, NULL },
	{ { "tok_amex", "pm_card_amex", NULL }, NULL, NULL, NULL },
	{ { "tok_chargeDeclined", "tok_visa_chargeDeclined", "pm_card_visa_chargeDeclined" },
	  "card_declined", "generic_decline", "Your card was declined." },
	{ { "tok_chargeDeclinedInsufficientFunds", "tok_visa_chargeDeclinedInsufficientFunds",
	    "pm_card_visa_chargeDeclinedInsufficientFunds" },
	  "card_declined", "insufficient_funds", "Your card has insufficient funds." },
	{ { "tok_chargeDeclinedFraudulent", "tok_visa_chargeDeclinedFraudulent",
	    "pm_card_visa_chargeDeclinedFraudulent" },
	  "card_declined", "fraudulent", "Your card was declined." },
	{ { "tok_chargeDeclinedLostCard", "tok_visa_chargeDeclinedLostCard",
	    "pm_card_visa_chargeDeclinedLostCard" },
	  "card_declined", "lost_card", "Your card was declined." },
	{ { "tok_chargeDeclinedExpiredCard", "pm_card_chargeDeclinedExpiredCard", NULL },
	  "expired_card", "expired_card", "Your card has expired." },
	{ { "tok_chargeDeclinedIncorrectCvc", "pm_card_chargeDeclinedIncorrectCvc", NULL },
	  "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect." },
	{ { "tok_chargeDeclinedProcessingError", "pm_card_chargeDeclinedProcessingError", NULL },
	  "processing_error", "processing_error",
	  "An error occurred while processing your card. Try again in a little bit." },
};

static const card *card_find(const char *name)
{
	for (size_t i = 0; i < sizeof(CARDS) / sizeof(CARDS[0]); i++)
		for (int k = 0; k < 3; k++)
			if (CARDS[i].names[k] && strcmp(CARDS[i].names[k], name) == 0)
				return &CARDS[i];
	return NULL;
}

/* ---- payment intents ------------------------------------------------------------ */

enum pi_status {
	PI_REQUIRES_PAYMENT_METHOD,
	PI_REQUIRES_CONFIRMATION,
	PI_REQUIRES_CAPTURE,
	PI_SUCCEEDED,
	PI_CANCELED,
	PI_NSTATUS
};

static const char *const STATUS_NAMES[PI_NSTATUS] = {
	"requires_payment_method", "requires_confirmation", "requires_capture", "succeeded",
	"canceled",
};

static const char *const CAPTURE_METHODS[] = { "automatic", "automatic_async", "manual", NULL };
static const char *const CANCEL_REASONS[] = { "duplicate", "fraudulent", "requested_by_customer",
					      "abandoned", NULL };
static const char *const REFUND_REASONS[] = { "duplicate", "fraudulent", "requested_by_customer",
					      NULL };

/* A chained hash table of nodes embedded first in their owners. */
typedef struct hnode {
	struct hnode *next;
	const char *key;
} hnode;

typedef struct htab {
	hnode **b;
	size_t nb;
	size_t n;
} htab;

typedef struct intent {
	hnode h; /* key = id */
	char id[ID_MAX];
	char pm[ID_MAX];
	char charge[ID_MAX];  /* "" until confirmed */
	char currency[4];
	enum pi_status status;
	const card *card;
	const char *capture_method;      /* one of CAPTURE_METHODS */
	const char *cancellation_reason; /* one of CANCEL_REASONS or NULL */
	int64_t amount;
	int64_t amount_received;
	int64_t refunded;
	int64_t created_s;
	int64_t canceled_at_s; /* 0: not canceled */
	json_t *metadata;      /* object, owned */
	size_t bytes;
} intent;

/* One stored first response, in a FIFO from oldest to newest. */
typedef struct idem {
	hnode h; /* key = "<api key>\n<Idempotency-Key>" */
	struct idem *newer;
	char *key;
	char *path;
	uint64_t fp[2];
	int64_t created_us;
	int status;
	char *body;
	size_t body_len;
	size_t bytes;
} idem;

/* Counters under the mutex. */
typedef struct stats {
	uint64_t created, authorizations, declines, captures, cancels, refunds;
	uint64_t replays, idem_errors, full;
	int64_t captured_amount, refunded_amount;
	uint64_t by_status[PI_NSTATUS];
} stats;

typedef struct stripe_sim {
	engine_ctx *ctx;
	router *admin;
	fault_table *faults;
	chaos_sim_faults fault_admin;
	pthread_mutex_t mu;
	htab intents;
	size_t intent_bytes;
	htab idems;
	idem *oldest, *newest;
	size_t idem_bytes;
	size_t max_intents, max_idems;
	int64_t idem_ttl_us;
	char api_key[MAX_API_KEY + 1]; /* "" accepts any sk_test_ key */
	webhook_queue *hooks;          /* events for the merchant's endpoint */
	char webhook_secret[256];      /* stripe.webhook_secret; "": none sent */
	stats st;
	/* Counted before the mutex is taken, atomically. */
	uint64_t requests, auth_failures, fault_failures, fault_outages;
} stripe_sim;

/* ---- hash table ----------------------------------------------------------------- */

static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_BASIS 0xcbf29ce484222325ULL

static size_t ht_index(const htab *t, const char *key)
{
	return (size_t)(fnv1a(key, strlen(key), FNV_BASIS) & (t->nb - 1));
}

static int ht_init(htab *t, size_t nb)
{
	t->b = calloc(nb, sizeof(*t->b));
	t->nb = nb;
	t->n = 0;
	return t->b ? 0 : ERR_NOMEM;
}

static hnode *ht_get(const htab *t, const char *key)
{
	for (hnode *n = t->b[ht_index(t, key)]; n; n = n->next)
		if (strcmp(n->key, key) == 0)
			return n;
	return NULL;
}

/* Inserts node, whose key must be absent; doubles the buckets at load 1.
 * A failed growth leaves the table longer-chained but correct. */
static void ht_put(htab *t, hnode *node)
{
	if (t->n >= t->nb) {
		size_t nb = t->nb * 2;
		hnode **b = calloc(nb, sizeof(*b));
		if (b) {
			for (size_t i = 0; i < t->nb; i++) {
				for (hnode *n = t->b[i], *next; n; n = next) {
					next = n->next;
					size_t k = (size_t)(fnv1a(n->key, strlen(n->key), FNV_BASIS) &
							    (nb - 1));
					n->next = b[k];
					b[k] = n;
				}
			}
			free(t->b);
			t->b = b;
			t->nb = nb;
		}
	}
	size_t k = ht_index(t, node->key);
	node->next = t->b[k];
	t->b[k] = node;
	t->n++;
}

static void ht_del(htab *t, hnode *node)
{
	for (hnode **p = &t->b[ht_index(t, node->key)]; *p; p = &(*p)->next) {
		if (*p == node) {
			*p = node->next;
			t->n--;
			return;
		}
	}
}

/* ---- small helpers -------------------------------------------------------------- */

static const char ALNUM[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static void new_id(stripe_sim *s, const char *prefix, char *out)
{
	size_t p = strlen(prefix);
	memcpy(out, prefix, p);
	for (size_t i = 0; i < ID_RANDOM; i++)
		out[p + i] = ALNUM[rng_below(s->ctx->rng, sizeof(ALNUM) - 1)];
	out[p + ID_RANDOM] = '\0';
}

/* A JSON string of s with any invalid UTF-8 replaced by '?', so that echoing
 * a client's bytes never fails. */
static json_t *jtext(const char *s)
{
	json_t *v = json_string(s);
	if (v)
		return v;
	size_t n = strlen(s);
	char *c = malloc(n + 1);
	if (!c)
		return json_string("");
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t l = text_utf8_len((const unsigned char *)s + i, n - i);
		if (l == 0) {
			c[o++] = '?';
			i++;
		} else {
			memcpy(c + o, s + i, l);
			o += l;
			i += l;
		}
	}
	c[o] = '\0';
	v = json_string(c);
	free(c);
	return v ? v : json_string("");
}

static int valid_utf8(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t l = text_utf8_len((const unsigned char *)s + i, n - i);
		if (l == 0)
			return 0;
		i += l;
	}
	return 1;
}

static int one_of(const char *v, const char *const *set)
{
	for (int i = 0; set[i]; i++)
		if (strcmp(v, set[i]) == 0)
			return i;
	return -1;
}

/* ---- Stripe's error shape ------------------------------------------------------- */

/* {"error": {code?, decline_code?, doc_url?, message, param?, ...extra, type}}.
 * extra (stolen, may be NULL) adds fields such as payment_intent. */
static void stripe_error(msg_resp *resp, int status, const char *type, const char *code,
			 const char *decline_code, const char *param, json_t *extra,
			 const char *fmt, ...) __attribute__((format(printf, 8, 9)));

static void stripe_error(msg_resp *resp, int status, const char *type, const char *code,
			 const char *decline_code, const char *param, json_t *extra,
			 const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *e = json_object();
	if (code) {
		json_object_set_new(e, "code", json_string(code));
		char url[128];
		int n = snprintf(url, sizeof(url), "%s%s", DOC_URL, code);
		for (int i = (int)strlen(DOC_URL); i < n && i < (int)sizeof(url); i++)
			if (url[i] == '_')
				url[i] = '-';
		json_object_set_new(e, "doc_url", json_string(url));
	}
	if (decline_code)
		json_object_set_new(e, "decline_code", json_string(decline_code));
	json_object_set_new(e, "message", jtext(msg));
	if (param)
		json_object_set_new(e, "param", jtext(param));
	if (extra) {
		json_object_update(e, extra);
		json_decref(extra);
	}
	json_object_set_new(e, "type", json_string(type));
	msg_resp_json(resp, status, json_pack("{s:o}", "error", e));
}

static void invalid(msg_resp *resp, const char *code, const char *param, const char *message)
{
	stripe_error(resp, 400, "invalid_request_error", code, NULL, param, NULL, "%s", message);
}

/* ---- JSON of the objects -------------------------------------------------------- */

static json_t *opt_str(const char *s)
{
	return s && s[0] ? jtext(s) : json_null();
}

static json_t *pm_json(const intent *pi)
{
	return json_pack("{s:s,s:s,s:s}", "id", pi->pm, "object", "payment_method", "type", "card");
}

static json_t *last_error_json(const intent *pi)
{
	if (pi->status != PI_REQUIRES_PAYMENT_METHOD || !pi->card || !pi->card->code)
		return json_null();
	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s}", "charge", pi->charge, "code", pi->card->code,
			 "decline_code", pi->card->decline_code, "message", pi->card->message,
			 "payment_method", pm_json(pi), "type", "card_error");
}

static json_t *intent_json(const intent *pi)
{
	int64_t capturable = pi->status == PI_REQUIRES_CAPTURE ? pi->amount : 0;
	/* A declined intent gives its payment method up, as Stripe's does; it
	 * stays named in last_payment_error. */
	const char *pm = pi->status == PI_REQUIRES_PAYMENT_METHOD ? NULL : pi->pm;
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(pi->id));
	json_object_set_new(o, "object", json_string("payment_intent"));
	json_object_set_new(o, "amount", json_integer(pi->amount));
	json_object_set_new(o, "amount_capturable", json_integer(capturable));
	json_object_set_new(o, "amount_received", json_integer(pi->amount_received));
	json_object_set_new(o, "canceled_at",
			    pi->canceled_at_s ? json_integer(pi->canceled_at_s) : json_null());
	json_object_set_new(o, "cancellation_reason", opt_str(pi->cancellation_reason));
	json_object_set_new(o, "capture_method", json_string(pi->capture_method));
	json_object_set_new(o, "confirmation_method", json_string("automatic"));
	json_object_set_new(o, "created", json_integer(pi->created_s));
	json_object_set_new(o, "currency", json_string(pi->currency));
	json_object_set_new(o, "last_payment_error", last_error_json(pi));
	json_object_set_new(o, "latest_charge", opt_str(pi->charge));
	json_object_set_new(o, "livemode", json_false());
	json_object_set_new(o, "metadata", json_deep_copy(pi->metadata));
	json_object_set_new(o, "payment_method", opt_str(pm));
	json_object_set_new(o, "payment_method_types", json_pack("[s]", "card"));
	json_object_set_new(o, "status", json_string(STATUS_NAMES[pi->status]));
	return o;
}

/* ---- parameters ----------------------------------------------------------------- */

/* Refuses unknown and repeated parameters (metadata[...] allowed when
 * with_metadata) and values that are not UTF-8. 0 or ERR_INVALID with resp
 * filled. */
static int check_params(const form *f, const char *const *allowed, int with_metadata,
			msg_resp *resp)
{
	for (size_t i = 0; i < f->n; i++) {
		const char *name = f->fields[i].name;
		if (!valid_utf8(name) || !valid_utf8(f->fields[i].value)) {
			invalid(resp, "parameter_invalid_string", name,
				"Invalid string: parameters must be valid UTF-8");
			return ERR_INVALID;
		}
		int known = one_of(name, allowed) >= 0 ||
			    (with_metadata && strncmp(name, "metadata[", 9) == 0);
		if (!known) {
			stripe_error(resp, 400, "invalid_request_error", "parameter_unknown", NULL,
				     name, NULL, "Received unknown parameter: %s", name);
			return ERR_INVALID;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(f->fields[k].name, name) == 0) {
				stripe_error(resp, 400, "invalid_request_error", NULL, NULL, name,
					     NULL, "Received duplicate parameter: %s", name);
				return ERR_INVALID;
			}
		}
	}
	return 0;
}

/* metadata[key]=value pairs as an object (empty values dropped, as Stripe
 * unsets them). NULL with resp filled when over Stripe's limits. */
static json_t *read_metadata(const form *f, msg_resp *resp, size_t *bytes)
{
	json_t *m = json_object();
	for (size_t i = 0; i < f->n; i++) {
		const char *name = f->fields[i].name, *v = f->fields[i].value;
		if (strncmp(name, "metadata[", 9) != 0)
			continue;
		size_t n = strlen(name);
		size_t klen = n - 10;
		if (n < 11 || name[n - 1] != ']' || klen > MAX_META_KEY ||
		    memchr(name + 9, '[', klen) || memchr(name + 9, ']', klen)) {
			stripe_error(resp, 400, "invalid_request_error", NULL, NULL, name, NULL,
				     "Invalid metadata key: keys are 1 to %d characters inside "
				     "metadata[...]",
				     MAX_META_KEY);
			json_decref(m);
			return NULL;
		}
		if (strlen(v) > MAX_META_VALUE) {
			stripe_error(resp, 400, "invalid_request_error", NULL, NULL, name, NULL,
				     "Metadata values can have up to %d characters", MAX_META_VALUE);
			json_decref(m);
			return NULL;
		}
		if (!v[0])
			continue;
		if (json_object_size(m) >= MAX_META_KEYS) {
			stripe_error(resp, 400, "invalid_request_error", NULL, NULL, "metadata", NULL,
				     "You can specify up to %d keys in metadata", MAX_META_KEYS);
			json_decref(m);
			return NULL;
		}
		char key[MAX_META_KEY + 1];
		memcpy(key, name + 9, klen);
		key[klen] = '\0';
		json_object_set_new(m, key, json_string(v));
		*bytes += klen + strlen(v) + 64;
	}
	return m;
}

/* An integer parameter in [1, max]. 0 absent, 1 read, ERR_INVALID with resp
 * filled. */
static int read_amount(const form *f, const char *name, int64_t max, int64_t *out,
		       msg_resp *resp)
{
	const char *v = form_get(f, name);
	if (!v)
		return 0;
	size_t n = strlen(v);
	int ok = n > 0 && n <= 18;
	for (size_t i = 0; ok && i < n; i++)
		ok = v[i] >= '0' && v[i] <= '9';
	if (!ok) {
		stripe_error(resp, 400, "invalid_request_error", "parameter_invalid_integer", NULL,
			     name, NULL, "Invalid integer: %s", v);
		return ERR_INVALID;
	}
	long long x = strtoll(v, NULL, 10);
	if (x < 1) {
		stripe_error(resp, 400, "invalid_request_error", "amount_too_small", NULL, name, NULL,
			     "This value must be greater than or equal to 1.");
		return ERR_INVALID;
	}
	if (x > max) {
		stripe_error(resp, 400, "invalid_request_error", "amount_too_large", NULL, name, NULL,
			     "Amount must be no more than %lld", (long long)max);
		return ERR_INVALID;
	}
	*out = x;
	return 1;
}

static int missing(msg_resp *resp, const char *name)
{
	stripe_error(resp, 400, "invalid_request_error", "parameter_missing", NULL, name, NULL,
		     "Missing required param: %s.", name);
	return ERR_INVALID;
}

static int bad_enum(msg_resp *resp, const char *name, const char *const *set)
{
	char list[160] = "";
	size_t o = 0;
	for (int i = 0; set[i] && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s%s", i ? ", " : "",
				      set[i + 1] ? "" : "or ", set[i]);
	stripe_error(resp, 400, "invalid_request_error", NULL, NULL, name, NULL,
		     "Invalid %s: must be one of %s", name, list);
	return ERR_INVALID;
}

/* ---- state changes (under mu) --------------------------------------------------- */

static void set_status(stripe_sim *s, intent *pi, enum pi_status to)
{
	s->st.by_status[pi->status]--;
	pi->status = to;
	s->st.by_status[to]++;
}

static intent *intent_get(stripe_sim *s, const char *id)
{
	return (intent *)ht_get(&s->intents, id);
}

static void intent_free(intent *pi)
{
	if (!pi)
		return;
	json_decref(pi->metadata);
	free(pi);
}

static void unexpected_state(msg_resp *resp, const intent *pi, const char *param,
			     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void unexpected_state(msg_resp *resp, const intent *pi, const char *param,
			     const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stripe_error(resp, 400, "invalid_request_error", "payment_intent_unexpected_state", NULL,
		     param, json_pack("{s:o}", "payment_intent", intent_json(pi)), "%s", msg);
}

static void no_such_intent(msg_resp *resp, int status, const char *param, const char *id)
{
	stripe_error(resp, status, "invalid_request_error", "resource_missing", NULL, param, NULL,
		     "No such payment_intent: '%s'", id);
}

/* Each operation answers into resp and returns 1 when the answer is to be
 * stored for its Idempotency-Key: once the parameters are valid and the
 * objects they name exist (the endpoint "began executing", in Stripe's
 * words). Validation failures are not stored, so the key can be used again. */
typedef int (*op_fn)(stripe_sim *s, const char *id, const form *f, msg_resp *resp);

static int op_create(stripe_sim *s, const char *id, const form *f, msg_resp *resp)
{
	static const char *const allowed[] = { "amount", "currency", "payment_method",
					       "confirm", "capture_method", "description", NULL };
	if (check_params(f, allowed, 1, resp))
		return 0;
	int64_t amount = 0;
	int rc = read_amount(f, "amount", MAX_AMOUNT, &amount, resp);
	if (rc < 0)
		return 0;
	if (rc == 0)
		return missing(resp, "amount"), 0;
	const char *cur = form_get(f, "currency");
	if (!cur)
		return missing(resp, "currency"), 0;
	if (strlen(cur) != 3 || cur[0] < 'a' || cur[0] > 'z' || cur[1] < 'a' || cur[1] > 'z' ||
	    cur[2] < 'a' || cur[2] > 'z') {
		stripe_error(resp, 400, "invalid_request_error", NULL, NULL, "currency", NULL,
			     "Invalid currency: %s. Stripe currently supports three-letter ISO "
			     "currency codes in lowercase.",
			     cur);
		return 0;
	}
	const char *pm = form_get(f, "payment_method");
	if (!pm || !pm[0])
		return missing(resp, "payment_method"), 0;
	const char *confirm = form_get(f, "confirm");
	int do_confirm = 0;
	if (confirm) {
		if (strcmp(confirm, "true") == 0)
			do_confirm = 1;
		else if (strcmp(confirm, "false") != 0) {
			stripe_error(resp, 400, "invalid_request_error", "parameter_invalid_boolean",
				     NULL, "confirm", NULL, "Invalid boolean: %s", confirm);
			return 0;
		}
	}
	const char *cm = form_get(f, "capture_method");
	int cmi = cm ? one_of(cm, CAPTURE_METHODS) : 0;
	if (cmi < 0)
		return bad_enum(resp, "capture_method", CAPTURE_METHODS), 0;
	size_t bytes = sizeof(intent);
	json_t *meta = read_metadata(f, resp, &bytes);
	if (!meta)
		return 0;
	const card *c = strlen(pm) <= MAX_PM ? card_find(pm) : NULL;
	if (!c) {
		int is_tok = strncmp(pm, "tok_", 4) == 0;
		stripe_error(resp, 400, "invalid_request_error", "resource_missing", NULL,
			     "payment_method", NULL, "No such %s: '%.*s'",
			     is_tok ? "token" : "PaymentMethod", 100, pm);
		json_decref(meta);
		return 0;
	}
	if (s->intents.n >= s->max_intents || s->intent_bytes + bytes > INTENT_BYTES_MAX) {
		s->st.full++;
		stripe_error(resp, 503, "api_error", NULL, NULL, NULL, NULL,
			     "The simulator holds its maximum of %zu payment intents; no more "
			     "can be created.",
			     s->intents.n);
		json_decref(meta);
		return 0;
	}
	intent *pi = calloc(1, sizeof(*pi));
	if (!pi) {
		json_decref(meta);
		stripe_error(resp, 500, "api_error", NULL, NULL, NULL, NULL, "out of memory");
		return 0;
	}
	do
		new_id(s, "pi_", pi->id);
	while (intent_get(s, pi->id));
	pi->h.key = pi->id;
	new_id(s, "pm_", pi->pm);
	memcpy(pi->currency, cur, 4);
	pi->amount = amount;
	pi->card = c;
	pi->capture_method = CAPTURE_METHODS[cmi];
	pi->created_s = clock_now(s->ctx->clock) / 1000000;
	pi->metadata = meta;
	pi->bytes = bytes;
	pi->status = PI_REQUIRES_CONFIRMATION;
	ht_put(&s->intents, &pi->h);
	s->intent_bytes += bytes;
	s->st.created++;
	s->st.by_status[pi->status]++;
	if (!do_confirm) {
		msg_resp_json(resp, 200, intent_json(pi));
		return 1;
	}
	new_id(s, "ch_", pi->charge);
	if (c->code) {
		set_status(s, pi, PI_REQUIRES_PAYMENT_METHOD);
		s->st.declines++;
		log_info(s->ctx->log, "payment intent %s: declined (%s)", pi->id, c->decline_code);
		stripe_error(resp, 402, "card_error", c->code, c->decline_code, NULL,
			     json_pack("{s:s,s:o,s:o}", "charge", pi->charge, "payment_intent",
				       intent_json(pi), "payment_method", pm_json(pi)),
			     "%s", c->message);
		return 1;
	}
	if (strcmp(pi->capture_method, "manual") == 0) {
		set_status(s, pi, PI_REQUIRES_CAPTURE);
		s->st.authorizations++;
	} else {
		set_status(s, pi, PI_SUCCEEDED);
		pi->amount_received = amount;
		s->st.captures++;
		s->st.captured_amount += amount;
	}
	msg_resp_json(resp, 200, intent_json(pi));
	return 1;
}

static int op_get(stripe_sim *s, const char *id, const form *f, msg_resp *resp)
{
	intent *pi = intent_get(s, id);
	if (!pi)
		no_such_intent(resp, 404, "intent", id);
	else
		msg_resp_json(resp, 200, intent_json(pi));
	return 0;
}

/* ---- webhooks -------------------------------------------------------------------- */

/* The charge of a captured intent with its latest refund (borrowed), as
 * charge.refunded carries it. */
static json_t *charge_json(const intent *pi, json_t *refund)
{
	json_t *refunds = json_pack("{s:s,s:[O],s:b,s:i}", "object", "list", "data", refund,
				    "has_more", 0, "total_count", 1);
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:b,s:s,s:s,s:b,s:s,s:o}", "id", pi->charge, "object",
			 "charge", "amount", (json_int_t)pi->amount, "amount_captured",
			 (json_int_t)pi->amount_received, "amount_refunded",
			 (json_int_t)pi->refunded, "captured", 1, "currency", pi->currency,
			 "payment_intent", pi->id, "refunded", pi->refunded >= pi->amount_received,
			 "status", "succeeded", "refunds", refunds);
}

/* Queues the event type about object (stolen), when webhooks are on; under
 * mu. */
static void push_event(stripe_sim *s, const char *type, json_t *object)
{
	if (!s->webhook_secret[0] || !object) {
		json_decref(object);
		return;
	}
	char id[ID_MAX];
	new_id(s, "evt_", id);
	int64_t now = clock_now(s->ctx->clock);
	json_t *ev = json_pack("{s:s,s:s,s:s,s:I,s:b,s:i,s:{s:n,s:n},s:s,s:{s:o}}", "id", id,
			       "object", "event", "api_version", "2024-06-20", "created",
			       (json_int_t)(now / 1000000), "livemode", 0, "pending_webhooks", 1,
			       "request", "id", "idempotency_key", "type", type, "data", "object",
			       object);
	char *body = ev ? jval_dump(ev) : NULL;
	json_decref(ev);
	if (body && webhook_queue_push(s->hooks, body, now) && s->ctx->wake)
		s->ctx->wake(s->ctx->wake_ud);
	free(body);
}

/* Stripe-Signature for one delivery attempt, timestamped now. */
static int sign_delivery(void *ud, int64_t now_us, const char *body, size_t len, msg_req *req)
{
	stripe_sim *s = ud;
	char sig[WEBHOOK_SIG_MAX + 32];
	if (webhook_stripe_sign(s->webhook_secret, now_us / 1000000, body, len, sig, sizeof(sig)))
		return ERR_INVALID;
	return msg_req_add_header(req, WEBHOOK_STRIPE_HEADER, sig);
}

static int op_capture(stripe_sim *s, const char *id, const form *f, msg_resp *resp)
{
	static const char *const allowed[] = { "amount_to_capture", NULL };
	if (check_params(f, allowed, 0, resp))
		return 0;
	int64_t atc = 0;
	int has = read_amount(f, "amount_to_capture", MAX_AMOUNT, &atc, resp);
	if (has < 0)
		return 0;
	intent *pi = intent_get(s, id);
	if (!pi) {
		no_such_intent(resp, 404, "intent", id);
		return 0;
	}
	if (pi->status != PI_REQUIRES_CAPTURE) {
		unexpected_state(resp, pi, NULL,
				 "This PaymentIntent could not be captured because it has a status "
				 "of %s. Only a PaymentIntent with one of the following statuses "
				 "may be captured: requires_capture.",
				 STATUS_NAMES[pi->status]);
		return 1;
	}
	if (has && atc > pi->amount) {
		stripe_error(resp, 400, "invalid_request_error", "amount_too_large", NULL,
			     "amount_to_capture", NULL,
			     "The amount to capture (%lld) is greater than the amount capturable "
			     "(%lld).",
			     (long long)atc, (long long)pi->amount);
		return 1;
	}
	pi->amount_received = has ? atc : pi->amount;
	set_status(s, pi, PI_SUCCEEDED);
	s->st.captures++;
	s->st.captured_amount += pi->amount_received;
	log_info(s->ctx->log, "payment intent %s: captured %lld", pi->id,
		 (long long)pi->amount_received);
	push_event(s, "payment_intent.succeeded", intent_json(pi));
	msg_resp_json(resp, 200, intent_json(pi));
	return 1;
}

static int op_cancel(stripe_sim *s, const char *id, const form *f, msg_resp *resp)
{
	static const char *const allowed[] = { "cancellation_reason", NULL };
	if (check_params(f, allowed, 0, resp))
		return 0;
	const char *reason = form_get(f, "cancellation_reason");
	int ri = reason ? one_of(reason, CANCEL_REASONS) : 0;
	if (ri < 0)
		return bad_enum(resp, "cancellation_reason", CANCEL_REASONS), 0;
	intent *pi = intent_get(s, id);
	if (!pi) {
		no_such_intent(resp, 404, "intent", id);
		return 0;
	}
	if (pi->status == PI_SUCCEEDED || pi->status == PI_CANCELED) {
		unexpected_state(resp, pi, NULL,
				 "You cannot cancel this PaymentIntent because it has a status of "
				 "%s. Only a PaymentIntent with one of the following statuses may "
				 "be canceled: requires_payment_method, requires_capture, "
				 "requires_confirmation, requires_action, processing.",
				 STATUS_NAMES[pi->status]);
		return 1;
	}
	pi->cancellation_reason = reason ? CANCEL_REASONS[ri] : NULL;
	pi->canceled_at_s = clock_now(s->ctx->clock) / 1000000;
	if (pi->canceled_at_s == 0)
		pi->canceled_at_s = 1;
	set_status(s, pi, PI_CANCELED);
	s->st.cancels++;
	log_info(s->ctx->log, "payment intent %s: canceled", pi->id);
	msg_resp_json(resp, 200, intent_json(pi));
	return 1;
}

static int op_refund(stripe_sim *s, const char *id, const form *f, msg_resp *resp)
{
	static const char *const allowed[] = { "payment_intent", "amount", "reason", NULL };
	if (check_params(f, allowed, 1, resp))
		return 0;
	const char *pid = form_get(f, "payment_intent");
	if (!pid || !pid[0])
		return missing(resp, "payment_intent"), 0;
	int64_t amount = 0;
	int has = read_amount(f, "amount", MAX_AMOUNT, &amount, resp);
	if (has < 0)
		return 0;
	const char *reason = form_get(f, "reason");
	if (reason && one_of(reason, REFUND_REASONS) < 0)
		return bad_enum(resp, "reason", REFUND_REASONS), 0;
	size_t bytes = 0;
	json_t *meta = read_metadata(f, resp, &bytes);
	if (!meta)
		return 0;
	intent *pi = strlen(pid) < ID_MAX ? intent_get(s, pid) : NULL;
	if (!pi) {
		json_decref(meta);
		no_such_intent(resp, 400, "payment_intent", pid);
		return 0;
	}
	if (pi->status != PI_SUCCEEDED) {
		json_decref(meta);
		unexpected_state(resp, pi, "payment_intent",
				 "This PaymentIntent (%s) does not have a successful charge to "
				 "refund: its status is %s.",
				 pi->id, STATUS_NAMES[pi->status]);
		return 1;
	}
	int64_t left = pi->amount_received - pi->refunded;
	if (left <= 0) {
		json_decref(meta);
		stripe_error(resp, 400, "invalid_request_error", "charge_already_refunded", NULL,
			     NULL, NULL, "Charge %s has already been refunded.", pi->charge);
		return 1;
	}
	if (!has)
		amount = left;
	if (amount > left) {
		json_decref(meta);
		stripe_error(resp, 400, "invalid_request_error", "amount_too_large", NULL, "amount",
			     NULL,
			     "Refund amount (%lld) is greater than unrefunded amount on charge "
			     "(%lld)",
			     (long long)amount, (long long)left);
		return 1;
	}
	pi->refunded += amount;
	s->st.refunds++;
	s->st.refunded_amount += amount;
	char rid[ID_MAX];
	new_id(s, "re_", rid);
	log_info(s->ctx->log, "payment intent %s: refunded %lld", pi->id, (long long)amount);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(rid));
	json_object_set_new(o, "object", json_string("refund"));
	json_object_set_new(o, "amount", json_integer(amount));
	json_object_set_new(o, "charge", json_string(pi->charge));
	json_object_set_new(o, "created", json_integer(clock_now(s->ctx->clock) / 1000000));
	json_object_set_new(o, "currency", json_string(pi->currency));
	json_object_set_new(o, "metadata", meta);
	json_object_set_new(o, "payment_intent", json_string(pi->id));
	json_object_set_new(o, "reason", opt_str(reason));
	json_object_set_new(o, "status", json_string("succeeded"));
	push_event(s, "charge.refunded", charge_json(pi, o));
	msg_resp_json(resp, 200, o);
	return 1;
}

/* ---- routing of /v1 ------------------------------------------------------------- */

typedef struct v1_route {
	const char *method;
	const char *route; /* template, for metrics labels */
	op_fn op;
} v1_route;

static const v1_route R_CREATE = { "POST", "/v1/payment_intents", op_create };
static const v1_route R_GET = { "GET", "/v1/payment_intents/{id}", op_get };
static const v1_route R_CAPTURE = { "POST", "/v1/payment_intents/{id}/capture", op_capture };
static const v1_route R_CANCEL = { "POST", "/v1/payment_intents/{id}/cancel", op_cancel };
static const v1_route R_REFUND = { "POST", "/v1/refunds", op_refund };

/* The route of (method, path), copying the intent id from the path into id
 * (ID_MAX bytes); NULL when Stripe would not recognise the URL. */
static const v1_route *v1_match(const char *method, const char *path, char *id)
{
	static const char PI[] = "/v1/payment_intents";
	id[0] = '\0';
	const v1_route *r = NULL;
	if (strcmp(path, PI) == 0)
		r = &R_CREATE;
	else if (strcmp(path, "/v1/refunds") == 0)
		r = &R_REFUND;
	else if (strncmp(path, PI, sizeof(PI) - 1) == 0 && path[sizeof(PI) - 1] == '/') {
		const char *seg = path + sizeof(PI);
		const char *slash = strchr(seg, '/');
		size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
		if (n == 0 || n >= ID_MAX)
			return NULL;
		for (size_t i = 0; i < n; i++)
			if (!strchr(ALNUM, seg[i]) && seg[i] != '_')
				return NULL;
		memcpy(id, seg, n);
		id[n] = '\0';
		if (!slash)
			r = &R_GET;
		else if (strcmp(slash, "/capture") == 0)
			r = &R_CAPTURE;
		else if (strcmp(slash, "/cancel") == 0)
			r = &R_CANCEL;
	}
	return r && strcmp(r->method, method) == 0 ? r : NULL;
}

/* ---- idempotency (under mu) ----------------------------------------------------- */

static int cmp_field(const void *a, const void *b)
{
	const form_field *x = *(const form_field *const *)a, *y = *(const form_field *const *)b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

/* Two independent 64-bit hashes of the parameters in name order, so the
 * order the client sent them in does not matter. */
static void fingerprint(const form *f, uint64_t fp[2])
{
	fp[0] = FNV_BASIS;
	fp[1] = 0x84222325cbf29ce4ULL;
	const form_field **sorted = f->n ? malloc(f->n * sizeof(*sorted)) : NULL;
	if (f->n && !sorted) {
		fp[0] = fp[1] = 0;
		return;
	}
	for (size_t i = 0; i < f->n; i++)
		sorted[i] = &f->fields[i];
	if (f->n)
		qsort(sorted, f->n, sizeof(*sorted), cmp_field);
	for (size_t i = 0; i < f->n; i++) {
		const char *parts[2] = { sorted[i]->name, sorted[i]->value };
		for (int k = 0; k < 2; k++) {
			size_t n = strlen(parts[k]) + 1; /* the NUL separates */
			fp[0] = fnv1a(parts[k], n, fp[0]);
			fp[1] = fnv1a(parts[k], n, fp[1] ^ 0x9e3779b97f4a7c15ULL);
		}
	}
	free(sorted);
}

static void idem_drop_oldest(stripe_sim *s)
{
	idem *e = s->oldest;
	if (!e)
		return;
	s->oldest = e->newer;
	if (!s->oldest)
		s->newest = NULL;
	ht_del(&s->idems, &e->h);
	s->idem_bytes -= e->bytes;
	free(e->key);
	free(e->path);
	free(e->body);
	free(e);
}

/* Forgets responses older than the retention, and the oldest beyond the
 * bounds. */
static void idem_trim(stripe_sim *s, int64_t now)
{
	while (s->oldest && (now - s->oldest->created_us >= s->idem_ttl_us ||
			     s->idems.n > s->max_idems || s->idem_bytes > IDEM_BYTES_MAX))
		idem_drop_oldest(s);
}

static void idem_store(stripe_sim *s, const char *key, const char *path, const uint64_t fp[2],
		       int64_t now, const msg_resp *resp)
{
	idem *e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->key = strdup(key);
	e->path = strdup(path);
	e->body = malloc(resp->body_len + 1);
	if (!e->key || !e->path || !e->body) {
		free(e->key);
		free(e->path);
		free(e->body);
		free(e);
		return;
	}
	if (resp->body_len)
		memcpy(e->body, resp->body, resp->body_len);
	e->body[resp->body_len] = '\0';
	e->body_len = resp->body_len;
	e->status = resp->status;
	e->fp[0] = fp[0];
	e->fp[1] = fp[1];
	e->created_us = now;
	e->h.key = e->key;
	e->bytes = sizeof(*e) + strlen(key) + strlen(path) + resp->body_len + 3;
	ht_put(&s->idems, &e->h);
	if (s->newest)
		s->newest->newer = e;
	else
		s->oldest = e;
	s->newest = e;
	s->idem_bytes += e->bytes;
	idem_trim(s, now);
}

/* ---- authentication ------------------------------------------------------------- */

/* 0 with the key copied to key (MAX_API_KEY + 1 bytes), or ERR_UNAUTH with a
 * Stripe 401 in resp. */
static int authenticate(stripe_sim *s, const msg_req *req, msg_resp *resp, char *key)
{
	const char *auth = msg_req_header(req, "Authorization");
	if (!auth || !auth[0]) {
		stripe_error(resp, 401, "invalid_request_error", NULL, NULL, NULL, NULL,
			     "You did not provide an API key. You need to provide your API key in "
			     "the Authorization header, using Bearer auth (e.g. 'Authorization: "
			     "Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication "
			     "for details, or we can help at https://support.stripe.com/.");
		msg_resp_set_header(resp, "WWW-Authenticate", "Bearer realm=\"Stripe\"");
		return ERR_UNAUTH;
	}
	const char *tok = strncasecmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL;
	size_t n = tok ? strlen(tok) : 0;
	int ok = tok && n > 8 && n <= MAX_API_KEY && strncmp(tok, "sk_test_", 8) == 0;
	for (size_t i = 0; ok && i < n; i++)
		ok = strchr(ALNUM, tok[i]) != NULL || tok[i] == '_';
	if (ok && s->api_key[0])
		ok = strcmp(tok, s->api_key) == 0;
	if (!ok) {
		char masked[32] = "";
		if (tok && n > 12 && n <= MAX_API_KEY)
			snprintf(masked, sizeof(masked), "%.8s****%s", tok, tok + n - 4);
		stripe_error(resp, 401, "invalid_request_error", NULL, NULL, NULL, NULL,
			     "Invalid API Key provided: %s", masked[0] ? masked : "****");
		msg_resp_set_header(resp, "WWW-Authenticate", "Bearer realm=\"Stripe\"");
		return ERR_UNAUTH;
	}
	memcpy(key, tok, n + 1);
	return 0;
}

static int valid_idem_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > MAX_IDEM_KEY)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- the /v1 pipeline ----------------------------------------------------------- */

void stripe_sim_set_delay(msg_resp *resp, int64_t delay_us)
{
	if (delay_us <= 0)
		return;
	char v[32];
	snprintf(v, sizeof(v), "%" PRId64, delay_us);
	msg_resp_set_header(resp, STRIPE_SIM_DELAY_HEADER, v);
}

/* Faults first: they stand for trouble between the caller and Stripe's API,
 * so a failed call never reaches the state and never stores an idempotent
 * answer (a retry with the same key can succeed). */
static int apply_fault(stripe_sim *s, int64_t now, msg_resp *resp, int64_t *delay_us)
{
	fault_decision d;
	*delay_us = 0;
	if (fault_decide(s->faults, FAULT_TARGET, now, s->ctx->rng, &d) != 0 || !d.active)
		return 0;
	*delay_us = d.delay_us;
	if (d.outage) {
		__atomic_add_fetch(&s->fault_outages, 1, __ATOMIC_RELAXED);
		stripe_error(resp, 503, "api_error", NULL, NULL, NULL, NULL,
			     "Stripe is unavailable (simulated outage).");
		msg_resp_set_header(resp, STRIPE_SIM_OUTAGE_HEADER, "1");
		return 1;
	}
	if (!d.fail)
		return 0;
	__atomic_add_fetch(&s->fault_failures, 1, __ATOMIC_RELAXED);
	if (d.status == 429)
		stripe_error(resp, 429, "invalid_request_error", "rate_limit", NULL, NULL, NULL,
			     "Too many requests hit the API too quickly (simulated).");
	else
		stripe_error(resp, d.status, "api_error", NULL, NULL, NULL, NULL,
			     "An error occurred with our connection to Stripe (simulated fault, "
			     "status %d).",
			     d.status);
	return 1;
}

static int is_form(const char *ct)
{
	static const char F[] = "application/x-www-form-urlencoded";
	return ct && strncasecmp(ct, F, sizeof(F) - 1) == 0 &&
	       (ct[sizeof(F) - 1] == '\0' || ct[sizeof(F) - 1] == ';' || ct[sizeof(F) - 1] == ' ');
}

static void stripe_v1(stripe_sim *s, msg_req *req, msg_resp *resp)
{
	int64_t now = clock_now(s->ctx->clock);
	int64_t delay = 0;
	form f;
	form_init(&f);
	char key[MAX_API_KEY + 1], id[ID_MAX];
	__atomic_add_fetch(&s->requests, 1, __ATOMIC_RELAXED);
	resp->route = "/v1";
	if (apply_fault(s, now, resp, &delay))
		goto out;
	if (authenticate(s, req, resp, key)) {
		__atomic_add_fetch(&s->auth_failures, 1, __ATOMIC_RELAXED);
		goto out;
	}
	const v1_route *r = v1_match(req->method, req->path, id);
	if (!r) {
		stripe_error(resp, 404, "invalid_request_error", NULL, NULL, NULL, NULL,
			     "Unrecognized request URL (%s: %.200s). Please see "
			     "https://stripe.com/docs or we can help at https://support.stripe.com/.",
			     req->method, req->path);
		goto out;
	}
	resp->route = r->route;
	const char *ikey = NULL;
	if (strcmp(r->method, "POST") == 0) {
		if (req->body_len && !is_form(msg_req_header(req, "Content-Type"))) {
			invalid(resp, NULL, NULL,
				"Invalid request: the body must be "
				"application/x-www-form-urlencoded.");
			goto out;
		}
		int rc = form_parse(&f, req->body, req->body_len, MAX_FIELDS);
		if (rc) {
			invalid(resp, NULL, NULL,
				rc == ERR_TOO_LARGE ? "Invalid request: too many parameters."
						    : "Invalid request: the body is not valid form "
						      "encoding.");
			goto out;
		}
		ikey = msg_req_header(req, "Idempotency-Key");
		if (ikey && !valid_idem_key(ikey)) {
			invalid(resp, NULL, NULL,
				"Idempotency-Key must be 1 to 255 printable characters.");
			goto out;
		}
	}
	char scoped[MAX_API_KEY + MAX_IDEM_KEY + 4];
	uint64_t fp[2] = { 0, 0 };
	if (ikey) {
		snprintf(scoped, sizeof(scoped), "%s\n%s", key, ikey);
		fingerprint(&f, fp);
	}
	pthread_mutex_lock(&s->mu);
	if (ikey) {
		idem_trim(s, now);
		idem *e = (idem *)ht_get(&s->idems, scoped);
		if (e && strcmp(e->path, req->path) != 0) {
			s->st.idem_errors++;
			pthread_mutex_unlock(&s->mu);
			stripe_error(resp, 400, "idempotency_error", NULL, NULL, NULL, NULL,
				     "Keys for idempotent requests can only be used for the same "
				     "endpoint they were first used for ('%s' vs '%.200s'). Try using a "
				     "key other than '%s' if you meant to execute a different request.",
				     e->path, req->path, ikey);
			goto out;
		}
		if (e && (e->fp[0] != fp[0] || e->fp[1] != fp[1])) {
			s->st.idem_errors++;
			pthread_mutex_unlock(&s->mu);
			stripe_error(resp, 400, "idempotency_error", NULL, NULL, NULL, NULL,
				     "Keys for idempotent requests can only be used with the same "
				     "parameters they were first used with. Try using a key other than "
				     "'%s' if you meant to execute a different request.",
				     ikey);
			goto out;
		}
		if (e) {
			s->st.replays++;
			msg_resp_set(resp, e->status, "application/json", e->body, e->body_len);
			pthread_mutex_unlock(&s->mu);
			msg_resp_set_header(resp, "Idempotent-Replayed", "true");
			msg_resp_set_header(resp, "Idempotency-Key", ikey);
			goto out;
		}
	}
	int keep = r->op(s, id, &f, resp);
	if (keep && ikey)
		idem_store(s, scoped, req->path, fp, now, resp);
	pthread_mutex_unlock(&s->mu);
	if (ikey)
		msg_resp_set_header(resp, "Idempotency-Key", ikey);
out:
	form_clear(&f);
	{
		char rid[ID_MAX];
		new_id(s, "req_", rid);
		msg_resp_set_header(resp, "Request-Id", rid);
	}
	const char *ver = msg_req_header(req, "Stripe-Version");
	if (ver && strlen(ver) < 32)
		msg_resp_set_header(resp, "Stripe-Version", ver);
	stripe_sim_set_delay(resp, delay);
}

/* ---- operators' routes (API.md shapes, admin token) ----------------------------- */

static int valid_target(const char *t) { return strcmp(t, FAULT_TARGET) == 0; }

static void admin_webhook(void *ud, msg_req *req, msg_resp *resp)
{
	stripe_sim *s = ud;
	webhook_queue_admin(s->ctx, s->hooks, req, resp);
}

/* POST /admin/stripe/refund {payment_intent, amount_cents?}: a refund made
 * in Stripe's dashboard, answered as POST /v1/refunds would be (and its
 * charge.refunded sent). */
static void admin_refund(void *ud, msg_req *req, msg_resp *resp)
{
	stripe_sim *s = ud;
	json_t *body = NULL;
	if (engine_require_admin(s->ctx, req, resp) || engine_json_body(req, resp, &body))
		return;
	jval_error e = { { 0 }, { 0 } };
	const char *pi = NULL;
	int64_t amount = 0;
	if (jval_str(body, "payment_intent", 1, 1, ID_MAX, &pi, &e) ||
	    jval_int(body, "amount_cents", 0, 1, MAX_AMOUNT, &amount, NULL, &e)) {
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	form f;
	form_init(&f);
	char amt[24];
	snprintf(amt, sizeof(amt), "%lld", (long long)amount);
	if (form_add(&f, "payment_intent", pi) || (amount && form_add(&f, "amount", amt))) {
		msg_resp_error(resp, 500, "internal", "out of memory", NULL);
	} else {
		pthread_mutex_lock(&s->mu);
		op_refund(s, NULL, &f, resp);
		pthread_mutex_unlock(&s->mu);
	}
	form_clear(&f);
	json_decref(body);
}

static void admin_stats(void *ud, msg_req *req, msg_resp *resp)
{
	stripe_sim *s = ud;
	if (engine_require_admin(s->ctx, req, resp))
		return;
	pthread_mutex_lock(&s->mu);
	stats st = s->st;
	size_t n = s->intents.n, nidem = s->idems.n;
	size_t max_i = s->max_intents, max_k = s->max_idems;
	pthread_mutex_unlock(&s->mu);
	uint64_t requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED);
	uint64_t auth_failures = __atomic_load_n(&s->auth_failures, __ATOMIC_RELAXED);
	uint64_t fault_failures = __atomic_load_n(&s->fault_failures, __ATOMIC_RELAXED);
	uint64_t fault_outages = __atomic_load_n(&s->fault_outages, __ATOMIC_RELAXED);
	json_t *by = json_object();
	for (int i = 0; i < PI_NSTATUS; i++)
		json_object_set_new(by, STATUS_NAMES[i], json_integer((json_int_t)st.by_status[i]));
	json_t *o = json_object();
	json_object_set_new(o, "intents", json_integer((json_int_t)n));
	json_object_set_new(o, "by_status", by);
	json_object_set_new(o, "created", json_integer((json_int_t)st.created));
	json_object_set_new(o, "authorizations", json_integer((json_int_t)st.authorizations));
	json_object_set_new(o, "declines", json_integer((json_int_t)st.declines));
	json_object_set_new(o, "captures", json_integer((json_int_t)st.captures));
	json_object_set_new(o, "captured_amount", json_integer(st.captured_amount));
	json_object_set_new(o, "cancels", json_integer((json_int_t)st.cancels));
	json_object_set_new(o, "refunds", json_integer((json_int_t)st.refunds));
	json_object_set_new(o, "refunded_amount", json_integer(st.refunded_amount));
	json_object_set_new(o, "idempotent_replays", json_integer((json_int_t)st.replays));
	json_object_set_new(o, "idempotency_errors", json_integer((json_int_t)st.idem_errors));
	json_object_set_new(o, "idempotency_keys", json_integer((json_int_t)nidem));
	json_object_set_new(o, "requests", json_integer((json_int_t)requests));
	json_object_set_new(o, "auth_failures", json_integer((json_int_t)auth_failures));
	json_object_set_new(o, "faults",
			    json_pack("{s:I,s:I}", "failed", (json_int_t)fault_failures,
				      "outages", (json_int_t)fault_outages));
	json_object_set_new(o, "refused_full", json_integer((json_int_t)st.full));
	json_object_set_new(o, "webhooks", webhook_queue_stats(s->hooks));
	json_object_set_new(o, "limits",
			    json_pack("{s:I,s:I,s:I}", "max_intents", (json_int_t)max_i,
				      "max_idempotency_keys", (json_int_t)max_k,
				      "idempotency_ttl_s",
				      (json_int_t)(s->idem_ttl_us / 1000000)));
	msg_resp_json(resp, 200, o);
}

/* ---- engine --------------------------------------------------------------------- */

int64_t stripe_sim_delay_us(const msg_resp *resp)
{
	const char *v = msg_resp_header(resp, STRIPE_SIM_DELAY_HEADER);
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || *end || x < 0)
		return 0;
	return x;
}

void stripe_sim_set_limits(void *eng, size_t max_intents, size_t max_idempotency_keys)
{
	stripe_sim *s = eng;
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (max_intents)
		s->max_intents = max_intents;
	if (max_idempotency_keys)
		s->max_idems = max_idempotency_keys;
	idem_trim(s, clock_now(s->ctx->clock));
	pthread_mutex_unlock(&s->mu);
}

static void sim_destroy(void *eng)
{
	stripe_sim *s = eng;
	if (!s)
		return;
	if (s->intents.b) {
		for (size_t i = 0; i < s->intents.nb; i++) {
			for (hnode *n = s->intents.b[i], *next; n; n = next) {
				next = n->next;
				intent_free((intent *)n);
			}
		}
		free(s->intents.b);
	}
	while (s->oldest)
		idem_drop_oldest(s);
	free(s->idems.b);
	webhook_queue_free(s->hooks);
	router_free(s->admin);
	fault_table_free(s->faults);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void *sim_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (!ctx || !ctx->clock || !ctx->rng) {
		snprintf(err, errlen, "stripe-sim needs a clock and an rng");
		return NULL;
	}
	stripe_sim *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	s->max_intents = (size_t)config_int_range(ctx->config, "stripe_sim.max_intents",
					 STRIPE_SIM_MAX_INTENTS, 1, 100000000);
	s->max_idems = (size_t)config_int_range(ctx->config, "stripe_sim.max_idempotency_keys",
				       STRIPE_SIM_MAX_IDEMPOTENCY_KEYS, 1, 100000000);
	s->idem_ttl_us = config_int_range(ctx->config, "stripe_sim.idempotency_ttl_s",
				 STRIPE_SIM_IDEMPOTENCY_TTL_S, 1, 30 * 86400) *
			 1000000;
	const char *key = ctx->config ? config_get(ctx->config, "stripe_sim.api_key") : NULL;
	if (key && key[0]) {
		if (strlen(key) > MAX_API_KEY || strncmp(key, "sk_test_", 8) != 0) {
			snprintf(err, errlen, "stripe_sim.api_key must be a sk_test_ key of at most %d "
					      "characters",
				 MAX_API_KEY);
			sim_destroy(s);
			return NULL;
		}
		snprintf(s->api_key, sizeof(s->api_key), "%s", key);
	}
	const char *whs = ctx->config ? config_get(ctx->config, "stripe.webhook_secret") : NULL;
	if (whs && strlen(whs) >= sizeof(s->webhook_secret)) {
		snprintf(err, errlen, "stripe.webhook_secret is longer than 255 characters");
		sim_destroy(s);
		return NULL;
	}
	snprintf(s->webhook_secret, sizeof(s->webhook_secret), "%s", whs ? whs : "");
	s->hooks = webhook_queue_new(WEBHOOKS_PENDING_MAX);
	s->faults = fault_table_new();
	s->admin = router_new();
	s->fault_admin = (chaos_sim_faults){ .ctx = ctx, .table = s->faults, .valid = valid_target,
					     .hint = "this simulator takes faults for stripe only" };
	if (!s->faults || !s->admin || !s->hooks || ht_init(&s->intents, 1024) ||
	    ht_init(&s->idems, 1024) ||
	    chaos_sim_fault_routes(s->admin, &s->fault_admin) ||
	    router_add(s->admin, "GET", "/admin/stripe/stats", admin_stats, s) ||
	    router_add(s->admin, "GET", "/admin/stripe/webhook", admin_webhook, s) ||
	    router_add(s->admin, "PUT", "/admin/stripe/webhook", admin_webhook, s) ||
	    router_add(s->admin, "POST", "/admin/stripe/refund", admin_refund, s)) {
		snprintf(err, errlen, "stripe-sim: out of memory");
		sim_destroy(s);
		return NULL;
	}
	const char *url = ctx->config ? config_get(ctx->config, "stripe_sim.webhook_url") : NULL;
	if (webhook_queue_set_target(s->hooks, url) != 0) {
		snprintf(err, errlen, "stripe_sim.webhook_url must be http://HOST:PORT/PATH");
		sim_destroy(s);
		return NULL;
	}
	return s;
}

static void sim_handle(void *eng, msg_req *req, msg_resp *resp)
{
	stripe_sim *s = eng;
	if (strncmp(req->path, "/v1/", 4) == 0 || strcmp(req->path, "/v1") == 0)
		stripe_v1(s, req, resp);
	else
		router_dispatch(s->admin, req, resp);
}

static void sim_tick(void *eng, int64_t now_us)
{
	stripe_sim *s = eng;
	pthread_mutex_lock(&s->mu);
	idem_trim(s, now_us);
	pthread_mutex_unlock(&s->mu);
	webhook_queue_deliver(s->hooks, s->ctx, sign_delivery, s, now_us);
}

const engine_def stripe_sim_engine = {
	.name = "stripe-sim",
	.needs_store = 0,
	.create = sim_create,
	.handle = sim_handle,
	.tick = sim_tick,
	.ready = NULL,
	.destroy = sim_destroy,
	.serves_resil_admin = 1,
};
