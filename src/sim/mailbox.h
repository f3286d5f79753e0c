/* mailbox: what a simulated provider received - the SMTP sink's mail, the
 * SMS sink's texts - kept in memory for operators and tests to read back.
 * A bounded list in arrival order (the oldest is dropped first), read with
 * filters on recipient and text; an item may carry the idempotency key it
 * was sent with, so a provider can answer a repeat with the first item.
 * Thread-safe (one mutex). */
#ifndef ECOM_MAILBOX_H
#define ECOM_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "net/msg.h"

#define MAILBOX_ID_MAX 32
#define MAILBOX_MAX_TO 100

typedef struct mailbox mailbox;

/* One item as given to mailbox_add; everything is copied. */
typedef struct mailbox_item {
	const char *from;
	const char *const *to;
	int nto;                /* 1..MAILBOX_MAX_TO */
	const char *subject;    /* NULL for a text */
	const char *message_id; /* the Message-ID header, or NULL */
	const char *body;       /* the text, or the mail's body */
	const char *data;       /* the whole mail as received, or NULL */
	const char *key;        /* an idempotency key, or NULL */
} mailbox_item;

/* A mailbox of at most max_items (>= 1) whose ids are prefix + a number
 * ("msg_1"). Owned: mailbox_free(). NULL out of memory. */
mailbox *mailbox_new(size_t max_items, const char *prefix);
void mailbox_free(mailbox *mb);

/* Keeps a copy of it, received at now_us; its new id into id
 * (MAILBOX_ID_MAX bytes). When it has a key that a kept item has too,
 * keeps nothing and returns ERR_CONFLICT with that item's id in id.
 * Otherwise 0, ERR_INVALID or ERR_NOMEM. */
int mailbox_add(mailbox *mb, const mailbox_item *it, int64_t now_us, char *id);

/* The item called id as JSON (new reference; see mailbox_list), or NULL. */
json_t *mailbox_get(mailbox *mb, const char *id);

/* {"items": [item...], "total": matching, "kept": all kept, "dropped":
 * dropped for room}, oldest first, at most limit items (the last ones).
 * to (when not NULL/"") must equal a recipient, ignoring case; contains
 * (when not NULL/"") must occur in the subject, the body or the data. An
 * item is {id, from, to: [...], subject, message_id, body, data, key,
 * received_at}, absent parts null. New reference. */
json_t *mailbox_list(mailbox *mb, const char *to, const char *contains, int limit);

/* GET on a mailbox with ?to=&contains=&limit= (1..10000, default 1000):
 * 200 with mailbox_list's answer, or 400 naming the bad parameter. The
 * caller has checked who asks. */
void mailbox_http_list(mailbox *mb, const msg_req *req, msg_resp *resp);

/* Forgets every item; returns how many there were. */
size_t mailbox_clear(mailbox *mb);
size_t mailbox_count(mailbox *mb);

#endif
