/* smtp_sim: an SMTP session state machine over plain lines, and the
 * mailbox it fills. Written here: no packaged C library provides an
 * embeddable SMTP server. */
#include "sim/smtp_sim.h"
#include "core/err.h"
#include "net/line_server.h"
#include "net/router.h"
#include "resil/fault.h"
#include "services/chaos.h"
#include "sim/mailbox.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FAULT_TARGET "smtp"
#define MAX_RCPT 100
#define ADDR_MAX 256
#define HEADER_MAX 998

typedef struct smtp_sim {
	engine_ctx *ctx;
	mailbox *mb;
	fault_table *faults;
	size_t max_bytes;
	router *rt;                   /* the HTTP side */
	chaos_sim_faults fault_admin; /* its /admin/faults routes */
	/* counters, updated atomically */
	uint64_t sessions, accepted, rejected, faulted, outages;
} smtp_sim;

enum smtp_state { ST_START, ST_READY, ST_MAIL, ST_RCPT, ST_DATA };

typedef struct session {
	smtp_sim *sim;
	enum smtp_state state;
	int greeted;
	char from[ADDR_MAX];
	char *to[MAX_RCPT];
	int nto;
	char *data;
	size_t len, cap;
	int too_big;
} session;

static void count(uint64_t *c) { __atomic_add_fetch(c, 1, __ATOMIC_RELAXED); }
static uint64_t read_count(uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

/* ---- the transaction ------------------------------------------------------------ */

static void txn_reset(session *s)
{
	for (int i = 0; i < s->nto; i++)
		free(s->to[i]);
	s->nto = 0;
	s->from[0] = '\0';
	free(s->data);
	s->data = NULL;
	s->len = s->cap = 0;
	s->too_big = 0;
	s->state = s->greeted ? ST_READY : ST_START;
}

/* Appends len bytes and a CRLF to the message, or marks it too big. */
static void data_append(session *s, const char *p, size_t len)
{
	if (s->too_big || s->len + len + 2 > s->sim->max_bytes) {
		s->too_big = 1;
		return;
	}
	if (s->len + len + 3 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		while (cap < s->len + len + 3)
			cap *= 2;
		char *d = realloc(s->data, cap);
		if (!d) {
			s->too_big = 1;
			return;
		}
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, len);
	s->len += len;
	memcpy(s->data + s->len, "\r\n", 3);
	s->len += 2;
}

/* ---- reading the message's headers ------------------------------------------------- */

/* The value of header name (unfolded) in the header block of data, into
 * out; 1 when found. */
static int header_value(const char *data, const char *name, char *out, size_t outlen)
{
	size_t nlen = strlen(name);
	const char *p = data;
	while (*p && !(p[0] == '\r' && p[1] == '\n')) {
		const char *eol = strstr(p, "\r\n");
		if (!eol)
			eol = p + strlen(p);
		if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			size_t k = 0;
			const char *v = p + nlen + 1;
			for (;;) {
				while (v < eol && (*v == ' ' || *v == '\t') && k == 0)
					v++;
				while (v < eol && k + 1 < outlen)
					out[k++] = *v++;
				/* folded: the next line starts with white space */
				if (eol[0] && eol[2] && (eol[2] == ' ' || eol[2] == '\t')) {
					v = eol + 2;
					eol = strstr(v, "\r\n");
					if (!eol)
						eol = v + strlen(v);
					continue;
				}
				break;
			}
			out[k] = '\0';
			return 1;
		}
		if (!*eol)
			break;
		p = eol + 2;
	}
	return 0;
}

/* The body: what follows the first empty line (all of it when none). */
static const char *body_of(const char *data)
{
	if (strncmp(data, "\r\n", 2) == 0)
		return data + 2;
	const char *b = strstr(data, "\r\n\r\n");
	return b ? b + 4 : "";
}

