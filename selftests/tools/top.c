// SPDX-License-Identifier: GPL-2.0
/*
 * "membrokerctl top": frames that show the module's state, available
 * memory against the thresholds and the latest notifications; a new frame
 * as soon as a notification arrives; and a clean exit when asked, be it
 * --iterations, SIGINT, 'q' or Ctrl-C on a terminal, which it must give
 * back as it found it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mb_test.h"
#include "ctl_fixture.h"

#define HEADER		"membrokerctl top - source: kmod - "
#define ALT_ON		"\033[?1049h"
#define ALT_OFF		"\033[?1049l"
#define MAX_HISTORY	4096
/* The list's title: notifications received while top ran */
#define RECEIVED(n)	\
	"\nnotifications: " #n " received, 0 resynchronised; latest:\n"

FIXTURE(top) {
	struct ctl_proc p;
	struct ctl_kernel k;
};

FIXTURE_SETUP(top)
{
	ctl_kernel_open(_metadata, &self->k);
}

FIXTURE_TEARDOWN(top)
{
	ctl_proc_free(&self->p);
	ctl_kernel_close(_metadata, &self->k);
}

/* Frame @n (from 0) of plain output, as a string to free, or NULL */
static char *frame(const char *out, int n)
{
	const char *start = strstr(out, HEADER), *end;

	while (start && n--)
		start = strstr(start + 1, HEADER);
	if (!start)
		return NULL;
	end = strstr(start + 1, HEADER);
	return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

static int count(const char *s, const char *what)
{
	int n = 0;

	for (s = strstr(s, what); s; s = strstr(s + 1, what))
		n++;
	return n;
}

/* The last notification line of a frame: its last line starting "[" */
static const char *last_entry(const char *f, char *buf, size_t len)
{
	const char *line, *found = NULL;

	for (line = f; line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (*line == '[' && line[1] >= '0' && line[1] <= '9')
			found = line;
	}
	if (!found)
		return NULL;
	return ctl_nth_line(found, 0, buf, len);
}

/*
 * A plain frame against the module: the state line, the figures, the bar
 * with both thresholds, and the newest notification as history has it.
 */
static void __check_frame(struct __test_metadata *_metadata, const char *f,
			  const struct mb_state *st,
			  const struct mb_state *newest, const char *reason)
{
	char buf[512], want[128], why[128];
	const char *bar;

	snprintf(want, sizeof(want), "%s   flags: ", ctl_state_name(st->state));
	EXPECT_EQ(0, strncmp(ctl_field(f, "state", buf, sizeof(buf)) ?: "",
			     want, strlen(want))) TH_LOG("state line '%s'", buf);
	snprintf(want, sizeof(want), "reason: %s   seq: %llu", reason,
		 (unsigned long long)newest->seq);
	EXPECT_NE(NULL, strstr(buf, want)) TH_LOG("'%s' not in '%s'", want,
						  buf);
	EXPECT_NE(NULL, ctl_field(f, "available", buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(buf, " of ")) TH_LOG("available: '%s'", buf);
	EXPECT_NE(NULL, ctl_field(f, "committed", buf, sizeof(buf)));
	EXPECT_NE(NULL, strstr(f, "\nlow (L): "));
	EXPECT_NE(NULL, strstr(f, "   high (H): "));

	/* the bar: '#' up to available, '|' at each threshold */
	bar = strstr(f, "\n[");
	ASSERT_NE(NULL, bar);
	ctl_nth_line(bar + 1, 0, buf, sizeof(buf));
	EXPECT_EQ(2, count(buf, "|")) TH_LOG("bar '%s'", buf);
	EXPECT_EQ(']', buf[strlen(buf) - 1]);
	ctl_nth_line(bar + 1, 1, buf, sizeof(buf));
	EXPECT_EQ(1, count(buf, "L")) TH_LOG("marks '%s'", buf);
	EXPECT_EQ(1, count(buf, "H"));

	ASSERT_NE(NULL, last_entry(f, buf, sizeof(buf)))
		TH_LOG("no notification listed in:\n%s", f);
	EXPECT_EQ(0, ctl_line_matches(buf, newest, why, sizeof(why)))
		TH_LOG("%s in '%s'", why, buf);
	EXPECT_EQ(NULL, strchr(f, '\033'));
}

#define check_frame(f, st, newest, reason) \
	__check_frame(_metadata, f, st, newest, reason)

TEST_F(top, iterations)
{
	struct mb_state *h;
	uint64_t seq0, seq1;
	char *f;
	int i, n;

	h = calloc(MAX_HISTORY, sizeof(*h));
	ASSERT_NE(NULL, h);
	ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq0));
	ASSERT_EQ(CTL_OK, ctl_run(&self->p, 0, "top", "--iterations", "2",
				  "--interval", "10"));
	ASSERT_EQ(0, mb_sysfs_read_u64("seq", &seq1));
	n = mb_nl_dump_history(&self->k.nl, h, MAX_HISTORY);
	ASSERT_LT(0, n);
	EXPECT_EQ(0, self->p.err.len) TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_EQ(2, count(self->p.out.s, HEADER))
		TH_LOG("stdout:\n%s", self->p.out.s);
	if (seq0 == seq1) {
		for (i = 0; i < 2; i++) {
			f = frame(self->p.out.s, i);
			ASSERT_NE(NULL, f);
			check_frame(f, &self->k.st, &h[n - 1], "query");
			EXPECT_NE(NULL, strstr(f, RECEIVED(0)));
			free(f);
		}
	} else {
		TH_LOG("notifications came during the run; frames not compared");
	}
	free(h);
}

