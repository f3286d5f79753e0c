/* config: one static table of known keys; a config is an array of current
 * values parallel to it. */
#include "core/config.h"
#include "core/err.h"
#include "core/text.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const config_def defs[] = {
	{"http.host", "127.0.0.1", "Address every service's HTTP server binds to and that peers dial."},
	{"http.threads", "2", "Worker threads of each service's HTTP server (the inventory and the gateway take at least 8; the gateway runs a thread per connection instead unless gateway.thread_per_connection is 0)."},
	{"http.body_limit", "65536",
	 "Largest request body accepted, in bytes; a larger one gets 413 payload_too_large."},
	{"http.header_limit", "8192",
	 "Largest request line plus headers in bytes; larger requests get 431."},
	{"http.conn_timeout_s", "30", "Seconds an idle client connection stays open before the server closes it."},
	{"log.level", "info", "Lowest level of log line written: debug, info, warn or error."},
	{"trace.ring_spans", "4096",
	 "Finished spans each process keeps in memory (the oldest are overwritten), served by GET /admin/traces/{trace_id} and read by the exporter."},
	{"otel.export_file", "",
	 "Append every process's spans to this file as OTLP/JSON, one ExportTraceServiceRequest per line; empty: no file."},
	{"otel.endpoint", "",
	 "OTLP/HTTP collector (http://HOST:PORT, or a full URL) every process POSTs its spans to, as OTLP/JSON to /v1/traces; empty: none."},
	{"otel.flush_ms", "1000", "Milliseconds between two exports of the spans recorded meanwhile."},
	{"otel.batch_spans", "512", "Most spans in one exported line or POST."},
	{"stats.window_s", "10",
	 "Seconds of traffic each process sums for GET /admin/stats (rps, p50, p99, error rate); 1..60."},
	{"store.url", "",
	 "Where services keep their databases; empty means sqlite:<state>/data (one SQLite file per service)."},
	{"store.busy_timeout_ms", "5000",
	 "Milliseconds a SQLite connection waits on a locked database before giving up."},
	{"store.local_url", "",
	 "Where instances keep derived data of their own (the search index, <dir>/<instance>.db): "
	 "a sqlite: URL; empty means the platform store's directory when that is SQLite, else "
	 "sqlite:<state>/data."},
	{"bus.url", "embedded",
	 "Event bus: embedded (consumers read each producer's outbox as a feed) or kafka://HOST:PORT[,HOST:PORT] (a Kafka cluster)."},
	{"bus.topics",
	 "orders=order payments=payment inventory=inventory notifications.email=notification "
	 "notifications.sms=notification analytics=catalog,cart catalog=catalog",
	 "Which services produce each topic (topic=service[,service] pairs); embedded consumers poll these producers' feeds."},
	{"bus.poll_ms", "100",
	 "Milliseconds the bus waits between rounds when there was nothing to move (relay and consumers)."},
	{"bus.batch", "200", "Messages a consumer fetches and a relay publishes per round (1..1000)."},
	{"bus.max_attempts", "5",
	 "Deliveries of a message a consumer fails before it becomes a dead letter."},
	{"bus.retry_base_ms", "200",
	 "Ceiling of the first retry's delay after a failed consume; doubles per retry, with full jitter."},
	{"bus.retry_max_ms", "30000", "Longest delay in milliseconds between retries of a failed consume."},
	{"bus.lease_ms", "5000",
	 "Milliseconds one instance holds an embedded feed (or the Kafka relay) before another may take it over."},
	{"bus.fetch_timeout_ms", "2000",
	 "Milliseconds an embedded consumer waits for a producer's feed."},
	{"bus.retention_s", "604800",
	 "Seconds published outbox rows and inbox entries are kept before they are pruned."},
	{"bus.kafka_timeout_ms", "30000",
	 "Kafka: milliseconds a produced event may take to be acknowledged before the relay tries it again."},
	{"bus.kafka_session_timeout_ms", "45000",
	 "Kafka: milliseconds a consumer may be silent before its group gives its partitions to another instance."},
	{"gateway.port", "8080", "TCP port of the API gateway, the platform's public entry point."},
	{"gateway.upstream_timeout_ms", "5000",
	 "Milliseconds the gateway waits for an upstream's answer before replying 504 upstream_timeout."},
	{"gateway.connect_timeout_ms", "500",
	 "Milliseconds the gateway waits to connect to an upstream instance."},
	{"gateway.routes_file", "",
	 "Route table file (prefix, targets, weights, deprecation); empty means the built-in table."},
	{"gateway.token_leeway_s", "30",
	 "Seconds of clock skew allowed when checking an access token's iat and exp."},
	{"gateway.token_cache_slots", "65536",
	 "Access tokens the gateway remembers as verified (digest and claims, not the token; "
	 "expiry is still checked on every request); 0 verifies every token every time."},
	{"gateway.rate_read_per_s", "200",
	 "Reads (GET, HEAD) per second allowed per caller (user, else client address)."},
	{"gateway.rate_read_burst", "400", "Reads a caller may make at once before the rate applies."},
	{"gateway.rate_write_per_s", "50", "Writes per second allowed per caller."},
	{"gateway.rate_write_burst", "100", "Writes a caller may make at once before the rate applies."},
	{"gateway.rate_auth_per_s", "5", "Requests to /v1/auth/* per second allowed per caller."},
	{"gateway.rate_auth_burst", "20",
	 "Requests to /v1/auth/* a caller may make at once before the rate applies."},
	{"registry.heartbeat_ms", "1000",
	 "Interval in milliseconds at which a service instance renews its registration."},
	{"registry.ttl_ms", "3500",
	 "Milliseconds after its last heartbeat before an instance is dropped from the registry."},
	{"services.direct_calls", "1",
	 "1: a service calls another's instances directly (client-side discovery from a copy of the gateway's registry, the gateway's route table and balancing), and through the gateway only when it knows no instance; 0: every service-to-service call goes through the gateway."},
	{"services.discovery_refresh_ms", "1000",
	 "Milliseconds between a service instance's copies of the gateway's registry (GET /admin/services), for direct calls."},
	{"supervisor.restart_backoff_ms", "200",
	 "First delay in milliseconds before the supervisor restarts a crashed service."},
	{"supervisor.restart_backoff_max_ms", "5000",
	 "Longest delay in milliseconds the supervisor's restart backoff grows to."},
	{"up.ready_timeout_s", "30",
	 "Seconds `ecom up` waits for every service to become ready before failing."},
	{"catalog.page_size_default", "20", "Products per page when a listing gives no page_size."},
	{"catalog.page_size_max", "100", "Largest page_size a product listing accepts."},
	{"catalog.seed_file", "",
	 "Product catalog JSON used for seeding; empty means <data>/catalog/products.json."},
	{"inventory.low_stock_threshold", "5",
	 "Available units at or below which a stock change also writes a low_stock event."},
	{"inventory.initial_on_hand", "100",
	 "Units each catalog sku gets when the inventory service starts with no stock."},
	{"data.dir", "", "Directory of schemas and seed data; empty means auto-detected."},
	{"user.token_ttl_s", "3600",
	 "Lifetime of an access token issued at login, in seconds."},
	{"user.login_per_min", "5",
	 "Login attempts per minute allowed per email and per client address (then 429)."},
	{"user.pwhash_opslimit", "2",
	 "argon2id passes for password hashes (libsodium's interactive limit is 2)."},
	{"user.pwhash_memlimit_kib", "65536",
	 "argon2id memory for password hashes, in KiB (libsodium's interactive limit is 64 MiB)."},
	{"notification.smtp_url", "",
	 "SMTP relay the notification service sends email to (smtp://HOST:PORT, no authentication or TLS); empty under `ecom up` means the SMTP sink it starts (`ecom sim smtp`); empty otherwise leaves emails failing, so they end as dead letters."},
	{"notification.sms_url", "",
	 "URL the notification service POSTs text messages to as JSON {to, body, from} (an SMS provider's messages endpoint, such as `ecom sim sms`'s http://HOST:PORT/v1/messages); empty under `ecom up` means the SMS sink it starts."},
	{"notification.from", "orders@ecom.test", "Sender address of notification emails (envelope and From header)."},
	{"notification.from_name", "ecom", "Display name in the From header of notification emails."},
	{"notification.sms_from", "ECOM", "Sender name given to the SMS provider."},
	{"notification.timeout_ms", "10000",
	 "Milliseconds one SMTP exchange or one SMS request may take before it counts as failed (and is retried by the bus)."},
	{"notification.templates_dir", "",
	 "Directory of the notification templates (<kind>.email.txt, <kind>.sms.txt); empty means <data>/templates."},
	{"smtp.base_url", "",
	 "HTTP base URL of the SMTP relay's admin API, where the gateway passes `PUT /admin/faults/smtp` on; `ecom up` sets it to its SMTP sink's."},
	{"sms.base_url", "",
	 "HTTP base URL of the SMS provider's admin API, where the gateway passes `PUT /admin/faults/sms` on; `ecom up` sets it to its SMS sink's."},
	{"smtp_sim.max_messages", "10000", "Messages `ecom sim smtp` keeps; the oldest are dropped first."},
	{"smtp_sim.max_message_bytes", "1048576",
	 "Largest message `ecom sim smtp` accepts (advertised as SIZE); a larger one gets 552."},
	{"sms_sim.max_messages", "10000", "Text messages `ecom sim sms` keeps; the oldest are dropped first."},
	{"catalog.view_flush_ms", "5000",
	 "Milliseconds between flushes of the catalog's product-view counters into one `product.viewed` event (topic analytics); 0 counts no views."},
	{"cart.max_skus", "50",
	 "Different skus a cart may hold; putting one more gets 409 conflict."},
	{"cart.catalog_timeout_ms", "2000",
	 "Milliseconds the cart waits for the catalog's price of an item before replying 503."},
	{"search.page_size_default", "20", "Results per page when a search gives no limit."},
	{"search.page_size_max", "100", "Largest limit a search accepts."},
	{"search.rank_window", "300",
	 "When more products match a search than this, only this many candidates (name matches "
	 "first, spread over the categories) are ranked and paged; total and facets still count "
	 "every match."},
	{"search.name_weight", "3",
	 "Weight of the product name against the description (1) in the BM25F score."},
	{"search.posting_cache_mb", "64",
	 "MiB of memory a search instance keeps the posting lists (matching product ids) of common words in, to count two-word queries and price filters without reading every match from the index; 0 turns it off."},
	{"search.posting_cache_min_df", "2000",
	 "Words in fewer products than this are counted from the index match by match rather than from a cached posting list."},
	{"search.reindex_page_size", "1000",
	 "Products per page the search index asks the catalog's export for while rebuilding."},
	{"search.reindex_pages_per_tick", "8",
	 "Export pages a search instance indexes per engine tick while rebuilding."},
	{"search.catalog_timeout_ms", "10000",
	 "Milliseconds a search instance waits for a page of the catalog's export."},
	{"search.tombstone_ttl_s", "86400",
	 "Seconds a search index remembers a deleted sku, so that an older event cannot bring it back."},
	{"stripe.base_url", "",
	 "Base URL of the Stripe API the payment service calls; empty means https://api.stripe.com, except under `ecom up`, which then starts `ecom sim stripe` and points the service at it (set this, or pass --no-sims, to use a real Stripe such as its test mode)."},
	{"stripe.secret_key", "",
	 "Stripe secret key (sk_test_...) sent as the bearer token; set ECOM_STRIPE_SECRET_KEY to keep it out of files. Empty under `ecom up` with the simulator means sk_test_ecom_simulator; otherwise payments answer 503 until one is set."},
	{"stripe.timeout_ms", "10000",
	 "Milliseconds the payment service waits for one Stripe call before treating it as failed (retried with the same idempotency key)."},
	{"stripe_sim.api_key", "", "The only secret key `ecom sim stripe` accepts; empty accepts any sk_test_ key."},
	{"stripe_sim.max_intents", "1000000",
	 "Payment intents `ecom sim stripe` holds before refusing new ones with 503."},
	{"stripe_sim.max_idempotency_keys", "100000",
	 "Idempotency keys `ecom sim stripe` remembers; the oldest are forgotten first."},
	{"stripe_sim.idempotency_ttl_s", "86400",
	 "Seconds `ecom sim stripe` replays the stored answer of an Idempotency-Key (Stripe keeps them 24 hours)."},
	{"stripe.webhook_secret", "",
	 "Endpoint secret (whsec_...) of Stripe's webhooks: POST /v1/webhooks/stripe checks Stripe-Signature with it, and `ecom sim stripe` signs with it. Empty refuses webhooks (503) and the simulator sends none; `ecom up` with the simulator makes one (STATE/stripe.webhook_secret)."},
	{"stripe_sim.webhook_url", "",
	 "Where `ecom sim stripe` sends its webhooks (captures, refunds), e.g. http://127.0.0.1:8080/v1/webhooks/stripe; empty sends none. `ecom up` points it at its gateway."},
	{"paypal.base_url", "",
	 "Base URL of the PayPal REST API the payment service calls; empty means https://api-m.sandbox.paypal.com, except under `ecom up`, which then starts `ecom sim paypal` and points the service at it (set this, or pass --no-sims, to use a real PayPal)."},
	{"paypal.client_id", "",
	 "PayPal REST app client id (OAuth2 client credentials). Empty under `ecom up` with the simulator means ecom-sim-client; otherwise PayPal payments answer 503 until one is set."},
	{"paypal.secret", "",
	 "PayPal REST app secret; set ECOM_PAYPAL_SECRET to keep it out of files. Empty under `ecom up` with the simulator means ecom-sim-secret."},
	{"paypal.timeout_ms", "10000",
	 "Milliseconds the payment service waits for one PayPal call before treating it as failed (retried with the same PayPal-Request-Id)."},
	{"paypal.webhook_secret", "",
	 "Shared secret of the PayPal simulator's webhook signature (PAYPAL-TRANSMISSION-SIG, HMAC-SHA256): POST /v1/webhooks/paypal checks it, `ecom sim paypal` signs with it. Empty refuses them (503); `ecom up` with the simulator makes one (STATE/paypal.webhook_secret)."},
	{"payment.webhook_tolerance_s", "300",
	 "Seconds a webhook signature's timestamp may be away from now (either side) before the webhook is refused."},
	{"paypal_sim.client_id", "",
	 "The only client id `ecom sim paypal` accepts at /v1/oauth2/token (with paypal_sim.secret); empty accepts any."},
	{"paypal_sim.secret", "", "The only secret `ecom sim paypal` accepts with paypal_sim.client_id."},
	{"paypal_sim.token_ttl_s", "32400",
	 "Seconds an access token of `ecom sim paypal` lives (PayPal's are 9 hours); then 401 invalid_token."},
	{"paypal_sim.request_id_ttl_s", "21600",
	 "Seconds `ecom sim paypal` replays the first answer to a PayPal-Request-Id."},
	{"paypal_sim.max_request_ids", "100000",
	 "PayPal-Request-Ids `ecom sim paypal` remembers; the oldest are forgotten first."},
	{"paypal_sim.max_orders", "200000",
	 "Orders `ecom sim paypal` holds before refusing new ones with 503."},
	{"paypal_sim.webhook_url", "",
	 "Where `ecom sim paypal` sends its webhooks (captures, refunds), e.g. http://127.0.0.1:8080/v1/webhooks/paypal; empty sends none. `ecom up` points it at its gateway."},
	{"order.reservation_ttl_s", "900",
	 "Seconds the order service asks inventory to hold an order's stock; a saga not confirmed by then is compensated (cancel_reason expired)."},
	{"order.expiry_margin_s", "30",
	 "Seconds before the reservation expires after which an unreachable payment is no longer retried (left to capture and commit)."},
	{"order.retry_base_ms", "200",
	 "First retry delay ceiling of a saga step that got no answer (exponential backoff with full jitter)."},
	{"order.retry_cap_ms", "30000", "Longest delay between two attempts of a saga step."},
	{"order.retry_attempts", "100",
	 "Attempts of a forward saga step before the order is given up (compensations are retried until they succeed)."},
	{"order.call_timeout_ms", "6000",
	 "Milliseconds the order service waits for another service's answer in a saga step or while pricing."},
	{"order.lease_ms", "20000",
	 "Milliseconds an order instance holds a saga it advances; another instance takes it over after that (at least twice order.call_timeout_ms)."},
	{"order.tick_batch", "32", "Due sagas the order processor takes from the queue per tick."},
	{"order.confirm_inline", "0",
	 "1: POST /v1/orders also captures and commits before answering (lower latency); 0: the order processor does, from the queue."},
	{"order.workers", "4",
	 "Threads of the order processor that drive the sagas due at one tick side by side (1 to 64; leases keep them apart)."},
	{"engine.tick_ms", "100",
	 "Milliseconds between engine ticks, which run timed work such as retries and expiries."},
	{"gateway.thread_per_connection", "1",
	 "1: the gateway serves each client connection on its own thread, so a slow upstream holds up only its own callers; 0: a pool of http.threads workers (at least 8), as before."},
	{"gateway.max_connections", "1000",
	 "Client connections the gateway holds open at once with a thread per connection; more wait to be accepted."},
	{"gateway.deadline_ms", "5000",
	 "Milliseconds a request may take at the gateway, fail-overs included; a sooner X-Ecom-Deadline-Ms from the caller wins. The time left travels upstream in X-Ecom-Deadline-Ms and bounds every hop; past it the answer is 504."},
	{"gateway.stale_prefixes", "/v1/products,/v2/products,/v1/search,/v1/recommendations",
	 "Path prefixes whose GET answers the gateway keeps and serves stale (X-Ecom-Stale: 1) while their service fails or its breaker is open; empty keeps none."},
	{"gateway.stale_entries", "1000", "Answers the gateway's stale cache keeps at most (0 turns it off)."},
	{"gateway.stale_max_bytes", "8388608",
	 "Bytes of keys and bodies the gateway's stale cache keeps at most; one answer may take a quarter."},
	{"gateway.stale_ttl_s", "3600", "Seconds a kept answer may still be served stale."},
	{"resil.enabled", "1",
	 "1: outbound calls (the gateway's and every service's) go through breakers and bulkheads, and idempotent ones are retried; 0: none of it (deadlines still apply)."},
	{"resil.edges", "",
	 "Per-edge overrides of the breaker.*, bulkhead.* and retry.* keys: `CALLER>CALLEE: KEY=VALUE, ...; ...`, names or `*`, later rules winning, e.g. `order>payment: breaker.min_calls=5; gateway>catalog: bulkhead.max_concurrent=4`."},
	{"breaker.enabled", "1", "0 starts every circuit breaker DISABLED (calls pass, nothing is recorded)."},
	{"breaker.window", "20",
	 "Calls in each circuit breaker's count-based sliding window."},
	{"breaker.min_calls", "10",
	 "Calls a breaker needs in its window before it computes rates (no trip below; capped at the window)."},
	{"breaker.failure_rate", "50",
	 "Percent of failed calls (5xx but 501, timeouts, connection errors) in the window at or above which a breaker opens."},
	{"breaker.slow_call_rate", "100",
	 "Percent of slow calls in the window at or above which a breaker opens."},
	{"breaker.slow_call_ms", "2000", "A call taking longer than this many milliseconds is slow."},
	{"breaker.wait_open_ms", "5000",
	 "Milliseconds an open breaker refuses calls before it lets probes through (HALF_OPEN)."},
	{"breaker.half_open_calls", "3",
	 "Probe calls a HALF_OPEN breaker admits; their outcome closes it or opens it again."},
	{"bulkhead.max_concurrent", "64",
	 "Calls one caller may have in flight to one callee; more are refused at once with 503 (no queueing). Sized above the heaviest legitimate burst the tests and the load simulator make (64 clients); set an edge lower to shield a fragile service."},
	{"retry.max_attempts", "3",
	 "Attempts of an idempotent outbound call (GET, HEAD, PUT, DELETE, or with Idempotency-Key), the first included; 1 never retries."},
	{"retry.base_ms", "50",
	 "Ceiling of the first retry's delay; retry n waits uniform(0, min(cap, base * 2^n)) ms (full jitter)."},
	{"retry.cap_ms", "1000", "Longest delay between two attempts, in milliseconds."},
	{NULL, NULL, NULL},
};

