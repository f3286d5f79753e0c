/* ecom: one binary, git-style subcommands. */
#include "ops/audit.h"
#include "ops/breakers.h"
#include "ops/cli.h"
#include "ops/demo.h"
#include "ops/faults.h"
#include "ops/logs.h"
#include "ops/queue.h"
#include "ops/reindex.h"
#include "ops/seed.h"
#include "ops/serve.h"
#include "ops/settings.h"
#include "ops/simulate.h"
#include "ops/stock.h"
#include "ops/supervisor.h"
#include "ops/traces.h"
#include "tui/console.h"

#include "config.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} command;

static const command commands[] = {
	{ "up", supervisor_up, "start the platform and wait until it is ready" },
	{ "down", supervisor_down, "stop the platform; nothing of it keeps running" },
	{ "status", supervisor_status, "one row per instance: service, pid, addr, health, uptime" },
	{ "serve", serve_main, "run one service as a daemon (used by 'up')" },
	{ "seed", seed_main, "load a reproducible synthetic catalog" },
	{ "inventory", stock_main, "show or set the stock of a sku" },
	{ "breaker", breakers_main, "list the circuit breakers, or trip, reset or disable them" },
	{ "fault", faults_main, "inject faults into services and simulators, list or clear them" },
	{ "search", reindex_main, "rebuild every search instance's index: search reindex" },
	{ "demo", demo_main, "a narrated walk-through on a scratch platform" },
	{ "config", settings_main, "print the settings, or the table of every key (--doc)" },
	{ "sim", simulate_main, "the load simulator (sim run) and the outside world (sim stripe, sim paypal, sim kafka)" },
	{ "queue", queue_main, "the event bus: queue list, queue replay TOPIC" },
	{ "trace", traces_main, "an order's saga: its steps and its trace as a waterfall" },
	{ "logs", logs_main, "every process's log lines merged in time order; -f follows" },
	{ "audit", audit_main, "check the cross-service invariants (orders, stock, money)" },
	{ "console", console_main, "the operator console: an ncurses dashboard over the platform" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: ecom [--version] [--help] COMMAND [ARGS]\n\n"
		     "An e-commerce platform as microservices, driven from the terminal.\n\n"
		     "Commands:\n");
	for (int i = 0; commands[i].name; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'ecom COMMAND --help' for a command's options.\n"
		     "State: --state DIR (default ./var, or $ECOM_STATE).\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("ecom %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (int i = 0; commands[i].name; i++)
		if (strcmp(commands[i].name, cmd) == 0)
			return commands[i].run(argc - 1, argv + 1);
	if (cmd[0] == '-')
		return cli_usage(NULL, "unknown option '%s'", cmd);
	return cli_usage(NULL, "unknown command '%s'", cmd);
}
