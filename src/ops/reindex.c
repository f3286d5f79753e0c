/* reindex: `ecom search reindex`. */
#include "ops/reindex.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define CMD "search"
#define MAX_INSTANCES 64
#define POLL_MS 200

static const char HELP[] =
	"usage: ecom search reindex [--timeout SECONDS] [--no-wait] [--state DIR | --url URL]\n"
	"\n"
	"Has every search instance of the running platform rebuild its index from\n"
	"the catalog (each pages over the catalog's products through the gateway,\n"
	"then removes what the catalog no longer has), and waits until all are done.\n"
	"Searches keep being answered meanwhile. An instance already rebuilding\n"
	"just carries on.\n"
	"\n"
	"  --timeout S  give up waiting after S seconds (default 3600); exit 1\n"
	"  --no-wait    start the rebuilds and return\n"
	"  --state DIR  the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL    the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

typedef struct instance {
	char id[64];
	char addr[256];
	int64_t gen; /* the generation being built */
	int done;
} instance;

/* GET or POST url with the admin token; the JSON object answered with
 * want, else NULL with the reason printed. */
static json_t *call(const char *method, const char *url, const char *token, int want)
{
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = http_client_simple(method, url, NULL, token, &resp, 10000);
	json_t *v = rc == 0 && resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	if (rc != 0)
		cli_fail(CMD, "cannot reach %s: %s", url, err_name(rc));
	else if (resp.status != want || !json_is_object(v)) {
		const char *msg =
			json_string_value(json_object_get(json_object_get(v, "error"), "message"));
		cli_fail(CMD, "%s %s answered HTTP %d%s%s", method, url, resp.status, msg ? ": " : "",
			 msg ? msg : "");
		json_decref(v);
		v = NULL;
	}
	msg_resp_clear(&resp);
	return v;
}

/* call() of route on instance in. */
static json_t *call_instance(const instance *in, const char *method, const char *route,
			     const char *token, int want)
{
	char target[400];
	snprintf(target, sizeof(target), "%s%s", in->addr, route);
	return call(method, target, token, want);
}

/* The search instances the gateway knows. */
static int find_instances(const char *url, const char *token, instance *out, int max)
{
	char target[600];
	snprintf(target, sizeof(target), "%s/admin/services", url);
	json_t *v = call("GET", target, token, 200);
	if (!v)
		return -1;
	int n = 0;
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(json_object_get(v, "services"), i, svc) {
		const char *name = json_string_value(json_object_get(svc, "name"));
		if (!name || strcmp(name, "search") != 0)
			continue;
		json_array_foreach(json_object_get(svc, "instances"), j, in) {
			const char *id = json_string_value(json_object_get(in, "id"));
			const char *addr = json_string_value(json_object_get(in, "addr"));
			if (!id || !addr || n == max)
				continue;
			snprintf(out[n].id, sizeof(out[n].id), "%s", id);
			snprintf(out[n].addr, sizeof(out[n].addr), "%s", addr);
			n++;
		}
	}
	json_decref(v);
	return n;
}

static int64_t jint(json_t *o, const char *key)
{
	return (int64_t)json_integer_value(json_object_get(o, key));
}

int reindex_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "state", required_argument, NULL, 'S' },
		{ "url", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL, *url_s = NULL;
	int64_t timeout_s = 3600;
	int wait = 1;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (cli_parse_int(optarg, 1, 86400, &timeout_s))
				return cli_usage(CMD, "--timeout needs seconds from 1 to 86400");
			break;
		case 'n': wait = 0; break;
		case 'S': state_s = optarg; break;
		case 'U': url_s = optarg; break;
		default:
			return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage(CMD, "missing subcommand: reindex");
	if (strcmp(argv[optind], "reindex") != 0)
		return cli_usage(CMD, "unknown subcommand '%s' (reindex)", argv[optind]);
	if (optind + 1 < argc)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind + 1]);
	char url[512], token[256];
	if (cli_platform(CMD, state_s, url_s, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	http_client_global_init();
	instance insts[MAX_INSTANCES];
	int n = find_instances(url, token, insts, MAX_INSTANCES);
	int rc = 0;
	if (n == 0)
		rc = cli_fail(CMD, "the platform at %s has no search instance", url);
	for (int i = 0; rc == 0 && i < n; i++) {
		json_t *v = call_instance(&insts[i], "POST", "/v1/search/_reindex", token, 202);
		if (!v) {
			rc = 1;
			break;
		}
		insts[i].gen = jint(v, "generation");
		fprintf(stderr, "%s: rebuilding generation %" PRId64 "\n", insts[i].id, insts[i].gen);
		json_decref(v);
	}
	int64_t t0 = clock_mono_us(), deadline = t0 + timeout_s * 1000000;
	int left = rc == 0 && wait ? n : 0;
	while (rc == 0 && left > 0) {
		for (int i = 0; rc == 0 && i < n; i++) {
			if (insts[i].done)
				continue;
			json_t *v = call_instance(&insts[i], "GET", "/v1/search/_status", token, 200);
			if (!v) {
				rc = 1;
				break;
			}
			json_t *ri = json_object_get(v, "reindex");
			const char *state = json_string_value(json_object_get(ri, "state"));
			if (state && strcmp(state, "IDLE") == 0 && jint(v, "generation") >= insts[i].gen) {
				insts[i].done = 1;
				left--;
				printf("%s: %" PRId64 " products indexed (%" PRId64 " copied, %" PRId64
				       " removed) in %.1f s\n",
				       insts[i].id, jint(v, "documents"), jint(ri, "copied"),
				       jint(ri, "removed"), (double)(clock_mono_us() - t0) / 1e6);
			}
			json_decref(v);
		}
		if (rc == 0 && left > 0) {
			if (clock_mono_us() > deadline)
				rc = cli_fail(CMD, "%d instance(s) still rebuilding after %" PRId64 " s",
					      left, timeout_s);
			else
				usleep(POLL_MS * 1000);
		}
	}
	http_client_global_cleanup();
	return rc ? 1 : 0;
}
