/* serve: the daemon host. `ecom serve NAME` runs one engine as a process:
 * libmicrohttpd in front, libcurl for its outbound calls, a real clock, a
 * seeded rng, its store, a tick thread for background work and, when given
 * a gateway, a heartbeat thread that keeps it registered. The host also
 * serves /health, /ready and /metrics for every engine. */
#ifndef ECOM_SERVE_H
#define ECOM_SERVE_H

/* argv[0] is "serve". Returns the process exit code. */
int serve_main(int argc, char **argv);

#endif
