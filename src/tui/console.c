/* console: the main loop, the frame and the keys every view shares. */
#include "tui/console.h"
#include "core/err.h"
#include "net/http_client.h"
#include "ops/cli.h"
#include "tui/view.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CMD "console"
#define WAIT_MS 200       /* getch waits at most this long: the screen's refresh */
#define NOTE_US 8000000LL /* how long a message stays in the status line */

static const char HELP[] =
	"usage: ecom console [--state DIR | --url URL] [--read-only] [--refresh SECONDS]\n"
	"\n"
	"The operator console: an ncurses dashboard over a running platform, through\n"
	"the gateway's admin API. Views (number keys or Tab):\n"
	"\n"
	"  1 Overview   services up, rates, errors, p99, open breakers, orders/min, queue lag\n"
	"  2 Breakers   every edge's circuit breaker; trip and reset\n"
	"  3 Sagas      recent orders by status; Enter opens the saga's timeline and spans\n"
	"  4 Inventory  stock by sku or name; set stock\n"
	"  5 Queues     depth, lag and dead letters per topic and consumer; replay\n"
	"  6 Faults     active faults; add or clear one for a service or provider\n"
	"  7 Load       run a scenario of data/scenarios (sparklines); place orders\n"
	"  8 Logs       the platform's log files, filtered by service or trace id\n"
	"\n"
	"Keys: ? help, q quit, / filter, Esc back, arrows or j/k move, Enter details,\n"
	"Space tags rows (actions apply to every tagged row), s sorts by the next\n"
	"column, + and - change the refresh (default 2 s), p pauses it. Every action\n"
	"that changes the platform asks for confirmation first.\n"
	"\n"
	"  --state DIR       the platform's state directory (default ./var or $ECOM_STATE);\n"
	"                    also where the Logs view reads\n"
	"  --url URL         the gateway to talk to (admin token from $ECOM_ADMIN_TOKEN)\n"
	"  --read-only       no actions: only look\n"
	"  --refresh SECONDS the refresh interval to begin with (0.5 to 60)\n"
	"\n"
	"NO_COLOR set: no colours. ECOM_CONSOLE_STDERR=FILE keeps what the libraries\n"
	"print while the console runs (otherwise dropped, so the screen stays whole).\n";

static const view *const views[V_COUNT] = {
	&view_overview, &view_breakers, &view_sagas, &view_inventory,
	&view_queues,   &view_faults,   &view_load,  &view_logs,
};

static const int intervals[] = { 500, 1000, 2000, 5000, 10000, 30000, 60000 };
#define NINTERVALS (int)(sizeof(intervals) / sizeof(intervals[0]))

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
	signalled = sig;
}

int64_t console_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* ---- helpers for the views ------------------------------------------------------- */

void console_note(console *c, int bad, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->note, sizeof(c->note), fmt, ap);
	va_end(ap);
	c->note_bad = bad;
	c->note_at_us = console_wall_us();
}

int console_refuse_ro(console *c)
{
	if (!c->read_only)
		return 0;
	console_note(c, 1, "read-only: the console does not change the platform");
	return 1;
}

void console_prompt(console *c, const char *label, const char *initial, prompt_done done)
{
	c->prompting = 1;
	snprintf(c->prompt_label, sizeof(c->prompt_label), "%s", label);
	snprintf(c->prompt_buf, sizeof(c->prompt_buf), "%s", initial ? initial : "");
	c->prompt_cb = done;
}

void console_confirm(console *c, const char *text, const action *acts, int nacts)
{
	if (console_refuse_ro(c))
		return;
	if (nacts > (int)(sizeof(c->confirm_acts) / sizeof(c->confirm_acts[0])))
		nacts = (int)(sizeof(c->confirm_acts) / sizeof(c->confirm_acts[0]));
	c->confirming = 1;
	c->confirm_quit = 0;
	c->confirm_load = 0;
	snprintf(c->confirm_text, sizeof(c->confirm_text), "%s", text);
	memcpy(c->confirm_acts, acts, (size_t)nacts * sizeof(*acts));
	c->confirm_nacts = nacts;
}

