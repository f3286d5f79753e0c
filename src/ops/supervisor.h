/* supervisor: `ecom up`, `ecom down` and `ecom status`.
 *
 * `ecom up` takes the state directory's lock, forks a supervisor into its
 * own session and waits until the supervisor reports every instance ready
 * (or why not). The supervisor starts the gateway, then each service's
 * instances (`ecom serve` children with their output in log/), keeps
 * instances.json current, restarts a child that dies with exponential
 * backoff, and on SIGTERM stops every child before it lets the lock go.
 * `ecom down` signals it and waits for the lock to be free, so nothing is
 * left running when it returns. */
#ifndef ECOM_SUPERVISOR_H
#define ECOM_SUPERVISOR_H

/* argv[0] is the command name. Each returns the process exit code. */
int supervisor_up(int argc, char **argv);
int supervisor_down(int argc, char **argv);
int supervisor_status(int argc, char **argv);

#endif
