/* simulate: ecom sim. */
#include "ops/simulate.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/audit.h"
#include "ops/cli.h"
#include "ops/serve.h"
#include "sim/kafka_sim.h"
#include "sim/loadgen.h"
#include "sim/report.h"
#include "sim/scenario.h"
#include "sim/units.h"

#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CMD "sim"
#define MAX_OUTS 2

/* Exit code of a run whose thresholds did not all hold (k6's). */
#define EXIT_THRESHOLDS 99

static const char HELP[] =
	"usage: ecom sim run SCENARIO [--rate R] [--duration D] [--seed S] [--users N]\n"
	"                    [--workers N] [--threads N] [--settle D] [--threshold EXPR]...\n"
	"                    [--out json=FILE] [--out csv=FILE] [--quiet]\n"
	"                    [--state DIR | --url URL]\n"
	"       ecom sim run --list\n"
	"       ecom sim validate FILE...\n"
	"       ecom sim stripe [--port PORT] [--state DIR] [--config FILE] [--log-level LEVEL]\n"
	"       ecom sim paypal [--port PORT] [--state DIR] [--config FILE] [--log-level LEVEL]\n"
	"       ecom sim kafka [--port PORT] [--brokers N] [--partitions N]\n"
	"\n"
	"run       the load simulator: open-model arrivals at the scenario's rate, user\n"
	"          journeys, the scenario's fault schedule, then a summary per endpoint\n"
	"          (count, rate, p50..p99.9, max, errors), the orders' final states and\n"
	"          the thresholds, each ✓ or ✗. SCENARIO is a file or the name of one in\n"
	"          data/scenarios (see --list). Exits 0 when every threshold holds, 99\n"
	"          when one does not, 1 when the run could not take place.\n"
	"  --rate R         arrivals per second, constant, instead of the scenario's stages\n"
	"  --duration D     the run's length (250ms, 10s, 2m); stretches the stages and the\n"
	"                   schedule\n"
	"  --seed S         the seed of every choice (default: the scenario's, else 1)\n"
	"  --users N        simulated users signed in before the run\n"
	"  --workers N      journeys under way at most (more arrivals are dropped)\n"
	"  --threads N      generator threads (1 to 16), each with its share of the workers\n"
	"  --settle D       how long to wait for orders to reach a final state\n"
	"  --threshold EXPR another threshold, such as 'p99 < 250ms' or 'checkout.error_rate < 1%'\n"
	"  --out json=FILE  one JSON line per request, drop and schedule action, then the summary\n"
	"  --out csv=FILE   one CSV row per request and drop\n"
	"  --quiet          no progress line and no setup messages\n"
	"  --state DIR      the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL        the gateway to load (admin token from $ECOM_ADMIN_TOKEN)\n"
	"validate  reads each scenario file and says what is wrong with it (file, line,\n"
	"          what was expected); exits 1 when any is invalid.\n"
	"stripe    a Stripe-compatible payments API (payment intents, capture, cancel,\n"
	"          refunds, idempotency keys, the test card tokens), with faults set\n"
	"          through PUT /admin/faults/stripe. Default port 12111.\n"
	"paypal    a PayPal-compatible REST API (OAuth2 tokens, orders, authorize,\n"
	"          capture, void, refunds, PayPal-Request-Id, the test payers\n"
	"          paypal_ok, paypal_declined, ...), faults through PUT\n"
	"          /admin/faults/paypal[.OP]. Default port 12112.\n"
	"kafka     librdkafka's mock cluster as Kafka brokers, an in-memory TEST\n"
	"          broker for 'ecom up --bus kafka://...' (ecom sim kafka --help)\n"
	"\n"
	"The scenario format is in doc/scenarios.md. The admin token for /admin routes\n"
	"is $ECOM_ADMIN_TOKEN or STATE/admin.token.\n";

/* ecom sim stripe|paypal: the simulator's engine served by ecom serve. */
static int stripe_main(int argc, char **argv)
{
	int paypal = strcmp(argv[1], "paypal") == 0;
	/* ecom serve stripe-sim|paypal-sim [--port 12111|12112] ARGS... */
	char *args[64];
	int n = 0, has_port = 0;
	args[n++] = "serve";
	args[n++] = paypal ? "paypal-sim" : "stripe-sim";
	for (int i = 2; i < argc && n < 60; i++) {
		if (strcmp(argv[i], "--port") == 0 || strncmp(argv[i], "--port=", 7) == 0)
			has_port = 1;
		args[n++] = argv[i];
	}
	if (!has_port) {
		args[n++] = "--port";
		args[n++] = paypal ? "12112" : "12111";
	}
	args[n] = NULL;
	return serve_main(n, args);
}

