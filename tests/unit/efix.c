/* efix: the engine fixture the engine unit tests share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "efix.h"

#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int has_schema(const char *dir)
{
	char path[1024];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/schema", dir);
	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

const char *efix_data_dir(void)
{
	const char *env = getenv("ECOM_DATA");
	if (env && env[0])
		return env;
#ifdef ECOM_SRCDATADIR
	if (has_schema(ECOM_SRCDATADIR))
		return ECOM_SRCDATADIR;
#endif
	return "data";
}

efix *efix_new(const char *service, const char *store_url, int64_t start_us, uint64_t seed)
{
	const engine_def *def = engine_find(service);
	if (!def)
		fail_msg("no engine called %s", service);
	return efix_new_def(def, store_url, start_us, seed);
}

efix *efix_new_def(const engine_def *def, const char *store_url, int64_t start_us, uint64_t seed)
{
	const char *service = def->name;
	efix *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->def = def;
	snprintf(f->dir, sizeof(f->dir), "/tmp/efix-%s.XXXXXX", service);
	assert_non_null(mkdtemp(f->dir));
	if (store_url)
		snprintf(f->store_url, sizeof(f->store_url), "%s", store_url);
	else
		snprintf(f->store_url, sizeof(f->store_url), "sqlite:%s", f->dir);
	f->clock = clock_virtual_new(start_us);
	f->rng = rng_new(seed);
	f->logf = fopen("/dev/null", "w");
	assert_non_null(f->logf);
	f->log = log_new(service, f->logf, f->clock, LOG_DEBUG);
	f->metrics = metrics_new();
	f->config = config_new();
	assert_non_null(f->clock);
	assert_non_null(f->rng);
	assert_non_null(f->log);
	assert_non_null(f->metrics);
	assert_non_null(f->config);
	snprintf(f->instance_id, sizeof(f->instance_id), "%s-1", service);
	f->ctx = (engine_ctx){
		.service = f->def->name,
		.instance_id = f->instance_id,
		.clock = f->clock,
		.rng = f->rng,
		.log = f->log,
		.metrics = f->metrics,
		.config = f->config,
		.admin_token = EFIX_ADMIN,
		.service_secret = EFIX_SECRET,
		.jwt_key = (const unsigned char *)EFIX_JWT_KEY,
		.jwt_key_len = sizeof(EFIX_JWT_KEY) - 1,
		.data_dir = efix_data_dir(),
	};
	efix_open_store(f);
	return f;
}

void efix_seed(efix *f, const char *json)
{
	snprintf(f->seed_path, sizeof(f->seed_path), "%s/products.json", f->dir);
	FILE *sf = fopen(f->seed_path, "w");
	assert_non_null(sf);
	size_t n = strlen(json);
	assert_int_equal(fwrite(json, 1, n, sf), n);
	assert_int_equal(fclose(sf), 0);
	assert_int_equal(config_set(f->config, "catalog.seed_file", f->seed_path), 0);
}

void efix_open_store(efix *f)
{
	char err[512] = "", schema[1024];
	f->store = store_open(f->store_url, f->def->name, NULL, err, sizeof(err));
	if (!f->store)
		fail_msg("store_open(%s): %s", f->store_url, err);
	snprintf(schema, sizeof(schema), "%s/schema", efix_data_dir());
	if (store_migrate(f->store, schema, err, sizeof(err)) != 0)
		fail_msg("store_migrate(%s): %s", schema, err);
	f->ctx.store = f->store;
}

void efix_close_store(efix *f)
{
	if (f->eng)
		f->def->destroy(f->eng);
	f->eng = NULL;
	store_free(f->store);
	f->store = NULL;
	f->ctx.store = NULL;
}

void *efix_create_engine(efix *f)
{
	char err[512] = "";
	void *eng = f->def->create(&f->ctx, err, sizeof(err));
	if (!eng)
		fail_msg("%s create: %s", f->def->name, err);
	return eng;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

void efix_free(efix *f)
{
	if (!f)
		return;
	efix_close_store(f);
	config_free(f->config);
	metrics_free(f->metrics);
	log_free(f->log);
	if (f->logf)
		fclose(f->logf);
	rng_free(f->rng);
	clock_free(f->clock);
	nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
}

int efix_teardown(void **state)
{
	efix_free(*state);
	return 0;
}

/* ---- requests -------------------------------------------------------------- */