#define NDEFS (sizeof(defs) / sizeof(defs[0]) - 1)

struct config {
	char *vals[NDEFS];
};

static int def_index(const char *key)
{
	if (!key)
		return -1;
	for (size_t i = 0; i < NDEFS; i++)
		if (strcmp(defs[i].key, key) == 0)
			return (int)i;
	return -1;
}

const config_def *config_defs(void) { return defs; }

config *config_new(void)
{
	config *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	for (size_t i = 0; i < NDEFS; i++) {
		c->vals[i] = strdup(defs[i].def);
		if (!c->vals[i]) {
			config_free(c);
			return NULL;
		}
	}
	return c;
}

void config_free(config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NDEFS; i++)
		free(c->vals[i]);
	free(c);
}

static int set_slot(char **slot, const char *value)
{
	char *v = strdup(value);
	if (!v)
		return ERR_NOMEM;
	free(*slot);
	*slot = v;
	return 0;
}

int config_set(config *c, const char *key, const char *value)
{
	if (!value)
		return ERR_INVALID;
	int i = def_index(key);
	if (i < 0)
		return ERR_NOT_FOUND;
	return set_slot(&c->vals[i], value);
}

const char *config_get(const config *c, const char *key)
{
	int i = def_index(key);
	return i < 0 ? NULL : c->vals[i];
}

