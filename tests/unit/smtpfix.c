/* smtpfix: the SMTP sink on loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/smtp_sim.h"

#include "smtpfix.h"

#define ADMIN "Bearer " EFIX_ADMIN

static void listen_on(smtpfix *s, int port)
{
	line_server_opts o = { .host = "127.0.0.1", .port = port, .max_connections = 16,
			       .conn_timeout_s = 10 };
	char err[256];
	s->srv = line_server_start(&o, smtp_sim_engine.lines, s->f->eng, err, sizeof(err));
	if (!s->srv)
		fail_msg("line_server_start: %s", err);
	s->port = line_server_port(s->srv);
	snprintf(s->url, sizeof(s->url), "smtp://127.0.0.1:%d", s->port);
}

smtpfix *smtpfix_new(void)
{
	smtpfix *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->f = efix_new("smtp-sim", "sqlite::memory:", EFIX_T0, 7);
	s->f->eng = efix_create_engine(s->f);
	listen_on(s, 0);
	return s;
}

void smtpfix_free(smtpfix *s)
{
	if (!s)
		return;
	line_server_stop(s->srv);
	efix_free(s->f);
	free(s);
}

void smtpfix_stop(smtpfix *s)
{
	line_server_stop(s->srv);
	s->srv = NULL;
}

void smtpfix_start(smtpfix *s)
{
	if (!s->srv)
		listen_on(s, s->port);
}

json_t *smtpfix_messages(smtpfix *s, const char *to, const char *contains)
{
	char path[512];
	snprintf(path, sizeof(path), "/admin/smtp/messages?to=%s&contains=%s", to ? to : "",
		 contains ? contains : "");
	return efix_expect(s->f, "GET", path, NULL, ADMIN, NULL, 200);
}

long long smtpfix_count(smtpfix *s, const char *to, const char *contains)
{
	json_t *v = smtpfix_messages(s, to, contains);
	long long n = json_integer_value(json_object_get(v, "total"));
	json_decref(v);
	return n;
}

void smtpfix_fault(smtpfix *s, const char *json)
{
	json_decref(efix_expect(s->f, json ? "PUT" : "DELETE", "/admin/faults/smtp", NULL, ADMIN,
				json, 200));
}
