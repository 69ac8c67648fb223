/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What bench/outcome.c shares with its SQLite application
 * (bench/outcome_sqlite.c): the record the application keeps for the
 * parent across fork(), the reactions, and the 100 ms poller's rule.
 */
#ifndef BENCH_OUTCOME_H
#define BENCH_OUTCOME_H

#include <stdatomic.h>
#include <stdint.h>

#include <membroker.h>

enum { R_NONE, R_PSI, R_POLL, R_KMOD, R_N };

/* What the application tells the parent: shared memory across fork() */
struct shared {
	_Atomic uint64_t ready;
	_Atomic uint64_t initial;
	_Atomic uint64_t bytes;
	_Atomic uint64_t min_bytes;	/* the least it held during the run */
	_Atomic uint64_t first_warn_ns;
	_Atomic uint64_t last_release_ns;
	_Atomic uint64_t warnings;
	/* SQLite: queries answered since the job began, and wrong answers */
	_Atomic uint64_t job_started;
	_Atomic uint64_t queries;
	_Atomic uint64_t query_errors;
};

extern struct shared *sh;
extern const char *psi_trigger;
extern uint64_t low_b, high_b, total_b;

/* The application has been warned, by whatever reaction it has */
void warned(void);

/* The cache's size is now @bytes: a drop is a release */
void note_bytes_now(uint64_t bytes);

/*
 * The 100 ms poller's rule: the module's states from MemAvailable @a,
 * with its hysteresis (low/8).  Returns true when @n should go to the
 * broker (a change, or LOW repeated every second while it lasts).
 */
struct poll_rule {
	uint32_t state;
	uint64_t last_low;
};

bool poll_rule_step(struct poll_rule *pr, uint64_t a,
		    struct mb_notification *n);

/*
 * The SQLite application: its page cache filled to @bytes from the
 * read-only database @db (a block device, or "auto" to find it), then
 * queried until killed; @reaction as for mb_cache.
 */
void __attribute__((noreturn)) sqlite_app_main(int reaction, uint64_t bytes,
					       const char *db);

/* On the host: write the database the guest reads, about @mib MiB */
int sqlite_make_db(const char *path, unsigned int mib);

#endif /* BENCH_OUTCOME_H */
