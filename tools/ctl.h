/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * membrokerctl: what the command files share.  The tool talks to the
 * membroker module through mb_kmod_*() when it is loaded and falls back to
 * the library's resource monitor otherwise; everything here hides which of
 * the two is in use from the commands that do not care.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct pollfd;
struct mbd_clerk_row;

#include "membroker.h"

/* Exit statuses scripts can rely on (documented in membrokerctl(8)) */
#define CTL_EXIT_OK		0	/* done, or stopped as asked */
#define CTL_EXIT_RUNTIME	1	/* the system said no */
#define CTL_EXIT_USAGE		2	/* the command line was wrong */
#define CTL_EXIT_TIMEOUT	3	/* watch: --timeout before --count */

#define CTL_NAME		"membrokerctl"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define __printf(a, b)		__attribute__((format(printf, a, b)))

/**
 * struct ctl - one invocation
 * @json:	 -j: machine-readable output
 * @source_arg: -s as given (before or after the command), or NULL
 * @source:	 the enum mb_source_type asked for (-s, $MEMBROKER_SOURCE)
 * @kmod:	 connection to the module, or NULL
 * @mon:	 fallback monitor, or NULL
 * @in_use:	 enum mb_source_type actually delivering readings
 * @no_module:	 automatic selection found the module not loaded
 * @event_fn:	 where ctl_events_dispatch() hands notifications
 * @event_arg:	 its argument
 * @last_seq:	 sequence number of the last module notification seen
 * @out_gone:	 watch/top stopped because the reader of stdout went away
 */
struct ctl {
	bool json;
	const char *source_arg;
	int source;
	struct mb_kmod *kmod;
	struct mb_monitor *mon;
	int in_use;
	bool no_module;
	void (*event_fn)(const struct mb_notification *n, bool resync,
			 void *arg);
	void *event_arg;
	uint64_t last_seq;
	bool out_gone;
};

/* -j, -h and -s are accepted before and after the command */
#define CTL_COMMON_OPTS		"jhs:"

/* membrokerctl.c */
__printf(2, 3) int ctl_usage_error(const char *cmd, const char *fmt, ...);
__printf(2, 3) int ctl_runtime_error(int err, const char *fmt, ...);
int ctl_bad_value(const char *cmd, const char *what, const char *expect,
		  const char *val);
int ctl_getopt_error(const char *cmd, char **argv, int optopt_val);
bool ctl_is_help(const char *arg);

/* ctl_src.c: opening the module or the monitor, reading state */
int ctl_pick_source(struct ctl *c);
int ctl_open(struct ctl *c);
int ctl_open_kmod_only(struct ctl *c, const char *cmd);
void ctl_close(struct ctl *c);
const char *ctl_source_note(const struct ctl *c, char *buf, size_t len);
int ctl_get_state(struct ctl *c, struct mb_notification *out);
int ctl_events_start(struct ctl *c,
		     void (*fn)(const struct mb_notification *n, bool resync,
				void *arg),
		     void *arg);
int ctl_events_fd(const struct ctl *c);
int ctl_events_dispatch(struct ctl *c);

/* ctl_fmt.c: parsing and printing figures */
const char *ctl_reason_name(uint32_t reason);
void ctl_fmt_size(char *buf, size_t len, uint64_t bytes);
void ctl_fmt_mono(char *buf, size_t len, uint64_t ns);
void ctl_fmt_wall(char *buf, size_t len, uint64_t mono_ns);
void ctl_fmt_flags(char *buf, size_t len, uint32_t flags);
int ctl_parse_size(const char *s, uint64_t *out);
int ctl_parse_u32(const char *s, uint32_t *out);
int ctl_parse_seconds(const char *s, uint64_t *out_ns);
void ctl_json_str(FILE *f, const char *s);
void ctl_print_line(FILE *f, const struct mb_notification *n);
void ctl_print_json_fields(FILE *f, const struct mb_notification *n);
void ctl_print_json(FILE *f, const struct mb_notification *n, bool resync);

/* ctl_loop.c: signals and time for the commands that wait */
uint64_t ctl_now_ns(void);
int ctl_signals_open(const int *sigs, size_t n);
int ctl_signal_read(int sfd);
int ctl_poll_timeout(uint64_t deadline_ns);
void ctl_output_poll_init(struct pollfd *pfd);
bool ctl_output_gone(struct pollfd *pfd);

/* ctl_daemon.c: membrokerd's control socket */
const char *ctl_daemon_path(const char *arg);
int ctl_daemon_connect(const char *path);
int ctl_daemon_list(int fd, uint16_t type, const void *req, size_t len,
		    void (*item)(const void *p, size_t size, void *arg),
		    void *arg);

/* ctl_clerks.c: the system broker's clerks, also for top */
int ctl_sys_clerks(const char *path, struct mbd_clerk_row **out, size_t *n);
void ctl_sys_print(FILE *f, const struct mbd_clerk_row *r, size_t n,
		   size_t max, int cols);

/* ctl_term.c: the terminal for top */
struct ctl_term;
int ctl_term_open(struct ctl_term **out);
void ctl_term_close(struct ctl_term *t);
void ctl_term_suspend(const struct ctl_term *t);
int ctl_term_resume(const struct ctl_term *t);
bool ctl_term_interactive(const struct ctl_term *t);
bool ctl_term_keys(const struct ctl_term *t);
void ctl_term_size(const struct ctl_term *t, int *rows, int *cols);

/* the commands; each returns a CTL_EXIT_* status */
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_watch(struct ctl *c, int argc, char **argv);
int cmd_config(struct ctl *c, int argc, char **argv);
int cmd_history(struct ctl *c, int argc, char **argv);
int cmd_top(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);
int cmd_clerks(struct ctl *c, int argc, char **argv);
int cmd_decisions(struct ctl *c, int argc, char **argv);

extern const char cmd_status_usage[];
extern const char cmd_watch_usage[];
extern const char cmd_config_usage[];
extern const char cmd_history_usage[];
extern const char cmd_top_usage[];
extern const char cmd_metrics_usage[];
extern const char cmd_clerks_usage[];
extern const char cmd_decisions_usage[];

#endif /* CTL_H */