size_t console_pick(console *c, int col, int (*keep)(const table_row *r), const table_row **rows,
		    size_t max, char *list, size_t listlen)
{
	const table_row *all[64];
	size_t n = table_targets(&c->tables[c->cur], all, 64), k = 0, more = 0;
	if (listlen)
		list[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		const char *v = col < 0 ? all[i]->key : all[i]->cells[col];
		int seen = keep && !keep(all[i]);
		for (size_t j = 0; j < k && !seen; j++)
			seen = strcmp(col < 0 ? rows[j]->key : rows[j]->cells[col], v) == 0;
		if (seen)
			continue;
		if (k == max) {
			more++;
			continue;
		}
		rows[k++] = all[i];
		size_t l = strlen(list);
		if (k <= 4)
			snprintf(list + l, listlen - l, "%s%.40s", k > 1 ? ", " : "", v);
	}
	if (k > 4 || more) {
		size_t l = strlen(list);
		snprintf(list + l, listlen - l, " and %zu more", (k > 4 ? k - 4 : 0) + more);
	}
	return k;
}

void console_fmt_num(char *buf, size_t len, double v, const char *fmt)
{
	if (isnan(v))
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, fmt, v);
}

void console_draw_na(int y, int x, int w, const part *pt, const char *what)
{
	if (pt->state == PART_NA)
		screen_printf(y, x, w, screen_attr(TONE_DIM), 1, "%s: n/a (this platform does not serve it)",
			      what);
	else if (pt->state == PART_ERR)
		screen_printf(y, x, w, screen_attr(TONE_BAD), 1, "%s: %s", what, pt->err);
	else if (pt->state == PART_NONE)
		screen_printf(y, x, w, screen_attr(TONE_DIM), 1, "%s: waiting for the first answer...",
			      what);
}

void console_draw_table(console *c, table *t, int top, int height)
{
	if (height < 2)
		return;
	int width = COLS;
	/* Column positions: each its width, the last what is left. */
	int xs[TABLE_MAX_COLS + 1], x = 2;
	for (int i = 0; i < t->ncols; i++) {
		xs[i] = x;
		x += t->cols[i].width + 1;
	}
	xs[t->ncols] = width;
	attr_t head = screen_attr(TONE_HEAD);
	screen_text(top, 0, width, head, "", 1);
	for (int i = 0; i < t->ncols && xs[i] < width; i++) {
		int w = i == t->ncols - 1 ? width - xs[i] : t->cols[i].width;
		char title[64];
		snprintf(title, sizeof(title), "%s%s", t->cols[i].title, t->sort_col == i ? "\u2193" : "");
		if (!screen_utf8() && t->sort_col == i)
			snprintf(title, sizeof(title), "%s*", t->cols[i].title);
		int aw = w < t->cols[i].width ? w : t->cols[i].width;
		if (t->cols[i].numeric)
			screen_printf(top, xs[i], w, head, 1, "%*s", aw + (int)strlen(title) - screen_width(title), title);
		else
			screen_text(top, xs[i], w, head, title, 1);
	}
	int page = height - 1;
	c->page = page;
	/* Keep the cursor on screen. */
	if (t->cursor < t->top)
		t->top = t->cursor;
	if (t->cursor >= t->top + (size_t)page)
		t->top = t->cursor - (size_t)page + 1;
	if (t->top + (size_t)page > t->nvis)
		t->top = t->nvis > (size_t)page ? t->nvis - (size_t)page : 0;
	for (int r = 0; r < page; r++) {
		size_t i = t->top + (size_t)r;
		const table_row *row = table_shown(t, i);
		int y = top + 1 + r;
		if (!row) {
			screen_text(y, 0, width, A_NORMAL, "", 1);
			continue;
		}
		int sel = i == t->cursor;
		attr_t base = sel ? A_REVERSE : A_NORMAL;
		screen_text(y, 0, width, base, "", 1);
		if (table_is_tagged(t, row->key))
			screen_text(y, 0, 2, base | screen_attr(TONE_KEY), "*", 1);
		for (int k = 0; k < t->ncols && xs[k] < width; k++) {
			int w = k == t->ncols - 1 ? width - xs[k] : t->cols[k].width;
			int tn = row->tones[k] ? row->tones[k] : row->tone;
			attr_t a = base | screen_attr((tone)tn);
			int aw = w < t->cols[k].width ? w : t->cols[k].width;
			if (t->cols[k].numeric)
				screen_printf(y, xs[k], w, a, 1, "%*s", aw, row->cells[k]);
			else
				screen_text(y, xs[k], w, a, row->cells[k], 1);
		}
	}
	if (t->nvis == 0 && t->n > 0)
		screen_printf(top + 1, 2, width - 2, screen_attr(TONE_DIM), 1,
			      "no row matches the filter '%s' (Esc clears it)", t->filter);
}

