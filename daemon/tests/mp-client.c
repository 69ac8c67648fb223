// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A real sd-event memory pressure user, for membrokerd's tests and
 * bench: sd_event_add_memory_pressure() (libsystemd 254 or later) reads
 * $MEMORY_PRESSURE_WATCH (and $MEMORY_PRESSURE_WRITE) exactly as a
 * systemd service does; we print each time its handler runs.
 *
 * Output, one line each:
 *   READY                   the source is set up (connected)
 *   PRESSURE <mono_ns>      the handler ran, CLOCK_MONOTONIC
 *   SYNC <n>                answer to "sync"
 *   ERROR <what>            sd_event_add_memory_pressure() failed
 * Commands on stdin: "sync", "quit" (or EOF).  The pressure source has a
 * higher priority than stdin, so pressure that arrived before a "sync"
 * is handled before it is answered.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-event.h>

static unsigned int syncs;

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int on_pressure(sd_event_source *s, void *arg)
{
	(void)s;
	(void)arg;
	printf("PRESSURE %llu\n", mono_ns());
	fflush(stdout);
	return 0;
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *arg)
{
	char line[64];
	ssize_t n;

	(void)revents;
	(void)arg;
	n = read(fd, line, sizeof(line) - 1);
	if (n <= 0 || !strncmp(line, "quit", 4))
		return sd_event_exit(sd_event_source_get_event(s), 0);
	line[n] = '\0';
	if (!strncmp(line, "sync", 4)) {
		printf("SYNC %u\n", ++syncs);
		fflush(stdout);
	}
	return 0;
}

int main(void)
{
	sd_event_source *mp = NULL, *in = NULL;
	sd_event *e = NULL;
	int r;

	r = sd_event_new(&e);
	if (r >= 0)
		r = sd_event_add_memory_pressure(e, &mp, on_pressure, NULL);
	if (r < 0) {
		printf("ERROR sd_event_add_memory_pressure: %s\n",
		       strerror(-r));
		return 1;
	}
	r = sd_event_source_set_priority(mp, SD_EVENT_PRIORITY_IMPORTANT);
	if (r >= 0)
		r = sd_event_add_io(e, &in, 0, EPOLLIN, on_stdin, NULL);
	if (r < 0) {
		printf("ERROR setup: %s\n", strerror(-r));
		return 1;
	}
	printf("READY\n");
	fflush(stdout);
	r = sd_event_loop(e);
	sd_event_source_unref(in);
	sd_event_source_unref(mp);
	sd_event_unref(e);
	return r < 0 ? 1 : 0;
}
