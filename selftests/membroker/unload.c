// SPDX-License-Identifier: GPL-2.0
/*
 * Unloading the module must not hurt its users: a subscribed socket stays
 * usable while the family is gone, and everything works again after a
 * reload.  The stress variant reloads while threads keep asking, setting
 * the configuration (which leaves long timers pending), dumping the
 * history and listening; errors are expected then, crashes and kernel
 * warnings are not (the VM runner fails the run on any in the kernel
 * log).
 *
 * Needs $MB_MODULE (set by the VM's init) to load the module again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"

#define RELOADS		4
/* rmmod fails while a dump holds a module reference: bound the retries */
#define UNLOAD_TRIES	200
#define UNLOAD_WAIT_US	10000

FIXTURE(unload) {
	struct mb_nl nl;
};

FIXTURE_SETUP(unload)
{
	MB_OPEN_OR_SKIP(&self->nl);
	if (!getenv("MB_MODULE"))
		MB_SKIP_SETUP("MB_MODULE not set: cannot reload");
}

FIXTURE_TEARDOWN(unload)
{
	struct mb_nl nl;

	/* Whatever happened, leave the module loaded. */
	if (mb_nl_open(&nl) == -ENOENT)
		mb_module_load();
	else if (nl.sk)
		mb_nl_close(&nl);
	mb_nl_close(&self->nl);
}

TEST_F(unload, with_subscriber)
{
	struct mb_family f;
	struct mb_state st;
	int err;

	ASSERT_EQ(0, mb_nl_subscribe(&self->nl));
	ASSERT_EQ(0, mb_module_unload());

	/* The family is gone, the socket is not. */
	err = mb_nl_get_state(&self->nl, &st);
	EXPECT_NE(0, err);
	EXPECT_EQ(-ENOENT, mb_nl_resolve(&self->nl));
	EXPECT_EQ(0, mb_nl_get_family(&self->nl, "nlctrl", &f));
	EXPECT_EQ(-ETIMEDOUT, mb_nl_recv_notify(&self->nl, &st, 0));

	ASSERT_EQ(0, mb_module_load());
	ASSERT_EQ(0, mb_nl_resolve(&self->nl));
	EXPECT_EQ(0, mb_nl_subscribe(&self->nl));
	ASSERT_EQ(0, mb_nl_get_state(&self->nl, &st));
	EXPECT_EQ(MB_STATE_ATTRS, st.have & MB_STATE_ATTRS);
}

enum hammer_kind {
	HAMMER_GET_STATE,
	HAMMER_GET_STATE2,
	HAMMER_SET_CONFIG,
	HAMMER_HISTORY,
	HAMMER_LISTEN,
	HAMMERS
};

static const char * const hammer_names[HAMMERS] = {
	"get_state", "get_state", "set_config", "history", "listener",
};

struct hammer {
	struct mb_nl nl;
	atomic_bool *stop;
	enum hammer_kind kind;
	const struct mb_config *saved;
	unsigned long n;
	unsigned long ok;
	unsigned long expected_errors;
	unsigned long unexpected_errors;
	int last_unexpected;
};

/*
 * Errors a caller sees while the family comes and goes.  A dump that
 * starts while the module is being removed cannot take a reference on it:
 * netlink refuses it with -EPROTONOSUPPORT.
 */
static bool expected(int err)
{
	return err == -ENOENT || err == -EOPNOTSUPP || err == -ETIMEDOUT ||
	       err == -EPROTONOSUPPORT;
}

/*
 * Alternate between the configuration found and one with the longest
 * rate limit and poll interval, so that an unload often finds a deferred
 * evaluation and a deferrable poll timer pending far in the future.
 */
static int set_config(struct hammer *h)
{
	struct mb_config c = { 0 };

	if (h->n++ & 1)
		return mb_nl_set_config(&h->nl, h->saved);
	c.have = (1ULL << MEMBROKER_A_RATELIMIT_MS) |
		 (1ULL << MEMBROKER_A_POLL_MAX_MS);
	c.ratelimit_ms = 10000;
	c.poll_max_ms = 60000;
	return mb_nl_set_config(&h->nl, &c);
}

