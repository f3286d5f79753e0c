/* breakers: `ecom breaker list|trip|reset|disable`, the operator's view of
 * and hand on the platform's circuit breakers, through the gateway's
 * /admin/breakers. */
#ifndef ECOM_BREAKERS_H
#define ECOM_BREAKERS_H

/* argv[0] is "breaker". Returns the process exit code. */
int breakers_main(int argc, char **argv);

#endif
