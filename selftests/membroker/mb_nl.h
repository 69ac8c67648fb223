/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the membroker selftests share: a small generic netlink client that
 * speaks the uapi directly (so the tests check the kernel, not a library),
 * and readers for /proc/meminfo and /sys/kernel/membroker/.
 *
 * The client builds messages with libnl but receives and parses them
 * itself (family resolution included), because the tests need what libnl
 * hides: the errno of every request, the extended ack text, and the raw
 * attribute set of a reply.
 */
#ifndef MB_NL_H
#define MB_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/genetlink.h>
#include <netlink/msg.h>

#include <linux/membroker.h>

/* Size of the receive buffer: a whole GET_HISTORY dump batch fits. */
#define MB_RECV_BUF	(64 * 1024)

/**
 * struct mb_nl - one generic netlink socket talking to membroker
 * @sk:		libnl socket (connected)
 * @fd:		its file descriptor, for poll()
 * @family:	resolved family id
 * @group:	resolved id of the "notify" multicast group
 * @extack:	message text of the last NLMSG_ERROR, "" if none
 * @extack_offs: offset of the attribute the last NLMSG_ERROR blamed
 *		(NLMSGERR_ATTR_OFFS) from the start of the request, -1 if none
 * @buf:	receive buffer
 */
struct mb_nl {
	struct nl_sock *sk;
	int fd;
	int family;
	int group;
	char extack[256];
	int extack_offs;
	unsigned char *buf;
};

#define MB_MAX_GROUPS	8

/**
 * struct mb_family - what the generic netlink controller says of a family
 */
struct mb_family {
	int id;
	uint32_t version;
	int ngroups;
	char group[MB_MAX_GROUPS][GENL_NAMSIZ];
	uint32_t group_id[MB_MAX_GROUPS];
};

/**
 * struct mb_state - a parsed state message (GET_STATE, NOTIFY, history)
 * @have:	bit (1ULL << MEMBROKER_A_*) set for every attribute present
 * @cmd:	the generic netlink command of the message
 */
struct mb_state {
	uint64_t have;
	uint8_t cmd;
	uint32_t state;
	uint32_t flags;
	uint32_t reason;
	uint64_t seq;
	uint64_t timestamp_ns;
	uint64_t available;
	uint64_t total;
	uint64_t low;
	uint64_t high;
	uint64_t committed;
	uint64_t commit_limit;
};

/**
 * struct mb_config - a parsed GET_CONFIG reply
 * @have:	bit (1ULL << MEMBROKER_A_*) set for every attribute present
 */
struct mb_config {
	uint64_t have;
	uint64_t low;
	uint64_t high;
	uint64_t hysteresis;
	uint32_t poll_min_ms;
	uint32_t poll_max_ms;
	uint32_t ratelimit_ms;
	uint32_t virtual_low_percent;
	uint32_t history_size;
};

#define MB_HAS(s, attr)	(((s)->have >> (attr)) & 1)

/* Every attribute a state message must carry. */
#define MB_STATE_ATTRS ((1ULL << MEMBROKER_A_STATE) |			\
			(1ULL << MEMBROKER_A_FLAGS) |			\
			(1ULL << MEMBROKER_A_SEQ) |			\
			(1ULL << MEMBROKER_A_TIMESTAMP_NS) |		\
			(1ULL << MEMBROKER_A_AVAILABLE_BYTES) |		\
			(1ULL << MEMBROKER_A_TOTAL_BYTES) |		\
			(1ULL << MEMBROKER_A_LOW_BYTES) |		\
			(1ULL << MEMBROKER_A_HIGH_BYTES) |		\
			(1ULL << MEMBROKER_A_COMMITTED_BYTES) |		\
			(1ULL << MEMBROKER_A_COMMIT_LIMIT_BYTES) |	\
			(1ULL << MEMBROKER_A_REASON))

/* Every attribute a GET_CONFIG reply must carry. */
#define MB_CONFIG_ATTRS ((1ULL << MEMBROKER_A_LOW_BYTES) |		\
			 (1ULL << MEMBROKER_A_HIGH_BYTES) |		\
			 (1ULL << MEMBROKER_A_HYSTERESIS_BYTES) |	\
			 (1ULL << MEMBROKER_A_POLL_MIN_MS) |		\
			 (1ULL << MEMBROKER_A_POLL_MAX_MS) |		\
			 (1ULL << MEMBROKER_A_RATELIMIT_MS) |		\
			 (1ULL << MEMBROKER_A_VIRTUAL_LOW_PERCENT) |	\
			 (1ULL << MEMBROKER_A_HISTORY_SIZE))

/* mb_nl.c: the netlink client.  int functions return >= 0 or -errno. */
int mb_nl_connect(struct mb_nl *nl);
int mb_nl_open(struct mb_nl *nl);
void mb_nl_close(struct mb_nl *nl);
int mb_nl_resolve(struct mb_nl *nl);
int mb_nl_get_family(struct mb_nl *nl, const char *name, struct mb_family *f);
int mb_nl_subscribe(struct mb_nl *nl);
struct nl_msg *mb_nl_msg(struct mb_nl *nl, uint8_t cmd, int flags);
int mb_nl_do(struct mb_nl *nl, struct nl_msg *msg, void *reply,
	     int (*parse)(const struct nlmsghdr *nlh, void *reply));
int mb_nl_do_raw(struct mb_nl *nl, struct nl_msg *msg);
int mb_nl_dump_history(struct mb_nl *nl, struct mb_state *out, size_t max);
int mb_nl_get_state(struct mb_nl *nl, struct mb_state *st);
int mb_nl_get_config(struct mb_nl *nl, struct mb_config *cfg);
int mb_nl_set_config(struct mb_nl *nl, const struct mb_config *cfg);
int mb_nl_recv_notify(struct mb_nl *nl, struct mb_state *st, int timeout_ms);
int mb_parse_state(const struct nlmsghdr *nlh, void *st);
int mb_parse_config(const struct nlmsghdr *nlh, void *cfg);
bool mb_config_equal(const struct mb_config *a, const struct mb_config *b);

/* mb_sys.c: /proc/meminfo, /sys/kernel/membroker/ and module loading */
#define MB_SYSFS_DIR	"/sys/kernel/membroker"

struct mb_meminfo {
	uint64_t total;
	uint64_t available;
	uint64_t committed;
	uint64_t commit_limit;
};

int mb_meminfo_read(struct mb_meminfo *mi);
/* vm.overcommit_memory: 0, 1 or 2 */
int mb_overcommit_mode(int *mode);
/* A counter of /proc/vmstat ("pgscan_kswapd", ...) */
int mb_vmstat_read(const char *name, uint64_t *val);

/**
 * struct mb_evals - /sys/kernel/membroker/evaluations/
 * @total:	every evaluation since the module was loaded
 * @reason:	by the reason they carried, indexed by enum membroker_reason
 */
struct mb_evals {
	uint64_t total;
	uint64_t reason[MEMBROKER_REASON_MAX + 1];
};

int mb_evals_read(struct mb_evals *e);
int mb_sysfs_read_u64(const char *name, uint64_t *val);
int mb_sysfs_read_state(uint32_t *state);
int mb_module_unload(void);
int mb_module_load(void);
int mb_module_load_params(const char *params);
int mb_module_param(const char *name, char *buf, size_t len);
const char *mb_state_name(uint32_t state);
/* "poll", "hotplug", ... for enum membroker_reason; "?" for others */
const char *mb_reason_name(uint32_t reason);

#endif /* MB_NL_H */
