// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A real GMemoryMonitor user, for membrokerd's tests and bench: it
 * prints what GLib delivers.  The environment picks GLib's D-Bus backend
 * (GIO_USE_MEMORY_MONITOR=dbus) and the bus ($DBUS_SYSTEM_BUS_ADDRESS).
 *
 * Output, one line each:
 *   BACKEND <GType name>         the implementation GLib chose
 *   READY                        GLib's proxy is listening (see below)
 *   WARNING <level> <mono_ns>    a low-memory-warning, CLOCK_MONOTONIC
 *   SYNC <n>                     answer to "sync" (below)
 * Commands on stdin: "sync" prints every warning the daemon sent before
 * it answered a D-Bus Ping of ours, then SYNC; "quit" or EOF ends.
 *
 * GLib gives no sign that its proxy to the daemon is set up: it watches
 * the name, and when the name appears builds the proxy asynchronously
 * (AddMatch, GetNameOwner, GetAll, each waiting for the one before), and
 * only then connects its signal handler.  Its watch is not ours: it
 * connects to the bus in a thread of its own and asks StartServiceByName
 * first, so no number of our rounds is sure to cover it (six were not, on
 * a loaded machine: the first warning went unseen).  What it does on the
 * bus is seen, though: a filter on the connection (GLib shares it) notes
 * the answer to the proxy's GetAll, its last call.  One connection
 * delivers in order, so once that answer is in, a round of "Ping the
 * daemon, then run what GLib has queued" lets GLib finish; READY says so.
 */
#include <gio/gio.h>
#include <glib-unix.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LMM_NAME	"org.freedesktop.LowMemoryMonitor"
#define LMM_PATH	"/org/freedesktop/LowMemoryMonitor"

static GDBusConnection *bus;
static GMainLoop *loop;
static unsigned int syncs;
/* the serial of GLib's GetAll to the daemon, then whether it was answered */
static gint getall_serial;
static gint getall_answered;

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void on_warning(GMemoryMonitor *m, GMemoryMonitorWarningLevel level,
		       gpointer data)
{
	(void)m;
	(void)data;
	printf("WARNING %u %llu\n", (unsigned int)level, mono_ns());
	fflush(stdout);
}

/* Ping the daemon, then run everything queued before its answer. */
static gboolean round_trip(void)
{
	GError *err = NULL;
	GVariant *r;

	r = g_dbus_connection_call_sync(bus, LMM_NAME, LMM_PATH,
					"org.freedesktop.DBus.Peer", "Ping",
					NULL, NULL, G_DBUS_CALL_FLAGS_NONE,
					10000, NULL, &err);
	if (!r) {
		printf("ERROR ping: %s\n", err->message);
		fflush(stdout);
		g_error_free(err);
		return FALSE;
	}
	g_variant_unref(r);
	while (g_main_context_iteration(NULL, FALSE))
		;
	return TRUE;
}

/*
 * In GDBus's worker thread, for every message in and out: the proxy's
 * GetAll of the daemon's properties, and its answer (or error).
 */
static GDBusMessage *on_message(GDBusConnection *c, GDBusMessage *msg,
				gboolean incoming, gpointer data)
{
	guint32 serial = (guint32)g_atomic_int_get(&getall_serial);
	const gchar *iface = NULL;
	GVariant *body;

	(void)c;
	(void)data;
	if (!incoming && !serial &&
	    g_dbus_message_get_message_type(msg) ==
	    G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
	    !g_strcmp0(g_dbus_message_get_member(msg), "GetAll") &&
	    !g_strcmp0(g_dbus_message_get_path(msg), LMM_PATH)) {
		body = g_dbus_message_get_body(msg);
		if (body && g_variant_is_of_type(body, G_VARIANT_TYPE("(s)")))
			g_variant_get(body, "(&s)", &iface);
		if (!g_strcmp0(iface, LMM_NAME))
			g_atomic_int_set(&getall_serial,
					 (gint)g_dbus_message_get_serial(msg));
	} else if (incoming && serial &&
		   g_dbus_message_get_reply_serial(msg) == serial) {
		g_atomic_int_set(&getall_answered, 1);
	}
	return msg;
}

static void on_appeared(GDBusConnection *c, const gchar *name,
			const gchar *owner, gpointer data)
{
	(void)c;
	(void)name;
	(void)owner;
	(void)data;
	/*
	 * Until GLib's GetAll is answered: a round, then wait for whatever
	 * GLib has coming next (its watch, its proxy's steps) to wake us.
	 */
	while (!g_atomic_int_get(&getall_answered)) {
		if (!round_trip())
			return;
		if (!g_atomic_int_get(&getall_answered))
			g_main_context_iteration(NULL, TRUE);
	}
	/* the answer is ahead of our Ping's: GLib has run it after this */
	if (!round_trip())
		return;
	printf("READY\n");
	fflush(stdout);
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
	char line[64];
	ssize_t n;

	(void)cond;
	(void)data;
	n = read(fd, line, sizeof(line) - 1);
	if (n <= 0) {
		g_main_loop_quit(loop);
		return G_SOURCE_REMOVE;
	}
	line[n] = '\0';
	/* one command per write from the harness */
	if (!strncmp(line, "sync", 4)) {
		round_trip();
		printf("SYNC %u\n", ++syncs);
		fflush(stdout);
	} else if (!strncmp(line, "quit", 4)) {
		g_main_loop_quit(loop);
		return G_SOURCE_REMOVE;
	}
	return G_SOURCE_CONTINUE;
}

int main(void)
{
	GMemoryMonitor *mon;
	GError *err = NULL;
	guint watch;

	loop = g_main_loop_new(NULL, FALSE);
	mon = g_memory_monitor_dup_default();
	printf("BACKEND %s\n", G_OBJECT_TYPE_NAME(mon));
	fflush(stdout);
	g_signal_connect(mon, "low-memory-warning", G_CALLBACK(on_warning),
			 NULL);
	bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &err);
	if (!bus) {
		printf("ERROR bus: %s\n", err->message);
		return 1;
	}
	g_dbus_connection_add_filter(bus, on_message, NULL, NULL);
	watch = g_bus_watch_name_on_connection(bus, LMM_NAME,
					       G_BUS_NAME_WATCHER_FLAGS_NONE,
					       on_appeared, NULL, NULL, NULL);
	g_unix_fd_add(0, G_IO_IN | G_IO_HUP, on_stdin, NULL);
	g_main_loop_run(loop);
	g_bus_unwatch_name(watch);
	g_object_unref(mon);
	g_object_unref(bus);
	g_main_loop_unref(loop);
	return 0;
}
