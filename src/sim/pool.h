/* pool: the simulated users of a load run, signed up and signed in before
 * it starts. User i of seed S is sim-S-i@load.ecom.test with a password
 * drawn from the same two numbers, so a second run with the same seed on
 * the same platform signs the same users in again (signup answers 409).
 * Each user gets an address and an empty cart. The platform limits logins
 * per client address (user.login_per_min) and auth calls per address
 * (gateway.rate_auth_*); on loopback the pool therefore signs users in from
 * loopback addresses of their own (127.x.y.z, four users each), as that
 * many clients would. Not thread-safe. */
#ifndef ECOM_POOL_H
#define ECOM_POOL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

typedef struct pool_user {
	char email[96];
	char password[48];
	char token[2048];     /* the access token once signed in */
	char address_id[64]; /* "" when the address could not be made */
	char source_ip[20];   /* "" to send from the default address */
	int ready;
} pool_user;

typedef struct pool {
	int n;
	pool_user *u;
	int nready;
	int *ready; /* indices of the users signed in */
} pool;

/* A pool of n users of seed (none signed in yet). Owned by the caller:
 * pool_free(). NULL when out of memory. */
pool *pool_new(int n, uint64_t seed);
void pool_free(pool *p);
/* Signs every user in through the gateway at url, up to concurrency at a
 * time, giving up after timeout_us or once *stop is non-zero (stop may be
 * NULL); progress lines go to log (may be NULL). 0 when at least one user
 * is ready; ERR_UNAVAILABLE with err when none is. */
int pool_sign_in(pool *p, const char *url, int concurrency, int64_t timeout_us,
		 volatile sig_atomic_t *stop, FILE *log, char *err, size_t errlen);
/* The ready user a plan's user index stands for (planned modulo the ready
 * ones); NULL when none is ready or planned < 0. */
const pool_user *pool_user_for(const pool *p, int planned);

#endif
