/* supervisor: starting, watching and stopping the platform's processes. */
#include "ops/supervisor.h"
#include "bus/bus.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rng.h"
#include "net/http_client.h"
#include "ops/cli.h"
#include "ops/state.h"
#include "services/engine.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define MAX_INSTANCES 64
#define MAX_REPLICAS 16
/* The secret key the payment service sends to the Stripe simulator when
 * none is configured (the simulator takes any sk_test_ key). */
#define UP_SIM_STRIPE_KEY "sk_test_ecom_simulator"
/* The PayPal credentials the payment service sends to the PayPal simulator
 * when none are configured (the simulator takes any). */
#define UP_SIM_PAYPAL_ID "ecom-sim-client"
#define UP_SIM_PAYPAL_SECRET "ecom-sim-secret"

static const char UP_HELP[] =
	"usage: ecom up [--state DIR] [--port PORT] [--store URL] [--bus URL]\n"
	"               [--replicas SVC=N[,SVC=N...]] [--config FILE] [--log-level LEVEL]\n"
	"               [--no-sims]\n"
	"\n"
	"Starts the platform in the background: the gateway on PORT (default 8080;\n"
	"0 picks a free port) and every service, as child processes of a supervisor\n"
	"that restarts any that crash. Returns once every instance is ready and prints\n"
	"the gateway URL. State (SQLite files, logs, pids, the admin token) lives in\n"
	"DIR (default ./var or $ECOM_STATE). The admin token is $ECOM_ADMIN_TOKEN when\n"
	"set, else the one in DIR/admin.token, else a new random one.\n"
	"\n"
	"  --store URL     sqlite:DIR or sqlite::memory: (default sqlite:STATE/data)\n"
	"  --bus URL       embedded (the default) or kafka://HOST:PORT[,HOST:PORT...]\n"
	"                  (a Kafka cluster; 'ecom sim kafka' runs a test one)\n"
	"  --replicas      instances per service, e.g. catalog=3 (default 1 each)\n"
	"  --no-sims       do not start the simulated outside world\n"
	"\n"
	"The Stripe simulator (ecom sim stripe) starts with the platform, on a free\n"
	"port written to DIR/stripe-sim.url, and the payment service is pointed at it,\n"
	"unless --no-sims is given or stripe.base_url is configured (file or\n"
	"ECOM_STRIPE_BASE_URL), in which case payments go to that URL. The PayPal\n"
	"simulator (ecom sim paypal, DIR/paypal-sim.url) likewise, unless\n"
	"paypal.base_url is configured. The simulators send their webhooks\n"
	"(captures, refunds) to the gateway's /v1/webhooks/stripe and /paypal, signed\n"
	"with stripe.webhook_secret and paypal.webhook_secret (made and kept in DIR\n"
	"when not configured).\n";

static const char DOWN_HELP[] =
	"usage: ecom down [--state DIR]\n"
	"\n"
	"Stops the platform started by 'ecom up' on DIR and waits until none of its\n"
	"processes is left.\n";

static const char STATUS_HELP[] =
	"usage: ecom status [--state DIR] [--json]\n"
	"\n"
	"One row per instance: service, instance, pid, address, health, uptime.\n"
	"Exits 1 when the platform is not running.\n";

typedef struct inst {
	char service[32];
	char id[64];
	pid_t pid;
	int port;            /* fixed port (gateway) or 0 */
	char addr[128];
	int64_t started_us;  /* wall clock, for uptime */
	int64_t started_mono;
	int64_t next_start;  /* mono us; 0 = not scheduled */
	int64_t backoff_ms;
	int restarts;
	int sim;             /* the outside world simulated: not registered with the
			      * gateway; started before the services, which are
			      * pointed at it */
} inst;

typedef struct sup {
	const char *state;
	const char *self;
	const char *store_url;
	const char *bus_url;
	const char *config_file;
	const char *log_level;
	char gateway_url[256];
	inst insts[MAX_INSTANCES];
	int n;
	logger *log;
	clock_src *clock;
	int64_t backoff_min, backoff_max, ready_timeout_s;
	int dirty;
	int stripe_hooks, paypal_hooks; /* point the simulator's webhooks at the gateway */
} sup;

/* ---- helpers ------------------------------------------------------------- */

static void sup_path(const sup *s, const char *name, char *buf, size_t len)
{
	state_path(s->state, name, buf, len);
}

static void sup_remove(const sup *s, const char *name)
{
	char p[CLI_PATH_MAX];
	sup_path(s, name, p, sizeof(p));
	unlink(p);
}

static void addr_file(const sup *s, const inst *in, char *buf, size_t len)
{
	char name[128];
	snprintf(name, sizeof(name), "run/%s.addr", in->id);
	sup_path(s, name, buf, len);
}

