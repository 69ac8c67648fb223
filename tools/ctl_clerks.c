// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl clerks: every clerk registered with membrokerd's system
 * broker, of every process (what sys.dm_os_memory_clerks shows for one
 * SQL Server); membrokerctl decisions: the system broker's ring of
 * decisions, which process and clerk was asked for what, and what came
 * of it.  Both over the control socket; another user's clerks come
 * summed up and nameless unless we are root (the daemon decides that).
 * top shows the same table (ctl_sys_*).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "protocol.h"

const char cmd_clerks_usage[] =
"Usage: " CTL_NAME " [-j] clerks [--socket PATH]\n"
"\n"
"Every clerk registered with membrokerd's system broker, of every\n"
"process, cheapest first (the order in which LOW asks them): pool, name,\n"
"priority, bytes held, what its broker allows (TARGET), what the daemon\n"
"lets it hold (CAP), what the daemon took from it (TAKEN, not yet given\n"
"back) and what it gave back in all (FREED).  Unless you are root, the\n"
"clerks of other users are summed up per user and priority, nameless.\n"
"\n"
"  -S, --socket PATH  the daemon's control socket (default\n"
"                     $MEMBROKERD_SOCKET, else " MBD_CONTROL_SOCKET ")\n"
"  -h, --help         this text\n";

const char cmd_decisions_usage[] =
"Usage: " CTL_NAME " [-j] decisions [--socket PATH] [-n N]\n"
"\n"
"The system broker's recent decisions, oldest first: each clerk's part\n"
"of a step, the shortfall the step was to cover (or the room shared out\n"
"on HIGH), what the clerk was asked, what it gave back, and the outcome\n"
"(done, skipped: no answer in time, gone: the process went away, failed).\n"
"\n"
"  -S, --socket PATH  the daemon's control socket\n"
"  -n, --lines N      only the newest N\n"
"  -h, --help         this text\n";

/* The tables' lines: one format each, so that header and rows align */
#define ROW_HEAD "%4s %7s %6s %-15s %-15s %-20s %10s %10s %10s %10s %10s\n"
#define ROW_LINE "%4u %7s %6u %-15.15s %-15.15s %-20.20s %10s %10s %10s %10s %10s"
#define DEC_HEAD "%6s %-13s %5s %-6s %-7s %7s %-15s %-15s %-20s %4s %10s %10s %10s %10s\n"
#define DEC_WHEN "%6" PRIu64 " %-13s %5" PRIu64 " %-6s %-7s "
#define DEC_WHAT "%7u %-15.15s %-15.15s %-20.20s %4u %10s %10s %10s %10s\n"

static void jnum(const char *key, uint64_t v)
{
	printf(",\"%s\":%" PRIu64, key, v);
}

static void jstr(const char *key, const char *v)
{
	printf(",\"%s\":", key);
	ctl_json_str(stdout, v);
}

static void jbool(const char *key, bool v)
{
	printf(",\"%s\":%s", key, v ? "true" : "false");
}

static void jlimit(const char *key, uint64_t v)
{
	if (v == UINT64_MAX)
		printf(",\"%s\":null", key);
	else
		jnum(key, v);
}

struct rows {
	struct mbd_clerk_row *v;
	size_t n, cap;
	int err;
};

static void rows_add(const void *p, size_t size, void *arg)
{
	struct rows *r = arg;
	struct mbd_clerk_row *v;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;

		v = reallocarray(r->v, cap, sizeof(*v));
		if (!v) {
			r->err = -ENOMEM;
			return;
		}
		r->v = v;
		r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	memcpy(&r->v[r->n], p, size < sizeof(r->v[0]) ? size :
						       sizeof(r->v[0]));
	/* names from the wire are the daemon's: still end them */
	r->v[r->n].comm[sizeof(r->v[0].comm) - 1] = '\0';
	r->v[r->n].pool[sizeof(r->v[0].pool) - 1] = '\0';
	r->v[r->n].name[sizeof(r->v[0].name) - 1] = '\0';
	r->n++;
}

