/* demo: narrated walk-throughs of the platform's failure handling. */
#include "ops/demo.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/audit.h"
#include "ops/cli.h"
#include "ops/narrator.h"
#include "ops/seed.h"
#include "ops/state.h"
#include "sim/loadgen.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/units.h"

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

#define CMD "demo"
/* What the scenario demos seed: synthetic products with stock, and users. */
#define SEED 42
#define SEED_PRODUCTS 300
#define SEED_STOCK 100
#define SEED_USERS 100

static const char HELP[] =
	"usage: ecom demo [NAME] [--state DIR] [--keep] [--duration D]\n"
	"       ecom demo --list\n"
	"\n"
	"A narrated demo. Starts the platform in a scratch state directory (or uses\n"
	"the one running at --state DIR), seeds it, runs a load scenario and tells\n"
	"what happens as it happens (faults, breakers opening and closing, orders\n"
	"waiting for payment, services restarted, stock selling out), then prints\n"
	"the run's summary and the audit of the platform's invariants, and stops\n"
	"what it started. NAME is one of 'ecom demo --list' (default payment-outage,\n"
	"about a minute). Exits 1 when a threshold or an invariant fails.\n"
	"\n"
	"  --list         the demos, one line each\n"
	"  --state DIR    use DIR (a running platform there is used as it is)\n"
	"  --keep         leave the platform running at the end\n"
	"  --duration D   run the scenario for D (such as 30s) instead of its own length;\n"
	"                 its schedule is stretched or shrunk to fit\n";

typedef struct demo {
	char self[CLI_PATH_MAX];
	char state[CLI_PATH_MAX];
	char url[512];
	char token[256];
	int failures;
	int step;
} demo;

typedef struct demo_def {
	const char *name;
	const char *summary;  /* one line, for --list */
	const char *scenario; /* data/scenarios/NAME.scn; NULL: the catalog walk-through */
	const char *const *env; /* settings of the platform it starts: "ECOM_KEY=VALUE" */
	const char *replicas;   /* ecom up --replicas, or NULL */
} demo_def;

/* Breakers that open within a handful of failures and probe again soon,
 * and an order processor that retries quickly: the story fits a minute. */
static const char *const OUTAGE_ENV[] = {
	"ECOM_RESIL_EDGES=order>payment: breaker.min_calls=3, breaker.window=5, "
	"retry.max_attempts=1",
	"ECOM_BREAKER_WAIT_OPEN_MS=3000",
	"ECOM_ORDER_RETRY_BASE_MS=200",
	"ECOM_ORDER_RETRY_CAP_MS=1000",
	NULL,
};

/* Breakers that let a restarted service back in within a second. */
static const char *const CRASH_ENV[] = {
	"ECOM_BREAKER_WAIT_OPEN_MS=1000",
	NULL,
};

static const demo_def DEMOS[] = {
	{ "payment-outage",
	  "Stripe down for 20 s under load: a breaker opens, orders wait, all complete after",
	  "payment-outage", OUTAGE_ENV, NULL },
	{ "flash-sale", "a rush for one sku with 100 units: it sells out, nothing is oversold",
	  "flash-sale", NULL, NULL },
	{ "service-crash", "services killed and restarted under load: sagas resume, no order lost",
	  "service-crash", CRASH_ENV, NULL },
	{ "catalog", "the catalog with 3 replicas: listings, filters, writes, a replica killed",
	  NULL, NULL, "catalog=3" },
};

#define NDEMOS (sizeof(DEMOS) / sizeof(DEMOS[0]))
#define DEFAULT_DEMO "payment-outage"

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

/* ---- the scenario demos ---------------------------------------------------------- */

/* Set by SIGINT/SIGTERM: the run ends early and what was started stops. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Seeds synthetic products with stock and users, so the load has more to
 * buy than the starter catalog. */
