/* waterfall: a trace's spans drawn in the terminal, one row per span,
 * indented under its parent, with a bar placed on a common time axis:
 *
 *   gateway  POST /v1/orders             |████████████████████| 41.2 ms ok
 *     order  checkout                    |  ███████████████   | 35.0 ms ok
 *       gateway  POST /v1/reservations   |  ██                |  3.1 ms ok
 *
 * Rows are in tree order (a parent, then its children by start time);
 * spans whose parent is not among them are roots. With colour, the status
 * is green (ok), red (error) or plain (unset); without (not a TTY, or
 * NO_COLOR set: the caller decides), plain text with '#' bars. Pure
 * formatting: no I/O besides the FILE it writes to. */
#ifndef ECOM_WATERFALL_H
#define ECOM_WATERFALL_H

#include <stddef.h>
#include <stdio.h>

#include "core/tracer.h"

typedef struct waterfall_opts {
	int color;    /* ANSI colours and block characters */
	int width;    /* columns of the whole row; < 60 means 100 */
} waterfall_opts;

/* Writes the n spans (any order) to out. Returns the rows written. */
size_t waterfall_render(FILE *out, const span *spans, size_t n, const waterfall_opts *o);

#endif
