/* view_queues: the event bus per topic and consumer: depth, lag, dead
 * letters; replay. */
#include "tui/view.h"

#include <stdio.h>
#include <string.h>

static const table_col cols[] = {
	{ "TOPIC", 18, 0 }, { "CONSUMER", 14, 0 }, { "SERVICE", 10, 0 }, { "DEPTH", 7, 1 },
	{ "LAG", 7, 1 },    { "LAG MS", 8, 1 },    { "DEAD", 6, 1 },
};

static void count_cell(table_row *r, int col, long long v)
{
	if (v < 0)
		table_set(r, col, -1, "?");
	else
		table_set(r, col, (double)v, "%lld", v);
}

static void rows(console *c, const snapshot *s)
{
	table *t = &c->tables[V_QUEUES];
	if (!t->cols)
		table_init(t, cols, (int)(sizeof(cols) / sizeof(cols[0])));
	table_clear(t);
	for (size_t i = 0; i < s->nqueues; i++) {
		const model_queue *q = &s->queues[i];
		char key[TABLE_KEY];
		snprintf(key, sizeof(key), "%s/%s@%s", q->topic, q->consumer, q->service);
		table_row *r = table_add(t, key, q->error[0] ? TONE_BAD : 0);
		if (!r)
			break;
		table_set(r, 0, 0, "%s", q->topic);
		table_set(r, 1, 0, "%s", q->consumer);
		table_set(r, 2, 0, "%s", q->service);
		count_cell(r, 3, q->depth);
		count_cell(r, 4, q->lag);
		table_set(r, 5, (double)q->lag_ms, "%lld", q->lag_ms);
		if (q->lag_ms > 5000)
			r->tones[5] = TONE_WARN;
		table_set(r, 6, (double)q->dead, "%lld", q->dead);
		if (q->dead > 0)
			r->tones[6] = TONE_BAD;
	}
	table_apply(t);
}

static void draw(console *c, const snapshot *s, int top, int height)
{
	long long dead = 0;
	for (size_t i = 0; i < s->nqueues; i++)
		dead += s->queues[i].dead;
	screen_printf(top, 1, COLS - 1, A_NORMAL, 1, "%zu queues, %lld dead letters", s->nqueues, dead);
	if (s->pt.queues.state != PART_OK)
		console_draw_na(top, 1, COLS - 1, &s->pt.queues, "queues");
	const table_row *r = table_current(&c->tables[V_QUEUES]);
	int room = height - 1;
	if (r) {
		/* The selected row's last error, when it has one. */
		for (size_t i = 0; i < s->nqueues; i++) {
			const model_queue *q = &s->queues[i];
			char key[TABLE_KEY];
			snprintf(key, sizeof(key), "%s/%s@%s", q->topic, q->consumer, q->service);
			if (strcmp(key, r->key) == 0 && q->error[0]) {
				screen_printf(top + height - 1, 1, COLS - 1, screen_attr(TONE_BAD), 1,
					      "last error: %s", q->error);
				room--;
			}
		}
	}
	console_draw_table(c, &c->tables[V_QUEUES], top + 1, room);
}

/* A producer's outbox (a relay row) has no dead letters to replay. */
static int consumer_row(const table_row *r)
{
	return strcmp(r->cells[1], "(relay)") != 0;
}

static int key(console *c, const snapshot *s, int ch)
{
	if (ch != 'r')
		return 0;
	if (console_refuse_ro(c))
		return 1;
	const table_row *rs[32];
	char list[200];
	size_t n = console_pick(c, -1, consumer_row, rs, 32, list, sizeof(list));
	action acts[32];
	for (size_t i = 0; i < n; i++) {
		memset(&acts[i], 0, sizeof(acts[i]));
		acts[i].kind = ACT_REPLAY;
		snprintf(acts[i].a, sizeof(acts[i].a), "%.63s", rs[i]->cells[0]);
		snprintf(acts[i].b, sizeof(acts[i].b), "%.63s", rs[i]->cells[1]);
	}
	if (n == 0) {
		console_note(c, 1, "pick a consumer's row: a relay row has no dead letters");
		return 1;
	}
	char q[320];
	snprintf(q, sizeof(q), "Replay the dead letters of %s (delivered again to the consumer)?", list);
	console_confirm(c, q, acts, (int)n);
	return 1;
}

const view view_queues = {
	.name = "Queues",
	.keys = "r replay  Space tag  / filter  s sort",
	.keys_ro = "Enter details  / filter  s sort",
	.help = "r      replay the dead letters of the row's consumer (or every tagged one)\n"
		"DEPTH: messages waiting (outbox rows not published, for a relay row)\n"
		"LAG: the same as Kafka counts it; LAG MS: the oldest waiting's age",
	.rows = rows,
	.draw = draw,
	.key = key,
};