static void demo_seed(demo *d)
{
	say(d, "Seed %d synthetic products with %d units each, and %d users (seed %d)",
	    SEED_PRODUCTS, SEED_STOCK, SEED_USERS, SEED);
	char err[512] = "";
	int64_t t0 = clock_mono_us(), created = 0;
	int rc = seed_products(d->url, d->token, SEED_PRODUCTS, SEED, NULL, err, sizeof(err));
	int stocked = 0;
	for (int i = 0; rc == 0 && i < SEED_PRODUCTS; i++) {
		char path[64], body[32];
		snprintf(path, sizeof(path), "/v1/inventory/SYN-%08d", i + 1);
		snprintf(body, sizeof(body), "{\"on_hand\":%d}", SEED_STOCK);
		stocked += call(d, "PUT", path, body, 1, NULL, 1) == 200;
	}
	if (rc == 0)
		rc = seed_users(d->url, d->token, SEED_USERS, SEED, NULL, &created, err, sizeof(err));
	printf("   %d products stocked, %lld users new, in %.2f s\n", stocked, (long long)created,
	       (double)(clock_mono_us() - t0) / 1e6);
	check(d, rc == 0 && stocked == SEED_PRODUCTS, rc ? err : "seeded through the admin API");
}

static void started(void *ud, int64_t t0) { narrator_set_start(ud, t0); }

static void print_plan(const scenario *s)
{
	char dur[32];
	units_fmt_us(scenario_duration_us(s), dur, sizeof(dur));
	printf("   %s\n   %s of load", s->description, dur);
	if (s->nstages == 1 && s->stages[0].from == s->stages[0].to)
		printf(" at %.0f journeys/s", s->stages[0].from);
	printf(", %d users; the schedule:\n", s->users);
	for (int i = 0; i < s->nevents; i++)
		printf("     %s\n", s->events[i].text);
	if (!s->nevents)
		printf("     (none)\n");
	printf("   thresholds:");
	for (int i = 0; i < s->nthresholds; i++)
		printf("%s %s", i ? "," : "", s->thresholds[i].text);
	printf("%s audit_failures == 0\n", s->nthresholds ? "," : "");
}

/* Runs the scenario with the narrator, then the summary and the audit.
 * Returns 0, or 1 when the run could not take place. */
static int demo_scenario(demo *d, const demo_def *def, int64_t duration_us)
{
	char path[CLI_PATH_MAX + 64], err[512];
	snprintf(path, sizeof(path), "%s/scenarios/%s.scn", cli_data_dir(), def->scenario);
	scenario *s = scenario_load(path, err, sizeof(err));
	if (!s) {
		check(d, 0, err);
		return 1;
	}
	if (duration_us)
		scenario_set_duration(s, duration_us);
	demo_seed(d);
	say(d, "Run the '%s' scenario, and tell what happens", s->name);
	print_plan(s);
	report *r = report_new(s);
	audit_report audit;
	memset(&audit, 0, sizeof(audit));
	narrator_opts no = { .url = d->url, .token = d->token, .state_dir = d->state, .s = s,
			     .out = stdout };
	narrator *nr = r ? narrator_new(&no) : NULL;
	if (!nr) {
		report_free(r);
		scenario_free(s);
		check(d, 0, "out of memory");
		return 1;
	}
	loadgen_opts o = {
		.url = d->url,
		.admin_token = d->token,
		.state_dir = d->state,
		.log = stdout,
		.audit = audit_loadgen_hook,
		.audit_ud = &audit,
		.interrupted = &interrupted,
		.on_start = started,
		.on_start_ud = nr,
	};
	fflush(stdout);
	narrator_start(nr);
	int rc = loadgen_run(s, &o, r, err, sizeof(err));
	narrator_stop(nr);
	narrator_free(nr);
	if (rc != 0) {
		check(d, 0, err);
	} else {
		say(d, "The run's summary");
		report_print(r, stdout);
		say(d, "The audit: the invariants across services, read from their admin APIs");
		audit_print(&audit, stdout);
		int failed = 0;
		for (int i = 0; i < r->nthresholds; i++)
			failed += !r->passed[i];
		char what[96];
		snprintf(what, sizeof(what), "%d of %d thresholds held", r->nthresholds - failed,
			 r->nthresholds);
		check(d, failed == 0, what);
		check(d, r->audit_ran && audit_failures(&audit) == 0, "every invariant held");
		check(d, !r->interrupted, "the run went to its end");
	}
	report_free(r);
	scenario_free(s);
	return rc ? 1 : 0;
}

/* ---- ecom demo ---------------------------------------------------------------------- */

static const demo_def *find_demo(const char *name)
{
	for (size_t i = 0; i < NDEMOS; i++)
		if (strcmp(DEMOS[i].name, name) == 0)
			return &DEMOS[i];
	return NULL;
}