/* Keeps the finished message; fills out with the reply to its end. */
static void finish_data(session *s, line_out *out)
{
	smtp_sim *sim = s->sim;
	fault_decision d;
	int64_t now = clock_now(sim->ctx->clock);
	if (fault_decide(sim->faults, FAULT_TARGET, now, sim->ctx->rng, &d) == 0 && d.active) {
		out->delay_us = d.delay_us;
		if (d.outage) {
			count(&sim->outages);
			line_out_printf(out, "421 4.3.2 smtp-sim: service not available (simulated outage)\r\n");
			out->close = 1;
			txn_reset(s);
			return;
		}
		if (d.fail) {
			count(&sim->faulted);
			line_out_printf(out, "451 4.3.0 Requested action aborted: local error (simulated fault)\r\n");
			txn_reset(s);
			return;
		}
	}
	if (s->too_big) {
		count(&sim->rejected);
		line_out_printf(out, "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
		txn_reset(s);
		return;
	}
	/* the data as received, with the CRLF that ends its last line */
	const char *text = s->data ? s->data : "";
	char subject[HEADER_MAX + 1], mid[HEADER_MAX + 1], id[MAILBOX_ID_MAX];
	int has_subject = header_value(text, "Subject", subject, sizeof(subject));
	int has_mid = header_value(text, "Message-ID", mid, sizeof(mid));
	mailbox_item it = { .from = s->from,
			    .to = (const char *const *)s->to,
			    .nto = s->nto,
			    .subject = has_subject ? subject : NULL,
			    .message_id = has_mid ? mid : NULL,
			    .body = body_of(text),
			    .data = text };
	if (mailbox_add(sim->mb, &it, now, id) != 0) {
		count(&sim->rejected);
		line_out_printf(out, "452 4.3.1 Insufficient system storage\r\n");
	} else {
		count(&sim->accepted);
		log_info(sim->ctx->log, "smtp: kept %s from <%s> to %d recipient(s), %zu bytes", id,
			 s->from, s->nto, s->len);
		line_out_printf(out, "250 2.0.0 Ok: queued as %s\r\n", id);
	}
	txn_reset(s);
}

/* ---- commands ------------------------------------------------------------------------ */

/* The address in "<addr>" after a command's colon, into out; the rest
 * (ESMTP parameters) into *params. 0, or -1 when malformed. */
static int parse_path(const char *arg, char *out, size_t outlen, const char **params)
{
	while (*arg == ' ')
		arg++;
	if (*arg != '<')
		return -1;
	const char *end = strchr(arg, '>');
	if (!end || (size_t)(end - arg - 1) >= outlen)
		return -1;
	size_t n = (size_t)(end - arg - 1);
	memcpy(out, arg + 1, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] <= ' ' || out[i] == '<')
			return -1;
	*params = end + 1;
	return 0;
}

/* 1 when line starts with verb (case-insensitive) followed by the end, a
 * space or (for "MAIL FROM"/"RCPT TO") a colon; *arg then points after it. */
static int verb_is(const char *line, const char *verb, const char **arg)
{
	size_t n = strlen(verb);
	if (strncasecmp(line, verb, n) != 0)
		return 0;
	char c = line[n];
	if (c != '\0' && c != ' ' && c != ':')
		return 0;
	*arg = line + n + (c == ' ' ? 1 : 0);
	return 1;
}