/* The last non-empty line of an instance's log, to say why it died. */
static void last_log_line(const sup *s, const char *id, char *buf, size_t len)
{
	char name[128], p[CLI_PATH_MAX];
	snprintf(name, sizeof(name), "log/%s.log", id);
	sup_path(s, name, p, sizeof(p));
	buf[0] = '\0';
	char *text = state_read_file(p);
	if (!text)
		return;
	char *nl = strrchr(text, '\n');
	snprintf(buf, len, "%s", nl ? nl + 1 : text);
	free(text);
}

static int port_free(int port, char *err, size_t errlen)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (!ok)
		snprintf(err, errlen, "127.0.0.1:%d: %s", port, strerror(errno));
	close(fd);
	return ok;
}

static int new_token(char *buf, size_t len)
{
	if (len < 65)
		return ERR_INVALID;
	for (int i = 0; i < 4; i++)
		snprintf(buf + 16 * i, len - (size_t)(16 * i), "%016llx",
			 (unsigned long long)rng_os_seed());
	return 0;
}

/* ---- children ------------------------------------------------------------ */

static int spawn(sup *s, inst *in)
{
	char log_path[CLI_PATH_MAX], name[128], addr_path[CLI_PATH_MAX], port[16];
	snprintf(name, sizeof(name), "log/%s.log", in->id);
	sup_path(s, name, log_path, sizeof(log_path));
	addr_file(s, in, addr_path, sizeof(addr_path));
	unlink(addr_path);
	in->addr[0] = '\0';
	snprintf(port, sizeof(port), "%d", in->port);

	const char *argv[32];
	int k = 0;
	argv[k++] = s->self;
	argv[k++] = "serve";
	argv[k++] = in->service;
	argv[k++] = "--state";
	argv[k++] = s->state;
	argv[k++] = "--instance";
	argv[k++] = in->id;
	argv[k++] = "--addr-file";
	argv[k++] = addr_path;
	argv[k++] = "--port";
	argv[k++] = port;
	if (strcmp(in->service, "gateway") != 0 && !in->sim) {
		argv[k++] = "--gateway";
		argv[k++] = s->gateway_url;
	}
	if (s->store_url) {
		argv[k++] = "--store";
		argv[k++] = s->store_url;
	}
	if (s->bus_url) {
		argv[k++] = "--bus";
		argv[k++] = s->bus_url;
	}
	if (s->config_file) {
		argv[k++] = "--config";
		argv[k++] = s->config_file;
	}
	if (s->log_level) {
		argv[k++] = "--log-level";
		argv[k++] = s->log_level;
	}
	argv[k] = NULL;

	pid_t pid = fork();
	if (pid < 0) {
		log_error(s->log, "fork for %s failed: %s", in->id, strerror(errno));
		return ERR_IO;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (nul >= 0)
			dup2(nul, 0);
		execv(s->self, (char *const *)argv);
		fprintf(stderr, "ecom supervisor: exec %s: %s\n", s->self, strerror(errno));
		_exit(127);
	}
	in->pid = pid;
	in->started_us = clock_now(s->clock);
	in->started_mono = clock_mono_us();
	in->next_start = 0;
	s->dirty = 1;
	log_info(s->log, "started %s (pid %ld)", in->id, (long)pid);
	return 0;
}

static void refresh_addr(sup *s, inst *in)
{
	if (in->addr[0] || in->pid <= 0)
		return;
	char p[CLI_PATH_MAX];
	addr_file(s, in, p, sizeof(p));
	char *a = state_read_file(p);
	if (a && strncmp(a, "http://", 7) == 0 && strlen(a) < sizeof(in->addr)) {
		snprintf(in->addr, sizeof(in->addr), "%s", a);
		s->dirty = 1;
	}
	free(a);
}

static void write_instances(sup *s)
{
	json_t *arr = json_array();
	for (int i = 0; i < s->n; i++) {
		inst *in = &s->insts[i];
		json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:s,s:I,s:i}", "service",
						     in->service, "id", in->id, "pid",
						     (json_int_t)in->pid, "addr", in->addr,
						     "started_at_us", (json_int_t)in->started_us,
						     "restarts", in->restarts));
	}
	json_t *doc = json_pack("{s:I,s:s,s:o}", "supervisor_pid", (json_int_t)getpid(), "gateway",
				s->gateway_url, "instances", arr);
	char *text = json_dumps(doc, JSON_INDENT(2));
	json_decref(doc);
	char p[CLI_PATH_MAX];
	sup_path(s, "instances.json", p, sizeof(p));
	if (text)
		state_write_file(p, text, 0600);
	free(text);
	s->dirty = 0;
}

/* Reaps exited children. During start-up a death is fatal (returns the
 * instance); afterwards the instance is scheduled for a restart. */
