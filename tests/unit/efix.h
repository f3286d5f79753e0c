/* efix: the engine fixture the engine unit tests share. It fills an
 * engine_ctx the way the daemon host does, from test parts: a virtual clock,
 * a seeded rng, a store migrated from data/schema, a logger (to /dev/null:
 * the tests assert on responses, not on log lines), metrics, a config, and
 * fixed test secrets; it owns a temporary directory for seed and store
 * files. Everything here fails the running cmocka test on error (fail_msg),
 * so call it only from tests and their setups. Include it after cmocka.h. */
#ifndef ECOM_TEST_EFIX_H
#define ECOM_TEST_EFIX_H

#include <stdint.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "net/msg.h"
#include "services/engine.h"
#include "services/identity.h"
#include "store/store.h"

/* The clock's usual start (2025-11-25T23:10:55Z) and the values efix_new
 * puts in ctx.admin_token, ctx.service_secret and ctx.jwt_key. */
#define EFIX_T0 1764112255000000LL
#define EFIX_ADMIN "test-admin"
#define EFIX_SECRET "test-service-secret"
#define EFIX_JWT_KEY "0123456789abcdef0123456789abcdef-jwt"

typedef struct efix {
	char dir[64];        /* temporary directory, removed by efix_free */
	char seed_path[128]; /* <dir>/products.json once efix_seed wrote it */
	char store_url[128];
	char instance_id[64]; /* "<service>-1" */
	const engine_def *def;
	clock_src *clock;
	rng *rng;
	store *store;
	FILE *logf;
	logger *log;
	metrics *metrics;
	config *config;
	engine_ctx ctx;
	void *eng; /* the engine under test; efix_free destroys it */
} efix;

/* The data directory: $ECOM_DATA, else the source tree's data/ when built
 * with it, else ./data. */
const char *efix_data_dir(void);

/* A context for the engine called service (instance "<service>-1"), its
 * clock at start_us and its rng seeded with seed, on store_url
 * ("sqlite::memory:"), or on a SQLite file in the fixture's directory when
 * store_url is NULL. The engine is not created. Owned: efix_free(). */
efix *efix_new(const char *service, const char *store_url, int64_t start_us, uint64_t seed);

/* The same for an engine that is not in the engine table (one a test
 * defines); def is borrowed and outlives the fixture. */
efix *efix_new_def(const engine_def *def, const char *store_url, int64_t start_us, uint64_t seed);

/* Writes json to <dir>/products.json and makes it catalog.seed_file. */
void efix_seed(efix *f, const char *json);

/* Opens and migrates the store at f->store_url into f->store and ctx.store
 * (efix_new does; for reopening after efix_close_store). */
void efix_open_store(efix *f);
/* Destroys the engine, if any, then closes the store. */
void efix_close_store(efix *f);

/* A new engine on f->ctx (the caller destroys it, or stores it in f->eng).
 * Fails the test with the engine's error when creation fails. */
void *efix_create_engine(efix *f);

/* Destroys the engine, frees everything and removes the directory. NULL is
 * fine. */
void efix_free(efix *f);

/* A cmocka teardown: efix_free(*state). */
int efix_teardown(void **state);

/* Runs one request through eng (f->eng when NULL). ident (X-Ecom-Identity),
 * auth (Authorization) and body may be NULL (left out). ctype NULL sends
 * application/json with a body; "" leaves the header out. resp is
 * initialised here; the caller clears it. */
void efix_do(efix *f, void *eng, const char *method, const char *path, const char *ident,
	     const char *auth, const char *ctype, const char *body, msg_resp *resp);

/* The JSON body of resp (new reference); asserts it is application/json. */
json_t *efix_json(const msg_resp *resp);

/* efix_do on f->eng with a JSON body; returns the parsed answer (new
 * reference) and the status in *status. */
json_t *efix_call(efix *f, const char *method, const char *path, const char *ident,
		  const char *auth, const char *body, int *status);

/* As efix_call, but fails the test unless the status is want. */
json_t *efix_expect(efix *f, const char *method, const char *path, const char *ident,
		    const char *auth, const char *body, int want);

/* Asserts the API error shape {"error":{code, message, details}} with this
 * code and a non-empty message; when want is not NULL, details[key] must be
 * the string want. Consumes v. */
void efix_assert_error(json_t *v, const char *code, const char *key, const char *want);

/* Signs an identity of role and sub, now on f's clock, with secret
 * (ctx.service_secret when NULL) into buf (IDENTITY_MAX bytes). */
void efix_sign(efix *f, enum identity_role role, const char *sub, const char *secret, char *buf);

#endif
