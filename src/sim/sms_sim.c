/* sms_sim: texts in a mailbox, faults in front of them. */
#include "sim/sms_sim.h"
#include "core/err.h"
#include "core/jval.h"
#include "core/text.h"
#include "net/router.h"
#include "resil/fault.h"
#include "services/chaos.h"
#include "sim/mailbox.h"
#include "sim/stripe_sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAULT_TARGET "sms"
#define KEY_MAX 255

typedef struct sms_sim {
	engine_ctx *ctx;
	mailbox *mb;
	fault_table *faults;
	router *rt;
	chaos_sim_faults fault_admin;
	uint64_t accepted, replays, invalid, faulted, outages;
} sms_sim;

static void count(uint64_t *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }
static json_int_t read_count(uint64_t *c) { return (json_int_t)__atomic_load_n(c, __ATOMIC_RELAXED); }

static int valid_key(const char *k)
{
	size_t n = strlen(k);
	if (n == 0 || n > KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7e)
			return 0;
	return 1;
}

/* The injected fault for one /v1 request: 1 when resp holds its failure. */
static int apply_fault(sms_sim *s, msg_resp *resp)
{
	fault_decision d;
	if (fault_decide(s->faults, FAULT_TARGET, clock_now(s->ctx->clock), s->ctx->rng, &d) != 0 ||
	    !d.active)
		return 0;
	if (d.delay_us > 0) {
		char v[32];
		snprintf(v, sizeof(v), "%" PRId64, d.delay_us);
		msg_resp_set_header(resp, STRIPE_SIM_DELAY_HEADER, v);
	}
	if (d.outage) {
		count(&s->outages);
		msg_resp_error(resp, 503, "unavailable", "the SMS provider is unavailable (simulated outage)",
			       NULL);
		msg_resp_set_header(resp, STRIPE_SIM_OUTAGE_HEADER, "1");
		return 1;
	}
	if (!d.fail)
		return 0;
	count(&s->faulted);
	msg_resp_error(resp, d.status, msg_status_code(d.status),
		       "the SMS provider failed (simulated fault)", NULL);
	return 1;
}

static void reply_message(msg_resp *resp, int status, json_t *item)
{
	/* the mailbox's item in the provider's shape */
	json_t *to = json_array_get(json_object_get(item, "to"), 0);
	json_t *o = json_pack("{s:O,s:O,s:O,s:O,s:s,s:O}", "id", json_object_get(item, "id"), "to",
			      to ? to : json_null(), "from", json_object_get(item, "from"), "body",
			      json_object_get(item, "body"), "status", "queued", "created_at",
			      json_object_get(item, "received_at"));
	json_decref(item);
	msg_resp_json(resp, status, o);
}

static void post_message(sms_sim *s, msg_req *req, msg_resp *resp)
{
	const char *key = msg_req_header(req, "Idempotency-Key");
	if (key && !valid_key(key)) {
		count(&s->invalid);
		engine_bad_field(resp, "Idempotency-Key", "must be 1-255 printable characters");
		return;
	}
	json_t *body;
	if (engine_json_body(req, resp, &body)) {
		count(&s->invalid);
		return;
	}
	const char *to, *text, *from;
	jval_error e = { { 0 }, { 0 } };
	if (jval_str(body, "to", 1, 1, 32, &to, &e) ||
	    jval_str(body, "body", 1, 1, SMS_SIM_MAX_BODY, &text, &e) ||
	    jval_str(body, "from", 0, 1, 32, &from, &e) ||
	    (!text_is_e164(to) && jval_fail(&e, "to", "must be an E.164 number (+ and 8-15 digits)"))) {
		count(&s->invalid);
		engine_bad_field(resp, e.field, e.message);
		json_decref(body);
		return;
	}
	const char *rcpt[1] = { to };
	mailbox_item it = { .from = from ? from : "ECOM", .to = rcpt, .nto = 1, .body = text, .key = key };
	char id[MAILBOX_ID_MAX];
	int rc = mailbox_add(s->mb, &it, clock_now(s->ctx->clock), id);
	json_decref(body);
	json_t *item = rc == 0 || rc == ERR_CONFLICT ? mailbox_get(s->mb, id) : NULL;
	if (!item) {
		msg_resp_error(resp, 503, "unavailable", "the message could not be kept", NULL);
		return;
	}
	if (rc == ERR_CONFLICT) {
		count(&s->replays);
		reply_message(resp, 200, item);
		msg_resp_set_header(resp, "Idempotent-Replayed", "true");
		return;
	}
	count(&s->accepted);
	log_info(s->ctx->log, "sms: kept %s", id);
	reply_message(resp, 201, item);
}

