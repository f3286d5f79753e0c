/* routes: parsing and matching the gateway's route table. */
#include "services/routes.h"
#include "core/err.h"
#include "core/text.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct routes {
	route_entry *items;
	int n;
};

static const char default_table[] =
	"# The gateway's default route table (see src/services/routes.h).\n"
	"/v1/products      catalog\n"
	"/v2/products      catalog\n"
	"/v1/inventory     inventory\n"
	"/v1/reservations  inventory\n"
	"/v1/auth          user\n"
	"/v1/users         user\n"
	"/v1/cart          cart\n"
	"/v1/internal/carts cart\n"
	"/v1/payments      payment\n"
	"/v1/webhooks      payment\n"
	"/v1/orders        order\n"
	"/v1/recommendations catalog\n"
	"/v1/analytics     analytics\n"
	"/v1/internal/users user\n"
	"/admin/sagas      order\n"
	"/v1/search        search\n"
	"# What `ecom audit` reads: orders, payments, the inventory's own\n"
	"# /admin/invariants and /admin/reservations, notifications.\n"
	"/admin/orders     order\n"
	"/admin/payments   payment\n"
	"/admin/inventory  inventory:/admin\n"
	"/admin/notifications notification\n"
	"# The event bus's embedded feeds: /v1/internal/feed/{producer}/{topic}.\n"
	"/v1/internal/feed/inventory inventory\n"
	"/v1/internal/feed/catalog catalog\n"
	"/v1/internal/feed/cart cart\n"
	"/v1/internal/feed/user user\n"
	"/v1/internal/feed/order order\n"
	"/v1/internal/feed/payment payment\n"
	"/v1/internal/feed/notification notification\n"
	"/v1/internal/feed/analytics analytics\n";

const char *routes_default(void) { return default_table; }

static int valid_prefix(const char *p)
{
	size_t n = strlen(p);
	if (n < 2 || n >= ROUTES_PREFIX_MAX || p[0] != '/' || p[n - 1] == '/')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)p[i]) || p[i] == '/' || p[i] == '-' || p[i] == '_' ||
		      p[i] == '.'))
			return 0;
	return 1;
}

static int valid_service(const char *s) { return text_is_name(s, 32); }

/* "YYYY-MM-DD" -> seconds since the epoch at 00:00 UTC. */
static int parse_date(const char *s, int64_t *out)
{
	int y, m, d;
	char tail;
	if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1970 || m < 1 || m > 12 ||
	    d < 1 || d > 31)
		return ERR_INVALID;
	struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d };
	*out = (int64_t)timegm(&tm);
	return 0;
}

static int parse_target(char *tok, route_target *t)
{
	memset(t, 0, sizeof(*t));
	t->weight = 1;
	char *eq = strchr(tok, '=');
	if (eq) {
		*eq = '\0';
		char *end;
		long w = strtol(eq + 1, &end, 10);
		if (*end || w < 1 || w > 1000)
			return ERR_INVALID;
		t->weight = (int)w;
	}
	char *colon = strchr(tok, ':');
	if (colon) {
		*colon = '\0';
		if (!valid_prefix(colon + 1))
			return ERR_INVALID;
		snprintf(t->upstream_prefix, sizeof(t->upstream_prefix), "%s", colon + 1);
	}
	if (!valid_service(tok))
		return ERR_INVALID;
	snprintf(t->service, sizeof(t->service), "%s", tok);
	return 0;
}

