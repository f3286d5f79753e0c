/* logs: `ecom logs`. */
#include "ops/logs.h"
#include "core/text.h"
#include "ops/cli.h"

#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define CMD "logs"
#define MAX_FILES 256
/* How often -f looks at the files again. */
#define FOLLOW_MS 200

static const char HELP[] =
	"usage: ecom logs [SERVICE] [-f] [--trace ID] [-n N] [--json] [--state DIR]\n"
	"\n"
	"The log lines of every process of the platform (STATE/log/*.log, one JSON\n"
	"object per line: timestamp, level, service, message, trace_id, span_id),\n"
	"merged in time order, one per line:\n"
	"\n"
	"  TIMESTAMP  INSTANCE  LEVEL  MESSAGE  [trace=ID span=ID]\n"
	"\n"
	"  SERVICE     only that service's lines (order, gateway, supervisor, ...)\n"
	"  -f, --follow  then print new lines as they are written, until\n"
	"              interrupted (SIGINT or SIGTERM: exit 0)\n"
	"  --trace ID  only the lines written in the trace ID (32 hex digits), as\n"
	"              the traceparent of any response names it\n"
	"  -n N        only the last N lines before following (default: all)\n"
	"  --json      print the lines as they are written, with the instance added\n"
	"  --state DIR the platform's state directory (default ./var or $ECOM_STATE)\n";

typedef struct entry {
	int64_t t;  /* µs since the epoch, for ordering */
	long seq;   /* reading order, so equal times keep it */
	char *text; /* what is printed */
} entry;

typedef struct entries {
	entry *v;
	size_t n, cap;
} entries;

typedef struct logfile {
	char path[CLI_PATH_MAX];
	char instance[96];
	char service[64];
	long offset;    /* bytes already read (complete lines) */
	int64_t last_t; /* time of its last line, for lines that are not JSON */
} logfile;

typedef struct logs {
	const char *service; /* filter, or NULL */
	const char *trace;   /* filter, or NULL */
	int json;
	logfile files[MAX_FILES];
	int nfiles;
	long seq;
	char dir[CLI_PATH_MAX];
} logs;

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* "2026-01-02T03:04:05.123456Z" (any number of fraction digits) to µs;
 * -1 when it is not that. */
static int64_t parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!p)
		return -1;
	int64_t us = 0, scale = 100000;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++) {
			us += (*p - '0') * scale;
			scale /= 10;
		}
	return (int64_t)timegm(&tm) * 1000000 + us;
}

static void push(entries *es, int64_t t, long seq, char *text)
{
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 256;
		entry *v = realloc(es->v, cap * sizeof(*v));
		if (!v) {
			free(text);
			return;
		}
		es->v = v;
		es->cap = cap;
	}
	es->v[es->n++] = (entry){ t, seq, text };
}

static void entries_clear(entries *es)
{
	for (size_t i = 0; i < es->n; i++)
		free(es->v[i].text);
	es->n = 0;
}

static int by_time(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *jstr(const json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

/* One line of f: kept (in es) when it passes the filters. */
static void take_line(logs *L, logfile *f, const char *line, entries *es)
{
	json_t *v = line[0] == '{' ? json_loads(line, 0, NULL) : NULL;
	const char *ts = jstr(v, "timestamp");
	int64_t t = v ? parse_time(ts) : -1;
	if (t >= 0)
		f->last_t = t;
	else
		t = f->last_t; /* not ours (a crash message): beside its neighbours */
	const char *service = jstr(v, "service") ? jstr(v, "service") : f->service;
	const char *tid = jstr(v, "trace_id");
	if ((L->service && strcmp(service, L->service) != 0) ||
	    (L->trace && (!tid || strcmp(tid, L->trace) != 0))) {
		json_decref(v);
		return;
	}
	char *text = NULL;
	if (L->json) {
		if (v && json_object_set_new(v, "instance", json_string(f->instance)) == 0)
			text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
		else
			text = strdup(line);
	} else if (v && ts) {
		const char *sid = jstr(v, "span_id");
		if (asprintf(&text, "%s  %-12s %-5s %s%s%s%s%s", ts, f->instance,
			     jstr(v, "level") ? jstr(v, "level") : "?",
			     jstr(v, "message") ? jstr(v, "message") : "", tid ? "  trace=" : "",
			     tid ? tid : "", sid ? " span=" : "", sid ? sid : "") < 0)
			text = NULL;
	} else if (asprintf(&text, "%-27s  %-12s %-5s %s", "-", f->instance, "-", line) < 0) {
		text = NULL;
	}
	json_decref(v);
	if (text)
		push(es, t, L->seq++, text);
}

/* Reads f's complete lines past its offset into es. */
static void read_new(logs *L, logfile *f, entries *es)
{
	FILE *in = fopen(f->path, "r");
	if (!in)
		return;
	struct stat sb;
	if (fstat(fileno(in), &sb) == 0 && sb.st_size < f->offset)
		f->offset = 0; /* truncated: start over */
	if (fseek(in, f->offset, SEEK_SET) != 0) {
		fclose(in);
		return;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, in)) > 0) {
		if (line[len - 1] != '\n')
			break; /* being written: read it whole next time */
		f->offset += len;
		line[len - 1] = '\0';
		if (len > 1 && line[len - 2] == '\r')
			line[len - 2] = '\0';
		if (line[0])
			take_line(L, f, line, es);
	}
	free(line);
	fclose(in);
}

