/* ratelimit: lazily refilled token buckets in a hash table with an LRU list. */
#include "resil/ratelimit.h"
#include "core/err.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Token amounts are doubles; a refill computed for exactly the advertised
 * retry time may land a hair under the cost, so comparisons allow this. */
#define EPS 1e-9
/* How many of the least recently used buckets an insert at the bound looks
 * at for one that is full before evicting the oldest. */
#define EVICT_SCAN 16

typedef struct bucket {
	struct bucket *hnext;            /* hash chain */
	struct bucket *newer, *older;    /* LRU list */
	uint64_t hash;
	double tokens;
	int64_t last_us;
	char key[];
} bucket;

struct ratelimit {
	pthread_mutex_t mu;
	double rate_s; /* tokens per second */
	double burst;
	size_t max_keys;
	size_t count;
	uint64_t evictions;
	bucket **table;
	size_t mask;
	bucket *newest, *oldest;
};

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

ratelimit *ratelimit_new(double rate_per_s, double burst, size_t max_keys)
{
	if (!(rate_per_s > 0.0) || !isfinite(rate_per_s) || !(burst >= 1.0) || !isfinite(burst) ||
	    max_keys < 1 || max_keys > ((size_t)1 << 28))
		return NULL;
	ratelimit *rl = calloc(1, sizeof(*rl));
	if (!rl)
		return NULL;
	size_t slots = 16;
	while (slots < max_keys * 2)
		slots <<= 1;
	rl->table = calloc(slots, sizeof(*rl->table));
	if (!rl->table) {
		free(rl);
		return NULL;
	}
	pthread_mutex_init(&rl->mu, NULL);
	rl->mask = slots - 1;
	rl->rate_s = rate_per_s;
	rl->burst = burst;
	rl->max_keys = max_keys;
	return rl;
}

void ratelimit_free(ratelimit *rl)
{
	if (!rl)
		return;
	for (bucket *b = rl->newest, *next; b; b = next) {
		next = b->older;
		free(b);
	}
	pthread_mutex_destroy(&rl->mu);
	free(rl->table);
	free(rl);
}

static void lru_unlink(ratelimit *rl, bucket *b)
{
	if (b->newer)
		b->newer->older = b->older;
	else
		rl->newest = b->older;
	if (b->older)
		b->older->newer = b->newer;
	else
		rl->oldest = b->newer;
	b->newer = b->older = NULL;
}

static void lru_push(ratelimit *rl, bucket *b)
{
	b->newer = NULL;
	b->older = rl->newest;
	if (rl->newest)
		rl->newest->newer = b;
	rl->newest = b;
	if (!rl->oldest)
		rl->oldest = b;
}

static void drop(ratelimit *rl, bucket *b)
{
	bucket **pp = &rl->table[b->hash & rl->mask];
	while (*pp != b)
		pp = &(*pp)->hnext;
	*pp = b->hnext;
	lru_unlink(rl, b);
	rl->count--;
	free(b);
}

/* Tokens b would hold at now_us, without changing it. */
static double level_at(const ratelimit *rl, const bucket *b, int64_t now_us)
{
	double t = b->tokens;
	if (now_us > b->last_us)
		t += (double)(now_us - b->last_us) * rl->rate_s / 1e6;
	return t < rl->burst ? t : rl->burst;
}

static int is_full(const ratelimit *rl, const bucket *b, int64_t now_us)
{
	return level_at(rl, b, now_us) >= rl->burst - EPS;
}

/* Microseconds to gather `need` tokens, rounded up (ignoring float dust, so
 * 1 token at 10/s is 100000, not 100001), saturating. */
static int64_t us_for(const ratelimit *rl, double need)
{
	if (need <= EPS)
		return 0;
	double us = ceil(need * 1e6 / rl->rate_s - 1e-6);
	if (!(us < 4e18))
		return (int64_t)4e18;
	return us < 1.0 ? 1 : (int64_t)us;
}

