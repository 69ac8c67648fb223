// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Names of states and sources, for messages and for $MEMBROKER_SOURCE.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

static const char *const mb_state_names[] = {
	[MB_STATE_UNKNOWN] = "unknown",
	[MB_STATE_LOW] = "low",
	[MB_STATE_STEADY] = "steady",
	[MB_STATE_HIGH] = "high",
};

static const char *const mb_source_names[] = {
	[MB_SOURCE_AUTO] = "auto",
	[MB_SOURCE_KMOD] = "kmod",
	[MB_SOURCE_CGROUP] = "cgroup",
	[MB_SOURCE_PSI] = "psi",
	[MB_SOURCE_MEMINFO] = "meminfo",
	[MB_SOURCE_FAKE] = "fake",
};

const char *mb_state_name(uint32_t state)
{
	if (state >= MB_ARRAY_SIZE(mb_state_names))
		return "unknown";
	return mb_state_names[state];
}

const char *mb_source_name(uint32_t source)
{
	if (source >= MB_ARRAY_SIZE(mb_source_names))
		return "unknown";
	return mb_source_names[source];
}

int mb_source_parse(const char *name)
{
	size_t i;

	if (!name)
		return -EINVAL;
	for (i = 0; i < MB_ARRAY_SIZE(mb_source_names); i++)
		if (!strcmp(name, mb_source_names[i]))
			return (int)i;
	return -EINVAL;
}
