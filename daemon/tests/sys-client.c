// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sys-client: a process using libmembroker the way an application does,
 * for the system broker's tests (tests/run.py): one monitor, one broker
 * ("pool") and mb_caches in it; the monitor's own source is the fake one
 * (its state is the test's to push), and it finds membrokerd by itself
 * ($MEMBROKERD_SOCKET).
 *
 *   sys-client [--pool NAME] [--min BYTES] [--max BYTES]
 *              --cache NAME:PRIORITY:ENTRIES:ENTRY_BYTES ...
 *
 * Commands on stdin, one per line:
 *   low AVAIL | steady | high   the monitor's fake source reads that
 *   fill NAME N                 put N more entries into cache NAME
 *   stall / resume              stop / start dispatching the monitor (a
 *                               process too busy to answer the daemon)
 *   state                       print "CACHE name bytes target" for each
 *                               cache and a STATUS line
 *   sync                        print "SYNC" (after what came before)
 *   quit
 *
 * Printed as it happens: "STATE <state>" when the monitor's part in the
 * system broker changes (searching, registered...), and "REC clerk=
 * decision= state= allocated= target= freed=" for every record of the
 * broker's ring, system decisions and local ones alike.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "membroker.h"

#define MAX_CACHES	8

struct cache {
	char name[64];
	struct mb_cache *c;
	uint32_t priority;
	size_t entry;
	unsigned long next_key;
};

static struct cache caches[MAX_CACHES];
static int ncaches;
static struct mb_monitor *mon;
static struct mb_broker *broker;
static uint64_t ring_seq = 1;
static uint32_t last_state = UINT32_MAX;

static const char *const sys_states[] = {
	"off", "idle", "searching", "registered",
};

static const char *const decisions[] = {
	"stable", "grow", "shrink", "system-shrink", "system-grow",
};

static void fill(struct cache *c, unsigned long n)
{
	char key[96], *val = malloc(c->entry);
	unsigned long i;

	if (!val)
		return;
	memset(val, 'v', c->entry);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s-%lu", c->name, c->next_key++);
		mb_cache_put(c->c, key, strlen(key), val, c->entry);
	}
	free(val);
}

/* What happened since last time: the ring, the system broker's state. */
static void report(void)
{
	struct mb_system_status st = { .sz = sizeof(st) };
	struct mb_broker_record r[32];
	uint64_t missed;
	int i, n;

	do {
		n = mb_ring_read(mb_broker_ring(broker), ring_seq, r, NULL,
				 32, &missed);
		for (i = 0; i < n; i++)
			printf("REC clerk=%s decision=%s state=%s "
			       "allocated=%llu target=%llu freed=%llu\n",
			       r[i].clerk, r[i].decision < 5 ?
			       decisions[r[i].decision] : "?",
			       mb_state_name(r[i].state),
			       (unsigned long long)r[i].allocated,
			       (unsigned long long)r[i].target,
			       (unsigned long long)r[i].freed);
		ring_seq += (uint64_t)(n > 0 ? n : 0) + missed;
	} while (n > 0);
	mb_monitor_system_status(mon, &st);
	if (st.state != last_state) {
		last_state = st.state;
		printf("STATE %s client=%u registrations=%llu\n",
		       st.state < 4 ? sys_states[st.state] : "?", st.client,
		       (unsigned long long)st.registrations);
	}
	fflush(stdout);
}

static void print_state(void)
{
	struct mb_system_status st = { .sz = sizeof(st) };
	struct mb_clerk *k;
	int i;

	for (i = 0; i < ncaches; i++) {
		k = mb_cache_clerk(caches[i].c);
		printf("CACHE %s bytes=%llu target=%llu\n", caches[i].name,
		       (unsigned long long)mb_clerk_bytes(k),
		       (unsigned long long)mb_clerk_target(k));
	}
	mb_monitor_system_status(mon, &st);
	printf("STATUS state=%s flags=%u client=%u registrations=%llu ",
	       st.state < 4 ? sys_states[st.state] : "?", st.flags, st.client,
	       (unsigned long long)st.registrations);
	printf("polls=%llu shrinks=%llu freed=%llu grows=%llu\n",
	       (unsigned long long)st.polls,
	       (unsigned long long)st.shrinks,
	       (unsigned long long)st.freed,
	       (unsigned long long)st.grows);
}

