/* outbox: one event row in the caller's transaction. */
#include "bus/outbox.h"
#include "core/err.h"

#include <stddef.h>

int outbox_put(store *s, const char *topic, const char *key, const char *payload,
	       const char *traceparent, int64_t now_us)
{
	if (!s || !topic || !topic[0] || !key || !payload)
		return ERR_INVALID;
	return store_runf(s,
			  "INSERT INTO outbox (topic, key, payload, created_at, traceparent) "
			  "VALUES (?, ?, ?, ?, ?)",
			  NULL, "tttit", topic, key, payload, now_us, traceparent);
}