int config_get_int(const config *c, const char *key, int64_t *out)
{
	const char *s = config_get(c, key);
	if (!s)
		return ERR_NOT_FOUND;
	while (isspace((unsigned char)*s))
		s++;
	if (!*s)
		return ERR_PARSE;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || errno == ERANGE)
		return ERR_PARSE;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return ERR_PARSE;
	*out = (int64_t)v;
	return 0;
}

int64_t config_int(const config *c, const char *key, int64_t fallback)
{
	int64_t v;
	return config_get_int(c, key, &v) == 0 ? v : fallback;
}

void config_load_env(config *c)
{
	char name[128];
	for (size_t i = 0; i < NDEFS; i++) {
		size_t n = (size_t)snprintf(name, sizeof(name), "ECOM_%s", defs[i].key);
		if (n >= sizeof(name))
			continue;
		for (char *p = name + 5; *p; p++)
			*p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
		const char *v = getenv(name);
		if (v)
			set_slot(&c->vals[i], v);
	}
}

/* Parses one line in place. Returns 1 with *key and *val set, 0 for a blank or
 * comment line, -1 when there is no '='. A '#' starts a comment at the start
 * of the line or after whitespace, so values such as URLs with a fragment or
 * a password containing '#' survive. A value wrapped in double quotes loses
 * them, which is how an explicitly empty value is written. */
