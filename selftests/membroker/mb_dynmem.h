/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest's side of dynamic memory: how much the balloon holds and how
 * much virtio-mem has added, as the guest kernel sees it, and a way to
 * give the VM all of its memory back that returns once the guest has it.
 * The requests themselves go through the host channel (mb_host.h).
 */
#ifndef MB_DYNMEM_H
#define MB_DYNMEM_H

#include <stdint.h>

/*
 * A balloon target larger than the VM's RAM: QEMU clamps it to the RAM
 * size, so the balloon deflates completely whatever that size is.
 */
#define MB_BALLOON_NONE		(1ULL << 40)

/* Bound for the guest to follow a request: a hang, not a speed limit. */
#define MB_DYNMEM_TIMEOUT_MS	30000

/* Pages the balloon driver holds now (/proc/vmstat). */
int mb_dynmem_balloon_pages(uint64_t *pages);

/* Bytes of memory virtio-mem has added to the guest (/proc/iomem). */
int mb_dynmem_virtio_mem_bytes(uint64_t *bytes);

/*
 * Balloon empty, virtio-mem at 0, and wait (up to timeout_ms) until the
 * guest has taken all of it back.  Returns 0, -ETIMEDOUT or -errno.
 */
int mb_dynmem_restore(int timeout_ms);

/* The sum of all zones' high watermarks in bytes (/proc/zoneinfo). */
int mb_dynmem_wmark_high(uint64_t *bytes);

/*
 * The module's automatic thresholds for @total bytes of memory, from
 * Documentation/membroker.rst ("Thresholds"):
 *   low  = max(clamp(total / 8, 32 MiB, 256 MiB), 4 * sum(high watermarks))
 *   low  = min(low, total / 4)
 *   high = min(3 * low, total / 2)
 */
uint64_t mb_dynmem_auto_low(uint64_t total, uint64_t wmark_high);
uint64_t mb_dynmem_auto_high(uint64_t low, uint64_t total);

/* CLOCK_MONOTONIC in ns, the clock of MEMBROKER_A_TIMESTAMP_NS. */
uint64_t mb_dynmem_now_ns(void);

#endif
