/* paypal: requests in PayPal's REST shape through the guarded outbound call,
 * a shared OAuth2 token, answers sorted into outcomes. */
#include "services/paypal.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX 63
#define KEY_MAX 255
/* Longest a caller waits for another thread's token fetch, in ms, on top of
 * the call timeout. */
#define TOKEN_WAIT_SLACK_MS 1000

enum resource { R_TOKEN, R_ORDER, R_AUTHORIZATION, R_CAPTURE, R_REFUND };

const char *paypal_outcome_name(paypal_outcome o)
{
	switch (o) {
	case PAYPAL_OK:
		return "ok";
	case PAYPAL_DECLINED:
		return "declined";
	case PAYPAL_FAILED:
		return "failed";
	case PAYPAL_REJECTED:
		return "rejected";
	}
	return "unknown";
}

/* ---- amounts ------------------------------------------------------------------------ */

int paypal_currency_decimals(const char *currency)
{
	static const char *const zero[] = { "HUF", "JPY", "TWD", NULL };
	for (int i = 0; currency && zero[i]; i++)
		if (strcmp(currency, zero[i]) == 0)
			return 0;
	return 2;
}

int paypal_format_amount(int64_t cents, const char *currency, char *buf, size_t len)
{
	if (cents < 0 || !currency || !buf)
		return ERR_INVALID;
	int n = paypal_currency_decimals(currency) == 0
			? snprintf(buf, len, "%" PRId64, cents)
			: snprintf(buf, len, "%" PRId64 ".%02" PRId64, cents / 100, cents % 100);
	return n > 0 && (size_t)n < len ? 0 : ERR_INVALID;
}

