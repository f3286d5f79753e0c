/* bulkhead: a counter of calls in flight with a bound. */
#include "resil/bulkhead.h"
#include "core/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct bulkhead {
	pthread_mutex_t mu;
	char *name;
	int max;
	int in_flight;
	int64_t admitted;
	int64_t rejected;
};

bulkhead *bulkhead_new(const char *name, int max_concurrent)
{
	if (!name || max_concurrent < 1)
		return NULL;
	bulkhead *bh = calloc(1, sizeof(*bh));
	if (!bh)
		return NULL;
	bh->name = strdup(name);
	if (!bh->name) {
		free(bh);
		return NULL;
	}
	pthread_mutex_init(&bh->mu, NULL);
	bh->max = max_concurrent;
	return bh;
}

void bulkhead_free(bulkhead *bh)
{
	if (!bh)
		return;
	pthread_mutex_destroy(&bh->mu);
	free(bh->name);
	free(bh);
}

const char *bulkhead_name(const bulkhead *bh) { return bh->name; }

int bulkhead_enter(bulkhead *bh)
{
	int rc = 0;
	pthread_mutex_lock(&bh->mu);
	if (bh->in_flight < bh->max) {
		bh->in_flight++;
		bh->admitted++;
	} else {
		bh->rejected++;
		rc = ERR_BUSY;
	}
	pthread_mutex_unlock(&bh->mu);
	return rc;
}

int bulkhead_leave(bulkhead *bh)
{
	int rc = 0;
	pthread_mutex_lock(&bh->mu);
	if (bh->in_flight > 0)
		bh->in_flight--;
	else
		rc = ERR_STATE;
	pthread_mutex_unlock(&bh->mu);
	return rc;
}

int bulkhead_set_max(bulkhead *bh, int max_concurrent)
{
	if (max_concurrent < 1)
		return ERR_INVALID;
	pthread_mutex_lock(&bh->mu);
	bh->max = max_concurrent;
	pthread_mutex_unlock(&bh->mu);
	return 0;
}

void bulkhead_snapshot(bulkhead *bh, bulkhead_stats *out)
{
	pthread_mutex_lock(&bh->mu);
	out->max_concurrent = bh->max;
	out->in_flight = bh->in_flight;
	out->admitted = bh->admitted;
	out->rejected = bh->rejected;
	pthread_mutex_unlock(&bh->mu);
}
