/* view_logs: the tail of the platform's log files (STATE/log/NAME.log), all
 * processes merged by time, filtered by service or trace id; follows the
 * newest unless scrolled back. */
#include "tui/view.h"
#include "core/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tone level_tone(const char *level)
{
	if (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)
		return TONE_BAD;
	if (strcmp(level, "warn") == 0 || strcmp(level, "warning") == 0)
		return TONE_WARN;
	if (strcmp(level, "debug") == 0)
		return TONE_DIM;
	return TONE_PLAIN;
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	size_t *idx = malloc((s->nlogs ? s->nlogs : 1) * sizeof(*idx));
	if (!idx)
		return;
	size_t n = 0;
	for (size_t i = 0; i < s->nlogs; i++)
		if (model_logline_matches(&s->logs[i], c->logs_filter))
			idx[n++] = i;
	screen_printf(top, 1, COLS - 1, A_NORMAL, 1, "%zu of the last %zu lines   filter: %s   %s", n,
		      s->nlogs, c->logs_filter[0] ? c->logs_filter : "(none)",
		      c->logs_back ? "scrolled back (G follows)" : "following");
	if (s->pt.logs.state != PART_OK)
		console_draw_na(top, 1, COLS - 1, &s->pt.logs, "logs");
	int room = height - 1;
	if (c->logs_back > (long)n - room)
		c->logs_back = (long)n - room > 0 ? (long)n - room : 0;
	long end = (long)n - c->logs_back;
	long from = end - room > 0 ? end - room : 0;
	int y = top + 1;
	for (long k = from; k < end && y < top + height; k++, y++) {
		const model_logline *l = &s->logs[idx[k]];
		const char *t = strchr(l->ts, 'T');
		char when[16];
		snprintf(when, sizeof(when), "%.12s", t ? t + 1 : l->ts);
		int x = 0;
		x += screen_printf(y, x, COLS - x, screen_attr(TONE_DIM), 0, "%-12s ", when);
		x += screen_printf(y, x, COLS - x, screen_attr(level_tone(l->level)), 0, "%-5.5s ",
				   l->level);
		x += screen_printf(y, x, COLS - x, screen_attr(TONE_INFO), 0, "%-10.10s ", l->service);
		char msg[700];
		if (l->trace_id[0])
			snprintf(msg, sizeof(msg), "%s  [trace %.8s]", l->msg, l->trace_id);
		else
			snprintf(msg, sizeof(msg), "%s", l->msg);
		screen_text(y, x, COLS - x, screen_attr(level_tone(l->level)), msg, 1);
	}
	if (n == 0 && s->pt.logs.state == PART_OK)
		screen_text(top + 2, 2, COLS - 2, screen_attr(TONE_DIM),
			    c->logs_filter[0] ? "no line matches the filter (Esc clears it)" : "no log lines",
			    1);
	c->page = room;
	free(idx);
}

static void filter_done(console *c, const char *text)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	snprintf(c->logs_filter, sizeof(c->logs_filter), "%s", text_trim(buf));
	c->logs_back = 0;
}

static int key(console *c, const snapshot *s, int ch)
{
	long page = c->page > 1 ? c->page : 10;
	switch (ch) {
	case '/':
		console_prompt(c, "service or trace id:", c->logs_filter, filter_done);
		return 1;
	case 27:
		c->logs_filter[0] = '\0';
		c->logs_back = 0;
		return 1;
	case KEY_UP:
	case 'k': c->logs_back++; return 1;
	case KEY_DOWN:
	case 'j': c->logs_back -= c->logs_back > 0; return 1;
	case KEY_PPAGE: c->logs_back += page; return 1;
	case KEY_NPAGE: c->logs_back = c->logs_back > page ? c->logs_back - page : 0; return 1;
	case KEY_HOME:
	case 'g': c->logs_back = (long)s->nlogs; return 1;
	case KEY_END:
	case 'G': c->logs_back = 0; return 1;
	case ' ':
	case 's':
	case '\n':
	case '\r':
	case KEY_ENTER:
		return 1; /* lines are not rows: nothing to tag, sort or open */
	default:
		return 0;
	}
}

const view view_logs = {
	.name = "Logs",
	.keys = "/ service or trace  j/k scroll  G follow",
	.keys_ro = "/ service or trace  j/k scroll  G follow",
	.help = "/      show only a service's lines (its name), or a trace's (its id or a\n"
		"       part of it), or any text of the message\n"
		"j/k    scroll back and forth; G follows the newest again\n"
		"The lines are the last ones of every file in STATE/log, merged by time",
	.rows = NULL,
	.draw = draw,
	.key = key,
};
