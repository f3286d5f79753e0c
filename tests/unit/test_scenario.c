/* Tests for sim/scenario (and sim/units, sim/arrivals): a full scenario
 * read into its fields, the defaults, every kind of mistake answered with
 * the file, the line and what was expected, the command line's overrides,
 * the arrival times of constant and ramping stages, and every scenario
 * shipped in data/scenarios validating. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "sim/arrivals.h"
#include "sim/scenario.h"
#include "sim/units.h"

static const char FULL[] =
	"# a comment line\n"
	"[scenario]\n"
	"name = full-test\n"
	"description = Everything at once # and a trailing comment\n"
	"\n"
	"[load]\n"
	"stage = 10s 0 -> 50\n"
	"stage = 20s 50\n"
	"users = 7\n"
	"workers = 33\n"
	"threads = 2\n"
	"seed = 42\n"
	"slack = 20ms\n"
	"timeout = 2s\n"
	"settle = 5s\n"
	"grace = 1s\n"
	"arrival = poisson\n"
	"\n"
	"[journey shopper]\n"
	"weight = 3\n"
	"steps = browse, view add_to_cart checkout cancel\n"
	"think = 100ms..2s\n"
	"[journey prober]\n"
	"steps = health\n"
	"\n"
	"[checkout]\n"
	"method = paypal\n"
	"tokens = tok_visa:98 tok_chargeDeclined:2\n"
	"qty = 1..3\n"
	"duplicate = 5%\n"
	"retries = 2\n"
	"[catalog]\n"
	"hot_sku = ELEC-001\n"
	"hot_share = 0.8\n"
	"queries = phone, book shirt\n"
	"[setup]\n"
	"stock = ELEC-001 100\n"
	"[schedule]\n"
	"at 5s fault set stripe outage duration=20s\n"
	"at 6s fault set inventory latency=300ms jitter=50ms error_rate=10% status=502\n"
	"at 25s fault clear stripe\n"
	"at 7s breaker trip payment\n"
	"at 8s kill catalog-1\n"
	"at 9s pause cart\n"
	"at 10s broker down\n"
	"[thresholds]\n"
	"p99 < 250ms\n"
	"checkout.error_rate < 1%\n"
	"orders_lost == 0\n";

static void test_full(void **unused)
{
	char err[512] = "";
	scenario *s = scenario_parse("full.scn", FULL, err, sizeof err);
	if (!s)
		fail_msg("%s", err);
	assert_string_equal(s->name, "full-test");
	assert_string_equal(s->description, "Everything at once");
	assert_int_equal(s->nstages, 2);
	assert_int_equal(s->stages[0].dur_us, 10000000);
	assert_true(s->stages[0].from == 0 && s->stages[0].to == 50);
	assert_true(s->stages[1].from == 50 && s->stages[1].to == 50);
	assert_int_equal(scenario_duration_us(s), 30000000);
	assert_true(fabs(scenario_rate_at(s, 5000000) - 25) < 1e-9);
	assert_true(scenario_rate_at(s, 40000000) == 0);
	assert_int_equal(s->users, 7);
	assert_int_equal(s->workers, 33);
	assert_int_equal(s->threads, 2);
	assert_int_equal(s->seed, 42);
	assert_int_equal(s->slack_us, 20000);
	assert_int_equal(s->timeout_us, 2000000);
	assert_int_equal(s->settle_us, 5000000);
	assert_int_equal(s->grace_us, 1000000);
	assert_int_equal(s->arrival, SCN_POISSON);
	assert_int_equal(s->njourneys, 2);
	assert_string_equal(s->journeys[0].name, "shopper");
	assert_true(s->journeys[0].weight == 3);
	assert_int_equal(s->journeys[0].nsteps, 5);
	assert_int_equal(s->journeys[0].steps[0], SCN_BROWSE);
	assert_int_equal(s->journeys[0].steps[4], SCN_CANCEL);
	assert_int_equal(s->journeys[0].think_min_us, 100000);
	assert_int_equal(s->journeys[0].think_max_us, 2000000);
	assert_true(s->journeys[1].weight == 1); /* the default */
	assert_string_equal(s->method, "paypal");
	assert_int_equal(s->ntokens, 2);
	assert_string_equal(s->tokens[1].token, "tok_chargeDeclined");
	assert_true(s->tokens[0].weight == 98);
	assert_int_equal(s->qty_min, 1);
	assert_int_equal(s->qty_max, 3);
	assert_true(fabs(s->duplicate - 0.05) < 1e-12);
	assert_int_equal(s->retries, 2);
	assert_string_equal(s->hot_sku, "ELEC-001");
	assert_true(fabs(s->hot_share - 0.8) < 1e-12);
	assert_int_equal(s->nqueries, 3);
	assert_string_equal(s->queries[2], "shirt");
	assert_int_equal(s->nstock, 1);
	assert_int_equal(s->stock[0].on_hand, 100);
	assert_int_equal(s->nevents, 7);
	const scenario_event *e = &s->events[0];
	assert_int_equal(e->op, SCN_FAULT_SET);
	assert_string_equal(e->target, "stripe");
	assert_int_equal(e->outage, 1);
	assert_int_equal(e->duration_s, 20);
	assert_int_equal(e->latency_ms, -1); /* not given */
	e = &s->events[1];
	assert_int_equal(e->latency_ms, 300);
	assert_int_equal(e->jitter_ms, 50);
	assert_true(fabs(e->error_rate - 0.1) < 1e-12);
	assert_int_equal(e->error_status, 502);
	assert_int_equal(s->events[2].op, SCN_FAULT_CLEAR);
	assert_int_equal(s->events[3].op, SCN_BREAKER_TRIP);
	assert_string_equal(s->events[3].target, "payment");
	assert_int_equal(s->events[4].op, SCN_KILL);
	assert_string_equal(s->events[4].target, "catalog-1");
	assert_int_equal(s->events[5].op, SCN_PAUSE);
	assert_int_equal(s->events[6].op, SCN_BROKER_DOWN);
	assert_int_equal(s->events[6].line, 45);
	assert_string_equal(s->events[6].text, "at 10s broker down");
	assert_int_equal(s->nthresholds, 3);
	assert_string_equal(s->thresholds[1].endpoint, "checkout");
	assert_int_equal(s->thresholds[1].metric, TM_ERROR_RATE);
	scenario_free(s);
}

