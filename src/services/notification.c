/* notification: events in, messages decided (stage 1), messages sent
 * (stage 2). */
#include "services/notification.h"
#include "bus/bus.h"
#include "bus/outbox.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"
#include "net/router.h"
#include "net/smtp_client.h"
#include "services/template.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEMPLATE_MAX (64 * 1024)
#define SENT_MAX 4096
#define NOTIF_ID_MAX 192
#define LIST_MAX 1000
#define LOOKUP_TIMEOUT_MS 5000

enum kind { K_CONFIRMED, K_DECLINED, K_CANCELLED, K_REFUND, NKINDS };
static const char *const KIND_NAMES[NKINDS] = { "order_confirmed", "payment_declined",
						"order_cancelled", "refund" };
enum channel { CH_EMAIL, CH_SMS, NCHANNELS };
static const char *const CHANNEL_NAMES[NCHANNELS] = { "email", "sms" };
static const char *const CHANNEL_TOPICS[NCHANNELS] = { "notifications.email", "notifications.sms" };

/* The placeholders a template may use: every message gets all of them
 * ("" where they mean nothing, such as refund in a confirmation). */
static const char *const VARS[] = { "name",   "email",  "order_id",   "total",
				    "items",  "reason", "refund",     "payment_id", NULL };

typedef struct notify {
	engine_ctx *ctx;
	router *rt;
	char *tpl[NKINDS][NCHANNELS]; /* NULL: that kind has no text message */
	const char *smtp_url, *sms_url, *from, *from_name, *sms_from;
	int64_t timeout_ms;
	/* Ids of the messages a relay or provider took, most recent
	 * SENT_MAX: a batch rolled back and delivered again is not sent twice. */
	pthread_mutex_t mu;
	char (*sent)[NOTIF_ID_MAX];
	int nsent, next_sent;
} notify;

/* Who a message goes to. */
typedef struct recipient {
	char email[256];
	char name[256];
	char phone[20];
} recipient;

/* ---- what was sent --------------------------------------------------------------- */

static int sent_has(notify *n, const char *id)
{
	int hit = 0;
	pthread_mutex_lock(&n->mu);
	for (int i = 0; i < n->nsent && !hit; i++)
		hit = strcmp(n->sent[i], id) == 0;
	pthread_mutex_unlock(&n->mu);
	return hit;
}

static void sent_add(notify *n, const char *id)
{
	pthread_mutex_lock(&n->mu);
	snprintf(n->sent[n->next_sent], NOTIF_ID_MAX, "%s", id);
	n->next_sent = (n->next_sent + 1) % SENT_MAX;
	if (n->nsent < SENT_MAX)
		n->nsent++;
	pthread_mutex_unlock(&n->mu);
}

/* ---- text ------------------------------------------------------------------------- */

static void fmt_money(int64_t cents, const char *currency, char *buf, size_t len)
{
	long long a = cents < 0 ? -(long long)cents : (long long)cents;
	snprintf(buf, len, "%s%lld.%02lld %s", cents < 0 ? "-" : "", a / 100, a % 100,
		 currency ? currency : "");
}

static const char *reason_text(const char *reason)
{
	static const struct {
		const char *code, *text;
	} reasons[] = {
		{ "out_of_stock", "an item was out of stock" },
		{ "payment_declined", "the payment was declined" },
		{ "customer_cancelled", "you cancelled it" },
		{ "expired", "it could not be completed in time" },
	};
	for (size_t i = 0; reason && i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcmp(reason, reasons[i].code) == 0)
			return reasons[i].text;
	return reason ? reason : "";
}

/* The order's lines, one per item: "  2 x Name (SKU)  17.00 USD". */
static char *items_text(json_t *items, const char *currency)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	size_t i;
	json_t *it;
	json_array_foreach(items, i, it)
	{
		const char *sku = json_string_value(json_object_get(it, "sku"));
		const char *name = json_string_value(json_object_get(it, "name"));
		json_t *total = json_object_get(it, "line_total_cents");
		char money[48] = "";
		if (json_is_integer(total))
			fmt_money(json_integer_value(total), currency, money, sizeof(money));
		fprintf(m, "%s  %lld x %s (%s)  %s", i ? "\n" : "",
			(long long)json_integer_value(json_object_get(it, "qty")),
			name ? name : sku ? sku : "?", sku ? sku : "?", money);
	}
	fclose(m);
	return buf;
}

