// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mb-caches: a process with caches of given priorities and sizes, for the
 * system broker's scenario (selftests/daemon/sysbroker.sh, bench/sys_vm.sh):
 * several of them, each with a cheap and an expensive cache, and a job
 * that needs memory; with membrokerd the machine's cheapest caches give
 * it, without it each process gives by itself.
 *
 *   mb-caches --tag NAME --cache NAME:PRIORITY:MIB ... [--entry KIB]
 *             [--fill-rate MiBps] [--state-file PATH]
 *
 * One monitor on the automatic source (membroker.ko in the VM), one
 * broker named after --tag with every cache in it, and the library's
 * defaults otherwise: it registers with membrokerd where one runs (or
 * not, with $MEMBROKER_SYSTEM_BROKER=0), and decides alone where none
 * does.  Each cache is filled towards min(its size, its target) at
 * --fill-rate, with entries of --entry KiB, each its own mapping (an
 * mmap threshold below the entry size), so that what a cache gives back
 * leaves the process at once and shows in MemAvailable.
 *
 * Output, one line per event, "MB-CACHES <seconds> <event> key=value...",
 * the time CLOCK_MONOTONIC (the module's clock):
 *   notify state= avail= low= high=          each notification
 *   rec clerk= prio= decision= state= allocated= target= freed=
 *                                            each broker decision, system
 *                                            ones included
 *   sample clerk= prio= bytes= target=       each cache, on SIGUSR1
 * --state-file is rewritten when it changes: "warm=0|1 sys=<state>",
 * warm once every cache holds its size.  SIGTERM or SIGINT ends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "membroker.h"

#define MAX_CACHES	4
#define TICK_MS		50

struct cache {
	char name[64];
	uint32_t priority;
	uint64_t size;
	struct mb_cache *c;
	unsigned long next_key;
};

static struct cache caches[MAX_CACHES];
static int ncaches;
static const char *tag = "caches";
static uint64_t entry = 64 * 1024;
static uint64_t rate = 64ULL << 20;
static const char *state_file;
static struct mb_monitor *mon;
static struct mb_broker *broker;
static uint64_t ring_seq = 1;
static char *value;

static const char *const decisions[] = {
	"stable", "grow", "shrink", "system-shrink", "system-grow",
};

static const char *const sys_states[] = {
	"off", "idle", "searching", "registered",
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct cache *cache_of(const char *clerk)
{
	int i;

	for (i = 0; i < ncaches; i++)
		if (!strcmp(caches[i].name, clerk))
			return &caches[i];
	return NULL;
}

static void on_notify(struct mb_monitor *m, const struct mb_notification *n,
		      void *arg)
{
	(void)m;
	(void)arg;
	printf("MB-CACHES %.6f notify tag=%s state=%s", n->time_ns / 1e9, tag,
	       mb_state_name(n->state));
	printf(" avail=%llu low=%llu high=%llu\n",
	       (unsigned long long)n->available,
	       (unsigned long long)n->low, (unsigned long long)n->high);
}

/* The broker's decisions since last time */
static void print_records(void)
{
	struct mb_broker_record r[32];
	struct cache *c;
	uint64_t missed;
	int i, n;

	do {
		n = mb_ring_read(mb_broker_ring(broker), ring_seq, r, NULL,
				 32, &missed);
		for (i = 0; i < n; i++) {
			c = cache_of(r[i].clerk);
			printf("MB-CACHES %.6f rec tag=%s clerk=%s prio=%u",
			       r[i].time_ns / 1e9, tag, r[i].clerk,
			       c ? c->priority : 0);
			printf(" decision=%s state=%s",
			       r[i].decision < 5 ? decisions[r[i].decision] :
						   "?",
			       mb_state_name(r[i].state));
			printf(" allocated=%llu target=%llu freed=%llu\n",
			       (unsigned long long)r[i].allocated,
			       (unsigned long long)r[i].target,
			       (unsigned long long)r[i].freed);
		}
		ring_seq += (uint64_t)(n > 0 ? n : 0) + missed;
	} while (n > 0);
}

static void print_samples(void)
{
	struct mb_clerk *k;
	double t = now_s();
	int i;

	for (i = 0; i < ncaches; i++) {
		k = mb_cache_clerk(caches[i].c);
		printf("MB-CACHES %.6f sample tag=%s clerk=%s", t, tag,
		       caches[i].name);
		printf(" prio=%u bytes=%llu target=%llu\n",
		       caches[i].priority,
		       (unsigned long long)mb_clerk_bytes(k),
		       (unsigned long long)mb_clerk_target(k));
	}
}

/* Fill each cache towards min(size, target), @budget bytes in all. */
static bool fill(uint64_t budget)
{
	uint64_t bytes, bound, cost = entry + 128;
	bool warm = true;
	char key[96];
	int i;

	for (i = 0; i < ncaches; i++) {
		struct cache *c = &caches[i];
		struct mb_clerk *k = mb_cache_clerk(c->c);

		bound = mb_clerk_target(k) < c->size ? mb_clerk_target(k) :
						       c->size;
		bytes = mb_clerk_bytes(k);
		while (bytes + cost <= bound && budget >= entry) {
			snprintf(key, sizeof(key), "%.63s-%lu", c->name,
				 c->next_key++);
			if (mb_cache_put(c->c, key, strlen(key), value, entry))
				break;
			budget -= entry;
			bytes = mb_clerk_bytes(k);
		}
		warm &= bytes + cost > c->size;
	}
	return warm;
}

static void write_state(bool warm)
{
	static char last[64];
	struct mb_system_status st = { .sz = sizeof(st) };
	char buf[64], tmp[4200];
	FILE *f;

	mb_monitor_system_status(mon, &st);
	snprintf(buf, sizeof(buf), "warm=%d sys=%s\n", warm,
		 st.state < 4 ? sys_states[st.state] : "?");
	if (!state_file || !strcmp(buf, last))
		return;
	strcpy(last, buf);
	snprintf(tmp, sizeof(tmp), "%s.tmp", state_file);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fputs(buf, f);
	if (!fclose(f))
		rename(tmp, state_file);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "cache", required_argument, NULL, 'c' },
		{ "entry", required_argument, NULL, 'e' },
		{ "fill-rate", required_argument, NULL, 'r' },
		{ "state-file", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_broker_opts bo = MB_OPTS(mb_broker_opts, .trim = true);
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000L },
		.it_value = { 0, TICK_MS * 1000000L },
	};
	struct signalfd_siginfo si;
	struct mb_cache_opts co;
	struct pollfd p[3];
	unsigned long mib;
	bool warm = false;
	uint64_t ticks;
	int opt, i, err, tfd, sfd;
	sigset_t ss;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 't':
			tag = optarg;
			break;
		case 'c':
			if (ncaches == MAX_CACHES ||
			    sscanf(optarg, "%63[^:]:%u:%lu",
				   caches[ncaches].name,
				   &caches[ncaches].priority, &mib) != 3) {
				fprintf(stderr, "mb-caches: bad --cache %s\n",
					optarg);
				return 2;
			}
			caches[ncaches++].size = (uint64_t)mib << 20;
			break;
		case 'e':
			entry = strtoull(optarg, NULL, 10) << 10;
			break;
		case 'r':
			rate = strtoull(optarg, NULL, 10) << 20;
			break;
		case 's':
			state_file = optarg;
			break;
		default:
			fputs("usage: mb-caches --tag NAME --cache NAME:PRIO:MIB...\n",
			      stderr);
			fputs("       [--entry KIB] [--fill-rate MiBps] [--state-file PATH]\n",
			      stderr);
			return 2;
		}
	}
	if (!ncaches || !entry || !rate)
		return 2;
	/* each entry its own mapping: what is freed leaves at once */
	mallopt(M_MMAP_THRESHOLD, (int)(entry / 2));
	value = malloc(entry);
	if (!value)
		return 1;
	memset(value, 'c', entry);

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGUSR1);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (sfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &its, NULL)) {
		perror("mb-caches");
		return 1;
	}
	err = mb_monitor_new(&mon, NULL);
	if (!err)
		err = mb_broker_new(&broker, tag, mon, &bo);
	if (!err)
		err = mb_monitor_subscribe(mon, on_notify, NULL);
	for (i = 0; err >= 0 && i < ncaches; i++) {
		co = MB_OPTS(mb_cache_opts, .priority = caches[i].priority,
			     .max_bytes = caches[i].size);
		err = mb_cache_new(&caches[i].c, caches[i].name, &co);
		if (!err)
			err = mb_broker_add_clerk(broker,
						  mb_cache_clerk(caches[i].c));
	}
	if (err < 0) {
		fprintf(stderr, "mb-caches: %s\n", strerror(-err));
		return 1;
	}
	printf("MB-CACHES %.6f start tag=%s pid=%d source=%s\n", now_s(), tag,
	       (int)getpid(), mb_source_name(mb_monitor_source(mon)));
	fflush(stdout);

	for (;;) {
		p[0] = (struct pollfd){ .fd = mb_monitor_get_fd(mon),
					.events = POLLIN };
		p[1] = (struct pollfd){ .fd = tfd, .events = POLLIN };
		p[2] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		if (poll(p, 3, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			mb_monitor_dispatch(mon);
		if (p[1].revents && read(tfd, &ticks, sizeof(ticks)) > 0)
			warm = fill(rate / (1000 / TICK_MS) * ticks);
		if (p[2].revents && read(sfd, &si, sizeof(si)) > 0) {
			if (si.ssi_signo != SIGUSR1)
				break;
			print_samples();
		}
		print_records();
		write_state(warm);
		fflush(stdout);
	}
	print_records();
	mb_broker_free(broker);
	for (i = 0; i < ncaches; i++)
		mb_cache_free(caches[i].c);
	mb_monitor_free(mon);
	free(value);
	return 0;
}
