/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the library's VM tests share: filling caches with values a real
 * application would keep, finding a clerk in the snapshot, and reading
 * MemAvailable the way the kernel reports it.
 */
#ifndef LIB_TEST_H
#define LIB_TEST_H

#include <stdint.h>

#include "membroker.h"

/*
 * Above the mmap threshold the tests set (128 KiB), so that a value the
 * cache evicts goes back to the kernel at once.
 */
#define LT_VAL_BYTES	(256 * 1024)

/* Insert LT_VAL_BYTES values under keys base.. until @bytes are offered */
int lt_cache_fill(struct mb_cache *cache, uint32_t base, uint64_t bytes);

/* The snapshot of the clerk called @name; -ENOENT if there is none */
int lt_clerk_info(const char *name, struct mb_clerk_info *out);

/* MemAvailable in bytes or -errno; plain syscalls only (safe after fork) */
int64_t lt_mem_available(void);

#endif
