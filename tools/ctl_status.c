// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl status: the current state and every figure behind it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>

#include "ctl.h"

const char cmd_status_usage[] =
"Usage: " CTL_NAME " [-j] [-s SOURCE] status\n"
"\n"
"Print the current state, flags, available and total memory, the\n"
"thresholds, committed memory and the commit limit, the sequence number,\n"
"time and reason of the reading, and the source in use.\n";

static void status_size(const char *key, uint64_t bytes, bool known)
{
	char buf[32];

	if (!known) {
		printf("%s: unknown\n", key);
		return;
	}
	ctl_fmt_size(buf, sizeof(buf), bytes);
	printf("%s: %s (%" PRIu64 " bytes)\n", key, buf, bytes);
}

/*
 * A source may have nothing to report yet: the fake one only repeats what
 * a program pushes into it.  Say so rather than print zeros as figures.
 */
static bool status_have_reading(const struct mb_notification *n)
{
	return n->time_ns || n->state != MB_STATE_UNKNOWN;
}

static void status_text(const struct ctl *c, const struct mb_notification *n)
{
	char buf[64];

	printf("source: %s\n", ctl_source_note(c, buf, sizeof(buf)));
	if (!status_have_reading(n)) {
		printf("state: unknown\nreading: none yet%s\n",
		       c->in_use == MB_SOURCE_FAKE ?
		       " (the fake source reports only what a program pushes)" :
		       "");
		return;
	}
	printf("state: %s\n", mb_state_name(n->state));
	ctl_fmt_flags(buf, sizeof(buf), n->flags);
	printf("flags: %s\n", buf);
	status_size("available", n->available, true);
	status_size("total", n->total, true);
	status_size("low", n->low, true);
	status_size("high", n->high, true);
	/* sources other than the module may not know the commit figures */
	status_size("committed", n->committed, n->commit_limit);
	status_size("commit limit", n->commit_limit, n->commit_limit);
	if (n->commit_limit)
		printf("commit ratio: %.1f%%\n",
		       100.0 * (double)n->committed / (double)n->commit_limit);
	printf("seq: %" PRIu64 "\n", n->seq);
	ctl_fmt_mono(buf, sizeof(buf), n->time_ns);
	printf("timestamp: %s (monotonic)\n", buf);
	ctl_fmt_wall(buf, sizeof(buf), n->time_ns);
	printf("time: %s\n", buf);
	printf("reason: %s\n", ctl_reason_name(n->reason));
}

/*
 * The state object plus where it came from; "module_loaded" is null when
 * the user chose a source and the module was never asked, "reading" null
 * (and no figures) when the source has nothing to report yet.
 */
static void status_json(const struct ctl *c, const struct mb_notification *n)
{
	const char *loaded = "null";

	if (c->kmod)
		loaded = "true";
	else if (c->no_module)
		loaded = "false";
	printf("{\"source_in_use\":");
	ctl_json_str(stdout, mb_source_name(c->in_use));
	printf(",\"module_loaded\":%s,", loaded);
	if (status_have_reading(n))
		ctl_print_json_fields(stdout, n);
	else
		printf("\"state\":\"unknown\",\"reading\":null");
	printf("}\n");
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct mb_notification n = { 0 };
	int opt, err;

	while ((opt = getopt_long(argc, argv, "+" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'j':
			c->json = true;
			break;
		case 's':
			c->source_arg = optarg;
			break;
		case 'h':
			fputs(cmd_status_usage, stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_getopt_error("status", argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error("status", "unexpected argument '%s'",
				       argv[optind]);

	err = ctl_open(c);
	if (err)
		return err;
	err = ctl_get_state(c, &n);
	if (err)
		return ctl_runtime_error(err, "cannot read the state");

	if (c->json)
		status_json(c, &n);
	else
		status_text(c, &n);
	return CTL_EXIT_OK;
}