/* ---- the frame --------------------------------------------------------------------- */

static void draw_tabs(console *c)
{
	attr_t bar = screen_attr(TONE_TITLE);
	screen_text(0, 0, COLS, bar, "", 1);
	int x = 0;
	if (COLS >= 86)
		x += screen_text(0, x, COLS - x, bar | A_BOLD, " ecom console ", 0);
	for (int i = 0; i < V_COUNT && x < COLS; i++) {
		char tab[32];
		snprintf(tab, sizeof(tab), " %d %s", i + 1, views[i]->name);
		attr_t a = i == c->cur ? screen_attr(TONE_TAB) : bar;
		x += screen_text(0, x, COLS - x, a, tab, 0);
		if (i == c->cur && x < COLS)
			x += screen_text(0, x, 1, a, " ", 0);
	}
}

static void draw_status(console *c, const snapshot *s)
{
	poller_news n;
	poller_news_get(c->po, &n);
	int64_t now = c->now_us;
	char left[400];
	attr_t la = screen_attr(TONE_DIM);
	if (s->banner[0] && !s->connected) {
		snprintf(left, sizeof(left), " ! connection lost %llds ago, retrying (last data shown): %s",
			 s->lost_at_us ? (long long)((now - s->lost_at_us) / 1000000) : 0LL, s->banner);
		la = screen_attr(TONE_BANNER);
	} else if (s->banner[0]) {
		snprintf(left, sizeof(left), " ! %s", s->banner);
		la = screen_attr(TONE_BANNER);
	} else {
		snprintf(left, sizeof(left), " %s  refresh %gs%s%s", s->url,
			 c->want.interval_ms / 1000.0, c->want.paused ? "  PAUSED" : "",
			 c->read_only ? "  read-only" : "");
	}
	screen_text(1, 0, COLS, la, left, 1);
	int used = s->banner[0] ? COLS / 3 : screen_width(left);
	const char *msg = NULL;
	int bad = 0;
	if (c->note[0] && now - c->note_at_us < NOTE_US && c->note_at_us >= n.at_us) {
		msg = c->note;
		bad = c->note_bad;
	} else if (n.busy && n.message[0] && n.at_us && now - n.at_us < NOTE_US) {
		msg = n.message;
		bad = n.bad;
	} else if (n.busy) {
		msg = "working...";
	} else if (n.message[0] && now - n.at_us < NOTE_US) {
		msg = n.message;
		bad = n.bad;
	}
	/* The latest word on the right; over a banner it hides the banner's
	 * end for a few seconds. */
	if (msg && used + 2 < COLS) {
		int w = screen_width(msg) + 2;
		int room = COLS - used - 2;
		int x = w < room ? COLS - w : used + 2;
		screen_text(1, x, COLS - x, A_NORMAL, " ", 0);
		screen_text(1, x + 1, COLS - x - 1, screen_attr(bad ? TONE_BAD : TONE_OK),
			    msg, 1);
	}
}

