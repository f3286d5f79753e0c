/* easy_slot: a libcurl easy handle per thread (see easy_slot.h). */
#include "net/easy_slot.h"

static void handle_destroy(void *h)
{
	if (h)
		curl_easy_cleanup(h);
}

/* Makes the slot's key on first use; 0, or -1 when the system has no key
 * left. */
static int slot_key(easy_slot *s)
{
	if (atomic_load_explicit(&s->made, memory_order_acquire))
		return 0;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	if (!atomic_load_explicit(&s->made, memory_order_relaxed)) {
		if (pthread_key_create(&s->key, handle_destroy) == 0)
			atomic_store_explicit(&s->made, 1, memory_order_release);
		else
			rc = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

CURL *easy_slot_get(easy_slot *s, int *fresh)
{
	*fresh = 0;
	if (slot_key(s) != 0)
		return NULL;
	CURL *h = pthread_getspecific(s->key);
	if (h)
		return h;
	h = curl_easy_init();
	if (h && pthread_setspecific(s->key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	*fresh = h != NULL;
	return h;
}

void easy_slot_drop(easy_slot *s)
{
	if (slot_key(s) != 0)
		return;
	CURL *h = pthread_getspecific(s->key);
	if (h) {
		pthread_setspecific(s->key, NULL);
		curl_easy_cleanup(h);
	}
}
