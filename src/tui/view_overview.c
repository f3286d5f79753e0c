/* view_overview: the platform at a glance: the header meters and one row
 * per service. */
#include "tui/view.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const table_col cols[] = {
	{ "SERVICE", 12, 0 }, { "INST", 6, 1 }, { "HEALTH", 9, 0 }, { "RPS", 8, 1 },
	{ "P50 MS", 8, 1 },   { "P99 MS", 8, 1 }, { "ERR%", 6, 1 }, { "IN FLIGHT", 9, 1 },
};

static void stat_cell(table_row *r, int col, int has, double v, const char *fmt)
{
	if (has && !isnan(v))
		table_set(r, col, v, fmt, v);
	else
		table_set(r, col, -1, "n/a");
	if (!has || isnan(v))
		r->tones[col] = TONE_DIM;
}

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_OVERVIEW];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	for (size_t i = 0; i < s->nsvcs; i++) {
		const model_service *m = &s->svcs[i];
		const char *health;
		int tn;
		int want = m->instances > m->expected ? m->instances : m->expected;
		if (m->instances == 0 && m->expected == 0) {
			health = m->has_stats ? "answers" : "?";
			tn = m->has_stats ? TONE_OK : TONE_DIM;
		} else if (m->healthy == 0) {
			health = "down";
			tn = TONE_BAD;
		} else if (m->healthy < want) {
			health = "degraded";
			tn = TONE_WARN;
		} else {
			health = "up";
			tn = TONE_OK;
		}
		table_row *r = table_add(t, m->name, 0);
		if (!r)
			break;
		table_set(r, 0, 0, "%s", m->name);
		if (want > 0)
			table_set(r, 1, want, "%d/%d", m->healthy, want);
		else
			table_set(r, 1, 0, "-");
		table_set(r, 2, 0, "%s", health);
		r->tones[2] = tn;
		stat_cell(r, 3, m->has_stats, m->rps, "%.1f");
		stat_cell(r, 4, m->has_stats, m->p50_ms, "%.1f");
		stat_cell(r, 5, m->has_stats, m->p99_ms, "%.1f");
		stat_cell(r, 6, m->has_stats, isnan(m->error_rate) ? NAN : 100.0 * m->error_rate,
			  "%.1f");
		if (m->has_stats && !isnan(m->error_rate) && m->error_rate > 0.05)
			r->tones[6] = TONE_BAD;
		else if (m->has_stats && !isnan(m->error_rate) && m->error_rate > 0.01)
			r->tones[6] = TONE_WARN;
		if (m->has_stats && !isnan(m->in_flight))
			table_set(r, 7, m->in_flight, "%.0f", m->in_flight);
		else if (m->instances > 0 && strcmp(m->name, "gateway") != 0)
			table_set(r, 7, m->outstanding, "%d", m->outstanding); /* the gateway's count */
		else
			stat_cell(r, 7, 0, NAN, "");
	}
	table_apply(t);
}

/* One "Label value" meter at x; returns the next x. */
static int meter(int y, int x, const char *label, const char *value, tone tn)
{
	if (x >= COLS)
		return x;
	x += screen_text(y, x, COLS - x, screen_attr(TONE_DIM), label, 0);
	x += screen_text(y, x, COLS - x, A_NORMAL, " ", 0);
	x += screen_text(y, x, COLS - x, screen_attr(tn) | A_BOLD, value, 0);
	return x + screen_text(y, x, COLS - x, A_NORMAL, "   ", 0);
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	const model_meters *m = &s->meters;
	char v[64];
	int x = 1, y = top;
	snprintf(v, sizeof(v), "%d/%d", m->services_up, m->services_total);
	x = meter(y, x, "services up", v,
		  m->services_total == 0 ? TONE_DIM
		  : m->services_up < m->services_total ? TONE_BAD
						       : TONE_OK);
	console_fmt_num(v, sizeof(v), m->rps, "%.1f");
	x = meter(y, x, "req/s", v, isnan(m->rps) ? TONE_DIM : TONE_INFO);
	console_fmt_num(v, sizeof(v), m->error_pct, "%.2f%%");
	x = meter(y, x, "errors", v,
		  isnan(m->error_pct)	 ? TONE_DIM
		  : m->error_pct > 5 ? TONE_BAD
		  : m->error_pct > 1 ? TONE_WARN
				     : TONE_OK);
	console_fmt_num(v, sizeof(v), m->p99_ms, "%.1f ms");
	meter(y, x, "p99", v, isnan(m->p99_ms) ? TONE_DIM : TONE_INFO);
	y++;
	x = 1;
	if (s->pt.breakers.state == PART_OK || s->nbreakers)
		snprintf(v, sizeof(v), "%d", m->open_breakers);
	else
		snprintf(v, sizeof(v), "n/a");
	x = meter(y, x, "open breakers", v, m->open_breakers ? TONE_BAD : TONE_OK);
	if (m->orders_per_min < 0)
		snprintf(v, sizeof(v), "n/a");
	else
		snprintf(v, sizeof(v), "%s%d", m->orders_capped ? ">=" : "", m->orders_per_min);
	x = meter(y, x, "orders/min", v, m->orders_per_min < 0 ? TONE_DIM : TONE_INFO);
	if (s->pt.queues.state == PART_OK || s->nqueues)
		snprintf(v, sizeof(v), "%lld msg, %lld ms", m->queue_lag, m->queue_lag_ms);
	else
		snprintf(v, sizeof(v), "n/a");
	x = meter(y, x, "queue lag", v, m->queue_lag_ms > 5000 ? TONE_WARN : TONE_INFO);
	snprintf(v, sizeof(v), "%lld", m->dead_letters);
	meter(y, x, "dead", v, m->dead_letters ? TONE_BAD : TONE_OK);
	y++;
	if (s->pt.stats.state == PART_NA)
		screen_text(y, 1, COLS - 1, screen_attr(TONE_DIM),
			    "rates, latencies, errors: n/a (no /admin/stats on this platform)",
			    1);
	else if (s->pt.stats.state == PART_ERR)
		console_draw_na(y, 1, COLS - 1, &s->pt.stats, "stats");
	y++;
	if (s->pt.services.state != PART_OK && s->nsvcs == 0) {
		console_draw_na(y, 1, COLS - 1, &s->pt.services, "services");
		return;
	}
	console_draw_table(c, &c->tables[V_OVERVIEW], y, height - (y - top));
}

const view view_overview = {
	.name = "Overview",
	.keys = "Enter details  / filter  s sort",
	.keys_ro = "Enter details  / filter  s sort",
	.help = "services up: services with a healthy instance, of all known\n"
		"req/s, errors, p99: the gateway's (GET /admin/stats), n/a without it\n"
		"orders/min: orders created in the last minute (GET /admin/sagas)\n"
		"queue lag: messages waiting and the oldest's age (GET /admin/queues)",
	.rows = rows,
	.draw = draw,
	.key = NULL,
};
