// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl: where readings come from.  The module is asked directly
 * (mb_kmod_*) because only it has a configuration and a history; when it
 * is not loaded and the user did not insist on it, the library's monitor
 * picks the best source this machine has.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

/*
 * The source comes from -s, else from $MEMBROKER_SOURCE.  Called once the
 * command line is read, since -s may also follow the command.  The variable is
 * then removed so that the library's automatic selection, which also reads
 * it, cannot override an explicit -s.
 */
int ctl_pick_source(struct ctl *c)
{
	const char *opt = c->source_arg;
	const char *env = getenv("MEMBROKER_SOURCE");
	const char *name = opt ? opt : env;
	int src = MB_SOURCE_AUTO;

	if (name && *name) {
		src = mb_source_parse(name);
		if (src < 0)
			return ctl_usage_error(NULL, "unknown source '%s'%s",
					       name,
					       opt ? "" : " in $MEMBROKER_SOURCE");
	}
	if (env && unsetenv("MEMBROKER_SOURCE"))
		return ctl_runtime_error(errno, "unsetenv");
	c->source = src;
	return CTL_EXIT_OK;
}

/* Return: a CTL_EXIT_* status, the reason printed when not OK */
int ctl_open(struct ctl *c)
{
	struct mb_monitor_opts opts;
	int err;

	err = ctl_pick_source(c);
	if (err)
		return err;
	if (c->source == MB_SOURCE_AUTO || c->source == MB_SOURCE_KMOD) {
		err = mb_kmod_open(&c->kmod);
		if (!err) {
			c->in_use = MB_SOURCE_KMOD;
			return CTL_EXIT_OK;
		}
		c->kmod = NULL;
		if (err == -ENOENT && c->source == MB_SOURCE_KMOD)
			return ctl_runtime_error(0,
				"the membroker module is not loaded (try: modprobe membroker)");
		if (err != -ENOENT)
			return ctl_runtime_error(err, "cannot talk to the membroker module");
		c->no_module = true;
	}

	opts = MB_OPTS(mb_monitor_opts, .source = c->source);
	err = mb_monitor_new(&c->mon, &opts);
	if (err) {
		c->mon = NULL;
		return ctl_runtime_error(err, "cannot open the %s source",
					 mb_source_name(c->source));
	}
	err = mb_monitor_source(c->mon);
	if (err < 0)
		return ctl_runtime_error(err, "cannot tell which source is in use");
	c->in_use = err;
	return CTL_EXIT_OK;
}

/*
 * For the commands only the module can answer (config, history): say why
 * they cannot run instead of pretending with another source.
 */
int ctl_open_kmod_only(struct ctl *c, const char *cmd)
{
	int err;

	err = ctl_pick_source(c);
	if (err)
		return err;
	if (c->source != MB_SOURCE_AUTO && c->source != MB_SOURCE_KMOD)
		return ctl_runtime_error(0,
			"%s needs the membroker module; the %s source has no %s",
			cmd, mb_source_name(c->source), cmd);
	err = mb_kmod_open(&c->kmod);
	if (err == -ENOENT) {
		c->kmod = NULL;
		return ctl_runtime_error(0,
			"%s needs the membroker module, which is not loaded (try: modprobe membroker)",
			cmd);
	}
	if (err) {
		c->kmod = NULL;
		return ctl_runtime_error(err, "cannot talk to the membroker module");
	}
	c->in_use = MB_SOURCE_KMOD;
	return CTL_EXIT_OK;
}

void ctl_close(struct ctl *c)
{
	mb_kmod_close(c->kmod);
	c->kmod = NULL;
	mb_monitor_free(c->mon);
	c->mon = NULL;
}

/* "kmod", or "psi (membroker module not loaded)" after a fallback */
const char *ctl_source_note(const struct ctl *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", mb_source_name(c->in_use),
		 c->no_module ? " (membroker module not loaded)" : "");
	return buf;
}

int ctl_get_state(struct ctl *c, struct mb_notification *out)
{
	int err;

	if (c->kmod)
		return mb_kmod_get_state(c->kmod, out);

	/* let the monitor take in whatever its source has pending first */
	err = mb_monitor_dispatch(c->mon);
	if (err < 0)
		return err;
	return mb_monitor_get_state(c->mon, out);
}

static void ctl_deliver(struct ctl *c, const struct mb_notification *n,
			bool resync)
{
	if (c->event_fn)
		c->event_fn(n, resync, c->event_arg);
}

static void ctl_monitor_cb(struct mb_monitor *mon,
			   const struct mb_notification *n, void *arg)
{
	(void)mon;
	ctl_deliver(arg, n, false);
}

int ctl_events_start(struct ctl *c,
		     void (*fn)(const struct mb_notification *n, bool resync,
				void *arg),
		     void *arg)
{
	int err;

	c->event_fn = fn;
	c->event_arg = arg;
	if (c->kmod)
		return mb_kmod_subscribe(c->kmod);
	err = mb_monitor_subscribe(c->mon, ctl_monitor_cb, c);
	return err < 0 ? err : 0;
}

int ctl_events_fd(const struct ctl *c)
{
	return c->kmod ? mb_kmod_get_fd(c->kmod) : mb_monitor_get_fd(c->mon);
}

/*
 * The module numbers its notifications: a gap, ENOBUFS on the socket, or
 * a datagram that could not be read whole means some were lost, and the
 * only honest answer is to fetch the current state and flag it as a
 * resynchronisation.
 */
static int ctl_kmod_resync(struct ctl *c)
{
	struct mb_notification n;
	int err;

	err = mb_kmod_get_state(c->kmod, &n);
	if (err)
		return err;
	c->last_seq = n.seq;
	ctl_deliver(c, &n, true);
	return 1;
}

static int ctl_kmod_dispatch(struct ctl *c)
{
	struct mb_notification n;
	int count = 0;
	int err;

	for (;;) {
		err = mb_kmod_recv(c->kmod, &n);
		/* lost, cut short or unreadable: all mean "resynchronise" */
		if (err == -ENOBUFS || err == -EMSGSIZE || err == -EBADMSG) {
			err = ctl_kmod_resync(c);
			if (err < 0)
				return err;
			count += err;
			continue;
		}
		if (err <= 0)
			return err < 0 ? err : count;
		/* old news: already covered by a resynchronisation */
		if (c->last_seq && n.seq <= c->last_seq)
			continue;
		ctl_deliver(c, &n, c->last_seq && n.seq != c->last_seq + 1);
		c->last_seq = n.seq;
		count++;
	}
}

/* Return: the number of notifications delivered, or -errno */
int ctl_events_dispatch(struct ctl *c)
{
	if (c->kmod)
		return ctl_kmod_dispatch(c);
	return mb_monitor_dispatch(c->mon);
}
