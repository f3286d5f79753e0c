/* traces: `ecom trace ORDER_ID`, an order's checkout saga as the operator
 * sees it: its steps in order, then every span of its trace (gathered by
 * the gateway from every process) as a waterfall (ops/waterfall): colour
 * on a terminal, plain text when the output is not one or NO_COLOR is
 * set. */
#ifndef ECOM_TRACES_H
#define ECOM_TRACES_H

#include <stdio.h>

#include <jansson.h>

/* argv[0] is "trace". Returns the process exit code. */
int traces_main(int argc, char **argv);

/* Writes the saga answer of GET /admin/sagas/{order_id} (v) to out: a
 * summary line, the steps in order, the spans as a waterfall of width
 * columns, in colour or not. Returns the spans drawn. */
size_t traces_print(FILE *out, const json_t *v, int color, int width);

#endif
