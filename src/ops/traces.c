/* traces: `ecom trace`. */
#include "ops/traces.h"
#include "core/tracer.h"
#include "ops/cli.h"
#include "ops/waterfall.h"
#include "services/engine.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define CMD "trace"

static const char HELP[] =
	"usage: ecom trace ORDER_ID [--width N] [--json] [--state DIR | --url URL]\n"
	"\n"
	"An order's checkout saga: its state, the steps it took in order (with\n"
	"attempts and the last answer of each), then every span of the order's\n"
	"trace, gathered from every service, as a waterfall: one row per span,\n"
	"indented under its parent, with a bar on a common time axis and its\n"
	"status. Colour on a terminal; plain text when the output is not one or\n"
	"NO_COLOR is set.\n"
	"\n"
	"  --width N   columns of the waterfall (default: the terminal's, else 100)\n"
	"  --json      print the gateway's JSON answer (GET /admin/sagas/ORDER_ID)\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL   the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

static const char *str(const json_t *v, const char *key, const char *def)
{
	const char *s = json_string_value(json_object_get(v, key));
	return s ? s : def;
}

size_t traces_print(FILE *out, const json_t *v, int color, int width)
{
	const json_t *order = json_object_get(v, "order");
	fprintf(out, "order %s  %s", str(v, "order_id", "?"), str(order, "status", "?"));
	if (json_is_string(json_object_get(order, "cancel_reason")))
		fprintf(out, " (%s)", str(order, "cancel_reason", ""));
	fprintf(out, "  saga %s", str(v, "state", "?"));
	if (json_is_string(json_object_get(v, "reason")))
		fprintf(out, " (%s)", str(v, "reason", ""));
	fprintf(out, "\ntrace %s\n\nsteps:\n", str(v, "trace_id", "(none)"));
	size_t i;
	const json_t *st;
	json_array_foreach(json_object_get(v, "steps"), i, st)
	{
		fprintf(out, "  %2zu. %-11s %-10s attempts %-3lld %s", i + 1, str(st, "name", "?"),
			str(st, "status", "?"),
			(long long)json_integer_value(json_object_get(st, "attempts")),
			str(st, "at", ""));
		if (json_is_string(json_object_get(st, "detail")))
			fprintf(out, "  %s", str(st, "detail", ""));
		fputc('\n', out);
	}
	const json_t *arr = json_object_get(v, "spans");
	size_t n = json_array_size(arr), m = 0;
	span *spans = calloc(n ? n : 1, sizeof(*spans));
	for (i = 0; spans && i < n; i++)
		if (span_from_json(json_array_get(arr, i), &spans[m]) == 0)
			m++;
	fprintf(out, "\nspans (%zu):\n", m);
	waterfall_opts o = { .color = color, .width = width };
	if (spans && m)
		waterfall_render(out, spans, m, &o);
	free(spans);
	return m;
}

int traces_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = { CLI_TARGET_OPTIONS,
					      { "width", required_argument, NULL, 'w' },
					      { NULL, 0, NULL, 0 } };
	cli_target t = { 0 };
	int64_t width = 0;
	opterr = 0;
	optind = 0;
	for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		if (c == 'w') {
			if (cli_parse_int(optarg, 60, 1000, &width) != 0)
				return cli_usage(CMD, "--width must be a number of columns from 60 to 1000");
		} else if (!cli_target_opt(c, optarg, &t)) {
			return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return cli_usage(CMD, argc - optind < 1 ? "which order? (ORDER_ID)"
							 : "takes one ORDER_ID");
	const char *id = argv[optind];
	if (!engine_valid_id(id))
		return cli_usage(CMD, "ORDER_ID %s", ENGINE_ID_RULE);
	char path[128];
	snprintf(path, sizeof(path), "/admin/sagas/%s", id);
	json_t *v;
	int rc = cli_admin_json(CMD, &t, "GET", path, NULL, &v);
	if (!v)
		return rc;
	int tty = isatty(STDOUT_FILENO);
	const char *no_color = getenv("NO_COLOR");
	int color = tty && !(no_color && no_color[0]);
	if (!width) {
		struct winsize ws;
		width = tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 60
				? ws.ws_col
				: 100;
	}
	traces_print(stdout, v, color, (int)width);
	size_t i;
	const json_t *u;
	json_array_foreach(json_object_get(v, "unreachable"), i, u)
		fprintf(stderr, "ecom %s: no spans from %s: %s\n", CMD, str(u, "instance", "?"),
			str(u, "error", "?"));
	json_decref(v);
	return rc;
}
