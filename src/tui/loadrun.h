/* loadrun: a load scenario (data/scenarios/NAME.scn) run from the operator
 * console, in a thread of the console's process: the load generator
 * (sim/loadgen) reports its progress about once a second, kept here as a
 * short history of throughput and p99 for sparklines; the operator can
 * stop it (the generator's interruption: journeys cut, orders read back
 * for at most 2 s). One run at a time. Owned: loadrun_new / loadrun_free
 * (which stops a run and waits for it). */
#ifndef ECOM_TUI_LOADRUN_H
#define ECOM_TUI_LOADRUN_H

#include <stddef.h>
#include <stdint.h>

#define LOADRUN_HIST 120 /* seconds of history kept */
#define LOADRUN_MAX_SCENARIOS 64

typedef enum loadrun_state {
	LOADRUN_IDLE,
	LOADRUN_STARTING, /* reading the catalog, signing users in */
	LOADRUN_RUNNING,
	LOADRUN_STOPPING, /* asked to stop; reading orders back */
	LOADRUN_DONE,
	LOADRUN_FAILED,
} loadrun_state;

typedef struct loadrun_status {
	loadrun_state state;
	char name[64];
	double elapsed_s, planned_s;
	double rps[LOADRUN_HIST], p99_ms[LOADRUN_HIST]; /* oldest first */
	int nhist;
	uint64_t requests, errors, dropped;
	int in_flight;
	double p99_all_ms;
	char result[256]; /* how it ended: the summary's figures, or why it failed */
} loadrun_status;

typedef struct loadrun loadrun;

loadrun *loadrun_new(void);
void loadrun_free(loadrun *l);

/* The scenario names in dir (files NAME.scn), sorted, into names (up to
 * max). Returns how many. */
int loadrun_list(const char *dir, char names[][64], int max);

/* Starts the scenario at path against url with the admin token
 * (state_dir for its kill/restart schedule lines, or NULL). 0; ERR_BUSY
 * while a run goes on; ERR_INVALID with err when the file is not a
 * scenario. */
int loadrun_start(loadrun *l, const char *path, const char *url, const char *token,
		  const char *state_dir, char *err, size_t errlen);
/* Asks the run to stop (it ends within a few seconds). */
void loadrun_stop(loadrun *l);
/* 1 while a run is starting, running or stopping. */
int loadrun_active(loadrun *l);
void loadrun_status_get(loadrun *l, loadrun_status *out);

/* The last `width` values of v[0..n) as a sparkline of width cells (right
 * aligned, blank on the left when there are fewer values), scaled from 0
 * to the largest shown; UTF-8 blocks (U+2581..U+2588) or, without utf8,
 * the ASCII ramp " .:-=+*#". NUL-terminated in buf. */
void loadrun_sparkline(const double *v, int n, int width, int utf8, char *buf, size_t len);

#endif
