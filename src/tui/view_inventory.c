/* view_inventory: stock by sku or name (the catalog's products matching
 * the search, each read with GET /v1/inventory/{sku}); low stock
 * highlighted; set stock. */
#include "tui/view.h"
#include "core/text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const table_col cols[] = {
	{ "SKU", 14, 0 }, { "NAME", 30, 0 }, { "ON HAND", 8, 1 }, { "RESERVED", 8, 1 },
	{ "AVAILABLE", 9, 1 },
};

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_INVENTORY];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	for (size_t i = 0; i < s->nstock; i++) {
		const model_stock *m = &s->stock[i];
		table_row *r = table_add(t, m->sku, 0);
		if (!r)
			break;
		table_set(r, 0, 0, "%s", m->sku);
		table_set(r, 1, 0, "%s", m->name);
		if (!m->known) {
			table_set(r, 2, -1, "-");
			table_set(r, 3, -1, "-");
			table_set(r, 4, -1, "no stock");
			r->tone = TONE_DIM;
			continue;
		}
		table_set(r, 2, (double)m->on_hand, "%lld", m->on_hand);
		table_set(r, 3, (double)m->reserved, "%lld", m->reserved);
		table_set(r, 4, (double)m->available, "%lld", m->available);
		if (m->available <= 0)
			r->tone = TONE_BAD;
		else if (m->low)
			r->tone = TONE_WARN;
	}
	table_apply(t);
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	int low = 0;
	for (size_t i = 0; i < s->nstock; i++)
		low += s->stock[i].known && s->stock[i].low;
	screen_printf(top, 1, COLS - 1, A_NORMAL, 1, "search: %s   %zu skus shown (at most %d), %d low",
		      c->want.stock_filter[0] ? c->want.stock_filter : "(all)", s->nstock,
		      POLLER_STOCK_MAX, low);
	if (s->pt.stock.state == PART_ERR || s->pt.stock.state == PART_NONE)
		console_draw_na(top, 1, COLS - 1, &s->pt.stock, "stock");
	if (s->pt.stock.state == PART_OK && s->nstock == 0) {
		screen_printf(top + 2, 2, COLS - 2, screen_attr(TONE_DIM), 1,
			      "no product or sku matches '%s'", c->want.stock_filter);
		return;
	}
	console_draw_table(c, &c->tables[V_INVENTORY], top + 1, height - 1);
}

static void search_done(console *c, const char *text)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	snprintf(c->want.stock_filter, sizeof(c->want.stock_filter), "%s", text_trim(buf));
	table_set_filter(&c->tables[V_INVENTORY], "");
	poller_want_set(c->po, &c->want, 1);
}

static void stock_done(console *c, const char *text)
{
	char *end;
	errno = 0;
	long long n = strtoll(text, &end, 10);
	while (*end == ' ')
		end++;
	if (errno || end == text || *end || n < 0 || n > 1000000000LL) {
		console_note(c, 1, "'%s' is not a number of units (0 or more)", text);
		return;
	}
	const table_row *rs[32];
	char list[200];
	size_t k = console_pick(c, -1, NULL, rs, 32, list, sizeof(list));
	if (k == 0)
		return;
	action acts[32];
	for (size_t i = 0; i < k; i++) {
		memset(&acts[i], 0, sizeof(acts[i]));
		acts[i].kind = ACT_STOCK_SET;
		acts[i].n = n;
		snprintf(acts[i].a, sizeof(acts[i].a), "%.64s", rs[i]->key);
	}
	char q[256];
	snprintf(q, sizeof(q), "Set on hand to %lld for %s?", n, list);
	console_confirm(c, q, acts, (int)k);
}

static int key(console *c, const snapshot *s, int ch)
{
	switch (ch) {
	case '/':
		console_prompt(c, "search sku or name:", c->want.stock_filter, search_done);
		return 1;
	case 27:
		if (c->want.stock_filter[0]) {
			c->want.stock_filter[0] = '\0';
			poller_want_set(c->po, &c->want, 1);
			return 1;
		}
		return 0;
	case 'e':
	case '=': {
		if (console_refuse_ro(c))
			return 1;
		const table_row *rs[32];
		size_t k = table_targets(&c->tables[V_INVENTORY], rs, 32);
		if (k == 0) {
			console_note(c, 1, "no sku selected");
			return 1;
		}
		char label[128], init[32] = "";
		if (k == 1)
			snprintf(label, sizeof(label), "on hand for %.64s:", rs[0]->key);
		else
			snprintf(label, sizeof(label), "on hand for %zu tagged skus:", k);
		if (k == 1 && rs[0]->num[2] >= 0)
			snprintf(init, sizeof(init), "%.0f", rs[0]->num[2]);
		console_prompt(c, label, init, stock_done);
		return 1;
	}
	default:
		return 0;
	}
}

const view view_inventory = {
	.name = "Inventory",
	.keys = "/ search  e set stock  Space tag  s sort",
	.keys_ro = "/ search  s sort  Enter details",
	.help = "/      search by sku or name (a sku the catalog does not list is read too)\n"
		"e      set on hand for the row, or every tagged row (with confirmation)\n"
		"Low stock: yellow at or below inventory.low_stock_threshold, red at none",
	.rows = rows,
	.draw = draw,
	.key = key,
};
