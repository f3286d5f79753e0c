/* kafka_sim: librdkafka's mock cluster (rdkafka_mock.h) run as Kafka
 * brokers on loopback ports. It speaks the real protocol (produce, fetch,
 * consumer groups, offsets, idempotent producers) from memory, so the
 * Kafka bus can be tried and tested without a Kafka installation; faults
 * are injected through the cluster handle (rd_kafka_mock_broker_set_down,
 * rd_kafka_mock_push_request_errors). It is a test broker: nothing is
 * written to disk, a partition keeps only its last few MiB, and a real
 * cluster is the production setting.
 *
 * The mock brokers listen on ports the OS picks; with a fixed port, a
 * bootstrap forwarder on 127.0.0.1:PORT relays connections to the first
 * broker, whose metadata then names every broker's own address. */
#ifndef ECOM_KAFKA_SIM_H
#define ECOM_KAFKA_SIM_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

typedef struct kafka_sim kafka_sim;

/* A cluster of brokers (1..16) with the platform's topics created with
 * partitions each (replication min(3, brokers)), and, when port > 0, the
 * bootstrap forwarder on it. NULL with err filled. Owned: kafka_sim_free(). */
kafka_sim *kafka_sim_new(int brokers, int partitions, int port, char *err, size_t errlen);
void kafka_sim_free(kafka_sim *k);
/* "HOST:PORT,..." for bootstrap.servers (the forwarder's when there is
 * one). Borrowed. */
const char *kafka_sim_bootstraps(const kafka_sim *k);
/* The mock cluster, for fault injection. Borrowed. */
rd_kafka_mock_cluster_t *kafka_sim_cluster(kafka_sim *k);
/* Creates topic with partitions (replication as above). 0 or ERR_INVALID. */
int kafka_sim_topic(kafka_sim *k, const char *topic, int partitions);

/* `ecom sim kafka [--port PORT] [--brokers N] [--partitions N]`: argv[0] is
 * "kafka". Prints kafka://BOOTSTRAP and runs until SIGINT or SIGTERM. */
int kafka_sim_main(int argc, char **argv);

#endif
