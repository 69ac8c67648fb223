// SPDX-License-Identifier: GPL-2.0
/*
 * Unloading the module must not hurt its users: a subscribed socket stays
 * usable while the family is gone, and everything works again after a
 * reload.  The stress variant reloads while threads keep asking and
 * listening; errors are expected then, crashes and kernel warnings are
 * not (the VM runner fails the run on any in the kernel log).
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

#define HAMMERS		3
#define RELOADS		4

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

struct hammer {
	struct mb_nl nl;
	atomic_bool *stop;
	bool listen;
	unsigned long ok;
	unsigned long expected_errors;
	unsigned long unexpected_errors;
	int last_unexpected;
};

/* Errors a caller sees while the family comes and goes. */
static bool expected(int err)
{
	return err == -ENOENT || err == -EOPNOTSUPP || err == -ETIMEDOUT;
}

static void *hammer(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(h->stop)) {
		struct mb_state st;
		int err;

		if (h->listen)
			err = mb_nl_recv_notify(&h->nl, &st, 100);
		else
			err = mb_nl_get_state(&h->nl, &st);
		if (!err) {
			h->ok++;
			continue;
		}
		if (expected(err)) {
			h->expected_errors++;
		} else {
			h->unexpected_errors++;
			h->last_unexpected = err;
		}
		/* Ids change with every load: look them up again. */
		if (!mb_nl_resolve(&h->nl) && h->listen)
			mb_nl_subscribe(&h->nl);
	}
	return NULL;
}

TEST_F_TIMEOUT(unload, reload_under_load, 120)
{
	struct hammer h[HAMMERS + 1];
	pthread_t tid[HAMMERS + 1];
	atomic_bool stop = false;
	struct mb_state st;
	int i;

	for (i = 0; i <= HAMMERS; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		ASSERT_EQ(0, mb_nl_open(&h[i].nl));
		h[i].stop = &stop;
		h[i].listen = i == HAMMERS;
		if (h[i].listen)
			ASSERT_EQ(0, mb_nl_subscribe(&h[i].nl));
	}
	for (i = 0; i <= HAMMERS; i++)
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, hammer, &h[i]));

	for (i = 0; i < RELOADS; i++) {
		EXPECT_EQ(0, mb_module_unload()) TH_LOG("rmmod %d", i);
		EXPECT_EQ(0, mb_module_load()) TH_LOG("insmod %d", i);
	}

	atomic_store(&stop, true);
	for (i = 0; i <= HAMMERS; i++)
		ASSERT_EQ(0, pthread_join(tid[i], NULL));

	for (i = 0; i <= HAMMERS; i++) {
		TH_LOG("%s %d: %lu ok, %lu expected errors, %lu unexpected",
		       h[i].listen ? "listener" : "caller", i, h[i].ok,
		       h[i].expected_errors, h[i].unexpected_errors);
		EXPECT_EQ(0, h[i].unexpected_errors)
			TH_LOG("last unexpected error: %s",
			       strerror(-h[i].last_unexpected));
		/* Every socket works again once the module is back. */
		ASSERT_EQ(0, mb_nl_resolve(&h[i].nl));
		EXPECT_EQ(0, mb_nl_get_state(&h[i].nl, &st));
		mb_nl_close(&h[i].nl);
	}
}

TEST_HARNESS_MAIN
