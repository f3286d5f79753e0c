/* thelp: small assertions and fixtures the HTTP-facing unit tests share
 * (test code only). */
#ifndef ECOM_THELP_H
#define ECOM_THELP_H

#include <jansson.h>

#include "net/msg.h"

/* The body of resp parsed as JSON (new reference); fails the test when it
 * is absent or not JSON. */
json_t *thelp_body_json(const msg_resp *resp);
/* The string member key of o; fails the test when it is not a string. */
const char *thelp_jstr(json_t *o, const char *key);
/* A loopback port nothing listens on (bound, then closed), or -1. */
int thelp_closed_port(void);

#endif