/* A header's text: control characters become spaces; with any byte past
 * ASCII, RFC 2047 encoded-words (UTF-8, base64) of at most 45 bytes each,
 * folded. New string. */
static char *header_text(const char *in)
{
	size_t n = strlen(in);
	char *plain = malloc(n + 1);
	if (!plain)
		return NULL;
	int ascii = 1;
	for (size_t i = 0; i <= n; i++) {
		unsigned char c = (unsigned char)in[i];
		plain[i] = (char)(c && (c < 0x20 || c == 0x7f) ? ' ' : c);
		ascii &= c < 0x80;
	}
	if (ascii)
		return plain;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	for (size_t off = 0; m && off < n;) {
		size_t chunk = n - off > 45 ? 45 : n - off;
		/* never cut a UTF-8 sequence */
		while (chunk > 1 && off + chunk < n && ((unsigned char)plain[off + chunk] & 0xc0) == 0x80)
			chunk--;
		char b64[sodium_base64_ENCODED_LEN(45, sodium_base64_VARIANT_ORIGINAL)];
		sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)plain + off, chunk,
				  sodium_base64_VARIANT_ORIGINAL);
		fprintf(m, "%s=?UTF-8?B?%s?=", off ? "\r\n " : "", b64);
		off += chunk;
	}
	if (m)
		fclose(m);
	free(plain);
	return buf;
}

/* The whole email: headers, a blank line, the body with CRLF line ends.
 * New string. */
static char *compose_email(notify *n, const char *id, const char *to, const char *subject,
			   const char *body)
{
	char date[64], mid[NOTIF_ID_MAX + 64];
	time_t t = (time_t)(clock_now(n->ctx->clock) / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	const char *domain = strchr(n->from, '@');
	size_t k = 0;
	for (const char *p = id; *p && k + 1 < sizeof(mid) - 64; p++)
		mid[k++] = *p == ':' ? '.' : *p;
	snprintf(mid + k, sizeof(mid) - k, "@%s", domain ? domain + 1 : "ecom.local");
	char *subj = header_text(subject), *name = header_text(n->from_name);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m || !subj || !name) {
		if (m)
			fclose(m);
		free(buf);
		free(subj);
		free(name);
		return NULL;
	}
	fprintf(m,
		"From: %s <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\nX-Ecom-Notification: %s\r\n\r\n",
		name, n->from, to, subj, date, mid, id);
	for (const char *p = body; *p; p++) {
		if (*p == '\n' && (p == body || p[-1] != '\r'))
			fputc('\r', m);
		fputc(*p, m);
	}
	if (body[0] == '\0' || body[strlen(body) - 1] != '\n')
		fputs("\r\n", m);
	fclose(m);
	free(subj);
	free(name);
	return buf;
}

/* An email template's "Subject: ...\n\n" head: the subject into *subject
 * and the body into *body (both pointing into text, the subject cut in
 * place). ERR_PARSE when the head is missing. */
static int split_email(char *text, char **subject, char **body)
{
	if (strncmp(text, "Subject:", 8) != 0)
		return ERR_PARSE;
	char *nl = strchr(text, '\n');
	if (!nl || nl[1] != '\n')
		return ERR_PARSE;
	*nl = '\0';
	*subject = text + 8;
	while (**subject == ' ')
		(*subject)++;
	*body = nl + 2;
	return 0;
}

/* ---- stage 1: deciding ---------------------------------------------------------------- */

/* The user's address, name and number from the user service. 0;
 * ERR_NOT_FOUND when the user service says there is no such user; another
 * error when it cannot be asked (the event is tried again). */
