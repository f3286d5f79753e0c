/* itest: what the integration tests share: running the real `ecom` binary,
 * starting and stopping a platform in a temporary state directory (on the
 * store named by $ECOM_TEST_STORE, SQLite when unset), HTTP through its
 * gateway, and checking processes. Test code only. */
#ifndef ECOM_ITEST_H
#define ECOM_ITEST_H

#include <sys/types.h>

#include <jansson.h>

#include "net/msg.h"

#define ITEST_TOKEN "itest-admin-token-0123456789"

typedef struct itest {
	char bin[1024];   /* $ECOM_BIN, else ./ecom */
	char state[256];  /* the platform's state directory */
	char url[256];    /* its gateway */
	const char *store; /* $ECOM_TEST_STORE or NULL (SQLite) */
	pid_t pids[64];   /* every pid the platform has had */
	int npids;
} itest;

/* The one platform under test in this process. */
extern itest IT;

/* Runs IT.bin with the NULL-ended args; captures stdout/stderr into
 * malloc'd strings when out/err are not NULL. Returns the exit code or -1. */
int itest_run(char **out, char **err, const char *first, ...);
int itest_count_lines(const char *s);
/* 1 while pid exists and is not a zombie. */
int itest_alive(pid_t pid);
/* Waits up to ms for pid to be gone; 1 when it is. */
int itest_wait_gone(pid_t pid, int ms);
pid_t itest_pid_of(const char *id);
/* Adds the pids in instances.json (and the supervisor's) to IT.pids. */
void itest_remember_pids(void);
/* One request to the gateway (path relative to IT.url); returns the status,
 * -1 on transport failure. out gets the parsed body; keep the response. */
int itest_req(const char *method, const char *path, const char *body, const char *token,
	      json_t **out, msg_resp *keep);
/* Signs an identity of role service and sub sub, now, with secret (the
 * platform's STATE/service.secret when NULL), as engine_call_service does,
 * into buf (IDENTITY_MAX bytes). 0 or -1. */
int itest_sign_service(const char *sub, const char *secret, char *buf, size_t len);
/* As itest_req, as the order service would call: no token, a fresh
 * X-Ecom-Identity of role service. */
int itest_req_service(const char *method, const char *path, const char *body, json_t **out,
		      msg_resp *keep);
/* As itest_req, with an Idempotency-Key header when key is not NULL (and a
 * 15 s deadline). */
int itest_req_key(const char *method, const char *path, const char *body, const char *token,
		  const char *key, json_t **out, msg_resp *keep);
/* As itest_req_key, with the headers given (name, value, ..., NULL). */
int itest_req_headers(const char *method, const char *path, const char *body, const char *token,
		      const char *const *headers, json_t **out, msg_resp *keep);
/* Signs up email (password "correct horse 1") and logs in: the access
 * token into token, the user id into user_id (when not NULL). 0 or -1. */
int itest_signup_login(const char *email, char *token, size_t len, char *user_id, size_t idlen);
/* The Stripe simulator `ecom up` started: its URL (STATE/stripe-sim.url,
 * 0 or -1); a request to its admin routes with the admin token (the
 * parsed answer, new reference, or NULL unless 200); and a counter of
 * GET /admin/stripe/stats (-1 when it cannot be read). */
int itest_sim_url(char *buf, size_t len);
json_t *itest_sim_admin(const char *method, const char *path, const char *body);
long long itest_sim_stat(const char *name);
/* The same for the simulator sim ("stripe-sim", "paypal-sim"): its URL
 * (STATE/<sim>.url) and an admin request to it. */
int itest_sim_url_of(const char *sim, char *buf, size_t len);
json_t *itest_sim_admin_of(const char *sim, const char *method, const char *path,
			   const char *body);
/* The first line of STATE/name into buf. 0 or -1. */
int itest_state_file(const char *name, char *buf, size_t len);
/* Prints the last n lines of STATE/log/name to stderr (a failing test's
 * post-mortem); nothing when the file is missing. */
void itest_print_log_tail(const char *name, int n);
/* Starts `ecom sim kafka --port P` (P a free loopback port) as an operator
 * would, its output to /dev/null, and waits for the bus URL it writes
 * (kafka://127.0.0.1:P) into bus_url. Returns its pid (the caller stops
 * it), or -1. */
pid_t itest_kafka_sim(char *bus_url, size_t len);
/* The error code of an API error body. */
const char *itest_err_code(json_t *v);
/* Starts `ecom up --port 0` with extra args (NULL-ended) in a new temporary
 * state directory, with ECOM_ADMIN_TOKEN = ITEST_TOKEN. 0 or -1. */
int itest_up(const char *first, ...);
/* `ecom down`, then `ecom up --port 0` again on the same state directory
 * and store, with extra args (NULL-ended). 0 or -1. */
int itest_restart(const char *first, ...);
/* Stops the platform, kills anything left, removes the state directory
 * (kept when ECOM_ITEST_KEEP=1). */
void itest_teardown(void);
void itest_rm_tree(const char *dir);
/* argon2id at libsodium's minimum cost for the platform started next (its
 * environment): for tests whose load signs many users up and in. */
void itest_cheap_passwords(void);
/* Writes text into a new file made from the mkstemp template tmpl (which
 * gets its name). 0 or -1. */
int itest_write_temp(char *tmpl, const char *text);

#endif
