/* simulate: `ecom sim`, the outside world and, later, the load simulator.
 * `ecom sim stripe [--port PORT]` serves the Stripe-compatible simulator
 * (src/sim/stripe_sim) through the ordinary daemon host. */
#ifndef ECOM_SIMULATE_H
#define ECOM_SIMULATE_H

/* argv[0] is "sim". Returns the exit code. */
int simulate_main(int argc, char **argv);

#endif
