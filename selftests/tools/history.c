// SPDX-License-Identifier: GPL-2.0
/*
 * "membrokerctl history" lists the module's ring of notifications, oldest
 * first, exactly as GET_HISTORY returns it: one "watch" line per entry,
 * a JSON array with -j, the newest N with -n.  A dump taken before and
 * after the tool's run frames it: when both agree, nothing was added in
 * between, and the tool's list must be that dump, entry for entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "ctl_fixture.h"

#define MAX_HISTORY	4096

FIXTURE(history) {
	struct ctl_proc p;
	struct ctl_kernel k;
	struct mb_state *h;
	int n;
};

/* Two notifications of our own, so that the ring is never trivial */
FIXTURE_SETUP(history)
{
	const struct mb_state *st = &self->k.st;
	struct mb_state seen;

	self->h = calloc(MAX_HISTORY, sizeof(*self->h));
	ASSERT_NE(NULL, self->h);
	ctl_kernel_open(_metadata, &self->k);
	ASSERT_EQ(0, ctl_set_thresholds(&self->k.nl, &self->k.mc,
					st->low + 4 * MIB, st->high, &seen));
	ASSERT_EQ(0, ctl_set_thresholds(&self->k.nl, &self->k.mc,
					st->low + 8 * MIB, st->high, &seen));
}

FIXTURE_TEARDOWN(history)
{
	ctl_proc_free(&self->p);
	ctl_kernel_close(_metadata, &self->k);
	free(self->h);
}

/*
 * Run the tool with @argv framed by two dumps, which are then the same
 * and left in self->h.  Return: the tool's exit status once a run was
 * framed by equal dumps, or -EAGAIN.
 */
static int __framed(struct __test_metadata *_metadata,
		    FIXTURE_DATA(history) *self, char *const argv[])
{
	struct mb_state last;
	int tries, n2, rc;

	for (tries = 0; tries < 5; tries++) {
		self->n = mb_nl_dump_history(&self->k.nl, self->h, MAX_HISTORY);
		if (self->n <= 0)
			return self->n ?: -ENODATA;
		last = self->h[self->n - 1];
		rc = ctl_runv(&self->p, 0, argv);
		n2 = mb_nl_dump_history(&self->k.nl, self->h, MAX_HISTORY);
		if (n2 == self->n && self->h[n2 - 1].seq == last.seq)
			return rc;
		TH_LOG("the ring moved during the run; again");
	}
	return -EAGAIN;
}

#define framed(self, ...)						\
	__framed(_metadata, self, (char *const[]){ (char *)ctl_path(),	\
		 __VA_ARGS__, NULL })

TEST_F(history, text_is_the_ring)
{
	char line[512], why[128];
	uint64_t seq;
	int i;

	ASSERT_EQ(CTL_OK, framed(self, "history"));
	EXPECT_EQ(0, self->p.err.len);
	ASSERT_LE(3, self->n);
	ASSERT_EQ(self->n, ctl_count_lines(self->p.out.s))
		TH_LOG("%d entries, stdout:\n%s", self->n, self->p.out.s);
	for (i = 0; i < self->n; i++) {
		ctl_nth_line(self->p.out.s, i, line, sizeof(line));
		EXPECT_EQ(0, ctl_line_matches(line, &self->h[i], why,
					      sizeof(why)))
			TH_LOG("entry %d: %s in '%s'", i, why, line);
		if (i)
			EXPECT_EQ(self->h[i - 1].seq + 1, self->h[i].seq);
	}
	/* the newest entry is what sysfs shows */
	ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq));
	EXPECT_EQ(seq, self->h[self->n - 1].seq);
	EXPECT_NE(NULL, strstr(line, " reason=config"));
}

TEST_F(history, json_is_the_ring)
{
	char why[128];
	struct json *j;
	bool resync;
	int i;

	ASSERT_EQ(CTL_OK, framed(self, "-j", "history"));
	ASSERT_EQ(0, json_parse(self->p.out.s, &j))
		TH_LOG("not JSON: %.400s", self->p.out.s);
	ASSERT_EQ(JSON_ARRAY, j->type);
	ASSERT_EQ((size_t)self->n, j->n);
	for (i = 0; i < self->n; i++) {
		EXPECT_EQ(0, json_matches_state(&j->kids[i], &self->h[i], why,
						sizeof(why)))
			TH_LOG("entry %d: %s", i, why);
		EXPECT_EQ(0, json_bool(&j->kids[i], "resync", &resync));
		EXPECT_FALSE(resync);
	}
	json_free(j);
}

TEST_F(history, newest_n)
{
	char line[512], why[128];
	struct json *j;
	int i;

	ASSERT_EQ(CTL_OK, framed(self, "history", "-n", "2"));
	ASSERT_LE(2, self->n);
	ASSERT_EQ(2, ctl_count_lines(self->p.out.s));
	for (i = 0; i < 2; i++) {
		ctl_nth_line(self->p.out.s, i, line, sizeof(line));
		EXPECT_EQ(0, ctl_line_matches(line, &self->h[self->n - 2 + i],
					      why, sizeof(why)))
			TH_LOG("%s in '%s'", why, line);
	}

	ASSERT_EQ(CTL_OK, framed(self, "-j", "history", "--lines", "1"));
	ASSERT_EQ(0, json_parse(self->p.out.s, &j));
	ASSERT_EQ(JSON_ARRAY, j->type);
	ASSERT_EQ(1, j->n);
	EXPECT_EQ(0, json_matches_state(&j->kids[0], &self->h[self->n - 1],
					why, sizeof(why)))
		TH_LOG("%s", why);
	json_free(j);

	/* more than there is: all of it */
	ASSERT_EQ(CTL_OK, framed(self, "history", "-n", "100000"));
	EXPECT_EQ(self->n, ctl_count_lines(self->p.out.s));
}

/* Reading the history needs no privilege */
TEST_F(history, unprivileged)
{
	EXPECT_EQ(CTL_OK, ctl_run(&self->p, CTL_AS_NOBODY, "history",
				  "-n", "1"));
	EXPECT_EQ(1, ctl_count_lines(self->p.out.s));
}

TEST_HARNESS_MAIN
