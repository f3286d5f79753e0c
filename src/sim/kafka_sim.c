/* kafka_sim: the mock cluster, its topics, the bootstrap forwarder, and
 * `ecom sim kafka`. */
#include "sim/kafka_sim.h"
#include "core/err.h"
#include "ops/cli.h"
#include "ops/state.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CMD "sim kafka"
/* Client connections the forwarder relays at once. */
#define FWD_MAX 32

static const char *const platform_topics[] = { "orders", "payments", "inventory",
					       "notifications.email", "notifications.sms",
					       "analytics", NULL };

static const char HELP[] =
	"usage: ecom sim kafka [--port PORT] [--brokers N] [--partitions N]\n"
	"                      [--bootstrap-file FILE]\n"
	"\n"
	"Runs librdkafka's mock cluster as Kafka brokers on loopback and prints the\n"
	"bus URL (kafka://HOST:PORT,...) for 'ecom up --bus'. This is an in-memory\n"
	"TEST broker: nothing is written to disk, each partition keeps only its last\n"
	"few MiB, and everything is gone when it stops. A real Kafka cluster is the\n"
	"production setting.\n"
	"\n"
	"  --port PORT         also accept bootstrap connections on 127.0.0.1:PORT\n"
	"                      (the brokers themselves listen on ports the OS picks)\n"
	"  --brokers N         brokers in the cluster, 1 to 16 (default 3)\n"
	"  --partitions N      partitions of each platform topic, 1 to 64 (default 4)\n"
	"  --bootstrap-file F  also write the bus URL to F\n"
	"\n"
	"Topics created: orders, payments, inventory, notifications.email,\n"
	"notifications.sms, analytics (others, such as dead-letter topics, are made\n"
	"on first use). Runs until SIGINT or SIGTERM.\n";

typedef struct fwd_pair {
	int a, b; /* client, broker; -1 when free */
} fwd_pair;

struct kafka_sim {
	rd_kafka_t *owner; /* the handle the mock cluster lives in */
	rd_kafka_mock_cluster_t *mc;
	int brokers;
	char bootstraps[512];
	/* the bootstrap forwarder */
	int listen_fd;
	int stop_pipe[2];
	char target_host[64];
	int target_port;
	pthread_t fwd_thread;
	int fwd_running;
};

/* ---- the bootstrap forwarder --------------------------------------------------- */

