// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: the generic netlink family.
 *
 * Translates between attributes and the module's structures; knows nothing
 * of how memory is measured or classified.  The protocol is described in
 * include/uapi/linux/membroker.h.
 */
#include <linux/kernel.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/skbuff.h>
#include <net/genetlink.h>
#include <net/net_namespace.h>
#include <net/netlink.h>

#include "membroker.h"

enum mb_nl_mcgrp {
	MB_NL_MCGRP_NOTIFY,
};

/*
 * Anyone may listen: the notifications say no more than /proc/meminfo
 * does, and every process is meant to react to them.  So there are no
 * GENL_MCAST_CAP_* flags here.
 */
static const struct genl_multicast_group mb_nl_mcgrps[] = {
	[MB_NL_MCGRP_NOTIFY] = { .name = MEMBROKER_MCGRP_NOTIFY },
};

/*
 * SET_CONFIG takes exactly the configuration attributes.  Their values are
 * checked by mb_state_check_config() rather than by range policies, so
 * that every refusal is -EINVAL with a message (netlink's own range check
 * answers -ERANGE) and so that one place knows the limits.  The state
 * attributes and HISTORY_SIZE are rejected by name; anything above
 * MEMBROKER_A_MAX, a wrong length or trailing bytes by strict validation.
 * PAD is accepted and ignored: a GET_CONFIG reply may carry it, and the
 * uapi promises that a reply sent back changes nothing.
 */
#define MB_NL_READ_ONLY \
	{ .type = NLA_REJECT, .reject_message = "attribute is read-only" }

static const struct nla_policy mb_nl_set_config_policy[MEMBROKER_A_MAX + 1] = {
	[MEMBROKER_A_STATE]		= MB_NL_READ_ONLY,
	[MEMBROKER_A_FLAGS]		= MB_NL_READ_ONLY,
	[MEMBROKER_A_SEQ]		= MB_NL_READ_ONLY,
	[MEMBROKER_A_TIMESTAMP_NS]	= MB_NL_READ_ONLY,
	[MEMBROKER_A_AVAILABLE_BYTES]	= MB_NL_READ_ONLY,
	[MEMBROKER_A_TOTAL_BYTES]	= MB_NL_READ_ONLY,
	[MEMBROKER_A_LOW_BYTES]		= { .type = NLA_U64 },
	[MEMBROKER_A_HIGH_BYTES]	= { .type = NLA_U64 },
	[MEMBROKER_A_COMMITTED_BYTES]	= MB_NL_READ_ONLY,
	[MEMBROKER_A_COMMIT_LIMIT_BYTES] = MB_NL_READ_ONLY,
	[MEMBROKER_A_REASON]		= MB_NL_READ_ONLY,
	[MEMBROKER_A_PAD]		= { .type = NLA_BINARY },
	[MEMBROKER_A_HYSTERESIS_BYTES]	= { .type = NLA_U64 },
	[MEMBROKER_A_POLL_MIN_MS]	= { .type = NLA_U32 },
	[MEMBROKER_A_POLL_MAX_MS]	= { .type = NLA_U32 },
	[MEMBROKER_A_RATELIMIT_MS]	= { .type = NLA_U32 },
	[MEMBROKER_A_VIRTUAL_LOW_PERCENT] = { .type = NLA_U32 },
	[MEMBROKER_A_HISTORY_SIZE]	= {
		.type = NLA_REJECT,
		.reject_message = "history_size is a module parameter only",
	},
};

/*
 * The GET commands take no attributes.  They say so with a policy of
 * their own that rejects every type up to MEMBROKER_A_MAX, and the
 * maxattr to match; strict validation refuses types above it.  Left without a policy, they would
 * get genetlink's reject-all policy, whose length and maxattr are the
 * kernel's business: 7.3's is one entry long yet keeps the family's
 * maxattr, so validation read past it and hit a BUG_ON.
 */
#define MB_NL_NO_ATTRS \
	{ .type = NLA_REJECT, .reject_message = "command takes no attributes" }

static const struct nla_policy mb_nl_no_attrs_policy[MEMBROKER_A_MAX + 1] = {
	[MEMBROKER_A_STATE ... MEMBROKER_A_MAX] = MB_NL_NO_ATTRS,
};

static struct genl_family mb_nl_family;

/*
 * Set while the family is registered.  Events are built and sent under
 * rcu_read_lock() after checking it, so clearing it and waiting for an RCU
 * grace period guarantees no event uses the family's multicast group
 * numbers after genl_unregister_family() hands them back.
 */
