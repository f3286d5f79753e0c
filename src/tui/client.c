/* client: see client.h. */
#include "tui/client.h"
#include "core/err.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "ops/cli.h"
#include "ops/state.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct client {
	pthread_mutex_t mu;
	char state_dir[CLI_PATH_MAX]; /* "" with a --url */
	char url_flag[512];
	char url[512];
	char token[256];
	/* the console's customer */
	pthread_mutex_t user_mu;
	char email[96];
	char user_token[1024];
	uint64_t nonce;
	unsigned long orders;
};

client *client_new(const char *state_dir, const char *url)
{
	client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->user_mu, NULL);
	if (url && *url) {
		snprintf(c->url_flag, sizeof(c->url_flag), "%s", url);
		size_t n = strlen(c->url_flag);
		while (n > 0 && c->url_flag[n - 1] == '/')
			c->url_flag[--n] = '\0';
	}
	/* With --url, a --state (or $ECOM_STATE) still names where the logs are. */
	if (!c->url_flag[0] || (state_dir && *state_dir))
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", cli_state_dir(state_dir));
	c->nonce = rng_os_seed();
	return c;
}

void client_free(client *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->user_mu);
	free(c);
}

const char *client_state_dir(const client *c)
{
	return c->state_dir[0] ? c->state_dir : NULL;
}

int client_resolve(client *c, char *err, size_t errlen)
{
	char url[512] = "", token[256] = "";
	int rc = 0;
	if (c->url_flag[0]) {
		snprintf(url, sizeof(url), "%s", c->url_flag);
		const char *env = getenv("ECOM_ADMIN_TOKEN");
		if (env && *env)
			snprintf(token, sizeof(token), "%s", env);
		else if (!c->state_dir[0] || state_admin_token(c->state_dir, token, sizeof(token)) != 0)
			token[0] = '\0';
	} else if (state_gateway_url(c->state_dir, url, sizeof(url)) != 0) {
		snprintf(err, errlen, "no platform in %s (ecom up --state %s)", c->state_dir,
			 c->state_dir);
		rc = ERR_NOT_FOUND;
	} else if (state_admin_token(c->state_dir, token, sizeof(token)) != 0) {
		snprintf(err, errlen, "no admin token in %s and ECOM_ADMIN_TOKEN is not set",
			 c->state_dir);
		rc = ERR_NOT_FOUND;
	}
	if (rc == 0) {
		pthread_mutex_lock(&c->mu);
		snprintf(c->url, sizeof(c->url), "%s", url);
		snprintf(c->token, sizeof(c->token), "%s", token);
		pthread_mutex_unlock(&c->mu);
	}
	return rc;
}

void client_url(client *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->url);
	pthread_mutex_unlock(&c->mu);
}

void client_token(client *c, char *buf, size_t len)
{
	pthread_mutex_lock(&c->mu);
	snprintf(buf, len, "%s", c->token);
	pthread_mutex_unlock(&c->mu);
}

int client_call(client *c, const char *method, const char *path, const char *body,
		const char *bearer, const char *key, msg_resp *resp)
{
	msg_resp_init(resp);
	char url[512], token[256], auth[1100];
	pthread_mutex_lock(&c->mu);
	snprintf(url, sizeof(url), "%s", c->url);
	snprintf(token, sizeof(token), "%s", c->token);
	pthread_mutex_unlock(&c->mu);
	if (!url[0])
		return ERR_UNAVAILABLE;
	msg_req req;
	if (msg_req_init(&req, method, path) != 0)
		return ERR_NOMEM;
	const char *tok = bearer ? bearer : token;
	int rc = 0;
	if (tok[0]) {
		snprintf(auth, sizeof(auth), "Bearer %s", tok);
		rc = msg_req_add_header(&req, "Authorization", auth);
	}
	if (rc == 0 && key)
		rc = msg_req_add_header(&req, "Idempotency-Key", key);
	if (rc == 0 && body) {
		rc = msg_req_add_header(&req, "Content-Type", "application/json");
		if (rc == 0)
			rc = msg_req_set_body(&req, body, strlen(body));
	}
	if (rc == 0) {
		http_call_opts o = { .connect_timeout_ms = 1000, .timeout_ms = CLIENT_TIMEOUT_MS };
		rc = http_client_do(url, &req, resp, &o);
	}
	msg_req_clear(&req);
	return rc;
}

/* The API error's message in resp's body, or "HTTP N". */
static void api_error(const msg_resp *resp, char *err, size_t errlen)
{
	json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	const char *msg =
		json_string_value(json_object_get(json_object_get(v, "error"), "message"));
	if (msg)
		snprintf(err, errlen, "%s (HTTP %d)", msg, resp->status);
	else
		snprintf(err, errlen, "the platform answered HTTP %d", resp->status);
	json_decref(v);
}

static int status_error(int status)
{
	switch (status) {
	case 401: return ERR_UNAUTH;
	case 403: return ERR_FORBIDDEN;
	case 404: return ERR_NOT_FOUND;
	case 409: return ERR_CONFLICT;
	case 503: return ERR_UNAVAILABLE;
	case 504: return ERR_TIMEOUT;
	default: return ERR_STATE;
	}
}

