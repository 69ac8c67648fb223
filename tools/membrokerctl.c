// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl: query, watch and configure memory resource notifications.
 *
 * This file only reads the global options, picks the command and maps its
 * result to an exit status; the commands live in ctl_<command>.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char main_usage[] =
"Usage: " CTL_NAME " [-j] [-h] [-s SOURCE] COMMAND [ARGS]\n"
"\n"
"Commands (short forms in brackets):\n"
"  status   [st]  the current state and every figure\n"
"  watch    [w]   one line per notification as it arrives\n"
"  config   [c]   show or set the module's configuration\n"
"  history  [hi]  the module's recent notifications, oldest first\n"
"  top      [t]   a live view of state, thresholds and notifications\n"
"  metrics  [m]   membrokerd's metrics (Prometheus text format)\n"
"  clerks   [cl]  every process's clerks registered with membrokerd\n"
"  decisions [d]  membrokerd's recent decisions for the whole machine\n"
"  help [COMMAND]  this text, or a command's help\n"
"\n"
"Options:\n"
"  -j, --json           JSON output\n"
"  -s, --source SOURCE  auto, kmod, cgroup, psi, meminfo or fake\n"
"                       (default: $MEMBROKER_SOURCE, else auto)\n"
"  -h, --help           help; COMMAND -h for a command's help\n"
"\n"
"Exit status: 0 success, 1 runtime error, 2 usage error, 3 watch --count\n"
"not reached within --timeout.\n";

/**
 * struct ctl_cmd - a command and the shortest abbreviation it accepts
 * The abbreviations follow ip(8): any prefix of the name at least @min
 * characters long selects the command.
 */
struct ctl_cmd {
	const char *name;
	size_t min;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *usage;
};

static const struct ctl_cmd ctl_cmds[] = {
	{ "status",  2, cmd_status,  cmd_status_usage },
	{ "watch",   1, cmd_watch,   cmd_watch_usage },
	{ "config",  1, cmd_config,  cmd_config_usage },
	{ "history", 2, cmd_history, cmd_history_usage },
	{ "top",     1, cmd_top,     cmd_top_usage },
	{ "metrics", 1, cmd_metrics, cmd_metrics_usage },
	{ "clerks",  2, cmd_clerks,  cmd_clerks_usage },
	{ "decisions", 1, cmd_decisions, cmd_decisions_usage },
	{ "help",    2, NULL,        main_usage },
};

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CTL_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" CTL_NAME "%s%s -h' for more information.\n",
		cmd ? " " : "", cmd ? cmd : "");
	return CTL_EXIT_USAGE;
}

int ctl_runtime_error(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, CTL_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err < 0 ? -err : err));
	fputc('\n', stderr);
	return CTL_EXIT_RUNTIME;
}

/*
 * getopt() is run with opterr = 0 so that every complaint has the same
 * shape and the same exit status; this turns its '?' and ':' into one.
 */
int ctl_getopt_error(const char *cmd, char **argv, int optopt_val)
{
	const char *arg = argv[optind - 1];

	if (optopt_val && strncmp(arg, "--", 2))
		return ctl_usage_error(cmd, "option '-%c' is unknown or needs a value",
				       optopt_val);
	return ctl_usage_error(cmd, "option '%s' is unknown or needs a value",
			       arg);
}

/* "-h" or "--help" where getopt() no longer looks: after "help", "set" */
bool ctl_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

int ctl_bad_value(const char *cmd, const char *what, const char *expect,
		  const char *val)
{
	return ctl_usage_error(cmd, "%s needs %s, not '%s'", what, expect, val);
}

static const struct ctl_cmd *ctl_find_cmd(const char *word)
{
	size_t len = strlen(word);
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ctl_cmds); i++) {
		const struct ctl_cmd *cmd = &ctl_cmds[i];

		if (len >= cmd->min && len <= strlen(cmd->name) &&
		    !strncmp(word, cmd->name, len))
			return cmd;
	}
	return NULL;
}

/* "help [COMMAND]": the same text as "-h" and "COMMAND -h" */
static int ctl_help(int argc, char **argv)
{
	const struct ctl_cmd *cmd;

	if (argc > 1)
		return ctl_usage_error("help", "too many arguments");
	if (!argc || (argc == 1 && ctl_is_help(argv[0]))) {
		fputs(main_usage, stdout);
		return CTL_EXIT_OK;
	}
	cmd = ctl_find_cmd(argv[0]);
	if (!cmd)
		return ctl_usage_error("help", "unknown command '%s'", argv[0]);
	fputs(cmd->usage, stdout);
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",   no_argument,       NULL, 'j' },
		{ "help",   no_argument,       NULL, 'h' },
		{ "source", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .source = MB_SOURCE_AUTO };
	const struct ctl_cmd *cmd;
	int opt, ret;

	opterr = 0;
	/* '+': options after the command belong to the command */
	while ((opt = getopt_long(argc, argv, "+" CTL_COMMON_OPTS, opts,
				  NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = true;
			break;
		case 'h':
			fputs(main_usage, stdout);
			return CTL_EXIT_OK;
		case 's':
			c.source_arg = optarg;
			break;
		default:
			return ctl_getopt_error(NULL, argv, optopt);
		}
	}
	if (optind >= argc)
		return ctl_usage_error(NULL, "no command given");

	cmd = ctl_find_cmd(argv[optind]);
	if (!cmd)
		return ctl_usage_error(NULL, "unknown command '%s'",
				       argv[optind]);
	if (!cmd->fn)
		return ctl_help(argc - optind - 1, argv + optind + 1);

	/* each command parses its own options from a fresh getopt */
	argc -= optind;
	argv += optind;
	optind = 0;
	ret = cmd->fn(&c, argc, argv);
	ctl_close(&c);
	/* once the reader has gone, nothing written can reach it: no error */
	if (fflush(stdout) && ret == CTL_EXIT_OK && !c.out_gone)
		ret = ctl_runtime_error(errno, "writing the output");
	return ret;
}
