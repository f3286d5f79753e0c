/* simulate: `ecom sim`: the load simulator (`sim run SCENARIO`, `sim run
 * --list`, `sim validate FILE...`, over src/sim/loadgen) and the outside
 * world simulated (`sim stripe`, the Stripe-compatible simulator served by
 * the ordinary daemon host). */
#ifndef ECOM_SIMULATE_H
#define ECOM_SIMULATE_H

/* argv[0] is "sim". Returns the exit code. */
int simulate_main(int argc, char **argv);

#endif