int paypal_parse_amount(const char *value, const char *currency, int64_t *cents)
{
	if (!value || !currency || !cents)
		return ERR_PARSE;
	int dec = paypal_currency_decimals(currency);
	int64_t whole = 0, frac = 0;
	int nwhole = 0, nfrac = -1;
	for (const char *p = value; *p; p++) {
		if (*p == '.' && nfrac < 0 && nwhole > 0) {
			nfrac = 0;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			return ERR_PARSE;
		if (nfrac < 0) {
			if (++nwhole > 12)
				return ERR_PARSE;
			whole = whole * 10 + (*p - '0');
		} else {
			if (++nfrac > dec)
				return ERR_PARSE;
			frac = frac * 10 + (*p - '0');
		}
	}
	if (nwhole == 0 || nfrac == 0)
		return ERR_PARSE;
	for (int i = nfrac < 0 ? 0 : nfrac; i < dec; i++)
		frac *= 10;
	int64_t unit = dec == 0 ? 1 : 100;
	*cents = whole * unit + frac;
	return 0;
}

/* ---- the client ----------------------------------------------------------------------- */

int paypal_client_init(paypal_client *cl, engine_ctx *ctx)
{
	if (!cl || !ctx || sodium_init() < 0)
		return ERR_INVALID;
	memset(cl, 0, sizeof(*cl));
	pthread_mutex_init(&cl->mu, NULL);
	pthread_cond_init(&cl->cv, NULL);
	cl->ctx = ctx;
	const config *c = ctx->config;
	const char *url = c ? config_get(c, "paypal.base_url") : NULL;
	const char *id = c ? config_get(c, "paypal.client_id") : NULL;
	const char *secret = c ? config_get(c, "paypal.secret") : NULL;
	if (text_copy(cl->base_url, sizeof(cl->base_url), url && url[0] ? url : PAYPAL_DEFAULT_BASE_URL) ||
	    text_copy(cl->client_id, sizeof(cl->client_id), id ? id : "") ||
	    text_copy(cl->secret, sizeof(cl->secret), secret ? secret : ""))
		return ERR_INVALID;
	cl->timeout_ms = c ? config_int(c, "paypal.timeout_ms", PAYPAL_DEFAULT_TIMEOUT_MS)
			   : PAYPAL_DEFAULT_TIMEOUT_MS;
	if (cl->timeout_ms <= 0)
		cl->timeout_ms = PAYPAL_DEFAULT_TIMEOUT_MS;
	return 0;
}

void paypal_client_clear(paypal_client *cl)
{
	if (!cl || !cl->ctx)
		return;
	sodium_memzero(cl->token, sizeof(cl->token));
	pthread_cond_destroy(&cl->cv);
	pthread_mutex_destroy(&cl->mu);
	cl->ctx = NULL;
}

/* ---- argument checks ------------------------------------------------------------------- */

static int refuse(paypal_result *out, const char *what)
{
	out->outcome = PAYPAL_REJECTED;
	snprintf(out->message, sizeof(out->message), "%s", what);
	return ERR_INVALID;
}

/* PayPal ids are letters and digits; checking them keeps the path to the
 * resource meant. */
static int valid_id(const char *id) { return text_is_token(id, ID_MAX, "-_"); }

static int precheck(paypal_client *cl, const char *key, const char *id, paypal_result *out)
{
	if (!out)
		return ERR_INVALID;
	memset(out, 0, sizeof(*out));
	if (!cl || !cl->ctx || !cl->ctx->call)
		return refuse(out, "the paypal client has no outbound call");
	if (!cl->base_url[0])
		return refuse(out, "the paypal client has no base URL");
	if (!cl->client_id[0] || !cl->secret[0] || strpbrk(cl->client_id, ":\r\n") ||
	    strpbrk(cl->secret, "\r\n"))
		return refuse(out, "the paypal client has no usable client id and secret");
	if (key && !text_is_printable(key, KEY_MAX, 0))
		return refuse(out, "the request id must be 1 to 255 printable characters");
	if (id && !valid_id(id))
		return refuse(out, "the id is not a PayPal id");
	return 0;
}

/* The PayPal-Request-Id for key: key itself, or "ecom-" and its SHA-256 in
 * hex when it is longer than PayPal allows. */
static void request_id(const char *key, char out[PAYPAL_MAX_REQUEST_ID + 1])
{
	size_t n = strlen(key);
	if (n <= PAYPAL_MAX_REQUEST_ID) {
		memcpy(out, key, n + 1);
		return;
	}
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)key, n);
	memcpy(out, "ecom-", 5);
	sodium_bin2hex(out + 5, PAYPAL_MAX_REQUEST_ID + 1 - 5, h, sizeof(h));
}

/* ---- reading answers -------------------------------------------------------------------- */

static void take_str(char *dst, size_t len, json_t *v)
{
	const char *s = json_string_value(v);
	if (s)
		snprintf(dst, len, "%s", s);
}

