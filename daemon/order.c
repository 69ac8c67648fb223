// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The system broker's arithmetic: how much memory is short, who gives it
 * back, who gets it again.  No I/O here: sysbroker.c feeds it what the
 * clients reported, and tests/test_order.c made-up figures.
 *
 * SHORTFALL.  LOW ends when available memory reaches low + h, h the
 * hysteresis in force (include/uapi/linux/membroker.h, STATE RULE): the
 * module's configured hysteresis or low / 8, at most (high - low) / 2.
 * The library's own sources (meminfo, psi, cgroup, and the fake one of
 * the tests) use low / 8, at most (high - low) / 2, as the module's
 * default does; so the rule is the same, only the configured value is
 * the module's alone.  The shortfall is low + h minus available memory,
 * where available memory is the latest reading's plus what the clients
 * gave back since that reading came: a reading that comes after their
 * answers shows the effect itself, and one that does not come is not
 * waited for forever.
 *
 * ORDER.  Every clerk that can shrink, of every client that answered,
 * cheapest first: priority ascending; between equals the larger first (as
 * a broker does within its pool), then by client and clerk number, so the
 * order is total and the same every time.  Walking it, each clerk is
 * assigned what is still short, up to what it holds and what its pool
 * holds above its min_bytes (a pool's clerks share that room), until
 * nothing is short.  Assigning again after some clients did not answer
 * keeps what was assigned to the others and walks on from where the
 * order stood, skipping the excluded: what the silent ones were to give
 * goes to the next in order.
 *
 * GROWTH.  On HIGH, what the daemon took is given back in the reverse
 * order, the most expensive clerk first, out of the room above the high
 * threshold: each gets back what was taken from it, in the order, until
 * the room is shared out.
 */
#include <stdlib.h>

#include "membrokerd.h"

uint64_t mbd_hysteresis(uint64_t low, uint64_t high, uint64_t configured)
{
	uint64_t h = configured ? configured : low / 8;

	if (high <= low)
		return 0;
	return h < (high - low) / 2 ? h : (high - low) / 2;
}

uint64_t mbd_shortfall(const struct mb_notification *n, uint64_t h,
		       uint64_t freed_since)
{
	uint64_t want = n->low + h, have = n->available + freed_since;

	if (have < n->available)	/* wrapped: plenty */
		return 0;
	return want > have ? want - have : 0;
}

static int mbd_cand_cheap_first(const void *a, const void *b)
{
	const struct mbd_cand *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	if (x->client != y->client)
		return x->client < y->client ? -1 : 1;
	if (x->clerk != y->clerk)
		return x->clerk < y->clerk ? -1 : 1;
	return 0;
}

static int mbd_cand_dear_first(const void *a, const void *b)
{
	return mbd_cand_cheap_first(b, a);
}

void mbd_order_cheap_first(struct mbd_cand *c, size_t n)
{
	qsort(c, n, sizeof(*c), mbd_cand_cheap_first);
}

void mbd_order_dear_first(struct mbd_cand *c, size_t n)
{
	qsort(c, n, sizeof(*c), mbd_cand_dear_first);
}

/**
 * mbd_order_assign() - share @need out, in the order of @c
 * @c: the candidates, sorted by mbd_order_cheap_first(); those with an
 *	ask already keep it, the excluded get nothing
 * @n: how many
 * @room: per pool, what it holds above its min_bytes and is not yet
 *	assigned (c[i].pool indexes it); lowered by what is assigned
 * @need: what is still short
 *
 * Return: what was assigned (at most @need).
 */
uint64_t mbd_order_assign(struct mbd_cand *c, size_t n, uint64_t *room,
			  uint64_t need)
{
	uint64_t left = need, take;
	size_t i;

	for (i = 0; i < n && left; i++) {
		if (c[i].excluded || c[i].ask || !c[i].shrinkable)
			continue;
		take = c[i].bytes < room[c[i].pool] ? c[i].bytes :
						      room[c[i].pool];
		take = take < left ? take : left;
		c[i].ask = take;
		room[c[i].pool] -= take;
		left -= take;
	}
	return need - left;
}

/**
 * mbd_order_grant() - share @budget out, in the order of @c
 * @c: the candidates, sorted by mbd_order_dear_first(); each may get
 *	back up to its @taken
 * @n: how many
 * @budget: the room to share
 *
 * Return: what was granted (at most @budget).
 */
uint64_t mbd_order_grant(struct mbd_cand *c, size_t n, uint64_t budget)
{
	uint64_t left = budget, g;
	size_t i;

	for (i = 0; i < n && left; i++) {
		if (c[i].excluded)
			continue;
		g = c[i].taken < left ? c[i].taken : left;
		c[i].grant = g;
		left -= g;
	}
	return budget - left;
}
