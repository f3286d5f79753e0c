/* view_breakers: every circuit breaker (caller -> callee, per instance),
 * its state in colour; trip and reset. */
#include "tui/view.h"
#include "core/text.h"

#include <stdio.h>
#include <string.h>

static const table_col cols[] = {
	{ "FROM", 11, 0 }, { "TO", 11, 0 },  { "STATE", 11, 0 },
	{ "FAIL%", 6, 1 }, { "SLOW%", 6, 1 }, { "CALLS", 6, 1 }, { "INSTANCE", 14, 0 },
};

static tone state_tone(const char *st)
{
	if (strcmp(st, "CLOSED") == 0)
		return TONE_OK;
	if (strcmp(st, "HALF_OPEN") == 0)
		return TONE_WARN;
	if (strcmp(st, "OPEN") == 0)
		return TONE_BAD;
	if (strcmp(st, "FORCED_OPEN") == 0)
		return TONE_FORCED;
	return TONE_DIM;
}

static void rate_cell(table_row *r, int col, double v)
{
	if (v < 0)
		table_set(r, col, -1, "-");
	else
		table_set(r, col, v, "%.1f", v);
}

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_BREAKERS];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	for (size_t i = 0; i < s->nbreakers; i++) {
		const model_breaker *b = &s->breakers[i];
		char key[TABLE_KEY];
		snprintf(key, sizeof(key), "%s>%s@%s", b->from, b->to, b->instance);
		table_row *r = table_add(t, key, 0);
		if (!r)
			break;
		table_set(r, 0, 0, "%s", b->from);
		table_set(r, 1, 0, "%s", b->to);
		table_set(r, 2, 0, "%s", b->state);
		r->tones[2] = state_tone(b->state);
		rate_cell(r, 3, b->failure_rate);
		rate_cell(r, 4, b->slow_call_rate);
		table_set(r, 5, (double)b->calls, "%lld", b->calls);
		table_set(r, 6, 0, "%s", b->instance);
	}
	table_apply(t);
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	int y = top;
	int open = 0;
	for (size_t i = 0; i < s->nbreakers; i++)
		open += model_breaker_is_open(s->breakers[i].state);
	screen_printf(y, 1, COLS - 1, A_NORMAL, 1, "%zu breakers, %d open", s->nbreakers, open);
	if (s->pt.breakers.state != PART_OK)
		console_draw_na(y, 1, COLS - 1, &s->pt.breakers, "breakers");
	y++;
	if (s->nbreakers == 0 && s->pt.breakers.state == PART_OK) {
		screen_text(y + 1, 2, COLS - 2, screen_attr(TONE_DIM),
			    "No breaker yet: an edge gets one on its first call.", 1);
		if (!c->read_only)
			screen_text(y + 2, 2, COLS - 2, screen_attr(TONE_DIM),
				    "T trips the breakers into a service by name.", 1);
		return;
	}
	console_draw_table(c, &c->tables[V_BREAKERS], y, height - 1);
}

/* Asks to trip or reset the breakers into the callees named. */
static void ask(console *c, action_kind kind, const char *const *names, size_t n, const char *list)
{
	if (n == 0) {
		console_note(c, 1, "no breaker selected (T trips one by name)");
		return;
	}
	action acts[16];
	for (size_t i = 0; i < n; i++) {
		memset(&acts[i], 0, sizeof(acts[i]));
		acts[i].kind = kind;
		snprintf(acts[i].a, sizeof(acts[i].a), "%.63s", names[i]);
	}
	char q[256];
	if (kind == ACT_TRIP)
		snprintf(q, sizeof(q),
			 "Trip every breaker into %s (FORCED_OPEN: calls to it fail fast everywhere)?",
			 list);
	else
		snprintf(q, sizeof(q), "Reset every breaker into %s (CLOSED, windows emptied)?", list);
	console_confirm(c, q, acts, (int)n);
}

static void trip_named(console *c, const char *text)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	char *name = text_trim(buf);
	if (!text_is_name(name, 32)) {
		console_note(c, 1, "'%s' is not a service name", name);
		return;
	}
	const char *one[1] = { name };
	ask(c, ACT_TRIP, one, 1, name);
}

static int key(console *c, const snapshot *s, int ch)
{
	switch (ch) {
	case 't':
	case 'r': {
		if (console_refuse_ro(c))
			return 1;
		const table_row *rs[16];
		const char *names[16];
		char list[200];
		size_t n = console_pick(c, 1, NULL, rs, 16, list, sizeof(list));
		for (size_t i = 0; i < n; i++)
			names[i] = rs[i]->cells[1];
		ask(c, ch == 't' ? ACT_TRIP : ACT_RESET, names, n, list);
		return 1;
	}
	case 'T': {
		if (console_refuse_ro(c))
			return 1;
		const table_row *r = table_current(&c->tables[V_BREAKERS]);
		console_prompt(c, "trip the breakers into service:", r ? r->cells[1] : "", trip_named);
		return 1;
	}
	default:
		return 0;
	}
}

const view view_breakers = {
	.name = "Breakers",
	.keys = "t trip  r reset  T trip by name  Space tag",
	.keys_ro = "Enter details  / filter  s sort",
	.help = "t      trip the breakers into the row's callee (FORCED_OPEN), with confirmation\n"
		"r      reset them (CLOSED)\n"
		"T      trip the breakers into a service named at the prompt\n"
		"Tagged rows (Space): the action covers every tagged row's callee\n"
		"States: CLOSED green, HALF_OPEN yellow, OPEN red, FORCED_OPEN magenta",
	.rows = rows,
	.draw = draw,
	.key = key,
};
