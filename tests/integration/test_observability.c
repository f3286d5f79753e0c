/* Integration: observability on the real platform (`ecom up`), with the
 * spans exported to a file and to a collector this test plays on loopback.
 *
 * - W3C trace context at the edge: a valid traceparent is continued (same
 *   trace id, a new span whose parent is the caller's), an absent or
 *   invalid one (upper case, all-zero ids, version ff, garbage) replaced by
 *   a new trace; every response carries traceparent and X-Request-Id.
 * - One checkout is one trace: GET /admin/sagas/{id} gives the saga's
 *   steps and every span of its trace gathered from every process; all
 *   share the trace id and their parent links form one tree rooted at the
 *   gateway's server span, covering gateway, order, inventory, payment and
 *   the Stripe simulator, the processor's steps included.
 * - `ecom trace ORDER` (not a terminal: plain text) lists each step in
 *   order and draws the spans; `ecom logs --trace ID` keeps only that
 *   trace's lines, `ecom logs SERVICE` that service's, `ecom logs -f`
 *   follows new lines until SIGTERM.
 * - promtool check metrics passes on every process's /metrics.
 * - The OTLP/JSON export (file and collector) has the spec's field names
 *   and the checkout's trace.
 * - GET /admin/stats: per service rps, p50_ms, p99_ms, error_rate,
 *   in_flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/trace.h"
#include "itest.h"
#include "net/http_client.h"
#include "net/http_server.h"

#define SKU "BOOK-001"

static char token[1024], user_id[128], order_id[64], trace_hex[TRACE_ID_HEX];
static char otlp_dir[64], otlp_file[128];

/* ---- the collector ------------------------------------------------------------------ */

static pthread_mutex_t col_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *col_bodies; /* bodies of POST /v1/traces */
static int col_other;      /* requests to anything else */
static http_server *col_srv;

static void collect(void *ud, msg_req *req, msg_resp *resp)
{
	pthread_mutex_lock(&col_mu);
	const char *ct = msg_req_header(req, "Content-Type");
	if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/v1/traces") == 0 && ct &&
	    strncmp(ct, "application/json", 16) == 0)
		json_array_append_new(col_bodies,
				      json_loadb(req->body ? req->body : "", req->body_len, 0, NULL));
	else
		col_other++;
	pthread_mutex_unlock(&col_mu);
	msg_resp_json(resp, 200, json_object());
}

static int setup(void **unused)
{
	col_bodies = json_array();
	http_server_opts so = { .host = "127.0.0.1", .port = 0, .threads = 2,
				.body_limit = 16 << 20, .conn_timeout_s = 30 };
	char err[128], url[64];
	col_srv = http_server_start(&so, collect, NULL, NULL, err, sizeof(err));
	if (!col_srv)
		return -1;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http_server_port(col_srv));
	snprintf(otlp_dir, sizeof(otlp_dir), "/tmp/obs-otlp.XXXXXX");
	if (!mkdtemp(otlp_dir))
		return -1;
	snprintf(otlp_file, sizeof(otlp_file), "%s/spans.jsonl", otlp_dir);
	/* Every process the supervisor starts reads these. */
	setenv("ECOM_OTEL_ENDPOINT", url, 1);
	setenv("ECOM_OTEL_EXPORT_FILE", otlp_file, 1);
	setenv("ECOM_OTEL_FLUSH_MS", "200", 1);
	if (itest_up(NULL) != 0)
		return -1;
	return itest_signup_login("obs@example.com", token, sizeof(token), user_id,
				  sizeof(user_id));
}

