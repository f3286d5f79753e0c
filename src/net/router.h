/* router: maps (method, path) to a handler. Patterns are literal segments
 * and {name} captures of one segment each: "/v1/products/{sku}". A path that
 * matches a pattern under another method gives 405 with the Allow list.
 * Built once, then read-only and thread-safe. */
#ifndef ECOM_ROUTER_H
#define ECOM_ROUTER_H

#include <stddef.h>
#include "net/msg.h"

typedef void (*router_fn)(void *ud, msg_req *req, msg_resp *resp);

typedef struct router router;

enum router_match {
	ROUTER_OK = 0,
	ROUTER_NOT_FOUND = 1,
	ROUTER_METHOD_NOT_ALLOWED = 2
};

/* A new empty router. Owned by the caller: router_free(). */
router *router_new(void);
void router_free(router *r);

/* Adds a route. pattern is copied. ERR_INVALID on a malformed pattern
 * (not starting with '/', empty capture name, more than MSG_MAX_PARAMS
 * captures). */
int router_add(router *r, const char *method, const char *pattern, router_fn fn, void *ud);

/* Finds the route for req: on ROUTER_OK sets *fn, *ud, req->route and the
 * captures (URL-decoded) in req->params. On ROUTER_METHOD_NOT_ALLOWED writes
 * the allowed methods ("GET, PUT") into allow. */
enum router_match router_match(const router *r, msg_req *req, router_fn *fn, void **ud,
			       char *allow, size_t allowlen);

/* Matches and calls the handler, or fills resp with 404 not_found or 405
 * method_not_allowed (with the Allow header). */
void router_dispatch(const router *r, msg_req *req, msg_resp *resp);

#endif
