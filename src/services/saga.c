/* saga: the checkout saga's tables, its state machine and the order queue. */
#include "services/saga.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[SAGA_NSTATES] = {
	"STARTED",      "RESERVING", "AUTHORIZING", "CONFIRMING",
	"COMPENSATING", "COMPLETED", "COMPENSATED",
};

static const char *const step_names[SAGA_NSTEPS] = {
	"reserve", "authorize", "enqueue", "capture", "commit",
	"notify",  "clear_cart", "void",   "refund",  "release",
};

static const char *const step_status_names[] = { "NONE", "PENDING", "SUCCEEDED", "FAILED" };

const char *saga_state_name(int state)
{
	return state >= 0 && state < SAGA_NSTATES ? state_names[state] : "?";
}

int saga_state_parse(const char *name)
{
	for (int i = 0; name && i < SAGA_NSTATES; i++)
		if (strcmp(state_names[i], name) == 0)
			return i;
	return -1;
}

int saga_edge(int from, int to)
{
	/* Each forward state moves one step on, or gives up into compensation;
	 * compensation only ends. */
	static const int next[SAGA_NSTATES] = {
		[SAGA_STARTED] = SAGA_RESERVING,       [SAGA_RESERVING] = SAGA_AUTHORIZING,
		[SAGA_AUTHORIZING] = SAGA_CONFIRMING,  [SAGA_CONFIRMING] = SAGA_COMPLETED,
		[SAGA_COMPENSATING] = SAGA_COMPENSATED, [SAGA_COMPLETED] = -1,
		[SAGA_COMPENSATED] = -1,
	};
	if (from < 0 || from >= SAGA_NSTATES || to < 0 || to >= SAGA_NSTATES)
		return ERR_STATE;
	if (next[from] == to)
		return 0;
	if (to == SAGA_COMPENSATING && from <= SAGA_CONFIRMING)
		return 0;
	return ERR_STATE;
}

int saga_terminal(int state) { return state == SAGA_COMPLETED || state == SAGA_COMPENSATED; }

const char *saga_step_name(int step)
{
	return step >= 0 && step < SAGA_NSTEPS ? step_names[step] : "?";
}

const char *saga_step_status_name(int status)
{
	return status >= SAGA_STEP_NONE && status <= SAGA_STEP_FAILED ? step_status_names[status]
								      : "?";
}

static int step_parse(const char *name)
{
	for (int i = 0; name && i < SAGA_NSTEPS; i++)
		if (strcmp(step_names[i], name) == 0)
			return i;
	return -1;
}

static int step_status_parse(const char *name)
{
	for (int i = SAGA_STEP_PENDING; name && i <= SAGA_STEP_FAILED; i++)
		if (strcmp(step_status_names[i], name) == 0)
			return i;
	return -1;
}

/* ---- the saga row ------------------------------------------------------------ */

int saga_insert(store *s, const char *order_id, int64_t expires_at, int64_t now)
{
	return store_runf(s,
			  "INSERT INTO saga (order_id, state, reason, cancel_requested, expires_at, "
			  "created_at, updated_at) VALUES (?, ?, NULL, 0, ?, ?, ?)",
			  NULL, "ttiii", order_id, state_names[SAGA_STARTED], expires_at, now, now);
}

int saga_set_traceparent(store *s, const char *order_id, const char *traceparent)
{
	return store_runf(s, "UPDATE saga SET traceparent = ? WHERE order_id = ?", NULL, "tt",
			  traceparent, order_id);
}