static int teardown(void **unused)
{
	itest_teardown();
	http_server_stop(col_srv);
	json_decref(col_bodies);
	unlink(otlp_file);
	rmdir(otlp_dir);
	return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* GET path at the gateway with a traceparent header (NULL: none); the
 * response's traceparent into out (TRACE_PARENT_SIZE). Returns the status. */
static int get_traced(const char *path, const char *tp, char *out, char *reqid, size_t idlen)
{
	msg_req req;
	msg_resp resp;
	msg_resp_init(&resp);
	assert_int_equal(msg_req_init(&req, "GET", path), 0);
	if (tp)
		msg_req_add_header(&req, "traceparent", tp);
	http_call_opts o = { 1000, 10000 };
	int rc = http_client_do(IT.url, &req, &resp, &o);
	msg_req_clear(&req);
	assert_int_equal(rc, 0);
	const char *got = msg_resp_header(&resp, "traceparent");
	const char *rid = msg_resp_header(&resp, "X-Request-Id");
	assert_non_null(got);
	assert_non_null(rid);
	snprintf(out, TRACE_PARENT_SIZE, "%s", got);
	if (reqid)
		snprintf(reqid, idlen, "%s", rid);
	int status = resp.status;
	msg_resp_clear(&resp);
	return status;
}

/* The spans of a trace as the gateway gathers them (new reference). */
static json_t *trace_spans(const char *tid)
{
	char path[96];
	snprintf(path, sizeof(path), "/admin/traces/%s", tid);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
	json_t *spans = json_incref(json_object_get(v, "spans"));
	json_decref(v);
	return spans;
}

/* Places the order (once for the whole suite) and waits until its saga
 * has ended. */
static void ensure_order(void)
{
	if (order_id[0])
		return;
	json_t *v = NULL;
	int status = -1;
	for (int attempt = 0; attempt < 4 && status != 201; attempt++) {
		json_decref(v);
		v = NULL;
		status = itest_req_key("POST", "/v1/orders",
				       "{\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"},"
				       "\"items\":[{\"sku\":\"" SKU "\",\"qty\":1}]}",
				       token, "obs-order-1", &v, NULL);
	}
	assert_int_equal(status, 201);
	snprintf(order_id, sizeof(order_id), "%s", jstr(v, "order_id"));
	json_decref(v);
	char path[128];
	snprintf(path, sizeof(path), "/v1/orders/%s", order_id);
	for (int i = 0; i < 400; i++) {
		v = NULL;
		if (itest_req("GET", path, NULL, token, &v, NULL) == 200 &&
		    strcmp(jstr(v, "status"), "CONFIRMED") == 0 &&
		    strcmp(jstr(json_object_get(v, "saga"), "state"), "COMPLETED") == 0) {
			json_decref(v);
			return;
		}
		json_decref(v);
		usleep(50000);
	}
	fail_msg("order %s was not CONFIRMED within 20 s", order_id);
}

/* ---- trace context at the edge ----------------------------------------------------------- */

static void test_traceparent_continued(void **unused)
{
	const char *tid = "4bf92f3577b34da6a3ce929d0e0e4736", *sid = "00f067aa0ba902b7";
	char given[TRACE_PARENT_SIZE], got[TRACE_PARENT_SIZE], rid[64];
	snprintf(given, sizeof(given), "00-%s-%s-01", tid, sid);
	assert_int_equal(get_traced("/v1/products/" SKU, given, got, rid, sizeof(rid)), 200);
	trace_ctx t;
	assert_int_equal(trace_parse(got, &t), 0);
	char hex[TRACE_ID_HEX], span_hex[TRACE_SPAN_HEX];
	trace_id_hex(t.trace_id, hex);
	trace_span_hex(t.span_id, span_hex);
	assert_string_equal(hex, tid);
	assert_string_not_equal(span_hex, sid);
	/* The gateway's server span is the child of the caller's span and
	 * the catalog's is below it, with the request id. */
	json_t *spans = NULL;
	int found = 0;
	for (int i = 0; i < 50 && found < 2; i++) {
		json_decref(spans);
		spans = trace_spans(tid);
		found = 0;
		size_t k;
		json_t *s;
		json_array_foreach(spans, k, s)
		{
			if (strcmp(jstr(s, "service"), "gateway") == 0 &&
			    strcmp(jstr(s, "parent_span_id"), sid) == 0 &&
			    json_integer_value(json_object_get(s, "kind")) == 2) {
				assert_string_equal(jstr(s, "span_id"), span_hex);
				assert_string_equal(jstr(json_object_get(s, "attributes"), "request_id"),
						    rid);
				found++;
			}
			if (strcmp(jstr(s, "service"), "catalog") == 0)
				found++;
		}
		if (found < 2)
			usleep(100000);
	}
	json_decref(spans);
	assert_int_equal(found, 2);
}

