// SPDX-License-Identifier: GPL-2.0
/*
 * "membrokerctl config": shows the module's configuration exactly as
 * GET_CONFIG has it; "config set" as root changes it, which GET_CONFIG,
 * "config" and the thresholds in force (sysfs, status) then show; values
 * the module refuses fail with its own explanation, exit status 1 and no
 * change; so does an unprivileged user, with a message about privileges.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "ctl_fixture.h"

FIXTURE(config) {
	struct ctl_proc p;
	struct ctl_kernel k;
};

FIXTURE_SETUP(config)
{
	ctl_kernel_open(_metadata, &self->k);
}

FIXTURE_TEARDOWN(config)
{
	ctl_proc_free(&self->p);
	ctl_kernel_close(_metadata, &self->k);
}

/* "low: auto" for 0, else "low: 24.0 MiB (25165824 bytes)" */
static int text_size(const char *out, const char *key, uint64_t *v)
{
	char buf[64];

	if (!ctl_field(out, key, buf, sizeof(buf)))
		return -ENOENT;
	if (!strcmp(buf, "auto")) {
		*v = 0;
		return 0;
	}
	if (!ctl_field_size_ok(out, key))
		return -EBADMSG;
	return ctl_field_bytes(out, key, v);
}

/* "poll-min: 5 ms": the number before @unit */
static int text_u32(const char *out, const char *key, const char *unit,
		    uint32_t *v)
{
	char buf[64], tail[16] = "";
	unsigned int n;
	int got;

	if (!ctl_field(out, key, buf, sizeof(buf)))
		return -ENOENT;
	got = sscanf(buf, "%u %15s", &n, tail);
	if (got < 1 || strcmp(tail, unit))
		return -EBADMSG;
	*v = n;
	return 0;
}

/* The configuration "config" printed, in GET_CONFIG's terms */
static int parse_text(const char *out, struct mb_config *cfg)
{
	int err;

	memset(cfg, 0, sizeof(*cfg));
	err = text_size(out, "low", &cfg->low);
	err = err ?: text_size(out, "high", &cfg->high);
	err = err ?: text_size(out, "hysteresis", &cfg->hysteresis);
	err = err ?: text_u32(out, "poll-min", "ms", &cfg->poll_min_ms);
	err = err ?: text_u32(out, "poll-max", "ms", &cfg->poll_max_ms);
	err = err ?: text_u32(out, "ratelimit", "ms", &cfg->ratelimit_ms);
	err = err ?: text_u32(out, "vlow", "%", &cfg->virtual_low_percent);
	err = err ?: text_u32(out, "history-size", "", &cfg->history_size);
	cfg->have = MB_CONFIG_ATTRS;
	return err;
}

static int parse_json(const char *out, struct mb_config *cfg)
{
	static const char *const keys[] = {
		"low_bytes", "high_bytes", "hysteresis_bytes", "poll_min_ms",
		"poll_max_ms", "ratelimit_ms", "virtual_low_percent",
		"history_size",
	};
	uint64_t v[ARRAY_SIZE(keys)];
	struct json *j;
	size_t i;
	int err = 0;

	if (json_parse(out, &j))
		return -EBADMSG;
	for (i = 0; i < ARRAY_SIZE(keys) && !err; i++) {
		err = json_u64(j, keys[i], &v[i]);
		if (!err && i >= 3 && v[i] > UINT32_MAX)
			err = -ERANGE;
	}
	if (!err && (j->type != JSON_OBJECT || j->n != ARRAY_SIZE(keys)))
		err = -EBADMSG;
	json_free(j);
	if (err)
		return err;
	*cfg = (struct mb_config){
		.have = MB_CONFIG_ATTRS,
		.low = v[0], .high = v[1], .hysteresis = v[2],
		.poll_min_ms = (uint32_t)v[3], .poll_max_ms = (uint32_t)v[4],
		.ratelimit_ms = (uint32_t)v[5],
		.virtual_low_percent = (uint32_t)v[6],
		.history_size = (uint32_t)v[7],
	};
	return 0;
}

static void __expect_same_config(struct __test_metadata *_metadata,
				 const struct mb_config *want,
				 const struct mb_config *got)
{
	EXPECT_EQ(want->low, got->low);
	EXPECT_EQ(want->high, got->high);
	EXPECT_EQ(want->hysteresis, got->hysteresis);
	EXPECT_EQ(want->poll_min_ms, got->poll_min_ms);
	EXPECT_EQ(want->poll_max_ms, got->poll_max_ms);
	EXPECT_EQ(want->ratelimit_ms, got->ratelimit_ms);
	EXPECT_EQ(want->virtual_low_percent, got->virtual_low_percent);
	EXPECT_EQ(want->history_size, got->history_size);
}