static int parse_line(char *line, char **key, char **val)
{
	for (char *p = line; *p; p++) {
		if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	}
	char *s = text_trim(line);
	if (!*s)
		return 0;
	char *eq = strchr(s, '=');
	if (!eq)
		return -1;
	*eq = '\0';
	*key = text_trim(s);
	char *v = text_trim(eq + 1);
	size_t n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		v++;
	}
	*val = v;
	return 1;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f) {
		int saved = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(saved));
		return saved == ENOENT ? ERR_NOT_FOUND : ERR_IO;
	}
	/* Values are staged and committed only if the whole file is good, so a
	 * bad file leaves the config as it was. */
	char *staged[NDEFS] = {0};
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		char *key, *val;
		int r = parse_line(line, &key, &val);
		if (r == 0)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'", path, lineno);
			rc = ERR_PARSE;
			break;
		}
		if (!*key) {
			snprintf(err, errlen, "%s:%u: missing key before '='", path, lineno);
			rc = ERR_PARSE;
			break;
		}
		int i = def_index(key);
		if (i < 0) {
			snprintf(err, errlen, "%s:%u: unknown key '%s'", path, lineno, key);
			rc = ERR_PARSE;
			break;
		}
		if (set_slot(&staged[i], val) < 0) {
			snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
			rc = ERR_NOMEM;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = ERR_IO;
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < NDEFS; i++) {
		if (rc == 0 && staged[i]) {
			free(c->vals[i]);
			c->vals[i] = staged[i];
		} else {
			free(staged[i]);
		}
	}
	return rc;
}

