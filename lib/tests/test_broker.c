// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Brokers: LOW shrinks in steps, cheapest clerk first, never below the
 * pool's minimum, asking again for what was not freed; STEADY holds; HIGH
 * grows up to the maximum, predicted growth first; predicted growth
 * enlarges a LOW step; the targets of clerks joining a pool stay within
 * its maximum; failing and slow shrinkers are reported and do not stop
 * the others; shrinkers may call the library (even remove their own
 * clerk); clerks and brokers can go away while notifications arrive; and
 * a monitor's LOW repeats shrink a pool step by step until STEADY.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
	struct mb_notification n;
	struct fake x, y;
	struct mb_broker *b;
	uint64_t tx, ty;

	mb_broker_new(&b, "grow", NULL, &o);
	fake_new(&x, "gx", 50, 1000, b);
	fake_new(&y, "gy", 50, 1000, b);
	ok(mb_clerk_target(x.c) == 2500, "before any decision: the pool max");
	n = note(MB_STATE_HIGH, SEC);
	mb_broker_notify(b, &n);
	tx = mb_clerk_target(x.c);
	ty = mb_clerk_target(y.c);
	ok(tx > 1000 && ty > 1000, "HIGH: both may grow (%llu, %llu)",
	   (unsigned long long)tx, (unsigned long long)ty);
	ok(tx + ty <= 2500, "... but the pool stays within max_bytes");

	/* over the max (charged behind the broker's back): give it back */
	mb_clerk_charge(x.c, 1000);
	n = note(MB_STATE_HIGH, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_bytes(x.c) + mb_clerk_bytes(y.c) == 2500 &&
	   x.calls + y.calls >= 1, "above max_bytes even in HIGH: shrunk");
	mb_clerk_free(x.c);
	mb_clerk_free(y.c);
	mb_broker_free(b);

	/* unlimited pool: grows by a step */
	mb_broker_new(&b, "grow2", NULL, NULL);
	fake_new(&x, "ux", 50, 10000, b);
	n = note(MB_STATE_HIGH, SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(x.c) > 10000 && mb_clerk_target(x.c) < UINT64_MAX,
	   "no max: grows by a finite step");
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

/* HIGH: the clerk that is growing gets its predicted growth first */
static void test_high_predicted(void)
{
	struct mb_notification n;
	struct mb_broker *b;
	struct fake grower, flat;

	mb_broker_new(&b, "predict-high", NULL, NULL);
	fake_new(&grower, "grower-h", 50, 4 << 20, b);
	fake_new(&flat, "flat-h", 50, 4 << 20, b);
	n = note(MB_STATE_STEADY, SEC);
	mb_broker_notify(b, &n);
	mb_clerk_charge(grower.c, 5 << 20);	/* +5 MiB in a second */
	n = note(MB_STATE_HIGH, 2 * SEC);
	mb_broker_notify(b, &n);
	ok(mb_clerk_target(grower.c) >= (9 << 20) + (5 << 20),
	   "the grower may grow by its predicted 5 MiB (target %llu)",
	   (unsigned long long)mb_clerk_target(grower.c));
	ok(mb_clerk_target(flat.c) == 4 << 20,
	   "the grant was its growth: nothing left for the flat clerk");
	mb_clerk_free(grower.c);
	mb_clerk_free(flat.c);
	mb_broker_free(b);
}

/* Clerks joining a pool: their targets stay within its maximum */
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
	ok(mb_clerk_target(y) == 300,
	   "the second gets what it holds: the first's target took the rest");
	mb_broker_notify(b, &(struct mb_notification){
		.state = MB_STATE_STEADY, .time_ns = SEC });
	mb_broker_add_clerk(b, z);
	ok(mb_clerk_target(x) + mb_clerk_target(y) + mb_clerk_target(z) ==
	   1000, "after a decision the room left goes to the newcomer");
	mb_clerk_free(x);
	mb_clerk_free(y);
	mb_clerk_free(z);
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

int main(void)
{
	plan(0);
	test_membership();
	test_low_steps();
	test_high_and_max();
	test_prediction();
	test_ratchet();
	test_high_predicted();
	test_join_within_max();
	test_failures();
	test_churn();
	test_free_waits();
	test_slow();
	test_monitor_driven();
	test_monitor_steps();
	return done_testing();
}