static void cmd_mail(session *s, const char *arg, line_out *out)
{
	const char *params = NULL;
	if (s->state == ST_START) {
		line_out_printf(out, "503 5.5.1 Error: send HELO/EHLO first\r\n");
		return;
	}
	if (s->state != ST_READY) {
		line_out_printf(out, "503 5.5.1 Error: nested MAIL command\r\n");
		return;
	}
	if (*arg != ':' || parse_path(arg + 1, s->from, sizeof(s->from), &params) != 0) {
		line_out_printf(out, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
		s->from[0] = '\0';
		return;
	}
	const char *size = strcasestr(params, "SIZE=");
	if (size && strtoull(size + 5, NULL, 10) > s->sim->max_bytes) {
		line_out_printf(out, "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
		s->from[0] = '\0';
		return;
	}
	s->state = ST_MAIL;
	line_out_printf(out, "250 2.1.0 Ok\r\n");
}

static void cmd_rcpt(session *s, const char *arg, line_out *out)
{
	char addr[ADDR_MAX];
	const char *params = NULL;
	if (s->state != ST_MAIL && s->state != ST_RCPT) {
		line_out_printf(out, "503 5.5.1 Error: need MAIL command\r\n");
		return;
	}
	if (*arg != ':' || parse_path(arg + 1, addr, sizeof(addr), &params) != 0 || !addr[0]) {
		line_out_printf(out, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
		return;
	}
	if (s->nto == MAX_RCPT) {
		line_out_printf(out, "452 4.5.3 Error: too many recipients\r\n");
		return;
	}
	if (!(s->to[s->nto] = strdup(addr))) {
		line_out_printf(out, "452 4.3.1 Insufficient system storage\r\n");
		return;
	}
	s->nto++;
	s->state = ST_RCPT;
	line_out_printf(out, "250 2.1.5 Ok\r\n");
}

static void cmd_hello(session *s, const char *arg, int extended, line_out *out)
{
	while (*arg == ' ')
		arg++;
	if (!*arg) {
		line_out_printf(out, "501 5.5.4 Syntax: %s hostname\r\n", extended ? "EHLO" : "HELO");
		return;
	}
	s->greeted = 1;
	txn_reset(s);
	if (extended)
		line_out_printf(out,
				"250-smtp-sim Hello %.64s\r\n250-8BITMIME\r\n250-SIZE %zu\r\n"
				"250 HELP\r\n",
				arg, s->sim->max_bytes);
	else
		line_out_printf(out, "250 smtp-sim\r\n");
}

static void on_command(session *s, const char *line, int truncated, line_out *out)
{
	const char *arg;
	if (truncated) {
		line_out_printf(out, "500 5.5.2 Error: line too long\r\n");
	} else if (verb_is(line, "EHLO", &arg)) {
		cmd_hello(s, arg, 1, out);
	} else if (verb_is(line, "HELO", &arg)) {
		cmd_hello(s, arg, 0, out);
	} else if (verb_is(line, "MAIL FROM", &arg)) {
		cmd_mail(s, arg, out);
	} else if (verb_is(line, "RCPT TO", &arg)) {
		cmd_rcpt(s, arg, out);
	} else if (verb_is(line, "DATA", &arg)) {
		if (*arg)
			line_out_printf(out, "501 5.5.4 Syntax: DATA\r\n");
		else if (s->state != ST_RCPT)
			line_out_printf(out, "503 5.5.1 Error: need RCPT command\r\n");
		else {
			s->state = ST_DATA;
			line_out_printf(out, "354 End data with <CR><LF>.<CR><LF>\r\n");
		}
	} else if (verb_is(line, "RSET", &arg)) {
		txn_reset(s);
		line_out_printf(out, "250 2.0.0 Ok\r\n");
	} else if (verb_is(line, "NOOP", &arg)) {
		line_out_printf(out, "250 2.0.0 Ok\r\n");
	} else if (verb_is(line, "VRFY", &arg)) {
		line_out_printf(out, "252 2.0.0 Cannot VRFY user\r\n");
	} else if (verb_is(line, "HELP", &arg)) {
		line_out_printf(out, "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT\r\n");
	} else if (verb_is(line, "QUIT", &arg)) {
		line_out_printf(out, "221 2.0.0 Bye\r\n");
		out->close = 1;
	} else {
		line_out_printf(out, "500 5.5.2 Error: command not recognized\r\n");
	}
}

/* ---- the line protocol --------------------------------------------------------------- */

static void *smtp_open(void *ud, const char *peer, line_out *out)
{
	smtp_sim *sim = ud;
	fault_decision d;
	if (fault_decide(sim->faults, FAULT_TARGET, clock_now(sim->ctx->clock), sim->ctx->rng,
			 &d) == 0 &&
	    d.active) {
		if (d.outage) {
			count(&sim->outages);
			line_out_printf(out, "421 4.3.2 smtp-sim: service not available (simulated outage)\r\n");
			out->close = 1;
			return NULL;
		}
		out->delay_us = d.delay_us;
	}
	session *s = calloc(1, sizeof(*s));
	if (!s) {
		line_out_printf(out, "421 4.3.0 smtp-sim: out of memory\r\n");
		out->close = 1;
		return NULL;
	}
	s->sim = sim;
	count(&sim->sessions);
	log_debug(sim->ctx->log, "smtp: session from %s", peer);
	line_out_printf(out, "220 smtp-sim ESMTP ecom test sink\r\n");
	return s;
}

static void smtp_line(void *conn, const char *line, size_t len, int truncated, line_out *out)
{
	session *s = conn;
	if (s->state != ST_DATA) {
		on_command(s, line, truncated, out);
		return;
	}
	if (len == 1 && line[0] == '.' && !truncated) {
		finish_data(s, out);
		return;
	}
	if (truncated) /* a line past the limit of RFC 5321 */
		s->too_big = 1;
	if (line[0] == '.')
		data_append(s, line + 1, len - 1);
	else
		data_append(s, line, len);
}

static void smtp_close(void *conn)
{
	session *s = conn;
	if (!s)
		return;
	txn_reset(s);
	free(s);
}

static const line_proto smtp_proto = {
	.scheme = "smtp",
	.open = smtp_open,
	.line = smtp_line,
	.close = smtp_close,
};

/* ---- HTTP: the operators' side ------------------------------------------------------ */

static void admin_stats(void *ud, msg_req *req, msg_resp *resp)
{
	smtp_sim *sim = ud;
	if (engine_require_admin(sim->ctx, req, resp))
		return;
	msg_resp_json(resp, 200,
		      json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "messages",
				(json_int_t)mailbox_count(sim->mb), "sessions",
				(json_int_t)read_count(&sim->sessions), "accepted",
				(json_int_t)read_count(&sim->accepted), "rejected",
				(json_int_t)read_count(&sim->rejected), "faulted",
				(json_int_t)read_count(&sim->faulted), "outages",
				(json_int_t)read_count(&sim->outages)));
}

static void admin_messages(void *ud, msg_req *req, msg_resp *resp)
{
	smtp_sim *sim = ud;
	if (engine_require_admin(sim->ctx, req, resp) == 0)
		mailbox_http_list(sim->mb, req, resp);
}

static void admin_clear(void *ud, msg_req *req, msg_resp *resp)
{
	smtp_sim *sim = ud;
	if (engine_require_admin(sim->ctx, req, resp) == 0)
		msg_resp_json(resp, 200,
			      json_pack("{s:I}", "deleted", (json_int_t)mailbox_clear(sim->mb)));
}

static int smtp_target(const char *t) { return strcmp(t, FAULT_TARGET) == 0; }

static void sim_handle(void *eng, msg_req *req, msg_resp *resp)
{
	smtp_sim *sim = eng;
	router_dispatch(sim->rt, req, resp);
}

static void sim_destroy(void *eng)
{
	smtp_sim *sim = eng;
	if (!sim)
		return;
	router_free(sim->rt);
	mailbox_free(sim->mb);
	fault_table_free(sim->faults);
	free(sim);
}

static void *sim_create(engine_ctx *ctx, char *err, size_t errlen)
{
	smtp_sim *sim = calloc(1, sizeof(*sim));
	if (!sim) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sim->ctx = ctx;
	int64_t max = config_int(ctx->config, "smtp_sim.max_messages", SMTP_SIM_MAX_MESSAGES);
	int64_t bytes = config_int(ctx->config, "smtp_sim.max_message_bytes",
				   SMTP_SIM_MAX_MESSAGE_BYTES);
	if (max < 1 || max > 10000000 || bytes < 1024 || bytes > 64 * 1024 * 1024) {
		snprintf(err, errlen, "smtp_sim.max_messages (1..10000000) or "
				      "smtp_sim.max_message_bytes (1024..67108864) out of range");
		free(sim);
		return NULL;
	}
	sim->max_bytes = (size_t)bytes;
	sim->mb = mailbox_new((size_t)max, "msg_");
	sim->faults = fault_table_new();
	sim->fault_admin = (chaos_sim_faults){ .ctx = ctx,
					       .table = sim->faults,
					       .valid = smtp_target,
					       .hint = "this simulator takes faults for smtp only" };
	sim->rt = router_new();
	if (!sim->mb || !sim->faults || !sim->rt ||
	    chaos_sim_fault_routes(sim->rt, &sim->fault_admin) ||
	    router_add(sim->rt, "GET", "/admin/smtp/messages", admin_messages, sim) ||
	    router_add(sim->rt, "DELETE", "/admin/smtp/messages", admin_clear, sim) ||
	    router_add(sim->rt, "GET", "/admin/smtp/stats", admin_stats, sim)) {
		snprintf(err, errlen, "out of memory");
		sim_destroy(sim);
		return NULL;
	}
	return sim;
}

const engine_def smtp_sim_engine = {
	.name = "smtp-sim",
	.needs_store = 0,
	.create = sim_create,
	.handle = sim_handle,
	.destroy = sim_destroy,
	.serves_resil_admin = 1,
	.lines = &smtp_proto,
};
