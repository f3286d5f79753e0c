/* http_client: libcurl easy handles, one per thread, reused for keep-alive. */
#include "net/http_client.h"
#include "net/easy_slot.h"
#include "core/err.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A response body past this is refused rather than buffered. */
#define HTTP_CLIENT_MAX_BODY (64u * 1024u * 1024u)

static easy_slot slot = EASY_SLOT_INIT;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static int init_count;

int http_client_global_init(void)
{
	int rc = 0;
	pthread_mutex_lock(&init_mu);
	if (init_count == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		rc = ERR_INTERNAL;
	if (rc == 0)
		init_count++;
	pthread_mutex_unlock(&init_mu);
	return rc;
}

void http_client_global_cleanup(void)
{
	/* The calling thread's handle goes now; other threads' handles go with
	 * their threads. */
	easy_slot_drop(&slot);
	pthread_mutex_lock(&init_mu);
	if (init_count > 0 && --init_count == 0)
		curl_global_cleanup();
	pthread_mutex_unlock(&init_mu);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud);
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud);

/* The calling thread's handle. The options every call shares are set once,
 * when the handle is made; a call sets only what is its own (URL, timeouts,
 * headers, method, body, sinks), so no curl_easy_reset (which frees and
 * rebuilds every option) runs per call. The connection cache lives in the
 * handle and survives from call to call. */
static CURL *thread_handle(void)
{
	int fresh;
	CURL *h = easy_slot_get(&slot, &fresh);
	if (!h || !fresh)
		return h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	/* Never reuse a connection idle long enough for the server to be
	 * closing it (our servers close idle ones after http.conn_timeout_s,
	 * 30 s by default): a request sent into that close fails after it may
	 * have been read, which a write cannot safely retry. */
	curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 10L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	return h;
}

typedef struct sink {
	char *body;
	size_t len, cap;
	msg_resp hdrs; /* headers of the latest response seen */
} sink;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	sink *k = ud;
	size_t n = size * nmemb;
	if (k->len + n + 1 > HTTP_CLIENT_MAX_BODY)
		return 0; /* curl fails the call with a write error: ERR_IO */
	if (k->len + n + 1 > k->cap) {
		size_t ncap = k->cap ? k->cap : 4096;
		while (ncap < k->len + n + 1)
			ncap *= 2;
		char *nb = realloc(k->body, ncap);
		if (!nb)
			return 0;
		k->body = nb;
		k->cap = ncap;
	}
	memcpy(k->body + k->len, data, n);
	k->len += n;
	k->body[k->len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	sink *k = ud;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a 100 Continue, say): start over. */
		msg_resp_clear(&k->hdrs);
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon || colon == data)
		return n;
	size_t nlen = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	char name[128], value[2048];
	if (nlen >= sizeof name || (size_t)(end - v) >= sizeof value)
		return n; /* oversized headers are dropped, not fatal */
	memcpy(name, data, nlen);
	name[nlen] = '\0';
	memcpy(value, v, (size_t)(end - v));
	value[end - v] = '\0';
	msg_resp_set_header(&k->hdrs, name, value); /* full table: dropped */
	return n;
}

static int skip_header(const char *name)
{
	return strcasecmp(name, "Host") == 0 || strcasecmp(name, "Content-Length") == 0 ||
	       strcasecmp(name, "Connection") == 0 || strcasecmp(name, "Expect") == 0 ||
	       strcasecmp(name, "Transfer-Encoding") == 0;
}

static int map_error(CURL *h, CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return ERR_UNAVAILABLE;
	case CURLE_OPERATION_TIMEDOUT: {
		/* A deadline that passed before a byte of the request went out
		 * is the same as no connection: safe to retry elsewhere. */
		long sent = 0;
		if (curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent == 0)
			return ERR_UNAVAILABLE;
		return ERR_TIMEOUT;
	}
	default:
		return ERR_IO;
	}
}

