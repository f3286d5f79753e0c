/* outbox: one event row in the caller's transaction. */
#include "bus/outbox.h"
#include "core/err.h"

#include <stddef.h>

int outbox_put(store *s, const char *topic, const char *key, const char *payload,
	       const char *traceparent, int64_t now_us)
{
	if (!s || !topic || !topic[0] || !key || !payload)
		return ERR_INVALID;
	int rc = 0;
	store_stmt *st = store_prepare(s,
				       "INSERT INTO outbox (topic, key, payload, created_at, traceparent) "
				       "VALUES (?, ?, ?, ?, ?)",
				       &rc);
	if (!st)
		return rc ? rc : ERR_STORE;
	if ((rc = store_bind_text(st, 1, topic)) == 0 && (rc = store_bind_text(st, 2, key)) == 0 &&
	    (rc = store_bind_text(st, 3, payload)) == 0 && (rc = store_bind_int(st, 4, now_us)) == 0)
		rc = traceparent ? store_bind_text(st, 5, traceparent) : store_bind_null(st, 5);
	if (rc == 0)
		rc = store_step(st);
	store_reset(st);
	return rc < 0 ? rc : 0;
}
