/* view_sagas: the recent orders and their sagas, filterable by status;
 * Enter opens one's timeline: its steps and its trace's spans as the
 * `ecom trace` waterfall (ops/waterfall). */
#include "tui/view.h"
#include "ops/waterfall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const table_col cols[] = {
	{ "ORDER", 24, 0 }, { "STATUS", 16, 0 }, { "SAGA", 12, 0 },
	{ "AGE", 5, 1 },    { "UPD", 5, 1 },     { "REASON", 12, 0 },
};

static const char *const statuses[SAGA_FILTERS] = { "", "PENDING", "AWAITING_PAYMENT",
						    "CONFIRMED", "CANCELLED" };

static tone status_tone(const char *st)
{
	if (strcmp(st, "CONFIRMED") == 0)
		return TONE_OK;
	if (strcmp(st, "CANCELLED") == 0)
		return TONE_BAD;
	if (strcmp(st, "AWAITING_PAYMENT") == 0)
		return TONE_WARN;
	return TONE_INFO;
}

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_SAGAS];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	poller_news n;
	poller_news_get(c->po, &n);
	const char *want = statuses[c->saga_filter];
	for (size_t i = 0; i < s->nsagas; i++) {
		const model_saga *m = &s->sagas[i];
		if (want[0] && strcmp(m->status, want) != 0)
			continue;
		table_row *r = table_add(t, m->order_id, 0);
		if (!r)
			break;
		char age[16], upd[16];
		model_fmt_age(c->now_us, m->created_us, age, sizeof(age));
		model_fmt_age(c->now_us, m->updated_us, upd, sizeof(upd));
		table_set(r, 0, 0, "%s", m->order_id);
		if (n.last_order[0] && strcmp(n.last_order, m->order_id) == 0)
			r->tones[0] = TONE_INFO; /* the console's own latest */
		table_set(r, 1, 0, "%s", m->status);
		r->tones[1] = status_tone(m->status);
		table_set(r, 2, 0, "%s", m->state);
		/* Older sorts first when sorted by age: the number is negative. */
		table_set(r, 3, (double)-m->created_us, "%s", age);
		table_set(r, 4, (double)-m->updated_us, "%s", upd);
		table_set(r, 5, 0, "%s", m->reason);
	}
	table_apply(t);
}

/* ---- the timeline ------------------------------------------------------------------- */

/* The timeline as text lines (malloc'd, '\n'-separated) for the width. */
static char *timeline_text(console *c, const model_saga_detail *d, int width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	char age[16];
	model_fmt_age(c->now_us, d->saga.created_us, age, sizeof(age));
	fprintf(f, "status %s   saga %s   total %lld.%02lld %s   age %s%s%s\n", d->saga.status,
		d->saga.state, d->total_cents / 100, d->total_cents % 100, d->currency, age,
		d->saga.reason[0] ? "   reason " : "", d->saga.reason);
	fprintf(f, "\nSteps\n");
	if (d->nsteps == 0)
		fprintf(f, "  (none yet)\n");
	for (int i = 0; i < d->nsteps; i++) {
		const model_step *st = &d->steps[i];
		const char *t = strchr(st->at, 'T');
		fprintf(f, "  %-12s %-12s attempts %-3lld %s%s%s\n", st->name, st->status, st->attempts,
			t ? t + 1 : st->at, st->detail[0] ? "  " : "", st->detail);
	}
	fprintf(f, "\nTrace (%zu spans)\n", d->nspans);
	if (d->nspans == 0) {
		fprintf(f, "  n/a: no spans for this order (the platform keeps none, or they aged out)\n");
	} else {
		waterfall_opts o = { .color = 0, .width = width - 2 < 60 ? 60 : width - 2 };
		waterfall_render(f, d->spans, d->nspans, &o);
	}
	fclose(f);
	return buf;
}

static tone line_tone(const char *line)
{
	if (strstr(line, " error") || strstr(line, "FAILED") || strstr(line, "COMPENSAT"))
		return TONE_BAD;
	if (strncmp(line, "Steps", 5) == 0 || strncmp(line, "Trace", 5) == 0)
		return TONE_HEAD;
	if (strstr(line, "SUCCEEDED") || strstr(line, " ok"))
		return TONE_OK;
	return TONE_PLAIN;
}