int http_client_do(const char *base_url, const msg_req *req, msg_resp *resp,
		   const http_call_opts *opts)
{
	if (!base_url || !req || !req->method || !req->path || !resp)
		return ERR_INVALID;
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 0;
	resp->content_type[0] = '\0';

	CURL *h = thread_handle();
	if (!h)
		return ERR_NOMEM;

	/* URL: base (without a trailing '/') + path + "?" + query. */
	size_t blen = strlen(base_url);
	while (blen && base_url[blen - 1] == '/')
		blen--;
	const char *path = req->path[0] ? req->path : "/";
	size_t ulen = blen + strlen(path) + (req->query ? strlen(req->query) + 1 : 0) + 2;
	char *url = malloc(ulen);
	if (!url)
		return ERR_NOMEM;
	snprintf(url, ulen, "%.*s%s%s%s", (int)blen, base_url, path[0] == '/' ? "" : "/", path,
		 req->query ? "?" : "");
	if (req->query)
		strcat(url, req->query);

	struct curl_slist *hl = NULL, *tmp;
	int rc = 0, has_ctype = 0;
	for (int i = 0; i < req->nheaders && rc == 0; i++) {
		const char *n = req->headers[i].name, *v = req->headers[i].value;
		if (!n || !v || skip_header(n) || strpbrk(n, "\r\n:") || strpbrk(v, "\r\n"))
			continue;
		if (strcasecmp(n, "Content-Type") == 0)
			has_ctype = 1;
		size_t len = strlen(n) + strlen(v) + 3;
		char stack_line[1024];
		char *line = len <= sizeof stack_line ? stack_line : malloc(len);
		if (!line) {
			rc = ERR_NOMEM;
			break;
		}
		/* "Name;" is curl's spelling of a header with an empty value. */
		if (v[0])
			snprintf(line, len, "%s: %s", n, v);
		else
			snprintf(line, len, "%s;", n);
		tmp = curl_slist_append(hl, line);
		if (line != stack_line)
			free(line);
		if (!tmp)
			rc = ERR_NOMEM;
		else
			hl = tmp;
	}
	if (rc == 0 && (tmp = curl_slist_append(hl, "Expect:")))
		hl = tmp;
	/* Without this curl labels a body as a form. */
	if (rc == 0 && !has_ctype && (tmp = curl_slist_append(hl, "Content-Type:")))
		hl = tmp;
	if (rc) {
		curl_slist_free_all(hl);
		free(url);
		return rc;
	}

	long cto = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 1000;
	long to = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
	sink k;
	memset(&k, 0, sizeof k);
	msg_resp_init(&k.hdrs);

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cto);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, to);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &k);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &k);
	/* The method, set in full each call since the handle keeps the last
	 * call's: NOBODY first (turning it off makes a HEAD a GET), then GET
	 * or a body (POSTFIELDS makes it a POST), then the verb itself. */
	size_t body_len = req->body ? req->body_len : 0;
	int is_head = strcmp(req->method, "HEAD") == 0;
	int is_get = strcmp(req->method, "GET") == 0;
	curl_easy_setopt(h, CURLOPT_NOBODY, is_head ? 1L : 0L);
	if (!is_head && (body_len || !is_get)) {
		/* Always send a Content-Length (0 included) on methods that may
		 * carry a body. */
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
	} else if (!is_head) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
			 !is_head && (!is_get || body_len) ? req->method : NULL);

	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK) {
		long status = 0;
		char *ct = NULL;
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
		resp->status = (int)status;
		if (ct) {
			strncpy(resp->content_type, ct, sizeof resp->content_type - 1);
			resp->content_type[sizeof resp->content_type - 1] = '\0';
		}
		resp->body = k.body;
		resp->body_len = k.len;
		k.body = NULL;
		for (int i = 0; i < k.hdrs.nheaders; i++)
			msg_resp_set_header(resp, k.hdrs.headers[i].name, k.hdrs.headers[i].value);
	} else {
		rc = map_error(h, cc);
		/* Say what went wrong, for the caller's log. */
		msg_resp_set_header(resp, HTTP_CLIENT_ERROR_HEADER, curl_easy_strerror(cc));
	}
	/* The handle outlives this call: drop pointers into our stack/heap. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hl);
	free(k.body);
	msg_resp_clear(&k.hdrs);
	free(url);
	return rc;
}

int http_client_simple(const char *method, const char *url, const char *body,
		       const char *bearer, msg_resp *resp, long timeout_ms)
{
	if (!method || !url || !resp)
		return ERR_INVALID;
	/* Split "http://host:port/path?q" into base and target. */
	const char *scheme = strstr(url, "://");
	const char *target = strchr(scheme ? scheme + 3 : url, '/');
	size_t blen = target ? (size_t)(target - url) : strlen(url);
	char *base = strndup(url, blen);
	if (!base)
		return ERR_NOMEM;
	msg_req req;
	int rc = msg_req_init(&req, method, target ? target : "/");
	if (rc) {
		free(base);
		return rc;
	}
	if (bearer) {
		size_t len = strlen(bearer) + 8;
		char *auth = malloc(len);
		if (!auth)
			rc = ERR_NOMEM;
		else {
			snprintf(auth, len, "Bearer %s", bearer);
			rc = msg_req_add_header(&req, "Authorization", auth);
			free(auth);
		}
	}
	if (rc == 0 && body) {
		rc = msg_req_add_header(&req, "Content-Type", "application/json");
		if (rc == 0)
			rc = msg_req_set_body(&req, body, strlen(body));
	}
	if (rc == 0) {
		http_call_opts o = {0, timeout_ms};
		rc = http_client_do(base, &req, resp, &o);
	}
	msg_req_clear(&req);
	free(base);
	return rc;
}
