/* waterfall: see waterfall.h. */
#include "ops/waterfall.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WF_MAX_DEPTH 16

typedef struct wf {
	const span *spans;
	size_t n;
	const waterfall_opts *o;
	FILE *out;
	int64_t t0, t1;
	int label_w, bar_w;
	unsigned char *done;
	size_t rows;
} wf;

static int zero8(const uint8_t *b)
{
	for (int i = 0; i < 8; i++)
		if (b[i])
			return 0;
	return 1;
}

/* Index of the span whose id is id, or -1. */
static long find_span(const wf *w, const uint8_t id[8])
{
	for (size_t i = 0; i < w->n; i++)
		if (memcmp(w->spans[i].span_id, id, 8) == 0)
			return (long)i;
	return -1;
}

static void put_bar(wf *w, const span *s)
{
	double span_t = (double)(w->t1 - w->t0);
	if (span_t <= 0)
		span_t = 1;
	int from = (int)((double)(s->start_us - w->t0) / span_t * w->bar_w);
	int to = (int)((double)(s->start_us + s->dur_us - w->t0) / span_t * w->bar_w + 0.999);
	if (from < 0)
		from = 0;
	if (to > w->bar_w)
		to = w->bar_w;
	if (to <= from)
		to = from + 1 > w->bar_w ? w->bar_w : from + 1;
	fputc('|', w->out);
	for (int i = 0; i < w->bar_w; i++) {
		if (i >= from && i < to)
			fputs(w->o->color ? "\u2588" : "#", w->out);
		else
			fputc(' ', w->out);
	}
	fputc('|', w->out);
}

static void put_row(wf *w, const span *s, int depth)
{
	char label[256];
	int indent = depth * 2;
	snprintf(label, sizeof(label), "%*s%s  %s", indent, "", s->service, s->name);
	fprintf(w->out, "%-*.*s ", w->label_w, w->label_w, label);
	put_bar(w, s);
	static const char *const names[] = { "unset", "ok", "error" };
	int st = s->status >= SPAN_UNSET && s->status <= SPAN_ERROR ? (int)s->status : 0;
	const char *on = "", *off = "";
	if (w->o->color && st == SPAN_OK) {
		on = "\033[32m";
		off = "\033[0m";
	} else if (w->o->color && st == SPAN_ERROR) {
		on = "\033[31m";
		off = "\033[0m";
	}
	fprintf(w->out, " %8.1f ms %s%s%s", (double)s->dur_us / 1000.0, on, names[st], off);
	if (s->status_msg[0])
		fprintf(w->out, " (%s)", s->status_msg);
	fputc('\n', w->out);
	w->rows++;
}

/* Children of parent (NULL: roots) in start order, each followed by its own. */
static void put_children(wf *w, const span *parent, int depth)
{
	for (;;) {
		long best = -1;
		for (size_t i = 0; i < w->n; i++) {
			const span *s = &w->spans[i];
			if (w->done[i])
				continue;
			int is_child = parent ? memcmp(s->parent_id, parent->span_id, 8) == 0
					      : (zero8(s->parent_id) || find_span(w, s->parent_id) < 0);
			if (!is_child)
				continue;
			if (best < 0 || s->start_us < w->spans[best].start_us)
				best = (long)i;
		}
		if (best < 0)
			return;
		w->done[best] = 1;
		put_row(w, &w->spans[best], depth);
		put_children(w, &w->spans[best], depth < WF_MAX_DEPTH ? depth + 1 : depth);
	}
}

size_t waterfall_render(FILE *out, const span *spans, size_t n, const waterfall_opts *o)
{
	waterfall_opts def = { 0, 100 };
	if (!o)
		o = &def;
	if (n == 0 || !spans)
		return 0;
	wf w = { .spans = spans, .n = n, .o = o, .out = out };
	int width = o->width < 60 ? 100 : o->width;
	w.label_w = width * 2 / 5;
	w.bar_w = width - w.label_w - 24;
	if (w.bar_w < 10)
		w.bar_w = 10;
	w.done = calloc(n, 1);
	if (!w.done)
		return 0;
	w.t0 = spans[0].start_us;
	w.t1 = spans[0].start_us + spans[0].dur_us;
	for (size_t i = 1; i < n; i++) {
		if (spans[i].start_us < w.t0)
			w.t0 = spans[i].start_us;
		if (spans[i].start_us + spans[i].dur_us > w.t1)
			w.t1 = spans[i].start_us + spans[i].dur_us;
	}
	put_children(&w, NULL, 0);
	/* A cycle of parent links leaves spans unreached: show them flat. */
	for (size_t i = 0; i < n; i++)
		if (!w.done[i]) {
			w.done[i] = 1;
			put_row(&w, &spans[i], 0);
		}
	free(w.done);
	return w.rows;
}
