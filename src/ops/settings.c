/* settings: ecom config. */
#include "ops/settings.h"
#include "core/config.h"
#include "ops/cli.h"

#include <getopt.h>
#include <stdio.h>

static const char HELP[] =
	"usage: ecom config [--config FILE] [--doc]\n"
	"\n"
	"Prints every setting as 'key = value', as a process would see it: the\n"
	"defaults, then FILE, then the ECOM_* environment (ECOM_HTTP_BODY_LIMIT for\n"
	"http.body_limit). --doc prints the Markdown table of every key, its default\n"
	"and its meaning (the table in doc/configuration.md).\n";

int settings_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "doc", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	int doc = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			file = optarg;
		else if (c == 'd')
			doc = 1;
		else
			return cli_usage("config", "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage("config", "unexpected argument '%s'", argv[optind]);
	if (doc)
		return config_write_doc(stdout) == 0 ? 0 : 1;
	config *cfg = config_new();
	if (!cfg)
		return cli_fail("config", "out of memory");
	char err[512];
	if (file && config_load_file(cfg, file, err, sizeof(err)) != 0) {
		config_free(cfg);
		return cli_fail("config", "%s", err);
	}
	config_load_env(cfg);
	for (const config_def *d = config_defs(); d->key; d++)
		printf("%s = %s\n", d->key, config_get(cfg, d->key));
	config_free(cfg);
	return 0;
}