static void test_traceparent_replaced(void **unused)
{
	static const char *const bad[] = {
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", /* upper case */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent id */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"not a traceparent",
		NULL,
	};
	char got[TRACE_PARENT_SIZE], first[TRACE_PARENT_SIZE] = "";
	for (int i = 0; bad[i]; i++) {
		assert_int_equal(get_traced("/v1/products/" SKU, bad[i], got, NULL, 0), 200);
		trace_ctx t;
		assert_int_equal(trace_parse(got, &t), 0);
		assert_int_equal(got[54], '1'); /* a new trace, sampled */
		assert_true(strstr(got, "4bf92f3577b34da6a3ce929d0e0e4736") == NULL);
		assert_true(strncmp(got, first, 36) != 0); /* a new trace each time */
		snprintf(first, sizeof(first), "%s", got);
	}
	/* None at all, and an error answer: a trace all the same. */
	assert_int_equal(get_traced("/v1/products/NO-SUCH-SKU", NULL, got, NULL, 0), 404);
	trace_ctx t;
	assert_int_equal(trace_parse(got, &t), 0);
}

/* ---- one checkout, one trace ----------------------------------------------------------- */

/* Checks the saga's spans; returns a description of what is missing, or
 * NULL when they form the whole tree. */
static const char *tree_problem(const json_t *saga, char *why, size_t len)
{
	const json_t *spans = json_object_get(saga, "spans");
	size_t n = json_array_size(spans), i, j;
	const char *tid = jstr(saga, "trace_id");
	if (strlen(tid) != 32)
		return "the saga has no trace_id";
	static const char *const want[] = { "gateway", "order", "inventory", "payment",
					    "stripe-sim", NULL };
	int roots = 0, completed = 0;
	for (i = 0; i < n; i++) {
		const json_t *s = json_array_get(spans, i);
		if (strcmp(jstr(s, "trace_id"), tid) != 0) {
			snprintf(why, len, "span %s is of trace %s", jstr(s, "span_id"),
				 jstr(s, "trace_id"));
			return why;
		}
		const json_t *p = json_object_get(s, "parent_span_id");
		if (json_is_null(p)) {
			roots++;
			if (strcmp(jstr(s, "service"), "gateway") != 0 ||
			    json_integer_value(json_object_get(s, "kind")) != 2) {
				snprintf(why, len, "the root is %s %s", jstr(s, "service"),
					 jstr(s, "name"));
				return why;
			}
			continue;
		}
		int has_parent = 0;
		for (j = 0; j < n && !has_parent; j++)
			has_parent = strcmp(jstr(json_array_get(spans, j), "span_id"),
					    json_string_value(p)) == 0;
		if (!has_parent) {
			snprintf(why, len, "the parent of %s %s is missing", jstr(s, "service"),
				 jstr(s, "name"));
			return why;
		}
		if (strcmp(jstr(s, "service"), "order") == 0 && strstr(jstr(s, "name"), "-> COMPLETED"))
			completed = 1;
	}
	if (roots != 1) {
		snprintf(why, len, "%d roots", roots);
		return why;
	}
	for (int w = 0; want[w]; w++) {
		int seen = 0;
		for (i = 0; i < n && !seen; i++)
			seen = strcmp(jstr(json_array_get(spans, i), "service"), want[w]) == 0;
		if (!seen) {
			snprintf(why, len, "no span of %s", want[w]);
			return why;
		}
	}
	if (!completed)
		return "no span of the processor completing the saga";
	/* Following parents from any span ends at the root (no cycle). */
	for (i = 0; i < n; i++) {
		const json_t *s = json_array_get(spans, i);
		size_t hops = 0;
		while (!json_is_null(json_object_get(s, "parent_span_id")) && hops++ <= n) {
			const char *pid = jstr(s, "parent_span_id");
			for (j = 0; j < n; j++)
				if (strcmp(jstr(json_array_get(spans, j), "span_id"), pid) == 0)
					break;
			s = json_array_get(spans, j);
		}
		if (hops > n)
			return "a cycle of parent links";
	}
	return NULL;
}

