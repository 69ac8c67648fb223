// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: /sys/kernel/membroker/.
 *
 * Every file shows the latest notification (the newest history entry), so
 * "seq" tells which notification the other values belong to.  "state" and
 * "seq" are sysfs_notify()'d on every notification: poll(POLLPRI) on them
 * wakes up exactly when a NOTIFY goes out.  The evaluations/ directory
 * counts evaluations, whether or not they led to a notification.
 *
 * Their kernfs nodes are looked up once, at init: sysfs_notify() would
 * look them up by name on every notification, under the sysfs-wide
 * kernfs rwsem, which a writer may hold while it allocates.  The
 * evaluation that notifies runs when memory is short, holding the
 * evaluator's locks, and must not queue behind reclaim for that.
 */
#include <linux/kobject.h>
#include <linux/kernel.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "membroker.h"

static struct kobject *mb_sysfs_kobj;
static struct kernfs_node *mb_sysfs_state_kn;
static struct kernfs_node *mb_sysfs_seq_kn;

static const char *mb_sysfs_state_name(u32 state)
{
	switch (state) {
	case MEMBROKER_STATE_LOW:
		return "low";
	case MEMBROKER_STATE_STEADY:
		return "steady";
	case MEMBROKER_STATE_HIGH:
		return "high";
	default:
		return "unknown";
	}
}

/* The latest notification; zeroes if none was sent yet */
static void mb_sysfs_latest(struct mb_msg *msg)
{
	if (!mb_history_last(msg))
		memset(msg, 0, sizeof(*msg));
}

static ssize_t state_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct mb_msg msg;

	mb_sysfs_latest(&msg);
	return sysfs_emit(buf, "%s\n", mb_sysfs_state_name(msg.state));
}

static ssize_t flags_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct mb_msg msg;

	mb_sysfs_latest(&msg);
	return sysfs_emit(buf, "%u\n", msg.flags);
}

/* The u64 fields of struct mb_msg, one file each */
#define MB_SYSFS_U64(name, field)					\
static ssize_t name##_show(struct kobject *kobj,			\
			   struct kobj_attribute *attr, char *buf)	\
{									\
	struct mb_msg msg;						\
									\
	mb_sysfs_latest(&msg);						\
	return sysfs_emit(buf, "%llu\n", msg.field);			\
}									\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

MB_SYSFS_U64(seq, seq);
MB_SYSFS_U64(available_bytes, available);
MB_SYSFS_U64(total_bytes, total);
MB_SYSFS_U64(low_bytes, low);
MB_SYSFS_U64(high_bytes, high);

static struct kobj_attribute state_attr = __ATTR_RO(state);
static struct kobj_attribute flags_attr = __ATTR_RO(flags);

static struct attribute *mb_sysfs_attrs[] = {
	&state_attr.attr,
	&flags_attr.attr,
	&seq_attr.attr,
	&available_bytes_attr.attr,
	&total_bytes_attr.attr,
	&low_bytes_attr.attr,
	&high_bytes_attr.attr,
	NULL,
};

static const struct attribute_group mb_sysfs_group = {
	.attrs = mb_sysfs_attrs,
};

/* evaluations/<reason>: one count per reason, "total" for all of them */
#define MB_SYSFS_EVALS(name, reason)					\
static ssize_t evals_##name##_show(struct kobject *kobj,		\
				   struct kobj_attribute *attr, char *buf) \
{									\
	return sysfs_emit(buf, "%llu\n", mb_eval_count(reason));	\
}									\
static struct kobj_attribute evals_##name##_attr =			\
	__ATTR(name, 0444, evals_##name##_show, NULL)

MB_SYSFS_EVALS(total, MEMBROKER_REASON_UNSPEC);
MB_SYSFS_EVALS(load, MEMBROKER_REASON_LOAD);
MB_SYSFS_EVALS(poll, MEMBROKER_REASON_POLL);
MB_SYSFS_EVALS(reclaim, MEMBROKER_REASON_RECLAIM);
MB_SYSFS_EVALS(hotplug, MEMBROKER_REASON_HOTPLUG);
MB_SYSFS_EVALS(config, MEMBROKER_REASON_CONFIG);
MB_SYSFS_EVALS(oom, MEMBROKER_REASON_OOM);
MB_SYSFS_EVALS(query, MEMBROKER_REASON_QUERY);
MB_SYSFS_EVALS(deferred, MEMBROKER_REASON_DEFERRED);

static struct attribute *mb_sysfs_evals_attrs[] = {
	&evals_total_attr.attr,
	&evals_load_attr.attr,
	&evals_poll_attr.attr,
	&evals_reclaim_attr.attr,
	&evals_hotplug_attr.attr,
	&evals_config_attr.attr,
	&evals_oom_attr.attr,
	&evals_query_attr.attr,
	&evals_deferred_attr.attr,
	NULL,
};

static const struct attribute_group mb_sysfs_evals_group = {
	.name = "evaluations",
	.attrs = mb_sysfs_evals_attrs,
};

static const struct attribute_group *mb_sysfs_groups[] = {
	&mb_sysfs_group,
	&mb_sysfs_evals_group,
	NULL,
};

/**
 * mb_sysfs_notify - wake up pollers of "state" and "seq"
 *
 * Called after each notification was recorded in the history.  Takes no
 * sleeping lock.
 */
void mb_sysfs_notify(void)
{
	struct kernfs_node *state = READ_ONCE(mb_sysfs_state_kn);
	struct kernfs_node *seq = READ_ONCE(mb_sysfs_seq_kn);

	if (state)
		sysfs_notify_dirent(state);
	if (seq)
		sysfs_notify_dirent(seq);
}

/**
 * mb_sysfs_init - create /sys/kernel/membroker/
 *
 * Return: 0 or -errno.
 */
int mb_sysfs_init(void)
{
	struct kernfs_node *state, *seq;
	struct kobject *kobj;
	int ret;

	kobj = kobject_create_and_add(KBUILD_MODNAME, kernel_kobj);
	if (!kobj)
		return -ENOMEM;
	ret = sysfs_create_groups(kobj, mb_sysfs_groups);
	if (ret)
		goto err_put;

	ret = -ENOENT;
	state = sysfs_get_dirent(kobj->sd, "state");
	if (!state)
		goto err_group;
	seq = sysfs_get_dirent(kobj->sd, "seq");
	if (!seq)
		goto err_state;

	mb_sysfs_kobj = kobj;
	WRITE_ONCE(mb_sysfs_state_kn, state);
	WRITE_ONCE(mb_sysfs_seq_kn, seq);
	return 0;

err_state:
	sysfs_put(state);
err_group:
	sysfs_remove_groups(kobj, mb_sysfs_groups);
err_put:
	kobject_put(kobj);
	return ret;
}

/**
 * mb_sysfs_exit - remove /sys/kernel/membroker/
 *
 * Nothing may call mb_sysfs_notify() any more; waits for readers.
 */
void mb_sysfs_exit(void)
{
	sysfs_put(mb_sysfs_seq_kn);
	sysfs_put(mb_sysfs_state_kn);
	mb_sysfs_seq_kn = NULL;
	mb_sysfs_state_kn = NULL;
	sysfs_remove_groups(mb_sysfs_kobj, mb_sysfs_groups);
	kobject_put(mb_sysfs_kobj);
	mb_sysfs_kobj = NULL;
}