static void draw_footer(console *c)
{
	int y = LINES - 1;
	if (c->prompting) {
		char line[512];
		snprintf(line, sizeof(line), "%s %s", c->prompt_label, c->prompt_buf);
		screen_text(y, 0, COLS, A_NORMAL, "", 1);
		int lw = screen_width(c->prompt_label) + 1;
		screen_text(y, 0, COLS, screen_attr(TONE_KEY), c->prompt_label, 0);
		/* The end of a long line stays visible. */
		const char *b = c->prompt_buf;
		int room = COLS - lw - 1;
		while (screen_width(b) > room && *b)
			b++;
		int w = screen_text(y, lw, COLS - lw, A_NORMAL, b, 0);
		screen_text(y, lw + w, 1, A_REVERSE, " ", 1);
		return;
	}
	const view *v = views[c->cur];
	const char *mine = v->footer ? v->footer(c) : NULL;
	if (!mine)
		mine = c->read_only ? v->keys_ro : v->keys;
	const char *always = "? help  q quit";
	int aw = screen_width(always);
	screen_text(y, 0, COLS, A_NORMAL, "", 1);
	/* Key names bold: a key is the first word of each double-spaced item. */
	int x = 0, room = COLS - aw - 2;
	const char *p = mine;
	while (*p && x < room) {
		const char *sp = strchr(p, ' ');
		const char *end = strstr(p, "  ");
		size_t klen = sp ? (size_t)(sp - p) : strlen(p);
		size_t ilen = end ? (size_t)(end - p) : strlen(p);
		char key[32], rest[96];
		snprintf(key, sizeof(key), "%.*s", (int)klen, p);
		snprintf(rest, sizeof(rest), "%.*s", (int)(ilen > klen ? ilen - klen : 0), p + klen);
		int need = screen_width(key) + screen_width(rest);
		if (x + need > room)
			break;
		x += screen_text(y, x, room - x, screen_attr(TONE_KEY), key, 0);
		x += screen_text(y, x, room - x, A_NORMAL, rest, 0);
		x += screen_text(y, x, room - x, A_NORMAL, "  ", 0);
		p += ilen;
		while (*p == ' ')
			p++;
	}
	screen_text(y, COLS - aw - 1, 1, screen_attr(TONE_KEY), "?", 0);
	screen_text(y, COLS - aw, aw, A_NORMAL, " help  ", 0);
	screen_text(y, COLS - aw + 7, 1, screen_attr(TONE_KEY), "q", 0);
	screen_text(y, COLS - aw + 8, aw - 8, A_NORMAL, " quit", 0);
}

static void draw_help(console *c)
{
	const view *v = views[c->cur];
	static const char *const global[] = {
		"1-8, Tab, Shift-Tab  switch views",
		"Up/Down, j/k, PgUp/PgDn, g/G  move",
		"Enter                details of the row",
		"Space                tag the row (actions apply to every tagged row)",
		"/                    filter the rows (Esc clears)",
		"s                    sort by the next column",
		"+ / -                refresh slower / faster;  p pause",
		"Ctrl-L               redraw and refresh now",
		"Esc                  back;  q quit",
	};
	int lines = (int)(sizeof(global) / sizeof(global[0])) + 3;
	for (const char *p = v->help; p && *p; p++)
		lines += *p == '\n';
	lines += v->help && *v->help ? 2 : 0;
	int h = lines + 2 > LINES - 2 ? LINES - 2 : lines + 2;
	int w = COLS - 4 > 76 ? 76 : COLS - 4;
	int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
	screen_box(y0, x0, h, w, A_NORMAL);
	int y = y0 + 1;
	screen_printf(y++, x0 + 2, w - 4, screen_attr(TONE_HEAD), 1, "Keys (%s view)", v->name);
	for (size_t i = 0; i < sizeof(global) / sizeof(global[0]) && y < y0 + h - 1; i++)
		screen_text(y++, x0 + 2, w - 4, A_NORMAL, global[i], 1);
	y++;
	if (v->help && *v->help && y < y0 + h - 1) {
		screen_printf(y++, x0 + 2, w - 4, screen_attr(TONE_HEAD), 1, "%s", v->name);
		const char *p = v->help;
		while (*p && y < y0 + h - 1) {
			const char *nl = strchr(p, '\n');
			size_t len = nl ? (size_t)(nl - p) : strlen(p);
			char line[160];
			snprintf(line, sizeof(line), "%.*s", (int)len, p);
			screen_text(y++, x0 + 2, w - 4, A_NORMAL, line, 1);
			p += len + (nl ? 1 : 0);
		}
	}
	if (c->read_only && y < y0 + h - 1)
		screen_text(y0 + h - 2, x0 + 2, w - 4, screen_attr(TONE_DIM),
			    "read-only: the keys that change the platform are off", 1);
}