static void test_checkout_one_trace(void **unused)
{
	ensure_order();
	char path[128], why[256];
	snprintf(path, sizeof(path), "/admin/sagas/%s", order_id);
	const char *problem = "never asked";
	json_t *v = NULL;
	for (int i = 0; i < 100 && problem; i++) {
		json_decref(v);
		v = NULL;
		assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
		problem = tree_problem(v, why, sizeof(why));
		if (problem)
			usleep(100000);
	}
	if (problem)
		fail_msg("the trace of %s is not one tree rooted at the gateway: %s", order_id,
			 problem);
	snprintf(trace_hex, sizeof(trace_hex), "%s", jstr(v, "trace_id"));
	assert_true(json_array_size(json_object_get(v, "steps")) >= 5);
	assert_int_equal(json_array_size(json_object_get(v, "unreachable")), 0);
	json_decref(v);

	/* The events the checkout wrote carry its trace in their outbox rows:
	 * order.confirmed (by the processor) and the payment's. On PostgreSQL
	 * a feed serves rows up to the bus's horizon, which the bus moves on
	 * its next round: ask again for a while. */
	static const char *const feeds[] = { "/v1/internal/feed/order/orders?after=0&limit=1000",
					     "/v1/internal/feed/payment/payments?after=0&limit=1000",
					     NULL };
	for (int f = 0; feeds[f]; f++) {
		int traced = 0;
		for (int i = 0; i < 100 && !traced; i++) {
			json_t *feed = NULL;
			assert_int_equal(itest_req_service("GET", feeds[f], NULL, &feed, NULL), 200);
			size_t k;
			json_t *m;
			json_array_foreach(json_object_get(feed, "messages"), k, m)
				if (strstr(jstr(m, "payload"), order_id + 4)) { /* ord_X, pay_X */
					const char *tp = jstr(m, "traceparent");
					traced += strlen(tp) == 55 && strncmp(tp + 3, trace_hex, 32) == 0;
				}
			json_decref(feed);
			if (!traced)
				usleep(100000);
		}
		if (!traced)
			fail_msg("no event of %s on %s carries its trace", order_id, feeds[f]);
	}
}

/* ---- the operator's commands ------------------------------------------------------------- */

static void test_ecom_trace(void **unused)
{
	ensure_order();
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, &err, "trace", order_id, "--state", IT.state, NULL), 0);
	assert_non_null(out);
	assert_null(strchr(out, '\033')); /* not a terminal: no colour */
	assert_non_null(strstr(out, order_id));
	assert_non_null(strstr(out, "CONFIRMED"));
	const char *steps = strstr(out, "steps:");
	assert_non_null(steps);
	static const char *const order[] = { "reserve", "authorize", "enqueue", "capture",
					     "commit", "notify", NULL };
	const char *at = steps;
	for (int i = 0; order[i]; i++) {
		const char *p = strstr(at, order[i]);
		if (!p)
			fail_msg("step %s missing or out of order in:\n%s", order[i], out);
		at = p;
	}
	const char *spans = strstr(out, "spans (");
	assert_non_null(spans);
	assert_true(spans > at);
	assert_true(atoi(spans + 7) >= 10);
	assert_non_null(strstr(spans, "gateway  POST /v1/orders"));
	assert_non_null(strstr(spans, "stripe-sim"));
	free(out);
	free(err);

	out = err = NULL;
	assert_int_equal(itest_run(&out, &err, "trace", order_id, "--json", "--state", IT.state,
				   NULL),
			 0);
	json_t *v = json_loads(out, 0, NULL);
	assert_non_null(v);
	assert_string_equal(jstr(v, "order_id"), order_id);
	json_decref(v);
	free(out);
	free(err);

	out = err = NULL;
	assert_int_equal(itest_run(&out, &err, "trace", "ord_nonexistent", "--state", IT.state,
				   NULL),
			 1);
	free(out);
	free(err);
	assert_int_equal(itest_run(NULL, NULL, "trace", "--state", IT.state, NULL), 2);
}