static void test_defaults(void **unused)
{
	char err[256];
	scenario *s = scenario_parse("/some/dir/tiny.scn",
				     "[load]\nrate = 5\nduration = 2s\n[journey j]\nsteps = view\n", err,
				     sizeof err);
	assert_non_null(s);
	assert_string_equal(s->name, "tiny"); /* from the file name */
	assert_int_equal(s->nstages, 1);
	assert_true(s->stages[0].from == 5 && s->stages[0].to == 5);
	assert_int_equal(s->users, 10);
	assert_int_equal(s->workers, 256);
	assert_int_equal(s->threads, 1);
	assert_int_equal(s->seed, 1);
	assert_int_equal(s->slack_us, 50000);
	assert_int_equal(s->arrival, SCN_UNIFORM);
	assert_string_equal(s->method, "card");
	assert_int_equal(s->ntokens, 1);
	assert_string_equal(s->tokens[0].token, "tok_visa");
	assert_int_equal(s->qty_min, 1);
	scenario_free(s);
	/* rate = max: a closed loop, no stages. */
	s = scenario_parse("c.scn", "[load]\nrate = max\nduration = 3s\nusers = 0\n[journey p]\nsteps = health\n",
			   err, sizeof err);
	assert_non_null(s);
	assert_int_equal(s->closed, 1);
	assert_int_equal(scenario_duration_us(s), 3000000);
	scenario_free(s);
}