/* Writes help text as Markdown: outside `code spans`, '<' and '>' become
 * entities (or "<state>" would vanish as an HTML tag) and '|' is escaped so
 * it cannot split the table cell. */
static int write_md_text(FILE *out, const char *s)
{
	int code = 0;
	for (; *s; s++) {
		int r;
		if (*s == '`')
			code = !code;
		if (!code && *s == '<')
			r = fputs("&lt;", out);
		else if (!code && *s == '>')
			r = fputs("&gt;", out);
		else if (*s == '|')
			r = fputs("\\|", out);
		else
			r = fputc(*s, out);
		if (r < 0)
			return ERR_IO;
	}
	return 0;
}

int config_write_doc(FILE *out)
{
	if (fputs("| key | default | meaning |\n|---|---|---|\n", out) < 0)
		return ERR_IO;
	for (size_t i = 0; i < NDEFS; i++) {
		const char *d = defs[i].def;
		if (fprintf(out, "| `%s` | `%s` | ", defs[i].key, *d ? d : "\"\"") < 0 ||
		    write_md_text(out, defs[i].help) < 0 || fputs(" |\n", out) < 0)
			return ERR_IO;
	}
	return fflush(out) == 0 ? 0 : ERR_IO;
}

int64_t config_int_range(const config *c, const char *key, int64_t fallback, int64_t min,
			 int64_t max)
{
	int64_t v = c ? config_int(c, key, fallback) : fallback;
	return v < min || v > max ? fallback : v;
}