static void draw_confirm(console *c)
{
	int w = COLS - 4 > 70 ? 70 : COLS - 4;
	int inner = w - 4;
	/* Wrap the question on spaces. */
	char lines[6][160];
	int n = 0;
	const char *p = c->confirm_text;
	while (*p && n < 5) {
		int len = (int)strlen(p);
		int cut = len;
		if (screen_width(p) > inner) {
			cut = inner;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = inner;
		}
		snprintf(lines[n++], sizeof(lines[0]), "%.*s", cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
	int h = n + 4;
	int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
	attr_t a = screen_attr(TONE_WARN);
	screen_box(y0, x0, h, w, a);
	for (int i = 0; i < n; i++)
		screen_text(y0 + 1 + i, x0 + 2, inner, A_BOLD, lines[i], 1);
	screen_text(y0 + h - 2, x0 + 2, inner, A_NORMAL, "y: yes    any other key: no", 1);
}

static void draw_details(console *c)
{
	table *t = &c->tables[c->cur];
	const table_row *r = table_current(t);
	if (!r) {
		c->details = 0;
		return;
	}
	int h = t->ncols + 4 > LINES - 2 ? LINES - 2 : t->ncols + 4;
	int w = COLS - 4 > 76 ? 76 : COLS - 4;
	int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
	screen_box(y0, x0, h, w, A_NORMAL);
	screen_text(y0 + 1, x0 + 2, w - 4, screen_attr(TONE_HEAD), r->key, 1);
	for (int i = 0; i < t->ncols && i < h - 4; i++) {
		screen_printf(y0 + 2 + i, x0 + 2, 14, screen_attr(TONE_DIM), 1, "%s", t->cols[i].title);
		screen_text(y0 + 2 + i, x0 + 17, w - 19, A_NORMAL, r->cells[i], 1);
	}
	screen_text(y0 + h - 2, x0 + 2, w - 4, screen_attr(TONE_DIM), "Esc: back", 1);
}

static void draw(console *c, snapshot *s)
{
	erase();
	if (LINES < 10 || COLS < 40) {
		screen_text(0, 0, COLS, A_BOLD, "ecom console: the terminal is too small (40x10 at least)", 1);
		screen_text(LINES - 1, 0, COLS, A_NORMAL, "q quit", 1);
		refresh();
		return;
	}
	draw_tabs(c);
	draw_status(c, s);
	const view *v = views[c->cur];
	if (v->rows)
		v->rows(c, s);
	v->draw(c, s, 2, LINES - 3);
	draw_footer(c);
	if (c->details)
		draw_details(c);
	if (c->help)
		draw_help(c);
	if (c->confirming)
		draw_confirm(c);
	refresh();
}

/* ---- keys ------------------------------------------------------------------------------ */

static void want_update(console *c, int wake)
{
	c->want.stock = c->cur == V_INVENTORY;
	c->want.logs = c->cur == V_LOGS;
	poller_want_set(c->po, &c->want, wake);
}

static void switch_view(console *c, int v)
{
	if (v < 0)
		v = V_COUNT - 1;
	if (v >= V_COUNT)
		v = 0;
	c->cur = v;
	c->details = 0;
	c->help = 0;
	want_update(c, 1);
}

static void prompt_key(console *c, int ch)
{
	size_t len = strlen(c->prompt_buf);
	if (ch == 27) {
		c->prompting = 0;
	} else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
		c->prompting = 0;
		char text[256];
		snprintf(text, sizeof(text), "%s", c->prompt_buf);
		if (c->prompt_cb)
			c->prompt_cb(c, text);
	} else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		/* Back one character (UTF-8: its continuation bytes too). */
		while (len > 0 && ((unsigned char)c->prompt_buf[len - 1] & 0xC0) == 0x80)
			len--;
		if (len > 0)
			len--;
		c->prompt_buf[len] = '\0';
	} else if (ch == 21) { /* Ctrl-U */
		c->prompt_buf[0] = '\0';
	} else if (ch >= 0x20 && ch < 0x100 && ch != 0x7f && len + 1 < sizeof(c->prompt_buf)) {
		c->prompt_buf[len] = (char)ch;
		c->prompt_buf[len + 1] = '\0';
	}
}

