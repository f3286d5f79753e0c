/* msg: request/response plain data, query decoding and the API error shape. */
#include "net/msg.h"
#include "core/text.h"
#include "core/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Decodes n bytes of s (form encoding: '+' is a space, %XX a byte; a
 * malformed escape stays literal) into out, which has room for n + 1. */
static size_t form_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && text_hexval(s[i + 1]) >= 0 &&
			   text_hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(text_hexval(s[i + 1]) * 16 + text_hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return o;
}

/* 1 when the form-encoded key (klen bytes) decodes to exactly name. */
static int key_equals(const char *key, size_t klen, const char *name, size_t nlen)
{
	size_t o = 0;
	for (size_t i = 0; i < klen; i++, o++) {
		char c = key[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%' && i + 2 < klen && text_hexval(key[i + 1]) >= 0 &&
			   text_hexval(key[i + 2]) >= 0) {
			c = (char)(text_hexval(key[i + 1]) * 16 + text_hexval(key[i + 2]));
			i += 2;
		}
		if (o >= nlen || name[o] != c)
			return 0;
	}
	return o == nlen;
}

int msg_req_init(msg_req *req, const char *method, const char *path_and_query)
{
	if (!req || !method || !path_and_query)
		return ERR_INVALID;
	memset(req, 0, sizeof *req);
	const char *q = strchr(path_and_query, '?');
	size_t plen = q ? (size_t)(q - path_and_query) : strlen(path_and_query);
	req->method = strdup(method);
	req->path = dup_n(path_and_query, plen);
	if (q)
		req->query = strdup(q + 1);
	if (!req->method || !req->path || (q && !req->query)) {
		msg_req_clear(req);
		return ERR_NOMEM;
	}
	return 0;
}

void msg_req_clear(msg_req *req)
{
	if (!req)
		return;
	free(req->method);
	free(req->path);
	free(req->query);
	for (int i = 0; i < req->nheaders; i++) {
		free(req->headers[i].name);
		free(req->headers[i].value);
	}
	free(req->body);
	for (int i = 0; i < req->nparams; i++)
		free(req->params[i]);
	memset(req, 0, sizeof *req);
}

/* Appends copies of name and value to a header array of MSG_MAX_HEADERS. */
static int headers_append(msg_header *h, int *n, const char *name, const char *value)
{
	if (*n >= MSG_MAX_HEADERS)
		return ERR_TOO_LARGE;
	char *nc = strdup(name), *vc = strdup(value);
	if (!nc || !vc) {
		free(nc);
		free(vc);
		return ERR_NOMEM;
	}
	h[*n].name = nc;
	h[*n].value = vc;
	(*n)++;
	return 0;
}

int msg_req_add_header(msg_req *req, const char *name, const char *value)
{
	if (!req || !name || !value)
		return ERR_INVALID;
	return headers_append(req->headers, &req->nheaders, name, value);
}

int msg_req_set_header(msg_req *req, const char *name, const char *value)
{
	int found = !value;
	for (int i = 0; i < req->nheaders;) {
		msg_header *h = &req->headers[i];
		if (strcasecmp(h->name, name) != 0) {
			i++;
		} else if (!found) {
			char *v = strdup(value);
			if (!v)
				return ERR_NOMEM;
			free(h->value);
			h->value = v;
			found = 1;
			i++;
		} else {
			free(h->name);
			free(h->value);
			memmove(h, h + 1, (size_t)(req->nheaders - i - 1) * sizeof(*h));
			req->nheaders--;
		}
	}
	return found ? 0 : msg_req_add_header(req, name, value);
}

int msg_req_set_body(msg_req *req, const char *body, size_t len)
{
	if (!req || (len && !body))
		return ERR_INVALID;
	char *b = NULL;
	if (len) {
		b = dup_n(body, len);
		if (!b)
			return ERR_NOMEM;
	}
	free(req->body);
	req->body = b;
	req->body_len = len;
	return 0;
}

static const char *find_header(const msg_header *h, int n, const char *name)
{
	if (!name)
		return NULL;
	for (int i = 0; i < n; i++)
		if (h[i].name && strcasecmp(h[i].name, name) == 0)
			return h[i].value;
	return NULL;
}

const char *msg_req_header(const msg_req *req, const char *name)
{
	return req ? find_header(req->headers, req->nheaders, name) : NULL;
}

