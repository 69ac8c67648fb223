// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * org.freedesktop.LowMemoryMonitor on the system bus, as low-memory-monitor
 * serves it: the bus name and interface org.freedesktop.LowMemoryMonitor,
 * the object /org/freedesktop/LowMemoryMonitor, one signal
 * LowMemoryWarning(y level).  GLib's GMemoryMonitor (and through it the
 * desktop portal), Chromium and GJS listen to it.
 *
 * The interface is the vtable below; org.freedesktop.LowMemoryMonitor.xml
 * beside this file is the same interface as introspection data, and the
 * tests check that the daemon's introspection matches it.  sd-bus answers
 * Introspectable, Peer and Properties, and refuses every other call with
 * a D-Bus error.  sd_bus_open_system() honours $DBUS_SYSTEM_BUS_ADDRESS,
 * which is how the tests point the daemon at a bus of their own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"

#define LMM_NAME	"org.freedesktop.LowMemoryMonitor"
#define LMM_PATH	"/org/freedesktop/LowMemoryMonitor"
#define LMM_IFACE	LMM_NAME

struct mbd_bus {
	sd_bus *bus;
	sd_bus_slot *slot;
	struct mbd_bus_stats st;
};

static const sd_bus_vtable mbd_lmm_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_SIGNAL_WITH_NAMES("LowMemoryWarning", "y",
				 SD_BUS_PARAM(level), 0),
	SD_BUS_VTABLE_END
};

/**
 * mbd_bus_open() - connect to the system bus and serve the interface
 * @out: receives the connection
 * @e: the event loop it is attached to
 *
 * The name is requested without queueing: if another process owns it,
 * we do not wait in line behind it.
 *
 * Return: 0; -EEXIST when another process owns the name; -EACCES when
 * the bus policy does not let us own it; the -errno of connecting.  The
 * message for the user is printed here.
 */
int mbd_bus_open(struct mbd_bus **out, sd_event *e)
{
	struct mbd_bus *b;
	int r;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	r = sd_bus_open_system(&b->bus);
	if (r < 0) {
		mbd_log("cannot connect to the system bus: %s "
			"(--no-bus runs without it)", strerror(-r));
		goto fail;
	}
	r = sd_bus_add_object_vtable(b->bus, &b->slot, LMM_PATH, LMM_IFACE,
				     mbd_lmm_vtable, b);
	if (r < 0) {
		mbd_log("cannot add the D-Bus object: %s", strerror(-r));
		goto fail;
	}
	r = sd_bus_request_name(b->bus, LMM_NAME, 0);
	if (r == -EEXIST) {
		mbd_log("the bus name " LMM_NAME " is owned by another process "
			"(low-memory-monitor or another membrokerd?)");
		goto fail;
	}
	if (r < 0) {
		mbd_log("cannot own the bus name " LMM_NAME ": %s%s",
			strerror(-r), r == -EACCES ?
			" (is the D-Bus policy file installed?)" : "");
		goto fail;
	}
	/* losing the bus ends the loop: systemd restarts us */
	r = sd_bus_set_exit_on_disconnect(b->bus, 1);
	if (r >= 0)
		r = sd_bus_attach_event(b->bus, e, SD_EVENT_PRIORITY_NORMAL);
	if (r < 0) {
		mbd_log("cannot attach the bus to the event loop: %s",
			strerror(-r));
		goto fail;
	}
	*out = b;
	return 0;
fail:
	mbd_bus_close(b);
	return r;
}

void mbd_bus_close(struct mbd_bus *b)
{
	if (!b)
		return;
	sd_bus_slot_unref(b->slot);
	if (b->bus) {
		sd_bus_flush(b->bus);
		sd_bus_detach_event(b->bus);
		sd_bus_flush_close_unref(b->bus);
	}
	free(b);
}

static int mbd_bus_level_index(uint8_t level)
{
	switch (level) {
	case MBD_LEVEL_LOW:
		return 0;
	case MBD_LEVEL_MEDIUM:
		return 1;
	case MBD_LEVEL_CRITICAL:
		return 2;
	}
	return -1;
}

/**
 * mbd_bus_emit() - send LowMemoryWarning(@level)
 * @b: the connection
 * @level: 50, 100 or 255
 *
 * Queued on the connection and written by the event loop: a slow bus does
 * not hold the daemon up.
 *
 * Return: 0 or the -errno of queueing it.
 */
int mbd_bus_emit(struct mbd_bus *b, uint8_t level)
{
	int i = mbd_bus_level_index(level);
	int r;

	if (i < 0)
		return -EINVAL;
	r = sd_bus_emit_signal(b->bus, LMM_PATH, LMM_IFACE, "LowMemoryWarning",
			       "y", level);
	if (r < 0) {
		b->st.errors++;
		return r;
	}
	b->st.signals[i]++;
	return 0;
}

void mbd_bus_stats(const struct mbd_bus *b, struct mbd_bus_stats *out)
{
	*out = b->st;
}
