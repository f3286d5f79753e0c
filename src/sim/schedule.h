/* schedule: the scenario's timed operator actions (the [schedule]
 * section), run on a thread of their own while the load runs, each at its
 * time from the run's start:
 *
 *   fault set/clear TARGET   PUT/DELETE /admin/faults/{target} (admin token)
 *   breaker trip/reset SVC   POST /admin/breakers/{svc}/trip|reset
 *   kill/restart TARGET      SIGKILL/SIGTERM to the instances of a service
 *                            (or one instance by id) listed in the state
 *                            directory's instances.json; the supervisor
 *                            restarts them
 *   pause/resume TARGET      SIGSTOP/SIGCONT: a hung service
 *   broker down/up           POST /admin/bus/broker/down|up, the bus's
 *                            control of the Kafka mock broker; a platform
 *                            without that route answers 404, reported as
 *                            "not available"
 *
 * An action never stops the run: its outcome (✓/✗ with what happened) goes
 * into the report. Processes left paused are resumed when the schedule
 * stops. */
#ifndef ECOM_SCHEDULE_H
#define ECOM_SCHEDULE_H

#include <stdint.h>

#include "sim/report.h"
#include "sim/scenario.h"

/* The route the bus work serves for the broker (POST, admin token). */
#define SCHEDULE_BROKER_ROUTE "/admin/bus/broker/"

typedef struct schedule_opts {
	const char *url;       /* the gateway (copied) */
	const char *token;     /* the admin token (copied) */
	const char *state_dir; /* where instances.json is; NULL: signals are not available */
	int64_t t0_mono;       /* the run's start, clock_mono_us() */
} schedule_opts;

typedef struct schedule schedule;

/* Starts the thread (nothing to do when s has no [schedule]). s is
 * borrowed and must outlive the schedule. NULL when out of memory or the
 * thread cannot start. */
schedule *schedule_start(const scenario *s, const schedule_opts *o);
/* Moves the outcomes of the actions done since the last call into r. */
void schedule_collect(schedule *sc, report *r);
/* Stops the thread (actions not yet due do not run), resumes what it
 * paused, collects the last outcomes into r (may be NULL) and frees. */
void schedule_stop(schedule *sc, report *r);

/* Runs one action now (what the thread does at its time); fills e's ok and
 * message. Exposed for tests. */
void schedule_run_event(const scenario_event *ev, const schedule_opts *o, report_event *e);

#endif
