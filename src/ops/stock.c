/* stock: `ecom inventory get|set`. */
#include "ops/stock.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define CMD "inventory"
#define ON_HAND_MAX 1000000000LL

static const char HELP[] =
	"usage: ecom inventory get SKU [--json] [--state DIR | --url URL]\n"
	"       ecom inventory set SKU N [--json] [--state DIR | --url URL]\n"
	"\n"
	"Shows or sets the stock of one sku through the running platform's gateway.\n"
	"\n"
	"  get SKU     prints 'SKU on_hand=N reserved=N available=N'\n"
	"  set SKU N   sets on_hand to N (0 to 1000000000) with the admin token;\n"
	"              creates the sku's stock if it has none; refused (409) below\n"
	"              what is reserved\n"
	"\n"
	"  --json      print the service's JSON answer instead\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n"
	"  --url URL   the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n";

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static void escape(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < len; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~", *p)) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

/* Prints the answer of a successful call, or the API's error; the exit
 * code. */
static int report(const char *target, int rc, const msg_resp *resp, int raw)
{
	if (rc != 0)
		return cli_fail(CMD, "cannot reach %s: %s", target, err_name(rc));
	json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	if (resp->status == 200 && json_is_object(v)) {
		if (raw)
			printf("%.*s\n", (int)resp->body_len, resp->body);
		else
			printf("%s on_hand=%lld reserved=%lld available=%lld\n",
			       json_string_value(json_object_get(v, "sku")),
			       (long long)json_integer_value(json_object_get(v, "on_hand")),
			       (long long)json_integer_value(json_object_get(v, "reserved")),
			       (long long)json_integer_value(json_object_get(v, "available")));
		json_decref(v);
		return 0;
	}
	json_t *err = json_object_get(v, "error");
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *code = json_string_value(json_object_get(err, "code"));
	if (msg)
		rc = cli_fail(CMD, "%s (HTTP %d %s)", msg, resp->status, code ? code : "");
	else
		rc = cli_fail(CMD, "%s answered HTTP %d", target, resp->status);
	json_decref(v);
	return rc;
}

int stock_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "state", required_argument, NULL, 'S' },
		{ "url", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL, *url_s = NULL;
	int raw = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': raw = 1; break;
		case 'S': state_s = optarg; break;
		case 'U': url_s = optarg; break;
		default: {
			const char *bad = argv[optind - 1];
			if (bad[0] == '-' && bad[1] >= '0' && bad[1] <= '9')
				return cli_usage(CMD, "N must be a whole number from 0 to %lld",
						 ON_HAND_MAX);
			return cli_usage(CMD, "unknown or incomplete option '%s'", bad);
		}
		}
	}
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 0)
		return cli_usage(CMD, "missing subcommand: get SKU or set SKU N");
	int is_get = strcmp(args[0], "get") == 0, is_set = strcmp(args[0], "set") == 0;
	if (!is_get && !is_set)
		return cli_usage(CMD, "unknown subcommand '%s' (get or set)", args[0]);
	if (nargs < 2 || !args[1][0])
		return cli_usage(CMD, "%s needs a SKU", args[0]);
	int64_t n = 0;
	if (is_get && nargs > 2)
		return cli_usage(CMD, "unexpected argument '%s'", args[2]);
	if (is_set) {
		if (nargs < 3)
			return cli_usage(CMD, "set needs SKU and N");
		if (nargs > 3)
			return cli_usage(CMD, "unexpected argument '%s'", args[3]);
		if (cli_parse_int(args[2], 0, ON_HAND_MAX, &n))
			return cli_usage(CMD, "N must be a whole number from 0 to %lld", ON_HAND_MAX);
	}
	if (strlen(args[1]) > 200)
		return cli_usage(CMD, "SKU is too long");
	char url[512], token[256];
	if (cli_platform(CMD, state_s, url_s, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	char sku[640], target[1200], body[64];
	escape(args[1], sku, sizeof(sku));
	snprintf(target, sizeof(target), "%s/v1/inventory/%s", url, sku);
	snprintf(body, sizeof(body), "{\"on_hand\":%lld}", (long long)n);
	http_client_global_init();
	msg_resp resp;
	msg_resp_init(&resp);
	int rc = http_client_simple(is_set ? "PUT" : "GET", target, is_set ? body : NULL,
				    is_set ? token : NULL, &resp, 10000);
	int code = report(target, rc, &resp, raw);
	msg_resp_clear(&resp);
	http_client_global_cleanup();
	return code;
}