/* Each bad text and the message it must give (a substring). */
static const struct {
	const char *text;
	const char *want;
} BAD[] = {
	{ "rate = 5\n", "t.scn:1: expected a section header such as [scenario] or [load] before 'rate = 5'" },
	{ "[load\n", "t.scn:1: expected ']' at the end of the section header" },
	{ "[loads]\n", "t.scn:1: unknown section '[loads]'" },
	{ "[journey]\n", "t.scn:1: expected '[journey NAME]'" },
	{ "[load x]\n", "t.scn:1: unexpected 'x' after the section name" },
	{ "[load]\nrate 5\n", "t.scn:2: expected 'key = value', got 'rate 5'" },
	{ "[load]\nrate =\n", "t.scn:2: expected a value after 'rate ='" },
	{ "[load]\nrate = fast\n", "t.scn:2: expected arrivals per second (a number from 0 to 1000000) or 'max' for 'rate', got 'fast'" },
	{ "[load]\nrate = -1\n", "t.scn:2: expected arrivals per second" },
	{ "[load]\nrate = 1e3\n", "t.scn:2: expected arrivals per second" },
	{ "[load]\nduration = 10\n", "t.scn:2: expected a duration such as 250ms, 10s or 2m for 'duration' (more than 0), got '10'" },
	{ "[load]\nduration = 10x\n", "t.scn:2: expected a duration such as 250ms" },
	{ "[load]\nduration = 2d\n", "t.scn:2: expected a duration" },
	{ "[load]\nrate = 5\nrate = 6\n", "t.scn:3: 'rate' given twice in this section" },
	{ "[load]\nusers = -1\n", "t.scn:2: expected a whole number from 0 to 10000 for 'users', got '-1'" },
	{ "[load]\nusers = 3.5\n", "t.scn:2: expected a whole number from 0 to 10000 for 'users'" },
	{ "[load]\nworkers = 0\n", "t.scn:2: expected a whole number from 1 to 20000 for 'workers'" },
	{ "[load]\nthreads = 17\n", "t.scn:2: expected a whole number from 1 to 16 for 'threads', got '17'" },
	{ "[load]\narrival = bursty\n", "t.scn:2: expected 'uniform' or 'poisson' for 'arrival', got 'bursty'" },
	{ "[load]\nstage = 10s\n", "t.scn:2: expected 'stage = DURATION RATE' or 'stage = DURATION FROM -> TO'" },
	{ "[load]\nstage = 10s 1 => 5\n", "t.scn:2: expected 'stage = DURATION RATE'" },
	{ "[load]\nstage = 10s a -> 5\n", "t.scn:2: expected arrivals per second (a number >= 0) in the stage, got 'a'" },
	{ "[load]\nspeed = 5\n", "t.scn:2: unknown key 'speed' in [load] (expected rate, duration, stage" },
	{ "[journey Bad]\n", "t.scn:1: expected a journey name of lower-case letters" },
	{ "[journey a]\n[journey a]\n", "t.scn:2: journey 'a' defined twice (first on line 1)" },
	{ "[journey a]\nsteps = view fly\n", "t.scn:2: unknown step 'fly' (expected browse, search, view" },
	{ "[journey a]\nsteps = cancel checkout\n", "t.scn:2: step 'cancel' cancels the journey's order: it needs a 'checkout' before it" },
	{ "[journey a]\nweight = 0\n", "t.scn:2: expected a number more than 0 for 'weight', got '0'" },
	{ "[journey a]\nthink = 2s..1s\n", "t.scn:2: expected MIN..MAX with MIN <= MAX for 'think'" },
	{ "[journey a]\nthink = soon\n", "t.scn:2: expected a duration such as 250ms, 10s or 2m for 'think', got 'soon'" },
	{ "[journey a]\ncolour = red\n", "t.scn:2: unknown key 'colour' in [journey a] (expected weight, steps or think)" },
	{ "[checkout]\nmethod = cash\n", "t.scn:2: expected 'card' or 'paypal' for 'method', got 'cash'" },
	{ "[checkout]\ntokens = tok_visa:0\n", "t.scn:2: expected a weight more than 0 after 'tok_visa:', got '0'" },
	{ "[checkout]\ntokens = tok-visa\n", "t.scn:2: expected a card token of letters, digits and '_' (such as tok_visa), got 'tok-visa'" },
	{ "[checkout]\nqty = 0\n", "t.scn:2: expected 'qty = N' or 'qty = MIN..MAX' with whole numbers from 1 to 99" },
	{ "[checkout]\nqty = 3..2\n", "t.scn:2: expected 'qty = MIN..MAX' with MIN <= MAX" },
	{ "[checkout]\nduplicate = 150%\n", "t.scn:2: expected a ratio such as 5% or 0.05 for 'duplicate', got '150%'" },
	{ "[checkout]\nretries = 9\n", "t.scn:2: expected a whole number from 0 to 5 for 'retries', got '9'" },
	{ "[catalog]\nhot_sku = A/B\n", "t.scn:2: expected a sku (printable, no blanks or '/') for 'hot_sku', got 'A/B'" },
	{ "[catalog]\nhot_share = 2\n", "t.scn:2: expected a ratio such as 80% or 0.8 for 'hot_share', got '2'" },
	{ "[setup]\nstock = ELEC-001\n", "t.scn:2: expected 'stock = SKU N' with N a whole number from 0 to 1000000000" },
	{ "[setup]\nshelf = X 1\n", "t.scn:2: unknown key 'shelf' in [setup] (expected 'stock = SKU N')" },
	{ "[schedule]\n10s kill cart\n", "t.scn:2: expected 'at TIME ACTION ...' (such as 'at 10s fault set stripe outage')" },
	{ "[schedule]\nat soon kill cart\n", "t.scn:2: expected a duration such as 250ms, 10s or 2m for 'at', got 'soon'" },
	{ "[schedule]\nat 1s explode cart\n", "t.scn:2: unknown action 'explode' (expected fault, breaker, kill, restart, pause, resume or broker)" },
	{ "[schedule]\nat 1s fault break stripe\n", "t.scn:2: unknown action 'fault break' (expected fault set, fault clear" },
	{ "[schedule]\nat 1s fault\n", "t.scn:2: expected 'fault set TARGET ...' or 'fault clear TARGET'" },
	{ "[schedule]\nat 1s kill\n", "t.scn:2: expected a target (a service such as catalog" },
	{ "[schedule]\nat 1s kill cart now\n", "t.scn:2: unexpected 'now' after 'kill cart'" },
	{ "[schedule]\nat 1s broker down now\n", "t.scn:2: unexpected 'now' after 'broker down'" },
	{ "[schedule]\nat 1s fault set stripe\n", "t.scn:2: a fault needs at least one of latency=, jitter=, error_rate= or outage" },
	{ "[schedule]\nat 1s fault set stripe latency=90s\n", "t.scn:2: expected a duration up to 60s for 'latency', got '90s'" },
	{ "[schedule]\nat 1s fault set stripe status=200 outage\n", "t.scn:2: expected an HTTP status from 400 to 599 for 'status', got '200'" },
	{ "[schedule]\nat 1s fault set stripe outage duration=10ms\n", "t.scn:2: expected a duration of at least 1s for 'duration', got '10ms'" },
	{ "[schedule]\nat 1s fault set stripe loud=1\n", "t.scn:2: unknown fault setting 'loud'" },
	{ "[schedule]\nat 1s fault set stripe slow\n", "t.scn:2: expected KEY=VALUE (latency, jitter, error_rate, status, duration) or 'outage', got 'slow'" },
	{ "[thresholds]\np99 250ms\n", "t.scn:2: expected an operator (< <= > >= == !=) in 'p99 250ms'" },
	{ "[thresholds]\np99 < fast\n", "t.scn:2: expected a duration such as 250ms or 1.5s after 'p99 <', got 'fast'" },
	{ "[thresholds]\nerror_rate < lots\n", "t.scn:2: expected a ratio such as 1% or 0.01 after 'error_rate <', got 'lots'" },
	{ "[thresholds]\nspeed > 1\n", "t.scn:2: unknown metric 'speed'" },
	{ "[thresholds]\npay.p99 < 1s\n", "t.scn:2: unknown endpoint 'pay' (expected one of browse, search, view" },
	{ "[thresholds]\ncheckout.orders_lost == 0\n", "t.scn:2: 'orders_lost' is measured for the whole run, not per endpoint" },
	{ "[thresholds]\norders_lost == 0.5\n", "t.scn:2: expected a whole number after 'orders_lost ==', got '0.5'" },
	{ "[scenario]\nname = Big Name\n", "t.scn:2: expected a name of lower-case letters, digits, '-' and '_' for 'name', got 'Big Name'" },
	{ "[scenario]\nowner = me\n", "t.scn:2: unknown key 'owner' in [scenario] (expected name or description)" },
	{ "[scenario]\nname = a\x01\n", "t.scn:2: unexpected control character 0x01" },
	/* what only the whole file can tell */
	{ "[journey a]\nsteps = view\n", "t.scn: [load] needs 'rate' and 'duration', or 'stage' lines" },
	{ "[load]\nrate = 5\n[journey a]\nsteps = view\n", "t.scn: [load] needs 'rate' and 'duration'" },
	{ "[load]\nrate = 5\nduration = 1s\nstage = 1s 5\n[journey a]\nsteps = view\n", "t.scn: [load] gives both 'stage' lines and 'rate'/'duration'" },
	{ "[load]\nrate = 5\nduration = 1s\n", "t.scn: no journey: add a [journey NAME] section with 'steps = ...'" },
	{ "[load]\nrate = 5\nduration = 1s\n[journey a]\nweight = 2\n", "t.scn:4: journey 'a' has no 'steps'" },
	{ "[load]\nrate = 5\nduration = 1s\nusers = 0\n[journey a]\nsteps = view\n", "t.scn: the journeys need signed-in users but [load] has 'users = 0'" },
	{ "[load]\nrate = 5\nduration = 1s\n[journey a]\nsteps = view\n[catalog]\nhot_share = 10%\n", "t.scn: [catalog] gives 'hot_share' without 'hot_sku'" },
	{ "[load]\nrate = 5\nduration = 10s\n[journey a]\nsteps = view\n[schedule]\nat 5s kill cart\nat 10s kill cart\n", "t.scn:8: 'at 10.00s' is not before the end of the run (10.00s)" },
};

