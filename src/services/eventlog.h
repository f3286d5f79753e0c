/* eventlog: a diagnostic consumer of the event bus. It subscribes to the
 * platform's topics that have a producer today (inventory, orders,
 * payments) as consumer "eventlog" and keeps every event it receives, once
 * per message id, in its own database; GET /admin/eventlog?topic=&key=&after=&limit= (admin)
 * lists them with how often each was applied (always 1 unless exactly-once
 * broke). Not started by `ecom up`: run `ecom serve eventlog` beside a
 * platform to watch its events, as the integration tests do. It is also
 * the smallest example of a consuming engine: engine_def.subs lists the
 * topics, engine_def.consume applies one message inside the bus's
 * transaction. */
#ifndef ECOM_EVENTLOG_H
#define ECOM_EVENTLOG_H

#include "services/engine.h"

extern const engine_def eventlog_engine;

#endif
