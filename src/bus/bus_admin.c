/* bus_admin: /admin/queues across the platform. */
#include "bus/bus_admin.h"
#include "bus/bus.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long one service may take to answer. */
#define ADMIN_TIMEOUT_MS 3000

/* The address of the first healthy instance of service entry svc, or NULL. */
static const char *pick(json_t *svc, const char **id)
{
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(svc, "instances"), i, in)
	{
		if (json_is_true(json_object_get(in, "healthy"))) {
			*id = json_string_value(json_object_get(in, "id"));
			return json_string_value(json_object_get(in, "addr"));
		}
	}
	return NULL;
}

/* Calls method path on each service's instance; fn takes each 200 body.
 * Services answering 404 have no bus. Failures go into errors. */
static void fan_out(const engine_ctx *ctx, json_t *services, const char *method, const char *path,
		    void (*fn)(const char *service, json_t *body, void *ud), void *ud,
		    json_t *errors)
{
	size_t i;
	json_t *svc;
	json_array_foreach(services, i, svc)
	{
		const char *name = json_string_value(json_object_get(svc, "name"));
		const char *id = NULL, *addr = pick(svc, &id);
		if (!name)
			continue;
		if (!addr) {
			json_array_append_new(errors, json_pack("{s:s,s:s}", "service", name, "error",
								"no healthy instance"));
			continue;
		}
		msg_req req;
		msg_resp resp;
		msg_resp_init(&resp);
		if (msg_req_init(&req, method, path) != 0)
			continue;
		char auth[300];
		snprintf(auth, sizeof(auth), "Bearer %s", ctx->admin_token ? ctx->admin_token : "");
		msg_req_set_header(&req, "Authorization", auth);
		int rc = ctx->call(ctx->call_ud, addr, &req, &resp, ADMIN_TIMEOUT_MS);
		msg_req_clear(&req);
		json_t *body = rc == 0 && resp.status == 200
				       ? json_loadb(resp.body ? resp.body : "", resp.body_len, 0, NULL)
				       : NULL;
		if (body)
			fn(name, body, ud);
		else if (rc != 0 || resp.status != 404) {
			char why[160];
			if (rc)
				snprintf(why, sizeof(why), "%s", err_name(rc));
			else
				snprintf(why, sizeof(why), "status %d", resp.status);
			json_array_append_new(errors, json_pack("{s:s,s:s,s:s}", "service", name,
								"instance", id ? id : "", "error",
								why));
		}
		json_decref(body);
		msg_resp_clear(&resp);
	}
}

static void take_rows(const char *service, json_t *body, void *ud)
{
	json_t *rows = ud;
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(body, "queues"), i, row)
	{
		json_object_set_new(row, "service", json_string(service));
		json_array_append(rows, row);
	}
}

static const char *str_of(json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));
	return s ? s : "";
}

static int row_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(str_of(x, "topic"), str_of(y, "topic"));
	if (!c)
		c = strcmp(str_of(x, "consumer"), str_of(y, "consumer"));
	if (!c)
		c = strcmp(str_of(x, "service"), str_of(y, "service"));
	return c;
}

void bus_admin_queues(const engine_ctx *ctx, json_t *services, msg_resp *resp)
{
	json_t *rows = json_array(), *errors = json_array();
	fan_out(ctx, services, "GET", "/admin/queues", take_rows, rows, errors);
	size_t n = json_array_size(rows);
	json_t **v = calloc(n ? n : 1, sizeof(*v));
	json_t *sorted = json_array();
	if (v) {
		for (size_t i = 0; i < n; i++)
			v[i] = json_array_get(rows, i);
		qsort(v, n, sizeof(*v), row_cmp);
		for (size_t i = 0; i < n; i++)
			json_array_append(sorted, v[i]);
	}
	free(v);
	json_decref(rows);
	msg_resp_json(resp, 200, json_pack("{s:o,s:o}", "queues", sorted, "errors", errors));
}

typedef struct replay_sum {
	json_t *per;
	json_int_t moved;
} replay_sum;

static void take_moved(const char *service, json_t *body, void *ud)
{
	replay_sum *r = ud;
	json_int_t n = json_integer_value(json_object_get(body, "moved"));
	r->moved += n;
	json_array_append_new(r->per, json_pack("{s:s,s:I}", "service", service, "moved", n));
}

void bus_admin_replay(const engine_ctx *ctx, json_t *services, const char *topic,
		      const char *consumer, msg_resp *resp)
{
	if (!bus_valid_name(topic) || (consumer && !bus_valid_name(consumer))) {
		engine_bad_field(resp, bus_valid_name(topic) ? "consumer" : "topic",
				 "must be 1 to 63 of a-z, 0-9, '.', '-', '_'");
		return;
	}
	char path[256];
	int n = snprintf(path, sizeof(path), "/admin/queues/%s/replay%s%s", topic,
			 consumer ? "?consumer=" : "", consumer ? consumer : "");
	if (n < 0 || (size_t)n >= sizeof(path)) {
		msg_resp_error(resp, 400, "invalid_argument", "topic or consumer too long", NULL);
		return;
	}
	replay_sum r = { .per = json_array(), .moved = 0 };
	json_t *errors = json_array();
	fan_out(ctx, services, "POST", path, take_moved, &r, errors);
	msg_resp_json(resp, 200, json_pack("{s:s,s:s?,s:I,s:o,s:o}", "topic", topic, "consumer",
					   consumer, "moved", r.moved, "services", r.per, "errors",
					   errors));
}