static void test_errors(void **unused)
{
	for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
		char err[512] = "";
		scenario *s = scenario_parse("t.scn", BAD[i].text, err, sizeof err);
		if (s) {
			scenario_free(s);
			fail_msg("case %zu was accepted: %s", i, BAD[i].text);
		}
		if (!strstr(err, BAD[i].want))
			fail_msg("case %zu: got \"%s\", wanted \"%s\"", i, err, BAD[i].want);
	}
}

static void test_load_file(void **unused)
{
	char err[512], path[] = "/tmp/ecom-scn-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("[load]\r\nrate = 2\r\nduration = 1s\r\n[journey x]\r\nsteps = view\r\n", f); /* CRLF */
	fclose(f);
	scenario *s = scenario_load(path, err, sizeof err);
	if (!s)
		fail_msg("%s", err);
	assert_string_equal(s->path, path);
	scenario_free(s);
	f = fopen(path, "w");
	fputs("[load]\nrate = 2\nduration = 1s\n[journey x]\nsteps = view\n[thresholds]\np99 <\n", f);
	fclose(f);
	assert_null(scenario_load(path, err, sizeof err));
	char want[128];
	snprintf(want, sizeof want, "%s:7: expected a value after 'p99 <'", path);
	assert_string_equal(err, want);
	unlink(path);
	assert_null(scenario_load("/nonexistent/x.scn", err, sizeof err));
	assert_string_equal(err, "/nonexistent/x.scn: No such file or directory");
}

