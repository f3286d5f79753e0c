/* queue: `ecom queue list|replay`. */
#include "ops/queue.h"
#include "bus/bus.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define CMD "queue"

static const char HELP[] =
	"usage: ecom queue list [--json] [--state DIR | --url URL]\n"
	"       ecom queue replay TOPIC [--consumer NAME] [--json] [--state DIR | --url URL]\n"
	"\n"
	"The event bus's queues, through the running platform's gateway (admin token).\n"
	"\n"
	"  list          one row per topic and consumer: DEPTH (messages waiting:\n"
	"                outbox rows not yet published for the relay row, messages\n"
	"                not yet consumed for a consumer), LAG (the same in\n"
	"                messages as Kafka counts it, and LAG_MS, the age of the\n"
	"                oldest waiting) and DEAD (dead letters)\n"
	"  replay TOPIC  moves TOPIC's dead letters back to their consumer (only\n"
	"                NAME's with --consumer), which delivers them again\n"
	"\n"
	"  --json        print the gateway's JSON answer instead\n"
	"  --state DIR   the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL     the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

static long long num(json_t *row, const char *key)
{
	return (long long)json_integer_value(json_object_get(row, key));
}

static const char *str(json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));
	return s ? s : "";
}

static void print_list(json_t *v)
{
	printf("%-22s %-18s %-14s %8s %8s %9s %6s\n", "TOPIC", "CONSUMER", "SERVICE", "DEPTH", "LAG",
	       "LAG_MS", "DEAD");
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(v, "queues"), i, row)
	{
		char depth[24], lag[24];
		long long d = num(row, "depth"), l = num(row, "lag");
		snprintf(depth, sizeof(depth), d < 0 ? "?" : "%lld", d);
		snprintf(lag, sizeof(lag), l < 0 ? "?" : "%lld", l);
		printf("%-22s %-18s %-14s %8s %8s %9lld %6lld\n", str(row, "topic"),
		       str(row, "consumer"), str(row, "service"), depth, lag, num(row, "lag_ms"),
		       num(row, "dead_letters"));
		if (str(row, "error")[0])
			printf("  %s\n", str(row, "error"));
	}
	json_array_foreach(json_object_get(v, "errors"), i, row)
	{
		fprintf(stderr, "ecom queue: %s: %s\n", str(row, "service"), str(row, "error"));
	}
}

int queue_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "consumer", required_argument, NULL, 'c' },
		{ "state", required_argument, NULL, 'S' },
		{ "url", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL, *url_s = NULL, *consumer = NULL;
	int raw = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': raw = 1; break;
		case 'c': consumer = optarg; break;
		case 'S': state_s = optarg; break;
		case 'U': url_s = optarg; break;
		default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 0)
		return cli_usage(CMD, "missing subcommand: list or replay TOPIC");
	int is_list = strcmp(args[0], "list") == 0, is_replay = strcmp(args[0], "replay") == 0;
	if (!is_list && !is_replay)
		return cli_usage(CMD, "unknown subcommand '%s' (list or replay)", args[0]);
	if (is_list && (nargs > 1 || consumer))
		return cli_usage(CMD, nargs > 1 ? "list takes no argument" : "--consumer is for replay");
	if (is_replay && nargs != 2)
		return cli_usage(CMD, "replay needs exactly one TOPIC");
	if (is_replay && (!bus_valid_name(args[1]) || (consumer && !bus_valid_name(consumer))))
		return cli_usage(CMD, "topic and consumer names are 1 to 63 of a-z 0-9 . - _");
	char url[512], token[256], target[1024];
	if (cli_platform(CMD, state_s, url_s, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	if (is_list)
		snprintf(target, sizeof(target), "%s/admin/queues", url);
	else
		snprintf(target, sizeof(target), "%s/admin/queues/%s/replay%s%s", url, args[1],
			 consumer ? "?consumer=" : "", consumer ? consumer : "");
	http_client_global_init();
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = http_client_simple(is_list ? "GET" : "POST", target, NULL, token, &resp, 15000);
	json_t *v = rc == 0 && resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	int code = 0;
	if (rc != 0) {
		code = cli_fail(CMD, "cannot reach %s: %s", url, err_name(rc));
	} else if (resp.status != 200 || !json_is_object(v)) {
		const char *msg = json_string_value(
			json_object_get(json_object_get(v, "error"), "message"));
		code = cli_fail(CMD, "%s answered HTTP %d%s%s", url, resp.status, msg ? ": " : "",
				msg ? msg : "");
	} else if (raw) {
		printf("%.*s\n", (int)resp.body_len, resp.body);
	} else if (is_list) {
		print_list(v);
	} else {
		printf("%lld dead letters of %s moved back for replay\n", num(v, "moved"), args[1]);
	}
	if (code == 0 && json_array_size(json_object_get(v, "errors")) > 0)
		code = 1;
	json_decref(v);
	msg_resp_clear(&resp);
	http_client_global_cleanup();
	return code;
}