static int lookup_user(notify *n, const char *user_id, recipient *r)
{
	memset(r, 0, sizeof(*r));
	if (!engine_valid_id(user_id))
		return ERR_NOT_FOUND;
	char path[128];
	snprintf(path, sizeof(path), "/v1/internal/users/%s", user_id);
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "GET", path);
	msg_resp_init(&resp);
	int rc = engine_call_service(n->ctx, &req, &resp, LOOKUP_TIMEOUT_MS);
	json_t *v = rc == 0 ? json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL) : NULL;
	if (rc == 0 && resp.status == 200 && json_is_string(json_object_get(v, "email"))) {
		snprintf(r->email, sizeof(r->email), "%s", json_string_value(json_object_get(v, "email")));
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *phone = json_string_value(json_object_get(v, "phone"));
		snprintf(r->name, sizeof(r->name), "%s", name ? name : "");
		snprintf(r->phone, sizeof(r->phone), "%s", phone ? phone : "");
	} else if (rc == 0 && resp.status == 404) {
		/* a 404 that names the user is the user service's answer; any
		 * other (a route missing at the gateway) is not */
		const char *who = json_string_value(
			json_object_get(json_object_get(json_object_get(v, "error"), "details"), "user_id"));
		rc = who && strcmp(who, user_id) == 0 ? ERR_NOT_FOUND : ERR_UNAVAILABLE;
	} else {
		log_warn(n->ctx->log, "looking up user %s: %s, status %d", user_id, err_name(rc),
			 resp.status);
		rc = rc ? rc : ERR_UNAVAILABLE;
	}
	json_decref(v);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	return rc;
}

/* What one message is about. */
typedef struct cause {
	const bus_msg *m;
	const char *event_id; /* the event that caused it */
	enum kind kind;
	const char *ref;      /* order id, or payment and refund */
	const char *order_id;
	const char *user_id;
	json_t *vars;         /* the template's values (borrowed) */
} cause;

/* Inserts the message's row and, when it is new, its outbox row. */
static int queue_message(notify *n, const cause *c, enum channel ch, const char *id,
			 const char *to, const char *subject, json_t *payload)
{
	int64_t now = clock_now(n->ctx->clock), changed = 0;
	int rc = store_runf(n->ctx->store,
			    "INSERT INTO notifications (notification_id, kind, channel, ref, order_id, "
			    "user_id, recipient, subject, status, event_id, created_at) "
			    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'QUEUED', ?, ?) "
			    "ON CONFLICT (notification_id) DO NOTHING",
			    &changed, "tttttttt" "ti", id, KIND_NAMES[c->kind], CHANNEL_NAMES[ch], c->ref,
			    c->order_id, c->user_id, to, subject, c->event_id, now);
	if (rc || changed != 1)
		return rc;
	char *text = jval_dump(payload);
	if (!text)
		return ERR_NOMEM;
	rc = outbox_put(n->ctx->store, CHANNEL_TOPICS[ch], id, text, c->m->traceparent, now);
	free(text);
	if (rc == 0)
		log_info(n->ctx->log, "%s %s for %s queued", CHANNEL_NAMES[ch], id, c->user_id);
	return rc;
}

/* One channel of a cause: render, compose, queue. */
static int notify_channel(notify *n, const cause *c, enum channel ch, const recipient *r)
{
	const char *tpl = n->tpl[c->kind][ch];
	const char *to = ch == CH_EMAIL ? r->email : r->phone;
	if (!tpl || !to[0])
		return 0;
	char id[NOTIF_ID_MAX], err[200];
	snprintf(id, sizeof(id), "%s:%s:%s", KIND_NAMES[c->kind], c->ref, CHANNEL_NAMES[ch]);
	char *text = NULL;
	int rc = template_render(tpl, c->vars, &text, err, sizeof(err));
	if (rc) {
		log_error(n->ctx->log, "template %s.%s: %s", KIND_NAMES[c->kind], CHANNEL_NAMES[ch], err);
		return rc;
	}
	json_t *payload = NULL;
	if (ch == CH_EMAIL) {
		char *subject, *body;
		char *message = split_email(text, &subject, &body) == 0
					? compose_email(n, id, to, subject, body)
					: NULL;
		if (message)
			payload = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "type", "email",
					    "notification_id", id, "kind", KIND_NAMES[c->kind], "to",
					    to, "from", n->from, "subject", subject, "message", message);
		free(message);
		rc = payload ? queue_message(n, c, ch, id, to, subject, payload) : ERR_NOMEM;
	} else {
		size_t len = strlen(text);
		while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
			text[--len] = '\0';
		payload = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "type", "sms", "notification_id", id,
				    "kind", KIND_NAMES[c->kind], "to", to, "from", n->sms_from,
				    "body", text);
		rc = payload ? queue_message(n, c, ch, id, to, "", payload) : ERR_NOMEM;
	}
	json_decref(payload);
	free(text);
	return rc;
}

