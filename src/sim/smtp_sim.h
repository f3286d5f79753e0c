/* smtp_sim: the mail relay of the outside world, simulated: an SMTP sink
 * ("smtp-sim", served by `ecom sim smtp`) that keeps every message it
 * accepts, for operators and tests to read back.
 *
 * SMTP (RFC 5321, the part a sending client uses), spoken on the engine's
 * side port through engine_def.lines (the host owns the socket; this code
 * sees lines): a 220 greeting, EHLO/HELO, MAIL FROM:<a> (SIZE= honoured),
 * RCPT TO:<a> (up to 100), DATA (a "." line ends it; a leading ".." loses
 * one dot, undoing the sender's dot-stuffing), RSET, NOOP, VRFY, HELP and
 * QUIT; out-of-order commands get 503, unknown ones 500, oversized
 * messages 552. No authentication, no TLS, no relaying: everything
 * accepted is kept.
 *
 * HTTP (admin token): GET /admin/smtp/messages?to=&contains=&limit= (the
 * kept messages, oldest first: {id, from, to, subject, message_id, body,
 * data, received_at}), DELETE /admin/smtp/messages, GET /admin/smtp/stats,
 * and GET/PUT/DELETE /admin/faults/smtp. Faults act on SMTP: an outage
 * answers every new connection (and a message's end) with 421 and closes;
 * latency delays the greeting and the reply to a message's end; a failed
 * draw answers a message's end with 451 (nothing kept), so the sender
 * retries.
 *
 * No store: messages live in memory, the oldest dropped beyond
 * smtp_sim.max_messages. Thread-safe. */
#ifndef ECOM_SMTP_SIM_H
#define ECOM_SMTP_SIM_H

#include "services/engine.h"

extern const engine_def smtp_sim_engine;

#define SMTP_SIM_MAX_MESSAGES 10000
#define SMTP_SIM_MAX_MESSAGE_BYTES (1024 * 1024)

#endif
