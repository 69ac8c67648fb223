// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Metrics in the Prometheus text format (version 0.0.4, which
 * node_exporter's textfile collector reads), written to
 * <dir>/membroker.prom through a temporary file and a rename, so that
 * the collector never reads half a file.  The same text is what
 * `membrokerctl metrics` prints (control.c).
 *
 * The file is written at once when the state changes or a warning goes
 * out, and otherwise at most once a second while readings come in (a LOW
 * that lasts is re-read several times a second).  The clients' counters
 * change without a reading: every MBD_METRICS_CHECK_US the text is made
 * again and written if it differs from what the file holds.  The file is
 * removed when the daemon stops: stale figures of a daemon that is gone
 * would be lies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"

#define MBD_METRICS_FILE	"membroker.prom"
#define MBD_METRICS_DELAY_US	1000000ULL
#define MBD_METRICS_CHECK_US	5000000ULL

struct mbd_metrics {
	const struct mbd_sources *src;
	char *path;
	char *tmp;
	sd_event_source *timer;
	sd_event_source *check;
	char *written;		/* the text in the file */
	bool pending;
	int last_err;
};

static const char *const mbd_state_names[] = {
	"unknown", "low", "steady", "high",
};

static void mbd_head(FILE *f, const char *name, const char *type,
		     const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void mbd_one(FILE *f, const char *name, const char *type,
		    const char *help, unsigned long long v)
{
	mbd_head(f, name, type, help);
	fprintf(f, "%s %llu\n", name, v);
}

static void mbd_render_follow(FILE *f, const struct mbd_follow_stats *st)
{
	const struct mb_notification *n = &st->last;
	unsigned int s, r;

	mbd_head(f, "membroker_state", "gauge",
		 "The memory state: 1 for the current one, 0 for the others.");
	for (s = 1; s < ARRAY_SIZE(mbd_state_names); s++)
		fprintf(f, "membroker_state{state=\"%s\"} %d\n",
			mbd_state_names[s], n->state == s);
	mbd_one(f, "membroker_available_bytes", "gauge",
		"Memory available (MemAvailable) at the latest reading.",
		n->available);
	mbd_one(f, "membroker_total_bytes", "gauge",
		"Total memory at the latest reading.", n->total);
	mbd_one(f, "membroker_low_threshold_bytes", "gauge",
		"Below this, the state becomes LOW.", n->low);
	mbd_one(f, "membroker_high_threshold_bytes", "gauge",
		"Above this, the state becomes HIGH.", n->high);
	mbd_one(f, "membroker_virtual_low", "gauge",
		"1 while committed memory is near the commit limit.",
		!!(n->flags & MB_FLAG_VIRTUAL_LOW));
	mbd_one(f, "membroker_last_sequence", "gauge",
		"Sequence number of the latest notification.", n->seq);

	/*
	 * The latest reading says who measured it: the kmod source speaks
	 * for /proc/meminfo while the module is unloaded, and says so.
	 */
	mbd_head(f, "membroker_source", "gauge",
		 "Where readings come from: 1 for the source of the latest.");
	fprintf(f, "membroker_source{source=\"%s\"} 1\n",
		n->state ? mb_source_name(n->source) :
		st->source >= 0 ? mb_source_name(st->source) : "none");

	mbd_head(f, "membroker_notifications_total", "counter",
		 "Notifications received, by state and by the reason the "
		 "module gave (none: a source that gives no reason).");
	for (s = 0; s < 4; s++)
		for (r = 0; r < MBD_REASON_SLOTS; r++)
			if (st->by_state_reason[s][r])
				fprintf(f, "membroker_notifications_total"
					"{state=\"%s\",reason=\"%s\"} %llu\n",
					mbd_state_names[s],
					mbd_reason_slot_name(r),
					(unsigned long long)
					st->by_state_reason[s][r]);
	mbd_head(f, "membroker_state_entered_total", "counter",
		 "Times each state was entered.");
	for (s = 1; s < 4; s++)
		fprintf(f, "membroker_state_entered_total{state=\"%s\"} %llu\n",
			mbd_state_names[s],
			(unsigned long long)st->entered[s]);
	mbd_one(f, "membroker_readings_total", "counter",
		"Readings delivered, repeats of a lasting LOW included.",
		st->readings);
	mbd_one(f, "membrokerd_warning_level", "gauge",
		"LowMemoryMonitor level of the latest reading (0: none).",
		st->level);
	mbd_one(f, "membrokerd_last_warning_level", "gauge",
		"Level of the latest warning sent (0: none yet).", st->sent);
	mbd_one(f, "membrokerd_last_warning_seconds", "gauge",
		"CLOCK_MONOTONIC time of the latest warning sent.",
		st->sent_ns / MBD_NSEC_PER_SEC);
}

static void mbd_render_bus(FILE *f, const struct mbd_bus *bus)
{
	static const unsigned int levels[] = { 50, 100, 255 };
	struct mbd_bus_stats st = { 0 };
	unsigned int i;

	if (bus)
		mbd_bus_stats(bus, &st);
	mbd_one(f, "membrokerd_bus_connected", "gauge",
		"1 when org.freedesktop.LowMemoryMonitor is served.", !!bus);
	mbd_head(f, "membrokerd_bus_signals_total", "counter",
		 "LowMemoryWarning signals sent, by level.");
	for (i = 0; i < ARRAY_SIZE(levels); i++)
		fprintf(f, "membrokerd_bus_signals_total{level=\"%u\"} %llu\n",
			levels[i], (unsigned long long)st.signals[i]);
	mbd_one(f, "membrokerd_bus_errors_total", "counter",
		"LowMemoryWarning signals that could not be sent.", st.errors);
}

static void mbd_render_pressure(FILE *f, const struct mbd_pressure *p)
{
	struct mbd_pressure_stats st = { 0 };

	if (p)
		mbd_pressure_stats(p, &st);
	mbd_one(f, "membrokerd_pressure_clients", "gauge",
		"Clients connected to the memory pressure socket.",
		st.clients);
	mbd_one(f, "membrokerd_pressure_clients_accepted_total", "counter",
		"Connections to the memory pressure socket.", st.accepted);
	mbd_one(f, "membrokerd_pressure_clients_refused_total", "counter",
		"Connections closed at once: too many clients.", st.refused);
	mbd_one(f, "membrokerd_pressure_events_total", "counter",
		"Pressure events sent to every client.", st.pulses);
	mbd_one(f, "membrokerd_pressure_writes_total", "counter",
		"Events written to a client.", st.writes);
	mbd_one(f, "membrokerd_pressure_dropped_total", "counter",
		"Events a client had no room for (it had not read the last).",
		st.dropped);
}

static void mbd_render_control(FILE *f, const struct mbd_control *c)
{
	struct mbd_control_stats st = { 0 };

	if (c)
		mbd_control_stats(c, &st);
	mbd_one(f, "membrokerd_control_clients", "gauge",
		"Clients connected to the control socket.", st.clients);
	mbd_one(f, "membrokerd_control_requests_total", "counter",
		"Requests answered on the control socket.", st.requests);
	mbd_one(f, "membrokerd_control_errors_total", "counter",
		"Requests answered with an error.", st.errors);
	mbd_one(f, "membrokerd_control_dropped_total", "counter",
		"Control clients disconnected for not reading replies.",
		st.dropped);
}

static void mbd_render_sys(FILE *f, const struct mbd_sys *sys)
{
	static const char *const phases[] = {
		"idle", "polling", "asking", "settling",
	};
	struct mbd_sys_stats st = { 0 };
	unsigned int i;

	if (sys)
		mbd_sys_stats(sys, &st);
	mbd_one(f, "membrokerd_sys_clients", "gauge",
		"Processes registered with the system broker.", st.clients);
	mbd_one(f, "membrokerd_sys_clerks", "gauge",
		"Clerks they registered.", st.clerks);
	mbd_one(f, "membrokerd_sys_bytes", "gauge",
		"Bytes those clerks hold, as last reported.", st.bytes);
	mbd_one(f, "membrokerd_sys_registrations_total", "counter",
		"Registrations accepted.", st.registered);
	mbd_one(f, "membrokerd_sys_gone_total", "counter",
		"Registered processes that went away (forgotten).", st.gone);
	mbd_one(f, "membrokerd_sys_refused_total", "counter",
		"Registrations and reports refused.", st.refused);
	mbd_head(f, "membrokerd_sys_steps_total", "counter",
		 "Steps of the system broker: shrink on LOW, grow on HIGH.");
	fprintf(f, "membrokerd_sys_steps_total{kind=\"shrink\"} %llu\n",
		(unsigned long long)st.steps[0]);
	fprintf(f, "membrokerd_sys_steps_total{kind=\"grow\"} %llu\n",
		(unsigned long long)st.steps[1]);
	mbd_one(f, "membrokerd_sys_asked_bytes_total", "counter",
		"Bytes asked of clerks on LOW.", st.asked);
	mbd_one(f, "membrokerd_sys_freed_bytes_total", "counter",
		"Bytes clerks gave back when asked.", st.freed);
	mbd_one(f, "membrokerd_sys_granted_bytes_total", "counter",
		"Bytes clerks were let grow back on HIGH.", st.granted);
	mbd_one(f, "membrokerd_sys_skipped_total", "counter",
		"Times a client was passed over for not answering in time.",
		st.skipped);
	mbd_one(f, "membrokerd_sys_shortfall_bytes", "gauge",
		"What the latest shrink step was to cover.", st.shortfall);
	mbd_head(f, "membrokerd_sys_phase", "gauge",
		 "Where the system broker is: 1 for the current phase.");
	for (i = 0; i < ARRAY_SIZE(phases); i++)
		fprintf(f, "membrokerd_sys_phase{phase=\"%s\"} %d\n",
			phases[i], st.phase == i);
}

/**
 * mbd_metrics_render() - the metrics, as text
 * @src: where the figures are
 * @text: receives the text, to be freed by the caller
 * @len: receives its length
 *
 * Return: 0 or -ENOMEM.
 */
int mbd_metrics_render(const struct mbd_sources *src, char **text,
		       size_t *len)
{
	struct mbd_follow_stats st;
	FILE *f;

	f = open_memstream(text, len);
	if (!f)
		return -ENOMEM;
	mbd_follow_stats(src->follow, &st);
	mbd_render_follow(f, &st);
	mbd_render_bus(f, src->bus);
	mbd_render_pressure(f, src->pressure);
	mbd_render_control(f, src->control);
	mbd_render_sys(f, src->sys);
	if (fclose(f)) {
		free(*text);
		*text = NULL;
		return -ENOMEM;
	}
	return 0;
}

/**
 * mbd_metrics_write() - write the file now
 * @m: the metrics writer
 *
 * Return: 0 or -errno; the message is printed once per kind of failure.
 */
int mbd_metrics_write(struct mbd_metrics *m)
{
	char *text = NULL;
	size_t len = 0, off = 0;
	ssize_t n;
	int fd, r;

	m->pending = false;
	sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
	r = mbd_metrics_render(m->src, &text, &len);
	if (r < 0)
		goto out;
	if (m->written && !strcmp(m->written, text) && !m->last_err)
		goto out;	/* nothing new */
	fd = open(m->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			break;
		}
		off += n;
	}
	if (close(fd) && !r)
		r = -errno;
	if (!r && rename(m->tmp, m->path))
		r = -errno;
	if (r) {
		unlink(m->tmp);
	} else {
		free(m->written);
		m->written = text;
		text = NULL;
	}
out:
	free(text);
	if (r && r != m->last_err)
		mbd_log("cannot write %s: %s", m->path, strerror(-r));
	m->last_err = r;
	return r;
}