/* Every channel of a cause, to the user it names. */
static int notify_user(notify *n, const cause *c)
{
	recipient r;
	int rc = lookup_user(n, c->user_id, &r);
	if (rc == ERR_NOT_FOUND) {
		log_warn(n->ctx->log, "%s %s: user %s is unknown; nobody to tell",
			 KIND_NAMES[c->kind], c->ref, c->user_id);
		return 0;
	}
	if (rc)
		return rc;
	json_object_set_new(c->vars, "name", json_string(r.name));
	json_object_set_new(c->vars, "email", json_string(r.email));
	for (int ch = 0; rc == 0 && ch < NCHANNELS; ch++)
		rc = notify_channel(n, c, (enum channel)ch, &r);
	return rc;
}

/* The placeholders' values, all of them empty. New reference. */
static json_t *empty_vars(void)
{
	json_t *v = json_object();
	for (int i = 0; VARS[i]; i++)
		json_object_set_new(v, VARS[i], json_string(""));
	return v;
}

static int on_refund(notify *n, const bus_msg *m, const char *event_id, json_t *ev,
		     const char *user_id)
{
	const char *order_id = json_string_value(json_object_get(ev, "order_id"));
	const char *payment_id = json_string_value(json_object_get(ev, "payment_id"));
	const char *refund_id = json_string_value(json_object_get(ev, "refund_id"));
	const char *currency = json_string_value(json_object_get(ev, "currency"));
	json_t *cents = json_object_get(ev, "refund_cents");
	if (!json_is_integer(cents))
		cents = json_object_get(ev, "refunded_cents");
	if (!order_id || !payment_id)
		return ERR_PARSE;
	char ref[NOTIF_ID_MAX / 2], money[48];
	snprintf(ref, sizeof(ref), "%s:%s", payment_id, refund_id ? refund_id : "all");
	fmt_money(json_integer_value(cents), currency, money, sizeof(money));
	json_t *vars = empty_vars();
	json_object_set_new(vars, "order_id", json_string(order_id));
	json_object_set_new(vars, "payment_id", json_string(payment_id));
	json_object_set_new(vars, "refund", json_string(money));
	json_object_set_new(vars, "total", json_string(money));
	cause c = { .m = m, .event_id = event_id, .kind = K_REFUND, .ref = ref, .order_id = order_id,
		    .user_id = user_id, .vars = vars };
	int rc = notify_user(n, &c);
	json_decref(vars);
	return rc;
}

/* The refunds that came before their order's event, now that it is here. */
static int on_waiting(notify *n, const bus_msg *m, const char *order_id, const char *user_id)
{
	int rc = 0;
	store_stmt *st = store_queryf(n->ctx->store,
				      "SELECT event_id, payload FROM notify_waiting WHERE order_id = ? "
				      "ORDER BY at, event_id",
				      &rc, "t", order_id);
	if (!st)
		return rc;
	json_t *rows = json_array();
	while ((rc = store_step(st)) == STORE_ROW)
		json_array_append_new(rows, json_pack("[s,s]", store_col_text(st, 0),
						      store_col_text(st, 1)));
	store_reset(st);
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row)
	{
		if (rc < 0)
			break;
		json_t *ev = json_loads(json_string_value(json_array_get(row, 1)), 0, NULL);
		rc = ev ? on_refund(n, m, json_string_value(json_array_get(row, 0)), ev, user_id)
			: ERR_PARSE;
		json_decref(ev);
	}
	json_decref(rows);
	if (rc >= 0)
		rc = store_runf(n->ctx->store, "DELETE FROM notify_waiting WHERE order_id = ?", NULL,
				"t", order_id);
	return rc < 0 ? rc : 0;
}

