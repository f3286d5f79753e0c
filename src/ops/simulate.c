/* simulate: ecom sim. */
#include "ops/simulate.h"
#include "ops/cli.h"
#include "ops/serve.h"
#include "sim/kafka_sim.h"

#include <stdio.h>
#include <string.h>

static const char HELP[] =
	"usage: ecom sim stripe [--port PORT] [--state DIR] [--config FILE] [--log-level LEVEL]\n"
	"       ecom sim paypal [--port PORT] [--state DIR] [--config FILE] [--log-level LEVEL]\n"
	"       ecom sim kafka [--port PORT] [--brokers N] [--partitions N]\n"
	"\n"
	"The outside world, simulated on loopback:\n"
	"  stripe   a Stripe-compatible payments API (payment intents, capture,\n"
	"           cancel, refunds, idempotency keys, the test card tokens), with\n"
	"           faults set through PUT /admin/faults/stripe. Default port 12111.\n"
	"  paypal   a PayPal-compatible REST API (OAuth2 tokens, orders, authorize,\n"
	"           capture, void, refunds, PayPal-Request-Id, the test payers\n"
	"           paypal_ok, paypal_declined, ...), faults through PUT\n"
	"           /admin/faults/paypal[.OP]. Default port 12112.\n"
	"  kafka    librdkafka's mock cluster as Kafka brokers, an in-memory TEST\n"
	"           broker for 'ecom up --bus kafka://...' (ecom sim kafka --help)\n"
	"\n"
	"The admin token for /admin routes is $ECOM_ADMIN_TOKEN or STATE/admin.token.\n";

int simulate_main(int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		fputs(HELP, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "kafka") == 0)
		return kafka_sim_main(argc - 1, argv + 1);
	int paypal = strcmp(argv[1], "paypal") == 0;
	if (strcmp(argv[1], "stripe") != 0 && !paypal)
		return cli_usage("sim", "unknown simulator '%s' (available: stripe, paypal, kafka)",
				 argv[1]);
	/* ecom serve stripe-sim|paypal-sim [--port 12111|12112] ARGS... */
	char *args[64];
	int n = 0, has_port = 0;
	args[n++] = "serve";
	args[n++] = paypal ? "paypal-sim" : "stripe-sim";
	for (int i = 2; i < argc && n < 60; i++) {
		if (strcmp(argv[i], "--port") == 0 || strncmp(argv[i], "--port=", 7) == 0)
			has_port = 1;
		args[n++] = argv[i];
	}
	if (!has_port) {
		args[n++] = "--port";
		args[n++] = paypal ? "12112" : "12111";
	}
	args[n] = NULL;
	return serve_main(n, args);
}
