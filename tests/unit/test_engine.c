/* engine: the tracing helpers every engine's calls go through. A call made
 * while serving a request carries a child traceparent and is recorded as a
 * CLIENT span under the request's span; work without a trace propagates an
 * unsampled one and records nothing; a span begun from a stored context
 * (the saga resuming its order's trace) wins over the thread's; a call the
 * breaker refuses leaves an error span of no length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "resil/guard.h"
#include "services/engine.h"

#define T0 1764112255000000LL
#define SERVER_TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define STORED_TP "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

typedef struct fx {
	engine_ctx ctx;
	trace_ctx slot; /* the "thread's" current context */
	char sent_tp[64];
	int status; /* what the callee answers */
	int calls;
	clock_src *clock;
} fx;

static trace_ctx *slot_of(void *ud) { return &((fx *)ud)->slot; }

static int fake_call(void *ud, const char *target, const msg_req *req, msg_resp *resp,
		     int64_t timeout_ms)
{
	fx *f = ud;
	f->calls++;
	const char *tp = msg_req_header(req, TRACE_HEADER);
	snprintf(f->sent_tp, sizeof(f->sent_tp), "%s", tp ? tp : "");
	clock_advance(f->clock, 1500);
	msg_resp_json(resp, f->status, json_object());
	return 0;
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	f->clock = clock_virtual_new(T0);
	f->status = 200;
	f->ctx = (engine_ctx){ .service = "order", .instance_id = "order-1", .clock = f->clock,
			       .rng = rng_new(7), .call = fake_call, .call_ud = f,
			       .tracer = tracer_new(64), .trace = slot_of };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	guard_free(f->ctx.guard);
	tracer_free(f->ctx.tracer);
	rng_free(f->ctx.rng);
	clock_free(f->clock);
	free(f);
	return 0;
}

static size_t spans_of(fx *f, const char *tp, span *out, size_t max)
{
	trace_ctx t;
	assert_int_equal(trace_parse(tp, &t), 0);
	return tracer_find(f->ctx.tracer, t.trace_id, out, max);
}

static void call(fx *f, const char *path)
{
	msg_req req;
	msg_resp resp;
	msg_req_init(&req, "POST", path);
	msg_resp_init(&resp);
	engine_call_guarded(&f->ctx, "payment", "http://127.0.0.1:1", &req, &resp, 1000);
	msg_req_clear(&req);
	msg_resp_clear(&resp);
}

static void test_client_span_under_request(void **state)
{
	fx *f = *state;
	assert_int_equal(trace_parse(SERVER_TP, &f->slot), 0);
	call(f, "/v1/payments");
	trace_ctx sent;
	assert_int_equal(trace_parse(f->sent_tp, &sent), 0);
	assert_memory_equal(sent.trace_id, f->slot.trace_id, 16);
	assert_memory_not_equal(sent.span_id, f->slot.span_id, 8);
	assert_int_equal(sent.flags, 1);
	span s[4];
	assert_int_equal(spans_of(f, SERVER_TP, s, 4), 1);
	assert_int_equal(s[0].kind, SPAN_CLIENT);
	assert_memory_equal(s[0].span_id, sent.span_id, 8);
	assert_memory_equal(s[0].parent_id, f->slot.span_id, 8);
	assert_string_equal(s[0].service, "order");
	assert_string_equal(s[0].name, "POST /v1/payments");
	assert_int_equal(s[0].dur_us, 1500);
	assert_int_equal(s[0].status, SPAN_OK);
	/* The thread's context is the request's again. */
	char buf[TRACE_PARENT_SIZE];
	assert_string_equal(engine_traceparent(&f->ctx, buf, sizeof(buf)), SERVER_TP);

	f->status = 503;
	call(f, "/v1/payments/p1/capture");
	assert_int_equal(spans_of(f, SERVER_TP, s, 4), 2);
	assert_int_equal(s[1].status, SPAN_ERROR);
	assert_string_equal(s[1].status_msg, "HTTP 503");
}

static void test_background_not_sampled(void **state)
{
	fx *f = *state;
	memset(&f->slot, 0, sizeof(f->slot));
	char buf[TRACE_PARENT_SIZE];
	assert_null(engine_traceparent(&f->ctx, buf, sizeof(buf)));
	call(f, "/v1/internal/feed/order/orders");
	trace_ctx sent;
	assert_int_equal(trace_parse(f->sent_tp, &sent), 0);
	assert_int_equal(sent.flags & TRACE_FLAG_SAMPLED, 0);
	assert_int_equal(tracer_count(f->ctx.tracer), 0);
	assert_false(trace_valid(&f->slot));
}

static void test_stored_parent_wins(void **state)
{
	fx *f = *state;
	assert_int_equal(trace_parse(SERVER_TP, &f->slot), 0);
	trace_ctx stored;
	assert_int_equal(trace_parse(STORED_TP, &stored), 0);
	engine_span es;
	engine_span_begin(&f->ctx, &es, &stored, "saga", SPAN_INTERNAL);
	char buf[TRACE_PARENT_SIZE];
	const char *inside = engine_traceparent(&f->ctx, buf, sizeof(buf));
	assert_non_null(inside);
	assert_memory_equal(inside, STORED_TP, 36); /* "00-" and the stored trace id */
	call(f, "/v1/reservations");
	engine_span_end(&f->ctx, &es, SPAN_OK, NULL);
	assert_string_equal(engine_traceparent(&f->ctx, buf, sizeof(buf)), SERVER_TP);
	span s[4];
	assert_int_equal(spans_of(f, STORED_TP, s, 4), 2); /* the call, then the saga */
	assert_int_equal(s[1].kind, SPAN_INTERNAL);
	assert_memory_equal(s[1].parent_id, stored.span_id, 8);
	assert_memory_equal(s[0].parent_id, s[1].span_id, 8);
	assert_int_equal(spans_of(f, SERVER_TP, s, 4), 0);
}

static void test_refused_span(void **state)
{
	fx *f = *state;
	char err[128];
	f->ctx.guard = guard_new("order", NULL, NULL, NULL, err, sizeof(err));
	assert_non_null(f->ctx.guard);
	assert_int_equal(guard_trip(f->ctx.guard, "payment", T0), 0);
	assert_int_equal(trace_parse(SERVER_TP, &f->slot), 0);
	call(f, "/v1/payments");
	assert_int_equal(f->calls, 0);
	span s[4];
	assert_int_equal(spans_of(f, SERVER_TP, s, 4), 1);
	assert_int_equal(s[0].status, SPAN_ERROR);
	assert_string_equal(s[0].status_msg, "refused: breaker");
	assert_int_equal(s[0].dur_us, 0);
}

/* A host without tracing: nothing is added or recorded. */
static void test_untraced_host(void **state)
{
	fx *f = *state;
	f->ctx.trace = NULL;
	call(f, "/v1/payments");
	assert_string_equal(f->sent_tp, "");
	engine_span es;
	engine_span_begin(&f->ctx, &es, NULL, "saga", SPAN_INTERNAL);
	engine_span_end(&f->ctx, &es, SPAN_OK, NULL);
	assert_int_equal(tracer_count(f->ctx.tracer), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_client_span_under_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_background_not_sampled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stored_parent_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_span, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untraced_host, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
