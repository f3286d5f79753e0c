/* smtpfix: the SMTP sink (smtp_sim_engine) served on a loopback port by a
 * real line_server, as `ecom serve smtp-sim` serves it, for tests of code
 * that sends mail (the sink itself, the notification service). Its engine
 * runs on an efix context (virtual clock; admin token EFIX_ADMIN). The
 * sink can be stopped (connections refused) and started again on the same
 * port. Failures fail the running cmocka test (test code only); include
 * after cmocka.h. */
#ifndef ECOM_TEST_SMTPFIX_H
#define ECOM_TEST_SMTPFIX_H

#include <jansson.h>

#include "net/line_server.h"

#include "efix.h"

typedef struct smtpfix {
	efix *f;           /* the sink's engine and context */
	line_server *srv;  /* NULL while stopped */
	int port;
	char url[64];      /* "smtp://127.0.0.1:PORT" */
} smtpfix;

/* A sink listening on a free loopback port. Owned: smtpfix_free(). */
smtpfix *smtpfix_new(void);
void smtpfix_free(smtpfix *s);

/* Stops listening (new connections are refused); starts again on the
 * same port. */
void smtpfix_stop(smtpfix *s);
void smtpfix_start(smtpfix *s);

/* GET /admin/smtp/messages?to=&contains= (either may be NULL): the answer
 * (new reference). */
json_t *smtpfix_messages(smtpfix *s, const char *to, const char *contains);
/* Its "total". */
long long smtpfix_count(smtpfix *s, const char *to, const char *contains);
/* PUT /admin/faults/smtp with json, or DELETE it when json is NULL; fails
 * the test unless 200. */
void smtpfix_fault(smtpfix *s, const char *json);

#endif
