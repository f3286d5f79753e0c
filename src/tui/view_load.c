/* view_load: run a load scenario from data/scenarios in the console's
 * process (tui/loadrun), its throughput and p99 as sparklines; place one
 * synthetic order or a burst of them. */
#include "tui/view.h"
#include "ops/cli.h"
#include "sim/scenario.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const table_col cols[] = {
	{ "SCENARIO", 18, 0 }, { "LENGTH", 7, 1 }, { "DESCRIPTION", 40, 0 },
};

static void scenario_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/scenarios/%s.scn", cli_data_dir(), name);
}

/* The scenarios, read once. */
static void load_list(console *c)
{
	if (c->nscenarios)
		return;
	char dir[CLI_PATH_MAX + 16];
	snprintf(dir, sizeof(dir), "%s/scenarios", cli_data_dir());
	c->nscenarios = loadrun_list(dir, c->scenarios, LOADRUN_MAX_SCENARIOS);
	for (int i = 0; i < c->nscenarios; i++) {
		char path[CLI_PATH_MAX + 96], err[256];
		scenario_path(c->scenarios[i], path, sizeof(path));
		scenario *s = scenario_load(path, err, sizeof(err));
		if (s) {
			snprintf(c->scenario_info[i], sizeof(c->scenario_info[i]), "%.0fs|%.80s",
				 scenario_duration_us(s) / 1e6, s->description);
			scenario_free(s);
		} else {
			snprintf(c->scenario_info[i], sizeof(c->scenario_info[i]), "-|%.90s", err);
		}
	}
}

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_LOAD];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	load_list(c);
	table_clear(t);
	for (int i = 0; i < c->nscenarios; i++) {
		table_row *r = table_add(t, c->scenarios[i], 0);
		if (!r)
			break;
		const char *info = c->scenario_info[i];
		const char *bar = strchr(info, '|');
		table_set(r, 0, 0, "%s", c->scenarios[i]);
		table_set(r, 1, atof(info), "%.*s", bar ? (int)(bar - info) : 0, info);
		table_set(r, 2, 0, "%s", bar ? bar + 1 : "");
	}
	table_apply(t);
}

static const char *state_name(loadrun_state st)
{
	switch (st) {
	case LOADRUN_IDLE: return "idle";
	case LOADRUN_STARTING: return "starting (reading the catalog, signing users in)";
	case LOADRUN_RUNNING: return "running";
	case LOADRUN_STOPPING: return "stopping";
	case LOADRUN_DONE: return "done";
	case LOADRUN_FAILED: return "failed";
	}
	return "?";
}

static void spark(int y, const char *label, const double *v, int n, const char *unit)
{
	char line[1024];
	int w = COLS - 26;
	if (w < 10)
		w = 10;
	if (w > 240)
		w = 240;
	loadrun_sparkline(v, n, w, screen_utf8(), line, sizeof(line));
	screen_printf(y, 1, 8, screen_attr(TONE_DIM), 1, "%s", label);
	screen_text(y, 10, w, screen_attr(TONE_INFO), line, 1);
	if (n > 0)
		screen_printf(y, 11 + w, COLS - 11 - w, A_BOLD, 1, "%.1f %s", v[n - 1], unit);
	else
		screen_printf(y, 11 + w, COLS - 11 - w, screen_attr(TONE_DIM), 1, "-");
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	loadrun_status st;
	loadrun_status_get(c->lr, &st);
	int list_h = c->nscenarios + 1;
	if (list_h > height - 9)
		list_h = height - 9;
	if (list_h < 3)
		list_h = 3;
	console_draw_table(c, &c->tables[V_LOAD], top, list_h);
	int y = top + list_h;
	screen_text(y++, 0, COLS, A_NORMAL, "", 1);
	tone tn = st.state == LOADRUN_FAILED	? TONE_BAD
		  : st.state == LOADRUN_RUNNING ? TONE_OK
		  : st.state == LOADRUN_IDLE	? TONE_DIM
						: TONE_WARN;
	if (st.state == LOADRUN_IDLE) {
		screen_text(y++, 1, COLS - 1, screen_attr(tn), "No run yet: Enter starts the selected scenario.", 1);
	} else {
		screen_printf(y++, 1, COLS - 1, screen_attr(tn) | A_BOLD, 1, "%s: %s   %.0fs / %.0fs",
			      st.name, state_name(st.state), st.elapsed_s, st.planned_s);
	}
	screen_printf(y++, 1, COLS - 1, A_NORMAL, 1,
		      "requests %llu   errors %.2f%%   dropped %llu   in flight %d   p99 (run) %.1f ms",
		      (unsigned long long)st.requests,
		      st.requests ? 100.0 * (double)st.errors / (double)st.requests : 0.0,
		      (unsigned long long)st.dropped, st.in_flight, st.p99_all_ms);
	spark(y++, "req/s", st.rps, st.nhist, "req/s");
	spark(y++, "p99 ms", st.p99_ms, st.nhist, "ms");
	if (st.result[0])
		screen_printf(y++, 1, COLS - 1,
			      screen_attr(st.state == LOADRUN_FAILED ? TONE_BAD : TONE_INFO), 1, "%s",
			      st.result);
	else
		y++;
	poller_news n;
	poller_news_get(c->po, &n);
	if (y < top + height)
		screen_printf(y++, 1, COLS - 1, screen_attr(TONE_DIM), 1,
			      "orders: o places one, b a burst (as the console's own customer)%s%s",
			      n.last_order[0] ? "; latest " : "", n.last_order);
}