int msg_req_query(const msg_req *req, const char *name, char *buf, size_t len)
{
	if (!req || !name)
		return ERR_INVALID;
	if (!req->query)
		return 0;
	size_t nlen = strlen(name);
	const char *p = req->query;
	while (*p) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', plen);
		size_t klen = eq ? (size_t)(eq - p) : plen;
		if (key_equals(p, klen, name, nlen)) {
			const char *v = eq ? eq + 1 : p + plen;
			size_t vlen = eq ? plen - klen - 1 : 0;
			char *tmp = malloc(vlen + 1);
			if (!tmp)
				return ERR_NOMEM;
			size_t vd = form_decode(v, vlen, tmp);
			int rc = 1;
			if (!buf || vd + 1 > len)
				rc = ERR_TOO_LARGE;
			else
				memcpy(buf, tmp, vd + 1);
			free(tmp);
			return rc;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

const char *msg_req_param(const msg_req *req, int i)
{
	if (!req || i < 0 || i >= req->nparams)
		return NULL;
	return req->params[i];
}

void msg_resp_init(msg_resp *resp)
{
	if (resp)
		memset(resp, 0, sizeof *resp);
}

void msg_resp_clear(msg_resp *resp)
{
	if (!resp)
		return;
	free(resp->body);
	for (int i = 0; i < resp->nheaders; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	memset(resp, 0, sizeof *resp);
}

int msg_resp_set_header(msg_resp *resp, const char *name, const char *value)
{
	if (!resp || !name)
		return ERR_INVALID;
	for (int i = 0; i < resp->nheaders; i++) {
		if (strcasecmp(resp->headers[i].name, name) == 0 && !value) {
			free(resp->headers[i].name);
			free(resp->headers[i].value);
			resp->headers[i] = resp->headers[--resp->nheaders];
			return 0;
		}
		if (strcasecmp(resp->headers[i].name, name) == 0) {
			char *v = strdup(value);
			if (!v)
				return ERR_NOMEM;
			free(resp->headers[i].value);
			resp->headers[i].value = v;
			return 0;
		}
	}
	return value ? headers_append(resp->headers, &resp->nheaders, name, value) : 0;
}

const char *msg_resp_header(const msg_resp *resp, const char *name)
{
	return resp ? find_header(resp->headers, resp->nheaders, name) : NULL;
}

int msg_resp_set(msg_resp *resp, int status, const char *ctype, const char *body, size_t len)
{
	if (!resp || (len && !body))
		return ERR_INVALID;
	char *b = NULL;
	if (body) {
		b = dup_n(body, len);
		if (!b)
			return ERR_NOMEM;
	}
	free(resp->body);
	resp->body = b;
	resp->body_len = len;
	resp->status = status;
	resp->content_type[0] = '\0';
	if (ctype) {
		strncpy(resp->content_type, ctype, sizeof resp->content_type - 1);
		resp->content_type[sizeof resp->content_type - 1] = '\0';
	}
	return 0;
}

int msg_resp_json(msg_resp *resp, int status, json_t *v)
{
	if (!resp) {
		json_decref(v);
		return ERR_INVALID;
	}
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("{}");
	json_decref(v);
	if (!s)
		return ERR_NOMEM;
	free(resp->body);
	resp->body = s;
	resp->body_len = strlen(s);
	resp->status = status;
	strcpy(resp->content_type, "application/json");
	return 0;
}

/* A JSON string; text that is not valid UTF-8 is replaced rather than
 * dropping the field. */
static json_t *text(const char *s)
{
	json_t *j = json_string(s);
	return j ? j : json_string("(invalid utf-8)");
}

int msg_resp_error(msg_resp *resp, int status, const char *code, const char *message,
		   json_t *details)
{
	json_t *e = json_object();
	json_t *root = json_object();
	if (!e || !root) {
		json_decref(e);
		json_decref(root);
		json_decref(details);
		return ERR_NOMEM;
	}
	json_object_set_new(e, "code", text(code ? code : msg_status_code(status)));
	json_object_set_new(e, "message", text(message ? message : ""));
	if (details)
		json_object_set_new(e, "details", details);
	json_object_set_new(root, "error", e);
	return msg_resp_json(resp, status, root);
}

const char *msg_status_code(int status)
{
	switch (status) {
	case 400: return "invalid_argument";
	case 401: return "unauthenticated";
	case 403: return "forbidden";
	case 404: return "not_found";
	case 405: return "method_not_allowed";
	case 409: return "conflict";
	case 413: return "payload_too_large";
	case 415: return "unsupported_media_type";
	case 422: return "idempotency_mismatch";
	case 429: return "rate_limited";
	case 431: return "request_header_fields_too_large";
	case 500: return "internal";
	case 503: return "unavailable";
	case 504: return "upstream_timeout";
	default: return "error";
	}
}
