/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * membrokerd: what its files share.
 *
 * One sd-event loop runs everything.  follow.c turns the monitor's
 * notifications into a warning level and asks warn.c when to speak;
 * whenever it should, the level goes out on every interface: bus.c (the
 * org.freedesktop.LowMemoryMonitor signal), pressure.c (systemd's memory
 * pressure socket); and every reading goes to sysbroker.c, the system
 * broker, which decides for the processes registered with it (order.c
 * does its arithmetic).  metrics.c writes what happened for node_exporter,
 * control.c serves the control socket (membrokerctl metrics, the system
 * broker's clients).  main.c only parses the options, wires the pieces
 * together and unwinds them.
 */
#ifndef MEMBROKERD_H
#define MEMBROKERD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "membroker.h"
#include "linux/membroker.h"

struct sd_event;
struct mbd_control;
struct mbd_sys;

#define MBD_NAME		"membrokerd"
#define MBD_VERSION_STRING	"0.1.0"

/* Exit statuses (membrokerd(8)) */
#define MBD_EXIT_OK		0
#define MBD_EXIT_FAILURE	1	/* could not start, or failed */
#define MBD_EXIT_USAGE		2	/* bad command line */
#define MBD_EXIT_BUS_NAME	3	/* another process owns the bus name */
#define MBD_EXIT_SOCKET		4	/* a live process serves a socket path */

#define MBD_NSEC_PER_SEC	1000000000ULL
#define MBD_NSEC_PER_MSEC	1000000ULL

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define __printf(a, b)		__attribute__((format(printf, a, b)))

/* The levels of org.freedesktop.LowMemoryMonitor's LowMemoryWarning */
#define MBD_LEVEL_NONE		0	/* no warning: silence */
#define MBD_LEVEL_LOW		50	/* free caches */
#define MBD_LEVEL_MEDIUM	100	/* quit or free what can be rebuilt */
#define MBD_LEVEL_CRITICAL	255	/* the kernel is about to kill */

/* ---- level.c: from a reading to a level, and when to say it ---- */

/**
 * struct mbd_level_cfg - how a reading maps to a level
 * @medium_pct: MEDIUM below this percentage of the low threshold
 * @critical_pct: CRITICAL below this percentage of the low threshold
 */
struct mbd_level_cfg {
	uint32_t medium_pct;
	uint32_t critical_pct;
};

uint8_t mbd_level_of(const struct mbd_level_cfg *cfg,
		     const struct mb_notification *n);
const char *mbd_level_name(uint8_t level);

/**
 * struct mbd_warn - when a level is (re)sent
 * @repeat_ns: least spacing of two signals that escalate nothing while
 *	LOW lasts
 * @gap_ns: the same after a recovery (min(1 s, @repeat_ns))
 * @cur: the level of the latest reading
 * @sent: the level of the latest signal
 * @recovered: a reading that was not LOW came since that signal
 * @sent_ns: when it went out (CLOCK_MONOTONIC); 0: never
 */
struct mbd_warn {
	uint64_t repeat_ns;
	uint64_t gap_ns;
	uint8_t cur;
	uint8_t sent;
	bool recovered;
	uint64_t sent_ns;
};

void mbd_warn_init(struct mbd_warn *w, uint64_t repeat_ns);
uint8_t mbd_warn_reading(struct mbd_warn *w, uint8_t level, uint64_t now);
uint8_t mbd_warn_timer(struct mbd_warn *w, uint64_t now);
uint64_t mbd_warn_next(const struct mbd_warn *w);

/* ---- unix.c: the daemon's AF_UNIX sockets ---- */

/**
 * struct mbd_unix - a listening socket and the path it was bound to
 * @fd: the socket, -1 when closed
 * @dev: the device of the socket file
 * @ino: its inode, to tell whether the path is still ours at exit
 * @path: the path
 */
struct mbd_unix {
	int fd;
	dev_t dev;
	ino_t ino;
	char path[108];
};

int mbd_unix_listen(struct mbd_unix *u, const char *path, int type,
		    unsigned int mode);
void mbd_unix_close(struct mbd_unix *u);

/* ---- bus.c: org.freedesktop.LowMemoryMonitor ---- */

struct mbd_bus;
struct mbd_bus_stats {
	uint64_t signals[3];	/* by level: 50, 100, 255 */
	uint64_t errors;	/* signals that could not be sent */
};

int mbd_bus_open(struct mbd_bus **out, struct sd_event *e);
void mbd_bus_close(struct mbd_bus *b);
int mbd_bus_emit(struct mbd_bus *b, uint8_t level);
void mbd_bus_stats(const struct mbd_bus *b, struct mbd_bus_stats *out);

/* ---- pressure.c: systemd's memory pressure socket ---- */

struct mbd_pressure;
struct mbd_pressure_stats {
	uint64_t clients;	/* connected now */
	uint64_t accepted;	/* connections accepted */
	uint64_t refused;	/* connections over the limit, closed */
	uint64_t pulses;	/* pressure events sent to all clients */
	uint64_t writes;	/* events written to a client */
	uint64_t dropped;	/* events a client had no room for */
};

int mbd_pressure_open(struct mbd_pressure **out, struct sd_event *e,
		      const char *path, unsigned int max_clients);
void mbd_pressure_close(struct mbd_pressure *p);
void mbd_pressure_pulse(struct mbd_pressure *p, uint8_t level);
void mbd_pressure_set_level(struct mbd_pressure *p, uint8_t level);
void mbd_pressure_stats(const struct mbd_pressure *p,
			struct mbd_pressure_stats *out);

/* ---- follow.c: the monitor, the levels, the signals ---- */

struct mbd_follow;

/* reasons 0..MEMBROKER_REASON_MAX, and one slot for those we do not know */
#define MBD_REASON_SLOTS	(MEMBROKER_REASON_MAX + 2)

unsigned int mbd_reason_slot(uint32_t reason);
const char *mbd_reason_slot_name(unsigned int slot);

/**
 * struct mbd_follow_stats - what the monitor delivered
 * @last: the latest reading
 * @readings: readings delivered, repeats of the LOW state included
 * @by_state_reason: new notifications (not repeats), by state (0..3) and
 *	reason (0..MEMBROKER_REASON_MAX, the last slot for unknown ones)
 * @entered: times each state (0..3) was entered
 * @level: the level of the latest reading
 * @sent: the level last signalled, and @sent_ns when
 * @sent_ns: CLOCK_MONOTONIC, 0 for never
 * @source: enum mb_source_type in use, or -errno
 */
struct mbd_follow_stats {
	struct mb_notification last;
	uint64_t readings;
	uint64_t by_state_reason[4][MBD_REASON_SLOTS];
	uint64_t entered[4];
	uint8_t level;
	uint8_t sent;
	uint64_t sent_ns;
	int source;
};

/**
 * struct mbd_follow_opts - how to follow the monitor
 * @mon: monitor options (source, thresholds, root)
 * @level: the mapping of readings to levels
 * @repeat_ns: re-send interval of a level that lasts
 * @verbose: print one line per signal on stderr
 */
struct mbd_follow_opts {
	struct mb_monitor_opts mon;
	struct mbd_level_cfg level;
	uint64_t repeat_ns;
	bool verbose;
};

int mbd_follow_open(struct mbd_follow **out, struct sd_event *e,
		    const struct mbd_follow_opts *opts);
void mbd_follow_close(struct mbd_follow *f);
void mbd_follow_attach(struct mbd_follow *f, struct mbd_bus *bus,
		       struct mbd_pressure *pressure,
		       void (*changed)(void *arg, bool urgent), void *arg);
void mbd_follow_attach_sys(struct mbd_follow *f, struct mbd_sys *sys);
int mbd_follow_start(struct mbd_follow *f);
void mbd_follow_stats(const struct mbd_follow *f,
		      struct mbd_follow_stats *out);
int mbd_follow_fake_push(struct mbd_follow *f,
			 const struct mb_notification *n);

/* ---- metrics.c: the Prometheus text ---- */

struct mbd_metrics;

/**
 * struct mbd_sources - where metrics.c reads the figures
 * @follow: the monitor's side; never NULL
 * @bus: NULL without a bus
 * @pressure: NULL without a pressure socket
 * @control: NULL without a control socket
 * @sys: NULL without a control socket (the system broker lives there)
 */
struct mbd_sources {
	const struct mbd_follow *follow;
	const struct mbd_bus *bus;
	const struct mbd_pressure *pressure;
	const struct mbd_control *control;
	const struct mbd_sys *sys;
};

int mbd_metrics_render(const struct mbd_sources *src, char **text,
		       size_t *len);
int mbd_metrics_open(struct mbd_metrics **out, struct sd_event *e,
		     const char *dir, const struct mbd_sources *src);
void mbd_metrics_close(struct mbd_metrics *m);
void mbd_metrics_changed(void *arg, bool urgent);
int mbd_metrics_write(struct mbd_metrics *m);

/* ---- control.c: the control socket ---- */

struct mbd_control;
struct mbd_control_stats {
	uint64_t clients;	/* connected now */
	uint64_t accepted;	/* connections accepted */
	uint64_t requests;	/* requests answered */
	uint64_t errors;	/* requests answered with an error */
	uint64_t dropped;	/* clients disconnected for not reading */
};

int mbd_control_open(struct mbd_control **out, struct sd_event *e,
		     const char *path, const struct mbd_sources *src,
		     struct mbd_follow *follow, struct mbd_sys *sys, bool fake);
void mbd_control_close(struct mbd_control *c);
void mbd_control_stats(const struct mbd_control *c,
		       struct mbd_control_stats *out);

/* ---- order.c: the system broker's arithmetic ---- */

/**
 * struct mbd_cand - one clerk in the system broker's order
 * @client: its client's number (for ties)
 * @clerk: its id on that client's connection
 * @priority: 0..100
 * @shrinkable: it has a shrink callback
 * @excluded: its client did not answer: it gets nothing
 * @pool: index of its pool in the room array of mbd_order_assign()
 * @bytes: what it holds
 * @taken: what the daemon took from it and has not let grow back
 * @ask: out: what it is to give back
 * @grant: out: what it may grow by
 * @sent: the caller's: its part was sent
 */
struct mbd_cand {
	uint32_t client;
	uint32_t clerk;
	uint32_t priority;
	bool shrinkable;
	bool excluded;
	bool sent;
	size_t pool;
	uint64_t bytes;
	uint64_t taken;
	uint64_t ask;
	uint64_t grant;
};

uint64_t mbd_hysteresis(uint64_t low, uint64_t high, uint64_t configured);
uint64_t mbd_shortfall(const struct mb_notification *n, uint64_t h,
		       uint64_t freed_since);
void mbd_order_cheap_first(struct mbd_cand *c, size_t n);
void mbd_order_dear_first(struct mbd_cand *c, size_t n);
uint64_t mbd_order_assign(struct mbd_cand *c, size_t n, uint64_t *room,
			  uint64_t need);
uint64_t mbd_order_grant(struct mbd_cand *c, size_t n, uint64_t budget);

/* ---- sysbroker.c: the system broker ---- */

struct mbd_sys;
struct mbd_sclient;
struct mbd_cclient;

/**
 * struct mbd_sys_opts - the system broker's timing (no configuration is
 * needed: these are the defaults' knobs, for tests and odd machines)
 * @answer_ns: how long a client has to answer a request before the step
 *	goes on without it
 * @settle_ns: after a step, how long to wait for a reading that shows its
 *	effect before deciding on the last one and what was freed since
 * @report_ms: the least spacing of reports asked of clients
 */
struct mbd_sys_opts {
	uint64_t answer_ns;
	uint64_t settle_ns;
	uint32_t report_ms;
};

/**
 * struct mbd_sys_stats - what the system broker did
 * @clients: registered now
 * @clerks: their clerks
 * @bytes: what those hold, as last reported
 * @registered: registrations accepted
 * @gone: clients that went away (their clerks forgotten)
 * @refused: registrations or reports refused (limits, bad records)
 * @steps: steps taken, [0] shrink (LOW), [1] grow (HIGH)
 * @asked: bytes asked of clerks
 * @freed: bytes they gave back
 * @granted: bytes of growth granted on HIGH
 * @skipped: clients passed over for not answering in time
 * @shortfall: the last shrink step's shortfall
 * @phase: 0 idle, 1 polling, 2 asking, 3 settling
 */
struct mbd_sys_stats {
	uint64_t clients;
	uint64_t clerks;
	uint64_t bytes;
	uint64_t registered;
	uint64_t gone;
	uint64_t refused;
	uint64_t steps[2];
	uint64_t asked;
	uint64_t freed;
	uint64_t granted;
	uint64_t skipped;
	uint64_t shortfall;
	uint32_t phase;
};

int mbd_sys_open(struct mbd_sys **out, struct sd_event *e,
		 const struct mbd_sys_opts *opts);
void mbd_sys_close(struct mbd_sys *s);
void mbd_sys_reading(struct mbd_sys *s, const struct mb_notification *n,
		     uint64_t hysteresis);
int mbd_sys_register(struct mbd_sys *s, struct mbd_cclient *cl,
		     const struct ucred *cred, const void *p, size_t len,
		     struct mbd_sclient **out, void *reply, size_t *rlen);
int mbd_sys_report(struct mbd_sclient *sc, const void *p, size_t len);
void mbd_sys_answer(struct mbd_sclient *sc, uint16_t type, uint32_t id,
		    int32_t status, uint32_t flags, const void *p, size_t len);
void mbd_sys_gone(struct mbd_sclient *sc);
typedef int (*mbd_emit_fn)(void *arg, const void *item, size_t len);
int mbd_sys_clerks(struct mbd_sys *s, uid_t uid, mbd_emit_fn emit,
		   void *arg);
int mbd_sys_decisions(struct mbd_sys *s, uid_t uid, uint64_t from,
		      mbd_emit_fn emit, void *arg);
void mbd_sys_stats(const struct mbd_sys *s, struct mbd_sys_stats *out);

/* control.c: a daemon request to a client (MBD_MSG_POLL, MBD_MSG_ASK) */
int mbd_control_request(struct mbd_cclient *cl, uint16_t type, uint32_t id,
			const void *p, size_t len);

/* ---- main.c ---- */

__printf(1, 2) void mbd_log(const char *fmt, ...);
uint64_t mbd_now_ns(void);

#endif /* MEMBROKERD_H */