static void test_ecom_logs(void **unused)
{
	ensure_order();
	if (!trace_hex[0]) {
		json_t *v = NULL;
		char path[128];
		snprintf(path, sizeof(path), "/admin/sagas/%s", order_id);
		assert_int_equal(itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL), 200);
		snprintf(trace_hex, sizeof(trace_hex), "%s", jstr(v, "trace_id"));
		json_decref(v);
	}
	char *out = NULL, *err = NULL;
	assert_int_equal(itest_run(&out, &err, "logs", "--trace", trace_hex, "--state", IT.state,
				   NULL),
			 0);
	assert_true(itest_count_lines(out) >= 3);
	char want[64];
	snprintf(want, sizeof(want), "trace=%s", trace_hex);
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!strstr(l, want))
			fail_msg("a line of another trace: %s", l);
	free(out);
	free(err);
	/* The order's lines and the payment's, in time order. */
	out = err = NULL;
	assert_int_equal(itest_run(&out, &err, "logs", "--trace", trace_hex, "--json", "--state",
				   IT.state, NULL),
			 0);
	int order_lines = 0, payment_lines = 0;
	char last[48] = "";
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		json_t *v = json_loads(l, 0, NULL);
		assert_non_null(v);
		assert_string_equal(jstr(v, "trace_id"), trace_hex);
		assert_int_equal(strlen(jstr(v, "span_id")), 16);
		assert_true(strcmp(jstr(v, "timestamp"), last) >= 0);
		snprintf(last, sizeof(last), "%s", jstr(v, "timestamp"));
		order_lines += strcmp(jstr(v, "service"), "order") == 0;
		payment_lines += strcmp(jstr(v, "service"), "payment") == 0;
		json_decref(v);
	}
	assert_true(order_lines >= 2);
	assert_true(payment_lines >= 1);
	free(out);
	free(err);
	/* By service. */
	out = err = NULL;
	assert_int_equal(itest_run(&out, &err, "logs", "payment", "--state", IT.state, NULL), 0);
	assert_true(itest_count_lines(out) >= 1);
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!strstr(l, " payment-"))
			fail_msg("a line of another service: %s", l);
	free(out);
	free(err);
	assert_int_equal(itest_run(NULL, NULL, "logs", "--trace", "XYZ", "--state", IT.state, NULL),
			 2);
}

/* ecom logs -f prints a line written after it started, and ends with
 * exit 0 on SIGTERM. */
static void test_ecom_logs_follow(void **unused)
{
	char outp[128], logp[512];
	snprintf(outp, sizeof(outp), "%s/follow.out", otlp_dir);
	snprintf(logp, sizeof(logp), "%s/log/obs-test-1.log", IT.state);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *o = freopen(outp, "w", stdout);
		if (!o)
			_exit(127);
		execl(IT.bin, IT.bin, "logs", "-f", "-n", "1", "--state", IT.state, (char *)NULL);
		_exit(127);
	}
	usleep(500000);
	FILE *lf = fopen(logp, "a");
	assert_non_null(lf);
	fprintf(lf, "{\"timestamp\":\"2099-01-01T00:00:00.000001Z\",\"level\":\"info\","
		    "\"service\":\"obs-test\",\"message\":\"follow-marker\"}\n");
	fclose(lf);
	int seen = 0;
	for (int i = 0; i < 100 && !seen; i++) {
		usleep(50000);
		FILE *in = fopen(outp, "r");
		char line[1024];
		while (in && fgets(line, sizeof(line), in))
			seen |= strstr(line, "follow-marker") && strstr(line, "obs-test-1") != NULL;
		if (in)
			fclose(in);
	}
	kill(pid, SIGTERM);
	int st = -1;
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			break;
		usleep(50000);
	}
	if (!WIFEXITED(st)) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail_msg("ecom logs -f did not end on SIGTERM");
	}
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_true(seen);
	unlink(outp);
	unlink(logp);
}

