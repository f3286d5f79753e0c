/* stripe: requests in Stripe's shape through ctx->call, answers sorted into
 * outcomes. */
#include "services/stripe.h"
#include "core/err.h"
#include "net/form.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 63

enum answer_kind { ANSWER_INTENT, ANSWER_REFUND };

const char *stripe_outcome_name(stripe_outcome o)
{
	switch (o) {
	case STRIPE_OK:
		return "ok";
	case STRIPE_DECLINED:
		return "declined";
	case STRIPE_FAILED:
		return "failed";
	case STRIPE_REJECTED:
		return "rejected";
	}
	return "unknown";
}

static int copy_str(char *dst, size_t len, const char *src)
{
	if (!src || strlen(src) >= len)
		return ERR_INVALID;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int stripe_client_init(stripe_client *cl, engine_ctx *ctx)
{
	if (!cl || !ctx)
		return ERR_INVALID;
	memset(cl, 0, sizeof(*cl));
	cl->ctx = ctx;
	const char *url = ctx->config ? config_get(ctx->config, "stripe.base_url") : NULL;
	const char *key = ctx->config ? config_get(ctx->config, "stripe.secret_key") : NULL;
	if (copy_str(cl->base_url, sizeof(cl->base_url),
		     url && url[0] ? url : STRIPE_DEFAULT_BASE_URL) ||
	    copy_str(cl->secret_key, sizeof(cl->secret_key), key ? key : ""))
		return ERR_INVALID;
	cl->timeout_ms = ctx->config ? config_int(ctx->config, "stripe.timeout_ms",
						  STRIPE_DEFAULT_TIMEOUT_MS)
				     : STRIPE_DEFAULT_TIMEOUT_MS;
	if (cl->timeout_ms <= 0)
		cl->timeout_ms = STRIPE_DEFAULT_TIMEOUT_MS;
	return 0;
}

/* ---- argument checks: nothing malformed leaves the process ---------------------- */

static int refuse(stripe_result *out, const char *what)
{
	out->outcome = STRIPE_REJECTED;
	snprintf(out->message, sizeof(out->message), "%s", what);
	return ERR_INVALID;
}

static int valid_idem_key(const char *k)
{
	size_t n = k ? strlen(k) : 0;
	if (n == 0 || n > STRIPE_MAX_IDEMPOTENCY_KEY)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x20 || k[i] > 0x7e)
			return 0;
	return 1;
}

/* Stripe ids are letters, digits and '_'; checking them keeps the path to
 * exactly the resource meant. */
static int valid_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_')
			return 0;
	return 1;
}

static int check_client(stripe_client *cl, stripe_result *out)
{
	if (!cl || !cl->ctx || !cl->ctx->call)
		return refuse(out, "the stripe client has no outbound call");
	if (!cl->base_url[0])
		return refuse(out, "the stripe client has no base URL");
	if (!cl->secret_key[0] || strpbrk(cl->secret_key, "\r\n"))
		return refuse(out, "the stripe client has no usable secret key");
	return 0;
}

/* ---- reading answers ------------------------------------------------------------ */

static void take_str(char *dst, size_t len, json_t *v)
{
	const char *s = json_string_value(v);
	if (s)
		snprintf(dst, len, "%s", s);
}