/* Adds the *.log files of the directory not known yet. */
static void scan(logs *L)
{
	DIR *d = opendir(L->dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) && L->nfiles < MAX_FILES) {
		size_t n = strlen(e->d_name);
		if (n < 5 || n - 4 >= sizeof(L->files[0].instance) ||
		    strcmp(e->d_name + n - 4, ".log") != 0)
			continue;
		int known = 0;
		for (int i = 0; i < L->nfiles && !known; i++)
			known = strncmp(L->files[i].instance, e->d_name, n - 4) == 0 &&
				L->files[i].instance[n - 4] == '\0';
		if (known)
			continue;
		logfile *f = &L->files[L->nfiles++];
		memset(f, 0, sizeof(*f));
		if ((size_t)snprintf(f->path, sizeof(f->path), "%s/%s", L->dir, e->d_name) >=
		    sizeof(f->path)) {
			L->nfiles--;
			continue;
		}
		memcpy(f->instance, e->d_name, n - 4);
		f->instance[n - 4] = '\0';
		/* The service a line that is not JSON belongs to: the instance
		 * without its "-N". */
		size_t sl = n - 4 < sizeof(f->service) ? n - 4 : sizeof(f->service) - 1;
		memcpy(f->service, f->instance, sl);
		f->service[sl] = '\0';
		char *dash = strrchr(f->service, '-');
		if (dash && dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1))
			*dash = '\0';
	}
	closedir(d);
}

/* Reads every file's new lines and prints them in time order; at most the
 * last `last` of them when last > 0. */
static void round_print(logs *L, entries *es, long last)
{
	scan(L);
	for (int i = 0; i < L->nfiles; i++)
		read_new(L, &L->files[i], es);
	qsort(es->v, es->n, sizeof(*es->v), by_time);
	size_t from = last > 0 && es->n > (size_t)last ? es->n - (size_t)last : 0;
	for (size_t i = from; i < es->n; i++)
		puts(es->v[i].text);
	fflush(stdout);
	entries_clear(es);
}

int logs_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "follow", no_argument, NULL, 'f' },
		{ "trace", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'J' },
		{ "state", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	logs *L = calloc(1, sizeof(*L));
	if (!L)
		return cli_fail(CMD, "out of memory");
	const char *state = NULL;
	int follow = 0, rc = 0;
	int64_t last = 0;
	opterr = 0;
	optind = 0;
	for (int c; rc == 0 && (c = getopt_long(argc, argv, "fn:", opts, NULL)) != -1;) {
		switch (c) {
		case 'f': follow = 1; break;
		case 't': L->trace = optarg; break;
		case 'J': L->json = 1; break;
		case 'S': state = optarg; break;
		case 'n':
			if (cli_parse_int(optarg, 1, 100000000, &last) != 0)
				rc = cli_usage(CMD, "-n needs a number of lines");
			break;
		default:
			rc = cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (rc == 0 && argc - optind > 1)
		rc = cli_usage(CMD, "takes at most one SERVICE");
	if (rc == 0 && argc - optind == 1) {
		L->service = argv[optind];
		if (!text_is_name(L->service, 63))
			rc = cli_usage(CMD, "SERVICE must be a service name such as order or gateway");
	}
	if (rc == 0 && L->trace &&
	    (strlen(L->trace) != 32 || strspn(L->trace, "0123456789abcdef") != 32))
		rc = cli_usage(CMD, "--trace needs a trace id: 32 lowercase hex digits");
	if (rc) {
		free(L);
		return rc;
	}
	snprintf(L->dir, sizeof(L->dir), "%s/log", cli_state_dir(state));
	struct stat sb;
	if (stat(L->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		free(L);
		return cli_fail(CMD, "no logs in %s (is this the platform's state directory?)",
				cli_state_dir(state));
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_DFL);
	entries es = { 0 };
	round_print(L, &es, (long)last);
	while (follow && !stop_flag) {
		struct timespec ts = { 0, FOLLOW_MS * 1000000L };
		nanosleep(&ts, NULL); /* a signal ends it early */
		if (!stop_flag)
			round_print(L, &es, 0);
	}
	free(es.v);
	free(L);
	return 0;
}
