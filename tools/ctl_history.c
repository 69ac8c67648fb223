// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl history: the module's ring of recent notifications, oldest
 * first, in the same format as "watch" (a JSON array with -j).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"

const char cmd_history_usage[] =
"Usage: " CTL_NAME " [-j] history [-n N]\n"
"\n"
"Print the membroker module's recent notifications, oldest first, one per\n"
"line as \"watch\" prints them (-j: a JSON array).  Needs the module.\n"
"\n"
"  -n, --lines N   only the newest N\n";

/*
 * The ring holds at most history_size entries, but the walk does not say
 * how many in advance: keep them all and cut at the end.
 */
struct history {
	struct mb_notification *v;
	size_t len;
	size_t cap;
	int err;
};

static int history_add(const struct mb_notification *n, void *arg)
{
	struct history *h = arg;
	struct mb_notification *v;

	if (h->len == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;

		v = reallocarray(h->v, cap, sizeof(*v));
		if (!v) {
			h->err = -ENOMEM;
			return 1;
		}
		h->v = v;
		h->cap = cap;
	}
	h->v[h->len++] = *n;
	return 0;
}

static void history_print(const struct ctl *c, const struct history *h,
			  size_t from)
{
	size_t i;

	if (c->json)
		putchar('[');
	for (i = from; i < h->len; i++) {
		if (!c->json) {
			ctl_print_line(stdout, &h->v[i]);
			continue;
		}
		if (i > from)
			putchar(',');
		fputs("\n  ", stdout);
		ctl_print_json(stdout, &h->v[i], false);
	}
	if (c->json)
		fputs(h->len > from ? "\n]\n" : "]\n", stdout);
}

int cmd_history(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lines", required_argument, NULL, 'n' },
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct history h = { 0 };
	uint32_t lines = 0;
	int opt, err, ret;

	while ((opt = getopt_long(argc, argv, "+n:" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (ctl_parse_u32(optarg, &lines) || !lines)
				return ctl_bad_value("history", "-n",
						     "a positive integer",
						     optarg);
			break;
		case 'j':
			c->json = true;
			break;
		case 's':
			c->source_arg = optarg;
			break;
		case 'h':
			fputs(cmd_history_usage, stdout);
			return CTL_EXIT_OK;
		default:
			return ctl_getopt_error("history", argv, optopt);
		}
	}
	if (optind < argc)
		return ctl_usage_error("history", "unexpected argument '%s'",
				       argv[optind]);

	ret = ctl_open_kmod_only(c, "history");
	if (ret)
		return ret;
	err = mb_kmod_get_history(c->kmod, history_add, &h);
	if (h.err)
		err = h.err;
	if (err < 0) {
		ret = ctl_runtime_error(err, "cannot read the history");
	} else {
		history_print(c, &h, lines && lines < h.len ?
				     h.len - lines : 0);
		ret = CTL_EXIT_OK;
	}
	free(h.v);
	return ret;
}