static int on_order(notify *n, const bus_msg *m, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	int confirmed = type && strcmp(type, "order.confirmed") == 0;
	if (!type || (!confirmed && strcmp(type, "order.cancelled") != 0))
		return 0;
	const char *order_id = json_string_value(json_object_get(ev, "order_id"));
	const char *user_id = json_string_value(json_object_get(ev, "user_id"));
	const char *currency = json_string_value(json_object_get(ev, "currency"));
	const char *reason = json_string_value(json_object_get(ev, "cancel_reason"));
	json_t *total = json_object_get(ev, "total_cents");
	if (!order_id || !user_id || !currency || !json_is_integer(total))
		return ERR_PARSE;
	int rc = store_runf(n->ctx->store,
			    "INSERT INTO notify_orders (order_id, user_id, total_cents, currency, at) "
			    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO NOTHING",
			    NULL, "ttiti", order_id, user_id, (int64_t)json_integer_value(total), currency,
			    clock_now(n->ctx->clock));
	if (rc)
		return rc;
	char money[48];
	fmt_money(json_integer_value(total), currency, money, sizeof(money));
	json_t *vars = empty_vars();
	json_object_set_new(vars, "order_id", json_string(order_id));
	json_object_set_new(vars, "total", json_string(money));
	json_object_set_new(vars, "reason", json_string(reason_text(reason)));
	char *items = items_text(json_object_get(ev, "items"), currency);
	json_object_set_new(vars, "items", json_string(items ? items : ""));
	free(items);
	enum kind k = confirmed ? K_CONFIRMED
		      : reason && strcmp(reason, "payment_declined") == 0 ? K_DECLINED
									   : K_CANCELLED;
	cause c = { .m = m, .event_id = m->id, .kind = k, .ref = order_id, .order_id = order_id,
		    .user_id = user_id, .vars = vars };
	rc = notify_user(n, &c);
	json_decref(vars);
	return rc ? rc : on_waiting(n, m, order_id, user_id);
}

static int on_payment(notify *n, const bus_msg *m, json_t *ev)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	if (!type || strcmp(type, "payment.refunded") != 0)
		return 0;
	const char *order_id = json_string_value(json_object_get(ev, "order_id"));
	if (!order_id)
		return ERR_PARSE;
	int rc = 0;
	store_stmt *st = store_queryf(n->ctx->store,
				      "SELECT user_id FROM notify_orders WHERE order_id = ?", &rc, "t",
				      order_id);
	if (!st)
		return rc;
	char user_id[128] = "";
	if ((rc = store_step(st)) == STORE_ROW)
		snprintf(user_id, sizeof(user_id), "%s", store_col_text(st, 0));
	store_reset(st);
	if (rc < 0)
		return rc;
	if (user_id[0])
		return on_refund(n, m, m->id, ev, user_id);
	/* the order's own event has not come yet: it will pick this up */
	return store_runf(n->ctx->store,
			  "INSERT INTO notify_waiting (order_id, event_id, payload, at) VALUES (?, ?, ?, ?) "
			  "ON CONFLICT (order_id, event_id) DO NOTHING",
			  NULL, "ttti", order_id, m->id, m->payload, clock_now(n->ctx->clock));
}

/* ---- stage 2: sending ----------------------------------------------------------------- */

static void count_sent(notify *n, const char *channel, const char *result)
{
	char labels[96];
	snprintf(labels, sizeof(labels), "channel=\"%s\",result=\"%s\"", channel, result);
	metrics_count(n->ctx->metrics, "notification_sent_total", labels, 1);
}

static int mark_sent(notify *n, const char *id)
{
	return store_runf(n->ctx->store,
			  "UPDATE notifications SET status = 'SENT', sent_at = ? "
			  "WHERE notification_id = ? AND status = 'QUEUED'",
			  NULL, "it", clock_now(n->ctx->clock), id);
}

static int send_email(notify *n, const bus_msg *m, json_t *p)
{
	const char *id = json_string_value(json_object_get(p, "notification_id"));
	const char *to = json_string_value(json_object_get(p, "to"));
	const char *from = json_string_value(json_object_get(p, "from"));
	const char *message = json_string_value(json_object_get(p, "message"));
	if (!id || !to || !from || !message)
		return ERR_PARSE;
	if (sent_has(n, id))
		return mark_sent(n, id);
	if (!n->ctx->mail || !n->smtp_url[0]) {
		log_warn(n->ctx->log, "email %s: no SMTP relay (notification.smtp_url)", id);
		return ERR_UNAVAILABLE;
	}
	const char *rcpt[1] = { to };
	smtp_message sm = { .url = n->smtp_url,
			    .from = from,
			    .to = rcpt,
			    .nto = 1,
			    .data = message,
			    .len = strlen(message),
			    .timeout_ms = n->timeout_ms };
	char err[300] = "";
	int rc = n->ctx->mail(n->ctx->mail_ud, &sm, err, sizeof(err));
	if (rc) {
		count_sent(n, "email", "failed");
		log_warn(n->ctx->log, "email %s to %s not sent (attempt %d): %s: %s", id, to,
			 m->attempt, err_name(rc), err);
		return rc;
	}
	count_sent(n, "email", "sent");
	log_info(n->ctx->log, "email %s sent to %s", id, to);
	sent_add(n, id);
	return mark_sent(n, id);
}

