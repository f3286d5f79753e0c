/* view_faults: the active injected faults, per target and instance; add
 * one for a service or a provider, clear one. */
#include "tui/view.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

static const table_col cols[] = {
	{ "TARGET", 11, 0 }, { "INSTANCE", 16, 0 }, { "LATENCY", 7, 1 }, { "JITTER", 6, 1 },
	{ "ERR%", 6, 1 },    { "STATUS", 6, 1 },    { "OUTAGE", 6, 0 },  { "EXPIRES", 10, 0 },
};

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_FAULTS];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	for (size_t i = 0; i < s->nfaults; i++) {
		const model_fault *f = &s->faults[i];
		char key[TABLE_KEY];
		snprintf(key, sizeof(key), "%s@%s", f->target, f->instance);
		table_row *r = table_add(t, key, f->outage ? TONE_BAD : TONE_WARN);
		if (!r)
			break;
		table_set(r, 0, 0, "%s", f->target);
		table_set(r, 1, 0, "%s", f->instance);
		table_set(r, 2, (double)f->latency_ms, "%lld", f->latency_ms);
		table_set(r, 3, (double)f->jitter_ms, "%lld", f->jitter_ms);
		table_set(r, 4, f->error_rate, "%.1f", 100.0 * f->error_rate);
		table_set(r, 5, f->error_status, "%d", f->error_status);
		table_set(r, 6, f->outage, "%s", f->outage ? "yes" : "no");
		int64_t exp = 0;
		if (f->expires_at[0] && model_parse_time(f->expires_at, &exp) == 0) {
			long long left = (long long)((exp - c->now_us) / 1000000);
			table_set(r, 7, (double)exp, "in %llds", left > 0 ? left : 0);
		} else {
			table_set(r, 7, 0, "never");
		}
	}
	table_apply(t);
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	if (c->prompting)
		screen_text(top, 1, COLS - 1, screen_attr(TONE_KEY),
			    "TARGET [latency=MS] [jitter=MS] [error=RATE] [status=N] [outage] [for=90s]", 1);
	else
		screen_printf(top, 1, COLS - 1, A_NORMAL, 1, "%zu active faults (one row per instance)",
			      s->nfaults);
	if (s->pt.faults.state != PART_OK)
		console_draw_na(top, 1, COLS - 1, &s->pt.faults, "faults");
	if (s->nfaults == 0 && s->pt.faults.state == PART_OK) {
		screen_text(top + 2, 2, COLS - 2, screen_attr(TONE_DIM), "No fault is active.", 1);
		if (!c->read_only)
			screen_text(top + 3, 2, COLS - 2, screen_attr(TONE_DIM),
				    "a adds one: TARGET [latency=MS] [jitter=MS] [error=RATE] "
				    "[status=N] [outage] [for=90s]",
				    1);
		return;
	}
	console_draw_table(c, &c->tables[V_FAULTS], top + 1, height - 1);
}

static void add_done(console *c, const char *text)
{
	char target[80], err[200];
	json_t *body = NULL;
	if (model_parse_fault_line(text, target, sizeof(target), &body, err, sizeof(err)) != 0) {
		console_note(c, 1, "%s", err);
		return;
	}
	action a;
	memset(&a, 0, sizeof(a));
	a.kind = ACT_FAULT_SET;
	snprintf(a.a, sizeof(a.a), "%s", target);
	char *js = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!js || strlen(js) >= sizeof(a.body)) {
		free(js);
		console_note(c, 1, "the fault does not fit");
		return;
	}
	snprintf(a.body, sizeof(a.body), "%s", js);
	free(js);
	char q[256];
	snprintf(q, sizeof(q), "Inject on %s: %s?", target, text);
	console_confirm(c, q, &a, 1);
}

static int key(console *c, const snapshot *s, int ch)
{
	switch (ch) {
	case 'a': {
		if (console_refuse_ro(c))
			return 1;
		const table_row *r = table_current(&c->tables[V_FAULTS]);
		char init[80] = "";
		if (r)
			snprintf(init, sizeof(init), "%.64s ", r->cells[0]);
		console_prompt(c, "add fault:", init, add_done);
		return 1;
	}
	case 'c':
	case 'x': {
		if (console_refuse_ro(c))
			return 1;
		const table_row *rs[32];
		char list[200];
		size_t n = console_pick(c, 0, NULL, rs, 32, list, sizeof(list));
		action acts[32];
		for (size_t i = 0; i < n; i++) {
			memset(&acts[i], 0, sizeof(acts[i]));
			acts[i].kind = ACT_FAULT_CLEAR;
			snprintf(acts[i].a, sizeof(acts[i].a), "%.64s", rs[i]->cells[0]);
		}
		if (n == 0) {
			console_note(c, 1, "no fault selected");
			return 1;
		}
		char q[256];
		snprintf(q, sizeof(q), "Clear the faults on %s (every instance)?", list);
		console_confirm(c, q, acts, (int)n);
		return 1;
	}
	default:
		return 0;
	}
}

const view view_faults = {
	.name = "Faults",
	.keys = "a add  c clear  Space tag  / filter",
	.keys_ro = "Enter details  / filter  s sort",
	.help = "a      add a fault: TARGET [latency=MS] [jitter=MS] [error=RATE]\n"
		"       [status=N] [outage] [for=90s|15m|2h]; TARGET is a service\n"
		"       (catalog, payment, ...), the gateway, or a provider (stripe)\n"
		"c      clear the faults of the row's target (or every tagged one)",
	.rows = rows,
	.draw = draw,
	.key = key,
};
