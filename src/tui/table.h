/* table: the rows a console view lists, and what the operator does to
 * them: filter (a substring of any cell), sort (by one column, numbers
 * largest first, text in byte order), tag (rows are known by a key, so
 * tags and the cursor survive a refresh that rebuilds every row), and move
 * the cursor. Plain data: no terminal. Owned by its view: table_init /
 * table_free. */
#ifndef ECOM_TUI_TABLE_H
#define ECOM_TUI_TABLE_H

#include <stddef.h>

#define TABLE_MAX_COLS 12
#define TABLE_CELL 96
#define TABLE_KEY 256

typedef struct table_col {
	const char *title;
	int width;   /* columns on screen; the last column takes what is left */
	int numeric; /* right-aligned; sorts by the number, largest first */
} table_col;

typedef struct table_row {
	char key[TABLE_KEY];
	int tone; /* how the view wants it drawn (its own codes; 0 plain) */
	char cells[TABLE_MAX_COLS][TABLE_CELL];
	double num[TABLE_MAX_COLS];
	int tones[TABLE_MAX_COLS]; /* per cell, 0: the row's */
} table_row;

typedef struct table {
	const table_col *cols;
	int ncols;
	table_row *rows; /* every row, in the order added */
	size_t n, cap;
	size_t *vis; /* the rows shown, after the filter and the sort */
	size_t nvis;
	int sort_col; /* -1: the order rows were added in */
	char filter[64];
	size_t cursor, top; /* positions in vis */
	char cursor_key[TABLE_KEY];
	char (*tags)[TABLE_KEY];
	size_t ntags, tagcap;
} table;

void table_init(table *t, const table_col *cols, int ncols);
void table_free(table *t);

/* Drops every row (tags, sort, filter and the cursor's key stay). */
void table_clear(table *t);
/* A new row at the end (cells empty), or NULL when out of memory. */
table_row *table_add(table *t, const char *key, int tone);
/* Sets a cell's text (printf-style); num is what it sorts by when the
 * column is numeric. */
void table_set(table_row *r, int col, double num, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Applies the filter and the sort, and puts the cursor back on the row
 * with its key (or keeps its position). Call after adding rows and after
 * changing the filter or the sort. */
void table_apply(table *t);

void table_set_filter(table *t, const char *filter);
/* The next column to sort by (after the last: back to the natural order). */
void table_sort_next(table *t);

/* Moves the cursor by delta rows (clamped); page is the visible height,
 * used to keep the cursor on screen (top). */
void table_move(table *t, long delta, size_t page);
/* The row under the cursor, or NULL when nothing is shown. */
const table_row *table_current(const table *t);
/* The i-th shown row. */
const table_row *table_shown(const table *t, size_t i);

/* Tags or untags the row under the cursor. */
void table_toggle_tag(table *t);
int table_is_tagged(const table *t, const char *key);
void table_clear_tags(table *t);
/* The rows an action applies to: the tagged ones that are shown, else the
 * one under the cursor. Fills up to max pointers; returns how many. */
size_t table_targets(const table *t, const table_row **out, size_t max);

#endif
