/* state: files of the state directory. */
#include "ops/state.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int state_path(const char *dir, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);
	return (n < 0 || (size_t)n >= len) ? ERR_TOO_LARGE : 0;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[1024];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(tmp, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int state_prepare(const char *dir, char *err, size_t errlen)
{
	static const char *const subs[] = { "", "/run", "/data", "/log", NULL };
	for (int i = 0; subs[i]; i++) {
		char p[1024];
		snprintf(p, sizeof(p), "%s%s", dir, subs[i]);
		if (mkdir_p(p, 0700) != 0 || access(p, W_OK) != 0) {
			snprintf(err, errlen, "cannot create state directory %s: %s", p,
				 strerror(errno));
			return ERR_IO;
		}
	}
	return 0;
}

int state_write_file(const char *path, const char *content, mode_t mode)
{
	char tmp[1100];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return ERR_IO;
	size_t len = strlen(content), off = 0;
	while (off < len) {
		ssize_t w = write(fd, content + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return ERR_IO;
		}
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return ERR_IO;
	}
	return 0;
}

char *state_read_file(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 256, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (len < cap - 1)
			break;
		cap *= 2;
		char *nb = realloc(buf, cap);
		if (!nb) {
			free(buf);
			buf = NULL;
		}
		buf = nb;
	}
	fclose(f);
	if (!buf)
		return NULL;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	return buf;
}

static int read_small(const char *dir, const char *name, char *buf, size_t len)
{
	char p[1024];
	if (state_path(dir, name, p, sizeof(p)))
		return ERR_NOT_FOUND;
	char *s = state_read_file(p);
	if (!s || !s[0] || strlen(s) >= len) {
		free(s);
		return ERR_NOT_FOUND;
	}
	snprintf(buf, len, "%s", s);
	free(s);
	return 0;
}

int state_secret(const char *dir, const char *name, const char *env, char *buf, size_t len)
{
	const char *v = getenv(env);
	if (v && *v && strlen(v) < len) {
		snprintf(buf, len, "%s", v);
		return 0;
	}
	return read_small(dir, name, buf, len);
}

int state_admin_token(const char *dir, char *buf, size_t len)
{
	return state_secret(dir, "admin.token", "ECOM_ADMIN_TOKEN", buf, len);
}

int state_gateway_url(const char *dir, char *buf, size_t len)
{
	return read_small(dir, "gateway.url", buf, len);
}

pid_t state_running_pid(const char *dir)
{
	char p[1024];
	if (state_path(dir, "lock", p, sizeof(p)))
		return 0;
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd); /* releases our shared lock if we got it */
	if (!held)
		return 0;
	char pidbuf[32];
	if (read_small(dir, "supervisor.pid", pidbuf, sizeof(pidbuf)))
		return 0;
	long pid = strtol(pidbuf, NULL, 10);
	return pid > 0 ? (pid_t)pid : 0;
}
