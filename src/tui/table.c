/* table: see table.h. */
#include "tui/table.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void table_init(table *t, const table_col *cols, int ncols)
{
	memset(t, 0, sizeof(*t));
	t->cols = cols;
	t->ncols = ncols > TABLE_MAX_COLS ? TABLE_MAX_COLS : ncols;
	t->sort_col = -1;
}

void table_free(table *t)
{
	free(t->rows);
	free(t->vis);
	free(t->tags);
	memset(t, 0, sizeof(*t));
}

void table_clear(table *t)
{
	const table_row *cur = table_current(t);
	if (cur)
		snprintf(t->cursor_key, sizeof(t->cursor_key), "%s", cur->key);
	t->n = 0;
	t->nvis = 0;
}

table_row *table_add(table *t, const char *key, int tone)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		table_row *rows = realloc(t->rows, cap * sizeof(*rows));
		size_t *vis = realloc(t->vis, cap * sizeof(*vis));
		if (rows)
			t->rows = rows;
		if (vis)
			t->vis = vis;
		if (!rows || !vis)
			return NULL;
		t->cap = cap;
	}
	table_row *r = &t->rows[t->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
	r->tone = tone;
	return r;
}

void table_set(table_row *r, int col, double num, const char *fmt, ...)
{
	if (!r || col < 0 || col >= TABLE_MAX_COLS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->cells[col], TABLE_CELL, fmt, ap);
	va_end(ap);
	r->num[col] = num;
}

static int row_matches(const table *t, const table_row *r)
{
	if (!t->filter[0])
		return 1;
	for (int c = 0; c < t->ncols; c++)
		if (strstr(r->cells[c], t->filter))
			return 1;
	return strstr(r->key, t->filter) != NULL;
}

static int by_column(const void *a, const void *b, void *ctx)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	const table *t = ctx;
	int c = t->sort_col;
	const table_row *rx = &t->rows[x], *ry = &t->rows[y];
	int d;
	if (t->cols[c].numeric)
		d = rx->num[c] > ry->num[c] ? -1 : rx->num[c] < ry->num[c] ? 1 : 0;
	else
		d = strcmp(rx->cells[c], ry->cells[c]);
	if (d == 0) /* stable: the order rows were added in */
		d = x < y ? -1 : x > y ? 1 : 0;
	return d;
}

void table_apply(table *t)
{
	t->nvis = 0;
	for (size_t i = 0; i < t->n; i++)
		if (row_matches(t, &t->rows[i]))
			t->vis[t->nvis++] = i;
	if (t->sort_col >= 0 && t->sort_col < t->ncols && t->nvis > 1) {
		qsort_r(t->vis, t->nvis, sizeof(*t->vis), by_column, t);
	}
	if (t->cursor_key[0]) {
		for (size_t i = 0; i < t->nvis; i++)
			if (strcmp(t->rows[t->vis[i]].key, t->cursor_key) == 0) {
				t->cursor = i;
				break;
			}
	}
	if (t->cursor >= t->nvis)
		t->cursor = t->nvis ? t->nvis - 1 : 0;
	if (t->top > t->cursor)
		t->top = t->cursor;
	const table_row *cur = table_current(t);
	if (cur)
		snprintf(t->cursor_key, sizeof(t->cursor_key), "%s", cur->key);
}

void table_set_filter(table *t, const char *filter)
{
	snprintf(t->filter, sizeof(t->filter), "%s", filter ? filter : "");
	table_apply(t);
}

void table_sort_next(table *t)
{
	t->sort_col++;
	if (t->sort_col >= t->ncols)
		t->sort_col = -1;
	table_apply(t);
}

void table_move(table *t, long delta, size_t page)
{
	if (t->nvis == 0) {
		t->cursor = t->top = 0;
		return;
	}
	long c = (long)t->cursor + delta;
	if (c < 0)
		c = 0;
	if (c >= (long)t->nvis)
		c = (long)t->nvis - 1;
	t->cursor = (size_t)c;
	if (page == 0)
		page = 1;
	if (t->cursor < t->top)
		t->top = t->cursor;
	if (t->cursor >= t->top + page)
		t->top = t->cursor - page + 1;
	snprintf(t->cursor_key, sizeof(t->cursor_key), "%s", t->rows[t->vis[t->cursor]].key);
}

const table_row *table_current(const table *t)
{
	return t->nvis && t->cursor < t->nvis ? &t->rows[t->vis[t->cursor]] : NULL;
}

const table_row *table_shown(const table *t, size_t i)
{
	return i < t->nvis ? &t->rows[t->vis[i]] : NULL;
}

int table_is_tagged(const table *t, const char *key)
{
	for (size_t i = 0; i < t->ntags; i++)
		if (strcmp(t->tags[i], key) == 0)
			return 1;
	return 0;
}

void table_toggle_tag(table *t)
{
	const table_row *r = table_current(t);
	if (!r)
		return;
	for (size_t i = 0; i < t->ntags; i++)
		if (strcmp(t->tags[i], r->key) == 0) {
			memmove(&t->tags[i], &t->tags[i + 1], (t->ntags - i - 1) * sizeof(*t->tags));
			t->ntags--;
			return;
		}
	if (t->ntags == t->tagcap) {
		size_t cap = t->tagcap ? t->tagcap * 2 : 16;
		char(*tags)[TABLE_KEY] = realloc(t->tags, cap * sizeof(*tags));
		if (!tags)
			return;
		t->tags = tags;
		t->tagcap = cap;
	}
	snprintf(t->tags[t->ntags++], TABLE_KEY, "%s", r->key);
}

void table_clear_tags(table *t)
{
	t->ntags = 0;
}

size_t table_targets(const table *t, const table_row **out, size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < t->nvis && k < max; i++) {
		const table_row *r = &t->rows[t->vis[i]];
		if (table_is_tagged(t, r->key))
			out[k++] = r;
	}
	if (k == 0 && max > 0 && table_current(t))
		out[k++] = table_current(t);
	return k;
}