static int rows_cheap_first(const void *a, const void *b)
{
	const struct mbd_clerk_row *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/**
 * ctl_sys_clerks() - the clerks, cheapest first
 * @path: the control socket
 * @out: receives the rows (free() them)
 * @n: receives their count
 *
 * Return: 0 or -errno.
 */
int ctl_sys_clerks(const char *path, struct mbd_clerk_row **out, size_t *n)
{
	struct rows r = { 0 };
	int fd, err;

	*out = NULL;
	*n = 0;
	fd = ctl_daemon_connect(path);
	if (fd < 0)
		return fd;
	err = ctl_daemon_list(fd, MBD_MSG_CLERKS, NULL, 0, rows_add, &r);
	close(fd);
	if (!err)
		err = r.err;
	if (err) {
		free(r.v);
		return err;
	}
	qsort(r.v, r.n, sizeof(*r.v), rows_cheap_first);
	*out = r.v;
	*n = r.n;
	return 0;
}

static void ctl_fmt_limit(char *buf, size_t len, uint64_t v)
{
	if (v == UINT64_MAX)
		snprintf(buf, len, "-");
	else
		ctl_fmt_size(buf, len, v);
}

/* The table, at most @max rows (0: all); also for top. */
void ctl_sys_print(FILE *f, const struct mbd_clerk_row *r, size_t n,
		   size_t max, int cols)
{
	char held[24], tgt[24], cap[24], taken[24], freed[24], line[512];
	char who[24], clerk[72];
	uint64_t bytes = 0;
	size_t i, procs = 0, clerks = 0, k;
	bool hidden = false;

	for (i = 0; i < n; i++) {
		bytes += r[i].bytes;
		clerks += r[i].clerks;
		if (r[i].flags & MBD_ROW_HIDDEN) {
			hidden = true;
			continue;
		}
		/* distinct processes: few, a quadratic look is fine */
		for (k = 0; k < i && ((r[k].flags & MBD_ROW_HIDDEN) ||
				      r[k].pid != r[i].pid); k++)
			;
		procs += k == i;
	}
	ctl_fmt_size(held, sizeof(held), bytes);
	fprintf(f, "system broker: %zu process%s%s, %zu clerk%s, %s held\n",
		procs, procs == 1 ? "" : "es",
		hidden ? " (and other users')" : "", clerks,
		clerks == 1 ? "" : "s", held);
	fprintf(f, ROW_HEAD, "PRIO", "PID", "UID", "PROGRAM", "POOL", "CLERK",
		"HELD", "TARGET", "CAP", "TAKEN", "FREED");
	for (i = 0; i < n && (!max || i < max); i++) {
		ctl_fmt_size(held, sizeof(held), r[i].bytes);
		ctl_fmt_limit(tgt, sizeof(tgt), r[i].target);
		ctl_fmt_limit(cap, sizeof(cap), r[i].cap);
		ctl_fmt_size(taken, sizeof(taken), r[i].taken);
		ctl_fmt_size(freed, sizeof(freed), r[i].freed);
		if (r[i].flags & MBD_ROW_HIDDEN) {
			snprintf(who, sizeof(who), "-");
			snprintf(clerk, sizeof(clerk), "(%u clerk%s)",
				 r[i].clerks, r[i].clerks == 1 ? "" : "s");
		} else {
			snprintf(who, sizeof(who), "%u", r[i].pid);
			snprintf(clerk, sizeof(clerk), "%s%s", r[i].name,
				 r[i].flags & MBD_ROW_SKIPPED ? " (silent)" :
								"");
		}
		snprintf(line, sizeof(line), ROW_LINE, r[i].priority, who,
			 r[i].uid,
			 r[i].flags & MBD_ROW_HIDDEN ? "-" : r[i].comm,
			 r[i].flags & MBD_ROW_HIDDEN ? "-" : r[i].pool,
			 clerk, held, tgt, cap, taken, freed);
		if (cols > 0 && strlen(line) > (size_t)cols)
			line[cols] = '\0';
		fprintf(f, "%s\n", line);
	}
	if (max && n > max)
		fprintf(f, "... %zu more\n", n - max);
}

static void clerks_json(const struct mbd_clerk_row *r, size_t n)
{
	size_t i;

	putchar('[');
	for (i = 0; i < n; i++) {
		printf("%s{\"pid\":%u", i ? "," : "", r[i].pid);
		jnum("uid", r[i].uid);
		jnum("client", r[i].client);
		jstr("program", r[i].comm);
		jstr("pool", r[i].pool);
		jstr("name", r[i].name);
		jnum("priority", r[i].priority);
		jbool("hidden", r[i].flags & MBD_ROW_HIDDEN);
		jnum("clerks", r[i].clerks);
		jbool("shrinkable", r[i].flags & MBD_ROW_SHRINKABLE);
		jbool("silent", r[i].flags & MBD_ROW_SKIPPED);
		jnum("bytes", r[i].bytes);
		jlimit("target", r[i].target);
		jlimit("cap", r[i].cap);
		jnum("pool_min", r[i].pool_min);
		jnum("pool_max", r[i].pool_max);
		jnum("asked", r[i].asked);
		jnum("freed", r[i].freed);
		jnum("taken", r[i].taken);
		putchar('}');
	}
	printf("]\n");
}

static int sock_opts(const char *cmd, const char *usage, int argc,
		     char **argv, const char **path, uint32_t *lines)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'S' },
		{ "lines", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, lines ? "S:n:h" : "S:h", opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'S':
			*path = optarg;
			break;
		case 'n':
			if (!lines || ctl_parse_u32(optarg, lines) || !*lines)
				return ctl_bad_value(cmd, "--lines",
						     "a positive integer",
						     optarg);
			break;
		case 'h':
			fputs(usage, stdout);
			return -1;
		default:
			return ctl_getopt_error(cmd, argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error(cmd, "unexpected argument '%s'",
				       argv[optind]);
	return CTL_EXIT_OK;
}

int cmd_clerks(struct ctl *c, int argc, char **argv)
{
	const char *path = NULL;
	struct mbd_clerk_row *r;
	size_t n;
	int ret, err;

	ret = sock_opts("clerks", cmd_clerks_usage, argc, argv, &path, NULL);
	if (ret)
		return ret < 0 ? CTL_EXIT_OK : ret;
	path = ctl_daemon_path(path);
	err = ctl_sys_clerks(path, &r, &n);
	if (err)
		return ctl_runtime_error(err, "membrokerd at %s", path);
	if (c->json)
		clerks_json(r, n);
	else
		ctl_sys_print(stdout, r, n, 0, 0);
	free(r);
	return CTL_EXIT_OK;
}

/* ---- decisions ---- */

struct decisions {
	struct mbd_decision *v;
	size_t n, cap;
	int err;
};

static void decisions_add(const void *p, size_t size, void *arg)
{
	struct decisions *d = arg;
	struct mbd_decision *v;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;

		v = reallocarray(d->v, cap, sizeof(*v));
		if (!v) {
			d->err = -ENOMEM;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	memcpy(&d->v[d->n], p, size < sizeof(d->v[0]) ? size :
						       sizeof(d->v[0]));
	d->v[d->n].comm[sizeof(d->v[0].comm) - 1] = '\0';
	d->v[d->n].pool[sizeof(d->v[0].pool) - 1] = '\0';
	d->v[d->n].clerk[sizeof(d->v[0].clerk) - 1] = '\0';
	d->n++;
}

static const char *outcome_name(uint32_t o)
{
	static const char *const names[] = {
		"done", "skipped", "gone", "failed",
	};

	return o < ARRAY_SIZE(names) ? names[o] : "?";
}

static const char *kind_name(uint32_t k)
{
	return k == MBD_DECISION_SHRINK ? "shrink" :
	       k == MBD_DECISION_GROW ? "grow" : "?";
}

int cmd_decisions(struct ctl *c, int argc, char **argv)
{
	char mono[32], sf[24], asked[24], freed[24], cap[24];
	struct mbd_decisions_req req = { 0 };
	struct decisions d = { 0 };
	const char *path = NULL;
	uint32_t lines = 0;
	struct mbd_decision *x;
	size_t i, from = 0;
	int ret, fd, err;

	ret = sock_opts("decisions", cmd_decisions_usage, argc, argv, &path,
			&lines);
	if (ret)
		return ret < 0 ? CTL_EXIT_OK : ret;
	path = ctl_daemon_path(path);
	fd = ctl_daemon_connect(path);
	if (fd < 0)
		return ctl_runtime_error(fd, "cannot reach membrokerd at %s",
					 path);
	err = ctl_daemon_list(fd, MBD_MSG_DECISIONS, &req, sizeof(req),
			      decisions_add, &d);
	close(fd);
	if (!err)
		err = d.err;
	if (err) {
		free(d.v);
		return ctl_runtime_error(err, "membrokerd at %s", path);
	}
	if (lines && d.n > lines)
		from = d.n - lines;
	if (c->json)
		putchar('[');
	else
		printf(DEC_HEAD, "SEQ", "TIME", "STEP", "KIND", "OUTCOME",
		       "PID", "PROGRAM", "POOL", "CLERK", "PRIO", "SHORT",
		       "ASKED", "FREED", "CAP");
	for (i = from; i < d.n; i++) {
		x = &d.v[i];
		if (c->json) {
			printf("%s{\"seq\":%" PRIu64, i > from ? "," : "",
			       x->seq);
			jnum("time_ns", x->time_ns);
			jnum("step", x->step);
			jstr("kind", kind_name(x->kind));
			jstr("outcome", outcome_name(x->outcome));
			jnum("pid", x->pid);
			jnum("uid", x->uid);
			jstr("program", x->comm);
			jstr("pool", x->pool);
			jstr("clerk", x->clerk);
			jnum("priority", x->priority);
			printf(",\"status\":%d", x->status);
			jnum("shortfall", x->shortfall);
			jnum("asked", x->asked);
			jnum("freed", x->freed);
			jlimit("cap", x->cap);
			putchar('}');
			continue;
		}
		ctl_fmt_mono(mono, sizeof(mono), x->time_ns);
		ctl_fmt_size(sf, sizeof(sf), x->shortfall);
		ctl_fmt_size(asked, sizeof(asked), x->asked);
		ctl_fmt_size(freed, sizeof(freed), x->freed);
		ctl_fmt_limit(cap, sizeof(cap), x->cap);
		printf(DEC_WHEN, x->seq, mono, x->step, kind_name(x->kind),
		       outcome_name(x->outcome));
		printf(DEC_WHAT, x->pid, x->pid ? x->comm : "-",
		       x->pid ? x->pool : "-", x->pid ? x->clerk : "-",
		       x->priority, sf, asked, freed, cap);
	}
	if (c->json)
		printf("]\n");
	free(d.v);
	return CTL_EXIT_OK;
}
