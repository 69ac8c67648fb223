// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Brokers: LOW shrinks in steps, cheapest clerk first, never below the
 * pool's minimum, asking again for what was not freed; STEADY holds; one
 * HIGH opens all the room below the maximum (predicted growth first, then
 * what LOW took, the expensive clerks first), or lifts the targets of a
 * pool without one; predicted growth enlarges a LOW step; the targets of
 * clerks joining a pool stay within its maximum; failing and slow
 * shrinkers are reported and do not stop the others; shrinkers may call
 * the library (even remove their own clerk); clerks and brokers can go
 * away while notifications arrive; a monitor's LOW repeats shrink a pool
 * step by step until STEADY; and after LOW, caches regrow through their
 * inserts alone once HIGH has been delivered, with no wake-up after it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "membroker.h"
#include "tap.h"

#define SEC	1000000000ULL

struct fake {
	struct mb_clerk *c;
	struct mb_broker *b;
	int64_t fail;		/* returned instead of freeing if < 0 */
	bool remove_self;	/* remove own clerk from inside the call */
	uint64_t asked;		/* last ask */
	int calls;
	int order;		/* when it was called, see call_no */
};

static int call_no;

static int64_t shrink_fake(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	struct fake *f = arg;
	struct mb_clerk_info ci[64];

	f->calls++;
	f->asked = bytes;
	f->order = ++call_no;
	/* the library is usable from here: nothing of it is locked */
	if (mb_clerk_snapshot(ci, 64) < 1 || mb_clerk_bytes(c) < bytes)
		return -EFAULT;
	if (f->remove_self && mb_broker_remove_clerk(f->b, c) != 0)
		return -EFAULT;
	if (f->fail < 0)
		return f->fail;
	mb_clerk_uncharge(c, bytes);
	return (int64_t)bytes;
}

static void fake_new(struct fake *f, const char *name, uint32_t prio,
		     uint64_t bytes, struct mb_broker *b)
{
	struct mb_clerk_opts o = {
		.sz = sizeof(o), .shrink = shrink_fake, .arg = f,
		.priority = prio,
	};

	memset(f, 0, sizeof(*f));
	f->b = b;
	mb_clerk_new(&f->c, name, &o);
	mb_clerk_charge(f->c, bytes);
	mb_broker_add_clerk(b, f->c);
}

static struct mb_notification note(uint32_t state, uint64_t t)
{
	struct mb_notification n = { .state = state, .time_ns = t };

	return n;
}

static struct mb_clerk_info info(const char *name)
{
	struct mb_clerk_info ci[64], none = { .bytes = UINT64_MAX };
	int i, n = mb_clerk_snapshot(ci, 64);

	for (i = 0; i < n && i < 64; i++)
		if (!strcmp(ci[i].name, name))
			return ci[i];
	return none;
}

static void test_membership(void)
{
	struct mb_broker *b, *b2;
	struct mb_clerk *c;

	ok(mb_broker_new(&b, "", NULL, NULL) == -EINVAL, "empty name");
	ok(mb_broker_new(&b, "pool-name-that-is-far-too-long-xx", NULL,
			 NULL) == -ENAMETOOLONG, "pool name over 31");
	ok(mb_broker_new(&b, "m", NULL, &(struct mb_broker_opts){
		.sz = sizeof(struct mb_broker_opts), .min_bytes = 10,
		.max_bytes = 5 }) == -EINVAL, "min above max");
	mb_broker_new(&b, "m1", NULL, NULL);
	mb_broker_new(&b2, "m2", NULL, NULL);
	mb_clerk_new(&c, "member", NULL);
	ok(mb_broker_add_clerk(b, c) == 0, "add");
	ok(mb_broker_add_clerk(b, c) == -EEXIST, "add twice: -EEXIST");
	ok(mb_broker_add_clerk(b2, c) == -EBUSY, "other broker: -EBUSY");
	ok(mb_broker_remove_clerk(b2, c) == -ENOENT, "not a member: -ENOENT");
	ok(mb_broker_remove_clerk(b, c) == 0 &&
	   mb_clerk_target(c) == UINT64_MAX, "removed: unlimited again");
	ok(mb_broker_add_clerk(b2, c) == 0, "then joins another");
	mb_broker_free(b2);	/* with the clerk still in it */
	ok(mb_broker_add_clerk(b, c) == 0, "freed broker let it go");
	mb_clerk_free(c);	/* leaves b */
	ok(mb_broker_notify(b, &(struct mb_notification){ .state = 9 }) ==
	   -EINVAL, "bad state: -EINVAL");
	mb_broker_free(b);
	mb_broker_free(NULL);
}

