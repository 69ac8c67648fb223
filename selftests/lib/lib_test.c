// SPDX-License-Identifier: GPL-2.0
/* Helpers of the library's VM tests (see lib_test.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib_test.h"

int lt_cache_fill(struct mb_cache *cache, uint32_t base, uint64_t bytes)
{
	static char val[LT_VAL_BYTES];
	uint32_t i, n = bytes / LT_VAL_BYTES;
	int err;

	for (i = 0; i < n; i++) {
		uint32_t key = base + i;

		memset(val, (int)key, sizeof(val));
		err = mb_cache_put(cache, &key, sizeof(key), val,
				   sizeof(val));
		if (err < 0)
			return err;
	}
	return 0;
}

int lt_clerk_info(const char *name, struct mb_clerk_info *out)
{
	struct mb_clerk_info info[16];
	int n, i;

	n = mb_clerk_snapshot(info, 16);
	for (i = 0; i < n && i < 16; i++) {
		if (!strcmp(info[i].name, name)) {
			*out = info[i];
			return 0;
		}
	}
	return -ENOENT;
}

int64_t lt_mem_available(void)
{
	static const char key[] = "MemAvailable:";
	char buf[4096], *p;
	ssize_t n;
	int fd;

	fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	p = strstr(buf, key);
	if (!p)
		return -EIO;
	return (int64_t)strtoull(p + sizeof(key) - 1, NULL, 10) * 1024;
}