/* ---- metrics, export, stats ------------------------------------------------------------- */

static void test_promtool(void **unused)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "promtool not found (Debian package prometheus): "
				"metrics are not checked\n");
		skip();
	}
	ensure_order();
	/* Every registered instance, the gateway and the simulator. */
	char addrs[32][256];
	int n = 0;
	snprintf(addrs[n++], sizeof(addrs[0]), "%s", IT.url);
	if (itest_sim_url(addrs[n], sizeof(addrs[0])) == 0)
		n++;
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/services", NULL, ITEST_TOKEN, &v, NULL), 200);
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(json_object_get(v, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "instances"), j, in) if (n < 32)
			snprintf(addrs[n++], sizeof(addrs[0]), "%s", jstr(in, "addr"));
	json_decref(v);
	assert_true(n >= 8); /* gateway, simulator and six services */
	char file[128], cmd[256];
	snprintf(file, sizeof(file), "%s/metrics.txt", otlp_dir);
	for (int k = 0; k < n; k++) {
		char url[300];
		assert_true((size_t)snprintf(url, sizeof(url), "%s/metrics", addrs[k]) < sizeof(url));
		msg_resp r;
		msg_resp_init(&r);
		assert_int_equal(http_client_simple("GET", url, NULL, NULL, &r, 5000), 0);
		assert_int_equal(r.status, 200);
		assert_non_null(strstr(r.body, "http_requests_total"));
		FILE *f = fopen(file, "w");
		assert_non_null(f);
		fwrite(r.body, 1, r.body_len, f);
		fclose(f);
		msg_resp_clear(&r);
		snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", file);
		FILE *p = popen(cmd, "r");
		char said[4096] = "";
		size_t got = p ? fread(said, 1, sizeof(said) - 1, p) : 0;
		said[got] = '\0';
		int st = p ? pclose(p) : -1;
		if (st != 0)
			fail_msg("promtool check metrics on %s: %s", addrs[k], said);
	}
	unlink(file);
}

/* Lines of the export file, or bodies the collector got, holding the
 * checkout's trace; each checked for OTLP/JSON's field names. */
