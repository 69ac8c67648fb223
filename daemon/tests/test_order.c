// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit test of order.c: the hysteresis and the shortfall, the order in
 * which clerks of several processes give memory back (cheapest first, the
 * larger first between equals, each pool's min_bytes held, nothing more
 * than is short) and get it back (the most expensive first, out of the
 * room there is), and what a second assignment does after some clients
 * did not answer.
 */
#include <string.h>

#include "tap.h"
#include "membrokerd.h"

#define MIB	(1024ULL * 1024)

static void test_shortfall(void)
{
	struct mb_notification n = {
		.state = MB_STATE_LOW, .available = 90 * MIB,
		.low = 100 * MIB, .high = 300 * MIB,
	};

	ok(mbd_hysteresis(100 * MIB, 300 * MIB, 0) == 100 * MIB / 8,
	   "hysteresis: low / 8 when automatic");
	ok(mbd_hysteresis(100 * MIB, 300 * MIB, 30 * MIB) == 30 * MIB,
	   "hysteresis: the configured one");
	ok(mbd_hysteresis(100 * MIB, 120 * MIB, 30 * MIB) == 10 * MIB,
	   "hysteresis: at most (high - low) / 2");
	ok(mbd_hysteresis(100 * MIB, 100 * MIB, 0) == 0,
	   "hysteresis: none without a band");
	ok(mbd_shortfall(&n, 10 * MIB, 0) == 20 * MIB,
	   "shortfall: low + h - available");
	ok(mbd_shortfall(&n, 10 * MIB, 15 * MIB) == 5 * MIB,
	   "shortfall: what was freed since the reading counts");
	ok(mbd_shortfall(&n, 10 * MIB, 30 * MIB) == 0,
	   "shortfall: none once it is covered");
	ok(mbd_shortfall(&n, 10 * MIB, UINT64_MAX) == 0,
	   "shortfall: no wrap-around");
}

/* Three processes, a cheap and a dear clerk each, one pool each. */
static size_t three(struct mbd_cand *c, uint64_t *room)
{
	static const struct { uint32_t prio; uint64_t bytes; } k[6] = {
		{ 20, 10 * MIB }, { 80, 40 * MIB },	/* client 1 */
		{ 10, 5 * MIB }, { 90, 40 * MIB },	/* client 2 */
		{ 20, 30 * MIB }, { 70, 40 * MIB },	/* client 3 */
	};
	size_t i;

	memset(c, 0, 6 * sizeof(*c));
	for (i = 0; i < 6; i++) {
		c[i].client = 1 + i / 2;
		c[i].clerk = 1 + i % 2;
		c[i].priority = k[i].prio;
		c[i].bytes = k[i].bytes;
		c[i].shrinkable = true;
		c[i].pool = i / 2;
	}
	for (i = 0; i < 3; i++)
		room[i] = 200 * MIB;
	return 6;
}

static void test_assign(void)
{
	struct mbd_cand c[6];
	uint64_t room[3], got;
	size_t n = three(c, room);

	mbd_order_cheap_first(c, n);
	ok(c[0].priority == 10 && c[1].priority == 20 &&
	   c[1].bytes == 30 * MIB && c[2].bytes == 10 * MIB &&
	   c[3].priority == 70 && c[5].priority == 90,
	   "cheapest first across processes; the larger first between equals");
	got = mbd_order_assign(c, n, room, 25 * MIB);
	ok(got == 25 * MIB && c[0].ask == 5 * MIB && c[1].ask == 20 * MIB &&
	   !c[2].ask && !c[3].ask && !c[4].ask && !c[5].ask,
	   "25 MiB short: the 10 gives its 5, the 20 of 30 MiB the rest; "
	   "nothing more, nobody else");

	n = three(c, room);
	mbd_order_cheap_first(c, n);
	got = mbd_order_assign(c, n, room, 60 * MIB);
	ok(got == 60 * MIB && c[0].ask == 5 * MIB && c[1].ask == 30 * MIB &&
	   c[2].ask == 10 * MIB && c[3].ask == 15 * MIB && !c[4].ask,
	   "60 MiB short: every cheap clerk emptied before the first dear one "
	   "gives 15");

	/* min_bytes: client 3's pool can spare 12 MiB only */
	n = three(c, room);
	room[2] = 12 * MIB;
	mbd_order_cheap_first(c, n);
	got = mbd_order_assign(c, n, room, 25 * MIB);
	ok(got == 25 * MIB && c[0].ask == 5 * MIB &&
	   c[1].ask == 12 * MIB && c[2].ask == 8 * MIB && !room[2],
	   "a pool's min_bytes holds: its room goes, then the next in order");

	/* more short than there is */
	n = three(c, room);
	room[0] = 0;
	mbd_order_cheap_first(c, n);
	got = mbd_order_assign(c, n, room, 1000 * MIB);
	ok(got == 5 * MIB + 30 * MIB + 40 * MIB + 40 * MIB,
	   "more short than can be given: all there is (%llu MiB)",
	   (unsigned long long)(got / MIB));

	/* not shrinkable, excluded */
	n = three(c, room);
	mbd_order_cheap_first(c, n);
	c[0].shrinkable = false;
	c[1].excluded = true;
	got = mbd_order_assign(c, n, room, 12 * MIB);
	ok(got == 12 * MIB && !c[0].ask && !c[1].ask &&
	   c[2].ask == 10 * MIB && c[3].ask == 2 * MIB,
	   "clerks without a shrink callback and excluded ones are passed");

	/* a second round after the first in line did not answer */
	n = three(c, room);
	mbd_order_cheap_first(c, n);
	mbd_order_assign(c, n, room, 25 * MIB);
	room[c[1].pool] += c[1].ask;
	got = c[1].ask;
	c[1].ask = 0;
	c[1].excluded = true;
	got = mbd_order_assign(c, n, room, got);
	ok(got == 20 * MIB && c[0].ask == 5 * MIB && !c[1].ask &&
	   c[2].ask == 10 * MIB && c[3].ask == 10 * MIB,
	   "its 20 MiB go to the next in order; the others keep theirs");
}

static void test_grant(void)
{
	struct mbd_cand c[6];
	uint64_t room[3], got;
	size_t n = three(c, room), i;

	for (i = 0; i < n; i++)
		c[i].taken = 10 * MIB;
	mbd_order_dear_first(c, n);
	ok(c[0].priority == 90 && c[1].priority == 80 && c[5].priority == 10,
	   "growth: the most expensive first");
	got = mbd_order_grant(c, n, 25 * MIB);
	ok(got == 25 * MIB && c[0].grant == 10 * MIB &&
	   c[1].grant == 10 * MIB && c[2].grant == 5 * MIB && !c[3].grant,
	   "25 MiB of room: the 90 and the 80 get all they lost, the 70 the "
	   "rest");
	n = three(c, room);
	for (i = 0; i < n; i++)
		c[i].taken = i == 2 ? 10 * MIB : 0;
	mbd_order_dear_first(c, n);
	got = mbd_order_grant(c, n, 100 * MIB);
	ok(got == 10 * MIB, "no more than was taken is given back");
}

int main(void)
{
	plan(0);
	test_shortfall();
	test_assign();
	test_grant();
	return done_testing();
}
