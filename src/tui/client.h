/* client: the operator console's way to the platform: the gateway's URL
 * and the admin token, found as every `ecom` command finds them (--state
 * DIR, or --url with $ECOM_ADMIN_TOKEN) and found again after a lost
 * connection (a platform started anew may listen elsewhere); admin calls
 * with short timeouts, their JSON read; and the console's own customer,
 * signed up on first use, who places synthetic orders. Thread-safe: the
 * console's poller and actor threads share one. Owned: client_new /
 * client_free. */
#ifndef ECOM_TUI_CLIENT_H
#define ECOM_TUI_CLIENT_H

#include <stddef.h>

#include <jansson.h>

#include "net/msg.h"

/* How long one call may take (the UI never waits on one). */
#define CLIENT_TIMEOUT_MS 4000

typedef struct client client;

/* state_dir: the state directory (NULL or "" for $ECOM_STATE or ./var);
 * url: the gateway, when given (--url). NULL when out of memory. */
client *client_new(const char *state_dir, const char *url);
void client_free(client *c);

/* The state directory used (for the log files and instances.json), or
 * NULL when the console was pointed at a URL. Borrowed. */
const char *client_state_dir(const client *c);

/* Finds the gateway and the token again. 0, or ERR_NOT_FOUND with err
 * telling the operator what is missing. */
int client_resolve(client *c, char *err, size_t errlen);
/* The gateway's URL as last resolved, into buf. */
void client_url(client *c, char *buf, size_t len);
/* The admin token as last resolved, into buf. */
void client_token(client *c, char *buf, size_t len);

/* One call through the gateway: method, path (with its query), a JSON body
 * or NULL; with the admin token, or bearer when given; with an
 * Idempotency-Key header when key is not NULL. 0 with resp filled (any
 * status), or the transport's error (ERR_UNAVAILABLE, ERR_TIMEOUT,
 * ERR_IO). resp is initialised here; the caller clears it. */
int client_call(client *c, const char *method, const char *path, const char *body,
		const char *bearer, const char *key, msg_resp *resp);

/* GET path as admin, for a 200 JSON object (*out, a new reference). 0;
 * ERR_NOT_FOUND when the route is not served (404 without a JSON error of
 * the resource: the platform is older than the console); ERR_UNAVAILABLE,
 * ERR_TIMEOUT, ERR_IO for no answer; ERR_FORBIDDEN, ERR_UNAUTH for a
 * refused token; ERR_PARSE, ERR_STATE (another status) otherwise. err
 * says what happened. */
int client_get_json(client *c, const char *path, json_t **out, char *err, size_t errlen);

/* A changing admin call (POST, PUT, DELETE) expecting 200; the API's
 * error message into err otherwise. 0 or as client_get_json. out may be
 * NULL. */
int client_admin(client *c, const char *method, const char *path, const char *body, json_t **out,
		 char *err, size_t errlen);

/* Places one order of sku (qty 1, card tok_visa) as the console's
 * customer, signed up and logged in on first use. 0 with the order's id
 * and status; otherwise an error with err saying why (a 409 for stock is
 * ERR_CONFLICT). */
int client_place_order(client *c, const char *sku, char *order_id, size_t idlen, char *status,
		       size_t stlen, char *err, size_t errlen);

#endif