/* "http://host:port/path" into base ("http://host:port") and path ("/path",
 * "/" when none). 0 or ERR_INVALID. */
static int split_url(const char *url, char *base, size_t blen, char *path, size_t plen)
{
	const char *scheme = strstr(url, "://");
	if (!scheme)
		return ERR_INVALID;
	const char *slash = strchr(scheme + 3, '/');
	size_t n = slash ? (size_t)(slash - url) : strlen(url);
	if (n >= blen)
		return ERR_INVALID;
	memcpy(base, url, n);
	base[n] = '\0';
	snprintf(path, plen, "%s", slash ? slash : "/");
	return 0;
}

static int send_sms(notify *n, const bus_msg *m, json_t *p)
{
	const char *id = json_string_value(json_object_get(p, "notification_id"));
	const char *to = json_string_value(json_object_get(p, "to"));
	const char *body = json_string_value(json_object_get(p, "body"));
	const char *from = json_string_value(json_object_get(p, "from"));
	if (!id || !to || !body)
		return ERR_PARSE;
	if (sent_has(n, id))
		return mark_sent(n, id);
	char base[512], path[512];
	if (!n->sms_url[0] || split_url(n->sms_url, base, sizeof(base), path, sizeof(path)) != 0) {
		log_warn(n->ctx->log, "text %s: no SMS provider (notification.sms_url)", id);
		return ERR_UNAVAILABLE;
	}
	json_t *o = json_pack("{s:s,s:s,s:s}", "to", to, "body", body, "from", from ? from : n->sms_from);
	char *text = jval_dump(o);
	json_decref(o);
	if (!text)
		return ERR_NOMEM;
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "POST", path);
	msg_resp_init(&resp);
	msg_req_set_header(&req, "Content-Type", "application/json");
	msg_req_set_header(&req, "Idempotency-Key", id);
	msg_req_set_body(&req, text, strlen(text));
	free(text);
	int rc = engine_call_guarded(n->ctx, "sms", base, &req, &resp, n->timeout_ms);
	int status = resp.status;
	msg_req_clear(&req);
	msg_resp_clear(&resp);
	if (rc || status / 100 != 2) {
		count_sent(n, "sms", "failed");
		log_warn(n->ctx->log, "text %s to %s not sent (attempt %d): %s, status %d", id, to,
			 m->attempt, err_name(rc), status);
		return rc ? rc : ERR_UNAVAILABLE;
	}
	count_sent(n, "sms", "sent");
	sent_add(n, id);
	return mark_sent(n, id);
}

static int notify_consume(void *eng, const bus_msg *m)
{
	notify *n = eng;
	json_t *p = json_loadb(m->payload, m->payload_len, 0, NULL);
	if (!json_is_object(p)) {
		json_decref(p);
		log_error(n->ctx->log, "%s on %s: the payload is not a JSON object", m->id, m->topic);
		return ERR_PARSE; /* it becomes a dead letter an operator can look at */
	}
	int rc = 0;
	if (strcmp(m->topic, "orders") == 0)
		rc = on_order(n, m, p);
	else if (strcmp(m->topic, "payments") == 0)
		rc = on_payment(n, m, p);
	else if (strcmp(m->topic, CHANNEL_TOPICS[CH_EMAIL]) == 0)
		rc = send_email(n, m, p);
	else if (strcmp(m->topic, CHANNEL_TOPICS[CH_SMS]) == 0)
		rc = send_sms(n, m, p);
	if (rc == ERR_PARSE)
		log_error(n->ctx->log, "%s on %s: a field is missing or ill-typed", m->id, m->topic);
	json_decref(p);
	return rc;
}

/* ---- admin --------------------------------------------------------------------------- */

/* GET /admin/notifications?type=&order_id=&user_id=&ref=&limit=&page_token=
 * in notification_id order; page_token is the hex of the last id of the
 * previous page. */
