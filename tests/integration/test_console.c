/* Integration: `ecom console` in a real terminal, tmux's, against a real
 * platform (`ecom up`). An interactive shell runs in a tmux pane of
 * 120x40; the console is started from it, driven with send-keys and read
 * with capture-pane (every wait bounded), and the platform is checked
 * through its admin API: the overview lists every service; a breaker
 * tripped from the console is FORCED_OPEN in GET /admin/breakers (and
 * reset again from it); an order placed from the console appears in the
 * Sagas view and its timeline opens; a fault added from the console is in
 * GET /admin/faults (and cleared from it); at 80x24 the footer stays; the
 * scenario run from the Load view shows its progress and q asks before
 * quitting while it runs; the platform stopped under the console shows
 * the banner and the console keeps answering keys; q gives the shell back
 * (alternate screen left, exit 0, the prompt again); --read-only refuses
 * actions; SIGTERM restores the terminal too. Skipped (exit 77) when tmux
 * is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

#define WAIT_MS 20000 /* the longest any step waits (ASan is slow) */
#define PROMPT "tui-test$ "
#define PROMPT_SHOWN "tui-test$" /* capture-pane drops trailing blanks */

static char tmux_dir[128], sock[192];
static char last_screen[16384];

/* Runs tmux -S sock ARGS...; its stdout into out (when not NULL, up to
 * len). Returns tmux's exit code, -1 when it could not run. */
static int tmux(char *out, size_t len, const char *first, ...)
{
	const char *argv[32];
	int k = 0;
	argv[k++] = "tmux";
	argv[k++] = "-S";
	argv[k++] = sock;
	va_list ap;
	va_start(ap, first);
	for (const char *a = first; a && k < 31; a = va_arg(ap, const char *))
		argv[k++] = a;
	va_end(ap);
	argv[k] = NULL;
	/* Only a call that wants the output reads a pipe: the first one
	 * forks the tmux server, which would keep the pipe open for good. */
	int fds[2] = { -1, -1 };
	if (out && pipe(fds) != 0)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(out ? fds[1] : null, 1);
		dup2(null, 2);
		dup2(null, 0);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execvp("tmux", (char *const *)argv);
		_exit(127);
	}
	if (out) {
		close(fds[1]);
		size_t got = 0;
		char buf[4096];
		ssize_t n;
		while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			if (got + 1 < len) {
				size_t take = (size_t)n < len - 1 - got ? (size_t)n : len - 1 - got;
				memcpy(out + got, buf, take);
				got += take;
			}
		}
		close(fds[0]);
		if (len)
			out[got] = '\0';
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *screen(void)
{
	if (tmux(last_screen, sizeof(last_screen), "capture-pane", "-p", "-t", "c", NULL) != 0)
		last_screen[0] = '\0';
	return last_screen;
}

/* Waits (bounded) until the pane shows needle. */
static int shows(const char *needle, int ms)
{
	for (int waited = 0; waited <= ms; waited += 100) {
		if (strstr(screen(), needle))
			return 1;
		usleep(100000);
	}
	return 0;
}

static void expect_screen(const char *needle)
{
	if (!shows(needle, WAIT_MS))
		fail_msg("the console never showed '%s'; the screen:\n%s", needle, last_screen);
}

/* Keys by tmux's names (Enter, Escape, C-u) or one character each. */
static void key(const char *k)
{
	tmux(NULL, 0, "send-keys", "-t", "c", k, NULL);
}

/* Text typed as it is. */
static void type(const char *text)
{
	tmux(NULL, 0, "send-keys", "-t", "c", "-l", text, NULL);
}

static int alternate_on(void)
{
	char out[32] = "";
	tmux(out, sizeof(out), "display-message", "-p", "-t", "c", "#{alternate_on}", NULL);
	return atoi(out);
}

/* The console's pid: the pane's shell's child. */
static pid_t console_pid(void)
{
	char out[32] = "";
	tmux(out, sizeof(out), "display-message", "-p", "-t", "c", "#{pane_pid}", NULL);
	long shell = atol(out);
	DIR *d = opendir("/proc");
	pid_t found = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL && !found) {
		char path[300], buf[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		char *rp = strrchr(buf, ')');
		long ppid = 0;
		char st;
		if (rp && sscanf(rp + 2, "%c %ld", &st, &ppid) == 2 && ppid == shell)
			found = (pid_t)atol(de->d_name);
	}
	if (d)
		closedir(d);
	return found;
}

/* The console, started from the pane's shell (flags: "" or more). */
/* Starts the console with env (assignments, "" for none) and flags. */
static void start_console_env(const char *env, const char *flags)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "%s ECOM_DATA=%s %s console --state %s%s; echo console-exit=$?",
		 env, tmux_dir, IT.bin, IT.state, flags);
	type(cmd);
	key("Enter");
	expect_screen("1 Overview");
}