static void test_low_steps(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o), .min_bytes = 1200 };
	struct mb_broker_record rec[16];
	struct mb_notification n;
	struct fake cheap, dear;
	struct mb_broker *b;
	uint64_t seq;
	int i, r;

	mb_broker_new(&b, "steps", NULL, &o);
	fake_new(&cheap, "cheap", 10, 1000, b);
	fake_new(&dear, "dear", 90, 1000, b);

	n = note(MB_STATE_LOW, 1 * SEC);
	ok(mb_broker_notify(b, &n) == 0, "LOW");
	ok(cheap.calls == 1 && cheap.asked == 200 && dear.calls == 0,
	   "first step: 10%% of 2000 from the cheapest");
	ok(mb_clerk_target(cheap.c) == 800 && mb_clerk_target(dear.c) == 1000,
	   "targets: cheap 800, dear holds");
	seq = mb_ring_last_seq(mb_broker_ring(b));
	r = mb_ring_read(mb_broker_ring(b), 1, rec, NULL, 16, NULL);
	ok(seq == 2 && r == 2, "one record per clerk");
	for (i = 0; i < r; i++)
		if (!strcmp(rec[i].clerk, "cheap"))
			break;
	ok(i < r && rec[i].decision == MB_DECISION_SHRINK &&
	   rec[i].allocated == 1000 && rec[i].target == 800 &&
	   rec[i].freed == 200 && rec[i].state == MB_STATE_LOW &&
	   !strcmp(rec[i].pool, "steps"), "record of the shrink");

	n = note(MB_STATE_LOW, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(cheap.calls == 2 && cheap.asked == 180 && dear.calls == 0,
	   "second step: 10%% of 1800, cheapest again");
	for (i = 0; i < 10; i++) {
		n = note(MB_STATE_LOW, (3 + i) * SEC);
		mb_broker_notify(b, &n);
	}
	ok(mb_clerk_bytes(cheap.c) + mb_clerk_bytes(dear.c) == 1200,
	   "pool stops at min_bytes");
	ok(mb_clerk_bytes(cheap.c) == 200 && mb_clerk_bytes(dear.c) == 1000,
	   "... all of it from the cheap clerk");
	ok(info("cheap").shrink_count == (uint64_t)cheap.calls &&
	   info("cheap").shrink_freed == 800, "clerk shrink bookkeeping");

	/* STEADY: hold what there is */
	cheap.calls = 0;
	mb_clerk_charge(dear.c, 300);
	n = note(MB_STATE_STEADY, 20 * SEC);
	mb_broker_notify(b, &n);
	ok(cheap.calls == 0 && dear.calls == 0 &&
	   mb_clerk_target(cheap.c) == 200 && mb_clerk_target(dear.c) == 1300,
	   "STEADY: targets are the current sizes, nothing shrunk");
	r = mb_ring_read(mb_broker_ring(b), mb_ring_last_seq(
			 mb_broker_ring(b)) - 1, rec, NULL, 16, NULL);
	ok(r == 2 && rec[0].decision == MB_DECISION_STABLE &&
	   rec[1].decision == MB_DECISION_STABLE, "STEADY recorded STABLE");

	mb_clerk_free(cheap.c);
	mb_clerk_free(dear.c);
	mb_broker_free(b);
}

static void test_high_and_max(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o), .max_bytes = 2500 };
	struct mb_broker_record rec;
	struct mb_notification n;
	struct fake x, y;
	struct mb_broker *b;
	uint64_t tx, ty;

	mb_broker_new(&b, "grow", NULL, &o);
	fake_new(&x, "gx", 50, 1000, b);
	fake_new(&y, "gy", 50, 1000, b);
	ok(mb_clerk_target(x.c) == 1250 && mb_clerk_target(y.c) == 1250,
	   "before any decision: what they hold and half the room each");
	n = note(MB_STATE_HIGH, SEC);
	mb_broker_notify(b, &n);
	tx = mb_clerk_target(x.c);
	ty = mb_clerk_target(y.c);
	ok(tx == 1250 && ty == 1250,
	   "HIGH: all the room below max at once, in equal parts (%llu, %llu)",
	   (unsigned long long)tx, (unsigned long long)ty);

	/* over the max (charged behind the broker's back): give it back */
	mb_clerk_charge(x.c, 1000);
	n = note(MB_STATE_HIGH, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_bytes(x.c) + mb_clerk_bytes(y.c) == 2500 &&
	   x.calls + y.calls >= 1, "above max_bytes even in HIGH: shrunk");
	mb_clerk_free(x.c);
	mb_clerk_free(y.c);
	mb_broker_free(b);

	/* no max: nothing to share, the state is what ends growth */
	mb_broker_new(&b, "grow2", NULL, NULL);
	fake_new(&x, "ux", 50, 10000, b);
	n = note(MB_STATE_HIGH, SEC);
	mb_broker_notify(b, &n);
	mb_ring_read(mb_broker_ring(b), 1, &rec, NULL, 1, NULL);
	ok(mb_clerk_target(x.c) == UINT64_MAX &&
	   rec.decision == MB_DECISION_GROW && rec.target == UINT64_MAX &&
	   rec.allocated == 10000, "no max: HIGH lifts the target (GROW)");
	mb_clerk_charge(x.c, 50000);
	n = note(MB_STATE_STEADY, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(x.c) == 60000 && x.calls == 0,
	   "the STEADY that follows holds it where it got to");
	n = note(MB_STATE_LOW, 3 * SEC);
	mb_broker_notify(b, &n);
	ok(x.asked == 6000 && mb_clerk_bytes(x.c) == 54000,
	   "and LOW takes its steps from there (asked %llu)",
	   (unsigned long long)x.asked);
	mb_clerk_free(x.c);
	mb_broker_free(b);
}

