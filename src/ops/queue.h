/* queue: `ecom queue list|replay`, the operator's view of the event bus
 * (the gateway's /admin/queues). */
#ifndef ECOM_QUEUE_H
#define ECOM_QUEUE_H

int queue_main(int argc, char **argv);

#endif
