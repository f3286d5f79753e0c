/* state: the state directory of a running platform (default ./var):
 *   lock             held (flock) by the supervisor while the platform runs
 *   supervisor.pid   the supervisor's pid
 *   admin.token      the admin bearer token, mode 0600
 *   jwt.key          the HS256 key of access tokens, mode 0600
 *   service.secret   the key of the gateway's identity signatures, mode 0600
 *   gateway.url      where the gateway listens
 *   ready            written once every instance is ready
 *   up.err           why `ecom up` failed, when it did
 *   instances.json   one entry per instance: service, id, pid, addr, started_at
 *   run/<id>.addr    the address an instance bound
 *   data/            SQLite files, one per service
 *   log/<id>.log     each process's JSON-lines log */
#ifndef ECOM_STATE_H
#define ECOM_STATE_H

#include <stddef.h>
#include <sys/types.h>

/* dir + "/" + name into buf. ERR_TOO_LARGE when it does not fit. */
int state_path(const char *dir, const char *name, char *buf, size_t len);
/* Creates dir and its run/, data/ and log/ subdirectories (mode 0700).
 * Returns 0 or ERR_IO with err filled ("cannot create DIR: reason"). */
int state_prepare(const char *dir, char *err, size_t errlen);
/* Writes content to path atomically (temporary file, then rename), with
 * mode. 0 or ERR_IO. */
int state_write_file(const char *path, const char *content, mode_t mode);
/* The whole file without a trailing newline, malloc'd (caller frees); NULL
 * when it cannot be read. */
char *state_read_file(const char *path);
/* A secret: the environment variable env when set, else the file dir/name.
 * 0 or ERR_NOT_FOUND. */
int state_secret(const char *dir, const char *name, const char *env, char *buf, size_t len);
/* The admin token: $ECOM_ADMIN_TOKEN, else dir/admin.token. 0 or
 * ERR_NOT_FOUND. */
int state_admin_token(const char *dir, char *buf, size_t len);
/* The gateway URL from dir/gateway.url. 0 or ERR_NOT_FOUND. */
int state_gateway_url(const char *dir, char *buf, size_t len);
/* The supervisor's pid while the platform runs (its lock is held), else 0. */
pid_t state_running_pid(const char *dir);

#endif