static void test_prediction(void)
{
	struct mb_broker_record rec;
	struct mb_notification n;
	struct mb_broker *b;
	struct fake f;

	mb_broker_new(&b, "predict", NULL, NULL);
	fake_new(&f, "grower", 50, 1000, b);
	n = note(MB_STATE_STEADY, 10 * SEC);
	mb_broker_notify(b, &n);
	mb_clerk_charge(f.c, 1000);	/* +1000 in one second */
	n = note(MB_STATE_STEADY, 11 * SEC);
	mb_broker_notify(b, &n);
	mb_ring_read(mb_broker_ring(b), mb_ring_last_seq(mb_broker_ring(b)),
		     &rec, NULL, 1, NULL);
	ok(rec.allocated == 2000 && rec.predicted == 3000,
	   "predicted = allocated + growth over the next interval");
	mb_clerk_charge(f.c, 500);	/* +500 more, then LOW */
	n = note(MB_STATE_LOW, 12 * SEC);
	mb_broker_notify(b, &n);
	ok(f.asked == 250 + 500,
	   "LOW step includes the predicted growth (asked %llu)",
	   (unsigned long long)f.asked);
	/* growth over 100 s is capped at the 10 s horizon */
	mb_clerk_charge(f.c, 1000);
	n = note(MB_STATE_STEADY, 112 * SEC);
	mb_broker_notify(b, &n);
	mb_ring_read(mb_broker_ring(b), mb_ring_last_seq(mb_broker_ring(b)),
		     &rec, NULL, 1, NULL);
	ok(rec.predicted == rec.allocated + 100, "horizon capped at 10 s");
	mb_clerk_free(f.c);
	mb_broker_free(b);
}

/* What a clerk could not give back is asked again at the next step */
static void test_ratchet(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o) };
	struct mb_notification n;
	struct fake stuck, other;
	struct mb_broker *b;

	mb_broker_new(&b, "ratchet", NULL, &o);
	fake_new(&stuck, "stuck", 10, 1000, b);
	fake_new(&other, "other", 90, 1000, b);
	stuck.fail = -EBUSY;
	n = note(MB_STATE_LOW, SEC);
	mb_broker_notify(b, &n);
	ok(stuck.asked == 200 && other.calls == 0,
	   "step 1: 200 asked of the cheap clerk, which fails");
	n = note(MB_STATE_LOW, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(stuck.asked == 400 && other.calls == 0,
	   "step 2: the 200 it still owes plus a new step of 200");
	stuck.fail = 0;
	n = note(MB_STATE_LOW, 3 * SEC);
	mb_broker_notify(b, &n);
	ok(stuck.asked == 600 && mb_clerk_bytes(stuck.c) == 400,
	   "step 3: it works again and gives back all three steps");
	n = note(MB_STATE_STEADY, 4 * SEC);
	mb_broker_notify(b, &n);
	n = note(MB_STATE_LOW, 5 * SEC);
	mb_broker_notify(b, &n);
	ok(stuck.asked == 140,
	   "after STEADY a new LOW starts from what there is (10%% of 1400)");
	mb_clerk_free(stuck.c);
	mb_clerk_free(other.c);
	mb_broker_free(b);
}

/*
 * HIGH with little room: the growing clerk gets its predicted growth
 * first, the expensive one before the cheap one, then equal parts
 */
static void test_high_predicted(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o) };
	struct fake grower, flat, dear, cheap;
	struct mb_notification n;
	struct mb_broker *b;

	o.max_bytes = (9 << 20) + (4 << 20) + (6 << 20);
	mb_broker_new(&b, "predict-high", NULL, &o);
	fake_new(&grower, "grower-h", 50, 4 << 20, b);
	fake_new(&flat, "flat-h", 50, 4 << 20, b);
	n = note(MB_STATE_STEADY, SEC);
	mb_broker_notify(b, &n);
	mb_clerk_charge(grower.c, 5 << 20);	/* +5 MiB in a second */
	n = note(MB_STATE_HIGH, 2 * SEC);
	mb_broker_notify(b, &n);
	/* 6 MiB of room: its 5 MiB, then half of the last one each */
	ok(mb_clerk_target(grower.c) == (9 << 20) + (5 << 20) + (1 << 19) &&
	   mb_clerk_target(flat.c) == (4 << 20) + (1 << 19),
	   "the grower's predicted 5 MiB first, then the last 1 MiB halved");
	mb_clerk_free(grower.c);
	mb_clerk_free(flat.c);
	mb_broker_free(b);

	/* two growers and room for one: the expensive one first */
	o.max_bytes = 1300 + 1300 + 400;
	mb_broker_new(&b, "predict-prio", NULL, &o);
	fake_new(&cheap, "cheap-h", 10, 1000, b);
	fake_new(&dear, "dear-h", 90, 1000, b);
	n = note(MB_STATE_STEADY, SEC);
	mb_broker_notify(b, &n);
	mb_clerk_charge(cheap.c, 300);
	mb_clerk_charge(dear.c, 300);
	/* both grew 300 in a second; room left, 400 */
	n = note(MB_STATE_HIGH, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(dear.c) == 1300 + 300 &&
	   mb_clerk_target(cheap.c) == 1300 + 100,
	   "the expensive grower's prediction in full, the cheap one's in part "
	   "(%llu, %llu)", (unsigned long long)mb_clerk_target(dear.c),
	   (unsigned long long)mb_clerk_target(cheap.c));
	mb_clerk_free(cheap.c);
	mb_clerk_free(dear.c);
	mb_broker_free(b);
}

/*
 * A pool with min and max: LOW takes it down to min, cheap clerk first;
 * one HIGH gives each clerk back what LOW took, the expensive one first
 * when there is not room for both, never past max
 */