static void list_notifications(void *ud, msg_req *req, msg_resp *resp)
{
	notify *n = ud;
	if (engine_require_admin(n->ctx, req, resp))
		return;
	char type[64] = "", order[128] = "", user[128] = "", ref[160] = "";
	char token[2 * NOTIF_ID_MAX + 2] = "", after[NOTIF_ID_MAX + 1] = "";
	int64_t limit = 100;
	if (msg_req_query(req, "type", type, sizeof(type)) < 0 ||
	    msg_req_query(req, "order_id", order, sizeof(order)) < 0 ||
	    msg_req_query(req, "user_id", user, sizeof(user)) < 0 ||
	    msg_req_query(req, "ref", ref, sizeof(ref)) < 0 ||
	    msg_req_query(req, "page_token", token, sizeof(token)) < 0) {
		engine_bad_field(resp, "query", "a parameter is too long");
		return;
	}
	if (engine_query_int(req, resp, "limit", 1, LIST_MAX, &limit) < 0)
		return;
	size_t tl = strlen(token);
	int bad = tl % 2 != 0 || tl / 2 >= sizeof(after);
	for (size_t i = 0; !bad && i < tl; i += 2) {
		int hi = text_hexval(token[i]), lo = text_hexval(token[i + 1]);
		bad = hi < 0 || lo < 0;
		after[i / 2] = (char)(hi * 16 + lo);
	}
	if (bad) {
		engine_bad_field(resp, "page_token", "is not a token this listing gave");
		return;
	}
	after[tl / 2] = '\0';
	int rc = 0;
	store_stmt *st = store_queryf(
		n->ctx->store,
		"SELECT notification_id, kind, channel, ref, order_id, user_id, recipient, subject, "
		"status, event_id, created_at, sent_at FROM notifications WHERE notification_id > ? "
		"AND (? = '' OR kind = ?) AND (? = '' OR order_id = ?) AND (? = '' OR user_id = ?) "
		"AND (? = '' OR ref = ?) ORDER BY notification_id LIMIT ?",
		&rc, "ttttttttti", after, type, type, order, order, user, user, ref, ref, limit);
	if (!st) {
		engine_store_error(n->ctx, resp, rc, "listing notifications");
		return;
	}
	json_t *items = json_array();
	while ((rc = store_step(st)) == STORE_ROW) {
		char created[40], sent[40];
		clock_fmt_rfc3339(store_col_int(st, 10), created, sizeof(created));
		int was_sent = !store_col_is_null(st, 11);
		if (was_sent)
			clock_fmt_rfc3339(store_col_int(st, 11), sent, sizeof(sent));
		json_array_append_new(
			items,
			json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s?}", "notification_id",
				  store_col_text(st, 0), "type", store_col_text(st, 1), "channel",
				  store_col_text(st, 2), "ref", store_col_text(st, 3), "order_id",
				  store_col_text(st, 4), "user_id", store_col_text(st, 5), "recipient",
				  store_col_text(st, 6), "subject", store_col_text(st, 7), "status",
				  store_col_text(st, 8), "event_id", store_col_text(st, 9), "created_at",
				  created, "sent_at", was_sent ? sent : NULL));
	}
	store_reset(st);
	if (rc < 0) {
		json_decref(items);
		engine_store_error(n->ctx, resp, rc, "listing notifications");
		return;
	}
	json_t *next = json_null();
	size_t count = json_array_size(items);
	if ((int64_t)count == limit) {
		const char *last = json_string_value(
			json_object_get(json_array_get(items, count - 1), "notification_id"));
		char hex[2 * NOTIF_ID_MAX + 1];
		size_t k = 0;
		for (const char *p = last; *p && k + 2 < sizeof(hex); p++)
			k += (size_t)snprintf(hex + k, sizeof(hex) - k, "%02x", (unsigned char)*p);
		next = json_string(hex);
	}
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "items", items, "next_page_token", next));
}

/* ---- engine --------------------------------------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = malloc(TEMPLATE_MAX + 1);
	size_t n = buf ? fread(buf, 1, TEMPLATE_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || n > TEMPLATE_MAX) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* Every placeholder of text is one of VARS. */
static int known_vars(const char *text, char *bad, size_t len)
{
	json_t *names = template_names(text);
	if (!names) {
		snprintf(bad, len, "a malformed placeholder");
		return 0;
	}
	int ok = 1;
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v)
	{
		int known = 0;
		for (int k = 0; VARS[k]; k++)
			known |= strcmp(VARS[k], json_string_value(v)) == 0;
		if (!known && ok) {
			snprintf(bad, len, "unknown placeholder {{%s}}", json_string_value(v));
			ok = 0;
		}
	}
	json_decref(names);
	return ok;
}

/* The templates of every kind: the email one must be there, with its
 * "Subject:" head; a text one may be left out. */