static int parse_line(char *line, route_entry *e, const char **why)
{
	memset(e, 0, sizeof(*e));
	char *save = NULL;
	char *prefix = strtok_r(line, " \t", &save);
	char *targets = strtok_r(NULL, " \t", &save);
	if (!prefix || !targets) {
		*why = "want 'PREFIX TARGET[,TARGET...] [OPTIONS]'";
		return ERR_INVALID;
	}
	if (!valid_prefix(prefix)) {
		*why = "bad prefix";
		return ERR_INVALID;
	}
	snprintf(e->prefix, sizeof(e->prefix), "%s", prefix);
	char *tsave = NULL;
	for (char *t = strtok_r(targets, ",", &tsave); t; t = strtok_r(NULL, ",", &tsave)) {
		if (e->ntargets == ROUTES_MAX_TARGETS) {
			*why = "too many targets";
			return ERR_INVALID;
		}
		if (parse_target(t, &e->targets[e->ntargets])) {
			*why = "bad target (want SERVICE[:PREFIX][=WEIGHT])";
			return ERR_INVALID;
		}
		e->total_weight += e->targets[e->ntargets++].weight;
	}
	for (char *opt = strtok_r(NULL, " \t", &save); opt; opt = strtok_r(NULL, " \t", &save)) {
		if (strncmp(opt, "deprecated=", 11) == 0 && parse_date(opt + 11, &e->deprecated_s) == 0)
			continue;
		if (strncmp(opt, "sunset=", 7) == 0 && parse_date(opt + 7, &e->sunset_s) == 0)
			continue;
		if (strncmp(opt, "successor=", 10) == 0 && valid_prefix(opt + 10)) {
			snprintf(e->successor, sizeof(e->successor), "%s", opt + 10);
			continue;
		}
		*why = "bad option (deprecated=YYYY-MM-DD, sunset=YYYY-MM-DD, successor=PREFIX)";
		return ERR_INVALID;
	}
	return 0;
}

routes *routes_parse(const char *text, char *err, size_t errlen)
{
	routes *r = calloc(1, sizeof(*r));
	char *copy = strdup(text ? text : "");
	if (!r || !copy) {
		free(r);
		free(copy);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int lineno = 0;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			continue;
		route_entry e;
		const char *why = "";
		if (parse_line(p, &e, &why) != 0) {
			snprintf(err, errlen, "route table line %d: %s", lineno, why);
			goto fail;
		}
		for (int i = 0; i < r->n; i++)
			if (strcmp(r->items[i].prefix, e.prefix) == 0) {
				snprintf(err, errlen, "route table line %d: prefix %s listed twice",
					 lineno, e.prefix);
				goto fail;
			}
		route_entry *items = realloc(r->items, sizeof(*items) * (size_t)(r->n + 1));
		if (!items) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		r->items = items;
		r->items[r->n++] = e;
	}
	free(copy);
	return r;
fail:
	free(copy);
	routes_free(r);
	return NULL;
}

routes *routes_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "cannot read route table %s", path);
		return NULL;
	}
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	char buf[4096];
	size_t n;
	while (m && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, m);
	fclose(f);
	if (m)
		fclose(m);
	routes *r = text ? routes_parse(text, err, errlen) : NULL;
	free(text);
	return r;
}

void routes_free(routes *r)
{
	if (!r)
		return;
	free(r->items);
	free(r);
}

const route_entry *routes_match(const routes *r, const char *path)
{
	const route_entry *best = NULL;
	size_t best_len = 0;
	for (int i = 0; r && i < r->n; i++) {
		size_t n = strlen(r->items[i].prefix);
		if (strncmp(path, r->items[i].prefix, n) == 0 && (path[n] == '\0' || path[n] == '/') &&
		    n > best_len) {
			best = &r->items[i];
			best_len = n;
		}
	}
	return best;
}

const route_target *routes_pick(const route_entry *e, uint64_t draw)
{
	uint64_t acc = 0;
	for (int i = 0; i < e->ntargets; i++) {
		acc += (uint64_t)e->targets[i].weight;
		if (draw < acc)
			return &e->targets[i];
	}
	return &e->targets[e->ntargets - 1];
}

int routes_rewrite(const route_entry *e, const route_target *t, const char *path, char *out,
		   size_t len)
{
	int n;
	if (t->upstream_prefix[0])
		n = snprintf(out, len, "%s%s", t->upstream_prefix, path + strlen(e->prefix));
	else
		n = snprintf(out, len, "%s", path);
	return (n < 0 || (size_t)n >= len) ? ERR_TOO_LARGE : 0;
}

int routes_forward(const route_entry *e, rng *draws, const char *path, const route_target **t,
		   char *out, size_t len)
{
	*t = routes_pick(e, rng_below(draws, (uint64_t)e->total_weight));
	if (!(*t)->upstream_prefix[0])
		return 0;
	int rc = routes_rewrite(e, *t, path, out, len);
	return rc ? rc : 1;
}

int routes_count(const routes *r) { return r ? r->n : 0; }

const route_entry *routes_at(const routes *r, int i)
{
	return r && i >= 0 && i < r->n ? &r->items[i] : NULL;
}
