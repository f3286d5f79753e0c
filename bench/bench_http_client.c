/* bench_http_client: what one outbound call through http_client_do costs
 * the calling thread, in CPU microseconds (CLOCK_THREAD_CPUTIME_ID, which
 * other work on the machine moves far less than wall time), and the wall
 * time per call. The server is our own http_server (libmicrohttpd) in the
 * same process, on loopback, answering a small JSON body at once; the
 * calls are sequential on one keep-alive connection, as an engine's or the
 * gateway's worker thread makes them. Every variant runs CALLS calls, REPS
 * times; the minimum and the median of the repetitions are printed.
 *
 *   bench/bench_http_client [CALLS] [REPS]
 *
 * Variants:
 *   GET              a GET with two headers, as a catalog read is proxied
 *   POST             a POST with a 150-byte JSON body and six headers
 *                    (identity, traceparent, deadline, ...), as an engine's
 *                    call to another service */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/msg.h"

static int64_t ns_of(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void answer(void *ud, msg_req *req, msg_resp *resp)
{
	(void)ud;
	(void)req;
	static const char body[] = "{\"sku\":\"BOOK-001\",\"on_hand\":1000,\"reserved\":3,"
				   "\"available\":997,\"low_stock\":false}";
	msg_resp_set(resp, 200, "application/json", body, sizeof body - 1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* One repetition: CALLS calls; adds CPU and wall ns per call to cpu[], wall[]. */
static int run(const char *base, int post, long calls, int64_t *cpu, int64_t *wall)
{
	static const char body[] = "{\"reservation_id\":\"r-0123456789\",\"order_id\":\"o-0123456789\","
				   "\"items\":[{\"sku\":\"BOOK-001\",\"qty\":1}],\"ttl_s\":600,"
				   "\"note\":\"a body the size of a reservation\"}";
	int64_t c0 = ns_of(CLOCK_THREAD_CPUTIME_ID), w0 = ns_of(CLOCK_MONOTONIC);
	for (long i = 0; i < calls; i++) {
		msg_req req;
		msg_resp resp;
		msg_resp_init(&resp);
		if (msg_req_init(&req, post ? "POST" : "GET",
				 post ? "/v1/reservations" : "/v1/products/BOOK-001") != 0)
			return -1;
		msg_req_add_header(&req, "Accept", "application/json");
		msg_req_add_header(&req, "X-Request-Id", "0123456789abcdef0123456789abcdef");
		if (post) {
			msg_req_add_header(&req, "Content-Type", "application/json");
			msg_req_add_header(&req, "X-Ecom-Identity",
					   "service:order:1795679901:0123456789abcdef0123456789abcdef");
			msg_req_add_header(&req, "traceparent",
					   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
			msg_req_add_header(&req, "X-Ecom-Deadline-Ms", "1795679901511");
			msg_req_set_body(&req, body, sizeof body - 1);
		}
		http_call_opts o = { 1000, 5000 };
		int rc = http_client_do(base, &req, &resp, &o);
		int ok = rc == 0 && resp.status == 200;
		msg_req_clear(&req);
		msg_resp_clear(&resp);
		if (!ok) {
			fprintf(stderr, "bench_http_client: call %ld failed (rc %d)\n", i, rc);
			return -1;
		}
	}
	*cpu = (ns_of(CLOCK_THREAD_CPUTIME_ID) - c0) / calls;
	*wall = (ns_of(CLOCK_MONOTONIC) - w0) / calls;
	return 0;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 20000;
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	if (calls < 1 || reps < 1 || reps > 100) {
		fprintf(stderr, "usage: bench_http_client [CALLS] [REPS (1-100)]\n");
		return 2;
	}
	if (http_client_global_init() != 0)
		return 1;
	rng *r = rng_new(1);
	char err[256];
	http_server_opts so = { .host = "127.0.0.1", .port = 0, .threads = 1,
				.body_limit = 1 << 20, .conn_timeout_s = 30 };
	http_server *srv = r ? http_server_start(&so, answer, NULL, r, err, sizeof err) : NULL;
	if (!srv) {
		fprintf(stderr, "bench_http_client: %s\n", r ? err : "out of memory");
		rng_free(r);
		return 1;
	}
	char base[64];
	snprintf(base, sizeof base, "http://127.0.0.1:%d", http_server_port(srv));
	int rc = 0;
	printf("%-6s %12s %12s %12s %12s   (%ld calls x %d)\n", "call", "cpu_us_min", "cpu_us_med",
	       "wall_us_min", "wall_us_med", calls, reps);
	for (int post = 0; post <= 1 && rc == 0; post++) {
		int64_t cpu[100], wall[100];
		for (int i = 0; i < reps && rc == 0; i++)
			rc = run(base, post, calls, &cpu[i], &wall[i]);
		if (rc)
			break;
		qsort(cpu, (size_t)reps, sizeof cpu[0], cmp_i64);
		qsort(wall, (size_t)reps, sizeof wall[0], cmp_i64);
		printf("%-6s %12.2f %12.2f %12.2f %12.2f\n", post ? "POST" : "GET", cpu[0] / 1e3,
		       cpu[reps / 2] / 1e3, wall[0] / 1e3, wall[reps / 2] / 1e3);
	}
	http_server_stop(srv);
	rng_free(r);
	http_client_global_cleanup();
	return rc ? 1 : 0;
}
