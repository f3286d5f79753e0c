/* pool: signing the simulated users in, many at a time. */
#include "sim/pool.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "net/http_multi.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define ATTEMPTS 6

typedef enum stage { ST_SIGNUP, ST_LOGIN, ST_ADDRESS, ST_CLEAR, ST_DONE, ST_FAILED } stage;

typedef struct agent {
	struct signer *g;
	http_xfer *x;
	int user; /* -1 when idle */
	stage st;
	int attempts;
	int64_t retry_at;
} agent;

typedef struct signer {
	pool *p;
	http_multi *m;
	int next; /* the next user to start */
	char last_error[200];
} signer;

pool *pool_new(int n, uint64_t seed)
{
	pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = n;
	p->u = calloc((size_t)(n > 0 ? n : 1), sizeof *p->u);
	p->ready = calloc((size_t)(n > 0 ? n : 1), sizeof *p->ready);
	rng *r = rng_new(seed ^ 0x706f6f6cULL);
	if (!p->u || !p->ready || !r) {
		rng_free(r);
		pool_free(p);
		return NULL;
	}
	/* Source addresses: a random /16 of 127/8 (not 127.0), four users each,
	 * so runs that follow each other do not share a login budget. */
	uint32_t base = (uint32_t)(1 + rng_os_seed() % 250) << 16;
	for (int i = 0; i < n; i++) {
		pool_user *u = &p->u[i];
		snprintf(u->email, sizeof u->email, "sim-%llu-%d@load.ecom.test", (unsigned long long)seed, i);
		snprintf(u->password, sizeof u->password, "sim-%016llx", (unsigned long long)rng_u64(r));
		uint32_t a = base + 1 + (uint32_t)(i / 4) % 65000;
		snprintf(u->source_ip, sizeof u->source_ip, "127.%u.%u.%u", (a >> 16) & 255, (a >> 8) & 255,
			 a & 255);
	}
	rng_free(r);
	return p;
}

void pool_free(pool *p)
{
	if (!p)
		return;
	free(p->u);
	free(p->ready);
	free(p);
}

const pool_user *pool_user_for(const pool *p, int planned)
{
	if (!p || planned < 0 || p->nready == 0)
		return NULL;
	return &p->u[p->ready[planned % p->nready]];
}

static void on_done(http_xfer *x, void *ud);

/* Sends the request of the agent's stage. */
static void send_stage(agent *a)
{
	pool_user *u = &a->g->p->u[a->user];
	char body[512];
	http_xfer_req q = { .timeout_ms = 30000, .keep_body = 1 };
	json_t *b = NULL;
	switch (a->st) {
	case ST_SIGNUP:
		b = json_pack("{s:s,s:s,s:s}", "email", u->email, "password", u->password, "name",
			      "Simulated Shopper");
		q.method = "POST";
		q.target = "/v1/auth/signup";
		break;
	case ST_LOGIN:
		b = json_pack("{s:s,s:s}", "email", u->email, "password", u->password);
		q.method = "POST";
		q.target = "/v1/auth/login";
		break;
	case ST_ADDRESS:
		b = json_pack("{s:s,s:s,s:s,s:s}", "line1", "1 Load Street", "city", "Loopback",
			      "postal_code", "12700", "country", "US");
		q.method = "POST";
		q.target = "/v1/users/me/addresses";
		q.bearer = u->token;
		break;
	case ST_CLEAR:
		q.method = "DELETE";
		q.target = "/v1/cart";
		q.bearer = u->token;
		break;
	default:
		return;
	}
	if (b) {
		char *t = json_dumps(b, JSON_COMPACT);
		json_decref(b);
		snprintf(body, sizeof body, "%s", t ? t : "{}");
		free(t);
		q.body = body;
	}
	if (a->st <= ST_LOGIN && u->source_ip[0])
		q.source_ip = u->source_ip;
	if (http_multi_start(a->g->m, a->x, &q, on_done, a) != 0) {
		a->st = ST_FAILED;
		snprintf(a->g->last_error, sizeof a->g->last_error, "cannot start a request");
	}
}

static void retry_later(agent *a, int64_t delay_us, const char *why)
{
	snprintf(a->g->last_error, sizeof a->g->last_error, "%.96s: %.100s", a->g->p->u[a->user].email, why);
	if (++a->attempts >= ATTEMPTS) {
		a->st = ST_FAILED;
		return;
	}
	a->retry_at = clock_mono_us() + delay_us;
}