/* ---- actions ------------------------------------------------------------------------ */

static void start_selected(console *c)
{
	const table_row *r = table_current(&c->tables[V_LOAD]);
	if (!r)
		return;
	if (loadrun_active(c->lr)) {
		console_note(c, 1, "a run is under way: x stops it");
		return;
	}
	/* Starting a run is the console's own work, not a platform call: the
	 * confirmation says what it will do; on y, key() starts it. */
	c->confirming = 1;
	c->confirm_quit = 0;
	c->confirm_nacts = 0;
	c->confirm_load = 1;
	snprintf(c->confirm_text, sizeof(c->confirm_text),
		 "Run scenario %.40s (%.10ss) against the platform? Its setup and schedule run too "
		 "(stock, faults, restarts).",
		 r->key, r->cells[1]);
}

static void burst_done(console *c, const char *text)
{
	char *end;
	errno = 0;
	long long n = strtoll(text, &end, 10);
	if (errno || end == text || *end || n < 1 || n > POLLER_BURST_MAX) {
		console_note(c, 1, "a burst is 1 to %d orders", POLLER_BURST_MAX);
		return;
	}
	action a;
	memset(&a, 0, sizeof(a));
	a.kind = ACT_ORDERS;
	a.n = n;
	char q[160];
	snprintf(q, sizeof(q), "Place %lld orders (card tok_visa, one unit each)?", n);
	console_confirm(c, q, &a, 1);
}

static int key(console *c, const snapshot *s, int ch)
{
	switch (ch) {
	case '\n':
	case '\r':
	case KEY_ENTER:
		if (console_refuse_ro(c))
			return 1;
		start_selected(c);
		return 1;
	case 'x':
		if (console_refuse_ro(c))
			return 1;
		if (!loadrun_active(c->lr)) {
			console_note(c, 1, "no run is under way");
			return 1;
		}
		loadrun_stop(c->lr);
		console_note(c, 0, "stopping the run...");
		return 1;
	case 'o': {
		if (console_refuse_ro(c))
			return 1;
		action a;
		memset(&a, 0, sizeof(a));
		a.kind = ACT_ORDERS;
		a.n = 1;
		console_confirm(c, "Place one order (card tok_visa, one unit)?", &a, 1);
		return 1;
	}
	case 'b':
		if (console_refuse_ro(c))
			return 1;
		console_prompt(c, "orders in the burst:", "10", burst_done);
		return 1;
	default:
		return 0;
	}
}

/* Called by the console when the operator said yes to start_selected. */
void view_load_start(console *c)
{
	const table_row *r = table_current(&c->tables[V_LOAD]);
	if (!r)
		return;
	char path[CLI_PATH_MAX + 96], err[512], url[512], token[256];
	scenario_path(r->key, path, sizeof(path));
	client_url(c->cl, url, sizeof(url));
	client_token(c->cl, token, sizeof(token));
	if (!url[0]) {
		console_note(c, 1, "no platform to run against yet");
		return;
	}
	if (loadrun_start(c->lr, path, url, token, client_state_dir(c->cl), err, sizeof(err)) != 0) {
		console_note(c, 1, "%s", err);
		return;
	}
	c->load_started = 1;
	console_note(c, 0, "%s started", r->key);
}

const view view_load = {
	.name = "Load",
	.keys = "Enter run  x stop  o order  b burst",
	.keys_ro = "(read-only: no runs, no orders)",
	.help = "Enter  run the selected scenario of data/scenarios in this console\n"
		"       (throughput and p99 drawn as sparklines, once a second)\n"
		"x      stop the run (journeys cut, orders read back)\n"
		"o      place one order as the console's own customer\n"
		"b      place a burst of N orders\n"
		"q asks first while a run started here is still going",
	.rows = rows,
	.draw = draw,
	.key = key,
};