static inst *reap(sup *s, int starting)
{
	int status;
	pid_t pid;
	inst *dead = NULL;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < s->n; i++) {
			inst *in = &s->insts[i];
			if (in->pid != pid)
				continue;
			in->pid = 0;
			in->addr[0] = '\0';
			s->dirty = 1;
			char how[64];
			if (WIFSIGNALED(status))
				snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(status));
			else
				snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
			if (starting) {
				log_error(s->log, "%s (pid %ld) %s during start-up", in->id, (long)pid,
					  how);
				dead = in;
				continue;
			}
			/* A child that ran a while earns a fresh backoff. */
			if (clock_mono_us() - in->started_mono > 10 * 1000000LL)
				in->backoff_ms = s->backoff_min;
			in->next_start = clock_mono_us() + in->backoff_ms * 1000;
			log_warn(s->log, "%s (pid %ld) %s; restarting in %lld ms", in->id, (long)pid,
				 how, (long long)in->backoff_ms);
			in->backoff_ms = in->backoff_ms * 2 > s->backoff_max ? s->backoff_max
									    : in->backoff_ms * 2;
		}
	}
	return dead;
}

static void stop_all(sup *s)
{
	for (int i = 0; i < s->n; i++)
		if (s->insts[i].pid > 0)
			kill(s->insts[i].pid, SIGTERM);
	int64_t deadline = clock_mono_us() + 5 * 1000000LL;
	for (;;) {
		int left = 0;
		for (int i = 0; i < s->n; i++) {
			inst *in = &s->insts[i];
			if (in->pid <= 0)
				continue;
			if (waitpid(in->pid, NULL, WNOHANG) == in->pid)
				in->pid = 0;
			else
				left++;
		}
		if (!left)
			break;
		if (clock_mono_us() > deadline) {
			for (int i = 0; i < s->n; i++)
				if (s->insts[i].pid > 0) {
					log_warn(s->log, "%s did not stop in 5 s; killing it",
						 s->insts[i].id);
					kill(s->insts[i].pid, SIGKILL);
					waitpid(s->insts[i].pid, NULL, 0);
					s->insts[i].pid = 0;
				}
			break;
		}
		usleep(20000);
	}
}

/* Waits for one signal for up to ms; returns it, or 0 on timeout. */
static int wait_signal(const sigset_t *set, long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	int sig = sigtimedwait(set, NULL, &ts);
	return sig > 0 ? sig : 0;
}