static void on_done(http_xfer *x, void *ud)
{
	agent *a = ud;
	pool_user *u = &a->g->p->u[a->user];
	int status = http_xfer_status(x), err = http_xfer_error(x);
	size_t len;
	const char *body = http_xfer_body(x, &len);
	char why[160];
	if (err) {
		/* A loopback address that cannot be bound: use the default one. */
		if (err == ERR_IO && u->source_ip[0] && a->st <= ST_LOGIN)
			u->source_ip[0] = '\0';
		snprintf(why, sizeof why, "%s", err_name(err));
		retry_later(a, 500000, why);
		return;
	}
	if (status == 429 || status >= 500) {
		snprintf(why, sizeof why, "HTTP %d", status);
		retry_later(a, status == 429 ? 2000000 : 500000, why);
		return;
	}
	json_t *v = body ? json_loadb(body, len, 0, NULL) : NULL;
	switch (a->st) {
	case ST_SIGNUP:
		if (status == 201 || status == 409) { /* 409: signed up by an earlier run */
			a->st = ST_LOGIN;
			a->attempts = 0;
		} else {
			snprintf(a->g->last_error, sizeof a->g->last_error, "signup of %s: HTTP %d", u->email,
				 status);
			a->st = ST_FAILED;
		}
		break;
	case ST_LOGIN: {
		const char *t = json_string_value(json_object_get(v, "access_token"));
		if (status == 200 && t && strlen(t) < sizeof u->token) {
			snprintf(u->token, sizeof u->token, "%s", t);
			a->st = ST_ADDRESS;
			a->attempts = 0;
		} else {
			snprintf(a->g->last_error, sizeof a->g->last_error, "login of %s: HTTP %d", u->email,
				 status);
			a->st = ST_FAILED;
		}
		break;
	}
	case ST_ADDRESS: {
		/* Orders may name it; without one they still go through. */
		const char *id = json_string_value(json_object_get(v, "address_id"));
		if (status == 201 && id && strlen(id) < sizeof u->address_id)
			snprintf(u->address_id, sizeof u->address_id, "%s", id);
		a->st = ST_CLEAR;
		break;
	}
	case ST_CLEAR:
		a->st = ST_DONE;
		break;
	default:
		break;
	}
	json_decref(v);
	a->retry_at = 0;
	if (a->st < ST_DONE)
		send_stage(a);
}

int pool_sign_in(pool *p, const char *url, int concurrency, int64_t timeout_us,
		 volatile sig_atomic_t *stop, FILE *log, char *err, size_t errlen)
{
	if (p->n == 0) {
		snprintf(err, errlen, "the pool has no users");
		return ERR_INVALID;
	}
	/* Own source addresses only make sense towards a loopback server. */
	if (strncmp(url, "http://127.", 11) != 0 && strncmp(url, "http://localhost", 16) != 0)
		for (int i = 0; i < p->n; i++)
			p->u[i].source_ip[0] = '\0';
	if (concurrency < 1)
		concurrency = 1;
	if (concurrency > p->n)
		concurrency = p->n;
	signer g = { .p = p, .m = http_multi_new(url, concurrency * 2) };
	agent *ag = calloc((size_t)concurrency, sizeof *ag);
	int rc = g.m && ag ? 0 : ERR_NOMEM;
	for (int i = 0; rc == 0 && i < concurrency; i++) {
		ag[i] = (agent){ .g = &g, .user = -1 };
		if (!(ag[i].x = http_xfer_new()))
			rc = ERR_NOMEM;
	}
	int64_t start = clock_mono_us(), deadline = start + timeout_us, said = start;
	int done = 0, failed = 0;
	while (rc == 0 && done + failed < p->n && clock_mono_us() < deadline && !(stop && *stop)) {
		int64_t now = clock_mono_us();
		for (int i = 0; i < concurrency; i++) {
			agent *a = &ag[i];
			if (a->user >= 0 && (a->st == ST_DONE || a->st == ST_FAILED)) {
				if (a->st == ST_DONE) {
					p->u[a->user].ready = 1;
					done++;
				} else {
					failed++;
				}
				a->user = -1;
			}
			if (a->user < 0 && g.next < p->n) {
				*a = (agent){ .g = &g, .x = a->x, .user = g.next++, .st = ST_SIGNUP };
				send_stage(a);
			} else if (a->user >= 0 && a->retry_at && now >= a->retry_at) {
				a->retry_at = 0;
				send_stage(a);
			}
		}
		if (http_multi_run(g.m, 50) < 0)
			rc = ERR_IO;
		if (log && now - said > 5000000) {
			fprintf(log, "ecom sim: %d of %d users signed in...\n", done, p->n);
			said = now;
		}
	}
	http_multi_free(g.m);
	for (int i = 0; ag && i < concurrency; i++)
		http_xfer_free(ag[i].x);
	free(ag);
	p->nready = 0;
	for (int i = 0; i < p->n; i++)
		if (p->u[i].ready)
			p->ready[p->nready++] = i;
	if (rc == 0 && p->nready == 0) {
		snprintf(err, errlen, "no user could sign in (%s)",
			 g.last_error[0] ? g.last_error : "timed out");
		rc = ERR_UNAVAILABLE;
	} else if (rc) {
		snprintf(err, errlen, "signing users in: %s", err_name(rc));
	}
	if (log && p->nready < p->n && p->nready > 0)
		fprintf(log, "ecom sim: %d of %d users signed in (last error: %s); going on with them\n",
			p->nready, p->n, g.last_error);
	return rc;
}
