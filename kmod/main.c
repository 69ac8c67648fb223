// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: physical memory resource notifications.
 *
 * Module parameters give the initial configuration (SET_CONFIG changes it
 * at run time) and the size of the history ring.  Bring-up goes from the
 * inside out: nothing is reachable from userspace (netlink, last) before
 * everything it relies on exists, and teardown is the exact reverse, so
 * the netlink family goes first and with it every request in flight.
 */
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <net/genetlink.h>

#include "membroker.h"

static unsigned long long low_bytes;
module_param(low_bytes, ullong, 0444);
MODULE_PARM_DESC(low_bytes, "Low threshold in bytes (0 = automatic)");

static unsigned long long high_bytes;
module_param(high_bytes, ullong, 0444);
MODULE_PARM_DESC(high_bytes, "High threshold in bytes (0 = automatic)");

static unsigned long long hysteresis_bytes;
module_param(hysteresis_bytes, ullong, 0444);
MODULE_PARM_DESC(hysteresis_bytes,
		 "Hysteresis in bytes (0 = automatic: low / 8)");

static unsigned int poll_min_ms = 5;
module_param(poll_min_ms, uint, 0444);
MODULE_PARM_DESC(poll_min_ms, "Shortest poll interval, 1..1000 ms");

static unsigned int poll_max_ms = 1000;
module_param(poll_max_ms, uint, 0444);
MODULE_PARM_DESC(poll_max_ms, "Longest poll interval, 10..60000 ms");

static unsigned int ratelimit_ms = 100;
module_param(ratelimit_ms, uint, 0444);
MODULE_PARM_DESC(ratelimit_ms,
		 "Minimum spacing of non-escalating notifications, 0..10000 ms");

static unsigned int virtual_low_percent = 90;
module_param(virtual_low_percent, uint, 0444);
MODULE_PARM_DESC(virtual_low_percent,
		 "VIRTUAL_LOW when Committed_AS >= this % of CommitLimit, 1..100");

static unsigned int history_size = 512;
module_param(history_size, uint, 0444);
MODULE_PARM_DESC(history_size,
		 "Notifications kept for GET_HISTORY, 256..65536");

/*
 * For hosts that do not want containers to learn when host memory runs
 * short (or how much there is): the netlink family, notifications and
 * requests alike, exists in the initial network namespace only.
 * /sys/kernel/membroker/ is not affected; see Documentation/security.rst.
 */
static bool init_netns_only;
module_param(init_netns_only, bool, 0444);
MODULE_PARM_DESC(init_netns_only,
		 "Offer the netlink family in the initial network namespace only");

static int __init membroker_init(void)
{
	const struct mb_config cfg = {
		.low_bytes		= low_bytes,
		.high_bytes		= high_bytes,
		.hysteresis_bytes	= hysteresis_bytes,
		.poll_min_ms		= poll_min_ms,
		.poll_max_ms		= poll_max_ms,
		.ratelimit_ms		= ratelimit_ms,
		.virtual_low_percent	= virtual_low_percent,
	};
	int ret;

	ret = mb_eval_init(&cfg);
	if (ret)
		return ret;

	ret = mb_history_init(history_size);
	if (ret) {
		if (ret == -EINVAL)
			pr_err("history_size must be within 256..65536\n");
		return ret;
	}
	ret = mb_sysfs_init();
	if (ret)
		goto err_history;
	ret = mb_meminfo_init();
	if (ret)
		goto err_sysfs;
	ret = mb_trigger_init();
	if (ret)
		goto err_meminfo;
	ret = mb_netlink_init(init_netns_only);
	if (ret)
		goto err_trigger;
	return 0;

err_trigger:
	mb_trigger_exit();
err_meminfo:
	mb_meminfo_exit();
err_sysfs:
	mb_sysfs_exit();
err_history:
	mb_history_exit();
	return ret;
}

static void __exit membroker_exit(void)
{
	mb_netlink_exit();
	mb_trigger_exit();
	mb_meminfo_exit();
	mb_sysfs_exit();
	mb_history_exit();
}

module_init(membroker_init);
module_exit(membroker_exit);

MODULE_DESCRIPTION("Physical memory resource notifications over generic netlink");
MODULE_LICENSE("GPL");
MODULE_ALIAS_GENL_FAMILY(MEMBROKER_FAMILY_NAME);
