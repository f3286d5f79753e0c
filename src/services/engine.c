/* engine: the table of engines and the helpers they share. */
#include "services/engine.h"
#include "core/err.h"
#include "services/catalog.h"
#include "services/gateway.h"

#include <string.h>

static const engine_def *const engines[] = {
	&gateway_engine,
	&catalog_engine,
	NULL,
};

static const char *const platform_services[] = { "catalog", NULL };

const engine_def *engine_find(const char *name)
{
	for (int i = 0; name && engines[i]; i++)
		if (strcmp(engines[i]->name, name) == 0)
			return engines[i];
	return NULL;
}

const char *const *engine_platform_services(void) { return platform_services; }

/* Compares without an early exit, so the time taken does not tell how much
 * of a guessed token was right. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);
	for (size_t i = 0; i < lb; i++)
		diff |= (unsigned char)(a[i < la ? i : 0] ^ b[i]);
	return diff == 0;
}

int engine_require_admin(const engine_ctx *ctx, const msg_req *req, msg_resp *resp)
{
	const char *auth = msg_req_header(req, "Authorization");
	if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
		msg_resp_error(resp, 401, "unauthenticated", "this route needs the admin token", NULL);
		msg_resp_set_header(resp, "WWW-Authenticate", "Bearer");
		return ERR_UNAUTH;
	}
	if (!ctx->admin_token || !ctx->admin_token[0] || !same_secret(auth + 7, ctx->admin_token)) {
		msg_resp_error(resp, 401, "unauthenticated", "the token is not valid", NULL);
		msg_resp_set_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		return ERR_UNAUTH;
	}
	return 0;
}

int engine_bad_field(msg_resp *resp, const char *field, const char *message)
{
	msg_resp_error(resp, 400, "invalid_argument", message, json_pack("{s:s}", "field", field));
	return ERR_INVALID;
}

void engine_store_error(const engine_ctx *ctx, msg_resp *resp, int code, const char *what)
{
	log_error(ctx->log, "store error during %s: %s (%s)", what, err_name(code),
		  ctx->store ? store_errmsg(ctx->store) : "");
	if (code == ERR_UNAVAILABLE || code == ERR_BUSY) {
		msg_resp_error(resp, 503, "unavailable", "the database is unavailable; try again",
			       NULL);
		msg_resp_set_header(resp, "Retry-After", "1");
	} else {
		msg_resp_error(resp, 500, "internal", "internal error", NULL);
	}
}