/* SCENARIO as given when it names a file, else data/scenarios/NAME.scn. */
static void scenario_path(const char *arg, char *buf, size_t len)
{
	if (strchr(arg, '/') || access(arg, R_OK) == 0)
		snprintf(buf, len, "%s", arg);
	else
		snprintf(buf, len, "%s/scenarios/%s.scn", cli_data_dir(), arg);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_scenarios(void)
{
	char dir[CLI_PATH_MAX];
	snprintf(dir, sizeof dir, "%s/scenarios", cli_data_dir());
	DIR *d = opendir(dir);
	if (!d)
		return cli_fail(CMD, "cannot read %s", dir);
	char *names[256];
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 256) {
		size_t l = strlen(de->d_name);
		if (l > 4 && strcmp(de->d_name + l - 4, ".scn") == 0)
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	for (int i = 0; i < n; i++) {
		char path[CLI_PATH_MAX + 300], err[512];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		scenario *s = scenario_load(path, err, sizeof err);
		if (s)
			printf("  %-20s %s\n", s->name, s->description);
		else
			printf("  %-20s (invalid: %s)\n", names[i], err);
		scenario_free(s);
		free(names[i]);
	}
	return 0;
}

static int validate_main(int argc, char **argv)
{
	if (argc < 3)
		return cli_usage(CMD, "validate needs at least one FILE");
	int bad = 0;
	for (int i = 2; i < argc; i++) {
		char err[512];
		scenario *s = scenario_load(argv[i], err, sizeof err);
		if (!s) {
			fprintf(stderr, "%s\n", err);
			bad++;
			continue;
		}
		char d[32];
		units_fmt_us(scenario_duration_us(s), d, sizeof d);
		printf("%s: ok (%s: %s, %d journeys, %d schedule actions, %d thresholds)\n", argv[i],
		       s->name, d, s->njourneys, s->nevents, s->nthresholds);
		scenario_free(s);
	}
	return bad ? 1 : 0;
}

/* Set by SIGINT/SIGTERM during a run: the run ends early, with its summary
 * and with paused services resumed. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Room for as many descriptors as the workers may need. */
static void raise_fd_limit(int workers)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)workers * 2 + 256;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	setrlimit(RLIMIT_NOFILE, &rl);
}

typedef struct run_args {
	const char *scenario, *state, *url;
	const char *rate, *duration, *seed, *users, *workers, *threads, *settle;
	const char *thresholds[SCN_MAX_THRESHOLDS];
	int nthresholds;
	const char *outs[MAX_OUTS];
	int nouts;
	int quiet, list;
} run_args;

static int parse_run(int argc, char **argv, run_args *a)
{
	static const struct option opts[] = {
		{ "rate", required_argument, NULL, 'r' },     { "duration", required_argument, NULL, 'd' },
		{ "seed", required_argument, NULL, 's' },     { "users", required_argument, NULL, 'u' },
		{ "workers", required_argument, NULL, 'w' },  { "settle", required_argument, NULL, 'e' },
		{ "threads", required_argument, NULL, 'T' },
		{ "threshold", required_argument, NULL, 't' }, { "out", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },          { "list", no_argument, NULL, 'l' },
		{ "state", required_argument, NULL, 'S' },    { "url", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	opterr = 0;
	optind = 0;
	int c;
	/* argv[0] is "sim", argv[1] "run". */
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->rate = optarg; break;
		case 'd': a->duration = optarg; break;
		case 's': a->seed = optarg; break;
		case 'u': a->users = optarg; break;
		case 'w': a->workers = optarg; break;
		case 'T': a->threads = optarg; break;
		case 'e': a->settle = optarg; break;
		case 't':
			if (a->nthresholds == SCN_MAX_THRESHOLDS)
				return cli_usage(CMD, "too many --threshold (at most %d)", SCN_MAX_THRESHOLDS);
			a->thresholds[a->nthresholds++] = optarg;
			break;
		case 'o':
			if (a->nouts == MAX_OUTS)
				return cli_usage(CMD, "--out at most twice (json=FILE and csv=FILE)");
			a->outs[a->nouts++] = optarg;
			break;
		case 'q': a->quiet = 1; break;
		case 'l': a->list = 1; break;
		case 'S': a->state = optarg; break;
		case 'U': a->url = optarg; break;
		default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind]);
		}
	}
	int rest = argc - 1 - optind;
	if (a->list)
		return rest ? cli_usage(CMD, "--list takes no SCENARIO") : 0;
	if (rest == 0)
		return cli_usage(CMD, "run needs a SCENARIO (a file, or a name from 'ecom sim run --list')");
	if (rest > 1)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind + 2]);
	a->scenario = argv[optind + 1];
	return 0;
}