static bool mb_nl_live;

static size_t mb_nl_state_size(void)
{
	return 3 * nla_total_size(sizeof(u32)) +	/* state, flags, reason */
	       8 * nla_total_size_64bit(sizeof(u64));
}

static int mb_nl_put_state(struct sk_buff *skb, const struct mb_msg *m)
{
	if (nla_put_u32(skb, MEMBROKER_A_STATE, m->state) ||
	    nla_put_u32(skb, MEMBROKER_A_FLAGS, m->flags) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_SEQ, m->seq, MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_TIMESTAMP_NS, m->timestamp_ns,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_AVAILABLE_BYTES, m->available,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_TOTAL_BYTES, m->total,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_LOW_BYTES, m->low,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_HIGH_BYTES, m->high,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_COMMITTED_BYTES, m->committed,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_COMMIT_LIMIT_BYTES,
			      m->commit_limit, MEMBROKER_A_PAD) ||
	    nla_put_u32(skb, MEMBROKER_A_REASON, m->reason))
		return -EMSGSIZE;
	return 0;
}

/* One complete state message, or nothing (and -EMSGSIZE) */
static int mb_nl_fill_state(struct sk_buff *skb, const struct mb_msg *m,
			    u32 portid, u32 seq, int flags, u8 cmd)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &mb_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (mb_nl_put_state(skb, m)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/*
 * The message is built once, from the reserves if need be: there is one
 * per notification, and it is the one that asks applications to free
 * memory.  The copies netlink makes for each listener are not: their
 * number is up to whoever opens sockets and namespaces, and they must not
 * drain what the rest of the kernel keeps for emergencies.  Neither ever
 * enters direct reclaim (the evaluation must go on when memory is short)
 * nor warns when it fails: a failure is reported to the listeners.
 */
#define MB_NL_GFP_MSG	(GFP_ATOMIC | __GFP_NOWARN)
#define MB_NL_GFP_COPY	(GFP_NOWAIT | __GFP_NOWARN)

/* Called under rcu_read_lock() */
static bool mb_nl_has_listeners(void)
{
	struct net *net;

	if (!mb_nl_family.netnsok)
		return genl_has_listeners(&mb_nl_family, &init_net,
					  MB_NL_MCGRP_NOTIFY);
	for_each_net_rcu(net)
		if (genl_has_listeners(&mb_nl_family, net, MB_NL_MCGRP_NOTIFY))
			return true;
	return false;
}

/*
 * Deliver @skb to the listeners of @net, if it has any.  Netlink gets a
 * reference, not a copy: it copies a shared skb for each listener itself
 * and, where a copy fails, marks that listener and the later ones of
 * this namespace as overrun (ENOBUFS).  A listener that cannot take the
 * message (its buffer is full) is marked the same way.  The result only
 * concerns the listeners of @net, so it is not looked at: every namespace
 * gets its own delivery.
 */
static void mb_nl_multicast_netns(struct net *net, struct sk_buff *skb)
{
	if (!genl_has_listeners(&mb_nl_family, net, MB_NL_MCGRP_NOTIFY))
		return;
	genlmsg_multicast_netns(&mb_nl_family, net, skb_get(skb), 0,
				MB_NL_MCGRP_NOTIFY, MB_NL_GFP_COPY);
}

/**
 * mb_netlink_notify - multicast a NOTIFY to the network namespaces
 * @msg:	the published state message
 *
 * Does nothing when nobody listens.  Every namespace with listeners gets
 * the message (only the initial one with init_netns_only), whatever
 * happens to the delivery in another: genlmsg_multicast_allns() gives up
 * at the first namespace whose delivery fails, which one listener that
 * never reads can bring about.  A listener whose socket overflows, or for
 * whom there was no memory, sees ENOBUFS; one that misses the message
 * because it could not be built sees a gap in the sequence numbers; both
 * resynchronise with GET_STATE.
 */
void mb_netlink_notify(const struct mb_msg *msg)
{
	struct sk_buff *skb;
	struct net *net;

	rcu_read_lock();
	if (!READ_ONCE(mb_nl_live) || !mb_nl_has_listeners())
		goto out;

	skb = genlmsg_new(mb_nl_state_size(), MB_NL_GFP_MSG);
	if (!skb)
		goto out;
	if (mb_nl_fill_state(skb, msg, 0, 0, 0, MEMBROKER_CMD_NOTIFY)) {
		nlmsg_free(skb);
		goto out;
	}
	if (mb_nl_family.netnsok) {
		for_each_net_rcu(net)
			mb_nl_multicast_netns(net, skb);
	} else {
		mb_nl_multicast_netns(&init_net, skb);
	}
	consume_skb(skb);
out:
	rcu_read_unlock();
}

static int mb_nl_get_state(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *reply;
	struct mb_msg msg;
	int ret;

	mb_eval_query(&msg);

	reply = genlmsg_new(mb_nl_state_size(), GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	ret = mb_nl_fill_state(reply, &msg, info->snd_portid, info->snd_seq,
			       0, MEMBROKER_CMD_GET_STATE);
	if (ret) {
		nlmsg_free(reply);
		return ret;
	}
	return genlmsg_reply(reply, info);
}

static size_t mb_nl_config_size(void)
{
	return 3 * nla_total_size_64bit(sizeof(u64)) +	/* byte values */
	       5 * nla_total_size(sizeof(u32));	/* ms, percent, history */
}

static int mb_nl_put_config(struct sk_buff *skb, const struct mb_config *c)
{
	if (nla_put_u64_64bit(skb, MEMBROKER_A_LOW_BYTES, c->low_bytes,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_HIGH_BYTES, c->high_bytes,
			      MEMBROKER_A_PAD) ||
	    nla_put_u64_64bit(skb, MEMBROKER_A_HYSTERESIS_BYTES,
			      c->hysteresis_bytes, MEMBROKER_A_PAD) ||
	    nla_put_u32(skb, MEMBROKER_A_POLL_MIN_MS, c->poll_min_ms) ||
	    nla_put_u32(skb, MEMBROKER_A_POLL_MAX_MS, c->poll_max_ms) ||
	    nla_put_u32(skb, MEMBROKER_A_RATELIMIT_MS, c->ratelimit_ms) ||
	    nla_put_u32(skb, MEMBROKER_A_VIRTUAL_LOW_PERCENT,
			c->virtual_low_percent) ||
	    nla_put_u32(skb, MEMBROKER_A_HISTORY_SIZE, mb_history_size()))
		return -EMSGSIZE;
	return 0;
}

static int mb_nl_get_config(struct sk_buff *skb, struct genl_info *info)
{
	struct mb_config cfg;
	struct sk_buff *reply;
	void *hdr;

	mb_eval_get_config(&cfg);

	reply = genlmsg_new(mb_nl_config_size(), GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &mb_nl_family, 0,
				MEMBROKER_CMD_GET_CONFIG);
	if (!hdr)
		goto err_free;
	if (mb_nl_put_config(reply, &cfg)) {
		genlmsg_cancel(reply, hdr);
		goto err_free;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);

err_free:
	nlmsg_free(reply);
	return -EMSGSIZE;
}

/*
 * Explain a refused configuration in the extended ack, and point at the
 * offending attribute if the request carried it (it may have been an
 * earlier setting that the new values conflict with).
 */
static void mb_nl_config_error(struct genl_info *info, enum mb_cfg_err err)
{
	struct netlink_ext_ack *extack = info->extack;
	int type = MEMBROKER_A_UNSPEC;

	switch (err) {
	case MB_CFG_OK:
		return;
	case MB_CFG_POLL_MIN_RANGE:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_POLL_MIN_RANGE);
		type = MEMBROKER_A_POLL_MIN_MS;
		break;
	case MB_CFG_POLL_MAX_RANGE:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_POLL_MAX_RANGE);
		type = MEMBROKER_A_POLL_MAX_MS;
		break;
	case MB_CFG_POLL_ORDER:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_POLL_ORDER);
		type = info->attrs[MEMBROKER_A_POLL_MIN_MS] ?
		       MEMBROKER_A_POLL_MIN_MS : MEMBROKER_A_POLL_MAX_MS;
		break;
	case MB_CFG_RATELIMIT_RANGE:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_RATELIMIT_RANGE);
		type = MEMBROKER_A_RATELIMIT_MS;
		break;
	case MB_CFG_PERCENT_RANGE:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_PERCENT_RANGE);
		type = MEMBROKER_A_VIRTUAL_LOW_PERCENT;
		break;
	case MB_CFG_LOW_TOTAL:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_LOW_TOTAL);
		type = MEMBROKER_A_LOW_BYTES;
		break;
	case MB_CFG_HIGH_TOTAL:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_HIGH_TOTAL);
		type = MEMBROKER_A_HIGH_BYTES;
		break;
	case MB_CFG_HYST_TOTAL:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_HYST_TOTAL);
		type = MEMBROKER_A_HYSTERESIS_BYTES;
		break;
	case MB_CFG_LOW_NOT_BELOW_HIGH:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_LOW_HIGH);
		type = MEMBROKER_A_LOW_BYTES;
		break;
	case MB_CFG_HIGH_NOT_ABOVE_LOW:
		NL_SET_ERR_MSG_MOD(extack, MB_CFG_MSG_LOW_HIGH);
		type = MEMBROKER_A_HIGH_BYTES;
		break;
	}
	if (info->attrs[type])
		NL_SET_BAD_ATTR(extack, info->attrs[type]);
}