static int64_t s_up(int64_t us) { return us / 1000000 + (us % 1000000 != 0); }

static bucket *lookup(ratelimit *rl, const char *key, uint64_t h)
{
	for (bucket *b = rl->table[h & rl->mask]; b; b = b->hnext)
		if (b->hash == h && strcmp(b->key, key) == 0)
			return b;
	return NULL;
}

/* Frees one slot: a full bucket among the oldest few, else the oldest. */
static void evict_one(ratelimit *rl, int64_t now_us)
{
	bucket *victim = rl->oldest;
	int i = 0;
	for (bucket *b = rl->oldest; b && i < EVICT_SCAN; b = b->newer, i++) {
		if (is_full(rl, b, now_us)) {
			victim = b;
			break;
		}
	}
	drop(rl, victim);
	rl->evictions++;
}

int ratelimit_take(ratelimit *rl, const char *key, int64_t now_us, double cost,
		   ratelimit_result *out)
{
	if (!rl || !key)
		return ERR_INVALID;
	size_t n = strlen(key);
	if (n == 0 || n > RATELIMIT_MAX_KEY || !(cost > 0.0) || !(cost <= rl->burst))
		return ERR_INVALID;
	uint64_t h = fnv1a(key, n);

	pthread_mutex_lock(&rl->mu);
	bucket *b = lookup(rl, key, h);
	if (b) {
		lru_unlink(rl, b);
	} else {
		if (rl->count >= rl->max_keys)
			evict_one(rl, now_us);
		b = malloc(sizeof(*b) + n + 1);
		if (!b) {
			pthread_mutex_unlock(&rl->mu);
			return ERR_NOMEM;
		}
		memcpy(b->key, key, n + 1);
		b->hash = h;
		b->tokens = rl->burst;
		b->last_us = now_us;
		b->hnext = rl->table[h & rl->mask];
		rl->table[h & rl->mask] = b;
		rl->count++;
	}
	lru_push(rl, b);

	b->tokens = level_at(rl, b, now_us);
	if (now_us > b->last_us)
		b->last_us = now_us;
	int allowed = b->tokens >= cost - EPS;
	if (allowed) {
		b->tokens -= cost;
		if (b->tokens < 0)
			b->tokens = 0;
	}
	if (out) {
		out->allowed = allowed;
		out->limit = (int64_t)rl->burst;
		double rem = floor(b->tokens + EPS);
		out->remaining = rem > 0 ? (int64_t)rem : 0;
		out->reset_after_us = us_for(rl, rl->burst - b->tokens);
		out->reset_after_s = s_up(out->reset_after_us);
		out->retry_after_us = allowed ? 0 : us_for(rl, cost - b->tokens);
		out->retry_after_s = allowed ? 0 : s_up(out->retry_after_us);
		if (!allowed && out->retry_after_s < 1)
			out->retry_after_s = 1;
	}
	pthread_mutex_unlock(&rl->mu);
	return allowed ? 0 : ERR_BUSY;
}

size_t ratelimit_sweep(ratelimit *rl, int64_t now_us)
{
	size_t dropped = 0;
	pthread_mutex_lock(&rl->mu);
	for (bucket *b = rl->oldest, *newer; b; b = newer) {
		newer = b->newer;
		if (is_full(rl, b, now_us)) {
			drop(rl, b);
			dropped++;
		}
	}
	pthread_mutex_unlock(&rl->mu);
	return dropped;
}

size_t ratelimit_count(ratelimit *rl)
{
	pthread_mutex_lock(&rl->mu);
	size_t n = rl->count;
	pthread_mutex_unlock(&rl->mu);
	return n;
}

uint64_t ratelimit_evictions(ratelimit *rl)
{
	pthread_mutex_lock(&rl->mu);
	uint64_t n = rl->evictions;
	pthread_mutex_unlock(&rl->mu);
	return n;
}