static void test_regrow_shares(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o), .min_bytes = 1000,
				    .max_bytes = 4000,
				    .shrink_step_percent = 50 };
	struct mb_broker_record rec[2];
	struct fake cheap, dear, other;
	struct mb_notification n;
	struct mb_broker *b;
	int i, r, calls;

	mb_broker_new(&b, "regrow", NULL, &o);
	fake_new(&cheap, "regrow-cheap", 20, 2000, b);
	fake_new(&dear, "regrow-dear", 80, 1500, b);
	for (i = 1; i <= 4; i++) {
		n = note(MB_STATE_LOW, (uint64_t)i * SEC);
		mb_broker_notify(b, &n);
	}
	ok(mb_clerk_bytes(cheap.c) == 0 && mb_clerk_bytes(dear.c) == 1000,
	   "LOW: down to min_bytes, the cheap clerk emptied first");
	n = note(MB_STATE_STEADY, 5 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(cheap.c) == 0 && mb_clerk_target(dear.c) == 1000,
	   "STEADY holds them there");
	n = note(MB_STATE_HIGH, 6 * SEC);
	mb_broker_notify(b, &n);
	/* room 3000: 500 and 2000 back, then 250 each */
	ok(mb_clerk_target(dear.c) == 1500 + 250 &&
	   mb_clerk_target(cheap.c) == 2000 + 250,
	   "one HIGH: each gets back what LOW took, and a share of the rest "
	   "(%llu, %llu)", (unsigned long long)mb_clerk_target(dear.c),
	   (unsigned long long)mb_clerk_target(cheap.c));
	r = mb_ring_read(mb_broker_ring(b), mb_ring_last_seq(
			 mb_broker_ring(b)) - 1, rec, NULL, 2, NULL);
	ok(r == 2 && rec[0].decision == MB_DECISION_GROW &&
	   rec[1].decision == MB_DECISION_GROW &&
	   rec[0].target + rec[1].target == 4000,
	   "recorded GROW, the targets add up to max_bytes");
	/* they grow to their targets on their own, with no notification */
	mb_clerk_charge(cheap.c, mb_clerk_target(cheap.c));
	mb_clerk_charge(dear.c, mb_clerk_target(dear.c) - 1000);
	ok(mb_clerk_bytes(cheap.c) + mb_clerk_bytes(dear.c) == 4000,
	   "grown to their targets: the pool is at max_bytes");
	calls = cheap.calls + dear.calls;
	n = note(MB_STATE_HIGH, 7 * SEC);
	mb_broker_notify(b, &n);
	ok(cheap.calls + dear.calls == calls &&
	   mb_clerk_target(cheap.c) == 2250 && mb_clerk_target(dear.c) == 1750,
	   "another HIGH: nothing more, nothing taken");
	mb_clerk_free(cheap.c);
	mb_clerk_free(dear.c);
	mb_broker_free(b);

	/* less room than LOW took: the expensive clerk is made whole first */
	mb_broker_new(&b, "regrow-short", NULL, &o);
	fake_new(&cheap, "short-cheap", 20, 2000, b);
	fake_new(&dear, "short-dear", 80, 1500, b);
	for (i = 1; i <= 4; i++) {
		n = note(MB_STATE_LOW, (uint64_t)i * SEC);
		mb_broker_notify(b, &n);
	}
	/* meanwhile another clerk comes with 2000: room left, 1000 */
	fake_new(&other, "short-other", 50, 2000, b);
	n = note(MB_STATE_HIGH, 5 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(dear.c) == 1500 && mb_clerk_target(cheap.c) == 500 &&
	   mb_clerk_target(other.c) == 2000,
	   "HIGH with room for 1000: the expensive clerk's 500 first, the "
	   "cheap one gets the rest (%llu, %llu)",
	   (unsigned long long)mb_clerk_target(dear.c),
	   (unsigned long long)mb_clerk_target(cheap.c));
	mb_clerk_free(cheap.c);
	mb_clerk_free(dear.c);
	mb_clerk_free(other.c);
	mb_broker_free(b);
}

static uint64_t targets3(struct mb_clerk *x, struct mb_clerk *y,
			 struct mb_clerk *z)
{
	return mb_clerk_target(x) + mb_clerk_target(y) +
	       (z ? mb_clerk_target(z) : 0);
}

/* However clerks join, their targets never add up to more than max */
static void test_join_within_max(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o), .max_bytes = 1000 };
	struct mb_broker *b;
	struct mb_clerk *x, *y, *z;

	mb_broker_new(&b, "join", NULL, &o);
	mb_clerk_new(&x, "join-x", NULL);
	mb_clerk_new(&y, "join-y", NULL);
	mb_clerk_new(&z, "join-z", NULL);
	mb_clerk_charge(y, 300);
	mb_broker_add_clerk(b, x);
	ok(mb_clerk_target(x) == 1000, "the first clerk may use the pool");
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(y) >= 300 && targets3(x, y, NULL) <= 1000,
	   "the second keeps what it holds, the targets stay within max "
	   "(%llu + %llu)", (unsigned long long)mb_clerk_target(x),
	   (unsigned long long)mb_clerk_target(y));
	mb_broker_notify(b, &(struct mb_notification){
		.state = MB_STATE_HIGH, .time_ns = SEC });
	mb_broker_add_clerk(b, z);
	ok(targets3(x, y, z) <= 1000,
	   "after HIGH shared all the room, a third joins within max too "
	   "(%llu)", (unsigned long long)targets3(x, y, z));
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_clerk_free(z);
	mb_broker_free(b);

	/* the others hold it all: the newcomer gets less than it holds */
	mb_broker_new(&b, "join-full", NULL, &o);
	mb_clerk_new(&x, "full-x", NULL);
	mb_clerk_new(&y, "full-y", NULL);
	mb_clerk_charge(x, 800);
	mb_clerk_charge(y, 300);
	mb_broker_add_clerk(b, x);
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(x) >= 800 && targets3(x, y, NULL) <= 1000,
	   "a clerk joining a pool that others fill: within max (%llu + %llu)",
	   (unsigned long long)mb_clerk_target(x),
	   (unsigned long long)mb_clerk_target(y));
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_broker_free(b);
}

