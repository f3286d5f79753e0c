/* user: accounts. Signup (normalised, unique email; password hashed with
 * libsodium's argon2id crypto_pwhash, never stored or logged in clear),
 * login (an HS256 access token; unknown email and wrong password cost the
 * same work and give the same 401), the caller's profile and addresses.
 * Profile routes trust only the identity the gateway signed. */
#ifndef ECOM_USER_H
#define ECOM_USER_H

#include <stddef.h>

#include "services/engine.h"

extern const engine_def user_engine;

/* Normalises an email address: surrounding white space trimmed, the domain
 * lower-cased, the local part kept. Checks its shape (one '@', non-empty
 * local part, a dotted domain, no spaces or control characters, at most 254
 * bytes). 0 with out filled, or ERR_INVALID. */
int user_normalize_email(const char *in, char *out, size_t len);

#endif