static int mbd_metrics_on_timer(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)s;
	(void)usec;
	mbd_metrics_write(arg);
	return 0;
}

static int mbd_metrics_on_check(sd_event_source *s, uint64_t usec, void *arg)
{
	(void)usec;
	mbd_metrics_write(arg);
	sd_event_source_set_time_relative(s, MBD_METRICS_CHECK_US);
	return 0;
}

/**
 * mbd_metrics_changed() - figures changed
 * @arg: the struct mbd_metrics
 * @urgent: write now (the state changed, a warning went out); else
 *	within a second
 */
void mbd_metrics_changed(void *arg, bool urgent)
{
	struct mbd_metrics *m = arg;

	if (urgent) {
		mbd_metrics_write(m);
		return;
	}
	if (m->pending)
		return;
	m->pending = true;
	sd_event_source_set_time_relative(m->timer, MBD_METRICS_DELAY_US);
	sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
}

/**
 * mbd_metrics_open() - write metrics into @dir
 * @out: receives the writer
 * @e: the event loop
 * @dir: the directory; it must exist and be writable
 * @src: where the figures are; must outlive the writer
 *
 * Writes the file once, so that a directory we cannot write to is found
 * at start.
 *
 * Return: 0 or -errno; the message is printed here.
 */
int mbd_metrics_open(struct mbd_metrics **out, sd_event *e, const char *dir,
		     const struct mbd_sources *src)
{
	struct mbd_metrics *m;
	int r;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->src = src;
	r = -ENOMEM;
	if (asprintf(&m->path, "%s/" MBD_METRICS_FILE, dir) < 0) {
		m->path = NULL;
		goto fail;
	}
	if (asprintf(&m->tmp, "%s/." MBD_METRICS_FILE ".tmp", dir) < 0) {
		m->tmp = NULL;
		goto fail;
	}
	r = sd_event_add_time_relative(e, &m->timer, CLOCK_MONOTONIC,
				       MBD_METRICS_DELAY_US, 0,
				       mbd_metrics_on_timer, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(e, &m->check, CLOCK_MONOTONIC,
					       MBD_METRICS_CHECK_US, 0,
					       mbd_metrics_on_check, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->check, SD_EVENT_ON);
	if (r < 0) {
		mbd_log("cannot add a timer: %s", strerror(-r));
		goto fail;
	}
	r = mbd_metrics_write(m);
	if (r < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	mbd_metrics_close(m);
	return r;
}

void mbd_metrics_close(struct mbd_metrics *m)
{
	if (!m)
		return;
	sd_event_source_disable_unref(m->timer);
	sd_event_source_disable_unref(m->check);
	free(m->written);
	if (m->path)
		unlink(m->path);
	free(m->path);
	free(m->tmp);
	free(m);
}
