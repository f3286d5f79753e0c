/* router: segment matching of (method, path) against route patterns. */
#include "net/router.h"
#include "core/text.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTER_MAX_SEGS 32
#define ROUTER_MAX_METHODS 16

typedef struct seg {
	const char *text; /* points into route.pattern; NULL for a capture */
	size_t len;
} seg;

typedef struct route {
	char *method;
	char *pattern;
	seg segs[ROUTER_MAX_SEGS];
	int nseg;
	router_fn fn;
	void *ud;
} route;

struct router {
	route *routes;
	int n, cap;
};

router *router_new(void)
{
	return calloc(1, sizeof(router));
}

void router_free(router *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		free(r->routes[i].method);
		free(r->routes[i].pattern);
	}
	free(r->routes);
	free(r);
}

/* Splits pattern (which starts with '/') into segs. "/" is one empty
 * literal segment; any other empty segment is malformed, so "/a/" and
 * "/a//b" are rejected. */
static int parse_pattern(route *rt)
{
	const char *p = rt->pattern;
	if (p[0] != '/')
		return ERR_INVALID;
	if (strcmp(p, "/") == 0) {
		rt->segs[0].text = p + 1;
		rt->segs[0].len = 0;
		rt->nseg = 1;
		return 0;
	}
	int ncap = 0;
	p++;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || rt->nseg >= ROUTER_MAX_SEGS)
			return ERR_INVALID;
		seg *s = &rt->segs[rt->nseg++];
		if (p[0] == '{') {
			/* A capture is the whole segment: "{name}". */
			if (len < 3 || p[len - 1] != '}')
				return ERR_INVALID;
			for (size_t i = 1; i + 1 < len; i++)
				if (p[i] == '{' || p[i] == '}')
					return ERR_INVALID;
			if (++ncap > MSG_MAX_PARAMS)
				return ERR_INVALID;
			s->text = NULL;
			s->len = 0;
		} else {
			for (size_t i = 0; i < len; i++)
				if (p[i] == '{' || p[i] == '}' || p[i] == '?')
					return ERR_INVALID;
			s->text = p;
			s->len = len;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* 1 when both patterns accept exactly the same paths. */
static int same_shape(const route *a, const route *b)
{
	if (a->nseg != b->nseg)
		return 0;
	for (int i = 0; i < a->nseg; i++) {
		const seg *x = &a->segs[i], *y = &b->segs[i];
		if (!x->text != !y->text)
			return 0;
		if (x->text && (x->len != y->len || memcmp(x->text, y->text, x->len) != 0))
			return 0;
	}
	return 1;
}

int router_add(router *r, const char *method, const char *pattern, router_fn fn, void *ud)
{
	if (!r || !method || !method[0] || !pattern || !fn)
		return ERR_INVALID;
	route rt;
	memset(&rt, 0, sizeof rt);
	rt.method = strdup(method);
	rt.pattern = strdup(pattern);
	rt.fn = fn;
	rt.ud = ud;
	int rc = (rt.method && rt.pattern) ? parse_pattern(&rt) : ERR_NOMEM;
	for (int i = 0; rc == 0 && i < r->n; i++)
		if (strcmp(r->routes[i].method, method) == 0 && same_shape(&r->routes[i], &rt))
			rc = ERR_CONFLICT;
	if (rc == 0 && r->n == r->cap) {
		int ncap = r->cap ? r->cap * 2 : 16;
		route *nr = realloc(r->routes, (size_t)ncap * sizeof *nr);
		if (!nr) {
			rc = ERR_NOMEM;
		} else {
			r->routes = nr;
			r->cap = ncap;
		}
	}
	if (rc) {
		free(rt.method);
		free(rt.pattern);
		return rc;
	}
	r->routes[r->n++] = rt;
	return 0;
}

/* The path split into segments, pointing into the path (no copies). */
typedef struct path_segs {
	const char *s[ROUTER_MAX_SEGS];
	size_t len[ROUTER_MAX_SEGS];
	int n;
} path_segs;

static int split_path(const char *path, path_segs *ps)
{
	ps->n = 0;
	if (!path || path[0] != '/')
		return -1;
	const char *p = path + 1;
	for (;;) {
		if (ps->n >= ROUTER_MAX_SEGS)
			return -1;
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		ps->s[ps->n] = p;
		ps->len[ps->n] = len;
		ps->n++;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

static int path_matches(const route *rt, const path_segs *ps)
{
	if (rt->nseg != ps->n)
		return 0;
	for (int i = 0; i < ps->n; i++) {
		const seg *s = &rt->segs[i];
		if (s->text) {
			if (s->len != ps->len[i] || memcmp(s->text, ps->s[i], s->len) != 0)
				return 0;
		} else if (ps->len[i] == 0) {
			return 0; /* an empty segment never fills a capture */
		}
	}
	return 1;
}

/* > 0 when a is more specific than b: at the first position where one has a
 * literal and the other a capture, the literal wins. */
static int more_specific(const route *a, const route *b)
{
	for (int i = 0; i < a->nseg && i < b->nseg; i++) {
		int la = a->segs[i].text != NULL, lb = b->segs[i].text != NULL;
		if (la != lb)
			return la ? 1 : -1;
	}
	return 0;
}

/* Percent-decodes a path segment ('+' stays literal in paths; a malformed
 * escape stays literal). NULL on allocation failure or an encoded NUL. */
static char *decode_segment(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && text_hexval(s[i + 1]) >= 0 && text_hexval(s[i + 2]) >= 0) {
			char c = (char)(text_hexval(s[i + 1]) * 16 + text_hexval(s[i + 2]));
			if (c == '\0') {
				free(out);
				return NULL;
			}
			out[o++] = c;
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void clear_params(msg_req *req)
{
	for (int i = 0; i < req->nparams; i++) {
		free(req->params[i]);
		req->params[i] = NULL;
	}
	req->nparams = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

enum router_match router_match(const router *r, msg_req *req, router_fn *fn, void **ud,
			       char *allow, size_t allowlen)
{
	if (allow && allowlen)
		allow[0] = '\0';
	if (!req)
		return ROUTER_NOT_FOUND;
	clear_params(req);
	req->route = NULL;
	path_segs ps;
	if (!r || !req->method || split_path(req->path, &ps) != 0)
		return ROUTER_NOT_FOUND;

	const route *best = NULL;
	const char *methods[ROUTER_MAX_METHODS];
	int nmethods = 0, any = 0;
	for (int i = 0; i < r->n; i++) {
		const route *rt = &r->routes[i];
		if (!path_matches(rt, &ps))
			continue;
		any = 1;
		if (strcmp(rt->method, req->method) == 0) {
			if (!best || more_specific(rt, best) > 0)
				best = rt;
			continue;
		}
		int seen = 0;
		for (int k = 0; k < nmethods; k++)
			if (strcmp(methods[k], rt->method) == 0)
				seen = 1;
		if (!seen && nmethods < ROUTER_MAX_METHODS)
			methods[nmethods++] = rt->method;
	}
	if (!any)
		return ROUTER_NOT_FOUND;
	if (!best) {
		if (allow && allowlen) {
			qsort(methods, (size_t)nmethods, sizeof methods[0], cmp_str);
			size_t off = 0;
			for (int k = 0; k < nmethods && off < allowlen; k++) {
				int w = snprintf(allow + off, allowlen - off, "%s%s", k ? ", " : "",
						 methods[k]);
				if (w < 0)
					break;
				off += (size_t)w;
			}
		}
		return ROUTER_METHOD_NOT_ALLOWED;
	}

	for (int i = 0; i < best->nseg; i++) {
		if (best->segs[i].text)
			continue;
		char *v = decode_segment(ps.s[i], ps.len[i]);
		if (!v) {
			clear_params(req);
			return ROUTER_NOT_FOUND;
		}
		req->params[req->nparams++] = v;
	}
	req->route = best->pattern;
	if (fn)
		*fn = best->fn;
	if (ud)
		*ud = best->ud;
	return ROUTER_OK;
}

void router_dispatch(const router *r, msg_req *req, msg_resp *resp)
{
	router_fn fn = NULL;
	void *ud = NULL;
	char allow[256];
	char msg[512];
	const char *method = req && req->method ? req->method : "?";
	const char *path = req && req->path ? req->path : "?";
	switch (router_match(r, req, &fn, &ud, allow, sizeof allow)) {
	case ROUTER_OK:
		resp->route = req->route;
		fn(ud, req, resp);
		return;
	case ROUTER_METHOD_NOT_ALLOWED:
		snprintf(msg, sizeof msg, "method %s not allowed for %s", method, path);
		msg_resp_error(resp, 405, "method_not_allowed", msg, NULL);
		msg_resp_set_header(resp, "Allow", allow);
		return;
	case ROUTER_NOT_FOUND:
	default:
		snprintf(msg, sizeof msg, "no route for %s %s", method, path);
		msg_resp_error(resp, 404, "not_found", msg, NULL);
		return;
	}
}