static int load_templates(notify *n, char *err, size_t errlen)
{
	const char *dir = config_get(n->ctx->config, "notification.templates_dir");
	char base[1024];
	if (dir && dir[0])
		snprintf(base, sizeof(base), "%s", dir);
	else
		snprintf(base, sizeof(base), "%s/templates", n->ctx->data_dir ? n->ctx->data_dir : "data");
	for (int k = 0; k < NKINDS; k++)
		for (int ch = 0; ch < NCHANNELS; ch++) {
			char path[1200], bad[128];
			snprintf(path, sizeof(path), "%s/%s.%s.txt", base, KIND_NAMES[k], CHANNEL_NAMES[ch]);
			char *text = read_text(path);
			if (!text && ch == CH_SMS)
				continue;
			if (!text) {
				snprintf(err, errlen, "cannot read the template %s", path);
				return ERR_NOT_FOUND;
			}
			n->tpl[k][ch] = text;
			if (!known_vars(text, bad, sizeof(bad))) {
				snprintf(err, errlen, "template %s: %s", path, bad);
				return ERR_PARSE;
			}
			if (ch == CH_EMAIL && (strncmp(text, "Subject:", 8) != 0 || !strstr(text, "\n\n"))) {
				snprintf(err, errlen, "template %s: must start with 'Subject: ...' and a blank line",
					 path);
				return ERR_PARSE;
			}
		}
	return 0;
}

static void notify_destroy(void *eng)
{
	notify *n = eng;
	if (!n)
		return;
	for (int k = 0; k < NKINDS; k++)
		for (int ch = 0; ch < NCHANNELS; ch++)
			free(n->tpl[k][ch]);
	router_free(n->rt);
	pthread_mutex_destroy(&n->mu);
	free(n->sent);
	free(n);
}

static void *notify_create(engine_ctx *ctx, char *err, size_t errlen)
{
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium cannot initialise");
		return NULL;
	}
	notify *n = calloc(1, sizeof(*n));
	if (!n || !(n->sent = calloc(SENT_MAX, sizeof(*n->sent)))) {
		free(n);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&n->mu, NULL);
	n->ctx = ctx;
	n->smtp_url = config_get(ctx->config, "notification.smtp_url");
	n->sms_url = config_get(ctx->config, "notification.sms_url");
	n->from = config_get(ctx->config, "notification.from");
	n->from_name = config_get(ctx->config, "notification.from_name");
	n->sms_from = config_get(ctx->config, "notification.sms_from");
	n->timeout_ms = config_int(ctx->config, "notification.timeout_ms", 10000);
	if (!n->smtp_url || !n->sms_url || !n->from || !strchr(n->from, '@') || !n->from_name ||
	    !n->sms_from || n->timeout_ms < 1) {
		snprintf(err, errlen, "bad notification.* configuration (from must be an address)");
		notify_destroy(n);
		return NULL;
	}
	if (n->smtp_url[0] && strncmp(n->smtp_url, "smtp://", 7) != 0) {
		snprintf(err, errlen, "notification.smtp_url must be smtp://HOST:PORT");
		notify_destroy(n);
		return NULL;
	}
	if (load_templates(n, err, errlen) != 0) {
		notify_destroy(n);
		return NULL;
	}
	static const engine_route routes[] = {
		{ "GET", "/admin/notifications", list_notifications },
	};
	n->rt = engine_router(routes, sizeof(routes) / sizeof(routes[0]), n, err, errlen);
	if (!n->rt) {
		notify_destroy(n);
		return NULL;
	}
	metrics_help(ctx->metrics, "notification_sent_total",
		     "Emails and texts handed to the relay or provider (sent) or not (failed).");
	if (!n->smtp_url[0])
		log_warn(ctx->log, "no notification.smtp_url: emails fail until one is set");
	return n;
}

static void notify_handle(void *eng, msg_req *req, msg_resp *resp)
{
	notify *n = eng;
	router_dispatch(n->rt, req, resp);
}

static const engine_sub notify_subs[] = {
	{ "orders", NULL },
	{ "payments", NULL },
	{ "notifications.email", "notification-email" },
	{ "notifications.sms", "notification-sms" },
	{ NULL, NULL },
};

const engine_def notification_engine = {
	.name = "notification",
	.needs_store = 1,
	.create = notify_create,
	.handle = notify_handle,
	.destroy = notify_destroy,
	.subs = notify_subs,
	.consume = notify_consume,
};
