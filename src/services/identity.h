/* identity: who is calling, as the gateway vouches for it.
 *
 * The gateway authenticates a request once (admin token or JWT), strips any
 * identity header the client sent, and forwards the caller's identity in
 * X-Ecom-Identity, signed with the platform's service secret
 * (HMAC-SHA256, libsodium):
 *
 *     v1;role=user;sub=usr_3f9a0c1d2b4e5f60;ts=1795650209000000;sig=<64 hex>
 *
 * Services verify the signature and the timestamp's age before they believe
 * it, so a client calling a service port directly cannot forge one. */
#ifndef ECOM_IDENTITY_H
#define ECOM_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define IDENTITY_HEADER "X-Ecom-Identity"
#define IDENTITY_MAX 256

enum identity_role { IDENTITY_ANONYMOUS = 0, IDENTITY_USER, IDENTITY_ADMIN, IDENTITY_SERVICE };

typedef struct identity {
	enum identity_role role;
	char sub[64]; /* user id for users; "admin" or the service's name otherwise */
} identity;

/* "anonymous", "user", "admin", "service". */
const char *identity_role_name(enum identity_role role);

/* Writes the signed header value for id at now_us into buf (at least
 * IDENTITY_MAX). ERR_INVALID on an empty secret, a sub with ';', '=' or a
 * control character, an unknown role or a negative now_us. */
int identity_sign(const char *secret, const identity *id, int64_t now_us, char *buf, size_t len);

/* Checks value's signature under secret, that it has exactly the shape
 * identity_sign writes, and that its timestamp is within max_age_us of now_us
 * (either side). 0 with *out filled, else ERR_UNAUTH (*out zeroed). */
int identity_verify(const char *secret, const char *value, int64_t now_us, int64_t max_age_us,
		    identity *out);

#endif