static int http_ok(const char *base, const char *path, const char *token, msg_resp *keep)
{
	char url[512];
	snprintf(url, sizeof(url), "%s%s", base, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple("GET", url, NULL, token, &r, 1000);
	int ok = rc == 0 && r.status == 200;
	if (keep && ok) {
		*keep = r;
		return 1;
	}
	msg_resp_clear(&r);
	return ok;
}

/* 1 when every instance answers /ready and the gateway lists each one that
 * registers (all but itself and the simulators) as healthy. */
static int all_ready(sup *s, const char *token)
{
	int registering = 0;
	for (int i = 1; i < s->n; i++)
		registering += !s->insts[i].sim;
	for (int i = 0; i < s->n; i++) {
		refresh_addr(s, &s->insts[i]);
		if (!s->insts[i].addr[0] || !http_ok(s->insts[i].addr, "/ready", NULL, NULL))
			return 0;
	}
	msg_resp r;
	if (!http_ok(s->gateway_url, "/admin/services", token, &r))
		return 0;
	json_t *doc = json_loadb(r.body ? r.body : "", r.body_len, 0, NULL);
	msg_resp_clear(&r);
	int healthy = 0;
	size_t i, j;
	json_t *svc, *in;
	json_array_foreach(json_object_get(doc, "services"), i, svc)
		json_array_foreach(json_object_get(svc, "instances"), j, in)
			if (json_is_true(json_object_get(in, "healthy")))
				healthy++;
	json_decref(doc);
	return healthy >= registering;
}

static void fail_up(sup *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_up(sup *s, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error(s->log, "%s", msg);
	char p[CLI_PATH_MAX];
	sup_path(s, "up.err", p, sizeof(p));
	state_write_file(p, msg, 0600);
}

static void cleanup_files(sup *s)
{
	sup_remove(s, "ready");
	sup_remove(s, "gateway.url");
	sup_remove(s, "supervisor.pid");
	sup_remove(s, "instances.json");
	sup_remove(s, "stripe-sim.url");
	sup_remove(s, "paypal-sim.url");
	for (int i = 0; i < s->n; i++) {
		char p[CLI_PATH_MAX];
		addr_file(s, &s->insts[i], p, sizeof(p));
		unlink(p);
	}
}

/* One pause of start-up: waits up to ms for a signal, and fails the start
 * (up.err) on SIGTERM/SIGINT or when a child died. 0 to go on. */
static int startup_wait(sup *s, const sigset_t *set, long ms)
{
	int sig = wait_signal(set, ms);
	if (sig == SIGTERM || sig == SIGINT) {
		fail_up(s, "interrupted during start-up");
		return -1;
	}
	inst *dead = reap(s, 1);
	if (dead) {
		char line[512];
		last_log_line(s, dead->id, line, sizeof(line));
		fail_up(s, "%s failed to start: %s", dead->id, line);
		return -1;
	}
	return 0;
}

/* Waits for in (just spawned) to write the address it bound, then keeps
 * its port for restarts, so that whoever was given the address (services
 * registering with the gateway, the payment service calling the Stripe
 * simulator) still reaches it. 0, or -1 with up.err written. */
static int wait_addr(sup *s, inst *in, const sigset_t *set, int64_t deadline)
{
	while (!in->addr[0]) {
		if (startup_wait(s, set, 20) != 0)
			return -1;
		refresh_addr(s, in);
		if (clock_mono_us() > deadline) {
			fail_up(s, "%s did not start in %lld s", in->id, (long long)s->ready_timeout_s);
			return -1;
		}
	}
	in->port = atoi(strrchr(in->addr, ':') + 1);
	return 0;
}

/* Once the gateway's address is known: the simulators started before it
 * send their webhooks to its /v1/webhooks/<provider> (told through their
 * admin route), and so do their later restarts (the environment). 0, or -1
 * with up.err written. */
static int point_webhooks(sup *s, const char *token)
{
	for (int i = 0; i < s->n; i++) {
		inst *in = &s->insts[i];
		const char *provider = strcmp(in->service, "stripe-sim") == 0 && s->stripe_hooks ? "stripe"
				       : strcmp(in->service, "paypal-sim") == 0 && s->paypal_hooks
					       ? "paypal"
					       : NULL;
		if (!provider || !in->addr[0])
			continue;
		char target[512], env[64], url[512], body[640];
		snprintf(target, sizeof(target), "%s/v1/webhooks/%s", s->gateway_url, provider);
		snprintf(env, sizeof(env), "ECOM_%s_SIM_WEBHOOK_URL",
			 strcmp(provider, "stripe") == 0 ? "STRIPE" : "PAYPAL");
		setenv(env, target, 1);
		snprintf(url, sizeof(url), "%s/admin/%s/webhook", in->addr, provider);
		snprintf(body, sizeof(body), "{\"url\":\"%s\"}", target);
		int ok = 0;
		for (int attempt = 0; attempt < 5 && !ok; attempt++) {
			msg_resp r;
			msg_resp_init(&r);
			ok = http_client_simple("PUT", url, body, token, &r, 1000) == 0 && r.status == 200;
			msg_resp_clear(&r);
			if (!ok)
				usleep(100000);
		}
		if (!ok) {
			fail_up(s, "cannot point %s's webhooks at %s", in->id, target);
			return -1;
		}
		log_info(s->log, "%s sends its webhooks to %s", in->id, target);
	}
	return 0;
}

/* The supervisor process. Returns its exit code. */
static int supervise(sup *s, const char *token)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char p[CLI_PATH_MAX], pid[32];
	sup_path(s, "supervisor.pid", p, sizeof(p));
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	state_write_file(p, pid, 0600);
	log_info(s->log, "supervisor %ld starting %d instances", (long)getpid(), s->n);

	/* The simulators first: the gateway (which passes operators' faults on
	 * to them) and the services are told where they listen. */
	inst *gw = &s->insts[0];
	int64_t deadline = clock_mono_us() + s->ready_timeout_s * 1000000LL;
	int rc = 1;
	for (int i = 1; i < s->n; i++) {
		inst *in = &s->insts[i];
		if (!in->sim)
			continue;
		if (spawn(s, in) != 0) {
			fail_up(s, "cannot start %s", in->id);
			goto stop;
		}
		if (wait_addr(s, in, &set, deadline) != 0)
			goto stop;
		if (strcmp(in->service, "stripe-sim") == 0) {
			setenv("ECOM_STRIPE_BASE_URL", in->addr, 1);
			sup_path(s, "stripe-sim.url", p, sizeof(p));
			state_write_file(p, in->addr, 0600);
		}
		if (strcmp(in->service, "paypal-sim") == 0) {
			setenv("ECOM_PAYPAL_BASE_URL", in->addr, 1);
			sup_path(s, "paypal-sim.url", p, sizeof(p));
			state_write_file(p, in->addr, 0600);
		}
	}
	/* Then the gateway: services need its URL to register. */
	if (spawn(s, gw) != 0) {
		fail_up(s, "cannot start the gateway");
		goto stop;
	}
	if (wait_addr(s, gw, &set, deadline) != 0)
		goto stop;
	snprintf(s->gateway_url, sizeof(s->gateway_url), "%s", gw->addr);
	sup_path(s, "gateway.url", p, sizeof(p));
	state_write_file(p, s->gateway_url, 0600);
	if (point_webhooks(s, token) != 0)
		goto stop;
	for (int i = 1; i < s->n; i++)
		if (!s->insts[i].sim && spawn(s, &s->insts[i]) != 0) {
			fail_up(s, "cannot start %s", s->insts[i].id);
			goto stop;
		}
	while (!all_ready(s, token)) {
		if (startup_wait(s, &set, 50) != 0)
			goto stop;
		if (clock_mono_us() > deadline) {
			fail_up(s, "not every instance was ready after %lld s (see %s/log/)",
				(long long)s->ready_timeout_s, s->state);
			goto stop;
		}
	}
	write_instances(s);
	sup_path(s, "ready", p, sizeof(p));
	state_write_file(p, s->gateway_url, 0600);
	log_info(s->log, "platform ready at %s", s->gateway_url);

	for (;;) {
		int sig = wait_signal(&set, 100);
		if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
			log_info(s->log, "stopping on signal %d", sig);
			break;
		}
		reap(s, 0);
		int64_t now = clock_mono_us();
		for (int i = 0; i < s->n; i++) {
			inst *in = &s->insts[i];
			if (in->pid == 0 && in->next_start && now >= in->next_start) {
				in->restarts++;
				if (spawn(s, in) != 0)
					in->next_start = now + in->backoff_ms * 1000;
			}
			refresh_addr(s, in);
		}
		if (s->dirty)
			write_instances(s);
	}
	rc = 0;
stop:
	stop_all(s);
	cleanup_files(s);
	log_info(s->log, "supervisor stopped");
	return rc;
}