static int load_steps(store *s, saga *out)
{
	int rc = 0;
	store_stmt *st = store_queryf(s,
				      "SELECT name, status, attempts, detail, started_at, at "
				      "FROM saga_step WHERE order_id = ?",
				      &rc, "t", out->order_id);
	if (!st)
		return rc ? rc : ERR_STORE;
	while ((rc = store_step(st)) == STORE_ROW) {
		int k = step_parse(store_col_text(st, 0));
		int status = step_status_parse(store_col_text(st, 1));
		if (k < 0 || status < 0)
			continue; /* a step of a later version: not ours to act on */
		saga_step *p = &out->steps[k];
		const char *detail = store_col_text(st, 3);
		p->status = status;
		p->attempts = store_col_int(st, 2);
		snprintf(p->detail, sizeof(p->detail), "%s", detail ? detail : "");
		p->started_at = store_col_int(st, 4);
		p->at = store_col_int(st, 5);
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int saga_load(store *s, const char *order_id, saga *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->order_id, sizeof(out->order_id), "%s", order_id);
	int rc = 0;
	store_stmt *st = store_queryf(s,
				      "SELECT state, reason, cancel_requested, expires_at, created_at, "
				      "updated_at, traceparent FROM saga WHERE order_id = ?",
				      &rc, "t", order_id);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	if (rc == STORE_ROW) {
		const char *reason = store_col_text(st, 1);
		out->state = saga_state_parse(store_col_text(st, 0));
		snprintf(out->reason, sizeof(out->reason), "%s", reason ? reason : "");
		out->cancel_requested = store_col_int(st, 2) != 0;
		out->expires_at = store_col_int(st, 3);
		out->created_at = store_col_int(st, 4);
		out->updated_at = store_col_int(st, 5);
		const char *tp = store_col_text(st, 6);
		snprintf(out->traceparent, sizeof(out->traceparent), "%s", tp ? tp : "");
	}
	store_reset(st);
	if (rc < 0)
		return rc;
	if (rc == STORE_DONE)
		return ERR_NOT_FOUND;
	if (out->state < 0)
		return ERR_INTERNAL;
	return load_steps(s, out);
}

int saga_set_state(store *s, logger *log, const char *order_id, int from, int to,
		   const char *reason, int64_t now)
{
	if (saga_edge(from, to) != 0) {
		log_error(log, "saga %s: illegal transition %s -> %s refused", order_id,
			  saga_state_name(from), saga_state_name(to));
		return ERR_STATE;
	}
	int64_t changed = 0;
	int rc = store_runf(s,
			    "UPDATE saga SET state = ?, reason = COALESCE(?, reason), updated_at = ? "
			    "WHERE order_id = ? AND state = ?",
			    &changed, "ttitt", state_names[to], reason, now, order_id,
			    state_names[from]);
	if (rc)
		return rc;
	if (changed != 1)
		return ERR_RETRY;
	if (reason)
		log_info(log, "saga %s: %s -> %s (%s)", order_id, state_names[from], state_names[to],
			 reason);
	else
		log_info(log, "saga %s: %s -> %s", order_id, state_names[from], state_names[to]);
	return 0;
}

int saga_step_begin(store *s, const char *order_id, int step, int64_t now)
{
	if (step < 0 || step >= SAGA_NSTEPS)
		return ERR_INVALID;
	return store_runf(s,
			  "INSERT INTO saga_step (order_id, name, status, attempts, detail, "
			  "started_at, at) VALUES (?, ?, ?, 1, NULL, ?, ?) "
			  "ON CONFLICT (order_id, name) DO UPDATE SET status = excluded.status, "
			  "attempts = saga_step.attempts + 1, at = excluded.at",
			  NULL, "tttii", order_id, step_names[step],
			  step_status_names[SAGA_STEP_PENDING], now, now);
}

int saga_step_end(store *s, const char *order_id, int step, int status, const char *detail,
		  int64_t now)
{
	if (step < 0 || step >= SAGA_NSTEPS || status < SAGA_STEP_PENDING ||
	    status > SAGA_STEP_FAILED)
		return ERR_INVALID;
	int64_t changed = 0;
	int rc = store_runf(s,
			    "UPDATE saga_step SET status = ?, detail = ?, at = ? "
			    "WHERE order_id = ? AND name = ?",
			    &changed, "ttitt", step_status_names[status], detail, now, order_id,
			    step_names[step]);
	if (rc == 0 && changed != 1)
		rc = ERR_NOT_FOUND;
	return rc;
}

int saga_request_cancel(store *s, const char *order_id, int64_t now)
{
	int64_t changed = 0;
	int rc = store_runf(s,
			    "UPDATE saga SET cancel_requested = 1, updated_at = ? WHERE order_id = ?",
			    &changed, "it", now, order_id);
	if (rc == 0 && changed != 1)
		rc = ERR_NOT_FOUND;
	return rc;
}

json_t *saga_steps_json(const saga *sg)
{
	int order[SAGA_NSTEPS], n = 0;
	for (int k = 0; k < SAGA_NSTEPS; k++)
		if (sg->steps[k].status != SAGA_STEP_NONE)
			order[n++] = k;
	/* Oldest first; steps begun in the same microsecond keep the
	 * machine's order (insertion sort: at most ten). */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && sg->steps[order[j]].started_at <
						  sg->steps[order[j - 1]].started_at;
		     j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		const saga_step *p = &sg->steps[order[i]];
		char at[40];
		clock_fmt_rfc3339(p->at, at, sizeof(at));
		json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "name", step_names[order[i]], "status",
				      step_status_names[p->status], "attempts",
				      (json_int_t)p->attempts, "at", at);
		if (p->detail[0])
			json_object_set_new(o, "detail", json_string(p->detail));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* ---- the queue -------------------------------------------------------------------- */

int saga_enqueue(store *s, const char *order_id, int64_t due_at, const saga_lease *l,
		 int64_t lease_until, int64_t now)
{
	return store_runf(s,
			  "INSERT INTO order_queue (order_id, due_at, lease_owner, lease_token, "
			  "lease_until, enqueued_at) VALUES (?, ?, ?, ?, ?, ?)",
			  NULL, "tittii", order_id, due_at, l ? l->owner : "", l ? l->token : "",
			  l ? lease_until : (int64_t)0, now);
}

int saga_claim(store *s, const char *order_id, const saga_lease *l, int64_t lease_until,
	       int64_t now)
{
	int64_t changed = 0;
	int rc = store_runf(s,
			    "UPDATE order_queue SET lease_owner = ?, lease_token = ?, lease_until = ? "
			    "WHERE order_id = ? AND lease_until <= ?",
			    &changed, "ttiti", l->owner, l->token, lease_until, order_id, now);
	if (rc)
		return rc;
	if (changed == 1)
		return 0;
	store_stmt *st =
		store_queryf(s, "SELECT 1 FROM order_queue WHERE order_id = ?", &rc, "t", order_id);
	if (!st)
		return rc ? rc : ERR_STORE;
	rc = store_step(st);
	store_reset(st);
	if (rc < 0)
		return rc;
	return rc == STORE_ROW ? ERR_BUSY : ERR_NOT_FOUND;
}

/* Runs sql (whose last two parameters are order_id and the token) and
 * requires that it changed the lease's row. */
static int lease_op(store *s, const char *sql, int64_t v, const char *order_id,
		    const saga_lease *l)
{
	int64_t changed = 0;
	int rc = store_runf(s, sql, &changed, "itt", v, order_id, l->token);
	if (rc == 0 && changed != 1)
		rc = ERR_STATE;
	return rc;
}

int saga_renew(store *s, const char *order_id, const saga_lease *l, int64_t lease_until)
{
	return lease_op(s,
			"UPDATE order_queue SET lease_until = ? WHERE order_id = ? AND lease_token = ?",
			lease_until, order_id, l);
}

int saga_release(store *s, const char *order_id, const saga_lease *l, int64_t due_at)
{
	return lease_op(s,
			"UPDATE order_queue SET due_at = ?, lease_owner = '', lease_token = '', "
			"lease_until = 0 WHERE order_id = ? AND lease_token = ?",
			due_at, order_id, l);
}

int saga_dequeue(store *s, const char *order_id, const saga_lease *l)
{
	int64_t changed = 0;
	int rc = store_runf(s, "DELETE FROM order_queue WHERE order_id = ? AND lease_token = ?",
			    &changed, "tt", order_id, l->token);
	if (rc == 0 && changed != 1)
		rc = ERR_STATE;
	return rc;
}

int saga_hurry(store *s, const char *order_id, int64_t due_at)
{
	return store_runf(s, "UPDATE order_queue SET due_at = ? WHERE order_id = ? AND due_at > ?",
			  NULL, "iti", due_at, order_id, due_at);
}

int saga_due(store *s, int64_t now, int max, char (*ids)[SAGA_ID_MAX], int *n)
{
	*n = 0;
	int rc = 0;
	store_stmt *st = store_queryf(s,
				      "SELECT order_id FROM order_queue WHERE due_at <= ? "
				      "AND lease_until <= ? ORDER BY due_at LIMIT ?",
				      &rc, "iii", now, now, (int64_t)max);
	if (!st)
		return rc ? rc : ERR_STORE;
	while (*n < max && (rc = store_step(st)) == STORE_ROW) {
		const char *id = store_col_text(st, 0);
		snprintf(ids[(*n)++], SAGA_ID_MAX, "%s", id ? id : "");
	}
	store_reset(st);
	return rc < 0 ? rc : 0;
}

int saga_release_owner(store *s, const char *owner, int64_t now, int64_t *freed)
{
	return store_runf(s,
			  "UPDATE order_queue SET lease_owner = '', lease_token = '', lease_until = 0, "
			  "due_at = ? WHERE lease_owner = ?",
			  freed, "it", now, owner);
}
