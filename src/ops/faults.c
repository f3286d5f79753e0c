/* faults: `ecom fault`. */
#include "ops/faults.h"
#include "core/text.h"
#include "ops/cli.h"
#include "resil/fault.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define CMD "fault"

static const char HELP[] =
	"usage: ecom fault set TARGET [--latency-ms N] [--jitter-ms N] [--error-rate F]\n"
	"                             [--error-status N] [--outage] [--duration-s N | --for D]\n"
	"       ecom fault clear TARGET\n"
	"       ecom fault list [--json]\n"
	"       (each also takes --state DIR | --url URL)\n"
	"\n"
	"Injects faults at a target's HTTP layer: every instance of a service\n"
	"(catalog, cart, ...), the gateway itself, or an outside-world simulator\n"
	"(stripe). /health, /ready, /metrics and /admin are never faulted.\n"
	"\n"
	"  set TARGET        replace TARGET's fault with this one:\n"
	"    --latency-ms N    add N ms (0 to 60000) to every request\n"
	"    --jitter-ms N     vary the latency by up to +-N ms (0 to 60000)\n"
	"    --error-rate F    fail this fraction of requests (0 to 1)...\n"
	"    --error-status N  ...with this status (400 to 599, default 503)\n"
	"    --outage          answer every request 503 at once\n"
	"    --duration-s N    for N seconds (up to 86400; default: until cleared)\n"
	"    --for D           the same as a duration: 90, 90s, 15m or 2h\n"
	"  clear TARGET      remove TARGET's fault\n"
	"  list              one row per active fault and instance\n"
	"\n"
	"  --json      print the gateway's JSON answer instead\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL   the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