/*
 * A notification redraws at once (the interval is an hour).  The frame
 * looked at is the one whose state line names our notification's seq: a
 * notification the module sent on its own before ours (an evaluation
 * that ran meanwhile) also redraws, and must not be mistaken for ours.
 * SIGINT then ends top with status 0.
 */
TEST_F(top, redraws_on_notification)
{
	struct mb_state seen;
	char want[64];
	const char *at;
	size_t end;
	char *f;
	int n;

	ASSERT_EQ(0, ctl_start(&self->p, 0, "top", "--interval", "3600000"));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "latest:\n", 0,
				  CTL_GUARD_MS));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "\n\n",
				  strstr(self->p.out.s, "latest:\n") -
				  self->p.out.s, CTL_GUARD_MS));
	end = self->p.out.len;
	EXPECT_EQ(1, count(self->p.out.s, HEADER));

	ASSERT_EQ(0, ctl_set_thresholds(&self->k.nl, &self->k.mc,
					self->k.st.low + 4 * MIB, self->k.st.high,
					&seen));
	snprintf(want, sizeof(want), "   seq: %llu\n",
		 (unsigned long long)seen.seq);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, want, end,
				  CTL_GUARD_MS))
		TH_LOG("no frame for seq %llu; stdout:\n%s",
		       (unsigned long long)seen.seq, self->p.out.s);
	at = strstr(self->p.out.s + end, want);
	ASSERT_NE(NULL, at);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "latest:\n",
				  at - self->p.out.s, CTL_GUARD_MS));
	at = strstr(self->p.out.s + end, want);
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "\n\n",
				  strstr(at, "latest:\n") - self->p.out.s,
				  CTL_GUARD_MS));

	ASSERT_EQ(0, ctl_signal(&self->p, SIGINT));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS));
	/* the first frame, then one per notification received */
	n = count(self->p.out.s, HEADER);
	EXPECT_LE(2, n);
	for (f = NULL; n > 1 && !f; n--) {
		f = frame(self->p.out.s, n - 1);
		ASSERT_NE(NULL, f);
		if (!strstr(f, want)) {
			free(f);
			f = NULL;
		}
	}
	ASSERT_NE(NULL, f) TH_LOG("no frame shows seq %llu",
				  (unsigned long long)seen.seq);
	check_frame(f, &seen, &seen, "config");
	EXPECT_NE(NULL, strstr(f, " received, 0 resynchronised; latest:\n"));
	EXPECT_EQ(NULL, strstr(f, RECEIVED(0)));
	free(f);
}