static void test_overrides(void **unused)
{
	char err[256];
	scenario *s = scenario_parse("o.scn",
				     "[load]\nstage = 10s 0 -> 10\nstage = 10s 10\n[journey j]\nsteps = view\n"
				     "[schedule]\nat 15s kill cart\n",
				     err, sizeof err);
	assert_non_null(s);
	/* --duration stretches the stages and the schedule alike. */
	assert_int_equal(scenario_set_duration(s, 10000000), 0);
	assert_int_equal(scenario_duration_us(s), 10000000);
	assert_int_equal(s->stages[0].dur_us, 5000000);
	assert_int_equal(s->events[0].at_us, 7500000);
	/* --rate: one constant stage. */
	assert_int_equal(scenario_set_rate(s, 7, 4000000), 0);
	assert_int_equal(s->nstages, 1);
	assert_true(s->stages[0].from == 7 && s->stages[0].to == 7);
	assert_int_equal(scenario_duration_us(s), 4000000);
	assert_int_equal(s->events[0].at_us, 3000000);
	assert_int_equal(scenario_set_rate(s, -1, 0), ERR_INVALID);
	/* --threshold */
	assert_int_equal(scenario_add_threshold(s, "view.p95 <= 20ms", err, sizeof err), 0);
	assert_int_equal(s->thresholds[0].op, TOP_LE);
	assert_int_equal(scenario_add_threshold(s, "view.p95 ~ 20ms", err, sizeof err), ERR_INVALID);
	assert_non_null(strstr(err, "expected an operator"));
	scenario_free(s);
}