static int64_t take_int(json_t *v)
{
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Copies what the adapter's callers need from a payment_intent object. 0, or
 * ERR_PARSE when o is not one. */
static int read_intent(json_t *o, stripe_result *out)
{
	const char *obj = json_string_value(json_object_get(o, "object"));
	const char *id = json_string_value(json_object_get(o, "id"));
	if (!obj || strcmp(obj, "payment_intent") != 0 || !id)
		return ERR_PARSE;
	take_str(out->intent_id, sizeof(out->intent_id), json_object_get(o, "id"));
	take_str(out->status, sizeof(out->status), json_object_get(o, "status"));
	out->amount = take_int(json_object_get(o, "amount"));
	out->amount_received = take_int(json_object_get(o, "amount_received"));
	return 0;
}

static int read_refund(json_t *o, stripe_result *out)
{
	const char *obj = json_string_value(json_object_get(o, "object"));
	const char *id = json_string_value(json_object_get(o, "id"));
	if (!obj || strcmp(obj, "refund") != 0 || !id)
		return ERR_PARSE;
	take_str(out->refund_id, sizeof(out->refund_id), json_object_get(o, "id"));
	take_str(out->status, sizeof(out->status), json_object_get(o, "status"));
	take_str(out->intent_id, sizeof(out->intent_id), json_object_get(o, "payment_intent"));
	out->amount = take_int(json_object_get(o, "amount"));
	return 0;
}

static void read_answer(const msg_resp *resp, enum answer_kind kind, stripe_result *out)
{
	out->http_status = resp->status;
	const char *rep = msg_resp_header(resp, "Idempotent-Replayed");
	out->replayed = rep && strcmp(rep, "true") == 0;
	json_t *doc = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	if (resp->status >= 200 && resp->status < 300) {
		int rc = !json_is_object(doc) ? ERR_PARSE
		       : kind == ANSWER_INTENT ? read_intent(doc, out)
					       : read_refund(doc, out);
		if (rc) {
			/* Done or not, nobody can tell: retrying with the same key
			 * finds out without charging twice. */
			out->outcome = STRIPE_FAILED;
			snprintf(out->message, sizeof(out->message),
				 "unreadable %d answer from Stripe", resp->status);
		} else {
			out->outcome = STRIPE_OK;
		}
		json_decref(doc);
		return;
	}
	json_t *err = json_object_get(doc, "error");
	take_str(out->error_type, sizeof(out->error_type), json_object_get(err, "type"));
	take_str(out->error_code, sizeof(out->error_code), json_object_get(err, "code"));
	take_str(out->message, sizeof(out->message), json_object_get(err, "message"));
	json_t *pi = json_object_get(err, "payment_intent");
	if (json_is_object(pi))
		read_intent(pi, out);
	if (!out->message[0])
		snprintf(out->message, sizeof(out->message), "Stripe answered %d", resp->status);
	const char *type = out->error_type;
	if (resp->status == 402 || strcmp(type, "card_error") == 0) {
		out->outcome = STRIPE_DECLINED;
		take_str(out->decline_code, sizeof(out->decline_code),
			 json_object_get(err, "decline_code"));
		if (!out->decline_code[0])
			snprintf(out->decline_code, sizeof(out->decline_code), "%s",
				 out->error_code[0] ? out->error_code : "card_declined");
	} else if (resp->status == 429 || resp->status == 409 || resp->status >= 500 ||
		   strcmp(type, "api_error") == 0 || resp->status < 400) {
		out->outcome = STRIPE_FAILED;
	} else {
		out->outcome = STRIPE_REJECTED;
	}
	json_decref(doc);
}

/* ---- one call ------------------------------------------------------------------- */

static int call(stripe_client *cl, const char *method, const char *path, const char *idem_key,
		const form *f, enum answer_kind kind, stripe_result *out)
{
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	if (msg_req_init(&req, method, path) != 0)
		return refuse(out, "out of memory");
	char auth[sizeof(cl->secret_key) + 8];
	snprintf(auth, sizeof(auth), "Bearer %s", cl->secret_key);
	int rc = msg_req_add_header(&req, "Authorization", auth);
	rc = rc ? rc : msg_req_add_header(&req, "Stripe-Version", STRIPE_API_VERSION);
	rc = rc ? rc : msg_req_add_header(&req, "Accept", "application/json");
	char *body = NULL;
	if (f) {
		rc = rc ? rc : msg_req_add_header(&req, "Idempotency-Key", idem_key);
		rc = rc ? rc
			: msg_req_add_header(&req, "Content-Type",
					     "application/x-www-form-urlencoded");
		body = form_encode(f);
		rc = rc ? rc : body ? msg_req_set_body(&req, body, strlen(body)) : ERR_NOMEM;
	}
	free(body);
	if (rc) {
		msg_req_clear(&req);
		return refuse(out, "cannot build the request");
	}
	int64_t timeout = cl->timeout_ms > 0 ? cl->timeout_ms : STRIPE_DEFAULT_TIMEOUT_MS;
	/* A CLIENT span of the trace being served; the simulator continues it. */
	rc = engine_call_traced(cl->ctx, "stripe", cl->base_url, &req, &resp, timeout);
	if (rc != 0) {
		out->outcome = STRIPE_FAILED;
		snprintf(out->message, sizeof(out->message), "no answer from Stripe (%s)",
			 err_name(rc));
	} else {
		read_answer(&resp, kind, out);
	}
	if (out->outcome == STRIPE_FAILED)
		log_warn(cl->ctx->log, "stripe %s %s: failed (status %d): %s", method, path,
			 out->http_status, out->message);
	else if (out->outcome != STRIPE_OK)
		log_info(cl->ctx->log, "stripe %s %s: %s (status %d, %s)", method, path,
			 stripe_outcome_name(out->outcome), out->http_status,
			 out->decline_code[0] ? out->decline_code : out->error_code);
	msg_resp_clear(&resp);
	msg_req_clear(&req);
	return 0;
}

static void lower(char *dst, const char *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[n] = '\0';
}

/* The checks every call starts with: out cleared, a usable client, the
 * idempotency key (when idem is set) and the intent id (when id is set).
 * 0 to go on, else ERR_INVALID with out saying why (nothing is sent). */
static int precheck(stripe_client *cl, int idem, const char *idem_key, int id,
		    const char *intent_id, stripe_result *out)
{
	if (!out)
		return ERR_INVALID;
	memset(out, 0, sizeof(*out));
	if (check_client(cl, out))
		return ERR_INVALID;
	if (idem && !valid_idem_key(idem_key))
		return refuse(out, "the idempotency key must be 1 to 255 printable characters");
	if (id && !valid_id(intent_id))
		return refuse(out, "the payment intent id is not a Stripe id");
	return 0;
}

int stripe_authorize(stripe_client *cl, const char *idem_key, int64_t amount,
		     const char *currency, const char *payment_method, stripe_result *out)
{
	if (precheck(cl, 1, idem_key, 0, NULL, out))
		return ERR_INVALID;
	if (amount <= 0)
		return refuse(out, "the amount must be positive");
	if (!currency || strlen(currency) != 3 || !isalpha((unsigned char)currency[0]) ||
	    !isalpha((unsigned char)currency[1]) || !isalpha((unsigned char)currency[2]))
		return refuse(out, "the currency must be a three-letter ISO 4217 code");
	if (!payment_method || !payment_method[0] || strlen(payment_method) > 255)
		return refuse(out, "the payment method must be 1 to 255 characters");
	char cur[4], amt[24];
	lower(cur, currency, 3);
	snprintf(amt, sizeof(amt), "%" PRId64, amount);
	form f;
	form_init(&f);
	int rc = form_add(&f, "amount", amt);
	rc = rc ? rc : form_add(&f, "currency", cur);
	rc = rc ? rc : form_add(&f, "payment_method", payment_method);
	rc = rc ? rc : form_add(&f, "confirm", "true");
	rc = rc ? rc : form_add(&f, "capture_method", "manual");
	if (rc == 0)
		rc = call(cl, "POST", "/v1/payment_intents", idem_key, &f, ANSWER_INTENT, out);
	else
		rc = refuse(out, "out of memory");
	form_clear(&f);
	return rc;
}

/* capture and cancel: a POST without parameters on the intent. */
static int intent_action(stripe_client *cl, const char *idem_key, const char *intent_id,
			 const char *action, stripe_result *out)
{
	if (precheck(cl, 1, idem_key, 1, intent_id, out))
		return ERR_INVALID;
	char path[128];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s/%s", intent_id, action);
	form f;
	form_init(&f);
	int rc = call(cl, "POST", path, idem_key, &f, ANSWER_INTENT, out);
	form_clear(&f);
	return rc;
}

int stripe_capture(stripe_client *cl, const char *idem_key, const char *intent_id,
		   stripe_result *out)
{
	return intent_action(cl, idem_key, intent_id, "capture", out);
}

int stripe_cancel(stripe_client *cl, const char *idem_key, const char *intent_id,
		  stripe_result *out)
{
	return intent_action(cl, idem_key, intent_id, "cancel", out);
}

int stripe_refund(stripe_client *cl, const char *idem_key, const char *intent_id,
		  int64_t amount, stripe_result *out)
{
	if (precheck(cl, 1, idem_key, 1, intent_id, out))
		return ERR_INVALID;
	if (amount < 0)
		return refuse(out, "the refund amount must not be negative");
	form f;
	form_init(&f);
	int rc = form_add(&f, "payment_intent", intent_id);
	if (rc == 0 && amount > 0) {
		char amt[24];
		snprintf(amt, sizeof(amt), "%" PRId64, amount);
		rc = form_add(&f, "amount", amt);
	}
	if (rc == 0)
		rc = call(cl, "POST", "/v1/refunds", idem_key, &f, ANSWER_REFUND, out);
	else
		rc = refuse(out, "out of memory");
	form_clear(&f);
	return rc;
}

int stripe_get(stripe_client *cl, const char *intent_id, stripe_result *out)
{
	if (precheck(cl, 0, NULL, 1, intent_id, out))
		return ERR_INVALID;
	char path[96];
	snprintf(path, sizeof(path), "/v1/payment_intents/%s", intent_id);
	return call(cl, "GET", path, NULL, NULL, ANSWER_INTENT, out);
}
