/* itest: shared helpers of the integration tests. */
#include "itest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net/http_client.h"
#include "services/identity.h"

itest IT;

static int runv(char **out, char **err, const char *const *args)
{
	const char *argv[40];
	int k = 0;
	argv[k++] = IT.bin;
	for (int i = 0; args[i] && k < 39; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	char outp[] = "/tmp/ecom-itest-outXXXXXX", errp[] = "/tmp/ecom-itest-errXXXXXX";
	int ofd = mkstemp(outp), efd = mkstemp(errp);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(IT.bin, (char *const *)argv);
		_exit(127);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	char **dst[2] = { out, err };
	int fds[2] = { ofd, efd };
	for (int i = 0; i < 2; i++) {
		if (dst[i]) {
			off_t n = lseek(fds[i], 0, SEEK_END);
			char *buf = calloc(1, (size_t)n + 1);
			if (pread(fds[i], buf, (size_t)n, 0) < 0)
				buf[0] = '\0';
			*dst[i] = buf;
		}
		close(fds[i]);
	}
	unlink(outp);
	unlink(errp);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void collect(const char **args, int max, const char *first, va_list ap)
{
	int k = 0;
	for (const char *a = first; a && k < max - 1; a = va_arg(ap, const char *))
		args[k++] = a;
	args[k] = NULL;
}

int itest_run(char **out, char **err, const char *first, ...)
{
	const char *args[32];
	va_list ap;
	va_start(ap, first);
	collect(args, 32, first, ap);
	va_end(ap);
	return runv(out, err, args);
}

int itest_count_lines(const char *s)
{
	int n = 0;
	for (; s && *s; s++)
		if (*s == '\n')
			n++;
	return n;
}

int itest_alive(pid_t pid)
{
	if (pid <= 0 || kill(pid, 0) != 0)
		return 0;
	char p[64], buf[256] = "";
	snprintf(p, sizeof(p), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	if (!(rp && rp[2] == 'Z'))
		return 1;
	/* The leader of a killed process is a zombie as soon as it has exited
	 * itself, while its other threads may still be exiting and its
	 * sockets still open (a request sent then is read by nobody and reset:
	 * "no answer", not "refused"). Gone means no thread is left. */
	snprintf(p, sizeof(p), "/proc/%ld/task", (long)pid);
	DIR *d = opendir(p);
	int threads = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		threads += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return threads > 1;
}

int itest_wait_gone(pid_t pid, int ms)
{
	for (int k = 0; k < ms / 10 && itest_alive(pid); k++)
		usleep(10000);
	return !itest_alive(pid);
}

static json_t *instances(void)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/instances.json", IT.state);
	return json_load_file(p, 0, NULL);
}

pid_t itest_pid_of(const char *id)
{
	json_t *doc = instances();
	pid_t pid = 0;
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "id")), id) == 0)
			pid = (pid_t)json_integer_value(json_object_get(in, "pid"));
	json_decref(doc);
	return pid;
}

static void remember(pid_t pid)
{
	for (int k = 0; k < IT.npids; k++)
		if (IT.pids[k] == pid)
			return;
	if (pid > 0 && IT.npids < 64)
		IT.pids[IT.npids++] = pid;
}

void itest_remember_pids(void)
{
	json_t *doc = instances();
	size_t i;
	json_t *in;
	json_array_foreach(json_object_get(doc, "instances"), i, in)
		remember((pid_t)json_integer_value(json_object_get(in, "pid")));
	remember((pid_t)json_integer_value(json_object_get(doc, "supervisor_pid")));
	json_decref(doc);
}

/* The status of a request that returned rc with r, -1 when it failed;
 * out (when not NULL) gets the parsed body, keep (when not NULL) r, which
 * is cleared otherwise. */
static int answer(int rc, msg_resp *r, json_t **out, msg_resp *keep)
{
	int status = rc == 0 ? r->status : -1;
	if (out)
		*out = json_loadb(r->body ? r->body : "", r->body_len, 0, NULL);
	if (keep)
		*keep = *r;
	else
		msg_resp_clear(r);
	return status;
}

