/* smtp_client: outbound mail over libcurl's SMTP. One message to a relay
 * (smtp://HOST:PORT), with its envelope (MAIL FROM, RCPT TO) and its text
 * (DATA, which libcurl dot-stuffs). No authentication and no TLS: the relay
 * is the platform's own (the loopback sink of `ecom sim smtp`, or a trusted
 * relay next to it). Each thread keeps its connection to the relay between
 * messages (one SMTP session, many messages), for at most 10 s of
 * idleness; after a failed exchange its next message opens a new one. This
 * is what the daemon host gives engines as ctx->mail; engines never call
 * it themselves. */
#ifndef ECOM_SMTP_CLIENT_H
#define ECOM_SMTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct smtp_message {
	const char *url;       /* "smtp://127.0.0.1:2525" */
	const char *from;      /* envelope sender, an address ("orders@ecom.test") */
	const char *const *to; /* envelope recipients (addresses) */
	int nto;               /* 1..100 */
	const char *data;      /* headers, a blank line, the body; CRLF line ends */
	size_t len;
	int64_t timeout_ms;    /* the whole exchange; 0 means 10 s */
} smtp_message;

/* Sends m. Returns 0 when the relay accepted the message (250 after DATA);
 * ERR_UNAVAILABLE when nothing was handed over (no connection, or the
 * relay refused before DATA: a 421 greeting, a 4xx or 5xx to MAIL or
 * RCPT); ERR_TIMEOUT when the exchange ran out of time; ERR_IO for any
 * other failure (the message was refused at the end of DATA, or the
 * connection broke meanwhile: it may or may not have been kept);
 * ERR_INVALID for a malformed m. err gets libcurl's words and the relay's
 * last reply code ("451 ..."). */
int smtp_client_send(const smtp_message *m, char *err, size_t errlen);

/* smtp_client_send shaped as engine_ctx.mail (ud is unused). */
int smtp_client_mail(void *ud, const smtp_message *m, char *err, size_t errlen);

#endif
