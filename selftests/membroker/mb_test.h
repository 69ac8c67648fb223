/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Harness glue shared by the membroker selftests.
 */
#ifndef MB_TEST_H
#define MB_TEST_H

#include <unistd.h>

#include "kselftest_harness.h"
#include "mb_nl.h"

/*
 * The 6.1 harness runs the test body even after SKIP() in FIXTURE_SETUP
 * (newer ones return early).  Leave the test's child at once instead:
 * exit status 255 is how the harness recognises a skipped test.
 */
#define MB_SKIP_SETUP(fmt, ...) SKIP(_exit(255), fmt, ##__VA_ARGS__)

/* Open @nl, skipping the test when the module is not loaded. */
#define MB_OPEN_OR_SKIP(nl) do {					\
	int __err = mb_nl_open(nl);					\
									\
	if (__err == -ENOENT)						\
		MB_SKIP_SETUP("family " MEMBROKER_FAMILY_NAME		\
			      " not registered");			\
	ASSERT_EQ(0, __err);						\
} while (0)

/* Generous bounds for events the kernel must deliver: failures, not timing */
#define MB_NOTIFY_TIMEOUT_MS	20000
#define MIB			(1024ULL * 1024)

#endif /* MB_TEST_H */