#define expect_same_config(want, got) \
	__expect_same_config(_metadata, want, got)

TEST_F(config, show)
{
	struct mb_config cfg;
	char *text;

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "config"));
	EXPECT_EQ(0, self->p.err.len);
	ASSERT_EQ(0, parse_text(self->p.out.s, &cfg))
		TH_LOG("cannot read:\n%s", self->p.out.s);
	expect_same_config(&self->k.saved, &cfg);
	text = strdup(self->p.out.s);
	ASSERT_NE(NULL, text);

	/* "config show" and an unprivileged user see the same */
	EXPECT_EQ(CTL_OK, ctl_run(&self->p, 0, "config", "show"));
	EXPECT_STREQ(text, self->p.out.s);
	EXPECT_EQ(CTL_OK, ctl_run(&self->p, CTL_AS_NOBODY, "config"));
	EXPECT_STREQ(text, self->p.out.s);
	free(text);

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "-j", "config"));
	ASSERT_EQ(0, parse_json(self->p.out.s, &cfg))
		TH_LOG("cannot read:\n%s", self->p.out.s);
	expect_same_config(&self->k.saved, &cfg);
}

/* Every key changed at once, then the thresholds back to automatic */
TEST_F(config, set_as_root)
{
	struct mb_config want = self->k.saved, got;
	char pmin[16], pmax[16], rl[16], vl[16];
	struct mb_state seen;
	uint64_t v;

	want.low = 24 * MIB;
	want.high = 80 * MIB;
	want.hysteresis = 2 * MIB;
	want.poll_min_ms = self->k.saved.poll_min_ms < 1000 ?
			   self->k.saved.poll_min_ms + 1 : 999;
	want.poll_max_ms = self->k.saved.poll_max_ms < 60000 ?
			   self->k.saved.poll_max_ms + 1 : 59999;
	want.ratelimit_ms = self->k.saved.ratelimit_ms < 10000 ?
			    self->k.saved.ratelimit_ms + 1 : 9999;
	want.virtual_low_percent = self->k.saved.virtual_low_percent == 85 ?
				   80 : 85;
	ASSERT_LT(want.high, self->k.st.total);
	snprintf(pmin, sizeof(pmin), "%u", want.poll_min_ms);
	snprintf(pmax, sizeof(pmax), "%u", want.poll_max_ms);
	snprintf(rl, sizeof(rl), "%u", want.ratelimit_ms);
	snprintf(vl, sizeof(vl), "%u", want.virtual_low_percent);

	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "config", "set",
				  "low", "24M", "high", "80M",
				  "hysteresis", "2M", "poll-min", pmin,
				  "poll-max", pmax, "ratelimit", rl,
				  "vlow", vl))
		TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_EQ(0, self->p.out.len);
	EXPECT_EQ(0, self->p.err.len);

	ASSERT_EQ(0, mb_nl_get_config(&self->k.nl, &got));
	expect_same_config(&want, &got);
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "config"));
	ASSERT_EQ(0, parse_text(self->p.out.s, &got));
	expect_same_config(&want, &got);

	/* in force: announced, in sysfs and in status */
	ASSERT_EQ(0, ctl_wait_notify(&self->k.mc, want.low, want.high, &seen));
	EXPECT_EQ(MEMBROKER_REASON_CONFIG, seen.reason);
	ASSERT_EQ(0, mb_sysfs_read_u64("low_bytes", &v));
	EXPECT_EQ(want.low, v);
	ASSERT_EQ(0, mb_sysfs_read_u64("high_bytes", &v));
	EXPECT_EQ(want.high, v);
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "status"));
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "low", &v));
	EXPECT_EQ(want.low, v);
	ASSERT_EQ(0, ctl_field_bytes(self->p.out.s, "high", &v));
	EXPECT_EQ(want.high, v);

	/* the long key names, and "auto" */
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "config", "set",
				  "low-bytes", "auto", "high-bytes", "auto",
				  "hysteresis-bytes", "auto"));
	want.low = 0;
	want.high = 0;
	want.hysteresis = 0;
	ASSERT_EQ(0, mb_nl_get_config(&self->k.nl, &got));
	expect_same_config(&want, &got);
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "-j", "config"));
	ASSERT_EQ(0, parse_json(self->p.out.s, &got));
	expect_same_config(&want, &got);
}

/*
 * Run "config set @args..." expecting the module to refuse it with
 * @why: exit status 1, the kernel's words on stderr, nothing on stdout,
 * and neither the configuration nor the thresholds in force changed.
 */