static void lower_into(char *dst, size_t len, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < len; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static int64_t take_amount(json_t *o)
{
	json_t *a = json_object_get(o, "amount");
	const char *cur = json_string_value(json_object_get(a, "currency_code"));
	int64_t cents = 0;
	if (paypal_parse_amount(json_string_value(json_object_get(a, "value")), cur ? cur : "USD",
				&cents) != 0)
		return 0;
	return cents;
}

static void decline(paypal_result *out, const char *why)
{
	out->outcome = PAYPAL_DECLINED;
	lower_into(out->decline_code, sizeof(out->decline_code), why);
}

/* The last element of array a (PayPal appends), or NULL. */
static json_t *last_of(json_t *a)
{
	size_t n = json_array_size(a);
	return n ? json_array_get(a, n - 1) : NULL;
}

/* An order: its id and status, and the last authorisation and capture of
 * its purchase unit. */
static int read_order(json_t *o, int want_authorization, paypal_result *out)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	if (!id)
		return ERR_PARSE;
	take_str(out->order_id, sizeof(out->order_id), json_object_get(o, "id"));
	take_str(out->order_status, sizeof(out->order_status), json_object_get(o, "status"));
	json_t *pay = json_object_get(json_array_get(json_object_get(o, "purchase_units"), 0),
				      "payments");
	json_t *auth = last_of(json_object_get(pay, "authorizations"));
	json_t *cap = last_of(json_object_get(pay, "captures"));
	out->outcome = PAYPAL_OK;
	if (auth) {
		take_str(out->authorization_id, sizeof(out->authorization_id),
			 json_object_get(auth, "id"));
		take_str(out->status, sizeof(out->status), json_object_get(auth, "status"));
		out->amount = take_amount(auth);
	}
	if (cap) {
		take_str(out->capture_id, sizeof(out->capture_id), json_object_get(cap, "id"));
		take_str(out->status, sizeof(out->status), json_object_get(cap, "status"));
		out->amount = take_amount(cap);
		/* A COMPLETED order whose capture is DECLINED: no money moved. */
		if (strcmp(out->status, "DECLINED") == 0 || strcmp(out->status, "FAILED") == 0)
			decline(out, "CAPTURE_DECLINED");
		return 0;
	}
	if (!want_authorization)
		return 0;
	if (!out->authorization_id[0])
		return ERR_PARSE;
	if (strcmp(out->status, "DENIED") == 0) {
		decline(out, "AUTHORIZATION_DENIED");
	} else if (strcmp(out->status, "CREATED") != 0 && strcmp(out->status, "CAPTURED") != 0 &&
		   strcmp(out->status, "PARTIALLY_CAPTURED") != 0) {
		out->outcome = PAYPAL_REJECTED;
		snprintf(out->message, sizeof(out->message),
			 "the authorization is %s, which cannot be captured", out->status);
	}
	return 0;
}

static int read_resource(json_t *o, enum resource kind, paypal_result *out)
{
	const char *id = json_string_value(json_object_get(o, "id"));
	if (!id || (kind != R_AUTHORIZATION && !json_string_value(json_object_get(o, "status"))))
		return ERR_PARSE;
	char *dst = kind == R_CAPTURE	       ? out->capture_id
		    : kind == R_REFUND	       ? out->refund_id
					       : out->authorization_id;
	snprintf(dst, 64, "%s", id);
	take_str(out->status, sizeof(out->status), json_object_get(o, "status"));
	out->amount = take_amount(o);
	out->outcome = PAYPAL_OK;
	const char *st = out->status;
	if (kind == R_CAPTURE &&
	    (strcmp(st, "DECLINED") == 0 || strcmp(st, "FAILED") == 0))
		decline(out, "CAPTURE_DECLINED");
	else if (kind == R_REFUND && strcmp(st, "COMPLETED") != 0 && strcmp(st, "PENDING") != 0) {
		out->outcome = PAYPAL_REJECTED;
		snprintf(out->message, sizeof(out->message), "the refund is %s", st);
	}
	return 0;
}

static int decline_issue(const char *issue)
{
	static const char *const issues[] = { "INSTRUMENT_DECLINED", "TRANSACTION_REFUSED",
					      "PAYER_CANNOT_PAY", NULL };
	for (int i = 0; issues[i]; i++)
		if (strcmp(issues[i], issue) == 0)
			return 1;
	return 0;
}