/* A maximum near UINT64_MAX: the room must not wrap round to nothing */
static void test_join_huge_max(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o),
				    .max_bytes = UINT64_MAX - 5 };
	struct mb_broker *b;
	struct mb_clerk *x, *y;

	mb_broker_new(&b, "huge", NULL, &o);
	mb_clerk_new(&x, "huge-x", NULL);
	mb_clerk_new(&y, "huge-y", NULL);
	mb_clerk_charge(x, 100);
	mb_broker_add_clerk(b, x);
	ok(mb_clerk_target(x) == UINT64_MAX - 5,
	   "max_bytes near UINT64_MAX: the first clerk may use it all");
	mb_clerk_charge(y, 7);
	mb_broker_add_clerk(b, y);
	ok(mb_clerk_target(y) >= 7 &&
	   mb_clerk_target(x) <= UINT64_MAX - 5 - mb_clerk_target(y),
	   "the second keeps what it holds; the sum does not wrap past max");
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_broker_free(b);
}

static void test_failures(void)
{
	struct mb_broker_opts o = { .sz = sizeof(o), .shrink_step_percent = 75,
				    .trim = true };
	struct mb_broker_record rec[4];
	struct mb_notification n;
	struct fake bad, good, self;
	struct mb_broker *b;
	int i, r;

	mb_broker_new(&b, "fail", NULL, &o);
	fake_new(&bad, "bad", 10, 1000, b);
	fake_new(&good, "good", 20, 1000, b);
	bad.fail = -EIO;
	call_no = 0;
	n = note(MB_STATE_LOW, SEC);
	ok(mb_broker_notify(b, &n) == 0, "LOW across two clerks");
	ok(bad.calls == 1 && bad.order == 1 && bad.asked == 1000,
	   "failing cheap clerk asked first, for all it has");
	ok(good.calls == 1 && good.order == 2 && good.asked == 500,
	   "the next one still called for the rest");
	ok(info("bad").shrink_errors == 1 && info("good").shrink_errors == 0 &&
	   info("good").shrink_freed == 500, "the failure is counted");
	r = mb_ring_read(mb_broker_ring(b), 1, rec, NULL, 4, NULL);
	for (i = 0; i < r; i++)
		if (!strcmp(rec[i].clerk, "bad"))
			break;
	ok(i < r && rec[i].freed == 0 &&
	   rec[i].decision == MB_DECISION_SHRINK &&
	   rec[i].error == -EIO && rec[i].duration_ns > 0,
	   "recorded with freed 0 and its error");
	mb_clerk_free(bad.c);
	mb_clerk_free(good.c);

	fake_new(&self, "self-remover", 10, 1000, b);
	self.remove_self = true;
	n = note(MB_STATE_LOW, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(self.calls == 1 && mb_clerk_target(self.c) == UINT64_MAX &&
	   mb_broker_remove_clerk(b, self.c) == -ENOENT,
	   "a shrinker removing its own clerk: no deadlock, removed");
	mb_clerk_free(self.c);
	mb_broker_free(b);
}

/* ---- removal and free while notifications arrive ---- */

#define CHURN 300

static struct {
	struct mb_broker *b;
	atomic_bool stop;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int in_shrink;		/* blocking shrinker entered */
	bool release;
	atomic_bool returned;
} z = { .m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static int64_t shrink_touch(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	uint64_t *mem = arg;

	(void)bytes;
	/* touch our clerk and our memory: ASan sees a use after free */
	mem[0] += mb_clerk_bytes(c) & 1;
	return 1;
}

static void *notifier(void *arg)
{
	struct mb_notification n;
	uint64_t t = 0;

	(void)arg;
	while (!atomic_load(&z.stop)) {
		t++;
		n = note(t % 3 ? MB_STATE_LOW : MB_STATE_HIGH, t);
		mb_broker_notify(z.b, &n);
	}
	return NULL;
}

static void test_churn(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .shrink = shrink_touch };
	struct mb_clerk *c;
	pthread_t t[2];
	uint64_t *mem;
	int i, bad = 0;

	mb_broker_new(&z.b, "churn", NULL, NULL);
	atomic_store(&z.stop, false);
	pthread_create(&t[0], NULL, notifier, NULL);
	pthread_create(&t[1], NULL, notifier, NULL);
	for (i = 0; i < CHURN; i++) {
		mem = calloc(1, sizeof(*mem));
		o.arg = mem;
		mb_clerk_new(&c, "churner", &o);
		mb_clerk_charge(c, 100000);
		if (mb_broker_add_clerk(z.b, c))
			bad++;
		if (i & 1 && mb_broker_remove_clerk(z.b, c))
			bad++;
		/* after this no shrinker of c may be running */
		mb_clerk_free(c);
		free(mem);
	}
	atomic_store(&z.stop, true);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	ok(bad == 0, "%d clerks added, removed, freed under notifications",
	   CHURN);
	mb_broker_free(z.b);
}

static int64_t shrink_block(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	(void)c;
	(void)bytes;
	(void)arg;
	pthread_mutex_lock(&z.m);
	z.in_shrink = 1;
	pthread_cond_broadcast(&z.cv);
	while (!z.release)
		pthread_cond_wait(&z.cv, &z.m);
	pthread_mutex_unlock(&z.m);
	atomic_store(&z.returned, true);
	return 0;
}

static void *notify_once(void *arg)
{
	struct mb_notification n = note(MB_STATE_LOW, SEC);

	mb_broker_notify(arg, &n);
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static int64_t shrink_fast(struct mb_clerk *c, uint64_t bytes, void *arg)
{
	(void)arg;
	mb_clerk_uncharge(c, bytes);
	return (int64_t)bytes;
}

/*
 * A slow shrinker: the time it was seen blocked is a lower bound of the
 * duration reported, whatever the machine's speed.  The clerk after it
 * is still called.
 */
static void test_slow(void)
{
	struct mb_clerk_opts so = { .sz = sizeof(so), .shrink = shrink_block,
				    .priority = 10 };
	struct mb_clerk_opts fo = { .sz = sizeof(so), .shrink = shrink_fast,
				    .priority = 20 };
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .shrink_step_percent = 75 };
	struct mb_broker_record rec[2];
	struct mb_clerk *slow, *fast;
	struct mb_clerk_info ci;
	struct mb_broker *b;
	uint64_t t0, t1;
	pthread_t tn;
	int i, r;

	z.in_shrink = 0;
	z.release = false;
	mb_broker_new(&b, "slow", NULL, &bo);
	mb_clerk_new(&slow, "slow", &so);
	mb_clerk_new(&fast, "fast", &fo);
	mb_clerk_charge(slow, 1000);
	mb_clerk_charge(fast, 1000);
	mb_broker_add_clerk(b, slow);
	mb_broker_add_clerk(b, fast);
	pthread_create(&tn, NULL, notify_once, b);
	pthread_mutex_lock(&z.m);
	while (!z.in_shrink)
		pthread_cond_wait(&z.cv, &z.m);
	t0 = now_ns();
	t1 = now_ns();
	while (t1 == t0)	/* the clock moved while it was blocked */
		t1 = now_ns();
	z.release = true;
	pthread_cond_broadcast(&z.cv);
	pthread_mutex_unlock(&z.m);
	pthread_join(tn, NULL);
	r = mb_ring_read(mb_broker_ring(b), 1, rec, NULL, 2, NULL);
	for (i = 0; i < r; i++)
		if (!strcmp(rec[i].clerk, "slow"))
			break;
	ok(i < r && rec[i].duration_ns >= t1 - t0 && rec[i].error == 0,
	   "the slow call's duration is in its record (%llu ns)",
	   i < r ? (unsigned long long)rec[i].duration_ns : 0ULL);
	ci = info("slow");
	ok(ci.shrink_max_ns >= t1 - t0 && ci.shrink_ns >= ci.shrink_max_ns,
	   "and in its clerk's snapshot");
	ok(mb_clerk_bytes(fast) == 500,
	   "the clerk after it was still asked, and gave back 500");
	mb_clerk_free(slow);
	mb_clerk_free(fast);
	mb_broker_free(b);
}

static void *free_clerk(void *arg)
{
	pthread_mutex_lock(&z.m);
	z.release = true;	/* the shrinker may return any time now */
	pthread_cond_broadcast(&z.cv);
	pthread_mutex_unlock(&z.m);
	mb_clerk_free(arg);
	return (void *)(uintptr_t)atomic_load(&z.returned);
}

static void test_free_waits(void)
{
	struct mb_clerk_opts o = { .sz = sizeof(o), .shrink = shrink_block };
	struct mb_broker *b;
	struct mb_clerk *c;
	pthread_t tn, tf;
	void *ret;

	mb_broker_new(&b, "wait", NULL, NULL);
	mb_clerk_new(&c, "blocker", &o);
	mb_clerk_charge(c, 1000);
	mb_broker_add_clerk(b, c);
	pthread_create(&tn, NULL, notify_once, b);
	pthread_mutex_lock(&z.m);
	while (!z.in_shrink)
		pthread_cond_wait(&z.cv, &z.m);
	pthread_mutex_unlock(&z.m);
	/* the shrinker is running: freeing its clerk must wait for it */
	pthread_create(&tf, NULL, free_clerk, c);
	pthread_join(tf, &ret);
	pthread_join(tn, NULL);
	ok(ret == (void *)1, "mb_clerk_free waited for the running shrinker");
	mb_broker_free(b);
}

/* ---- a monitor driving brokers that come and go ---- */

static void test_monitor_driven(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_monitor *mon;
	struct mb_broker *b;
	struct fake f;
	int i, bad = 0;

	if (!ok(mb_monitor_new(&mon, &mo) == 0, "fake monitor"))
		return;
	mb_monitor_start_thread(mon);
	for (i = 0; i < 200; i++) {
		if (mb_broker_new(&b, "driven", mon, NULL))
			bad++;
		fake_new(&f, "driven-clerk", 50, 1 << 20, b);
		mb_monitor_fake_push(mon, &n);
		mb_monitor_fake_push(mon, &n);
		/* freed while the thread may be delivering to it */
		mb_broker_free(b);
		mb_clerk_free(f.c);
	}
	mb_monitor_stop_thread(mon);
	ok(bad == 0, "brokers freed while the monitor thread delivers");

	/* what the thread left queued goes nowhere */
	while (mb_monitor_dispatch(mon) > 0)
		;
	mb_broker_new(&b, "driven", mon, NULL);
	fake_new(&f, "driven-clerk", 50, 1000, b);
	mb_monitor_fake_push(mon, &n);
	ok(mb_monitor_dispatch(mon) == 1, "one notification dispatched");
	ok(f.calls == 1 && f.asked == 100 && mb_clerk_bytes(f.c) == 900,
	   "a LOW from the monitor shrinks the pool");
	mb_broker_free(b);
	mb_clerk_free(f.c);
	mb_monitor_free(mon);
}

/*
 * The order of the frees does not matter: a monitor freed before its
 * brokers (with its thread running and readings queued) leaves them
 * usable by hand and freeable, with no access to freed memory (ASan).
 */
static void test_monitor_freed_first(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_FAKE };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct mb_broker *b1, *b2;
	struct mb_monitor *mon;
	struct fake f;

	if (!ok(mb_monitor_new(&mon, &mo) == 0, "fake monitor"))
		return;
	mb_broker_new(&b1, "orphan-1", mon, NULL);
	mb_broker_new(&b2, "orphan-2", mon, NULL);
	fake_new(&f, "orphan-clerk", 50, 1000, b1);
	mb_monitor_start_thread(mon);
	mb_monitor_fake_push(mon, &n);
	mb_monitor_free(mon);
	n.time_ns = 100 * SEC;
	ok(mb_broker_notify(b1, &n) == 0 && f.calls >= 1 &&
	   mb_clerk_bytes(f.c) < 1000,
	   "monitor freed first: its broker still decides by hand");
	mb_broker_free(b1);
	mb_broker_free(b2);
	mb_clerk_free(f.c);
	ok(1, "and both brokers are freed after it");
}