/* The attributes SET_CONFIG acts on; the policy admits only these and PAD */
static const int mb_nl_config_attrs[] = {
	MEMBROKER_A_LOW_BYTES,
	MEMBROKER_A_HIGH_BYTES,
	MEMBROKER_A_HYSTERESIS_BYTES,
	MEMBROKER_A_POLL_MIN_MS,
	MEMBROKER_A_POLL_MAX_MS,
	MEMBROKER_A_RATELIMIT_MS,
	MEMBROKER_A_VIRTUAL_LOW_PERCENT,
};

static bool mb_nl_has_config(struct nlattr **a)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(mb_nl_config_attrs); i++)
		if (a[mb_nl_config_attrs[i]])
			return true;
	return false;
}

/*
 * The family is parallel_ops: genetlink does not serialise its requests,
 * so SET_CONFIG's read-modify-write has its own lock, which no other
 * SET_CONFIG can slip through between reading and writing the
 * configuration.  It is held until the CONFIG notification is out, so
 * that each one shows the configuration its request made.  The merged
 * configuration is checked as a whole and applied only if all of it is
 * acceptable.
 */
static DEFINE_MUTEX(mb_nl_config_lock);

static int mb_nl_set_config(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr **a = info->attrs;
	enum mb_cfg_err err;
	struct mb_config cfg;

	/* Most likely a client bug; a silent success would hide it. */
	if (!mb_nl_has_config(a)) {
		NL_SET_ERR_MSG_MOD(info->extack,
				   "no configuration attribute to set");
		return -EINVAL;
	}

	mutex_lock(&mb_nl_config_lock);
	mb_eval_get_config(&cfg);
	if (a[MEMBROKER_A_LOW_BYTES])
		cfg.low_bytes = nla_get_u64(a[MEMBROKER_A_LOW_BYTES]);
	if (a[MEMBROKER_A_HIGH_BYTES])
		cfg.high_bytes = nla_get_u64(a[MEMBROKER_A_HIGH_BYTES]);
	if (a[MEMBROKER_A_HYSTERESIS_BYTES])
		cfg.hysteresis_bytes =
			nla_get_u64(a[MEMBROKER_A_HYSTERESIS_BYTES]);
	if (a[MEMBROKER_A_POLL_MIN_MS])
		cfg.poll_min_ms = nla_get_u32(a[MEMBROKER_A_POLL_MIN_MS]);
	if (a[MEMBROKER_A_POLL_MAX_MS])
		cfg.poll_max_ms = nla_get_u32(a[MEMBROKER_A_POLL_MAX_MS]);
	if (a[MEMBROKER_A_RATELIMIT_MS])
		cfg.ratelimit_ms = nla_get_u32(a[MEMBROKER_A_RATELIMIT_MS]);
	if (a[MEMBROKER_A_VIRTUAL_LOW_PERCENT])
		cfg.virtual_low_percent =
			nla_get_u32(a[MEMBROKER_A_VIRTUAL_LOW_PERCENT]);

	err = mb_eval_set_config(&cfg);
	mutex_unlock(&mb_nl_config_lock);
	if (err != MB_CFG_OK) {
		mb_nl_config_error(info, err);
		return -EINVAL;
	}
	return 0;
}

