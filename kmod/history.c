// SPDX-License-Identifier: GPL-2.0
/*
 * membroker: the ring of the last published state messages.
 *
 * Entries carry consecutive sequence numbers, so an entry is found by its
 * number alone (slot = seq % size) and a reader that fell behind can tell
 * exactly which entries were overwritten.  Readers copy entries out under
 * the lock and format them after dropping it.
 */
#include <linux/math64.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

#include "membroker.h"

static struct {
	spinlock_t lock;	/* protects everything below */
	struct mb_msg *ring;
	unsigned int size;
	unsigned int count;	/* valid entries, at most @size */
	u64 newest;		/* seq of the newest entry, 0 if empty */
} mb_hist;

static struct mb_msg *mb_history_slot(u64 seq)
{
	return &mb_hist.ring[do_div(seq, mb_hist.size)];
}

/**
 * mb_history_add - record a published message
 * @msg:	the message; its seq must follow the previous one's
 *
 * Called by the single publisher only, so sequence numbers arrive in order.
 */
void mb_history_add(const struct mb_msg *msg)
{
	spin_lock(&mb_hist.lock);
	*mb_history_slot(msg->seq) = *msg;
	mb_hist.newest = msg->seq;
	if (mb_hist.count < mb_hist.size)
		mb_hist.count++;
	spin_unlock(&mb_hist.lock);
}

/**
 * mb_history_last - the latest published message
 * @msg:	where to copy it
 *
 * Return: false if nothing was published yet.
 */
bool mb_history_last(struct mb_msg *msg)
{
	bool found;

	spin_lock(&mb_hist.lock);
	found = mb_hist.count;
	if (found)
		*msg = *mb_history_slot(mb_hist.newest);
	spin_unlock(&mb_hist.lock);
	return found;
}

/**
 * mb_history_get - the message with a given sequence number
 * @seq:	its sequence number
 * @msg:	where to copy it
 *
 * Return: false if @seq was overwritten already or not published yet.
 */
bool mb_history_get(u64 seq, struct mb_msg *msg)
{
	bool found;

	spin_lock(&mb_hist.lock);
	found = mb_hist.count && seq <= mb_hist.newest &&
		seq > mb_hist.newest - mb_hist.count;
	if (found)
		*msg = *mb_history_slot(seq);
	spin_unlock(&mb_hist.lock);
	return found;
}

/**
 * mb_history_range - sequence numbers currently in the ring
 * @oldest:	first one
 * @newest:	last one
 *
 * Both are 0, and @oldest > @newest never happens, when the ring is empty.
 */
void mb_history_range(u64 *oldest, u64 *newest)
{
	spin_lock(&mb_hist.lock);
	*newest = mb_hist.newest;
	*oldest = mb_hist.count ? mb_hist.newest - mb_hist.count + 1 : 0;
	spin_unlock(&mb_hist.lock);
}

/**
 * mb_history_size - capacity of the ring, in entries
 */
unsigned int mb_history_size(void)
{
	return mb_hist.size;
}

/**
 * mb_history_init - allocate the ring
 * @size:	capacity in entries
 *
 * Return: 0, -EINVAL for a size out of range or -ENOMEM.
 */
int mb_history_init(unsigned int size)
{
	if (size < MB_HISTORY_SIZE_MIN || size > MB_HISTORY_SIZE_MAX)
		return -EINVAL;

	mb_hist.ring = kvcalloc(size, sizeof(*mb_hist.ring), GFP_KERNEL);
	if (!mb_hist.ring)
		return -ENOMEM;

	spin_lock_init(&mb_hist.lock);
	mb_hist.size = size;
	mb_hist.count = 0;
	mb_hist.newest = 0;
	return 0;
}

/**
 * mb_history_exit - free the ring; nothing may use it any more
 */
void mb_history_exit(void)
{
	kvfree(mb_hist.ring);
	mb_hist.ring = NULL;
}