static void list_demos(void)
{
	for (size_t i = 0; i < NDEMOS; i++)
		printf("  %-15s %s%s\n", DEMOS[i].name,
		       strcmp(DEMOS[i].name, DEFAULT_DEMO) == 0 ? "(default) " : "",
		       DEMOS[i].summary);
}

static int stop_platform(demo *d, int scratch)
{
	const char *down[] = { "down", "--state", d->state, NULL };
	int rc = run_self(d, down);
	if (scratch && rc == 0)
		nftw(d->state, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}

int demo_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "keep", no_argument, NULL, 'k' },
		{ "list", no_argument, NULL, 'l' },
		{ "duration", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL;
	int keep = 0, list = 0;
	int64_t duration = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'S')
			state_s = optarg;
		else if (c == 'k')
			keep = 1;
		else if (c == 'l')
			list = 1;
		else if (c == 'd' && units_duration_us(optarg, &duration) == 0 && duration >= 1000000)
			continue;
		else if (c == 'd')
			return cli_usage(CMD, "--duration: expected a duration of 1s or more, got '%s'",
					 optarg);
		else
			return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (list) {
		if (optind < argc)
			return cli_usage(CMD, "--list takes no NAME");
		list_demos();
		return 0;
	}
	const char *name = optind < argc ? argv[optind++] : DEFAULT_DEMO;
	if (optind < argc)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	const demo_def *def = find_demo(name);
	if (!def)
		return cli_usage(CMD, "unknown demo '%s' (see 'ecom demo --list')", name);
	if (duration && !def->scenario)
		return cli_usage(CMD, "--duration is for the demos that run a scenario");

	demo d;
	memset(&d, 0, sizeof(d));
	if (cli_self_path(d.self, sizeof(d.self)) != 0)
		return cli_fail(CMD, "cannot find my own executable");
	int scratch = state_s == NULL;
	if (scratch) {
		const char *tmp = getenv("TMPDIR");
		snprintf(d.state, sizeof(d.state), "%s/ecom-demo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(d.state))
			return cli_fail(CMD, "cannot create a scratch directory: %s", strerror(errno));
	} else {
		snprintf(d.state, sizeof(d.state), "%s", state_s);
	}
	/* A platform already running there is used as it is, and left running. */
	int ours = !(state_s && state_running_pid(d.state) > 0);

	printf("ecom demo %s: %s\n(state in %s)\n", def->name, def->summary, d.state);
	if (ours) {
		say(&d, "Start the platform: gateway, services and the Stripe simulator, free ports%s",
		    def->env ? ", with breaker settings that fit the story in a minute" : "");
		for (int i = 0; def->env && def->env[i]; i++) {
			char kv[256];
			snprintf(kv, sizeof(kv), "%s", def->env[i]);
			char *eq = strchr(kv, '=');
			*eq = '\0';
			if (!getenv(kv)) {
				setenv(kv, eq + 1, 1);
				printf("   %s=%s\n", kv, eq + 1);
			}
		}
		const char *up[] = { "up",	   "--port", "0", "--state", d.state,
				     def->replicas ? "--replicas" : NULL, def->replicas, NULL };
		if (run_self(&d, up) != 0)
			return cli_fail(CMD, "the platform did not start (see %s/log/)", d.state);
	} else {
		say(&d, "Use the platform running in %s", d.state);
	}
	if (state_gateway_url(d.state, d.url, sizeof(d.url)) != 0 ||
	    state_admin_token(d.state, d.token, sizeof(d.token)) != 0) {
		if (ours)
			stop_platform(&d, 0);
		return cli_fail(CMD, "no gateway URL or admin token in %s", d.state);
	}
	printf("   gateway at %s\n", d.url);
	const char *status[] = { "status", "--state", d.state, NULL };
	run_self(&d, status);

	struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	http_client_global_init();
	int rc = 0;
	if (def->scenario)
		rc = demo_scenario(&d, def, duration);
	else
		demo_catalog(&d);
	http_client_global_cleanup();
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);

	if (keep || !ours) {
		say(&d, "Leaving the platform running: stop it with 'ecom down --state %s'", d.state);
	} else {
		say(&d, "Stop everything");
		check(&d, stop_platform(&d, scratch) == 0, "ecom down: nothing of it keeps running");
	}
	if (rc || d.failures) {
		printf("\necom demo %s: %d check(s) failed\n", def->name, d.failures + (rc && !d.failures));
		return 1;
	}
	printf("\necom demo %s: every check passed\n", def->name);
	return 0;
}