static int otlp_has_trace(const json_t *doc, const char *tid)
{
	int found = 0;
	size_t i, j, k;
	const json_t *rs, *ss, *sp;
	assert_true(json_is_array(json_object_get(doc, "resourceSpans")));
	json_array_foreach(json_object_get(doc, "resourceSpans"), i, rs)
	{
		const json_t *attr = json_array_get(
			json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
		assert_string_equal(jstr(attr, "key"), "service.name");
		json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
			json_array_foreach(json_object_get(ss, "spans"), k, sp)
		{
			assert_int_equal(strlen(jstr(sp, "traceId")), 32);
			assert_int_equal(strlen(jstr(sp, "spanId")), 16);
			assert_true(json_is_integer(json_object_get(sp, "kind")));
			assert_true(strlen(jstr(sp, "startTimeUnixNano")) >= 19);
			assert_true(strlen(jstr(sp, "endTimeUnixNano")) >= 19);
			assert_true(json_is_object(json_object_get(sp, "status")));
			found |= strcmp(jstr(sp, "traceId"), tid) == 0;
		}
	}
	return found;
}

static void test_otlp_export(void **unused)
{
	ensure_order();
	if (!trace_hex[0])
		test_checkout_one_trace(unused);
	int in_file = 0, at_collector = 0;
	for (int i = 0; i < 100 && !(in_file && at_collector); i++) {
		FILE *f = fopen(otlp_file, "r");
		char *line = NULL;
		size_t cap = 0;
		in_file = 0;
		while (f && getline(&line, &cap, f) > 0) {
			json_error_t je;
			json_t *doc = json_loads(line, 0, &je);
			if (!doc)
				fail_msg("an export line is not JSON: %s", je.text);
			in_file |= otlp_has_trace(doc, trace_hex);
			json_decref(doc);
		}
		free(line);
		if (f)
			fclose(f);
		pthread_mutex_lock(&col_mu);
		size_t k;
		json_t *doc;
		at_collector = 0;
		json_array_foreach(col_bodies, k, doc) at_collector |= otlp_has_trace(doc, trace_hex);
		assert_int_equal(col_other, 0);
		pthread_mutex_unlock(&col_mu);
		if (!(in_file && at_collector))
			usleep(100000);
	}
	assert_true(in_file);
	assert_true(at_collector);
}

static void test_admin_stats(void **unused)
{
	ensure_order();
	for (int i = 0; i < 20; i++) /* some traffic inside the window */
		assert_int_equal(itest_req("GET", "/v1/products/" SKU, NULL, NULL, NULL, NULL), 200);
	json_t *v = NULL;
	assert_int_equal(itest_req("GET", "/admin/stats", NULL, ITEST_TOKEN, &v, NULL), 200);
	json_t *services = json_object_get(v, "services");
	assert_true(json_array_size(services) >= 7);
	int gateway = 0, catalog = 0;
	size_t i;
	json_t *s;
	json_array_foreach(services, i, s)
	{
		static const char *const nums[] = { "rps", "p50_ms", "p99_ms", "error_rate",
						    "in_flight", NULL };
		for (int k = 0; nums[k]; k++)
			if (!json_is_number(json_object_get(s, nums[k])))
				fail_msg("%s has no number %s", jstr(s, "service"), nums[k]);
		assert_true(json_number_value(json_object_get(s, "error_rate")) >= 0);
		if (strcmp(jstr(s, "service"), "gateway") == 0) {
			gateway = 1;
			assert_true(json_integer_value(json_object_get(s, "requests")) >= 20);
			assert_true(json_number_value(json_object_get(s, "rps")) > 0);
			assert_true(json_number_value(json_object_get(s, "p99_ms")) >=
				    json_number_value(json_object_get(s, "p50_ms")));
			assert_true(json_number_value(json_object_get(s, "p50_ms")) > 0);
		}
		catalog |= strcmp(jstr(s, "service"), "catalog") == 0 &&
			   json_integer_value(json_object_get(s, "requests")) >= 20;
	}
	assert_true(gateway);
	assert_true(catalog);
	assert_true(json_array_size(json_object_get(v, "instances")) >= 8);
	assert_int_equal(json_array_size(json_object_get(v, "unreachable")), 0);
	json_decref(v);
	/* An instance's own, straight from it. */
	char sim[128], url[256];
	assert_int_equal(itest_sim_url(sim, sizeof(sim)), 0);
	snprintf(url, sizeof(url), "%s/admin/stats", sim);
	msg_resp r;
	msg_resp_init(&r);
	assert_int_equal(http_client_simple("GET", url, NULL, ITEST_TOKEN, &r, 5000), 0);
	assert_int_equal(r.status, 200);
	v = json_loadb(r.body, r.body_len, 0, NULL);
	assert_string_equal(jstr(v, "service"), "stripe-sim");
	assert_true(json_is_array(json_object_get(v, "latency_buckets")));
	json_decref(v);
	msg_resp_clear(&r);
	/* Admin only. */
	assert_int_equal(itest_req("GET", "/admin/stats", NULL, token, NULL, NULL), 403);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traceparent_continued),
		cmocka_unit_test(test_traceparent_replaced),
		cmocka_unit_test(test_checkout_one_trace),
		cmocka_unit_test(test_ecom_trace),
		cmocka_unit_test(test_ecom_logs),
		cmocka_unit_test(test_ecom_logs_follow),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_otlp_export),
		cmocka_unit_test(test_admin_stats),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