static void start_console(const char *flags)
{
	start_console_env("", flags);
}

static json_t *admin_get(const char *path)
{
	json_t *v = NULL;
	int st = itest_req("GET", path, NULL, ITEST_TOKEN, &v, NULL);
	if (st != 200) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* The state of the first breaker into callee in GET /admin/breakers
 * counted by state; 1 when any is in state. */
static int breaker_in(const char *callee, const char *state)
{
	json_t *v = admin_get("/admin/breakers");
	size_t i;
	json_t *b;
	int found = 0;
	json_array_foreach(json_object_get(v, "breakers"), i, b)
	{
		const char *to = json_string_value(json_object_get(b, "to"));
		const char *s = json_string_value(json_object_get(b, "state"));
		if (to && s && strcmp(to, callee) == 0 && strcmp(s, state) == 0)
			found = 1;
	}
	json_decref(v);
	return found;
}

static int wait_breaker(const char *callee, const char *state, int want)
{
	for (int waited = 0; waited <= WAIT_MS; waited += 100) {
		if (breaker_in(callee, state) == want)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* The latency of target's fault in GET /admin/faults, -1 when none. */
static long long fault_latency(const char *target)
{
	json_t *v = admin_get("/admin/faults");
	size_t i;
	json_t *f;
	long long lat = -1;
	json_array_foreach(json_object_get(v, "faults"), i, f)
	{
		const char *t = json_string_value(json_object_get(f, "target"));
		if (t && strcmp(t, target) == 0)
			lat = (long long)json_integer_value(json_object_get(f, "latency_ms"));
	}
	json_decref(v);
	return lat;
}

static int setup(void **unused)
{
	if (itest_up(NULL) != 0)
		return -1;
	snprintf(tmux_dir, sizeof(tmux_dir), "/tmp/ecom-tui-XXXXXX");
	if (!mkdtemp(tmux_dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/sock", tmux_dir);
	/* The Load view's scenarios: one that needs no users (signing users
	 * in is slow on a busy machine), health checks at 20/s. */
	char path[256];
	snprintf(path, sizeof(path), "%s/scenarios", tmux_dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/scenarios/probe.scn", tmux_dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs("[scenario]\nname = probe\ndescription = Health checks at 20/s.\n"
	      "[load]\nrate = 20\nduration = 60s\nusers = 0\n"
	      "[journey probe]\nsteps = health\n",
	      f);
	fclose(f);
	/* A clean interactive shell in a 120x40 terminal, no user config. */
	char shell[256];
	snprintf(shell, sizeof(shell), "env PS1='%s' ENV= HISTFILE= sh -i", PROMPT);
	if (tmux(NULL, 0, "-f", "/dev/null", "new-session", "-d", "-s", "c", "-x", "120", "-y", "40",
		 shell, NULL) != 0) {
		fprintf(stderr, "tmux new-session failed\n");
		return -1;
	}
	tmux(NULL, 0, "set-option", "-g", "status", "off", NULL);
	if (!shows(PROMPT_SHOWN, WAIT_MS)) {
		fprintf(stderr, "no shell prompt in tmux:\n%s\n", last_screen);
		return -1;
	}
	start_console("");
	return 0;
}

static int teardown(void **unused)
{
	pid_t pid = console_pid();
	if (pid > 0)
		kill(pid, SIGKILL);
	tmux(NULL, 0, "kill-server", NULL);
	unlink(sock);
	char path[256];
	snprintf(path, sizeof(path), "%s/scenarios/probe.scn", tmux_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/scenarios", tmux_dir);
	rmdir(path);
	rmdir(tmux_dir);
	itest_teardown();
	return 0;
}

/* "services up A/B" on the screen with A == B > 0. */
static int all_up(void)
{
	const char *p = strstr(screen(), "services up ");
	int up = 0, total = -1;
	return p && sscanf(p, "services up %d/%d", &up, &total) == 2 && up == total && up > 0;
}

static void test_overview_lists_every_service(void **unused)
{
	int ok = 0;
	for (int waited = 0; waited <= WAIT_MS && !(ok = all_up()); waited += 100)
		usleep(100000);
	if (!ok)
		fail_msg("the overview never showed every service up:\n%s", last_screen);
	/* A row for the gateway and for every service the gateway lists. */
	json_t *v = admin_get("/admin/services");
	size_t i;
	json_t *svc;
	int n = 0;
	expect_screen("  gateway ");
	json_array_foreach(json_object_get(v, "services"), i, svc)
	{
		char row[64];
		snprintf(row, sizeof(row), "  %-12s", json_string_value(json_object_get(svc, "name")));
		expect_screen(row);
		n++;
	}
	json_decref(v);
	assert_true(n >= 6); /* cart, catalog, inventory, order, payment, user at least */
	expect_screen("SERVICE");
	expect_screen("? help  q quit");
}

static void test_trip_and_reset_a_breaker(void **unused)
{
	key("2");
	expect_screen("T trip by name");
	key("T");
	expect_screen("trip the breakers into service:");
	key("C-u");
	type("catalog");
	key("Enter");
	expect_screen("Trip every breaker into catalog");
	key("y");
	if (!wait_breaker("catalog", "FORCED_OPEN", 1))
		fail_msg("GET /admin/breakers never showed catalog FORCED_OPEN");
	expect_screen("FORCED_OPEN");
	/* Reset from the console: the forced rows (all into catalog), the
	 * first one's callee. */
	key("/");
	type("FORCED_OPEN");
	key("Enter");
	key("r");
	expect_screen("Reset every breaker into catalog");
	key("y");
	if (!wait_breaker("catalog", "FORCED_OPEN", 0))
		fail_msg("the breakers into catalog stayed FORCED_OPEN");
	key("Escape");
}

static void test_order_shows_in_sagas_and_its_timeline_opens(void **unused)
{
	key("7");
	expect_screen("o order");
	key("o");
	expect_screen("Place one order");
	key("y");
	expect_screen(" placed: ");
	json_t *v = NULL;
	char id[64] = "";
	for (int waited = 0; waited <= WAIT_MS && !id[0]; waited += 100) {
		v = admin_get("/admin/sagas?limit=1");
		const char *s = json_string_value(
			json_object_get(json_array_get(json_object_get(v, "items"), 0), "order_id"));
		if (s)
			snprintf(id, sizeof(id), "%s", s);
		json_decref(v);
		if (!id[0])
			usleep(100000);
	}
	assert_true(id[0]);
	key("3");
	expect_screen(id);
	key("/");
	type(id);
	key("Enter");
	key("Enter");
	char title[128];
	snprintf(title, sizeof(title), "Timeline of order %s", id);
	expect_screen(title);
	expect_screen("Steps");
	expect_screen("reserve");
	expect_screen("Trace (");
	key("Escape");
	expect_screen("recent orders");
	key("Escape"); /* the filter */
}

static void test_add_and_clear_a_fault(void **unused)
{
	key("6");
	expect_screen("a add");
	key("a");
	expect_screen("add fault:");
	key("C-u");
	type("payment latency=150 for=120");
	key("Enter");
	expect_screen("Inject on payment");
	key("y");
	long long lat = -1;
	for (int waited = 0; waited <= WAIT_MS && lat != 150; waited += 100) {
		lat = fault_latency("payment");
		if (lat != 150)
			usleep(100000);
	}
	assert_int_equal(lat, 150);
	expect_screen("payment-1");
	key("c");
	expect_screen("Clear the faults on payment");
	key("y");
	for (int waited = 0; waited <= WAIT_MS && lat != -1; waited += 100) {
		lat = fault_latency("payment");
		if (lat != -1)
			usleep(100000);
	}
	assert_int_equal(lat, -1);
	expect_screen("No fault is active");
}

/* A scenario run from the Load view: its progress shows; q asks first
 * while it runs (and n keeps the console); x stops it. */
static void test_load_run_and_q_asks_first(void **unused)
{
	key("7");
	expect_screen("Enter run");
	key("/");
	type("probe");
	key("Enter");
	key("Enter");
	expect_screen("Run scenario probe");
	key("y");
	expect_screen("probe: running");
	expect_screen("req/s");
	key("q");
	expect_screen("is still running");
	key("n");
	expect_screen("cancelled");
	assert_int_equal(alternate_on(), 1);
	key("x");
	expect_screen("stopped: ");
	key("Escape");
}

/* The last non-empty line of the screen. */
static const char *last_line(const char *s, char *buf, size_t len)
{
	buf[0] = '\0';
	const char *p = s;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l > 0 && l < len) {
			memcpy(buf, p, l);
			buf[l] = '\0';
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return buf;
}

static void test_80x24_keeps_the_footer(void **unused)
{
	key("1");
	tmux(NULL, 0, "resize-window", "-t", "c", "-x", "80", "-y", "24", NULL);
	int ok = 0;
	char last[256];
	for (int waited = 0; waited <= WAIT_MS && !ok; waited += 100) {
		const char *s = screen();
		int lines = itest_count_lines(s);
		ok = lines == 24 && strstr(last_line(s, last, sizeof(last)), "? help  q quit") &&
		     strstr(s, "8 Logs") && strstr(s, "services up");
		if (!ok)
			usleep(100000);
	}
	if (!ok)
		fail_msg("at 80x24 the frame is not whole:\n%s", last_screen);
	/* Every view keeps its footer. */
	for (char v = '1'; v <= '8'; v++) {
		char k[2] = { v, 0 };
		key(k);
		usleep(300000);
		if (!strstr(last_line(screen(), last, sizeof(last)), "q quit"))
			fail_msg("view %c lost its footer at 80x24:\n%s", v, last_screen);
	}
	key("?");
	expect_screen("Keys (Logs view)");
	key("Escape");
	key("1");
}

static void test_platform_down_shows_the_banner(void **unused)
{
	char *err = NULL;
	assert_int_equal(itest_run(NULL, &err, "down", "--state", IT.state, NULL), 0);
	free(err);
	expect_screen("connection lost");
	/* Still answering keys. */
	key("5");
	expect_screen("r replay");
	key("1");
	expect_screen("Enter details");
	pid_t pid = console_pid();
	assert_true(pid > 0 && itest_alive(pid));
}

static void test_q_gives_the_terminal_back(void **unused)
{
	assert_int_equal(alternate_on(), 1);
	key("q");
	if (shows("is still running", 1000)) /* a run the test above left */
		key("y");
	expect_screen("console-exit=0");
	expect_screen(PROMPT_SHOWN);
	assert_int_equal(alternate_on(), 0);
	assert_int_equal(console_pid(), 0);
}

/* What the pane's colours are, from capture-pane -e's SGR sequences:
 * 256 when any is an indexed colour (38;5;N or 48;5;N), 16 when any is one
 * of the basic colours, 0 when there is none. */
static int pane_colours(void)
{
	static char esc[131072];
	if (tmux(esc, sizeof(esc), "capture-pane", "-p", "-e", "-t", "c", NULL) != 0)
		return -1;
	int found = 0;
	for (const char *p = esc; (p = strstr(p, "\033[")) != NULL;) {
		p += 2;
		int params[32], n = 0;
		while (n < 32) {
			char *end;
			long v = strtol(p, &end, 10);
			params[n++] = end == p ? 0 : (int)v;
			p = end;
			if (*p != ';')
				break;
			p++;
		}
		if (*p != 'm')
			continue;
		for (int i = 0; i < n; i++) {
			if ((params[i] == 38 || params[i] == 48) && i + 1 < n && params[i + 1] == 5)
				return 256;
			if ((params[i] >= 30 && params[i] <= 37) || (params[i] >= 40 && params[i] <= 47) ||
			    (params[i] >= 90 && params[i] <= 97) || (params[i] >= 100 && params[i] <= 107))
				found = 16;
		}
	}
	return found;
}

/* One console per terminal kind, quit each time: 256 colours where the
 * terminal has them, the basic ones on an 8-colour terminal, none with
 * NO_COLOR (and still a whole frame). */
static void colours_for(const char *env, int want)
{
	type("clear");
	key("Enter");
	usleep(300000);
	start_console_env(env, "");
	expect_screen("? help  q quit");
	usleep(500000);
	int got = pane_colours();
	key("q");
	expect_screen("console-exit=0");
	if (got != want)
		fail_msg("with '%s' the console drew %d colours, expected %d", env, got, want);
}

static void test_colours_degrade(void **unused)
{
	colours_for("TERM=screen-256color", 256);
	colours_for("TERM=screen", 16);
	colours_for("TERM=screen-256color NO_COLOR=1", 0);
}

static void test_sigterm_restores_the_terminal(void **unused)
{
	start_console(" --read-only");
	expect_screen("connection lost"); /* the platform is down */
	/* Read-only: no action keys in the footer, and they do nothing. */
	key("7");
	expect_screen("(read-only: no runs, no orders)");
	key("o");
	expect_screen("read-only: the console does not change the platform");
	assert_int_equal(alternate_on(), 1);
	pid_t pid = console_pid();
	assert_true(pid > 0);
	kill(pid, SIGTERM);
	expect_screen("console-exit=143");
	assert_int_equal(alternate_on(), 0);
	assert_true(itest_wait_gone(pid, 5000));
}

int main(void)
{
	if (system("tmux -V >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_console: tmux is not installed: skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overview_lists_every_service),
		cmocka_unit_test(test_trip_and_reset_a_breaker),
		cmocka_unit_test(test_order_shows_in_sagas_and_its_timeline_opens),
		cmocka_unit_test(test_add_and_clear_a_fault),
		cmocka_unit_test(test_load_run_and_q_asks_first),
		cmocka_unit_test(test_80x24_keeps_the_footer),
		cmocka_unit_test(test_platform_down_shows_the_banner),
		cmocka_unit_test(test_q_gives_the_terminal_back),
		cmocka_unit_test(test_colours_degrade),
		cmocka_unit_test(test_sigterm_restores_the_terminal),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