int itest_req(const char *method, const char *path, const char *body, const char *token,
	      json_t **out, msg_resp *keep)
{
	char full[1024];
	snprintf(full, sizeof(full), "%s%s", IT.url, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple(method, full, body, token, &r, 10000);
	return answer(rc, &r, out, keep);
}

int itest_sign_service(const char *sub, const char *secret, char *buf, size_t len)
{
	char p[512], mine[256] = "";
	if (!secret) {
		snprintf(p, sizeof(p), "%s/service.secret", IT.state);
		FILE *f = fopen(p, "r");
		if (!f)
			return -1;
		char *got = fgets(mine, sizeof(mine), f);
		fclose(f);
		if (!got)
			return -1;
		mine[strcspn(mine, "\n")] = '\0';
		secret = mine;
	}
	identity me = { .role = IDENTITY_SERVICE };
	snprintf(me.sub, sizeof(me.sub), "%s", sub);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return identity_sign(secret, &me, (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, buf,
			     len) == 0
		       ? 0
		       : -1;
}

int itest_req_service(const char *method, const char *path, const char *body, json_t **out,
		      msg_resp *keep)
{
	char ident[IDENTITY_MAX];
	if (out)
		*out = NULL;
	if (itest_sign_service("order", NULL, ident, sizeof(ident)) != 0)
		return -1;
	msg_req req;
	if (msg_req_init(&req, method, path) != 0)
		return -1;
	msg_req_add_header(&req, IDENTITY_HEADER, ident);
	if (body) {
		msg_req_add_header(&req, "Content-Type", "application/json");
		msg_req_set_body(&req, body, strlen(body));
	}
	msg_resp r;
	msg_resp_init(&r);
	http_call_opts o = { .connect_timeout_ms = 1000, .timeout_ms = 10000 };
	int rc = http_client_do(IT.url, &req, &r, &o);
	msg_req_clear(&req);
	return answer(rc, &r, out, keep);
}

int itest_req_key(const char *method, const char *path, const char *body, const char *token,
		  const char *key, json_t **out, msg_resp *keep)
{
	const char *h[] = { "Idempotency-Key", key, NULL };
	return itest_req_headers(method, path, body, token, key ? h : NULL, out, keep);
}

int itest_req_headers(const char *method, const char *path, const char *body, const char *token,
		      const char *const *headers, json_t **out, msg_resp *keep)
{
	if (out)
		*out = NULL;
	msg_req req;
	if (msg_req_init(&req, method, path) != 0)
		return -1;
	char auth[1100];
	if (token) {
		snprintf(auth, sizeof(auth), "Bearer %s", token);
		msg_req_add_header(&req, "Authorization", auth);
	}
	for (int i = 0; headers && headers[i] && headers[i + 1]; i += 2)
		msg_req_add_header(&req, headers[i], headers[i + 1]);
	if (body) {
		msg_req_add_header(&req, "Content-Type", "application/json");
		msg_req_set_body(&req, body, strlen(body));
	}
	msg_resp r;
	msg_resp_init(&r);
	http_call_opts o = { .connect_timeout_ms = 1000, .timeout_ms = 15000 };
	int rc = http_client_do(IT.url, &req, &r, &o);
	msg_req_clear(&req);
	return answer(rc, &r, out, keep);
}

int itest_signup_login(const char *email, char *token, size_t len, char *user_id, size_t idlen)
{
	char body[512];
	json_t *v = NULL;
	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"password\":\"correct horse 1\",\"name\":\"Tester\"}",
		 email);
	int ok = itest_req("POST", "/v1/auth/signup", body, NULL, &v, NULL) == 201;
	const char *id = json_string_value(json_object_get(v, "user_id"));
	if (ok && user_id)
		snprintf(user_id, idlen, "%s", id ? id : "");
	json_decref(v);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse 1\"}", email);
	ok = ok && itest_req("POST", "/v1/auth/login", body, NULL, &v, NULL) == 200;
	const char *t = ok ? json_string_value(json_object_get(v, "access_token")) : NULL;
	if (t)
		snprintf(token, len, "%s", t);
	json_decref(v);
	return t ? 0 : -1;
}