/* Whether the terminal is back in normal (canonical, echoing) mode */
static int tty_mode(struct ctl_proc *p, tcflag_t *lflag)
{
	struct termios t;
	int fd, err = 0;

	fd = open(ptsname(p->pty), O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (tcgetattr(fd, &t))
		err = -errno;
	close(fd);
	*lflag = t.c_lflag;
	return err;
}

/*
 * On a terminal: the alternate screen, keys read without echo; the key
 * @key (q, or Ctrl-C through the terminal's own signal) ends top with
 * status 0, and the screen and the terminal mode are restored.
 */
static void __on_terminal(struct __test_metadata *_metadata,
			  FIXTURE_DATA(top) *self, char key)
{
	tcflag_t lflag;
	size_t at;

	ASSERT_EQ(0, ctl_start_pty(&self->p, (char *const[]){
		(char *)ctl_path(), "top", "--interval", "3600000", NULL }));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "\033[J", 0,
				  CTL_GUARD_MS))
		TH_LOG("no frame; screen: %s", self->p.out.s);
	EXPECT_EQ(0, strncmp(self->p.out.s, ALT_ON, strlen(ALT_ON)));
	EXPECT_NE(NULL, strstr(self->p.out.s, "membrokerctl top"));
	EXPECT_NE(NULL, strstr(self->p.out.s, "(q quits)"));
	ASSERT_EQ(0, tty_mode(&self->p, &lflag));
	EXPECT_EQ(0, lflag & (ICANON | ECHO));

	at = self->p.out.len;
	ASSERT_EQ(1, write(self->p.pty, &key, 1));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS))
		TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_NE(NULL, strstr(self->p.out.s + at, ALT_OFF))
		TH_LOG("the screen was not given back");
	ASSERT_EQ(0, tty_mode(&self->p, &lflag));
	EXPECT_EQ(ICANON | ECHO, lflag & (ICANON | ECHO));
	EXPECT_EQ(0, self->p.err.len) TH_LOG("stderr: %s", self->p.err.s);
}

TEST_F(top, terminal_q)
{
	__on_terminal(_metadata, self, 'q');
}

TEST_F(top, terminal_ctrl_c)
{
	__on_terminal(_metadata, self, '\003');
}

/* The scheduler's state letter of @pid ('T' once stopped), or 0 */
static char proc_state(pid_t pid)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Ctrl-Z: top gives the screen and the terminal mode back, then stops;
 * SIGCONT (what the shell's fg sends) takes the terminal again and
 * redraws; q still ends it with status 0.
 */
TEST_F(top, terminal_ctrl_z)
{
	static const struct timespec tick = { .tv_nsec = 10 * 1000000L };
	tcflag_t lflag;
	char key = '\032';
	int i;
	size_t at;

	ASSERT_EQ(0, ctl_start_pty(&self->p, (char *const[]){
		(char *)ctl_path(), "top", "--interval", "3600000", NULL }));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "\033[J", 0,
				  CTL_GUARD_MS))
		TH_LOG("no frame; screen: %s", self->p.out.s);

	at = self->p.out.len;
	ASSERT_EQ(1, write(self->p.pty, &key, 1));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, ALT_OFF, at,
				  CTL_GUARD_MS))
		TH_LOG("the screen was not given back before stopping");
	for (i = 0; i < CTL_GUARD_MS / 10 && proc_state(self->p.pid) != 'T';
	     i++)
		nanosleep(&tick, NULL);
	ASSERT_EQ('T', proc_state(self->p.pid)) TH_LOG("top did not stop");
	ASSERT_EQ(0, tty_mode(&self->p, &lflag));
	EXPECT_EQ(ICANON | ECHO, lflag & (ICANON | ECHO));

	at = self->p.out.len;
	ASSERT_EQ(0, kill(self->p.pid, SIGCONT));
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, ALT_ON, at,
				  CTL_GUARD_MS))
		TH_LOG("the screen was not taken again");
	ASSERT_EQ(0, ctl_wait_for(&self->p, &self->p.out, "\033[J", at,
				  CTL_GUARD_MS))
		TH_LOG("no frame after SIGCONT");
	ASSERT_EQ(0, tty_mode(&self->p, &lflag));
	EXPECT_EQ(0, lflag & (ICANON | ECHO));

	key = 'q';
	ASSERT_EQ(1, write(self->p.pty, &key, 1));
	ASSERT_EQ(CTL_OK, ctl_finish(&self->p, CTL_GUARD_MS))
		TH_LOG("stderr: %s", self->p.err.s);
	EXPECT_EQ(0, self->p.err.len) TH_LOG("stderr: %s", self->p.err.s);
}

TEST_HARNESS_MAIN
