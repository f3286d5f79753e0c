/* inproc: the in-process platform of the consumer tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/outbox.h"
#include "core/err.h"

#include "inproc.h"

inproc *inproc_new(void)
{
	inproc *p = calloc(1, sizeof(*p));
	assert_non_null(p);
	char err[256] = "";
	p->table = routes_parse(routes_default(), err, sizeof(err));
	assert_non_null(p->table);
	return p;
}

void inproc_free(inproc *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		bus_free(p->nodes[i].b);
	/* the first node owns the shared clock: it goes last */
	for (int i = p->n - 1; i >= 0; i--)
		efix_free(p->nodes[i].f);
	routes_free(p->table);
	free(p);
}

static inproc_node *node_of(inproc *p, const char *service)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->nodes[i].f->def->name, service) == 0)
			return &p->nodes[i];
	return NULL;
}

static void copy_req(const msg_req *in, msg_req *out)
{
	char target[2048];
	snprintf(target, sizeof(target), "%s%s%s", in->path, in->query ? "?" : "",
		 in->query ? in->query : "");
	assert_int_equal(msg_req_init(out, in->method, target), 0);
	for (int i = 0; i < in->nheaders; i++)
		assert_int_equal(msg_req_add_header(out, in->headers[i].name, in->headers[i].value), 0);
	if (in->body)
		assert_int_equal(msg_req_set_body(out, in->body, in->body_len), 0);
}

/* ctx->call of every node. */
static int route_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		      int64_t timeout_ms)
{
	inproc *p = ((inproc_node *)ud)->p;
	inproc_node *to = NULL;
	if (strcmp(target, INPROC_GW) == 0) {
		const route_entry *e = routes_match(p->table, req->path);
		if (!e) {
			msg_resp_error(resp, 404, "not_found", "no route", NULL);
			return 0;
		}
		to = node_of(p, e->targets[0].service);
		if (!to) {
			msg_resp_error(resp, 503, "unavailable", "no healthy instance of the service", NULL);
			return 0;
		}
	} else {
		for (int i = 0; i < p->n && !to; i++)
			if (p->nodes[i].alias[0] && strcmp(p->nodes[i].alias, target) == 0)
				to = &p->nodes[i];
	}
	if (!to || to->down)
		return ERR_UNAVAILABLE;
	msg_req copy;
	copy_req(req, &copy);
	if (!(to->b && bus_handle(to->b, &copy, resp))) {
		if (to->f->eng)
			to->f->def->handle(to->f->eng, &copy, resp);
		else
			msg_resp_error(resp, 404, "not_found", "no engine here", NULL);
	}
	msg_req_clear(&copy);
	return 0;
}

efix *inproc_add(inproc *p, const char *service, uint64_t seed)
{
	assert_true(p->n < INPROC_MAX);
	inproc_node *nd = &p->nodes[p->n++];
	nd->p = p;
	nd->f = efix_new(service, NULL, EFIX_T0, seed);
	if (!p->clock)
		p->clock = nd->f->clock;
	nd->f->ctx.clock = p->clock;
	nd->f->ctx.call = route_call;
	nd->f->ctx.call_ud = nd;
	nd->f->ctx.gateway_url = INPROC_GW;
	return nd->f;
}

void inproc_start(inproc *p, const char *service, int engine, int with_bus)
{
	inproc_node *nd = node_of(p, service);
	assert_non_null(nd);
	if (engine)
		nd->f->eng = efix_create_engine(nd->f);
	if (with_bus) {
		char err[512] = "";
		nd->b = bus_new(&nd->f->ctx, engine ? nd->f->def : NULL, nd->f->eng, "embedded", err,
				sizeof(err));
		if (!nd->b)
			fail_msg("bus_new(%s): %s", service, err);
	}
}

void inproc_alias(inproc *p, const char *service, const char *url)
{
	inproc_node *nd = node_of(p, service);
	assert_non_null(nd);
	snprintf(nd->alias, sizeof(nd->alias), "%s", url);
}

void inproc_set_down(inproc *p, const char *service, int down)
{
	inproc_node *nd = node_of(p, service);
	assert_non_null(nd);
	nd->down = down;
}

efix *inproc_efix(inproc *p, const char *service)
{
	inproc_node *nd = node_of(p, service);
	assert_non_null(nd);
	return nd->f;
}

bus *inproc_bus(inproc *p, const char *service)
{
	inproc_node *nd = node_of(p, service);
	assert_non_null(nd);
	return nd->b;
}

int inproc_round(inproc *p, int64_t step_us)
{
	int moved = 0;
	for (int i = 0; i < p->n; i++) {
		if (!p->nodes[i].b)
			continue;
		int r = bus_step(p->nodes[i].b);
		if (r < 0)
			fail_msg("bus_step(%s): %s", p->nodes[i].f->def->name, err_name(r));
		moved += r;
	}
	clock_advance(p->clock, step_us);
	return moved;
}

void inproc_settle(inproc *p, int64_t step_us, int max)
{
	for (int i = 0; i < max; i++)
		if (inproc_round(p, step_us) == 0 && i > 0)
			return;
}

void inproc_event(inproc *p, const char *service, const char *topic, const char *key,
		  const char *payload)
{
	efix *f = inproc_efix(p, service);
	assert_int_equal(outbox_put(f->store, topic, key, payload, NULL, clock_now(p->clock)), 0);
}

int64_t inproc_int(inproc *p, const char *service, const char *sql)
{
	efix *f = inproc_efix(p, service);
	int64_t v = -1;
	int rc = store_intf(f->store, &v, sql, "");
	if (rc)
		fail_msg("%s on %s: %s", sql, service, err_name(rc));
	return v;
}