static void read_error(const msg_resp *resp, json_t *doc, paypal_result *out)
{
	take_str(out->error_name, sizeof(out->error_name), json_object_get(doc, "name"));
	if (!out->error_name[0])
		take_str(out->error_name, sizeof(out->error_name), json_object_get(doc, "error"));
	take_str(out->debug_id, sizeof(out->debug_id), json_object_get(doc, "debug_id"));
	json_t *d0 = json_array_get(json_object_get(doc, "details"), 0);
	take_str(out->issue, sizeof(out->issue), json_object_get(d0, "issue"));
	take_str(out->message, sizeof(out->message), json_object_get(d0, "description"));
	if (!out->message[0])
		take_str(out->message, sizeof(out->message), json_object_get(doc, "message"));
	if (!out->message[0])
		take_str(out->message, sizeof(out->message),
			 json_object_get(doc, "error_description"));
	if (!out->message[0])
		snprintf(out->message, sizeof(out->message), "PayPal answered %d", resp->status);
	int s = resp->status;
	if (s == 422 && decline_issue(out->issue))
		decline(out, out->issue);
	else if (s == 429 || s == 408 || s == 409 || s >= 500 || s < 400 ||
		 (s == 401 && strcmp(out->error_name, "invalid_token") == 0))
		out->outcome = PAYPAL_FAILED;
	else
		out->outcome = PAYPAL_REJECTED;
}

static void read_answer(const msg_resp *resp, enum resource kind, int want_authorization,
			paypal_result *out)
{
	out->http_status = resp->status;
	if (resp->status == 204 && kind == R_AUTHORIZATION) {
		out->outcome = PAYPAL_OK; /* void without a representation */
		snprintf(out->status, sizeof(out->status), "VOIDED");
		return;
	}
	json_t *doc = resp->body && resp->body_len
			      ? json_loadb(resp->body, resp->body_len, JSON_REJECT_DUPLICATES, NULL)
			      : NULL;
	if (resp->status >= 200 && resp->status < 300) {
		int rc = !json_is_object(doc)	? ERR_PARSE
			 : kind == R_ORDER	? read_order(doc, want_authorization, out)
						: read_resource(doc, kind, out);
		if (rc) {
			/* Done or not, nobody can tell: the same request id finds out. */
			out->outcome = PAYPAL_FAILED;
			snprintf(out->message, sizeof(out->message),
				 "unreadable %d answer from PayPal", resp->status);
		}
	} else {
		read_error(resp, doc, out);
	}
	json_decref(doc);
}

/* ---- the access token --------------------------------------------------------------------- */

/* One token request. 0 with the token copied into cl (under mu) or the
 * outcome in out. */
static int fetch_token(paypal_client *cl, paypal_result *out, char *tok, size_t toklen)
{
	engine_ctx *ctx = cl->ctx;
	char cred[sizeof(cl->client_id) + sizeof(cl->secret) + 2];
	snprintf(cred, sizeof(cred), "%s:%s", cl->client_id, cl->secret);
	char b64[sodium_base64_ENCODED_LEN(sizeof(cred), sodium_base64_VARIANT_ORIGINAL)];
	sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)cred, strlen(cred),
			  sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(cred, sizeof(cred));
	char auth[sizeof(b64) + 8];
	snprintf(auth, sizeof(auth), "Basic %s", b64);
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	if (msg_req_init(&req, "POST", "/v1/oauth2/token") != 0)
		return refuse(out, "out of memory");
	static const char BODY[] = "grant_type=client_credentials";
	int rc = msg_req_add_header(&req, "Authorization", auth);
	rc = rc ? rc : msg_req_add_header(&req, "Content-Type", "application/x-www-form-urlencoded");
	rc = rc ? rc : msg_req_add_header(&req, "Accept", "application/json");
	rc = rc ? rc : msg_req_set_body(&req, BODY, sizeof(BODY) - 1);
	sodium_memzero(auth, sizeof(auth));
	if (rc) {
		msg_req_clear(&req);
		return refuse(out, "cannot build the token request");
	}
	int64_t t0 = clock_now(ctx->clock);
	rc = engine_call_guarded(ctx, PAYPAL_CALLEE, cl->base_url, &req, &resp, cl->timeout_ms);
	msg_req_clear(&req);
	int ok = 0;
	if (rc != 0) {
		out->outcome = PAYPAL_FAILED;
		snprintf(out->message, sizeof(out->message), "no answer from PayPal's token endpoint (%s)",
			 err_name(rc));
	} else if (resp.status != 200) {
		json_t *doc = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
		out->http_status = resp.status;
		read_error(&resp, doc, out);
		json_decref(doc);
		if (resp.status == 401)
			out->outcome = PAYPAL_REJECTED; /* the credentials themselves */
	} else {
		json_t *doc = json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL);
		const char *t = json_string_value(json_object_get(doc, "access_token"));
		json_t *exp = json_object_get(doc, "expires_in");
		if (!t || !t[0] || strlen(t) >= toklen || strpbrk(t, "\r\n") || !json_is_integer(exp) ||
		    json_integer_value(exp) <= 0) {
			out->outcome = PAYPAL_FAILED;
			snprintf(out->message, sizeof(out->message),
				 "unreadable answer from PayPal's token endpoint");
		} else {
			int64_t life = (int64_t)json_integer_value(exp) * 1000000;
			int64_t early = life / 4 < 60000000 ? life / 4 : 60000000;
			snprintf(tok, toklen, "%s", t);
			pthread_mutex_lock(&cl->mu);
			snprintf(cl->token, sizeof(cl->token), "%s", t);
			cl->token_expires_us = t0 + life;
			cl->token_refresh_us = t0 + life - early;
			cl->token_fetches++;
			pthread_mutex_unlock(&cl->mu);
			ok = 1;
		}
		json_decref(doc);
	}
	msg_resp_clear(&resp);
	if (!ok)
		log_warn(ctx->log, "paypal token: %s (status %d)", out->message, out->http_status);
	return ok ? 0 : ERR_UNAUTH;
}