static int answer(client *c, int rc, const msg_resp *resp, json_t **out, char *err,
		  size_t errlen)
{
	if (rc != 0) {
		char url[512];
		client_url(c, url, sizeof(url));
		snprintf(err, errlen, "cannot reach %s: %s", url[0] ? url : "the gateway",
			 err_name(rc));
		return rc;
	}
	if (resp->status != 200) {
		api_error(resp, err, errlen);
		return status_error(resp->status);
	}
	json_t *v = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	if (!json_is_object(v)) {
		json_decref(v);
		snprintf(err, errlen, "the answer is not a JSON object");
		return ERR_PARSE;
	}
	if (out)
		*out = v;
	else
		json_decref(v);
	return 0;
}

int client_get_json(client *c, const char *path, json_t **out, char *err, size_t errlen)
{
	msg_resp resp;
	int rc = client_call(c, "GET", path, NULL, NULL, NULL, &resp);
	rc = answer(c, rc, &resp, out, err, errlen);
	msg_resp_clear(&resp);
	return rc;
}

int client_admin(client *c, const char *method, const char *path, const char *body, json_t **out,
		 char *err, size_t errlen)
{
	msg_resp resp;
	int rc = client_call(c, method, path, body, NULL, NULL, &resp);
	rc = answer(c, rc, &resp, out, err, errlen);
	msg_resp_clear(&resp);
	return rc;
}

/* ---- the console's customer ----------------------------------------------------- */

#define USER_PASSWORD "console-customer-1"

/* Signs the customer up (once; a 409 means it exists) and logs in. Under
 * user_mu. */
static int sign_in(client *c, char *err, size_t errlen)
{
	if (!c->email[0])
		snprintf(c->email, sizeof(c->email), "console-%d-%llx@example.com", (int)getpid(),
			 (unsigned long long)(c->nonce & 0xffffffffffULL));
	char body[256];
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\",\"name\":\"Console\"}",
		 c->email, USER_PASSWORD);
	msg_resp resp;
	int rc = client_call(c, "POST", "/v1/auth/signup", body, "", NULL, &resp);
	if (rc == 0 && resp.status != 201 && resp.status != 409) {
		api_error(&resp, err, errlen);
		rc = status_error(resp.status);
	} else if (rc != 0) {
		snprintf(err, errlen, "sign-up: %s", err_name(rc));
	}
	msg_resp_clear(&resp);
	if (rc)
		return rc;
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", c->email,
		 USER_PASSWORD);
	rc = client_call(c, "POST", "/v1/auth/login", body, "", NULL, &resp);
	json_t *v = rc == 0 && resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	const char *tok = json_string_value(json_object_get(v, "access_token"));
	if (rc != 0) {
		snprintf(err, errlen, "login: %s", err_name(rc));
	} else if (resp.status != 200 || !tok) {
		api_error(&resp, err, errlen);
		rc = status_error(resp.status);
	} else {
		snprintf(c->user_token, sizeof(c->user_token), "%s", tok);
	}
	json_decref(v);
	msg_resp_clear(&resp);
	return rc;
}

int client_place_order(client *c, const char *sku, char *order_id, size_t idlen, char *status,
		       size_t stlen, char *err, size_t errlen)
{
	char token[1024], key[96], body[256];
	pthread_mutex_lock(&c->user_mu);
	int rc = c->user_token[0] ? 0 : sign_in(c, err, errlen);
	snprintf(token, sizeof(token), "%s", c->user_token);
	snprintf(key, sizeof(key), "console-%llx-%lu", (unsigned long long)c->nonce, ++c->orders);
	pthread_mutex_unlock(&c->user_mu);
	if (rc)
		return rc;
	snprintf(body, sizeof(body),
		 "{\"items\":[{\"sku\":\"%s\",\"qty\":1}],"
		 "\"payment\":{\"method\":\"card\",\"token\":\"tok_visa\"}}",
		 sku);
	msg_resp resp;
	rc = client_call(c, "POST", "/v1/orders", body, token, key, &resp);
	if (rc == 0 && resp.status == 401) {
		/* The token expired (or the platform is a new one): once more. */
		msg_resp_clear(&resp);
		pthread_mutex_lock(&c->user_mu);
		c->user_token[0] = '\0';
		rc = sign_in(c, err, errlen);
		snprintf(token, sizeof(token), "%s", c->user_token);
		pthread_mutex_unlock(&c->user_mu);
		if (rc)
			return rc;
		rc = client_call(c, "POST", "/v1/orders", body, token, key, &resp);
	}
	json_t *v = rc == 0 && resp.body ? json_loadb(resp.body, resp.body_len, 0, NULL) : NULL;
	const char *id = json_string_value(json_object_get(v, "order_id"));
	if (rc != 0) {
		snprintf(err, errlen, "no answer: %s", err_name(rc));
	} else if ((resp.status != 201 && resp.status != 202) || !id) {
		api_error(&resp, err, errlen);
		rc = status_error(resp.status);
	} else {
		snprintf(order_id, idlen, "%s", id);
		const char *st = json_string_value(json_object_get(v, "status"));
		snprintf(status, stlen, "%s", st ? st : "?");
	}
	json_decref(v);
	msg_resp_clear(&resp);
	return rc;
}
