/* demo: narrated walk-throughs of the platform. `ecom demo catalog` (the
 * default) starts the platform in a scratch state directory, seeds it,
 * exercises the catalog through the gateway (listing, filters, admin
 * writes, bad input), kills a replica and shows requests still succeed,
 * reads the metrics, and stops everything. Exits 1 if anything it shows
 * did not behave as it says. */
#ifndef ECOM_DEMO_H
#define ECOM_DEMO_H

/* argv[0] is "demo". Returns the exit code. */
int demo_main(int argc, char **argv);

#endif
