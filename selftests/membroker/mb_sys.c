// SPDX-License-Identifier: GPL-2.0
/*
 * The other side of each check: what /proc/meminfo and sysfs say, and
 * loading/unloading the module (finit_module(2), delete_module(2)).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mb_nl.h"

int mb_meminfo_read(struct mb_meminfo *mi)
{
	unsigned long long kb;
	char name[64], line[256];
	int found = 0;
	FILE *f;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;
	memset(mi, 0, sizeof(*mi));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63[^:]: %llu kB", name, &kb) != 2)
			continue;
		if (!strcmp(name, "MemTotal"))
			mi->total = kb * 1024;
		else if (!strcmp(name, "MemAvailable"))
			mi->available = kb * 1024;
		else if (!strcmp(name, "Committed_AS"))
			mi->committed = kb * 1024;
		else if (!strcmp(name, "CommitLimit"))
			mi->commit_limit = kb * 1024;
		else
			continue;
		found++;
	}
	fclose(f);
	return found == 4 ? 0 : -ENODATA;
}

int mb_overcommit_mode(int *mode)
{
	FILE *f = fopen("/proc/sys/vm/overcommit_memory", "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "%d", mode) == 1;
	fclose(f);
	return ok ? 0 : -EBADMSG;
}

int mb_vmstat_read(const char *name, uint64_t *val)
{
	unsigned long long v;
	char key[64], line[128];
	int err = -ENOENT;
	FILE *f;

	f = fopen("/proc/vmstat", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %llu", key, &v) == 2 &&
		    !strcmp(key, name)) {
			*val = v;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int sysfs_read(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), MB_SYSFS_DIR "/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int mb_sysfs_read_u64(const char *name, uint64_t *val)
{
	unsigned long long v;
	char buf[64], *end;
	int err;

	err = sysfs_read(name, buf, sizeof(buf));
	if (err)
		return err;
	errno = 0;
	v = strtoull(buf, &end, 0);
	if (errno || end == buf || *end)
		return -EBADMSG;
	*val = v;
	return 0;
}

int mb_evals_read(struct mb_evals *e)
{
	char name[64];
	uint32_t r;
	int err;

	memset(e, 0, sizeof(*e));
	err = mb_sysfs_read_u64("evaluations/total", &e->total);
	for (r = MEMBROKER_REASON_LOAD; !err && r <= MEMBROKER_REASON_MAX;
	     r++) {
		snprintf(name, sizeof(name), "evaluations/%s",
			 mb_reason_name(r));
		err = mb_sysfs_read_u64(name, &e->reason[r]);
	}
	return err;
}

/*
 * The uapi does not say whether the "state" file holds the number or the
 * name of the state; accept both, so that either reading a user could
 * reasonably rely on is checked.
 */
int mb_sysfs_read_state(uint32_t *state)
{
	static const char * const names[] = { "low", "steady", "high" };
	unsigned long v;
	char buf[64], *end;
	unsigned int i;
	int err;

	err = sysfs_read("state", buf, sizeof(buf));
	if (err)
		return err;
	for (i = 0; i < 3; i++) {
		if (!strcasecmp(buf, names[i])) {
			*state = MEMBROKER_STATE_LOW + i;
			return 0;
		}
	}
	v = strtoul(buf, &end, 0);
	if (end == buf || *end)
		return -EBADMSG;
	*state = v;
	return 0;
}

const char *mb_state_name(uint32_t state)
{
	switch (state) {
	case MEMBROKER_STATE_LOW:
		return "LOW";
	case MEMBROKER_STATE_STEADY:
		return "STEADY";
	case MEMBROKER_STATE_HIGH:
		return "HIGH";
	default:
		return "?";
	}
}

const char *mb_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[MEMBROKER_REASON_LOAD] = "load",
		[MEMBROKER_REASON_POLL] = "poll",
		[MEMBROKER_REASON_RECLAIM] = "reclaim",
		[MEMBROKER_REASON_HOTPLUG] = "hotplug",
		[MEMBROKER_REASON_CONFIG] = "config",
		[MEMBROKER_REASON_OOM] = "oom",
		[MEMBROKER_REASON_QUERY] = "query",
		[MEMBROKER_REASON_DEFERRED] = "deferred",
	};

	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "?";
}

/*
 * Unload the module: delete_module(2) itself, as busybox's rmmod would,
 * without a fork and exec (under TCG that is most of what a load/unload
 * cycle costs).  O_NONBLOCK: while something holds a reference (a dump
 * in progress) it fails with -EWOULDBLOCK instead of waiting; callers
 * that race with dumps retry.
 */
int mb_module_unload(void)
{
	if (syscall(SYS_delete_module, "membroker", O_NONBLOCK))
		return -errno;
	return 0;
}

/*
 * Load the module from $MB_MODULE, which the VM's init sets, with
 * @params ("name=value ...") or none: finit_module(2), as insmod does.
 */
int mb_module_load_params(const char *params)
{
	const char *path = getenv("MB_MODULE");
	int fd, err = 0;

	if (!path || !*path)
		return -ENOENT;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params ? params : "", 0))
		err = -errno;
	close(fd);
	return err;
}

int mb_module_load(void)
{
	return mb_module_load_params(NULL);
}

/* The value of module parameter @name, without the newline. */
int mb_module_param(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/membroker/parameters/%s",
		 name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}
