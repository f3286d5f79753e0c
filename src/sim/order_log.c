/* order_log: a growable array of the orders a run placed. */
#include "sim/order_log.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

order_log *order_log_new(void) { return calloc(1, sizeof(order_log)); }

void order_log_free(order_log *l)
{
	if (!l)
		return;
	free(l->v);
	free(l);
}

int order_log_add(order_log *l, const char *id, int user, uint64_t arrival, int created_status)
{
	if (!id || !id[0] || strlen(id) >= sizeof l->v[0].id)
		return ERR_INVALID;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		order_entry *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return ERR_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	order_entry *e = &l->v[l->n++];
	memset(e, 0, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->user = user;
	e->arrival = arrival;
	e->created_status = created_status;
	e->state = OL_UNREAD;
	return 0;
}

void order_log_set(order_log *l, size_t i, const char *status, const char *reason, const char *saga)
{
	if (i >= l->n)
		return;
	order_entry *e = &l->v[i];
	if (!status)
		e->state = OL_UNKNOWN;
	else if (strcmp(status, "CONFIRMED") == 0)
		e->state = OL_CONFIRMED;
	else if (strcmp(status, "CANCELLED") == 0)
		e->state = OL_CANCELLED;
	else if (strcmp(status, "PENDING") == 0)
		e->state = OL_PENDING;
	else if (strcmp(status, "AWAITING_PAYMENT") == 0)
		e->state = OL_AWAITING;
	else
		e->state = OL_OTHER;
	snprintf(e->reason, sizeof e->reason, "%s", reason ? reason : "");
	snprintf(e->saga, sizeof e->saga, "%s", saga ? saga : "");
}

int order_log_final(const order_log *l, size_t i)
{
	order_state s = i < l->n ? l->v[i].state : OL_UNKNOWN;
	return s == OL_CONFIRMED || s == OL_CANCELLED || s == OL_UNKNOWN;
}

void order_log_tally(const order_log *l, report_orders *o)
{
	o->created = l->n;
	o->created_202 = o->confirmed = o->cancelled = o->pending = o->awaiting = 0;
	o->unknown = o->other = o->saga_completed = o->saga_compensated = o->saga_open = 0;
	memset(o->cancelled_by, 0, sizeof o->cancelled_by);
	for (size_t i = 0; i < l->n; i++) {
		const order_entry *e = &l->v[i];
		o->created_202 += e->created_status == 202;
		switch (e->state) {
		case OL_CONFIRMED: o->confirmed++; break;
		case OL_CANCELLED:
			o->cancelled++;
			o->cancelled_by[report_reason_of(e->reason)]++;
			break;
		case OL_PENDING: o->pending++; break;
		case OL_AWAITING: o->awaiting++; break;
		case OL_UNKNOWN: o->unknown++; break;
		case OL_UNREAD: /* never read back: as good as unknown */ o->unknown++; break;
		default: o->other++; break;
		}
		if (strcmp(e->saga, "COMPLETED") == 0)
			o->saga_completed++;
		else if (strcmp(e->saga, "COMPENSATED") == 0)
			o->saga_compensated++;
		else if (e->saga[0])
			o->saga_open++;
	}
}