int itest_state_file(const char *name, char *buf, size_t len)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", IT.state, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	char *got = fgets(buf, (int)len, f);
	fclose(f);
	if (!got)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

void itest_print_log_tail(const char *name, int n)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/log/%s", IT.state, name);
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	/* a ring of the last n line starts */
	long starts[256];
	if (n > 256)
		n = 256;
	int seen = 0;
	long at = 0;
	int c, bol = 1;
	while ((c = fgetc(f)) != EOF) {
		if (bol)
			starts[seen++ % n] = at;
		bol = c == '\n';
		at++;
	}
	if (seen > 0 && fseek(f, starts[seen > n ? seen % n : 0], SEEK_SET) == 0) {
		fprintf(stderr, "---- the last lines of %s\n", p);
		while ((c = fgetc(f)) != EOF)
			fputc(c, stderr);
	}
	fclose(f);
}

int itest_sim_url_of(const char *sim, char *buf, size_t len)
{
	char name[64];
	snprintf(name, sizeof(name), "%s.url", sim);
	if (itest_state_file(name, buf, len) != 0)
		return -1;
	return strncmp(buf, "http://127.0.0.1:", 17) == 0 ? 0 : -1;
}

int itest_sim_url(char *buf, size_t len) { return itest_sim_url_of("stripe-sim", buf, len); }

json_t *itest_sim_admin(const char *method, const char *path, const char *body)
{
	return itest_sim_admin_of("stripe-sim", method, path, body);
}

json_t *itest_sim_admin_of(const char *sim, const char *method, const char *path,
			   const char *body)
{
	char url[600], base[256];
	if (itest_sim_url_of(sim, base, sizeof(base)) != 0)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", base, path);
	msg_resp r;
	msg_resp_init(&r);
	int rc = http_client_simple(method, url, body, ITEST_TOKEN, &r, 5000);
	json_t *v = rc == 0 && r.status == 200 ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
	msg_resp_clear(&r);
	return v;
}

long long itest_sim_stat(const char *name)
{
	json_t *v = itest_sim_admin("GET", "/admin/stripe/stats", NULL);
	json_t *n = json_object_get(v, name);
	long long out = json_is_integer(n) ? (long long)json_integer_value(n) : -1;
	json_decref(v);
	return out;
}

const char *itest_err_code(json_t *v)
{
	return json_string_value(json_object_get(json_object_get(v, "error"), "code"));
}

/* `ecom up --port 0 --state IT.state [--store IT.store] ARGS...`; takes the
 * gateway URL it prints and the pids. 0 or -1. */
static int up_in_state(const char *first, va_list ap)
{
	const char *args[32] = { "up", "--port", "0", "--state", IT.state };
	int k = 5;
	if (IT.store) {
		args[k++] = "--store";
		args[k++] = IT.store;
	}
	collect(args + k, 32 - k, first, ap);
	char *out = NULL, *err = NULL;
	int rc = runv(&out, &err, args);
	if (rc != 0) {
		fprintf(stderr, "ecom up failed (%d): %s\n", rc, err ? err : "");
		free(out);
		free(err);
		return -1;
	}
	snprintf(IT.url, sizeof(IT.url), "%s", out);
	IT.url[strcspn(IT.url, "\n")] = '\0';
	free(out);
	free(err);
	itest_remember_pids();
	return strncmp(IT.url, "http://127.0.0.1:", 17) == 0 ? 0 : -1;
}

int itest_up(const char *first, ...)
{
	const char *b = getenv("ECOM_BIN");
	snprintf(IT.bin, sizeof(IT.bin), "%s", b && *b ? b : "./ecom");
	const char *store = getenv("ECOM_TEST_STORE");
	IT.store = store && *store ? store : NULL;
	snprintf(IT.state, sizeof(IT.state), "/tmp/ecom-itest-XXXXXX");
	if (!mkdtemp(IT.state))
		return -1;
	setenv("ECOM_ADMIN_TOKEN", ITEST_TOKEN, 1);
	http_client_global_init();
	va_list ap;
	va_start(ap, first);
	int rc = up_in_state(first, ap);
	va_end(ap);
	return rc;
}

