// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * membrokerctl: the terminal for "top", with plain ANSI sequences so that
 * the tool needs no ncurses and runs on a bare console in the test VM.
 *
 * Keys are read one at a time without echo; ISIG stays on so that Ctrl-C
 * still raises SIGINT, which "top" reads from its signalfd and answers by
 * restoring the terminal.  Ctrl-Z (SIGTSTP, read the same way) gives the
 * terminal back before top stops, and SIGCONT takes it again.  When
 * standard output is not a terminal nothing is switched and frames are
 * printed one after the other.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "ctl.h"

/* alternate screen + hidden cursor, and back */
#define TERM_ENTER	"\033[?1049h\033[?25l"
#define TERM_LEAVE	"\033[?25h\033[?1049l"

/**
 * struct ctl_term - what was changed, so that exactly that is undone
 * @raw_in:	stdin was switched to non-canonical, no-echo mode
 * @alt_out:	stdout was switched to the alternate screen
 * @saved:	stdin's settings before
 */
struct ctl_term {
	bool raw_in;
	bool alt_out;
	struct termios saved;
};

/* Keys one at a time, no echo: the saved settings with that changed */
static int ctl_term_raw(const struct ctl_term *t)
{
	struct termios raw = t->saved;

	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	return tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) ? -errno : 0;
}

int ctl_term_open(struct ctl_term **out)
{
	struct ctl_term *t;
	int err;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (isatty(STDIN_FILENO) && !tcgetattr(STDIN_FILENO, &t->saved)) {
		err = ctl_term_raw(t);
		if (err) {
			free(t);
			return err;
		}
		t->raw_in = true;
	}
	if (isatty(STDOUT_FILENO)) {
		fputs(TERM_ENTER, stdout);
		fflush(stdout);
		t->alt_out = true;
	}
	*out = t;
	return 0;
}

/* Give the terminal back as it was (before a stop, or for good) */
void ctl_term_suspend(const struct ctl_term *t)
{
	if (t->alt_out) {
		fputs(TERM_LEAVE, stdout);
		fflush(stdout);
	}
	if (t->raw_in)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
}

/* Take it again after SIGCONT; the caller redraws.  Return: 0 or -errno */
int ctl_term_resume(const struct ctl_term *t)
{
	int err;

	if (t->raw_in) {
		err = ctl_term_raw(t);
		if (err)
			return err;
	}
	if (t->alt_out) {
		fputs(TERM_ENTER, stdout);
		fflush(stdout);
	}
	return 0;
}

void ctl_term_close(struct ctl_term *t)
{
	if (!t)
		return;
	ctl_term_suspend(t);
	free(t);
}

/* Whether keys can be read and frames redrawn in place */
bool ctl_term_interactive(const struct ctl_term *t)
{
	return t->alt_out;
}

bool ctl_term_keys(const struct ctl_term *t)
{
	return t->raw_in;
}

void ctl_term_size(const struct ctl_term *t, int *rows, int *cols)
{
	struct winsize ws;

	*rows = 24;
	*cols = 80;
	if (t->alt_out && !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) &&
	    ws.ws_row && ws.ws_col) {
		*rows = ws.ws_row;
		*cols = ws.ws_col;
	}
}