/* ---- ecom up ----------------------------------------------------------------- */

static int parse_replicas(const char *spec, int *counts, const char *const *names)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return cli_usage("up", "bad --replicas '%s' (want SERVICE=N)", tok);
		*eq = '\0';
		int found = -1;
		for (int i = 0; names[i]; i++)
			if (strcmp(names[i], tok) == 0)
				found = i;
		if (found < 0)
			return cli_usage("up", "--replicas: unknown service '%s'", tok);
		int64_t n;
		if (cli_parse_int(eq + 1, 1, MAX_REPLICAS, &n) != 0)
			return cli_usage("up", "--replicas: %s needs a count from 1 to %d", tok,
					 MAX_REPLICAS);
		counts[found] = (int)n;
	}
	return 0;
}

int supervisor_up(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, UP_HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "port", required_argument, NULL, 'p' },
		{ "store", required_argument, NULL, 's' },
		{ "bus", required_argument, NULL, 'b' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "no-sims", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL, *port_s = NULL, *store_s = NULL, *bus_s = NULL;
	const char *replicas_s = NULL, *config_s = NULL, *level_s = NULL;
	int no_sims = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'S': state_s = optarg; break;
		case 'p': port_s = optarg; break;
		case 's': store_s = optarg; break;
		case 'b': bus_s = optarg; break;
		case 'r': replicas_s = optarg; break;
		case 'c': config_s = optarg; break;
		case 'l': level_s = optarg; break;
		case 'n': no_sims = 1; break;
		default:
			return cli_usage("up", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage("up", "unexpected argument '%s'", argv[optind]);
	char bus_err[512];
	if (bus_s && bus_url_check(bus_s, bus_err, sizeof(bus_err)) != 0)
		return cli_usage("up", "%s", bus_err);
	if (level_s && log_level_parse(level_s) < 0)
		return cli_usage("up", "bad log level '%s'", level_s);

	config *cfg = config_new();
	char err[1024] = "";
	if (!cfg)
		return cli_fail("up", "out of memory");
	if (config_s && config_load_file(cfg, config_s, err, sizeof(err)) != 0) {
		config_free(cfg);
		return cli_fail("up", "%s", err);
	}
	config_load_env(cfg);
	int64_t port = config_int(cfg, "gateway.port", 8080);
	if (port_s && cli_parse_int(port_s, 0, 65535, &port) != 0) {
		config_free(cfg);
		return cli_usage("up", "bad port '%s' (0-65535)", port_s);
	}
	const char *const *names = engine_platform_services();
	int counts[16];
	int nsvc = 0;
	while (names[nsvc])
		counts[nsvc++] = 1;
	if (replicas_s && parse_replicas(replicas_s, counts, names) != 0) {
		config_free(cfg);
		return 2;
	}

	sup s;
	memset(&s, 0, sizeof(s));
	s.state = cli_state_dir(state_s);
	s.store_url = store_s;
	s.bus_url = bus_s;
	s.config_file = config_s;
	s.log_level = level_s;
	s.backoff_min = config_int(cfg, "supervisor.restart_backoff_ms", 200);
	s.backoff_max = config_int(cfg, "supervisor.restart_backoff_max_ms", 5000);
	s.ready_timeout_s = config_int(cfg, "up.ready_timeout_s", 30);
	/* The Stripe simulator stands in for Stripe unless a Stripe is
	 * configured. Its key: any sk_test_ one, unless one is configured. */
	const char *stripe_url = config_get(cfg, "stripe.base_url");
	const char *stripe_key = config_get(cfg, "stripe.secret_key");
	int stripe_sim = !no_sims && !(stripe_url && stripe_url[0]);
	if (stripe_sim && !(stripe_key && stripe_key[0]))
		setenv("ECOM_STRIPE_SECRET_KEY", UP_SIM_STRIPE_KEY, 1);
	/* The PayPal simulator likewise; any credentials do. */
	const char *paypal_url = config_get(cfg, "paypal.base_url");
	int paypal_sim = !no_sims && !(paypal_url && paypal_url[0]);
	if (paypal_sim) {
		const char *id = config_get(cfg, "paypal.client_id");
		const char *secret = config_get(cfg, "paypal.secret");
		if (!(id && id[0]) || !(secret && secret[0])) {
			setenv("ECOM_PAYPAL_CLIENT_ID", UP_SIM_PAYPAL_ID, 1);
			setenv("ECOM_PAYPAL_SECRET", UP_SIM_PAYPAL_SECRET, 1);
		}
	}
	/* Their webhooks go to the gateway unless configured elsewhere, signed
	 * with a secret made below unless one is configured. */
	const char *v = config_get(cfg, "stripe_sim.webhook_url");
	s.stripe_hooks = stripe_sim && !(v && v[0]);
	v = config_get(cfg, "paypal_sim.webhook_url");
	s.paypal_hooks = paypal_sim && !(v && v[0]);
	v = config_get(cfg, "stripe.webhook_secret");
	int make_stripe_whsec = stripe_sim && !(v && v[0]);
	v = config_get(cfg, "paypal.webhook_secret");
	int make_paypal_whsec = paypal_sim && !(v && v[0]);
	config_free(cfg);

	char self[CLI_PATH_MAX];
	if (cli_self_path(self, sizeof(self)) != 0)
		return cli_fail("up", "cannot find my own executable");
	s.self = self;
	if (state_prepare(s.state, err, sizeof(err)) != 0)
		return cli_fail("up", "%s", err);

	char p[CLI_PATH_MAX];
	sup_path(&s, "lock", p, sizeof(p));
	int lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0)
		return cli_fail("up", "cannot open %s: %s", p, strerror(errno));
	if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
		close(lock);
		char pidbuf[32] = "?";
		sup_path(&s, "supervisor.pid", p, sizeof(p));
		char *t = state_read_file(p);
		if (t)
			snprintf(pidbuf, sizeof(pidbuf), "%s", t);
		free(t);
		return cli_fail("up", "the platform is already running in %s (supervisor pid %s); run 'ecom down' first",
				s.state, pidbuf);
	}
	/* Validate the store URL now, so a typo is one line here rather than
	 * a start-up failure in a log. */
	store *probe = store_open(store_s, names[0], s.state, err, sizeof(err));
	if (!probe) {
		close(lock);
		return cli_fail("up", "%s", err);
	}
	store_free(probe);
	if (port != 0 && !port_free((int)port, err, sizeof(err))) {
		close(lock);
		return cli_fail("up", "%s", err);
	}

	/* Secrets: from the environment, else kept from an earlier run, else
	 * new; written to the state directory (0600) for the CLI and passed to
	 * children in their environment. Never logged. */
	static const struct { const char *file, *env; } secrets[] = {
		{ "admin.token", "ECOM_ADMIN_TOKEN" },
		{ "jwt.key", "ECOM_JWT_KEY" },
		{ "service.secret", "ECOM_SERVICE_SECRET" },
	};
	char token[256];
	for (int i = 0; i < 3; i++) {
		char value[256];
		if (state_secret(s.state, secrets[i].file, secrets[i].env, value, sizeof(value)) != 0)
			new_token(value, sizeof(value));
		sup_path(&s, secrets[i].file, p, sizeof(p));
		if (state_write_file(p, value, 0600) != 0) {
			close(lock);
			return cli_fail("up", "cannot write %s", p);
		}
		setenv(secrets[i].env, value, 1);
		if (i == 0)
			snprintf(token, sizeof(token), "%s", value);
	}
	/* The simulators' webhook secrets, shared by simulator and payment
	 * service through the environment; kept for the next run. */
	static const struct { const char *file, *env, *prefix; } hooks[] = {
		{ "stripe.webhook_secret", "ECOM_STRIPE_WEBHOOK_SECRET", "whsec_" },
		{ "paypal.webhook_secret", "ECOM_PAYPAL_WEBHOOK_SECRET", "" },
	};
	for (int i = 0; i < 2; i++) {
		if (!(i == 0 ? make_stripe_whsec : make_paypal_whsec))
			continue;
		char value[256], made[128];
		if (state_secret(s.state, hooks[i].file, hooks[i].env, value, sizeof(value)) != 0) {
			new_token(made, sizeof(made));
			snprintf(value, sizeof(value), "%s%s", hooks[i].prefix, made);
		}
		sup_path(&s, hooks[i].file, p, sizeof(p));
		if (state_write_file(p, value, 0600) != 0) {
			close(lock);
			return cli_fail("up", "cannot write %s", p);
		}
		setenv(hooks[i].env, value, 1);
	}

	/* The instance table: the gateway, then each service's replicas. */
	inst *gw = &s.insts[s.n++];
	snprintf(gw->service, sizeof(gw->service), "gateway");
	snprintf(gw->id, sizeof(gw->id), "gateway-1");
	gw->port = (int)port;
	if (stripe_sim) {
		inst *sim = &s.insts[s.n++];
		snprintf(sim->service, sizeof(sim->service), "stripe-sim");
		snprintf(sim->id, sizeof(sim->id), "stripe-sim-1");
		sim->sim = 1;
	}
	if (paypal_sim) {
		inst *sim = &s.insts[s.n++];
		snprintf(sim->service, sizeof(sim->service), "paypal-sim");
		snprintf(sim->id, sizeof(sim->id), "paypal-sim-1");
		sim->sim = 1;
	}
	for (int i = 0; i < nsvc; i++)
		for (int k = 1; k <= counts[i] && s.n < MAX_INSTANCES; k++) {
			inst *in = &s.insts[s.n++];
			snprintf(in->service, sizeof(in->service), "%s", names[i]);
			snprintf(in->id, sizeof(in->id), "%s-%d", names[i], k);
		}
	for (int i = 0; i < s.n; i++)
		s.insts[i].backoff_ms = s.backoff_min;
	sup_remove(&s, "ready");
	sup_remove(&s, "up.err");
	cleanup_files(&s);

	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		close(lock);
		return cli_fail("up", "fork: %s", strerror(errno));
	}
	if (child == 0) {
		setsid();
		char logp[CLI_PATH_MAX];
		sup_path(&s, "log/supervisor.log", logp, sizeof(logp));
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int nul = open("/dev/null", O_RDONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		if (nul >= 0) {
			dup2(nul, 0);
			close(nul);
		}
		http_client_global_init();
		s.clock = clock_real_new();
		s.log = log_new("supervisor", stderr, s.clock, LOG_INFO);
		int rc = supervise(&s, token);
		log_free(s.log);
		clock_free(s.clock);
		http_client_global_cleanup();
		close(lock);
		return rc;
	}
	close(lock);

	/* The parent waits for the supervisor's verdict. */
	char ready[CLI_PATH_MAX], uperr[CLI_PATH_MAX];
	sup_path(&s, "ready", ready, sizeof(ready));
	sup_path(&s, "up.err", uperr, sizeof(uperr));
	int64_t deadline = clock_mono_us() + (s.ready_timeout_s + 10) * 1000000LL;
	for (;;) {
		char *u = state_read_file(ready);
		if (u) {
			printf("%s\n", u);
			fflush(stdout);
			free(u);
			return 0;
		}
		int status;
		if (waitpid(child, &status, WNOHANG) == child) {
			char *e = state_read_file(uperr);
			int rc = cli_fail("up", "%s", e ? e : "the supervisor exited during start-up");
			free(e);
			return rc;
		}
		if (clock_mono_us() > deadline) {
			kill(child, SIGTERM);
			return cli_fail("up", "the platform did not become ready (see %s/log/)",
					s.state);
		}
		usleep(20000);
	}
}