static int dial(const kafka_sim *k)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)k->target_port) };
	if (fd < 0 || inet_pton(AF_INET, k->target_host, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static void pair_close(fwd_pair *p)
{
	if (p->a >= 0)
		close(p->a);
	if (p->b >= 0)
		close(p->b);
	p->a = p->b = -1;
}

/* Copies what from has into to; 0, or -1 when either side is done. */
static int relay_bytes(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	for (ssize_t off = 0; off < n;) {
		ssize_t w = write(to, buf + off, (size_t)(n - off));
		if (w <= 0)
			return -1;
		off += w;
	}
	return 0;
}

static void *forwarder(void *arg)
{
	kafka_sim *k = arg;
	fwd_pair pairs[FWD_MAX];
	for (int i = 0; i < FWD_MAX; i++)
		pairs[i].a = pairs[i].b = -1;
	for (;;) {
		struct pollfd fds[2 + 2 * FWD_MAX];
		int map[2 + 2 * FWD_MAX];
		int n = 0;
		fds[n] = (struct pollfd){ .fd = k->stop_pipe[0], .events = POLLIN };
		map[n++] = -1;
		fds[n] = (struct pollfd){ .fd = k->listen_fd, .events = POLLIN };
		map[n++] = -2;
		for (int i = 0; i < FWD_MAX; i++) {
			if (pairs[i].a < 0)
				continue;
			fds[n] = (struct pollfd){ .fd = pairs[i].a, .events = POLLIN };
			map[n++] = 2 * i;
			fds[n] = (struct pollfd){ .fd = pairs[i].b, .events = POLLIN };
			map[n++] = 2 * i + 1;
		}
		if (poll(fds, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		if (fds[0].revents)
			break;
		if (fds[1].revents & POLLIN) {
			int c = accept4(k->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int slot = -1;
			for (int i = 0; i < FWD_MAX && slot < 0; i++)
				if (pairs[i].a < 0)
					slot = i;
			int b = c >= 0 && slot >= 0 ? dial(k) : -1;
			if (b < 0) {
				if (c >= 0)
					close(c);
			} else {
				pairs[slot].a = c;
				pairs[slot].b = b;
			}
		}
		for (int j = 2; j < n; j++) {
			if (!fds[j].revents)
				continue;
			fwd_pair *p = &pairs[map[j] / 2];
			if (p->a < 0)
				continue;
			int from = map[j] % 2 ? p->b : p->a, to = map[j] % 2 ? p->a : p->b;
			if (fds[j].fd != from)
				continue;
			if (relay_bytes(from, to) != 0)
				pair_close(p);
		}
	}
	for (int i = 0; i < FWD_MAX; i++)
		pair_close(&pairs[i]);
	return NULL;
}

static int start_forwarder(kafka_sim *k, int port, char *err, size_t errlen)
{
	/* The first broker: "127.0.0.1:PORT" at the head of the list. */
	const char *mock = rd_kafka_mock_cluster_bootstraps(k->mc);
	const char *colon = strchr(mock, ':');
	if (!colon || (size_t)(colon - mock) >= sizeof(k->target_host)) {
		snprintf(err, errlen, "unexpected mock bootstrap list '%s'", mock);
		return ERR_INTERNAL;
	}
	snprintf(k->target_host, sizeof(k->target_host), "%.*s", (int)(colon - mock), mock);
	k->target_port = atoi(colon + 1);
	k->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (k->listen_fd < 0 ||
	    setsockopt(k->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(k->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(k->listen_fd, 16) != 0) {
		snprintf(err, errlen, "127.0.0.1:%d: %s", port, strerror(errno));
		return ERR_IO;
	}
	if (pipe2(k->stop_pipe, O_CLOEXEC) != 0 ||
	    pthread_create(&k->fwd_thread, NULL, forwarder, k) != 0) {
		snprintf(err, errlen, "cannot start the bootstrap forwarder");
		return ERR_INTERNAL;
	}
	k->fwd_running = 1;
	snprintf(k->bootstraps, sizeof(k->bootstraps), "127.0.0.1:%d", port);
	return 0;
}

/* ---- the cluster ------------------------------------------------------------------ */

int kafka_sim_topic(kafka_sim *k, const char *topic, int partitions)
{
	int rf = k->brokers < 3 ? k->brokers : 3;
	return rd_kafka_mock_topic_create(k->mc, topic, partitions, rf) == RD_KAFKA_RESP_ERR_NO_ERROR
		       ? 0
		       : ERR_INVALID;
}

kafka_sim *kafka_sim_new(int brokers, int partitions, int port, char *err, size_t errlen)
{
	if (brokers < 1 || brokers > 16 || partitions < 1 || partitions > 64 || port < 0 ||
	    port > 65535) {
		snprintf(err, errlen, "brokers 1..16, partitions 1..64, port 0..65535");
		return NULL;
	}
	kafka_sim *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->listen_fd = -1;
	k->stop_pipe[0] = k->stop_pipe[1] = -1;
	k->brokers = brokers;
	/* The cluster needs a client handle to live in; this one never
	 * connects anywhere. */
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "log_level", "3", NULL, 0);
	k->owner = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, errlen);
	if (!k->owner) {
		rd_kafka_conf_destroy(c);
		free(k);
		return NULL;
	}
	k->mc = rd_kafka_mock_cluster_new(k->owner, brokers);
	if (!k->mc) {
		snprintf(err, errlen, "cannot create the mock cluster");
		kafka_sim_free(k);
		return NULL;
	}
	snprintf(k->bootstraps, sizeof(k->bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(k->mc));
	for (int i = 0; platform_topics[i]; i++)
		if (kafka_sim_topic(k, platform_topics[i], partitions) != 0) {
			snprintf(err, errlen, "cannot create topic %s", platform_topics[i]);
			kafka_sim_free(k);
			return NULL;
		}
	if (port > 0 && start_forwarder(k, port, err, errlen) != 0) {
		kafka_sim_free(k);
		return NULL;
	}
	return k;
}

void kafka_sim_free(kafka_sim *k)
{
	if (!k)
		return;
	if (k->fwd_running) {
		ssize_t w = write(k->stop_pipe[1], "x", 1);
		(void)w;
		pthread_join(k->fwd_thread, NULL);
	}
	if (k->listen_fd >= 0)
		close(k->listen_fd);
	for (int i = 0; i < 2; i++)
		if (k->stop_pipe[i] >= 0)
			close(k->stop_pipe[i]);
	if (k->mc)
		rd_kafka_mock_cluster_destroy(k->mc);
	if (k->owner)
		rd_kafka_destroy(k->owner);
	free(k);
}

const char *kafka_sim_bootstraps(const kafka_sim *k) { return k->bootstraps; }

rd_kafka_mock_cluster_t *kafka_sim_cluster(kafka_sim *k) { return k->mc; }

/* ---- ecom sim kafka ------------------------------------------------------------------ */

int kafka_sim_main(int argc, char **argv)
{
	if (cli_help_if_asked(argc, argv, HELP) == 0)
		return 0;
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "brokers", required_argument, NULL, 'b' },
		{ "partitions", required_argument, NULL, 'n' },
		{ "bootstrap-file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t port = 0, brokers = 3, partitions = 4;
	const char *file = NULL;
	opterr = 0;
	optind = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (cli_parse_int(optarg, 0, 65535, &port))
				return cli_usage(CMD, "bad port '%s' (0-65535)", optarg);
			break;
		case 'b':
			if (cli_parse_int(optarg, 1, 16, &brokers))
				return cli_usage(CMD, "--brokers takes 1 to 16");
			break;
		case 'n':
			if (cli_parse_int(optarg, 1, 64, &partitions))
				return cli_usage(CMD, "--partitions takes 1 to 64");
			break;
		case 'f': file = optarg; break;
		default: return cli_usage(CMD, "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage(CMD, "unexpected argument '%s'", argv[optind]);
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	char err[512] = "";
	kafka_sim *k = kafka_sim_new((int)brokers, (int)partitions, (int)port, err, sizeof(err));
	if (!k)
		return cli_fail(CMD, "%s", err);
	char url[600];
	snprintf(url, sizeof(url), "kafka://%s", kafka_sim_bootstraps(k));
	if (file && state_write_file(file, url, 0644) != 0) {
		kafka_sim_free(k);
		return cli_fail(CMD, "cannot write %s", file);
	}
	printf("%s\n", url);
	fflush(stdout);
	fprintf(stderr,
		"ecom sim kafka: %d in-memory test broker(s), brokers at %s; "
		"use: ecom up --bus %s (a test broker: a real cluster is the production setting)\n",
		(int)brokers, rd_kafka_mock_cluster_bootstraps(k->mc), url);
	int sig = 0;
	sigwait(&sigs, &sig);
	kafka_sim_free(k);
	return 0;
}