int itest_restart(const char *first, ...)
{
	char *err = NULL;
	if (itest_run(NULL, &err, "down", "--state", IT.state, NULL) != 0) {
		fprintf(stderr, "ecom down failed: %s\n", err ? err : "");
		free(err);
		return -1;
	}
	free(err);
	va_list ap;
	va_start(ap, first);
	int rc = up_in_state(first, ap);
	va_end(ap);
	return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void itest_rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* 1 when pid runs with this platform's state directory on its command
 * line: pids are reused (pid_max may be 32768 and the suites start many
 * processes), and a pid this platform once had may now be anyone's. */
static int ours(pid_t pid)
{
	char p[64], cmd[4096];
	snprintf(p, sizeof(p), "/proc/%ld/cmdline", (long)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return 0;
	size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (cmd[i] == '\0')
			cmd[i] = ' ';
	cmd[n] = '\0';
	return IT.state[0] && strstr(cmd, IT.state) != NULL;
}

void itest_teardown(void)
{
	itest_run(NULL, NULL, "down", "--state", IT.state, NULL);
	for (int i = 0; i < IT.npids; i++)
		if (itest_alive(IT.pids[i]) && ours(IT.pids[i]))
			kill(IT.pids[i], SIGKILL);
	/* ECOM_ITEST_KEEP=1 keeps the state directory (logs) for a post-mortem. */
	const char *keep = getenv("ECOM_ITEST_KEEP");
	if (keep && *keep == '1')
		fprintf(stderr, "kept state directory %s\n", IT.state);
	else
		itest_rm_tree(IT.state);
	http_client_global_cleanup();
}

void itest_cheap_passwords(void)
{
	setenv("ECOM_USER_PWHASH_OPSLIMIT", "1", 1);
	setenv("ECOM_USER_PWHASH_MEMLIMIT_KIB", "8192", 1);
}

int itest_write_temp(char *tmpl, const char *text)
{
	int fd = mkstemp(tmpl);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* A loopback port nothing listens on now (bound, then closed), or -1. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		 getsockname(fd, (struct sockaddr *)&sa, &len) == 0;
	if (fd >= 0)
		close(fd);
	return ok ? ntohs(sa.sin_port) : -1;
}

pid_t itest_kafka_sim(char *bus_url, size_t len)
{
	char file[] = "/tmp/ecom-itest-kafkaXXXXXX";
	int fd = mkstemp(file);
	int port = free_port();
	if (fd < 0 || port < 0)
		return -1;
	close(fd);
	unlink(file);
	const char *b = getenv("ECOM_BIN");
	char port_s[16];
	snprintf(port_s, sizeof(port_s), "%d", port);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);
		dup2(nul, 1);
		dup2(nul, 2);
		/* the bootstrap forwarder on a fixed port, as an operator would */
		execl(b && *b ? b : "./ecom", "ecom", "sim", "kafka", "--port", port_s,
		      "--bootstrap-file", file, (char *)NULL);
		_exit(127);
	}
	bus_url[0] = '\0';
	for (int i = 0; pid > 0 && i < 600 && !bus_url[0]; i++) { /* 30 s, for a loaded machine */
		FILE *f = fopen(file, "r");
		if (f) {
			if (!fgets(bus_url, (int)len, f))
				bus_url[0] = '\0';
			fclose(f);
		}
		if (!bus_url[0])
			usleep(50000);
	}
	unlink(file);
	bus_url[strcspn(bus_url, "\n")] = '\0';
	char want[64];
	snprintf(want, sizeof(want), "kafka://127.0.0.1:%d", port);
	if (pid < 0 || strcmp(bus_url, want) != 0) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		return -1;
	}
	return pid;
}

