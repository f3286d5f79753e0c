/* easy_slot: one libcurl easy handle per thread for one client module,
 * kept between calls so that its connection cache (keep-alive) survives
 * from call to call without locking. A module declares one static slot,
 * `static easy_slot slot = EASY_SLOT_INIT;`; each thread's handle is
 * made on its first easy_slot_get and cleaned up when the thread exits or
 * at easy_slot_drop. The handles belong to the slot, never to the caller. */
#ifndef ECOM_EASY_SLOT_H
#define ECOM_EASY_SLOT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct easy_slot {
	pthread_mutex_t mu; /* guards making the key */
	atomic_int made;    /* key is made */
	pthread_key_t key;  /* each thread's CURL * */
} easy_slot;

#define EASY_SLOT_INIT { PTHREAD_MUTEX_INITIALIZER, 0, 0 }

/* The calling thread's handle, made now when it had none (*fresh = 1: set
 * the options every call shares) or as the thread's last call left it
 * (*fresh = 0). NULL when out of memory. */
CURL *easy_slot_get(easy_slot *s, int *fresh);
/* Cleans up the calling thread's handle and its connections, if any; the
 * next easy_slot_get makes a new one. */
void easy_slot_drop(easy_slot *s);

#endif
