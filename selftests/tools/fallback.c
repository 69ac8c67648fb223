// SPDX-License-Identifier: GPL-2.0
/*
 * Without the module membrokerctl is still useful: status, watch and top
 * fall back to the library's other sources (cgroup, psi, meminfo) and
 * name the one in use; config and history, which only the module can
 * answer, say so and exit 1; "-s kmod" insists on the module and says it
 * is missing.
 *
 * Each test unloads the module and its teardown loads it again from
 * $MB_MODULE; the last test makes sure it is back even if one of the
 * others was killed before its teardown.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "ctl_test.h"

#define NOT_LOADED	" (membroker module not loaded)"

FIXTURE(fallback) {
	struct ctl_proc p;
	char source[32];	/* what status said it uses */
};

static bool module_loaded(void)
{
	return !access(MB_SYSFS_DIR, F_OK);
}

FIXTURE_SETUP(fallback)
{
	struct mb_nl nl;

	ASSERT_EQ(0, access(ctl_path(), X_OK))
		TH_LOG("%s: %s (is tools/ built?)", ctl_path(), strerror(errno));
	MB_OPEN_OR_SKIP(&nl);
	mb_nl_close(&nl);
	if (!getenv("MB_MODULE"))
		MB_SKIP_SETUP("MB_MODULE not set: could not load it again");
	/* last: the teardown, which reloads, runs only after a setup */
	ASSERT_EQ(0, mb_module_unload());
	ASSERT_FALSE(module_loaded());
}

FIXTURE_TEARDOWN(fallback)
{
	ctl_proc_free(&self->p);
	if (!module_loaded())
		EXPECT_EQ(0, mb_module_load());
	EXPECT_TRUE(module_loaded());
}

/*
 * The source named by "source: psi (membroker module not loaded)", or
 * NULL if the line is not of that form.
 */
static const char *fallback_source(const char *value, char *buf,
				   size_t len)
{
	static const char *const sources[] = { "cgroup", "psi", "meminfo" };
	size_t i, n;

	for (i = 0; i < ARRAY_SIZE(sources); i++) {
		n = strlen(sources[i]);
		if (!strncmp(value, sources[i], n) &&
		    !strcmp(value + n, NOT_LOADED)) {
			snprintf(buf, len, "%s", sources[i]);
			return buf;
		}
	}
	return NULL;
}

static bool known_state(const char *s)
{
	return s && (!strcmp(s, "low") || !strcmp(s, "steady") ||
		     !strcmp(s, "high"));
}

TEST_F_TIMEOUT(fallback, status, 60)
{
	static const char *const keys[] = {
		"state", "flags", "available", "total", "low", "high",
		"committed", "commit limit", "seq", "timestamp", "time",
		NULL,
	};
	const char *const *key, *out;
	char buf[128], src[32];
	uint64_t total, avail, low, high, v;
	struct mb_meminfo mi;
	struct json *j;
	bool b;

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "status"))
		TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_EQ(0, self->p.err.len);
	ASSERT_NE(NULL, ctl_field(self->p.out.s, "source", buf, sizeof(buf)));
	ASSERT_NE(NULL, fallback_source(buf, src, sizeof(src)))
		TH_LOG("source: '%s'", buf);
	TH_LOG("without the module: %s", src);
	EXPECT_TRUE(known_state(ctl_field(self->p.out.s, "state", buf,
					  sizeof(buf))));
	out = self->p.out.s;
	for (key = keys; *key; key++)
		EXPECT_NE(NULL, ctl_field(out, *key, buf, sizeof(buf)))
			TH_LOG("no '%s:' in:\n%s", *key ?: "", out);
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "total", &total));
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "available", &avail));
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "low", &low));
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "high", &high));
	EXPECT_LE(avail, total);
	EXPECT_LT(low, high);
	ASSERT_EQ(0, mb_meminfo_read(&mi));
	/* the VM's init puts the tests in no cgroup with a limit */
	if (strcmp(src, "cgroup"))
		EXPECT_EQ(mi.total, total);

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "-j", "status"));
	ASSERT_EQ(0, json_parse(self->p.out.s, &j))
		TH_LOG("not JSON: %s", self->p.out.s);
	EXPECT_STREQ(src, json_str(j, "source_in_use") ?: "");
	EXPECT_EQ(0, json_bool(j, "module_loaded", &b));
	EXPECT_FALSE(b);
	EXPECT_TRUE(known_state(json_str(j, "state")));
	EXPECT_EQ(0, json_u64(j, "total_bytes", &v));
	EXPECT_EQ(total, v);
	EXPECT_EQ(0, json_u64(j, "available_bytes", &v));
	EXPECT_EQ(0, json_u64(j, "low_bytes", &v));
	EXPECT_EQ(0, json_u64(j, "high_bytes", &v));
	json_free(j);

	/* insisting on the module */
	EXPECT_EQ(CTL_RUNTIME, ctl_run(&self->p, 0, "-s", "kmod", "status"));
	EXPECT_EQ(0, self->p.out.len);
	EXPECT_NE(NULL, strstr(self->p.err.s,
			       "the membroker module is not loaded"))
		TH_LOG("stderr: %s", self->p.err.s);
}

