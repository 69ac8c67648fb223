// SPDX-License-Identifier: GPL-2.0
/*
 * What the guest holds of its dynamic memory, read from the guest kernel
 * rather than from the host: the host's figures change when a request is
 * accepted, the guest's once the memory has really moved.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mb_dynmem.h"
#include "mb_host.h"

#define POLL_MS	20
#define MIB	(1024ULL * 1024)

uint64_t mb_dynmem_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * The balloon counts every page it takes (balloon_inflate) and gives
 * back (balloon_deflate) as VM events; migration moves pages within it.
 */
int mb_dynmem_balloon_pages(uint64_t *pages)
{
	unsigned long long v, in = 0, out = 0;
	char name[64], line[128];
	int found = 0;
	FILE *f;

	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu", name, &v) != 2)
			continue;
		if (!strcmp(name, "balloon_inflate")) {
			in = v;
			found++;
		} else if (!strcmp(name, "balloon_deflate")) {
			out = v;
			found++;
		}
	}
	fclose(f);
	if (found != 2)
		return -ENODATA;
	*pages = in > out ? in - out : 0;
	return 0;
}

/*
 * virtio-mem adds its memory block by block, each a "System RAM
 * (virtio_mem)" resource, and removes the resource only once the block
 * is offline and gone.
 */
int mb_dynmem_virtio_mem_bytes(uint64_t *bytes)
{
	unsigned long long start, end;
	char line[256];
	uint64_t sum = 0;
	FILE *f;

	f = fopen("/proc/iomem", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, ": System RAM (virtio_mem)"))
			continue;
		if (sscanf(line, " %llx-%llx", &start, &end) != 2 ||
		    end < start) {
			fclose(f);
			return -EBADMSG;
		}
		sum += end - start + 1;
	}
	fclose(f);
	*bytes = sum;
	return 0;
}

/* The module adds up the zones' _watermark[WMARK_HIGH] likewise. */
int mb_dynmem_wmark_high(uint64_t *bytes)
{
	unsigned long long pages, sum = 0;
	char key[64], line[256];
	FILE *f;

	f = fopen("/proc/zoneinfo", "re");
	if (!f)
		return -errno;
	/* "high N" per zone; the per-cpu lists' "high:" do not match */
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %63s %llu", key, &pages) == 2 &&
		    !strcmp(key, "high"))
			sum += pages;
	fclose(f);
	*bytes = sum * (uint64_t)sysconf(_SC_PAGESIZE);
	return 0;
}

uint64_t mb_dynmem_auto_low(uint64_t total, uint64_t wmark_high)
{
	uint64_t low = total / 8;

	if (low < 32 * MIB)
		low = 32 * MIB;
	if (low > 256 * MIB)
		low = 256 * MIB;
	if (low < 4 * wmark_high)
		low = 4 * wmark_high;
	if (low > total / 4)
		low = total / 4;
	return low;
}

uint64_t mb_dynmem_auto_high(uint64_t low, uint64_t total)
{
	return 3 * low < total / 2 ? 3 * low : total / 2;
}

int mb_dynmem_restore(int timeout_ms)
{
	uint64_t deadline, pages, bytes, plugged;
	struct timespec pause = { 0, POLL_MS * 1000000L };
	int err, err2;

	deadline = mb_dynmem_now_ns() + (uint64_t)timeout_ms * 1000000ULL;
	/* Both requests, even if the first fails. */
	err = mb_host_balloon(MB_BALLOON_NONE);
	err2 = mb_host_mem_size(0);
	if (err || err2)
		return err ? err : err2;
	for (;;) {
		err = mb_dynmem_balloon_pages(&pages);
		if (!err)
			err = mb_dynmem_virtio_mem_bytes(&bytes);
		if (!err)
			err = mb_host_query_mem(&plugged);
		if (err)
			return err;
		if (!pages && !bytes && !plugged)
			return 0;
		if (mb_dynmem_now_ns() > deadline) {
			fprintf(stderr, "# restore: balloon %" PRIu64
				" pages, virtio-mem %" PRIu64 " bytes in the guest, %"
				PRIu64 " plugged\n", pages, bytes, plugged);
			return -ETIMEDOUT;
		}
		nanosleep(&pause, NULL);
	}
}