static void confirm_key(console *c, int ch)
{
	c->confirming = 0;
	if (ch != 'y' && ch != 'Y') {
		console_note(c, 0, "cancelled");
		return;
	}
	if (c->confirm_quit) {
		c->quit = 1;
		return;
	}
	if (c->confirm_load) {
		c->confirm_load = 0;
		view_load_start(c);
		return;
	}
	int queued = 0;
	for (int i = 0; i < c->confirm_nacts; i++)
		queued += poller_act(c->po, &c->confirm_acts[i]) == 0;
	if (queued < c->confirm_nacts)
		console_note(c, 1, "too many actions waiting: %d of %d queued", queued, c->confirm_nacts);
	table_clear_tags(&c->tables[c->cur]);
}

static void filter_done(console *c, const char *text)
{
	table_set_filter(&c->tables[c->cur], text);
}

static void shared_key(console *c, int ch)
{
	table *t = &c->tables[c->cur];
	int page = c->page > 1 ? c->page : 10;
	switch (ch) {
	case 'q':
	case 'Q':
		if (c->load_started && loadrun_active(c->lr)) {
			c->confirming = 1;
			c->confirm_quit = 1;
			c->confirm_nacts = 0;
			snprintf(c->confirm_text, sizeof(c->confirm_text),
				 "A load run started from this console is still running. Stop it and quit?");
		} else {
			c->quit = 1;
		}
		break;
	case '\t': switch_view(c, c->cur + 1); break;
	case KEY_BTAB: switch_view(c, c->cur - 1); break;
	case '?': c->help = 1; break;
	case '+':
	case '-': {
		int i = 0;
		while (i < NINTERVALS - 1 && intervals[i] < c->want.interval_ms)
			i++;
		i += ch == '+' ? 1 : -1;
		i = i < 0 ? 0 : i >= NINTERVALS ? NINTERVALS - 1 : i;
		c->want.interval_ms = intervals[i];
		want_update(c, 0);
		console_note(c, 0, "refresh every %g s", intervals[i] / 1000.0);
		break;
	}
	case 'p':
		c->want.paused = !c->want.paused;
		want_update(c, !c->want.paused);
		console_note(c, 0, c->want.paused ? "paused: press p to go on" : "refreshing again");
		break;
	case 12: /* Ctrl-L */
		clearok(curscr, TRUE);
		poller_wake(c->po);
		break;
	case '/':
		console_prompt(c, "filter:", t->filter, filter_done);
		break;
	case 27:
		if (t->filter[0])
			table_set_filter(t, "");
		else if (t->ntags)
			table_clear_tags(t);
		break;
	case KEY_UP:
	case 'k': table_move(t, -1, (size_t)page); break;
	case KEY_DOWN:
	case 'j': table_move(t, 1, (size_t)page); break;
	case KEY_PPAGE: table_move(t, -page, (size_t)page); break;
	case KEY_NPAGE: table_move(t, page, (size_t)page); break;
	case KEY_HOME:
	case 'g': table_move(t, -(long)t->nvis, (size_t)page); break;
	case KEY_END:
	case 'G': table_move(t, (long)t->nvis, (size_t)page); break;
	case ' ':
		table_toggle_tag(t);
		table_move(t, 1, (size_t)page);
		break;
	case 's':
		table_sort_next(t);
		console_note(c, 0, t->sort_col < 0 ? "natural order" : "sorted by %s",
			     t->sort_col < 0 ? "" : t->cols[t->sort_col].title);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (table_current(t))
			c->details = 1;
		break;
	default:
		if (ch >= '1' && ch <= '0' + V_COUNT)
			switch_view(c, ch - '1');
	}
}

