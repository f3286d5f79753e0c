/* view: what the console's modules share: the console's state, the views'
 * table (one entry per view, each in its own file view_NAME.c), and the
 * helpers views draw and ask with (console.c). A view turns a snapshot into
 * table rows (rows), draws its part of the screen (draw) and handles its
 * own keys (key); the console owns the frame (tabs, status, footer), the
 * keys every view shares, the prompt, the confirmation and the help. */
#ifndef ECOM_TUI_VIEW_H
#define ECOM_TUI_VIEW_H

#include <stdint.h>

#include "tui/client.h"
#include "tui/loadrun.h"
#include "tui/poller.h"
#include "tui/screen.h"
#include "tui/table.h"

enum view_id {
	V_OVERVIEW,
	V_BREAKERS,
	V_SAGAS,
	V_INVENTORY,
	V_QUEUES,
	V_FAULTS,
	V_LOAD,
	V_LOGS,
	V_COUNT
};

typedef struct console console;

typedef struct view {
	const char *name;
	const char *keys;    /* the footer's part for this view */
	const char *keys_ro; /* the same with --read-only */
	const char *help;    /* lines for the help screen, '\n'-separated */
	/* Rebuilds the view's table from s (NULL for views without one). */
	void (*rows)(console *c, const snapshot *s);
	/* Draws rows [top, top + height) of the screen. */
	void (*draw)(console *c, const snapshot *s, int top, int height);
	/* A key for the view: 1 when it used it. */
	int (*key)(console *c, const snapshot *s, int ch);
	/* The footer's keys when they depend on the view's state (NULL, or
	 * returning NULL: keys / keys_ro). */
	const char *(*footer)(const console *c);
} view;

extern const view view_overview, view_breakers, view_sagas, view_inventory, view_queues,
	view_faults, view_load, view_logs;

typedef void (*prompt_done)(console *c, const char *text);

#define SAGA_FILTERS 5

struct console {
	client *cl;
	poller *po;
	loadrun *lr;
	int read_only;
	int cur; /* the view shown */
	table tables[V_COUNT];
	poller_want want;
	int64_t now_us; /* wall clock of this frame */
	int quit;
	/* the prompt line */
	int prompting;
	char prompt_label[160];
	char prompt_buf[256];
	prompt_done prompt_cb;
	/* the confirmation */
	int confirming;
	char confirm_text[256];
	action confirm_acts[32];
	int confirm_nacts;
	int confirm_quit;
	int confirm_load;
	/* the help screen, a row's details */
	int help;
	int details;
	/* the console's own messages (a refused key, a bad line) */
	char note[200];
	int note_bad;
	int64_t note_at_us;
	/* Sagas */
	int saga_filter; /* index into the statuses, 0 for all */
	int timeline_scroll;
	/* Load */
	int nscenarios;
	char scenarios[LOADRUN_MAX_SCENARIOS][64];
	char scenario_info[LOADRUN_MAX_SCENARIOS][96];
	int load_started; /* this console started a run */
	/* Logs */
	char logs_filter[64];
	long logs_back; /* lines scrolled back from the newest; 0 follows */
	int page; /* rows of the current table on screen */
};

/* Starts the Load view's selected scenario (the operator said yes). */
void view_load_start(console *c);

/* The wall clock, for ages. */
int64_t console_wall_us(void);

/* Asks the operator for a line (label shown before it, initial text
 * editable); done gets the line on Enter (not on Esc). */
void console_prompt(console *c, const char *label, const char *initial, prompt_done done);
/* Asks "text [y/N]"; on y the actions are queued (read-only: refused). */
void console_confirm(console *c, const char *text, const action *acts, int nacts);
/* A note in the status line. */
void console_note(console *c, int bad, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1 (with a note) when the console is read-only: changing keys do nothing. */
int console_refuse_ro(console *c);

/* The rows of the current view an action applies to (the tagged ones
 * shown, else the cursor's), one per distinct value of column col (the
 * row's key when col < 0), those keep refuses left out (keep may be NULL);
 * up to max into rows, and their values as a readable list ("a, b, c and 2
 * more") into list. Returns how many. */
size_t console_pick(console *c, int col, int (*keep)(const table_row *r), const table_row **rows,
		    size_t max, char *list, size_t listlen);

/* Draws t in rows [top, top + height): a header row, then the rows from
 * its top, the cursor's reversed, tagged ones marked; keeps c->page. */
void console_draw_table(console *c, table *t, int top, int height);
/* "n/a" with the reason, dimmed, at (y, x). */
void console_draw_na(int y, int x, int w, const part *pt, const char *what);
/* A figure or "n/a". */
void console_fmt_num(char *buf, size_t len, double v, const char *fmt);

#endif