static void count_note(struct mb_monitor *mon,
		       const struct mb_notification *n, void *arg)
{
	int *calls = arg;

	(void)mon;
	(void)n;
	++*calls;
}

/* One LOW, then the monitor's repeats: one step each, until STEADY */
static void test_monitor_steps(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_FAKE,
				      .low_repeat_ms = 1 };
	struct mb_notification n = { .state = MB_STATE_LOW };
	struct pollfd p = { .events = POLLIN };
	uint64_t expect = 10000;
	struct mb_monitor *mon;
	struct mb_broker *b;
	int calls = 0, step, bad = 0;
	struct fake f;

	if (!ok(mb_monitor_new(&mon, &mo) == 0, "fake monitor, 1 ms repeats"))
		return;
	mb_broker_new(&b, "steps", mon, NULL);
	fake_new(&f, "stepper", 50, 10000, b);
	mb_monitor_subscribe(mon, count_note, &calls);
	mb_monitor_fake_push(mon, &n);
	p.fd = mb_monitor_get_fd(mon);
	for (step = 1; step <= 5; step++) {
		while (calls < step) {
			poll(&p, 1, -1);
			mb_monitor_dispatch(mon);
		}
		expect -= expect / 10;
		if (mb_clerk_bytes(f.c) != expect)
			bad++;
	}
	ok(bad == 0 && f.calls == 5,
	   "one LOW: five deliveries, five steps of 10%% (%llu left)",
	   (unsigned long long)mb_clerk_bytes(f.c));
	n.state = MB_STATE_STEADY;
	mb_monitor_fake_push(mon, &n);
	while (calls < 6) {
		poll(&p, 1, -1);
		mb_monitor_dispatch(mon);
	}
	ok(poll(&p, 1, 0) == 0 && f.calls == 5 &&
	   mb_clerk_bytes(f.c) == expect,
	   "STEADY: the steps stop, and so do the wake-ups");
	mb_broker_free(b);
	mb_clerk_free(f.c);
	mb_monitor_free(mon);
}

