/* demo: the catalog walk-through. */
#include "ops/demo.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"
#include "ops/seed.h"
#include "ops/state.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

static const char HELP[] =
	"usage: ecom demo [catalog] [--state DIR] [--keep]\n"
	"\n"
	"A narrated walk-through. 'catalog' (the default) starts the platform with\n"
	"three catalog replicas in a scratch state directory, seeds 1000 synthetic\n"
	"products, lists, filters, reads and updates them through the gateway, shows\n"
	"the API's answers to bad input, kills a replica with SIGKILL while requests\n"
	"keep succeeding, reads /metrics, and stops everything.\n"
	"\n"
	"  --state DIR   use DIR instead of a scratch directory\n"
	"  --keep        leave the platform running at the end\n";

typedef struct demo {
	char self[CLI_PATH_MAX];
	char state[CLI_PATH_MAX];
	char url[512];
	char token[256];
	int failures;
	int step;
} demo;

static void say(demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(demo *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("\n== %d. ", ++d->step);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

static void check(demo *d, int ok, const char *what)
{
	printf("   %s %s\n", ok ? "ok  " : "FAIL", what);
	if (!ok)
		d->failures++;
	fflush(stdout);
}

/* Runs `ecom ARGS...` and returns its exit code. */
static int run_self(demo *d, const char *const *args)
{
	const char *argv[16];
	int k = 0;
	argv[k++] = d->self;
	for (int i = 0; args[i] && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(d->self, (char *const *)argv);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One request through the gateway; prints "METHOD PATH -> STATUS". Returns
 * the status (0 on transport failure) and, when out is set, the parsed body. */
static int call(demo *d, const char *method, const char *path, const char *body, int admin,
		json_t **out, int quiet)
{
	char url[1024];
	snprintf(url, sizeof(url), "%s%s", d->url, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple(method, url, body, admin ? d->token : NULL, &r, 5000);
	int status = rc == 0 ? r.status : 0;
	if (!quiet)
		printf("   %s %s -> %d\n", method, path, status);
	if (out)
		*out = rc == 0 ? json_loadb(r.body ? r.body : "", r.body_len, 0, NULL) : NULL;
	msg_resp_clear(&r);
	return status;
}

static void show_json(const json_t *v, const char *indent)
{
	char *s = json_dumps(v, JSON_COMPACT);
	printf("%s%.200s%s\n", indent, s ? s : "", s && strlen(s) > 200 ? "..." : "");
	free(s);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static pid_t replica_pid(demo *d, const char *id)
{
	char p[CLI_PATH_MAX];
	state_path(d->state, "instances.json", p, sizeof(p));
	json_t *doc = json_load_file(p, 0, NULL);
	pid_t pid = 0;
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "id")), id) == 0)
			pid = (pid_t)json_integer_value(json_object_get(in, "pid"));
	json_decref(doc);
	return pid;
}

static void demo_catalog(demo *d)
{
	json_t *v = NULL;

	say(d, "Seed 1000 synthetic products (seed 42) through the gateway's admin API");
	char err[512];
	int64_t t0 = clock_mono_us();
	int rc = seed_products(d->url, d->token, 1000, 42, NULL, err, sizeof(err));
	printf("   upserted 1000 products in %.2f s\n", (double)(clock_mono_us() - t0) / 1e6);
	check(d, rc == 0, rc ? err : "seed accepted by the catalog");

	say(d, "List the first page of products (page_size=3)");
	check(d, call(d, "GET", "/v1/products?page_size=3", NULL, 0, &v, 0) == 200, "200 OK");
	size_t i;
	json_t *it;
	json_array_foreach(json_object_get(v, "items"), i, it)
		printf("   %-14s %-40s %8.2f %s\n", json_string_value(json_object_get(it, "sku")),
		       json_string_value(json_object_get(it, "name")),
		       (double)json_integer_value(json_object_get(it, "price_cents")) / 100,
		       json_string_value(json_object_get(it, "currency")));
	const char *tok = json_string_value(json_object_get(v, "next_page_token"));
	check(d, json_array_size(json_object_get(v, "items")) == 3 && tok, "3 items and a next_page_token");
	char path[512];
	snprintf(path, sizeof(path), "/v1/products?page_size=3&page_token=%s", tok ? tok : "");
	json_decref(v);
	check(d, call(d, "GET", path, NULL, 0, &v, 0) == 200, "the next page follows on");
	json_decref(v);

	say(d, "Filter: books under $20");
	check(d, call(d, "GET", "/v1/products?category=books&max_price=2000&page_size=100", NULL, 0,
		      &v, 0) == 200,
	      "200 OK");
	int all_match = 1;
	json_array_foreach(json_object_get(v, "items"), i, it)
		if (strcmp(json_string_value(json_object_get(it, "category")), "books") != 0 ||
		    json_integer_value(json_object_get(it, "price_cents")) > 2000)
			all_match = 0;
	printf("   %zu books at or under $20 on the first page\n",
	       json_array_size(json_object_get(v, "items")));
	check(d, all_match, "every item is a book at or under 2000 cents");
	json_decref(v);

	say(d, "Read one product, then change its price as admin");
	check(d, call(d, "GET", "/v1/products/SYN-00000007", NULL, 0, &v, 0) == 200, "200 OK");
	show_json(v, "   ");
	json_t *upd = json_deep_copy(v);
	json_decref(v);
	json_object_set_new(upd, "price_cents", json_integer(1234));
	char *body = json_dumps(upd, JSON_COMPACT);
	json_decref(upd);
	check(d, call(d, "PUT", "/v1/products/SYN-00000007", body, 1, &v, 0) == 200, "admin PUT 200");
	check(d, json_integer_value(json_object_get(v, "price_cents")) == 1234, "new price 1234 cents");
	json_decref(v);
	check(d, call(d, "PUT", "/v1/products/SYN-00000007", body, 0, &v, 0) == 401,
	      "the same PUT without the admin token is 401");
	json_decref(v);
	free(body);

	say(d, "Bad input gets the API's error shape and the service keeps serving");
	check(d, call(d, "POST", "/v1/products", "{\"sku\": \"X-1\", \"name\": ", 1, &v, 0) == 400,
	      "malformed JSON: 400");
	show_json(v, "   ");
	json_decref(v);
	check(d, call(d, "POST", "/v1/products",
		      "{\"sku\":\"X-1\",\"name\":\"Thing\",\"category\":\"toys\",\"price_cents\":\"12\"}",
		      1, &v, 0) == 400,
	      "price_cents as a string: 400");
	show_json(v, "   ");
	json_decref(v);
	check(d, call(d, "GET", "/v1/products?page_token=garbage", NULL, 0, &v, 0) == 400,
	      "a forged page token: 400");
	json_decref(v);
	check(d, call(d, "GET", "/v1/products/NOPE-404", NULL, 0, &v, 0) == 404, "unknown sku: 404");
	json_decref(v);
	check(d, call(d, "GET", "/v1/nothing-here", NULL, 0, &v, 0) == 404, "unknown route: 404");
	json_decref(v);
	check(d, call(d, "DELETE", "/v1/products", NULL, 1, &v, 0) == 405,
	      "wrong method: 405 with an Allow header");
	json_decref(v);

	say(d, "Kill catalog-2 with SIGKILL; the gateway fails over and the supervisor restarts it");
	pid_t victim = replica_pid(d, "catalog-2");
	check(d, victim > 0 && kill(victim, SIGKILL) == 0, "sent SIGKILL to catalog-2");
	printf("   killed pid %ld\n", (long)victim);
	/* kill() returns before the process is gone; wait until it is. */
	for (int k = 0; k < 200 && victim > 0 && kill(victim, 0) == 0; k++)
		usleep(10000);
	int good = 0;
	for (int k = 0; k < 60; k++)
		if (call(d, "GET", "/v1/products?page_size=5", NULL, 0, NULL, 1) == 200)
			good++;
	printf("   %d of 60 requests after the kill succeeded\n", good);
	check(d, good == 60, "no request failed");
	pid_t again = 0;
	for (int k = 0; k < 100 && (again == 0 || again == victim); k++) {
		usleep(100000);
		again = replica_pid(d, "catalog-2");
	}
	printf("   catalog-2 is back as pid %ld\n", (long)again);
	check(d, again > 0 && again != victim, "the supervisor restarted catalog-2");

	say(d, "What the gateway's /metrics counted");
	msg_resp r;
	msg_resp_init(&r);
	char url[600];
	snprintf(url, sizeof(url), "%s/metrics", d->url);
	rc = http_client_simple("GET", url, NULL, NULL, &r, 5000);
	int lines = 0;
	if (rc == 0 && r.body) {
		char *save = NULL;
		for (char *line = strtok_r(r.body, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "http_requests_total{", 20) == 0 &&
			    strstr(line, "/v1/products")) {
				printf("   %s\n", line);
				lines++;
			}
	}
	msg_resp_clear(&r);
	check(d, lines > 0, "request counts by route and status");
}

int demo_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "keep", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL;
	int keep = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'S')
			state_s = optarg;
		else if (c == 'k')
			keep = 1;
		else
			return cli_usage("demo", "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	const char *name = optind < argc ? argv[optind++] : "catalog";
	if (optind < argc)
		return cli_usage("demo", "unexpected argument '%s'", argv[optind]);
	if (strcmp(name, "catalog") != 0)
		return cli_usage("demo", "unknown demo '%s' (available: catalog)", name);

	demo d;
	memset(&d, 0, sizeof(d));
	if (cli_self_path(d.self, sizeof(d.self)) != 0)
		return cli_fail("demo", "cannot find my own executable");
	int scratch = state_s == NULL;
	if (scratch) {
		const char *tmp = getenv("TMPDIR");
		snprintf(d.state, sizeof(d.state), "%s/ecom-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(d.state))
			return cli_fail("demo", "cannot create a scratch directory: %s", strerror(errno));
	} else {
		snprintf(d.state, sizeof(d.state), "%s", state_s);
	}

	printf("ecom demo: the catalog through the gateway (state in %s)\n", d.state);
	say(&d, "Start the platform: a gateway and three catalog replicas, free ports");
	const char *up[] = { "up", "--port", "0", "--state", d.state, "--replicas", "catalog=3", NULL };
	if (run_self(&d, up) != 0)
		return cli_fail("demo", "the platform did not start (see %s/log/)", d.state);
	if (state_gateway_url(d.state, d.url, sizeof(d.url)) != 0 ||
	    state_admin_token(d.state, d.token, sizeof(d.token)) != 0) {
		const char *down[] = { "down", "--state", d.state, NULL };
		run_self(&d, down);
		return cli_fail("demo", "no gateway URL or admin token in %s", d.state);
	}
	printf("   gateway at %s\n", d.url);
	const char *status[] = { "status", "--state", d.state, NULL };
	run_self(&d, status);

	http_client_global_init();
	demo_catalog(&d);
	http_client_global_cleanup();

	if (keep) {
		say(&d, "Leaving the platform running (--keep): stop it with 'ecom down --state %s'",
		    d.state);
	} else {
		say(&d, "Stop everything");
		const char *down[] = { "down", "--state", d.state, NULL };
		check(&d, run_self(&d, down) == 0, "ecom down");
		if (scratch)
			nftw(d.state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	}
	if (d.failures) {
		printf("\necom demo: %d check(s) failed\n", d.failures);
		return 1;
	}
	printf("\necom demo: every check passed\n");
	return 0;
}