/* A usable access token into tok: the cached one, or a new one fetched by
 * this thread or another. stale (may be NULL) is a token PayPal refused: it
 * is dropped when it is still the cached one. 0, or ERR_UNAUTH with out
 * filled. */
static int get_token(paypal_client *cl, const char *stale, paypal_result *out, char *tok,
		     size_t toklen)
{
	pthread_mutex_lock(&cl->mu);
	if (stale && strcmp(cl->token, stale) == 0) {
		cl->token[0] = '\0';
		cl->token_expires_us = cl->token_refresh_us = 0;
	}
	/* A bounded wait for another thread's fetch, in real time. */
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (cl->timeout_ms + TOKEN_WAIT_SLACK_MS) / 1000 + 1;
	for (int round = 0; round < 100; round++) {
		int64_t now = clock_now(cl->ctx->clock);
		int valid = cl->token[0] && now < cl->token_expires_us;
		if (valid && (now < cl->token_refresh_us || cl->fetching)) {
			snprintf(tok, toklen, "%s", cl->token);
			pthread_mutex_unlock(&cl->mu);
			return 0;
		}
		if (!cl->fetching)
			break;
		if (pthread_cond_timedwait(&cl->cv, &cl->mu, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&cl->mu);
			out->outcome = PAYPAL_FAILED;
			snprintf(out->message, sizeof(out->message),
				 "no PayPal access token in time");
			return ERR_UNAUTH;
		}
	}
	cl->fetching = 1;
	pthread_mutex_unlock(&cl->mu);
	int rc = fetch_token(cl, out, tok, toklen);
	pthread_mutex_lock(&cl->mu);
	cl->fetching = 0;
	pthread_cond_broadcast(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
	return rc;
}

/* ---- one call ------------------------------------------------------------------------------- */

static int call(paypal_client *cl, const char *method, const char *path, const char *key,
		json_t *body, enum resource kind, int want_authorization, paypal_result *out)
{
	engine_ctx *ctx = cl->ctx;
	char *text = body ? jval_dump(body) : NULL;
	if (body && !text)
		return refuse(out, "out of memory");
	char rid[PAYPAL_MAX_REQUEST_ID + 1] = "";
	if (key)
		request_id(key, rid);
	char stale[sizeof(cl->token)] = "";
	for (int attempt = 0; attempt < 2; attempt++) {
		char tok[sizeof(cl->token)];
		memset(out, 0, sizeof(*out));
		if (get_token(cl, stale[0] ? stale : NULL, out, tok, sizeof(tok)) != 0)
			break;
		msg_req req;
		msg_resp resp;
		msg_resp_init(&resp);
		if (msg_req_init(&req, method, path) != 0) {
			free(text);
			return refuse(out, "out of memory");
		}
		char auth[sizeof(tok) + 8];
		snprintf(auth, sizeof(auth), "Bearer %s", tok);
		int rc = msg_req_add_header(&req, "Authorization", auth);
		rc = rc ? rc : msg_req_add_header(&req, "Accept", "application/json");
		rc = rc ? rc : msg_req_add_header(&req, "Prefer", "return=representation");
		if (strcmp(method, "POST") == 0) {
			rc = rc ? rc : msg_req_add_header(&req, "Content-Type", "application/json");
			rc = rc ? rc : msg_req_add_header(&req, "PayPal-Request-Id", rid);
			rc = rc ? rc : msg_req_set_body(&req, text ? text : "{}", text ? strlen(text) : 2);
		}
		if (rc) {
			msg_req_clear(&req);
			free(text);
			return refuse(out, "cannot build the request");
		}
		rc = engine_call_guarded(ctx, PAYPAL_CALLEE, cl->base_url, &req, &resp, cl->timeout_ms);
		msg_req_clear(&req);
		if (rc != 0) {
			out->outcome = PAYPAL_FAILED;
			snprintf(out->message, sizeof(out->message), "no answer from PayPal (%s)",
				 err_name(rc));
		} else {
			read_answer(&resp, kind, want_authorization, out);
		}
		msg_resp_clear(&resp);
		/* A token PayPal no longer knows: once more with a new one. */
		if (out->http_status == 401 && strcmp(out->error_name, "invalid_token") == 0 &&
		    attempt == 0) {
			snprintf(stale, sizeof(stale), "%s", tok);
			continue;
		}
		break;
	}
	free(text);
	if (out->outcome == PAYPAL_FAILED)
		log_warn(ctx->log, "paypal %s %s: failed (status %d): %s", method, path,
			 out->http_status, out->message);
	else if (out->outcome != PAYPAL_OK)
		log_info(ctx->log, "paypal %s %s: %s (status %d, %s)", method, path,
			 paypal_outcome_name(out->outcome), out->http_status,
			 out->decline_code[0] ? out->decline_code
			 : out->issue[0]      ? out->issue
					      : out->error_name);
	return 0;
}

static json_t *amount_json(int64_t cents, const char *currency)
{
	char value[32];
	if (paypal_format_amount(cents, currency, value, sizeof(value)) != 0)
		return NULL;
	return json_pack("{s:s,s:s}", "currency_code", currency, "value", value);
}

static int valid_currency(const char *c)
{
	return c && strlen(c) == 3 && isupper((unsigned char)c[0]) && isupper((unsigned char)c[1]) &&
	       isupper((unsigned char)c[2]);
}

int paypal_authorize(paypal_client *cl, const char *key, int64_t amount, const char *currency,
		     const char *payer, const char *ref, paypal_result *out)
{
	if (precheck(cl, key, NULL, out))
		return ERR_INVALID;
	if (amount <= 0)
		return refuse(out, "the amount must be positive");
	if (!valid_currency(currency))
		return refuse(out, "the currency must be a three-letter ISO 4217 code in capitals");
	if (!payer || !payer[0] || strlen(payer) > 255)
		return refuse(out, "the payer token must be 1 to 255 characters");
	if (ref && (!ref[0] || strlen(ref) > 127))
		return refuse(out, "the reference must be 1 to 127 characters");
	json_t *amt = amount_json(amount, currency);
	if (!amt)
		return refuse(out, "the amount cannot be written");
	json_t *unit = json_pack("{s:o}", "amount", amt);
	if (unit && ref) {
		json_object_set_new(unit, "reference_id", json_string(ref));
		json_object_set_new(unit, "custom_id", json_string(ref));
	}
	json_t *body = unit ? json_pack("{s:s,s:[o],s:{s:{s:s}}}", "intent", "AUTHORIZE",
					"purchase_units", unit, "payment_source", "paypal",
					"vault_id", payer)
			    : NULL;
	if (!body)
		return refuse(out, "out of memory");
	char okey[KEY_MAX + 8];
	snprintf(okey, sizeof(okey), "%s.order", key);
	call(cl, "POST", "/v2/checkout/orders", okey, body, R_ORDER, 0, out);
	json_decref(body);
	if (out->outcome != PAYPAL_OK)
		return 0;
	if (!valid_id(out->order_id)) {
		out->outcome = PAYPAL_FAILED;
		snprintf(out->message, sizeof(out->message), "PayPal gave an order id it cannot use");
		return 0;
	}
	char order[64], path[128];
	snprintf(order, sizeof(order), "%s", out->order_id);
	snprintf(path, sizeof(path), "/v2/checkout/orders/%s/authorize", order);
	call(cl, "POST", path, key, NULL, R_ORDER, 1, out);
	if (out->outcome == PAYPAL_REJECTED && strcmp(out->issue, "ORDER_ALREADY_AUTHORIZED") == 0) {
		/* Authorised before, under a request id PayPal has forgotten. */
		snprintf(path, sizeof(path), "/v2/checkout/orders/%s", order);
		call(cl, "GET", path, NULL, NULL, R_ORDER, 1, out);
	}
	if (!out->order_id[0])
		snprintf(out->order_id, sizeof(out->order_id), "%s", order);
	return 0;
}

/* capture and void: a POST on the authorisation. */
static int authorization_action(paypal_client *cl, const char *key, const char *id,
				const char *action, enum resource kind, paypal_result *out)
{
	if (precheck(cl, key, id, out))
		return ERR_INVALID;
	char path[128];
	snprintf(path, sizeof(path), "/v2/payments/authorizations/%s/%s", id, action);
	json_t *body = kind == R_CAPTURE ? json_pack("{s:b}", "final_capture", 1) : NULL;
	int rc = call(cl, "POST", path, key, body, kind, 0, out);
	json_decref(body);
	if (!out->authorization_id[0])
		snprintf(out->authorization_id, sizeof(out->authorization_id), "%s", id);
	return rc;
}

int paypal_capture(paypal_client *cl, const char *key, const char *authorization_id,
		   paypal_result *out)
{
	return authorization_action(cl, key, authorization_id, "capture", R_CAPTURE, out);
}

int paypal_void(paypal_client *cl, const char *key, const char *authorization_id,
		paypal_result *out)
{
	return authorization_action(cl, key, authorization_id, "void", R_AUTHORIZATION, out);
}

int paypal_refund(paypal_client *cl, const char *key, const char *capture_id, int64_t amount,
		  const char *currency, paypal_result *out)
{
	if (precheck(cl, key, capture_id, out))
		return ERR_INVALID;
	if (amount < 0)
		return refuse(out, "the refund amount must not be negative");
	json_t *body = NULL;
	if (amount > 0) {
		if (!valid_currency(currency))
			return refuse(out, "the currency must be a three-letter ISO 4217 code");
		json_t *amt = amount_json(amount, currency);
		body = amt ? json_pack("{s:o}", "amount", amt) : NULL;
		if (!body)
			return refuse(out, "out of memory");
	}
	char path[128];
	snprintf(path, sizeof(path), "/v2/payments/captures/%s/refund", capture_id);
	int rc = call(cl, "POST", path, key, body, R_REFUND, 0, out);
	json_decref(body);
	if (!out->capture_id[0])
		snprintf(out->capture_id, sizeof(out->capture_id), "%s", capture_id);
	return rc;
}