/**
 * struct mb_nl_dump_ctx - GET_HISTORY's cursor, kept in cb->ctx
 * @next:	seq of the next entry to send, 0 before the first batch
 * @last:	seq of the newest entry when the dump began
 *
 * Sequence numbers are u64; cb->args[] are longs, which would truncate
 * them on 32-bit and make a dump past 2^32 notifications resume at the
 * wrong entry or end early.
 */
struct mb_nl_dump_ctx {
	u64 next;
	u64 last;
};

static struct mb_nl_dump_ctx *mb_nl_dump_ctx(struct netlink_callback *cb)
{
	BUILD_BUG_ON(sizeof(struct mb_nl_dump_ctx) > sizeof(cb->ctx));
	return (struct mb_nl_dump_ctx *)cb->ctx;
}

/*
 * Walks the ring by sequence number rather than by slot, so a dump that
 * takes several skbs resumes where it stopped.  Entries overwritten in
 * between are skipped (the sequence numbers show the gap); entries
 * published after the dump began are left to NOTIFY, so the dump ends.
 */
static int mb_nl_get_history(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct mb_nl_dump_ctx *ctx = mb_nl_dump_ctx(cb);
	u64 oldest, newest, seq;
	struct mb_msg msg;
	int ret;

	mb_history_range(&oldest, &newest);
	if (!ctx->next) {
		if (!newest)
			return 0;
		ctx->next = oldest;
		ctx->last = newest;
	}

	for (seq = ctx->next; seq <= ctx->last; seq++) {
		if (!mb_history_get(seq, &msg)) {
			/* Overwritten meanwhile: jump to the oldest left */
			mb_history_range(&oldest, &newest);
			if (oldest > seq) {
				seq = oldest - 1;
				continue;
			}
			break;
		}
		ret = mb_nl_fill_state(skb, &msg,
				       NETLINK_CB(cb->skb).portid,
				       cb->nlh->nlmsg_seq, NLM_F_MULTI,
				       MEMBROKER_CMD_GET_HISTORY);
		if (ret)
			break;
	}
	ctx->next = seq;
	return skb->len;
}

