/* breakers: `ecom breaker`. */
#include "ops/breakers.h"
#include "core/text.h"
#include "ops/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#define CMD "breaker"

static const char HELP[] =
	"usage: ecom breaker list [--json] [--state DIR | --url URL]\n"
	"       ecom breaker trip SERVICE [--json] [--state DIR | --url URL]\n"
	"       ecom breaker reset SERVICE [--json] [--state DIR | --url URL]\n"
	"       ecom breaker disable SERVICE [--json] [--state DIR | --url URL]\n"
	"\n"
	"The platform's circuit breakers, one per edge (caller -> callee): the\n"
	"gateway's to each service and every service instance's to the services it\n"
	"calls.\n"
	"\n"
	"  list            one row per breaker: FROM TO STATE FAIL% SLOW% CALLS INSTANCE\n"
	"                  (rates are '-' until the breaker has its minimum of calls)\n"
	"  trip SERVICE    force every breaker into SERVICE open (FORCED_OPEN): calls to\n"
	"                  it fail fast everywhere until reset\n"
	"  reset SERVICE   close them again, with empty windows\n"
	"  disable SERVICE let every call through and record nothing (DISABLED)\n"
	"\n"
	"  --json      print the gateway's JSON answer instead\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL   the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

static void rate(char *buf, size_t len, json_t *v)
{
	double r = json_number_value(v);
	if (!json_is_number(v) || r < 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", r);
}

static void print_row(json_t *b)
{
	char fr[16], sr[16];
	rate(fr, sizeof(fr), json_object_get(b, "failure_rate"));
	rate(sr, sizeof(sr), json_object_get(b, "slow_call_rate"));
	const char *inst = json_string_value(json_object_get(b, "instance"));
	printf("%-12s %-12s %-12s %6s %6s %6lld  %s\n",
	       json_string_value(json_object_get(b, "from")),
	       json_string_value(json_object_get(b, "to")),
	       json_string_value(json_object_get(b, "state")), fr, sr,
	       (long long)json_integer_value(json_object_get(b, "calls")), inst ? inst : "");
}

static void print_failures(json_t *arr, const char *what)
{
	size_t i;
	json_t *f;
	json_array_foreach(arr, i, f)
		fprintf(stderr, "ecom %s: %s %s: %s\n", CMD, what,
			json_string_value(json_object_get(f, "instance")),
			json_string_value(json_object_get(f, "error")));
}

int breakers_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = { CLI_TARGET_OPTIONS, { NULL, 0, NULL, 0 } };
	cli_target t = { 0 };
	opterr = 0;
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;)
		if (!cli_target_opt(c, optarg, &t))
			return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 0)
		return cli_usage(CMD, "missing subcommand: list, trip, reset or disable");
	int list = strcmp(args[0], "list") == 0;
	if (!list && strcmp(args[0], "trip") != 0 && strcmp(args[0], "reset") != 0 &&
	    strcmp(args[0], "disable") != 0)
		return cli_usage(CMD, "unknown subcommand '%s' (list, trip, reset or disable)", args[0]);
	if (list && nargs > 1)
		return cli_usage(CMD, "unexpected argument '%s'", args[1]);
	if (!list && nargs != 2)
		return cli_usage(CMD, nargs < 2 ? "%s needs a SERVICE" : "%s takes one SERVICE",
				 args[0]);
	if (!list && !text_is_name(args[1], 32))
		return cli_usage(CMD, "SERVICE must be a service name such as catalog or payment");

	char path[128];
	if (list)
		snprintf(path, sizeof(path), "/admin/breakers");
	else
		snprintf(path, sizeof(path), "/admin/breakers/%s/%s", args[1], args[0]);
	json_t *v;
	int rc = cli_admin_json(CMD, &t, list ? "GET" : "POST", path, NULL, &v);
	if (v) {
		printf("%-12s %-12s %-12s %6s %6s %6s  %s\n", "FROM", "TO", "STATE", "FAIL%", "SLOW%",
		       "CALLS", "INSTANCE");
		size_t i;
		json_t *b;
		if (list) {
			json_array_foreach(json_object_get(v, "breakers"), i, b)
				print_row(b);
			print_failures(json_object_get(v, "unreachable"), "no answer from");
		} else {
			print_row(v);
			json_array_foreach(json_object_get(v, "forwarded"), i, b)
				print_row(b);
			print_failures(json_object_get(v, "failed"), "not changed on");
		}
	}
	json_decref(v);
	return rc;
}
