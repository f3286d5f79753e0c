/* cli: shared command-line helpers. */
#include "ops/cli.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/state.h"

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void vline(const char *cmd, const char *fmt, va_list ap, const char *tail)
{
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (cmd && cmd[0])
		fprintf(stderr, "ecom %s: %s%s\n", cmd, msg, tail);
	else
		fprintf(stderr, "ecom: %s%s\n", msg, tail);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char tail[96];
	if (cmd && cmd[0])
		snprintf(tail, sizeof(tail), " (see 'ecom %s --help')", cmd);
	else
		snprintf(tail, sizeof(tail), " (see 'ecom --help')");
	vline(cmd, fmt, ap, tail);
	va_end(ap);
	return 2;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(cmd, fmt, ap, "");
	va_end(ap);
	return 1;
}

int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s)
		return ERR_INVALID;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return ERR_INVALID;
	*out = v;
	return 0;
}

int cli_is_help(const char *arg)
{
	return arg && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0);
}

int cli_help_if_asked(int argc, char **argv, const char *text)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (cli_is_help(argv[i])) {
			fputs(text, stdout);
			return 0;
		}
	}
	return -1;
}

const char *cli_state_dir(const char *flag)
{
	if (flag && *flag)
		return flag;
	const char *env = getenv("ECOM_STATE");
	return env && *env ? env : "./var";
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *cli_data_dir(void)
{
	const char *env = getenv("ECOM_DATA");
	if (env && *env)
		return env;
	if (is_dir(ECOM_SRCDATADIR))
		return ECOM_SRCDATADIR;
	return ECOM_PKGDATADIR;
}

int cli_self_path(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	if (n <= 0 || (size_t)n >= len - 1)
		return ERR_IO;
	buf[n] = '\0';
	return 0;
}

int cli_platform(const char *cmd, const char *state_flag, const char *url_flag, char *url,
		 size_t urllen, char *token, size_t toklen)
{
	const char *dir = cli_state_dir(state_flag);
	if (url_flag && *url_flag) {
		snprintf(url, urllen, "%s", url_flag);
		size_t n = strlen(url);
		while (n > 0 && url[n - 1] == '/')
			url[--n] = '\0';
		const char *env = getenv("ECOM_ADMIN_TOKEN");
		if (env && *env)
			snprintf(token, toklen, "%s", env);
		else if (state_admin_token(dir, token, toklen) != 0)
			token[0] = '\0';
		return 0;
	}
	if (state_gateway_url(dir, url, urllen) != 0 || !state_running_pid(dir))
		return cli_fail(cmd, "no platform running in %s (start one with 'ecom up', or pass --url)",
				dir);
	if (state_admin_token(dir, token, toklen) != 0)
		return cli_fail(cmd, "no admin token in %s and ECOM_ADMIN_TOKEN is not set", dir);
	return 0;
}

int cli_target_opt(int c, const char *arg, cli_target *t)
{
	switch (c) {
	case 'J': t->json = 1; return 1;
	case 'S': t->state = arg; return 1;
	case 'U': t->url = arg; return 1;
	default: return 0;
	}
}

int cli_admin_request(const char *cmd, const char *state_flag, const char *url_flag,
		      const char *method, const char *path, const char *body, msg_resp *resp)
{
	msg_resp_init(resp);
	char url[512], token[256], full[1024];
	if (cli_platform(cmd, state_flag, url_flag, url, sizeof(url), token, sizeof(token)) != 0)
		return 1;
	snprintf(full, sizeof(full), "%s%s", url, path);
	http_client_global_init();
	int rc = http_client_simple(method, full, body, token, resp, 15000);
	http_client_global_cleanup();
	if (rc != 0)
		return cli_fail(cmd, "cannot reach %s: %s", url, err_name(rc));
	return 0;
}

int cli_api_error(const char *cmd, const msg_resp *resp)
{
	json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	json_t *err = json_object_get(v, "error");
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *code = json_string_value(json_object_get(err, "code"));
	int rc;
	if (msg)
		rc = cli_fail(cmd, "%s (HTTP %d %s)", msg, resp->status, code ? code : "");
	else
		rc = cli_fail(cmd, "the platform answered HTTP %d", resp->status);
	json_decref(v);
	return rc;
}

int cli_admin_json(const char *cmd, const cli_target *t, const char *method, const char *path,
		   const char *body, json_t **out)
{
	*out = NULL;
	msg_resp resp;
	int rc = cli_admin_request(cmd, t->state, t->url, method, path, body, &resp);
	json_t *v = rc == 0 && resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	if (rc == 0 && (resp.status != 200 || !json_is_object(v)))
		rc = cli_api_error(cmd, &resp);
	else if (rc == 0 && t->json)
		printf("%.*s\n", (int)resp.body_len, resp.body);
	else if (rc == 0)
		*out = json_incref(v);
	json_decref(v);
	msg_resp_clear(&resp);
	return rc;
}
