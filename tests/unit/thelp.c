/* thelp: shared helpers of the HTTP-facing unit tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "thelp.h"

json_t *thelp_body_json(const msg_resp *resp)
{
	json_error_t je;
	assert_non_null(resp->body);
	json_t *v = json_loadb(resp->body, resp->body_len, 0, &je);
	if (!v)
		fail_msg("not JSON (%s): %.*s", je.text, (int)resp->body_len, resp->body);
	return v;
}

const char *thelp_jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	if (!s)
		fail_msg("no string \"%s\"", key);
	return s;
}

int thelp_closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(sa.sin_port);
}
