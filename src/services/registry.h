/* registry: the gateway's view of which service instances exist and which
 * are in rotation. Instances register and then heartbeat; one whose last
 * heartbeat is older than the TTL leaves rotation (and the listing after
 * ten TTLs). A failed connection takes an instance out of rotation at once
 * until its next heartbeat (passive health check). Picking balances by
 * least outstanding requests, round-robin among ties.
 * Time comes from the caller, so tests drive it with a virtual clock.
 * Thread-safe. */
#ifndef ECOM_REGISTRY_H
#define ECOM_REGISTRY_H

#include <stdint.h>
#include <jansson.h>

#define REGISTRY_ADDR_MAX 128
#define REGISTRY_ID_MAX 64

typedef struct registry registry;

/* A new registry whose instances expire ttl_us after their last heartbeat.
 * Owned by the caller: registry_free(). */
registry *registry_new(int64_t ttl_us);
void registry_free(registry *r);

/* Registers id (of service, at addr) or refreshes it; a changed addr is
 * taken. Returns 0, ERR_INVALID on an empty or overlong field, ERR_NOMEM. */
int registry_heartbeat(registry *r, const char *service, const char *id, const char *addr,
		       int64_t now_us);
/* Removes id (graceful shutdown). ERR_NOT_FOUND when unknown. */
int registry_remove(registry *r, const char *id);
/* Takes id out of rotation until its next heartbeat after now_us. */
void registry_mark_down(registry *r, const char *id, int64_t now_us);
/* Forgets instances silent for ten TTLs. */
void registry_expire(registry *r, int64_t now_us);

/* Picks the healthy instance of service with the fewest outstanding
 * requests, skipping the ids in exclude (nexclude entries), and counts one
 * more outstanding on it. Copies its id and addr out. ERR_NOT_FOUND when no
 * instance qualifies. Pair with registry_release. */
int registry_acquire(registry *r, const char *service, int64_t now_us, const char *const *exclude,
		     int nexclude, char id[REGISTRY_ID_MAX], char addr[REGISTRY_ADDR_MAX]);
/* The same among instances that are only late with their heartbeats (still
 * listed, and not found dead by a request): the fallback when none is
 * healthy, because late heartbeats mostly mean a busy machine, not a dead
 * instance, and a dead one is refused at once and marked down. */
int registry_acquire_stale(registry *r, const char *service, int64_t now_us,
			   const char *const *exclude, int nexclude, char id[REGISTRY_ID_MAX],
			   char addr[REGISTRY_ADDR_MAX]);
void registry_release(registry *r, const char *id);

/* The instances one call has tried, so that its next attempt goes to
 * another: the gateway's forwarding and an engine's direct calls fail over
 * this way when a connection is refused. On the caller's stack, zeroed
 * ({0}) before the first attempt. */
#define REGISTRY_TRIES 3
typedef struct registry_tried {
	char id[REGISTRY_TRIES][REGISTRY_ID_MAX];
	const char *ids[REGISTRY_TRIES];
	int n;
} registry_tried;
/* The call's next instance: registry_acquire skipping the ids in t, or
 * when none is healthy registry_acquire_stale likewise. ERR_NOT_FOUND when
 * no instance qualifies or t is full (REGISTRY_TRIES attempts made).
 * Pair with registry_release. */
int registry_acquire_next(registry *r, const char *service, int64_t now_us,
			  const registry_tried *t, char id[REGISTRY_ID_MAX],
			  char addr[REGISTRY_ADDR_MAX]);
/* Adds id to t (nothing once t is full). */
void registry_tried_add(registry_tried *t, const char *id);

/* Healthy instances of service at now_us. */
int registry_healthy(registry *r, const char *service, int64_t now_us);
/* {"services":[{"name","instances":[{"id","addr","healthy","last_heartbeat",
 * "outstanding"}]}]} with names sorted. New reference. */
json_t *registry_to_json(registry *r, int64_t now_us);

#endif
