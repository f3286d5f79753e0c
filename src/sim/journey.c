/* journey: plans drawn from (seed, arrival), requests, outcomes. */
#include "sim/journey.h"
#include "core/err.h"
#include "core/rng.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

journey_catalog *journey_catalog_new(void)
{
	journey_catalog *c = calloc(1, sizeof *c);
	if (c)
		c->hot = -1;
	return c;
}

void journey_catalog_free(journey_catalog *c)
{
	if (!c)
		return;
	free(c->skus);
	free(c);
}

static void add_word(char (*list)[32], int *n, int max, const char *w, size_t len)
{
	char buf[32];
	if (len == 0 || len >= sizeof buf || *n >= max)
		return;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)w[i]);
	buf[len] = '\0';
	for (int i = 0; i < *n; i++)
		if (strcmp(list[i], buf) == 0)
			return;
	memcpy(list[(*n)++], buf, len + 1);
}

int journey_catalog_add(journey_catalog *c, const char *sku, const char *category, const char *name)
{
	if (!sku || strlen(sku) >= JOURNEY_SKU_MAX)
		return 0;
	if (c->nskus == c->cap) {
		int cap = c->cap ? c->cap * 2 : 256;
		void *v = realloc(c->skus, (size_t)cap * JOURNEY_SKU_MAX);
		if (!v)
			return ERR_NOMEM;
		c->skus = v;
		c->cap = cap;
	}
	snprintf(c->skus[c->nskus++], JOURNEY_SKU_MAX, "%s", sku);
	if (category)
		add_word(c->categories, &c->ncategories, JOURNEY_MAX_CATEGORIES, category, strlen(category));
	if (name) {
		size_t n = 0;
		while (name[n] && isalpha((unsigned char)name[n]))
			n++;
		if (n >= 3)
			add_word(c->words, &c->nwords, JOURNEY_MAX_WORDS, name, n);
	}
	return 0;
}

static int cmp_sku(const void *a, const void *b) { return strcmp(a, b); }
static int cmp_word(const void *a, const void *b) { return strcmp(a, b); }

int journey_catalog_seal(journey_catalog *c, const scenario *s, char *err, size_t errlen)
{
	if (c->nskus)
		qsort(c->skus, (size_t)c->nskus, JOURNEY_SKU_MAX, cmp_sku);
	int n = 0;
	for (int i = 0; i < c->nskus; i++)
		if (n == 0 || strcmp(c->skus[n - 1], c->skus[i]) != 0)
			memmove(c->skus[n++], c->skus[i], JOURNEY_SKU_MAX);
	c->nskus = n;
	qsort(c->categories, (size_t)c->ncategories, sizeof c->categories[0], cmp_word);
	qsort(c->words, (size_t)c->nwords, sizeof c->words[0], cmp_word);
	c->hot = -1;
	if (s->hot_sku[0]) {
		for (int i = 0; i < c->nskus; i++)
			if (strcmp(c->skus[i], s->hot_sku) == 0)
				c->hot = i;
		if (c->hot < 0) {
			snprintf(err, errlen, "the hot sku %s is not in the platform's catalog", s->hot_sku);
			return ERR_NOT_FOUND;
		}
	}
	int needs = 0;
	for (int j = 0; j < s->njourneys; j++)
		for (int k = 0; k < s->journeys[j].nsteps; k++) {
			scenario_action a = s->journeys[j].steps[k];
			needs |= a == SCN_VIEW || a == SCN_VIEW_V2 || a == SCN_ADD_TO_CART || a == SCN_CHECKOUT;
		}
	if (needs && c->nskus == 0) {
		snprintf(err, errlen, "the platform's catalog is empty: nothing to view or buy");
		return ERR_NOT_FOUND;
	}
	return 0;
}

/* ---- plans ------------------------------------------------------------------- */

static int pick_weighted(rng *r, const double *w, int n, size_t stride)
{
	double total = 0;
	for (int i = 0; i < n; i++)
		total += *(const double *)((const char *)w + (size_t)i * stride);
	double x = rng_double(r) * total;
	for (int i = 0; i < n; i++) {
		x -= *(const double *)((const char *)w + (size_t)i * stride);
		if (x < 0)
			return i;
	}
	return n - 1;
}

