/* cli: what every `ecom` subcommand shares: the one-line error conventions
 * (bad usage exits 2, a failed operation exits 1), number parsing, and how a
 * command finds the data directory and a running platform. */
#ifndef ECOM_CLI_H
#define ECOM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/msg.h"

#define CLI_PATH_MAX 1024

/* Prints "ecom CMD: message (see 'ecom CMD --help')" to stderr; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "ecom CMD: message" to stderr; returns 1. */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parses a whole decimal integer within [min, max]. 0 or ERR_INVALID. */
int cli_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);
/* 1 for "-h" and "--help". */
int cli_is_help(const char *arg);
/* Prints text to stdout and returns 0 when any of argv[1..] asks for help;
 * returns -1 otherwise. */
int cli_help_if_asked(int argc, char **argv, const char *text);

/* The state directory: flag when set, else $ECOM_STATE, else "./var". */
const char *cli_state_dir(const char *flag);
/* Where data/ lives: $ECOM_DATA, else the source tree's data/ when it
 * exists (a build tree), else the installed package data. */
const char *cli_data_dir(void);
/* This program's own path, for spawning children. */
int cli_self_path(char *buf, size_t len);

/* Finds the platform to talk to: url_flag (with $ECOM_ADMIN_TOKEN) when
 * given, else the gateway URL and admin token in the state directory.
 * Returns 0 or prints why not (as cmd) and returns 1. */
int cli_platform(const char *cmd, const char *state_flag, const char *url_flag, char *url,
		 size_t urllen, char *token, size_t toklen);

/* The options of every command that talks to a running platform: --json,
 * --state DIR and --url URL. Put CLI_TARGET_OPTIONS in the getopt_long
 * table and hand each option to cli_target_opt. */
typedef struct cli_target {
	const char *state; /* --state, or NULL */
	const char *url;   /* --url, or NULL */
	int json;          /* --json: print the platform's JSON answer */
} cli_target;

#define CLI_TARGET_OPTIONS                                                                         \
	{ "json", no_argument, NULL, 'J' }, { "state", required_argument, NULL, 'S' },              \
		{ "url", required_argument, NULL, 'U' }

/* 1 when getopt's c (with its arg) was one of CLI_TARGET_OPTIONS, now in t;
 * 0 otherwise. */
int cli_target_opt(int c, const char *arg, cli_target *t);

/* One admin request to the platform found as cli_platform finds it:
 * method, path (from the gateway's root) and a JSON body or NULL, with the
 * admin token. 0 with resp filled (whatever the status), or 1 after
 * printing why (as cmd) when there is no platform or it did not answer.
 * resp is initialised here; the caller clears it. */
int cli_admin_request(const char *cmd, const char *state_flag, const char *url_flag,
		      const char *method, const char *path, const char *body, msg_resp *resp);
/* Prints the API error in resp ("ecom CMD: message (HTTP 404 not_found)")
 * and returns 1. */
int cli_api_error(const char *cmd, const msg_resp *resp);

/* cli_admin_request for an answer that should be a 200 JSON object. With
 * t->json the answer is printed as it came and *out is NULL; otherwise *out
 * is the parsed object (a new reference). Returns 0, or 1 after printing
 * why (no platform, no answer, or the API's error). */
int cli_admin_json(const char *cmd, const cli_target *t, const char *method, const char *path,
		   const char *body, json_t **out);

#endif
