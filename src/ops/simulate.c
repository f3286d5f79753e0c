/* simulate: ecom sim. */
#include "ops/simulate.h"
#include "ops/cli.h"
#include "ops/serve.h"
#include "sim/kafka_sim.h"

#include <stdio.h>
#include <string.h>

static const char HELP[] =
	"usage: ecom sim stripe [--port PORT] [--state DIR] [--config FILE] [--log-level LEVEL]\n"
	"       ecom sim smtp [--port PORT] [--smtp-port PORT] [--state DIR] ...\n"
	"       ecom sim sms [--port PORT] [--state DIR] ...\n"
	"       ecom sim kafka [--port PORT] [--brokers N] [--partitions N]\n"
	"\n"
	"The outside world, simulated on loopback:\n"
	"  stripe   a Stripe-compatible payments API (payment intents, capture,\n"
	"           cancel, refunds, idempotency keys, the test card tokens), with\n"
	"           faults set through PUT /admin/faults/stripe. Default port 12111.\n"
	"  smtp     an SMTP sink (EHLO, MAIL, RCPT, DATA, ...; no auth or TLS) on\n"
	"           --smtp-port (default 2525) keeping every message, read back with\n"
	"           GET /admin/smtp/messages?to=&contains= on --port (default 8025);\n"
	"           faults through PUT /admin/faults/smtp (outage: 421, errors: 451).\n"
	"  sms      an SMS provider (POST /v1/messages {to, body}) keeping every\n"
	"           text, read back with GET /admin/sms/messages; faults through\n"
	"           PUT /admin/faults/sms. Default port 12113.\n"
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
	static const struct {
		const char *name, *engine, *port, *side_port;
	} sims[] = {
		{ "stripe", "stripe-sim", "12111", NULL },
		{ "smtp", "smtp-sim", "8025", "2525" },
		{ "sms", "sms-sim", "12113", NULL },
	};
	int which = -1;
	for (int i = 0; i < (int)(sizeof(sims) / sizeof(sims[0])); i++)
		if (strcmp(argv[1], sims[i].name) == 0)
			which = i;
	if (which < 0)
		return cli_usage("sim", "unknown simulator '%s' (available: stripe, smtp, sms, kafka)",
				 argv[1]);
	/* ecom serve ENGINE [--port P] [--side-port Q] ARGS... */
	char *args[64];
	int n = 0, has_port = 0, has_side = 0;
	args[n++] = "serve";
	args[n++] = (char *)sims[which].engine;
	for (int i = 2; i < argc && n < 58; i++) {
		if (strcmp(argv[i], "--port") == 0 || strncmp(argv[i], "--port=", 7) == 0)
			has_port = 1;
		if (sims[which].side_port && strcmp(argv[i], "--smtp-port") == 0) {
			args[n++] = "--side-port";
			has_side = 1;
			continue;
		}
		if (sims[which].side_port && strncmp(argv[i], "--smtp-port=", 12) == 0) {
			args[n++] = "--side-port";
			args[n++] = argv[i] + 12;
			has_side = 1;
			continue;
		}
		args[n++] = argv[i];
	}
	if (!has_port) {
		args[n++] = "--port";
		args[n++] = (char *)sims[which].port;
	}
	if (sims[which].side_port && !has_side) {
		args[n++] = "--side-port";
		args[n++] = (char *)sims[which].side_port;
	}
	args[n] = NULL;
	return serve_main(n, args);
}