static void test_units(void **unused)
{
	int64_t us;
	double v;
	assert_int_equal(units_duration_us("250ms", &us), 0);
	assert_int_equal(us, 250000);
	assert_int_equal(units_duration_us("1.5s", &us), 0);
	assert_int_equal(us, 1500000);
	assert_int_equal(units_duration_us("2m", &us), 0);
	assert_int_equal(us, 120000000);
	assert_int_equal(units_duration_us("500us", &us), 0);
	assert_int_equal(us, 500);
	assert_int_equal(units_duration_us("1h", &us), 0);
	const char *bad[] = { "", "10", "s", "-1s", "1e3ms", "0x10s", "inf", "10 s", "25h", "1.5.2s", NULL };
	for (int i = 0; bad[i]; i++)
		if (units_duration_us(bad[i], &us) == 0)
			fail_msg("'%s' was taken as a duration", bad[i]);
	assert_int_equal(units_ratio("1%", &v), 0);
	assert_true(fabs(v - 0.01) < 1e-12);
	assert_int_equal(units_ratio("0.25", &v), 0);
	assert_true(v == 0.25);
	assert_int_equal(units_ratio("101%", &v), ERR_INVALID);
	assert_int_equal(units_ratio("1.5", &v), ERR_INVALID);
	char buf[32];
	units_fmt_us(850, buf, sizeof buf);
	assert_string_equal(buf, "850us");
	units_fmt_us(23400, buf, sizeof buf);
	assert_string_equal(buf, "23.4ms");
	units_fmt_us(1200000, buf, sizeof buf);
	assert_string_equal(buf, "1.20s");
	units_fmt_us(125000000, buf, sizeof buf);
	assert_string_equal(buf, "2m05s");
}

static int count_until(const scenario *s, uint64_t seed, int64_t *first, int64_t *last)
{
	arrivals *a = arrivals_new(s, seed);
	assert_non_null(a);
	int n = 0;
	int64_t t, prev = -1;
	while ((t = arrivals_next(a)) >= 0 && n < 1000000) {
		assert_true(t >= prev); /* never backwards */
		assert_true(t < scenario_duration_us(s));
		if (n == 0)
			*first = t;
		prev = t;
		n++;
	}
	*last = prev;
	arrivals_free(a);
	return n;
}