static int pick_sku(rng *r, const scenario *s, const journey_catalog *c)
{
	if (!c || c->nskus == 0)
		return -1;
	if (c->hot >= 0 && rng_double(r) < s->hot_share)
		return c->hot;
	return (int)rng_below(r, (uint64_t)c->nskus);
}

void journey_plan_make(const scenario *s, const journey_catalog *c, uint64_t seed, uint64_t arrival,
		       journey_plan *out)
{
	memset(out, 0, sizeof *out);
	out->arrival = arrival;
	/* One stream per arrival: rng_new mixes the seed with splitmix64. */
	rng *r = rng_new(seed ^ (arrival * 0x9E3779B97F4A7C15ULL) ^ 0x6a6f75726e6579ULL);
	if (!r) {
		out->user = -1;
		return;
	}
	out->journey = pick_weighted(r, &s->journeys[0].weight, s->njourneys, sizeof s->journeys[0]);
	const scenario_journey *j = &s->journeys[out->journey];
	int needs_user = 0;
	for (int i = 0; i < j->nsteps; i++)
		needs_user |= scenario_action_needs_user(j->steps[i]);
	out->user = needs_user && s->users > 0 ? (int)rng_below(r, (uint64_t)s->users) : -1;
	out->nsteps = j->nsteps;
	int in_cart = 0;
	int nwords = s->nqueries ? s->nqueries : c ? c->nwords : 0;
	for (int i = 0; i < j->nsteps; i++) {
		journey_step *st = &out->steps[i];
		st->action = j->steps[i];
		st->sku = st->category = st->word = -1;
		if (i > 0)
			st->think_us = j->think_min_us +
				       (int64_t)rng_below(r, (uint64_t)(j->think_max_us - j->think_min_us) + 1);
		switch (st->action) {
		case SCN_BROWSE:
		case SCN_BROWSE_V2:
			if (c && c->ncategories && rng_double(r) < 0.5)
				st->category = (int)rng_below(r, (uint64_t)c->ncategories);
			break;
		case SCN_SEARCH:
			st->word = nwords ? (int)rng_below(r, (uint64_t)nwords) : -1;
			break;
		case SCN_VIEW:
		case SCN_VIEW_V2:
			st->sku = pick_sku(r, s, c);
			break;
		case SCN_ADD_TO_CART:
			st->sku = pick_sku(r, s, c);
			st->qty = s->qty_min + (int)rng_below(r, (uint64_t)(s->qty_max - s->qty_min) + 1);
			in_cart = 1;
			break;
		case SCN_CHECKOUT:
			st->from_cart = in_cart;
			in_cart = 0;
			if (!st->from_cart) {
				st->sku = pick_sku(r, s, c);
				st->qty = s->qty_min +
					  (int)rng_below(r, (uint64_t)(s->qty_max - s->qty_min) + 1);
			}
			st->token = pick_weighted(r, &s->tokens[0].weight, s->ntokens, sizeof s->tokens[0]);
			st->duplicate = s->duplicate > 0 && rng_double(r) < s->duplicate;
			break;
		default:
			break;
		}
	}
	rng_free(r);
}

/* ---- requests ---------------------------------------------------------------- */

/* Appends s to out percent-encoded (all but RFC 3986's unreserved bytes). */
static void put_escaped(char *out, size_t len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(out);
	for (; *s && o + 4 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			out[o++] = (char)ch;
			continue;
		}
		out[o++] = '%';
		out[o++] = hex[ch >> 4];
		out[o++] = hex[ch & 15];
	}
	out[o] = '\0';
}

static void target(journey_req *q, const char *prefix, const char *escaped, const char *suffix)
{
	snprintf(q->target, sizeof q->target, "%s", prefix);
	if (escaped)
		put_escaped(q->target, sizeof q->target, escaped);
	if (suffix) {
		size_t n = strlen(q->target);
		snprintf(q->target + n, sizeof q->target - n, "%s", suffix);
	}
}

static int checkout_body(const scenario *s, const journey_catalog *c, const journey_step *st,
			 const char *address_id, journey_req *q)
{
	json_t *b = json_pack("{s:{s:s,s:s}}", "payment", "method", s->method, "token",
			      s->tokens[st->token].token);
	if (!b)
		return ERR_NOMEM;
	if (address_id && address_id[0])
		json_object_set_new(b, "address_id", json_string(address_id));
	if (!st->from_cart && c && st->sku >= 0)
		json_object_set_new(b, "items", json_pack("[{s:s,s:i}]", "sku", c->skus[st->sku], "qty",
							  st->qty));
	char *text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	if (!text)
		return ERR_NOMEM;
	int rc = strlen(text) < sizeof q->body ? 0 : ERR_TOO_LARGE;
	if (rc == 0)
		memcpy(q->body, text, strlen(text) + 1);
	free(text);
	return rc;
}

