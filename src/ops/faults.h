/* faults: `ecom fault set|clear|list`, fault injection on the running
 * platform's services and outside-world simulators, through the gateway's
 * /admin/faults. */
#ifndef ECOM_FAULTS_H
#define ECOM_FAULTS_H

/* argv[0] is "fault". Returns the process exit code. */
int faults_main(int argc, char **argv);

#endif