/* Put distinct keys into @c until one has to evict: the cache is full */
static int fill_cache(struct mb_cache *c, const char *tag, int *next,
		      size_t vlen)
{
	static char val[4096];
	struct mb_cache_stats st;
	uint64_t evicted;
	char key[32];
	int n = 0;

	mb_cache_stats(c, &st);
	evicted = st.evictions;
	do {
		snprintf(key, sizeof(key), "%s-%d", tag, (*next)++);
		if (mb_cache_put(c, key, strlen(key), val, vlen))
			return -1;
		mb_cache_stats(c, &st);
	} while (st.evictions == evicted && ++n < 100000);
	return n;
}

static uint64_t cache_bytes(struct mb_cache *c)
{
	struct mb_cache_stats st;

	mb_cache_stats(c, &st);
	return st.bytes;
}

static bool delivered(struct mb_monitor *mon, uint32_t state)
{
	struct mb_notification n = { .state = state };

	return mb_monitor_fake_push(mon, &n) == 0 &&
	       mb_monitor_dispatch(mon) == 1;
}

/*
 * Two caches that LOW steps shrank regrow through their inserts alone
 * after one HIGH: no further notification, decision or wake-up needed.
 */
static void test_monitor_regrow(void)
{
	struct mb_monitor_opts mo = { .sz = sizeof(mo),
				      .source = MB_SOURCE_FAKE,
				      .low_repeat_ms = UINT32_MAX };
	struct mb_broker_opts bo = { .sz = sizeof(bo),
				     .shrink_step_percent = 50 };
	/* larger than the 1 MiB a HIGH once granted, and than its step */
	struct mb_cache_opts to = { .sz = sizeof(to), .priority = 20,
				    .max_bytes = 8 << 20 };
	struct mb_cache_opts so = { .sz = sizeof(so), .priority = 80,
				    .max_bytes = 4 << 20 };
	struct pollfd p = { .events = POLLIN };
	uint64_t t0, s0, t1, s1, mseq, bseq;
	struct mb_cache *thumbs, *sess;
	struct mb_monitor *mon;
	struct mb_broker *b;
	int next = 0, nt, ns;

	if (!ok(mb_monitor_new(&mon, &mo) == 0, "fake monitor, no repeats"))
		return;
	p.fd = mb_monitor_get_fd(mon);
	mb_broker_new(&b, "regrow", mon, &bo);
	mb_cache_new(&thumbs, "regrow-thumbs", &to);
	mb_cache_new(&sess, "regrow-sessions", &so);
	mb_broker_add_clerk(b, mb_cache_clerk(thumbs));
	mb_broker_add_clerk(b, mb_cache_clerk(sess));
	ok(delivered(mon, MB_STATE_HIGH), "HIGH");
	nt = fill_cache(thumbs, "t", &next, 4000);
	ns = fill_cache(sess, "s", &next, 1000);
	t0 = cache_bytes(thumbs);
	s0 = cache_bytes(sess);
	ok(nt > 1 && ns > 1 && t0 > (7 << 20) && s0 > (3 << 20),
	   "filled up to their own bounds (%llu, %llu)",
	   (unsigned long long)t0, (unsigned long long)s0);

	/* a STEADY first, or LOW would take the growth it saw as well */
	ok(delivered(mon, MB_STATE_STEADY) && delivered(mon, MB_STATE_LOW) &&
	   delivered(mon, MB_STATE_LOW), "STEADY, then two LOW steps of half "
	   "the pool");
	t1 = cache_bytes(thumbs);
	s1 = cache_bytes(sess);
	ok(t1 == 0 && s1 < s0 && s1 > 0,
	   "thumbnails emptied, sessions cut (%llu, %llu)",
	   (unsigned long long)t1, (unsigned long long)s1);
	fill_cache(sess, "s", &next, 1000);
	ok(cache_bytes(sess) <= s1, "while LOW, inserts stay within target");

	ok(delivered(mon, MB_STATE_HIGH), "one HIGH");
	mseq = mb_ring_last_seq(mb_monitor_ring(mon));
	bseq = mb_ring_last_seq(mb_broker_ring(b));
	fill_cache(thumbs, "t", &next, 4000);
	fill_cache(sess, "s", &next, 1000);
	ok(cache_bytes(thumbs) + 4000 + 256 > to.max_bytes &&
	   cache_bytes(sess) + 1000 + 256 > so.max_bytes &&
	   cache_bytes(thumbs) <= to.max_bytes &&
	   cache_bytes(sess) <= so.max_bytes,
	   "inserts alone took both back to their bounds (%llu, %llu)",
	   (unsigned long long)cache_bytes(thumbs),
	   (unsigned long long)cache_bytes(sess));
	ok(poll(&p, 1, 0) == 0 && mb_monitor_dispatch(mon) == 0 &&
	   mb_ring_last_seq(mb_monitor_ring(mon)) == mseq &&
	   mb_ring_last_seq(mb_broker_ring(b)) == bseq,
	   "with no notification or decision since the HIGH, and no wake-up");

	ok(delivered(mon, MB_STATE_STEADY), "STEADY");
	t1 = cache_bytes(thumbs);
	fill_cache(thumbs, "t", &next, 4000);
	ok(cache_bytes(thumbs) <= t1 &&
	   mb_clerk_target(mb_cache_clerk(thumbs)) == t1,
	   "STEADY holds them at the size they reached");
	mb_broker_free(b);
	mb_cache_free(thumbs);
	mb_cache_free(sess);
	mb_monitor_free(mon);
}

int main(void)
{
	/*
	 * These are one process deciding alone.  Without this, every monitor
	 * with a broker looks for membrokerd and, finding none, retries on
	 * its own timer: a wake-up the regrow test rightly refuses.  The
	 * system broker's own wake-ups are test_sysbroker's.
	 */
	setenv("MEMBROKER_SYSTEM_BROKER", "0", 1);
	plan(0);
	test_membership();
	test_low_steps();
	test_high_and_max();
	test_prediction();
	test_ratchet();
	test_high_predicted();
	test_regrow_shares();
	test_join_within_max();
	test_join_huge_max();
	test_failures();
	test_churn();
	test_free_waits();
	test_slow();
	test_monitor_driven();
	test_monitor_freed_first();
	test_monitor_steps();
	test_monitor_regrow();
	return done_testing();
}