int journey_request(const scenario *s, const journey_catalog *c, const journey_plan *p, int i,
		    const char *order_id, const char *address_id, journey_req *q)
{
	const journey_step *st = &p->steps[i];
	memset(q, 0, sizeof *q);
	q->method = "GET";
	const char *sku = c && st->sku >= 0 && st->sku < c->nskus ? c->skus[st->sku] : NULL;
	const char *v = st->action == SCN_BROWSE_V2 || st->action == SCN_VIEW_V2 ? "/v2" : "/v1";
	char prefix[64];
	switch (st->action) {
	case SCN_BROWSE:
	case SCN_BROWSE_V2:
		snprintf(prefix, sizeof prefix, "%s/products?page_size=20%s", v,
			 st->category >= 0 && c ? "&category=" : "");
		target(q, prefix, st->category >= 0 && c ? c->categories[st->category] : NULL, NULL);
		return 0;
	case SCN_SEARCH: {
		const char *w = st->word < 0 ? "" : s->nqueries ? s->queries[st->word] : c->words[st->word];
		target(q, "/v1/search?q=", w, "&limit=20");
		return 0;
	}
	case SCN_VIEW:
	case SCN_VIEW_V2:
		snprintf(prefix, sizeof prefix, "%s/products/", v);
		target(q, prefix, sku ? sku : "", NULL);
		return 0;
	case SCN_ADD_TO_CART:
		q->method = "PUT";
		target(q, "/v1/cart/items/", sku ? sku : "", NULL);
		snprintf(q->body, sizeof q->body, "{\"qty\":%d}", st->qty);
		return 0;
	case SCN_CART:
		target(q, "/v1/cart", NULL, NULL);
		return 0;
	case SCN_CHECKOUT:
		q->method = "POST";
		q->keep_body = 1;
		target(q, "/v1/orders", NULL, NULL);
		return checkout_body(s, c, st, address_id, q);
	case SCN_CANCEL:
		if (!order_id || !order_id[0])
			return ERR_NOT_FOUND;
		q->method = "POST";
		target(q, "/v1/orders/", order_id, "/cancel");
		return 0;
	case SCN_ORDERS:
		target(q, "/v1/orders?limit=10", NULL, NULL);
		return 0;
	case SCN_HEALTH:
		target(q, "/health", NULL, NULL);
		return 0;
	default:
		return ERR_INVALID;
	}
}

/* The details.field of an API error body, into buf ("" when none). */
static void error_field(const char *body, size_t len, char *buf, size_t buflen)
{
	buf[0] = '\0';
	if (!body || !len)
		return;
	json_t *v = json_loadb(body, len, 0, NULL);
	const char *f = json_string_value(
		json_object_get(json_object_get(json_object_get(v, "error"), "details"), "field"));
	if (f)
		snprintf(buf, buflen, "%s", f);
	json_decref(v);
}

report_outcome journey_classify(scenario_action a, int from_cart, int status, int err,
				const char *body, size_t len)
{
	if (err || status <= 0)
		return REPORT_ERROR;
	if (status >= 200 && status < 300)
		return REPORT_OK;
	switch (a) {
	case SCN_SEARCH:
		return status == 404 ? REPORT_UNROUTED : REPORT_ERROR;
	case SCN_ADD_TO_CART: /* a full cart, or one in another currency */
	case SCN_CANCEL:      /* fulfilled or cancelled already */
		return status == 409 ? REPORT_EXPECTED : REPORT_ERROR;
	case SCN_CHECKOUT: {
		if (status == 409) /* out of stock, prices changed */
			return REPORT_EXPECTED;
		char field[32];
		if (status == 400 && from_cart) {
			error_field(body, len, field, sizeof field);
			if (strcmp(field, "items") == 0) /* the cart was emptied by another session */
				return REPORT_EXPECTED;
		}
		return REPORT_ERROR;
	}
	default:
		return REPORT_ERROR;
	}
}