static void __expect_refused(struct __test_metadata *_metadata,
			     FIXTURE_DATA(config) *self, unsigned int flags,
			     const char *why, char *const argv[])
{
	uint64_t low0, high0, low1, high1;
	struct mb_config after;
	int rc;

	ASSERT_EQ(0, mb_sysfs_read_u64("low_bytes", &low0));
	ASSERT_EQ(0, mb_sysfs_read_u64("high_bytes", &high0));
	rc = ctl_runv(&self->p, flags, argv);
	TH_LOG("%s", self->p.err.s);
	EXPECT_EQ(CTL_RUNTIME, rc) TH_LOG("%s: exit %d", why, rc);
	EXPECT_EQ(0, self->p.out.len);
	EXPECT_EQ(0, strncmp(self->p.err.s, "membrokerctl: ", 14));
	EXPECT_NE(NULL, strstr(self->p.err.s, why))
		TH_LOG("want '%s' in: %s", why, self->p.err.s);
	EXPECT_EQ(1, ctl_count_lines(self->p.err.s))
		TH_LOG("one line, not: %s", self->p.err.s);
	/* which values: the kernel's words name the setting, not the value */
	if (!(flags & CTL_AS_NOBODY)) {
		char asked[256] = "rejected '";
		int i;

		for (i = 3; argv[i]; i++) {
			strncat(asked, argv[i], sizeof(asked) - strlen(asked) - 4);
			strcat(asked, argv[i + 1] ? " " : "': ");
		}
		EXPECT_NE(NULL, strstr(self->p.err.s, asked))
			TH_LOG("want \"%s\" in: %s", asked, self->p.err.s);
	}

	ASSERT_EQ(0, mb_nl_get_config(&self->k.nl, &after));
	EXPECT_TRUE(mb_config_equal(&self->k.saved, &after));
	ASSERT_EQ(0, mb_sysfs_read_u64("low_bytes", &low1));
	ASSERT_EQ(0, mb_sysfs_read_u64("high_bytes", &high1));
	EXPECT_EQ(low0, low1);
	EXPECT_EQ(high0, high1);
}

#define expect_refused(self, flags, why, ...)				\
	__expect_refused(_metadata, self, flags, why,			\
			 (char *const[]){ (char *)ctl_path(), "config",	\
			 "set", __VA_ARGS__, NULL })

#define LOW_HIGH	"low threshold is not below the high threshold"

TEST_F(config, low_not_below_high)
{
	char above[32];

	expect_refused(self, 0, LOW_HIGH, "low", "100M", "high", "50M");
	expect_refused(self, 0, LOW_HIGH, "low", "64M", "high", "64M");
	/* against the high in force, which is not given */
	ASSERT_LT(self->k.st.high, self->k.st.total);
	snprintf(above, sizeof(above), "%" PRIu64,
		 (uint64_t)(self->k.st.high + (self->k.st.total - self->k.st.high) / 2));
	expect_refused(self, 0, LOW_HIGH, "low", above);
}

TEST_F(config, beyond_total_memory)
{
	char big[32];

	snprintf(big, sizeof(big), "%" PRIu64,
		 (uint64_t)(self->k.st.total + MIB));
	expect_refused(self, 0, "high threshold exceeds total memory",
		       "high", big);
	expect_refused(self, 0, "low threshold exceeds total memory",
		       "low", big, "high", big);
	expect_refused(self, 0, "hysteresis exceeds total memory",
		       "hysteresis", big);
	expect_refused(self, 0, "high threshold exceeds total memory",
		       "high", "1T");
}

TEST_F(config, out_of_range)
{
	expect_refused(self, 0, "poll_min_ms is greater than poll_max_ms",
		       "poll-min", "900", "poll-max", "100");
	expect_refused(self, 0, "virtual_low_percent must be within 1..100",
		       "vlow", "0");
	expect_refused(self, 0, "virtual_low_percent must be within 1..100",
		       "vlow", "101");
	expect_refused(self, 0, "poll_min_ms must be within 1..1000",
		       "poll-min", "5000");
}

/* Changing the configuration is for root; the message must say so */
TEST_F(config, unprivileged)
{
	expect_refused(self, CTL_AS_NOBODY, "needs CAP_NET_ADMIN",
		       "low", "30M", "high", "90M");
	/* refused for privileges even where the values would be refused */
	expect_refused(self, CTL_AS_NOBODY, "needs CAP_NET_ADMIN",
		       "low", "100M", "high", "50M");
}

TEST_HARNESS_MAIN
