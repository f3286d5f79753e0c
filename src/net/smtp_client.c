/* smtp_client: libcurl easy handles, one per thread, kept between messages
 * so that the relay's connection is used again (one SMTP session carries
 * many messages: no new TCP connection, greeting and EHLO per message). */
#include "net/smtp_client.h"
#include "net/easy_slot.h"
#include "core/err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#define MAX_RCPT 100

typedef struct upload {
	const char *data;
	size_t len, off;
	int started; /* libcurl asked for the text: DATA was accepted */
} upload;

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	upload *u = ud;
	u->started = 1;
	size_t room = size * nitems, left = u->len - u->off;
	size_t n = left < room ? left : room;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

static easy_slot slot = EASY_SLOT_INIT;

/* The calling thread's handle, its options cleared (its connections kept). */
static CURL *thread_handle(void)
{
	int fresh;
	CURL *h = easy_slot_get(&slot, &fresh);
	if (h && !fresh)
		curl_easy_reset(h);
	return h;
}

/* An address fit for "<addr>": no brackets, spaces or control bytes. */
static int valid_addr(const char *a)
{
	size_t n = a ? strlen(a) : 0;
	if (n == 0 || n > 254 || !strchr(a, '@'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] <= ' ' || a[i] == '<' || a[i] == '>' || a[i] == 0x7f)
			return 0;
	return 1;
}

int smtp_client_send(const smtp_message *m, char *err, size_t errlen)
{
	err[0] = '\0';
	if (!m || !m->url || strncmp(m->url, "smtp://", 7) != 0 || !valid_addr(m->from) ||
	    m->nto < 1 || m->nto > MAX_RCPT || !m->data) {
		snprintf(err, errlen, "bad message (url, sender or recipients)");
		return ERR_INVALID;
	}
	struct curl_slist *rcpt = NULL;
	char addr[300];
	for (int i = 0; i < m->nto; i++) {
		if (!valid_addr(m->to[i])) {
			curl_slist_free_all(rcpt);
			snprintf(err, errlen, "bad recipient");
			return ERR_INVALID;
		}
		snprintf(addr, sizeof(addr), "<%s>", m->to[i]);
		struct curl_slist *next = curl_slist_append(rcpt, addr);
		if (!next) {
			curl_slist_free_all(rcpt);
			return ERR_NOMEM;
		}
		rcpt = next;
	}
	CURL *h = thread_handle();
	if (!h) {
		curl_slist_free_all(rcpt);
		return ERR_NOMEM;
	}
	upload u = { .data = m->data, .len = m->len };
	char from[300], ebuf[CURL_ERROR_SIZE] = "";
	snprintf(from, sizeof(from), "<%s>", m->from);
	long timeout = m->timeout_ms > 0 ? (long)m->timeout_ms : 10000;
	curl_easy_setopt(h, CURLOPT_URL, m->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp");
#endif
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_READDATA, &u);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout < 2000 ? timeout : 2000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, ebuf);
	/* Never reuse a connection idle long enough for the relay to be
	 * closing it (our sink closes idle ones after 30 s by default). */
	curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 10L);
	CURLcode cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	/* The handle outlives this call: drop pointers into this frame. */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(h, CURLOPT_READDATA, NULL);
	/* After a failed exchange the thread starts afresh: a new handle, so
	 * a new connection (whatever state the old one was left in). */
	if (cc != CURLE_OK)
		easy_slot_drop(&slot);
	curl_slist_free_all(rcpt);
	if (cc == CURLE_OK)
		return 0;
	snprintf(err, errlen, "%s (last reply %ld)", ebuf[0] ? ebuf : curl_easy_strerror(cc), code);
	if (cc == CURLE_OPERATION_TIMEDOUT)
		return ERR_TIMEOUT;
	if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST || !u.started)
		return ERR_UNAVAILABLE;
	return ERR_IO;
}

int smtp_client_mail(void *ud, const smtp_message *m, char *err, size_t errlen)
{
	(void)ud;
	return smtp_client_send(m, err, errlen);
}
