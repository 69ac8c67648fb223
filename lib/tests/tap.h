/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tiny TAP producer for the library's unit tests.
 *
 *   plan(n)            announce n tests (0: the plan comes at the end)
 *   ok(cond, fmt, ...) one test; returns cond, so failures can be acted on
 *   skip(fmt, ...)     one skipped test ("ok N - # SKIP ...")
 *   diag(fmt, ...)     a comment line
 *   done_testing()     the trailing plan; the exit status for main()
 *
 * Output goes to stdout, unbuffered, so a crash still leaves every line
 * printed so far for the runner (tests/run.sh) to count.
 */
#ifndef MB_TAP_H
#define MB_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_planned, tap_run, tap_failed;

static inline void plan(int n)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	printf("TAP version 13\n");
	tap_planned = n;
	if (n > 0)
		printf("1..%d\n", n);
}

static inline __attribute__((format(printf, 2, 3)))
bool ok(bool cond, const char *fmt, ...)
{
	va_list ap;

	tap_run++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return cond;
}

#define skip(...)	ok(true, "# SKIP " __VA_ARGS__)

static inline __attribute__((format(printf, 1, 2)))
void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline int done_testing(void)
{
	if (tap_planned <= 0)
		printf("1..%d\n", tap_run);
	else if (tap_planned != tap_run)
		tap_failed++;
	return tap_failed ? 1 : 0;
}

#endif /* MB_TAP_H */