void efix_do(efix *f, void *eng, const char *method, const char *path, const char *ident,
	     const char *auth, const char *ctype, const char *body, msg_resp *resp)
{
	msg_req req;
	assert_int_equal(msg_req_init(&req, method, path), 0);
	if (ident)
		assert_int_equal(msg_req_add_header(&req, IDENTITY_HEADER, ident), 0);
	if (auth)
		assert_int_equal(msg_req_add_header(&req, "Authorization", auth), 0);
	if (!ctype && body)
		ctype = "application/json";
	if (ctype && ctype[0])
		assert_int_equal(msg_req_add_header(&req, "Content-Type", ctype), 0);
	if (body)
		assert_int_equal(msg_req_set_body(&req, body, strlen(body)), 0);
	msg_resp_init(resp);
	f->def->handle(eng ? eng : f->eng, &req, resp);
	msg_req_clear(&req);
}

json_t *efix_json(const msg_resp *resp)
{
	assert_non_null(resp->body);
	assert_string_equal(resp->content_type, "application/json");
	json_error_t je;
	json_t *v = json_loadb(resp->body, resp->body_len, 0, &je);
	if (!v)
		fail_msg("response is not JSON (%s): %.*s", je.text, (int)resp->body_len, resp->body);
	return v;
}

json_t *efix_call(efix *f, const char *method, const char *path, const char *ident,
		  const char *auth, const char *body, int *status)
{
	msg_resp resp;
	efix_do(f, NULL, method, path, ident, auth, NULL, body, &resp);
	*status = resp.status;
	json_t *v = efix_json(&resp);
	msg_resp_clear(&resp);
	return v;
}

json_t *efix_expect(efix *f, const char *method, const char *path, const char *ident,
		    const char *auth, const char *body, int want)
{
	msg_resp resp;
	efix_do(f, NULL, method, path, ident, auth, NULL, body, &resp);
	if (resp.status != want)
		fail_msg("%s %s %s: status %d, expected %d: %.*s", method, path, body ? body : "",
			 resp.status, want, (int)resp.body_len, resp.body ? resp.body : "");
	json_t *v = efix_json(&resp);
	msg_resp_clear(&resp);
	return v;
}

void efix_assert_error(json_t *v, const char *code, const char *key, const char *want)
{
	assert_true(json_is_object(v));
	assert_int_equal(json_object_size(v), 1);
	json_t *e = json_object_get(v, "error");
	assert_true(json_is_object(e));
	const char *got_code = json_string_value(json_object_get(e, "code"));
	if (!got_code || strcmp(got_code, code) != 0)
		fail_msg("error code %s, expected %s", got_code ? got_code : "(none)", code);
	const char *msg = json_string_value(json_object_get(e, "message"));
	assert_non_null(msg);
	assert_true(strlen(msg) > 0);
	if (want) {
		const char *got =
			json_string_value(json_object_get(json_object_get(e, "details"), key));
		if (!got || strcmp(got, want) != 0)
			fail_msg("details.%s is %s, expected %s", key, got ? got : "(none)", want);
	}
	json_decref(v);
}

void efix_sign(efix *f, enum identity_role role, const char *sub, const char *secret, char *buf)
{
	identity id;
	memset(&id, 0, sizeof(id));
	id.role = role;
	snprintf(id.sub, sizeof(id.sub), "%s", sub);
	assert_int_equal(identity_sign(secret ? secret : f->ctx.service_secret, &id,
				       clock_now(f->clock), buf, IDENTITY_MAX),
			 0);
}