static void push(uint32_t s, uint64_t avail)
{
	struct mb_notification n = {
		.state = s, .available = avail, .total = 1ULL << 30,
		.low = 100ULL << 20, .high = 300ULL << 20,
	};

	mb_monitor_fake_push(mon, &n);
}

/* 1: quit */
static int run_command(char *line)
{
	unsigned long long v;
	char name[64];
	int i;

	line[strcspn(line, "\n")] = '\0';
	if (!strcmp(line, "quit"))
		return 1;
	if (sscanf(line, "low %llu", &v) == 1) {
		push(MB_STATE_LOW, v);
	} else if (!strcmp(line, "steady")) {
		push(MB_STATE_STEADY, 200ULL << 20);
	} else if (!strcmp(line, "high")) {
		push(MB_STATE_HIGH, 500ULL << 20);
	} else if (sscanf(line, "fill %63s %llu", name, &v) == 2) {
		for (i = 0; i < ncaches; i++)
			if (!strcmp(caches[i].name, name))
				fill(&caches[i], v);
	} else if (!strcmp(line, "state")) {
		print_state();
	} else if (!strcmp(line, "sync")) {
		printf("SYNC\n");
	} else if (*line) {
		printf("ERROR unknown command '%s'\n", line);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "pool", required_argument, NULL, 'p' },
		{ "min", required_argument, NULL, 'm' },
		{ "max", required_argument, NULL, 'M' },
		{ "cache", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_monitor_opts mo = MB_OPTS(mb_monitor_opts,
					    .source = MB_SOURCE_FAKE,
					    .low_repeat_ms = UINT32_MAX);
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts, .trim = false);
	const char *pool = "pool";
	struct mb_cache_opts co;
	struct pollfd p[2];
	bool stalled = false;
	char line[1024], *nl;
	size_t used = 0;
	ssize_t n;
	unsigned long entries;
	int opt, i, err;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			pool = optarg;
			break;
		case 'm':
			bo.min_bytes = strtoull(optarg, NULL, 0);
			break;
		case 'M':
			bo.max_bytes = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			if (ncaches == MAX_CACHES ||
			    sscanf(optarg, "%63[^:]:%u:%lu:%zu",
				   caches[ncaches].name,
				   &caches[ncaches].priority, &entries,
				   &caches[ncaches].entry) != 4) {
				fprintf(stderr, "bad --cache %s\n", optarg);
				return 2;
			}
			caches[ncaches++].next_key = entries;
			break;
		default:
			return 2;
		}
	}
	err = mb_monitor_new(&mon, &mo);
	if (!err)
		err = mb_broker_new(&broker, pool, mon, &bo);
	for (i = 0; !err && i < ncaches; i++) {
		co = MB_OPTS(mb_cache_opts,
			     .priority = caches[i].priority);
		err = mb_cache_new(&caches[i].c, caches[i].name, &co);
		if (!err) {
			entries = caches[i].next_key;
			caches[i].next_key = 0;
			fill(&caches[i], entries);
			err = mb_broker_add_clerk(broker,
						  mb_cache_clerk(caches[i].c));
		}
	}
	if (err) {
		fprintf(stderr, "sys-client: %s\n", strerror(-err));
		return 1;
	}
	printf("READY pid=%d\n", (int)getpid());
	report();

	for (;;) {
		p[0] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		p[1] = (struct pollfd){
			.fd = stalled ? -1 : mb_monitor_get_fd(mon),
			.events = POLLIN,
		};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents) {
			mb_monitor_dispatch(mon);
			report();
		}
		if (!p[0].revents)
			continue;
		/* every whole line that came: stdio would keep some back */
		n = read(STDIN_FILENO, line + used, sizeof(line) - 1 - used);
		if (n <= 0)
			break;
		used += n;
		line[used] = '\0';
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			if (!strcmp(line, "stall")) {
				stalled = true;
				printf("STALLED\n");
				fflush(stdout);
			} else if (!strcmp(line, "resume")) {
				stalled = false;
			} else if (run_command(line)) {
				goto out;
			}
			if (!stalled) {
				mb_monitor_dispatch(mon);
				report();
			}
			used -= nl + 1 - line;
			memmove(line, nl + 1, used + 1);
		}
		if (used == sizeof(line) - 1)
			used = 0;	/* a line too long: dropped */
	}
out:
	mb_broker_free(broker);
	for (i = 0; i < ncaches; i++)
		mb_cache_free(caches[i].c);
	mb_monitor_free(mon);
	return 0;
}
