// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Brokers: LOW shrinks in steps, cheapest clerk first, never below the
 * pool's minimum; STEADY holds; HIGH grows up to the maximum; predicted
 * growth enlarges a LOW step; failing shrinkers are counted and do not
 * stop the others; shrinkers may call the library (even remove their own
 * clerk); and clerks and brokers can go away while notifications arrive.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	ok(i < r && rec[i].freed == 0 && rec[i].decision == MB_DECISION_SHRINK,
	   "recorded with freed 0");
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
} z;

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

	pthread_mutex_init(&z.m, NULL);
	pthread_cond_init(&z.cv, NULL);
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
	pthread_cond_destroy(&z.cv);
	pthread_mutex_destroy(&z.m);
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

int main(void)
{
	plan(0);
	test_membership();
	test_low_steps();
	test_high_and_max();
	test_prediction();
	test_failures();
	test_churn();
	test_free_waits();
	test_monitor_driven();
	return done_testing();
}