static void v1_messages(void *ud, msg_req *req, msg_resp *resp)
{
	sms_sim *s = ud;
	if (!apply_fault(s, resp))
		post_message(s, req, resp);
}

static void admin_messages(void *ud, msg_req *req, msg_resp *resp)
{
	sms_sim *s = ud;
	if (engine_require_admin(s->ctx, req, resp) == 0)
		mailbox_http_list(s->mb, req, resp);
}

static void admin_clear(void *ud, msg_req *req, msg_resp *resp)
{
	sms_sim *s = ud;
	if (engine_require_admin(s->ctx, req, resp) == 0)
		msg_resp_json(resp, 200,
			      json_pack("{s:I}", "deleted", (json_int_t)mailbox_clear(s->mb)));
}

static void admin_stats(void *ud, msg_req *req, msg_resp *resp)
{
	sms_sim *s = ud;
	if (engine_require_admin(s->ctx, req, resp) == 0)
		msg_resp_json(resp, 200,
			      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "messages",
					(json_int_t)mailbox_count(s->mb), "accepted",
					read_count(&s->accepted), "replays", read_count(&s->replays),
					"invalid", read_count(&s->invalid), "faulted",
					read_count(&s->faulted), "outages", read_count(&s->outages)));
}

static int sms_target(const char *t) { return strcmp(t, FAULT_TARGET) == 0; }

static void sim_handle(void *eng, msg_req *req, msg_resp *resp)
{
	sms_sim *s = eng;
	router_dispatch(s->rt, req, resp);
}

static void sim_destroy(void *eng)
{
	sms_sim *s = eng;
	if (!s)
		return;
	router_free(s->rt);
	mailbox_free(s->mb);
	fault_table_free(s->faults);
	free(s);
}

static void *sim_create(engine_ctx *ctx, char *err, size_t errlen)
{
	sms_sim *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->ctx = ctx;
	int64_t max = config_int(ctx->config, "sms_sim.max_messages", SMS_SIM_MAX_MESSAGES);
	if (max < 1 || max > 10000000) {
		snprintf(err, errlen, "sms_sim.max_messages must be 1..10000000");
		free(s);
		return NULL;
	}
	s->mb = mailbox_new((size_t)max, "SM");
	s->faults = fault_table_new();
	s->fault_admin = (chaos_sim_faults){ .ctx = ctx,
					     .table = s->faults,
					     .valid = sms_target,
					     .hint = "this simulator takes faults for sms only" };
	s->rt = router_new();
	if (!s->mb || !s->faults || !s->rt || chaos_sim_fault_routes(s->rt, &s->fault_admin) ||
	    router_add(s->rt, "POST", "/v1/messages", v1_messages, s) ||
	    router_add(s->rt, "GET", "/admin/sms/messages", admin_messages, s) ||
	    router_add(s->rt, "DELETE", "/admin/sms/messages", admin_clear, s) ||
	    router_add(s->rt, "GET", "/admin/sms/stats", admin_stats, s)) {
		snprintf(err, errlen, "out of memory");
		sim_destroy(s);
		return NULL;
	}
	return s;
}

const engine_def sms_sim_engine = {
	.name = "sms-sim",
	.needs_store = 0,
	.create = sim_create,
	.handle = sim_handle,
	.destroy = sim_destroy,
	.serves_resil_admin = 1,
};