static void draw_timeline(console *c, const snapshot *s, int top, int height)
{
	const char *id = c->want.detail_id;
	screen_printf(top, 0, COLS, screen_attr(TONE_HEAD), 1, " Timeline of order %s", id);
	const model_saga_detail *d = s->detail;
	if (!d || strcmp(d->saga.order_id, id) != 0) {
		if (s->pt.detail.state == PART_ERR)
			console_draw_na(top + 2, 2, COLS - 2, &s->pt.detail, "timeline");
		else
			screen_text(top + 2, 2, COLS - 2, screen_attr(TONE_DIM), "loading...", 1);
		return;
	}
	char *text = timeline_text(c, d, COLS);
	if (!text)
		return;
	int nlines = 0;
	for (char *p = text; *p; p++)
		nlines += *p == '\n';
	int room = height - 1;
	if (c->timeline_scroll > nlines - room)
		c->timeline_scroll = nlines - room > 0 ? nlines - room : 0;
	int y = top + 1, skip = c->timeline_scroll;
	for (char *line = text; *line && y < top + height;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (skip > 0)
			skip--;
		else
			screen_text(y++, 1, COLS - 1, screen_attr(line_tone(line)), line, 1);
		if (!nl)
			break;
		line = nl + 1;
	}
	free(text);
	if (s->pt.detail.state == PART_ERR)
		console_draw_na(top + height - 1, 1, COLS - 1, &s->pt.detail, "refresh");
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	if (c->want.detail_id[0]) {
		draw_timeline(c, s, top, height);
		return;
	}
	const char *f = statuses[c->saga_filter];
	screen_printf(top, 1, COLS - 1, A_NORMAL, 1, "%zu recent orders   status: %s", s->nsagas,
		      f[0] ? f : "all");
	if (s->pt.sagas.state != PART_OK)
		console_draw_na(top, 1, COLS - 1, &s->pt.sagas, "sagas");
	console_draw_table(c, &c->tables[V_SAGAS], top + 1, height - 1);
}

static int key(console *c, const snapshot *s, int ch)
{
	if (c->want.detail_id[0]) {
		switch (ch) {
		case 27:
		case KEY_BACKSPACE:
		case KEY_LEFT:
		case 'h':
			c->want.detail_id[0] = '\0';
			return 1;
		case KEY_UP:
		case 'k': c->timeline_scroll -= c->timeline_scroll > 0; return 1;
		case KEY_DOWN:
		case 'j': c->timeline_scroll++; return 1;
		case KEY_PPAGE: c->timeline_scroll -= 10; if (c->timeline_scroll < 0) c->timeline_scroll = 0; return 1;
		case KEY_NPAGE: c->timeline_scroll += 10; return 1;
		case 'q':
		case '?':
		case 'p':
		case '+':
		case '-':
		case '\t':
		case KEY_BTAB:
			return 0;
		default:
			return ch >= '1' && ch <= '8' ? (c->want.detail_id[0] = '\0', 0) : 1;
		}
	}
	switch (ch) {
	case 'f':
		c->saga_filter = (c->saga_filter + 1) % SAGA_FILTERS;
		console_note(c, 0, "status: %s", c->saga_filter ? statuses[c->saga_filter] : "all");
		return 1;
	case '\n':
	case '\r':
	case KEY_ENTER: {
		const table_row *r = table_current(&c->tables[V_SAGAS]);
		if (!r)
			return 1;
		snprintf(c->want.detail_id, sizeof(c->want.detail_id), "%.*s",
			 (int)sizeof(c->want.detail_id) - 1, r->key);
		c->timeline_scroll = 0;
		poller_want_set(c->po, &c->want, 1);
		return 1;
	}
	default:
		return 0;
	}
}

static const char *footer(const console *c)
{
	return c->want.detail_id[0] ? "Esc back  j/k scroll" : NULL;
}

const view view_sagas = {
	.name = "Sagas",
	.keys = "Enter timeline  f status  / filter  s sort",
	.keys_ro = "Enter timeline  f status  / filter  s sort",
	.help = "Enter  open the order's timeline: saga steps and the trace's spans\n"
		"       (Esc back, arrows scroll)\n"
		"f      filter by status: all, PENDING, AWAITING_PAYMENT, CONFIRMED, CANCELLED\n"
		"The console's latest order is highlighted",
	.rows = rows,
	.draw = draw,
	.key = key,
	.footer = footer,
};
