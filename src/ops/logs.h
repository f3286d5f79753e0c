/* logs: `ecom logs [SERVICE] [-f] [--trace ID]`, the platform's log lines
 * (STATE/log/<instance>.log, one JSON object per line) from every process
 * merged in time order, filtered by service and by trace, and followed as
 * they are written (-f) until SIGINT or SIGTERM. */
#ifndef ECOM_LOGS_H
#define ECOM_LOGS_H

/* argv[0] is "logs". Returns the process exit code. */
int logs_main(int argc, char **argv);

#endif