static void *hammer(void *arg)
{
	struct hammer *h = arg;
	struct mb_state *hist = calloc(h->saved->history_size, sizeof(*hist));

	while (hist && !atomic_load(h->stop)) {
		struct mb_state st;
		int err;

		switch (h->kind) {
		case HAMMER_LISTEN:
			err = mb_nl_recv_notify(&h->nl, &st, 100);
			break;
		case HAMMER_SET_CONFIG:
			err = set_config(h);
			break;
		case HAMMER_HISTORY:
			err = mb_nl_dump_history(&h->nl, hist,
						 h->saved->history_size);
			err = err < 0 ? err : 0;
			break;
		default:
			err = mb_nl_get_state(&h->nl, &st);
			break;
		}
		if (!err) {
			h->ok++;
			continue;
		}
		/* CONFIG notifications can come faster than it reads */
		if (expected(err) ||
		    (h->kind == HAMMER_LISTEN && err == -ENOBUFS)) {
			h->expected_errors++;
		} else {
			h->unexpected_errors++;
			h->last_unexpected = err;
		}
		/* Ids change with every load: look them up again. */
		if (!mb_nl_resolve(&h->nl) && h->kind == HAMMER_LISTEN)
			mb_nl_subscribe(&h->nl);
	}
	if (!hist)
		h->unexpected_errors++;
	free(hist);
	return NULL;
}

static int unload_retrying(void)
{
	int i, err = -EIO;

	for (i = 0; i < UNLOAD_TRIES && err; i++) {
		err = mb_module_unload();
		if (err)
			usleep(UNLOAD_WAIT_US);
	}
	return err;
}

TEST_F_TIMEOUT(unload, reload_under_load, 120)
{
	struct hammer h[HAMMERS];
	pthread_t tid[HAMMERS];
	atomic_bool stop = false;
	struct mb_config saved;
	struct mb_state st;
	int i;

	ASSERT_EQ(0, mb_nl_get_config(&self->nl, &saved));
	for (i = 0; i < HAMMERS; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		ASSERT_EQ(0, mb_nl_open(&h[i].nl));
		h[i].stop = &stop;
		h[i].kind = i;
		h[i].saved = &saved;
		if (h[i].kind == HAMMER_LISTEN)
			ASSERT_EQ(0, mb_nl_subscribe(&h[i].nl));
	}
	for (i = 0; i < HAMMERS; i++)
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, hammer, &h[i]));

	for (i = 0; i < RELOADS; i++) {
		EXPECT_EQ(0, unload_retrying()) TH_LOG("rmmod %d", i);
		EXPECT_EQ(0, mb_module_load()) TH_LOG("insmod %d", i);
	}

	atomic_store(&stop, true);
	for (i = 0; i < HAMMERS; i++)
		ASSERT_EQ(0, pthread_join(tid[i], NULL));

	for (i = 0; i < HAMMERS; i++) {
		TH_LOG("%s: %lu ok, %lu expected errors, %lu unexpected",
		       hammer_names[i], h[i].ok, h[i].expected_errors,
		       h[i].unexpected_errors);
		EXPECT_EQ(0, h[i].unexpected_errors)
			TH_LOG("last unexpected error: %s",
			       strerror(-h[i].last_unexpected));
		/* Every socket works again once the module is back. */
		ASSERT_EQ(0, mb_nl_resolve(&h[i].nl));
		EXPECT_EQ(0, mb_nl_get_state(&h[i].nl, &st));
		mb_nl_close(&h[i].nl);
	}
	/* The reloaded module has the parameters' configuration; be sure. */
	ASSERT_EQ(0, mb_nl_resolve(&self->nl));
	EXPECT_EQ(0, mb_nl_set_config(&self->nl, &saved));
}

TEST_HARNESS_MAIN