/* watch and top run on the fallback source and say which it is */
TEST_F_TIMEOUT(fallback, watch_and_top, 60)
{
	char want[96], line[512], buf[64];
	struct json *j;
	size_t i, n;

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "-j", "status"));
	ASSERT_EQ(0, json_parse(self->p.out.s, &j));
	snprintf(self->source, sizeof(self->source), "%s",
		 json_str(j, "source_in_use") ?: "(none)");
	json_free(j);

	/* the source's first reading comes at once (membrokerctl(8)) */
	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "watch", "--count", "1",
				  "--timeout", "10"));
	snprintf(want, sizeof(want), "source: %s" NOT_LOADED "\n",
		 self->source);
	EXPECT_STREQ(want, self->p.err.s);
	n = ctl_count_lines(self->p.out.s);
	EXPECT_EQ(1, n) TH_LOG("stdout: %s", self->p.out.s);
	for (i = 0; i < n; i++) {
		ctl_nth_line(self->p.out.s, i, line, sizeof(line));
		EXPECT_EQ('[', line[0]) TH_LOG("'%s'", line);
		EXPECT_TRUE(known_state(ctl_kv(line, "state", buf,
					       sizeof(buf))))
			TH_LOG("'%s'", line);
		EXPECT_NE(NULL, ctl_kv(line, "available", buf, sizeof(buf)));
		EXPECT_NE(NULL, ctl_kv(line, "total", buf, sizeof(buf)));
		EXPECT_STREQ("none", ctl_kv(line, "reason", buf, sizeof(buf)) ?:
			     "(no reason)");
	}

	EXPECT_EQ(CTL_RUNTIME, ctl_run(&self->p, 0, "-s", "kmod", "watch",
				       "--timeout", "1"));
	EXPECT_EQ(0, self->p.out.len);
	EXPECT_NE(NULL, strstr(self->p.err.s,
			       "the membroker module is not loaded"))
		TH_LOG("stderr: %s", self->p.err.s);

	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "top", "--iterations", "1"));
	snprintf(want, sizeof(want), "membrokerctl top - source: %s"
		 NOT_LOADED " - ", self->source);
	EXPECT_EQ(0, strncmp(self->p.out.s, want, strlen(want)))
		TH_LOG("top: '%.100s'", self->p.out.s);
	EXPECT_NE(NULL, strstr(self->p.out.s, "\navailable: "));
}

/* What only the module knows: a clear refusal, status 1, no output */
TEST_F_TIMEOUT(fallback, module_commands, 60)
{
#define NEEDS(cmd) cmd " needs the membroker module, which is not loaded"
	static const struct {
		const char *args[6];
		const char *why;
	} cases[] = {
		{ { "history" }, NEEDS("history") },
		{ { "-j", "history" }, NEEDS("history") },
		{ { "config" }, NEEDS("config") },
		{ { "config", "set", "low", "64M" }, NEEDS("config") },
	};
#undef NEEDS
	char *argv[8];
	size_t i, k;
	int rc;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		argv[0] = (char *)ctl_path();
		for (k = 0; cases[i].args[k]; k++)
			argv[k + 1] = (char *)cases[i].args[k];
		argv[k + 1] = NULL;
		rc = ctl_runv(&self->p, 0, argv);
		EXPECT_EQ(CTL_RUNTIME, rc) TH_LOG("%s: exit %d",
						  cases[i].args[0], rc);
		EXPECT_EQ(0, self->p.out.len);
		EXPECT_NE(NULL, strstr(self->p.err.s, cases[i].why))
			TH_LOG("stderr: %s", self->p.err.s);
		EXPECT_NE(NULL, strstr(self->p.err.s, "modprobe membroker"));
	}
}

/*
 * Whatever happened above, the module is loaded again for what follows.
 * A fixture of its own, declared last, because the harness runs the
 * tests of the global fixture (plain TEST()) first.
 */
FIXTURE(reload) {
};

FIXTURE_SETUP(reload)
{
}

FIXTURE_TEARDOWN(reload)
{
}

TEST_F(reload, module_is_back)
{
	struct mb_nl nl;

	if (!getenv("MB_MODULE"))
		SKIP(return, "no module in this VM");
	if (!module_loaded())
		EXPECT_EQ(0, mb_module_load());
	ASSERT_TRUE(module_loaded());
	ASSERT_EQ(0, mb_nl_open(&nl));
	mb_nl_close(&nl);
}

TEST_HARNESS_MAIN