/* The command line's changes to the scenario. 0, or the exit code. */
static int apply_flags(scenario *s, const run_args *a)
{
	char err[512];
	int64_t us = 0, n;
	double rate;
	if (a->duration && (units_duration_us(a->duration, &us) || us < 1000))
		return cli_usage(CMD, "--duration: expected a duration such as 30s or 2m, got '%s'", a->duration);
	if (a->rate) {
		if (units_number(a->rate, &rate) || rate > 1e6)
			return cli_usage(CMD, "--rate: expected arrivals per second (0 to 1000000), got '%s'", a->rate);
		scenario_set_rate(s, rate, us);
	} else if (us) {
		scenario_set_duration(s, us);
	}
	if (a->seed) {
		if (cli_parse_int(a->seed, 0, INT64_MAX, &n))
			return cli_usage(CMD, "--seed: expected a whole number >= 0, got '%s'", a->seed);
		s->seed = (uint64_t)n;
	}
	if (a->users) {
		if (cli_parse_int(a->users, 1, SCN_MAX_USERS, &n))
			return cli_usage(CMD, "--users: expected a whole number from 1 to %d", SCN_MAX_USERS);
		s->users = (int)n;
	}
	if (a->workers) {
		if (cli_parse_int(a->workers, 1, SCN_MAX_WORKERS, &n))
			return cli_usage(CMD, "--workers: expected a whole number from 1 to %d", SCN_MAX_WORKERS);
		s->workers = (int)n;
	}
	if (a->threads) {
		if (cli_parse_int(a->threads, 1, SCN_MAX_THREADS, &n))
			return cli_usage(CMD, "--threads: expected a whole number from 1 to %d", SCN_MAX_THREADS);
		s->threads = (int)n;
	}
	if (a->settle && units_duration_us(a->settle, &s->settle_us))
		return cli_usage(CMD, "--settle: expected a duration such as 30s, got '%s'", a->settle);
	for (int i = 0; i < a->nthresholds; i++)
		if (scenario_add_threshold(s, a->thresholds[i], err, sizeof err))
			return cli_usage(CMD, "--threshold '%s': %s", a->thresholds[i], err);
	return 0;
}

/* 1 when a journey calls the platform's API (anything but /health): then
 * the audit has something to check. Health-only runs measure the generator
 * against any server, platform or not. */
static int uses_platform(const scenario *s)
{
	for (int j = 0; j < s->njourneys; j++)
		for (int k = 0; k < s->journeys[j].nsteps; k++)
			if (s->journeys[j].steps[k] != SCN_HEALTH)
				return 1;
	return 0;
}

static int run_main(int argc, char **argv)
{
	run_args a;
	memset(&a, 0, sizeof a);
	int rc = parse_run(argc, argv, &a);
	if (rc)
		return rc;
	if (a.list)
		return list_scenarios();
	char path[CLI_PATH_MAX + 64], err[512];
	scenario_path(a.scenario, path, sizeof path);
	scenario *s = scenario_load(path, err, sizeof err);
	if (!s)
		return cli_fail(CMD, "%s", err);
	if ((rc = apply_flags(s, &a)) != 0) {
		scenario_free(s);
		return rc;
	}
	char url[512], token[256];
	if (cli_platform(CMD, a.state, a.url, url, sizeof url, token, sizeof token) != 0) {
		scenario_free(s);
		return 1;
	}
	report *r = report_new(s);
	if (!r) {
		scenario_free(s);
		return cli_fail(CMD, "out of memory");
	}
	for (int i = 0; i < a.nouts; i++)
		if (report_open_output(r, a.outs[i], err, sizeof err) != 0) {
			report_free(r);
			scenario_free(s);
			return cli_usage(CMD, "%s", err);
		}
	raise_fd_limit(s->workers);
	http_client_global_init();
	audit_report audit;
	memset(&audit, 0, sizeof audit);
	if (!uses_platform(s))
		snprintf(r->audit_text, sizeof r->audit_text, "the scenario only calls /health");
	loadgen_opts o = {
		.url = url,
		.admin_token = token,
		/* Signals need the pids: the state directory, unless only --url was given. */
		.state_dir = a.url && !a.state ? NULL : cli_state_dir(a.state),
		.log = a.quiet ? NULL : stderr,
		.progress = !a.quiet && isatty(STDERR_FILENO),
		/* `ecom audit` at the end: the threshold audit_failures == 0. */
		.audit = uses_platform(s) ? audit_loadgen_hook : NULL,
		.audit_ud = &audit,
		.interrupted = &interrupted,
	};
	struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	rc = loadgen_run(s, &o, r, err, sizeof err);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	int code;
	if (rc != 0) {
		code = cli_fail(CMD, "%s", err);
	} else {
		report_print(r, stdout);
		if (r->audit_ran && audit_failures(&audit))
			audit_print(&audit, stdout);
		int failed = 0;
		for (int i = 0; i < r->nthresholds; i++)
			failed += !r->passed[i];
		code = failed ? EXIT_THRESHOLDS : 0;
		if (r->interrupted)
			code = cli_fail(CMD, "interrupted: the figures above cover the part that ran");
	}
	report_finish_outputs(r);
	report_free(r);
	scenario_free(s);
	http_client_global_cleanup();
	return code;
}

int simulate_main(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(HELP, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	/* The Kafka mock has options and a help of its own. */
	if (strcmp(argv[1], "kafka") == 0)
		return kafka_sim_main(argc - 1, argv + 1);
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	if (strcmp(argv[1], "stripe") == 0 || strcmp(argv[1], "paypal") == 0)
		return stripe_main(argc, argv);
	if (strcmp(argv[1], "run") == 0)
		return run_main(argc, argv);
	if (strcmp(argv[1], "validate") == 0)
		return validate_main(argc, argv);
	return cli_usage(CMD, "unknown subcommand '%s' (run, validate, stripe, paypal or kafka)", argv[1]);
}