/*
 * Strict validation throughout (.resv_start_op is 0).  Every command has
 * its policy and the maxattr that is that policy's last index; the
 * family has neither, so no command inherits anything, on any kernel.
 */
static const struct genl_ops mb_nl_ops[] = {
	{
		.cmd	= MEMBROKER_CMD_GET_STATE,
		.doit	= mb_nl_get_state,
		.policy	= mb_nl_no_attrs_policy,
		.maxattr = MEMBROKER_A_MAX,
	},
	{
		.cmd	= MEMBROKER_CMD_GET_CONFIG,
		.doit	= mb_nl_get_config,
		.policy	= mb_nl_no_attrs_policy,
		.maxattr = MEMBROKER_A_MAX,
	},
	{
		.cmd	= MEMBROKER_CMD_SET_CONFIG,
		.doit	= mb_nl_set_config,
		.policy	= mb_nl_set_config_policy,
		.maxattr = MEMBROKER_A_MAX,
		.flags	= GENL_ADMIN_PERM,
	},
	{
		.cmd	= MEMBROKER_CMD_GET_HISTORY,
		.dumpit	= mb_nl_get_history,
		.policy	= mb_nl_no_attrs_policy,
		.maxattr = MEMBROKER_A_MAX,
	},
};

/*
 * parallel_ops: requests do not take genetlink's global mutex, which
 * nlctrl, WireGuard, MPTCP, team, taskstats ... share.  GET_STATE and
 * SET_CONFIG evaluate memory, and a request that waited for that with
 * the mutex held stopped them all.  What needs serialising has its own
 * lock: the evaluator's (trigger.c, eval.c), the history ring's, and
 * SET_CONFIG's read-modify-write (mb_nl_config_lock).  GET_HISTORY keeps
 * its cursor in its own netlink_callback, so dumps run side by side.
 * .netnsok is set by mb_netlink_init().
 */
static struct genl_family mb_nl_family __ro_after_init = {
	.name		= MEMBROKER_FAMILY_NAME,
	.version	= MEMBROKER_FAMILY_VERSION,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.resv_start_op	= 0,
	.ops		= mb_nl_ops,
	.n_ops		= ARRAY_SIZE(mb_nl_ops),
	.mcgrps		= mb_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(mb_nl_mcgrps),
};

/**
 * mb_netlink_init - register the family
 * @init_netns_only:	offer it in the initial network namespace only
 *
 * Elsewhere the family then does not exist: genetlink answers -ENOENT to
 * resolving it and to any request, and no notification is sent there.
 *
 * Return: 0 or -errno.
 */
int mb_netlink_init(bool init_netns_only)
{
	int ret;

	mb_nl_family.netnsok = !init_netns_only;
	ret = genl_register_family(&mb_nl_family);
	if (ret)
		return ret;
	WRITE_ONCE(mb_nl_live, true);
	return 0;
}

/**
 * mb_netlink_exit - unregister the family
 *
 * Waits for running requests and dumps (genl_unregister_family() does),
 * and for events being sent (see @mb_nl_live).
 */
void mb_netlink_exit(void)
{
	WRITE_ONCE(mb_nl_live, false);
	synchronize_rcu();
	genl_unregister_family(&mb_nl_family);
}
