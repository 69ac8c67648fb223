// SPDX-License-Identifier: GPL-2.0
/*
 * The command line a script relies on: -h works everywhere and exits 0
 * with the help on stdout; a wrong command line exits 2 with a message on
 * stderr and nothing on stdout; the short forms of membrokerctl(8) select
 * the same commands as the long ones.
 */
#include <errno.h>
#include <string.h>

#include "mb_test.h"
#include "ctl_test.h"

#define MAX_ARGS	8

FIXTURE(usage) {
	struct ctl_proc p;
	struct mb_nl nl;
};

FIXTURE_SETUP(usage)
{
	ASSERT_EQ(0, access(ctl_path(), X_OK))
		TH_LOG("%s: %s (is tools/ built?)", ctl_path(), strerror(errno));
	MB_OPEN_OR_SKIP(&self->nl);
}

FIXTURE_TEARDOWN(usage)
{
	ctl_proc_free(&self->p);
	mb_nl_close(&self->nl);
}

/* Run membrokerctl with the words of @args (NULL-terminated) */
static int run_words(struct ctl_proc *p, const char *const *args)
{
	char *argv[MAX_ARGS + 2] = { (char *)ctl_path() };
	int i;

	for (i = 0; args[i] && i < MAX_ARGS; i++)
		argv[i + 1] = (char *)args[i];
	return ctl_runv(p, 0, argv);
}

static const char *words(const char *const *args, char *buf, size_t len)
{
	size_t n = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; args[i] && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " " : "",
				      args[i]);
	return buf;
}

/*
 * Help: each case and a word its first line must contain, which tells
 * the command's help from the general one.
 */
static const struct {
	const char *args[MAX_ARGS];
	const char *usage;
} help_cases[] = {
	{ { "-h" }, "COMMAND" },
	{ { "--help" }, "COMMAND" },
	{ { "help" }, "COMMAND" },
	{ { "help", "-h" }, "COMMAND" },
	{ { "-j", "-h" }, "COMMAND" },
	{ { "status", "-h" }, " status" },
	{ { "st", "--help" }, " status" },
	{ { "help", "status" }, " status" },
	{ { "watch", "-h" }, " watch" },
	{ { "w", "-c", "1", "-h" }, " watch" },
	{ { "config", "-h" }, " config" },
	{ { "c", "show", "-h" }, " config" },
	{ { "config", "set", "-h" }, " config" },
	{ { "config", "set", "low", "1M", "--help" }, " config" },
	{ { "history", "-h" }, " history" },
	{ { "hi", "-n", "3", "-h" }, " history" },
	{ { "top", "-h" }, " top" },
	{ { "t", "--help" }, " top" },
};

TEST_F(usage, help_everywhere)
{
	char first[256], desc[128];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(help_cases); i++) {
		words(help_cases[i].args, desc, sizeof(desc));
		rc = run_words(&self->p, help_cases[i].args);
		EXPECT_EQ(CTL_OK, rc) TH_LOG("'%s': exit %d", desc, rc);
		ASSERT_NE(NULL, ctl_nth_line(self->p.out.s, 0, first,
					     sizeof(first)))
			TH_LOG("'%s': no output", desc);
		EXPECT_EQ(0, strncmp(first, "Usage: membrokerctl", 19))
			TH_LOG("'%s': first line '%s'", desc, first);
		EXPECT_NE(NULL, strstr(first, help_cases[i].usage))
			TH_LOG("'%s': '%s' is not the help asked for", desc,
			       first);
		EXPECT_EQ(0, self->p.err.len)
			TH_LOG("'%s': stderr '%s'", desc, self->p.err.s);
	}
}

static const char *const usage_cases[][MAX_ARGS] = {
	{ NULL },
	{ "frobnicate" },
	{ "s" },			/* too short: status or nothing */
	{ "-x", "status" },
	{ "--bogus" },
	{ "status", "--bogus" },
	{ "status", "extra" },
	{ "-s", "nosuch", "status" },
	{ "watch", "--count", "abc" },
	{ "watch", "--count", "0" },
	{ "watch", "--timeout" },
	{ "watch", "--timeout", "-1" },
	{ "config", "frob" },
	{ "config", "set" },
	{ "config", "set", "colour", "5" },
	{ "config", "set", "low" },
	{ "config", "set", "low", "12Q" },
	{ "config", "set", "low", "1M", "low", "2M" },
	{ "history", "-n", "0" },
	{ "history", "extra" },
	{ "top", "--interval", "1" },
	{ "top", "--iterations", "x" },
	{ "-j", "top" },
	{ "help", "frobnicate" },
};

TEST_F(usage, errors_exit_2)
{
	char first[256], desc[128];
	size_t i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(usage_cases); i++) {
		words(usage_cases[i], desc, sizeof(desc));
		rc = run_words(&self->p, usage_cases[i]);
		EXPECT_EQ(CTL_USAGE, rc) TH_LOG("'%s': exit %d", desc, rc);
		EXPECT_EQ(0, self->p.out.len)
			TH_LOG("'%s': stdout '%s'", desc, self->p.out.s);
		ASSERT_NE(NULL, ctl_nth_line(self->p.err.s, 0, first,
					     sizeof(first)))
			TH_LOG("'%s': no message", desc);
		EXPECT_EQ(0, strncmp(first, "membrokerctl: ", 14))
			TH_LOG("'%s': message '%s'", desc, first);
		EXPECT_NE(NULL, strstr(self->p.err.s, "Try 'membrokerctl"))
			TH_LOG("'%s': no pointer to -h", desc);
	}
}

/* A value rejected on the command line never reaches the module */
TEST_F(usage, bad_config_value_changes_nothing)
{
	struct mb_config before, after;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &before));
	EXPECT_EQ(CTL_USAGE, ctl_run(&self->p, 0, "config", "set",
				     "low", "1M", "high", "12Q"));
	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &after));
	EXPECT_TRUE(mb_config_equal(&before, &after));
}

/* Each short form does what its command does, with the module */
TEST_F(usage, short_forms)
{
	char buf[256];

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "st"));
	EXPECT_STREQ("kmod", ctl_field(self->p.out.s, "source", buf,
				       sizeof(buf)) ?: "(none)");

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "w", "-t", "0.1"));
	EXPECT_STREQ("source: kmod\n", self->p.err.s);

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "c"));
	EXPECT_NE(NULL, ctl_field(self->p.out.s, "history-size", buf,
				  sizeof(buf)));

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "hi", "-n", "1"));
	EXPECT_EQ(1, ctl_count_lines(self->p.out.s));
	EXPECT_EQ('[', self->p.out.s[0]);

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "t", "-n", "1"));
	EXPECT_EQ(0, strncmp(self->p.out.s, "membrokerctl top - source: kmod",
			     31)) TH_LOG("top: '%.80s'", self->p.out.s);
}

TEST_HARNESS_MAIN