/* ---- ecom down ------------------------------------------------------------------- */

static json_t *load_instances(const char *dir)
{
	char p[CLI_PATH_MAX];
	state_path(dir, "instances.json", p, sizeof(p));
	return json_load_file(p, 0, NULL);
}

static int pid_alive(pid_t pid)
{
	if (pid <= 0)
		return 0;
	if (kill(pid, 0) != 0)
		return errno == EPERM;
	/* A zombie is not running; /proc tells the state. */
	char p[64], buf[512];
	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return !(rp && rp[1] == ' ' && rp[2] == 'Z');
}

int supervisor_down(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, DOWN_HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'S')
			state_s = optarg;
		else
			return cli_usage("down", "unknown or incomplete option '%s'", argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage("down", "unexpected argument '%s'", argv[optind]);
	const char *dir = cli_state_dir(state_s);
	pid_t sup_pid = state_running_pid(dir);
	if (!sup_pid) {
		printf("nothing running in %s\n", dir);
		return 0;
	}
	json_t *doc = load_instances(dir);
	kill(sup_pid, SIGTERM);
	int64_t deadline = clock_mono_us() + 20 * 1000000LL;
	while (state_running_pid(dir) && clock_mono_us() < deadline)
		usleep(20000);
	int forced = 0;
	if (state_running_pid(dir)) {
		kill(sup_pid, SIGKILL);
		forced = 1;
	}
	/* Whatever the supervisor did, no child may outlive it. */
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
	{
		pid_t pid = (pid_t)json_integer_value(json_object_get(in, "pid"));
		if (pid_alive(pid)) {
			kill(pid, SIGKILL);
			forced = 1;
		}
	}
	/* kill() returns before the process is gone: wait until it is. */
	deadline = clock_mono_us() + 5 * 1000000LL;
	int left;
	do {
		left = pid_alive(sup_pid);
		json_array_foreach(json_object_get(doc, "instances"), i, in)
			left += pid_alive((pid_t)json_integer_value(json_object_get(in, "pid")));
		if (left)
			usleep(10000);
	} while (left && clock_mono_us() < deadline);
	json_decref(doc);
	if (forced)
		fprintf(stderr, "ecom down: some processes did not stop in time and were killed\n");
	if (left)
		return cli_fail("down", "%d process(es) of the platform are still running", left);
	printf("stopped the platform in %s\n", dir);
	return 0;
}

