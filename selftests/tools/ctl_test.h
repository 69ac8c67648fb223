/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the membrokerctl selftests share: running the tool as a user would
 * (its own process, stdout and stderr apart, optionally as nobody or on a
 * terminal) and reading what it printed, in text and in JSON.
 *
 * The other side of every check comes from selftests/membroker's netlink
 * client and sysfs readers (mb_nl.h), which speak the uapi directly, so a
 * test compares the tool with the kernel rather than with the library the
 * tool is built on.
 */
#ifndef CTL_TEST_H
#define CTL_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mb_nl.h"

/*
 * Bound a hang of the tool or a notification that never comes, never a
 * measure of speed.  The test programs include mb_test.h (the harness)
 * before this; the helpers do not, since the harness defines functions.
 */
#define CTL_GUARD_MS		20000
#define CTL_NOTIFY_MS		20000

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#endif

/* Exit statuses promised by membrokerctl(8) */
#define CTL_OK			0
#define CTL_RUNTIME		1
#define CTL_USAGE		2
#define CTL_TIMEOUT		3

#define NOBODY			65534

/* ctl_start() flags */
#define CTL_AS_NOBODY		(1U << 0)	/* uid/gid 65534, no groups */

/**
 * struct ctl_buf - everything read from one of the tool's streams
 * @s:	the text, always NUL-terminated (never NULL once started)
 * @len: its length
 * @cap: allocated size
 * @fd:	the pipe it is read from, -1 once at end of file
 */
struct ctl_buf {
	char *s;
	size_t len;
	size_t cap;
	int fd;
};

/**
 * struct ctl_proc - one run of membrokerctl
 * @pid:	its process id, 0 once reaped
 * @out:	its standard output
 * @err:	its standard error (also the terminal's output in a pty run)
 * @pty:	master side of its terminal, or -1
 * @status:	exit status, 128 + signal number if killed, -1 while running
 */
struct ctl_proc {
	pid_t pid;
	struct ctl_buf out;
	struct ctl_buf err;
	int pty;
	int status;
};

/* ctl_run.c */
const char *ctl_path(void);
int ctl_startv(struct ctl_proc *p, unsigned int flags, char *const argv[]);
int ctl_start_pty(struct ctl_proc *p, char *const argv[]);
int ctl_wait_for(struct ctl_proc *p, struct ctl_buf *b, const char *needle,
		 size_t from, int timeout_ms);
int ctl_finish(struct ctl_proc *p, int timeout_ms);
int ctl_signal(struct ctl_proc *p, int sig);
void ctl_proc_free(struct ctl_proc *p);
int ctl_runv(struct ctl_proc *p, unsigned int flags, char *const argv[]);

/*
 * ctl_run(&p, flags, "status", "-j"): run membrokerctl with those
 * arguments to completion; returns its exit status or -errno.
 */
#define ctl_run(p, flags, ...)						\
	ctl_runv(p, flags, (char *const[]){ (char *)ctl_path(),	\
		 __VA_ARGS__, NULL })
#define ctl_start(p, flags, ...)					\
	ctl_startv(p, flags, (char *const[]){ (char *)ctl_path(),	\
		   __VA_ARGS__, NULL })

/* Reading text output */
size_t ctl_count_lines(const char *s);
const char *ctl_nth_line(const char *s, size_t n, char *buf, size_t len);
const char *ctl_field(const char *text, const char *key, char *buf,
		      size_t len);
int ctl_field_bytes(const char *text, const char *key, uint64_t *bytes);
int ctl_field_size_ok(const char *text, const char *key);
const char *ctl_kv(const char *line, const char *key, char *buf,
		   size_t len);
const char *ctl_state_name(uint32_t state);
const char *ctl_reason_name(uint32_t reason);
void ctl_fmt_short(char *buf, size_t len, uint64_t bytes);
int ctl_line_matches(const char *line, const struct mb_state *st,
		     char *why, size_t len);

/* Comparing with the kernel */
int ctl_settle(struct mb_nl *nl, struct mb_nl *mc);
int ctl_wait_notify(struct mb_nl *mc, uint64_t low, uint64_t high,
		    struct mb_state *seen);
int ctl_set_thresholds(struct mb_nl *nl, struct mb_nl *mc, uint64_t low,
		       uint64_t high, struct mb_state *seen);

/* ctl_json.c: a strict JSON reader, enough for the tool's output */
enum json_type {
	JSON_NULL,
	JSON_BOOL,
	JSON_NUMBER,
	JSON_STRING,
	JSON_ARRAY,
	JSON_OBJECT,
};

/**
 * struct json - a parsed JSON value
 * @type:	what it is
 * @b:		a JSON_BOOL's value
 * @s:		a JSON_STRING's decoded text, or a JSON_NUMBER as written
 * @key:	its name when it is an object member, else NULL
 * @kids:	members of an object or elements of an array
 * @n:		how many
 */
struct json {
	enum json_type type;
	bool b;
	char *s;
	char *key;
	struct json *kids;
	size_t n;
};

int json_parse(const char *text, struct json **out);
void json_free(struct json *j);
const struct json *json_get(const struct json *obj, const char *key);
int json_u64(const struct json *obj, const char *key, uint64_t *v);
const char *json_str(const struct json *obj, const char *key);
int json_bool(const struct json *obj, const char *key, bool *v);
int json_matches_state(const struct json *obj, const struct mb_state *st,
		       char *why, size_t len);

#endif /* CTL_TEST_H */