static void handle_key(console *c, int ch)
{
	if (ch == KEY_RESIZE) {
		clearok(curscr, TRUE);
		return;
	}
	if (c->prompting) {
		prompt_key(c, ch);
		return;
	}
	if (c->confirming) {
		confirm_key(c, ch);
		return;
	}
	if (c->help) {
		c->help = 0;
		if (ch == 'q')
			shared_key(c, ch);
		return;
	}
	if (c->details) {
		if (ch == 27 || ch == '\n' || ch == '\r' || ch == KEY_ENTER || ch == 'q')
			c->details = 0;
		if (ch == 'q')
			shared_key(c, ch);
		return;
	}
	snapshot *s = poller_acquire(c->po);
	int used = views[c->cur]->key ? views[c->cur]->key(c, s, ch) : 0;
	poller_release(c->po, s);
	if (!used)
		shared_key(c, ch);
	want_update(c, 0);
}

/* ---- main ------------------------------------------------------------------------------ */

static int parse_refresh(const char *s, int *ms)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.5 && v <= 60))
		return -1;
	*ms = (int)(v * 1000);
	return 0;
}

/* While curses owns the terminal, whatever a library prints on stderr
 * would tear the screen: it goes to ECOM_CONSOLE_STDERR or nowhere. */
static int quiet_stderr(void)
{
	int saved = dup(STDERR_FILENO);
	const char *path = getenv("ECOM_CONSOLE_STDERR");
	int fd = open(path && *path ? path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
		      0600);
	if (fd >= 0) {
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	return saved;
}

static void restore_stderr(int saved)
{
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
}

int console_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "url", required_argument, NULL, 'U' },
		{ "read-only", no_argument, NULL, 'r' },
		{ "refresh", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = NULL, *url = NULL;
	int read_only = 0, interval = 2000;
	opterr = 0;
	optind = 0;
	for (int ch; (ch = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
		switch (ch) {
		case 'S': state = optarg; break;
		case 'U': url = optarg; break;
		case 'r': read_only = 1; break;
		case 'i':
			if (parse_refresh(optarg, &interval) != 0)
				return cli_usage(CMD, "--refresh takes seconds from 0.5 to 60");
			break;
		default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		return cli_fail(CMD, "needs a terminal (stdin and stdout)");

	/* The signals reach the UI thread only: the workers start with them
	 * blocked. */
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &block, &old);

	http_client_global_init();
	console *c = calloc(1, sizeof(*c));
	client *cl = client_new(state, url);
	loadrun *lr = loadrun_new();
	int rc = 0;
	if (!c || !cl || !lr) {
		rc = cli_fail(CMD, "out of memory");
		goto out;
	}
	c->cl = cl;
	c->lr = lr;
	c->read_only = read_only;
	c->want.interval_ms = interval;
	for (int i = 0; i < V_COUNT; i++)
		table_init(&c->tables[i], NULL, 0);
	c->po = poller_new(cl, &c->want);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!c->po) {
		rc = cli_fail(CMD, "cannot start the poller thread");
		goto out;
	}
	int saved = quiet_stderr();
	if (screen_start(WAIT_MS) != 0) {
		restore_stderr(saved);
		rc = cli_fail(CMD, "cannot use the terminal (TERM=%s)", getenv("TERM") ? getenv("TERM") : "");
		goto out;
	}
	switch_view(c, V_OVERVIEW);
	while (!c->quit && !signalled) {
		snapshot *s = poller_acquire(c->po);
		c->now_us = console_wall_us();
		draw(c, s);
		poller_release(c->po, s);
		int ch = getch();
		if (signalled)
			break;
		if (ch != ERR)
			handle_key(c, ch);
	}
	screen_stop();
	restore_stderr(saved);
	if (signalled && signalled != SIGINT)
		rc = 128 + signalled;
out:
	if (c) {
		poller_free(c->po);
		for (int i = 0; i < V_COUNT; i++)
			table_free(&c->tables[i]);
	}
	loadrun_free(lr);
	client_free(cl);
	free(c);
	http_client_global_cleanup();
	return rc;
}