/* ---- ecom status ----------------------------------------------------------------- */

static void fmt_uptime(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf(buf, len, "%llds", (long long)secs);
	else if (secs < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)secs / 60, (long long)secs % 60);
	else
		snprintf(buf, len, "%lldh%02lldm", (long long)secs / 3600,
			 (long long)(secs % 3600) / 60);
}

int supervisor_status(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, STATUS_HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_s = NULL;
	int as_json = 0;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'S')
			state_s = optarg;
		else if (c == 'j')
			as_json = 1;
		else
			return cli_usage("status", "unknown or incomplete option '%s'",
					 argv[optind - 1]);
	}
	if (optind < argc)
		return cli_usage("status", "unexpected argument '%s'", argv[optind]);
	const char *dir = cli_state_dir(state_s);
	json_t *doc = state_running_pid(dir) ? load_instances(dir) : NULL;
	if (!doc) {
		if (as_json)
			printf("{\"running\":false,\"instances\":[]}\n");
		return cli_fail("status", "not running (state %s)", dir);
	}
	http_client_global_init();
	clock_src *clk = clock_real_new();
	int64_t now = clock_now(clk);
	json_t *rows = json_array();
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
	{
		const char *addr = json_string_value(json_object_get(in, "addr"));
		pid_t pid = (pid_t)json_integer_value(json_object_get(in, "pid"));
		int healthy = pid_alive(pid) && addr && addr[0] && http_ok(addr, "/health", NULL, NULL);
		int64_t up = (now - json_integer_value(json_object_get(in, "started_at_us"))) / 1000000;
		json_array_append_new(rows, json_pack("{s:O,s:O,s:I,s:s,s:s,s:I,s:O}", "service",
						      json_object_get(in, "service"), "instance",
						      json_object_get(in, "id"), "pid", (json_int_t)pid,
						      "addr", addr ? addr : "", "health",
						      healthy ? "healthy" : "down", "uptime_s",
						      (json_int_t)(pid > 0 ? up : 0), "restarts",
						      json_object_get(in, "restarts")));
	}
	if (as_json) {
		json_t *out = json_pack("{s:b,s:O,s:O}", "running", 1, "gateway",
					json_object_get(doc, "gateway"), "instances", rows);
		char *text = json_dumps(out, JSON_COMPACT);
		printf("%s\n", text ? text : "{}");
		free(text);
		json_decref(out);
	} else {
		printf("%-10s %-12s %-8s %-24s %-8s %-8s %s\n", "SERVICE", "INSTANCE", "PID", "ADDR",
		       "HEALTH", "UPTIME", "RESTARTS");
		json_array_foreach(rows, i, in)
		{
			char upt[32];
			fmt_uptime(json_integer_value(json_object_get(in, "uptime_s")), upt, sizeof(upt));
			printf("%-10s %-12s %-8lld %-24s %-8s %-8s %lld\n",
			       json_string_value(json_object_get(in, "service")),
			       json_string_value(json_object_get(in, "instance")),
			       (long long)json_integer_value(json_object_get(in, "pid")),
			       json_string_value(json_object_get(in, "addr")),
			       json_string_value(json_object_get(in, "health")), upt,
			       (long long)json_integer_value(json_object_get(in, "restarts")));
		}
	}
	json_decref(rows);
	json_decref(doc);
	clock_free(clk);
	http_client_global_cleanup();
	return 0;
}