/* "90", "90s", "15m", "2h" -> seconds within 1..FAULT_MAX_DURATION_S. */
static int parse_duration(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -1;
	long long mul = 1;
	if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (*end && strcmp(end, "s") != 0)
		return -1;
	if (v > FAULT_MAX_DURATION_S / mul || v * mul < 1)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_rate(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

static void print_fault(json_t *f)
{
	const char *exp = json_string_value(json_object_get(f, "expires_at"));
	const char *inst = json_string_value(json_object_get(f, "instance"));
	printf("%-12s %-18s %8lld %7lld %6.3f %6lld %-6s %s\n",
	       json_string_value(json_object_get(f, "target")), inst ? inst : "",
	       (long long)json_integer_value(json_object_get(f, "latency_ms")),
	       (long long)json_integer_value(json_object_get(f, "jitter_ms")),
	       json_number_value(json_object_get(f, "error_rate")),
	       (long long)json_integer_value(json_object_get(f, "error_status")),
	       json_is_true(json_object_get(f, "outage")) ? "yes" : "no", exp ? exp : "never");
}

static void print_header(void)
{
	printf("%-12s %-18s %8s %7s %6s %6s %-6s %s\n", "TARGET", "INSTANCE", "LATENCY", "JITTER",
	       "ERRORS", "STATUS", "OUTAGE", "EXPIRES");
}

int faults_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "latency-ms", required_argument, NULL, 'l' },
		{ "jitter-ms", required_argument, NULL, 'j' },
		{ "error-rate", required_argument, NULL, 'e' },
		{ "error-status", required_argument, NULL, 's' },
		{ "outage", no_argument, NULL, 'o' },
		{ "duration-s", required_argument, NULL, 'd' },
		{ "for", required_argument, NULL, 'f' },
		CLI_TARGET_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	cli_target t = { 0 };
	int outage = 0, any_spec = 0;
	int64_t latency = 0, jitter = 0, status = FAULT_DEFAULT_STATUS, duration = 0;
	double error_rate = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		any_spec |= c != 'J' && c != 'S' && c != 'U';
		switch (c) {
		case 'l':
			if (cli_parse_int(optarg, 0, FAULT_MAX_LATENCY_MS, &latency))
				return cli_usage(CMD, "--latency-ms must be 0 to %d", FAULT_MAX_LATENCY_MS);
			break;
		case 'j':
			if (cli_parse_int(optarg, 0, FAULT_MAX_JITTER_MS, &jitter))
				return cli_usage(CMD, "--jitter-ms must be 0 to %d", FAULT_MAX_JITTER_MS);
			break;
		case 'e':
			if (parse_rate(optarg, &error_rate))
				return cli_usage(CMD, "--error-rate must be a number from 0 to 1");
			break;
		case 's':
			if (cli_parse_int(optarg, FAULT_MIN_STATUS, FAULT_MAX_STATUS, &status))
				return cli_usage(CMD, "--error-status must be %d to %d", FAULT_MIN_STATUS,
						 FAULT_MAX_STATUS);
			break;
		case 'o': outage = 1; break;
		case 'd':
			if (cli_parse_int(optarg, 1, FAULT_MAX_DURATION_S, &duration))
				return cli_usage(CMD, "--duration-s must be 1 to %d", FAULT_MAX_DURATION_S);
			break;
		case 'f':
			if (parse_duration(optarg, &duration))
				return cli_usage(CMD, "--for takes 90, 90s, 15m or 2h (up to 24h)");
			break;
		default:
			if (!cli_target_opt(c, optarg, &t))
				return cli_usage(CMD, "unknown or incomplete option '%s'",
						 argv[optind - 1]);
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 0)
		return cli_usage(CMD, "missing subcommand: set, clear or list");
	int is_set = strcmp(args[0], "set") == 0, is_clear = strcmp(args[0], "clear") == 0;
	int is_list = strcmp(args[0], "list") == 0;
	if (!is_set && !is_clear && !is_list)
		return cli_usage(CMD, "unknown subcommand '%s' (set, clear or list)", args[0]);
	if (is_list && nargs > 1)
		return cli_usage(CMD, "unexpected argument '%s'", args[1]);
	if (!is_list && nargs != 2)
		return cli_usage(CMD, nargs < 2 ? "%s needs a TARGET" : "%s takes one TARGET", args[0]);
	if (!is_set && any_spec)
		return cli_usage(CMD, "only 'set' takes fault options");
	if (!is_list && !text_is_name(args[1], FAULT_MAX_TARGET + 1))
		return cli_usage(CMD, "TARGET must be a service or provider name such as catalog or stripe");

	char path[160], body[256];
	const char *method = "GET";
	snprintf(path, sizeof(path), "/admin/faults");
	if (!is_list)
		snprintf(path, sizeof(path), "/admin/faults/%s", args[1]);
	if (is_set) {
		method = "PUT";
		snprintf(body, sizeof(body),
			 "{\"latency_ms\":%lld,\"jitter_ms\":%lld,\"error_rate\":%.6f,"
			 "\"error_status\":%lld,\"outage\":%s,\"duration_s\":%lld}",
			 (long long)latency, (long long)jitter, error_rate, (long long)status,
			 outage ? "true" : "false", (long long)duration);
	} else if (is_clear) {
		method = "DELETE";
	}
	json_t *v;
	int rc = cli_admin_json(CMD, &t, method, path, is_set ? body : NULL, &v);
	if (v && is_list) {
		print_header();
		size_t i;
		json_t *f;
		json_array_foreach(json_object_get(v, "faults"), i, f)
			print_fault(f);
		json_array_foreach(json_object_get(v, "unreachable"), i, f)
			fprintf(stderr, "ecom %s: no answer from %s: %s\n", CMD,
				json_string_value(json_object_get(f, "instance")),
				json_string_value(json_object_get(f, "error")));
	} else if (v) {
		json_t *inst = json_object_get(v, "instances");
		size_t n = json_is_array(inst) ? json_array_size(inst) : 1;
		char span[48] = "until cleared";
		if (duration)
			snprintf(span, sizeof(span), "for %lld s", (long long)duration);
		if (is_set)
			printf("fault on %s set on %zu instance%s: latency %lld ms +-%lld, error rate %g "
			       "(status %lld)%s, %s\n",
			       args[1], n, n == 1 ? "" : "s", (long long)latency, (long long)jitter,
			       error_rate, (long long)status, outage ? ", outage" : "", span);
		else
			printf("fault on %s cleared on %zu instance%s\n", args[1], n, n == 1 ? "" : "s");
		size_t i;
		json_t *f;
		json_array_foreach(json_object_get(v, "failed"), i, f)
		{
			fprintf(stderr, "ecom %s: not changed on %s: %s\n", CMD,
				json_string_value(json_object_get(f, "instance")),
				json_string_value(json_object_get(f, "error")));
			rc = 1;
		}
	}
	json_decref(v);
	return rc;
}