static void test_arrivals(void **unused)
{
	char err[256];
	scenario *s = scenario_parse("a.scn", "[load]\nrate = 10\nduration = 2s\n[journey j]\nsteps = view\n",
				     err, sizeof err);
	assert_non_null(s);
	int64_t first, last;
	/* Evenly spaced, half a gap in: 50ms, 150ms, ... 1950ms. */
	assert_int_equal(count_until(s, 1, &first, &last), 20);
	assert_int_equal(first, 50000);
	assert_int_equal(last, 1950000);
	assert_true(arrivals_expected(s) == 20);
	scenario_free(s);
	/* A ramp 0 -> 100 over 10s then 100 for 5s: 500 + 500 arrivals, and
	 * the first half of the ramp (0..5s) holds a quarter of its own. */
	s = scenario_parse("r.scn", "[load]\nstage = 10s 0 -> 100\nstage = 5s 100\n[journey j]\nsteps = view\n",
			   err, sizeof err);
	assert_non_null(s);
	assert_int_equal(count_until(s, 1, &first, &last), 1000);
	arrivals *a = arrivals_new(s, 1);
	int in_first_5s = 0;
	int64_t t;
	while ((t = arrivals_next(a)) >= 0)
		in_first_5s += t < 5000000;
	arrivals_free(a);
	assert_int_equal(in_first_5s, 125);
	/* Ramping down works as well as up. */
	scenario_set_rate(s, 0, 0);
	assert_int_equal(count_until(s, 1, &first, &last), 0);
	scenario_free(s);
	s = scenario_parse("d.scn", "[load]\nstage = 4s 100 -> 0\n[journey j]\nsteps = view\n", err, sizeof err);
	assert_int_equal(count_until(s, 1, &first, &last), 200);
	/* Poisson: about the same count, the same times for the same seed,
	 * other times for another. */
	s->arrival = SCN_POISSON;
	int64_t f1, f2, l;
	int n1 = count_until(s, 7, &f1, &l), n2 = count_until(s, 7, &f2, &l);
	assert_int_equal(n1, n2);
	assert_int_equal(f1, f2);
	assert_true(n1 > 150 && n1 < 250);
	count_until(s, 8, &f2, &l);
	assert_true(f1 != f2);
	scenario_free(s);
}

/* 1 when Makefile.am names data/scenarios/file (installed and in the
 * tarball); 1 as well when the source tree is not known. */
static int distributed(const char *file)
{
	const char *top = getenv("ECOM_TOP_SRCDIR");
	if (!top || !*top)
		return 1;
	char path[1024], want[300];
	snprintf(path, sizeof path, "%s/Makefile.am", top);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	snprintf(want, sizeof want, "data/scenarios/%s ", file);
	return strstr(text, want) != NULL || (snprintf(want, sizeof want, "data/scenarios/%s\n", file),
					      strstr(text, want) != NULL);
}

/* Every scenario shipped in data/scenarios reads without an error, is
 * installed, and the ones the issue names are there. */
static void test_shipped(void **unused)
{
	const char *data = getenv("ECOM_DATA");
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/scenarios", data && *data ? data : "data");
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("cannot open %s", dir);
	static const char *const need[] = { "steady", "flash-sale", "payment-outage", "slow-inventory",
					    "service-crash", "duplicate-requests", "kafka-down",
					    "failures", "consistency", "versioning", "monitoring",
					    "discovery", NULL };
	int found[16] = { 0 }, n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 5 || strcmp(de->d_name + l - 4, ".scn") != 0)
			continue;
		char path[1400], err[512];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		scenario *s = scenario_load(path, err, sizeof err);
		if (!s)
			fail_msg("%s", err);
		assert_true(s->description[0] != '\0');
		if (!distributed(de->d_name))
			fail_msg("Makefile.am does not install data/scenarios/%s", de->d_name);
		assert_true(s->nthresholds > 0);
		for (int i = 0; need[i]; i++)
			if (strcmp(s->name, need[i]) == 0)
				found[i] = 1;
		scenario_free(s);
		n++;
	}
	closedir(d);
	for (int i = 0; need[i]; i++)
		if (!found[i])
			fail_msg("no scenario named %s in %s", need[i], dir);
	assert_true(n >= 12);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),	 cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_errors),	 cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_overrides), cmocka_unit_test(test_units),
		cmocka_unit_test(test_arrivals), cmocka_unit_test(test_shipped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
