// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The system broker: the processes registered over the control socket,
 * their pools and clerks, and the decisions for the whole machine.
 *
 * Each connection that sent MBD_MSG_REGISTER is a client, known by the
 * pid and uid of SO_PEERCRED (control.c); what it registers (pools,
 * clerks, bytes held) is kept per connection, under the ids it chose, and
 * forgotten when the connection goes.  A request about a clerk only ever
 * goes to the connection that registered it.
 *
 * A STEP.  A reading that is LOW starts a shrink step, one that is HIGH
 * while clerks are held below what was taken from them a grow step:
 *
 *   polling   every client is asked for its figures now (MBD_MSG_POLL),
 *             so that the order is decided on what the clerks hold, not
 *             on what they held at their last report.  A client that
 *             still owes an answer from an earlier step, or does not
 *             answer within answer_ns, is left out of the step.
 *   asking    order.c decides: shrink, what is short, from the cheapest
 *             clerks of all the clients that answered; grow, the room
 *             above the high threshold, to the most expensive clerks
 *             that were taken from.  Each client gets one MBD_MSG_ASK
 *             with its clerks' parts.  A client that does not answer
 *             within answer_ns is left out, and what it was to give is
 *             assigned to the next in the order, and so on.
 *   settling  the step is done; the next one waits for a reading that
 *             came after the answers (it shows their effect), or settle_ns
 *             without one, when the last reading and what was given back
 *             since stand for one.  So a LOW that lasts is answered step
 *             after step, each for what is still short then: steps
 *             converge on the shortfall instead of each taking its own cut.
 *
 * "Given back since": since the reading was measured (its time_ns), not
 * since it came.  A reading may be older than it looks: the module may
 * answer a refresh with an evaluation it made earlier (its time says so),
 * and counting what came back after it as if the reading showed it would
 * ask for the same memory twice.  What was given back is kept with the
 * time its answer came, for the last MBD_SYS_FREES answers.
 *
 * Every clerk's part of a step, with what came of it, goes into a ring
 * (struct mbd_decision), for membrokerctl.
 *
 * Who sees what: root sees every client; others see their own uid's
 * clients with names, and the others' summed up by uid and priority,
 * nameless (MBD_ROW_HIDDEN).  Limits: MBD_MAX_POOLS and MBD_MAX_CLERKS per
 * connection, MBD_SYS_UID_CLIENTS registered connections per user but
 * root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "membrokerd.h"
#include "protocol.h"

#define MBD_SYS_RING		4096
#define MBD_SYS_UID_CLIENTS	64
#define MBD_SYS_FREES		256	/* recent answers kept for the sums */

enum mbd_phase {
	MBD_PHASE_IDLE,
	MBD_PHASE_POLLING,
	MBD_PHASE_ASKING,
	MBD_PHASE_SETTLING,
};

enum mbd_kind {
	MBD_KIND_SHRINK,
	MBD_KIND_GROW,
};

struct mbd_spool {
	uint32_t id;
	uint64_t min;
	uint64_t max;
	char name[32];
};

struct mbd_sclerk {
	uint32_t id;
	uint32_t pool;
	uint32_t priority;
	uint32_t flags;
	uint64_t bytes;
	uint64_t target;
	uint64_t cap;
	uint64_t taken;
	uint64_t asked;
	uint64_t freed;
	char name[64];
	/*
	 * Its part of the step at hand, asked in request @req (0: none):
	 * @pending while the step waits for the answer.
	 */
	uint32_t req;
	bool pending;
	uint64_t ask;
	uint64_t grant;
	uint64_t asked_ns;
};

struct mbd_sclient {
	struct mbd_sys *sys;
	struct mbd_cclient *cl;
	struct mbd_sclient *prev, *next;
	uint32_t number;
	pid_t pid;
	uid_t uid;
	char comm[16];
	struct mbd_spool *pools;
	size_t npools, pools_cap;
	struct mbd_sclerk *clerks;
	size_t nclerks, clerks_cap;
	uint32_t req_id;	/* the request it owes an answer to; 0: none */
	uint16_t req_type;
	uint64_t req_step;
	bool polled;		/* answered this step's POLL */
	bool skipped;		/* left out of this step */
	bool late;		/* did not answer in time, being left out */
};

struct mbd_sys {
	sd_event_source *timer;
	struct mbd_sys_opts o;
	struct mbd_sclient *clients;
	uint32_t next_number;
	uint32_t next_req;
	struct mb_notification reading;
	bool have_reading;
	uint64_t hyst;
	struct {
		uint64_t ns;
		uint64_t bytes;
	} frees[MBD_SYS_FREES];	/* the answers that gave memory back */
	size_t nfrees;		/* pushed in all; the last are kept */
	uint64_t granted_since;	/* room granted since the reading came */
	enum mbd_phase phase;
	enum mbd_kind kind;
	uint64_t step;
	uint64_t need;		/* shrink: what is short; grow: the room */
	struct mbd_cand *cands;	/* the step's order */
	size_t ncands;
	uint64_t *room;		/* per pool of the order */
	struct mb_ring *ring;
	struct mbd_sys_stats st;
};

static void mbd_sys_consider(struct mbd_sys *s);

/* ---- clients' tables ---- */

static struct mbd_spool *mbd_pool_find(struct mbd_sclient *sc, uint32_t id)
{
	size_t i;

	for (i = 0; i < sc->npools; i++)
		if (sc->pools[i].id == id)
			return &sc->pools[i];
	return NULL;
}

static struct mbd_sclerk *mbd_clerk_find(struct mbd_sclient *sc, uint32_t id)
{
	size_t i;

	for (i = 0; i < sc->nclerks; i++)
		if (sc->clerks[i].id == id)
			return &sc->clerks[i];
	return NULL;
}

static void mbd_clerk_drop(struct mbd_sclient *sc, size_t i)
{
	sc->clerks[i] = sc->clerks[--sc->nclerks];
	sc->sys->st.clerks--;
}

static void mbd_pool_drop(struct mbd_sclient *sc, uint32_t id)
{
	size_t i;

	for (i = 0; i < sc->nclerks;) {
		if (sc->clerks[i].pool == id)
			mbd_clerk_drop(sc, i);
		else
			i++;
	}
	for (i = 0; i < sc->npools; i++) {
		if (sc->pools[i].id == id) {
			sc->pools[i] = sc->pools[--sc->npools];
			break;
		}
	}
}

static void mbd_name(char *dst, const char *src, size_t len)
{
	memcpy(dst, src, len);
	dst[len - 1] = '\0';
}

static int mbd_rec_pool(struct mbd_sclient *sc, const struct mbd_rec_pool *r)
{
	struct mbd_spool *p = mbd_pool_find(sc, r->h.id), *np;
	size_t cap;

	if (!r->h.id || (r->max_bytes && r->min_bytes > r->max_bytes))
		return -EINVAL;
	if (!p) {
		if (sc->npools >= MBD_MAX_POOLS)
			return -ENOSPC;
		if (sc->npools == sc->pools_cap) {
			cap = sc->pools_cap ? sc->pools_cap * 2 : 4;
			np = realloc(sc->pools, cap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			sc->pools = np;
			sc->pools_cap = cap;
		}
		p = &sc->pools[sc->npools++];
		p->id = r->h.id;
	}
	p->min = r->min_bytes;
	p->max = r->max_bytes;
	mbd_name(p->name, r->name, sizeof(p->name));
	return 0;
}

static int mbd_rec_clerk(struct mbd_sclient *sc, const struct mbd_rec_clerk *r)
{
	struct mbd_sclerk *c = mbd_clerk_find(sc, r->h.id), *nc;
	size_t cap;

	if (!r->h.id || r->priority > 100 || !mbd_pool_find(sc, r->pool))
		return -EINVAL;
	if (!c) {
		if (sc->nclerks >= MBD_MAX_CLERKS)
			return -ENOSPC;
		if (sc->nclerks == sc->clerks_cap) {
			cap = sc->clerks_cap ? sc->clerks_cap * 2 : 8;
			nc = realloc(sc->clerks, cap * sizeof(*nc));
			if (!nc)
				return -ENOMEM;
			sc->clerks = nc;
			sc->clerks_cap = cap;
		}
		c = &sc->clerks[sc->nclerks++];
		memset(c, 0, sizeof(*c));
		c->id = r->h.id;
		c->cap = UINT64_MAX;
		sc->sys->st.clerks++;
	}
	c->pool = r->pool;
	c->priority = r->priority;
	c->flags = r->flags;
	c->bytes = r->bytes;
	c->target = r->target;
	mbd_name(c->name, r->name, sizeof(c->name));
	return 0;
}

/* Records of a report or a POLL reply; those before a bad one count. */
static int mbd_records(struct mbd_sclient *sc, const unsigned char *p,
		       size_t len)
{
	static const size_t min_len[] = {
		[MBD_REC_POOL] = sizeof(struct mbd_rec_pool),
		[MBD_REC_CLERK] = sizeof(struct mbd_rec_clerk),
		[MBD_REC_BYTES] = sizeof(struct mbd_rec_bytes),
		[MBD_REC_POOL_GONE] = sizeof(struct mbd_rec),
		[MBD_REC_CLERK_GONE] = sizeof(struct mbd_rec),
	};
	union {
		struct mbd_rec h;
		struct mbd_rec_pool pool;
		struct mbd_rec_clerk clerk;
		struct mbd_rec_bytes bytes;
	} r;
	struct mbd_sclerk *c;
	size_t off = 0, i;
	int err = 0;

	while (!err && off < len) {
		if (len - off < sizeof(r.h))
			return -EINVAL;
		memcpy(&r.h, p + off, sizeof(r.h));
		if (r.h.len < sizeof(r.h) || r.h.len % 8 ||
		    r.h.len > len - off)
			return -EINVAL;
		if (r.h.kind < ARRAY_SIZE(min_len) && min_len[r.h.kind]) {
			if (r.h.len < min_len[r.h.kind])
				return -EINVAL;
			/* fields a later version added are left out */
			memcpy(&r, p + off, min_len[r.h.kind]);
		}
		switch (r.h.kind) {
		case MBD_REC_POOL:
			err = mbd_rec_pool(sc, &r.pool);
			break;
		case MBD_REC_CLERK:
			err = mbd_rec_clerk(sc, &r.clerk);
			break;
		case MBD_REC_BYTES:
			c = mbd_clerk_find(sc, r.h.id);
			if (!c)
				return -EINVAL;
			c->bytes = r.bytes.bytes;
			break;
		case MBD_REC_POOL_GONE:
			mbd_pool_drop(sc, r.h.id);
			break;
		case MBD_REC_CLERK_GONE:
			for (i = 0; i < sc->nclerks; i++) {
				if (sc->clerks[i].id == r.h.id) {
					mbd_clerk_drop(sc, i);
					break;
				}
			}
			break;
		default:
			break;	/* a later version's: not ours to know */
		}
		off += r.h.len;
	}
	return err;
}

/* ---- the ring of decisions ---- */

static void mbd_record(struct mbd_sys *s, struct mbd_sclient *sc,
		       const struct mbd_sclerk *c, uint32_t kind,
		       uint32_t outcome, int32_t status, uint64_t asked,
		       uint64_t freed, uint64_t cap, uint64_t when)
{
	struct mbd_decision d = {
		.time_ns = when,
		.step = s->step,
		.kind = kind,
		.outcome = outcome,
		.pid = sc->pid,
		.uid = sc->uid,
		.priority = c->priority,
		.status = status,
		.shortfall = s->kind == MBD_KIND_SHRINK ? s->st.shortfall :
			     s->need,
		.asked = asked,
		.freed = freed,
		.cap = cap,
	};
	struct mbd_spool *p = mbd_pool_find(sc, c->pool);

	memcpy(d.comm, sc->comm, sizeof(d.comm));
	if (p)
		memcpy(d.pool, p->name, sizeof(d.pool));
	memcpy(d.clerk, c->name, sizeof(d.clerk));
	mb_ring_push(s->ring, &d);
}

/* ---- the step ---- */

static void mbd_arm(struct mbd_sys *s, uint64_t after_ns)
{
	sd_event_source_set_time(s->timer, (mbd_now_ns() + after_ns) / 1000);
	sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

static int mbd_request(struct mbd_sclient *sc, uint16_t type, const void *p,
		       size_t len)
{
	struct mbd_sys *s = sc->sys;
	int err;

	if (!++s->next_req)
		s->next_req = 1;
	err = mbd_control_request(sc->cl, type, s->next_req, p, len);
	if (err)
		return err;
	sc->req_id = s->next_req;
	sc->req_type = type;
	sc->req_step = s->step;
	return 0;
}

static void mbd_step_end(struct mbd_sys *s)
{
	free(s->cands);
	free(s->room);
	s->cands = NULL;
	s->room = NULL;
	s->ncands = 0;
	s->phase = MBD_PHASE_SETTLING;
	mbd_arm(s, s->o.settle_ns);
}

/* Send each client its part of the order that was not sent yet. */
static void mbd_send_asks(struct mbd_sys *s)
{
	unsigned char buf[MBD_MSG_MAX - sizeof(struct mbd_msg)];
	struct mbd_ask head = {
		.item_size = sizeof(struct mbd_ask_item),
		.state = s->reading.state,
		.step = s->step,
	};
	size_t max = (sizeof(buf) - sizeof(head)) /
		     sizeof(struct mbd_ask_item);
	struct mbd_sclerk *in[MBD_MSG_MAX / sizeof(struct mbd_ask_item)];
	struct mbd_ask_item it;
	struct mbd_sclient *sc;
	struct mbd_sclerk *c;
	struct mbd_cand *k;
	uint64_t now = mbd_now_ns();
	size_t i;

	for (sc = s->clients; sc; sc = sc->next) {
		if (sc->skipped || sc->req_id)
			continue;
		head.count = 0;
		for (i = 0; i < s->ncands && head.count < max; i++) {
			k = &s->cands[i];
			if (k->client != sc->number || k->sent ||
			    !(s->kind == MBD_KIND_SHRINK ? k->ask : k->grant))
				continue;
			c = mbd_clerk_find(sc, k->clerk);
			if (!c)
				continue;
			it = (struct mbd_ask_item){
				.clerk = c->id,
				.ask = s->kind == MBD_KIND_SHRINK ? k->ask : 0,
				/* whole entries: what the pool can spare */
				.at_most = k->ask + s->room[k->pool],
				.cap = UINT64_MAX,
			};
			if (s->kind == MBD_KIND_GROW && k->grant < c->taken)
				it.cap = (c->cap < c->bytes ? c->cap :
					  c->bytes) + k->grant;
			c->ask = it.ask;
			c->grant = s->kind == MBD_KIND_GROW ? k->grant : 0;
			c->asked_ns = now;
			k->sent = true;
			memcpy(buf + sizeof(head) + head.count * sizeof(it),
			       &it, sizeof(it));
			in[head.count++] = c;
		}
		if (!head.count)
			continue;
		memcpy(buf, &head, sizeof(head));
		if (mbd_request(sc, MBD_MSG_ASK, buf, sizeof(head) +
				head.count * sizeof(it)) < 0) {
			/* cannot even be told: as if it did not answer */
			sc->skipped = true;
			s->st.skipped++;
			continue;
		}
		for (i = 0; i < head.count; i++) {
			in[i]->req = sc->req_id;
			in[i]->pending = true;
		}
	}
}

/* The step's order, from the clients that answered the POLL. */
static int mbd_build_order(struct mbd_sys *s)
{
	struct mbd_sclient *sc;
	struct mbd_sclerk *c;
	size_t n = 0, npools = 0, i, k, base;
	struct mbd_spool *p;
	uint64_t sum;

	for (sc = s->clients; sc; sc = sc->next) {
		if (sc->skipped || !sc->polled)
			continue;
		n += sc->nclerks;
		npools += sc->npools;
	}
	s->cands = calloc(n ? n : 1, sizeof(*s->cands));
	s->room = calloc(npools ? npools : 1, sizeof(*s->room));
	if (!s->cands || !s->room)
		return -ENOMEM;
	base = 0;
	for (sc = s->clients; sc; sc = sc->next) {
		if (sc->skipped || !sc->polled)
			continue;
		for (k = 0; k < sc->npools; k++) {
			p = &sc->pools[k];
			sum = 0;
			for (i = 0; i < sc->nclerks; i++)
				if (sc->clerks[i].pool == p->id)
					sum += sc->clerks[i].bytes;
			s->room[base + k] = sum > p->min ? sum - p->min : 0;
		}
		for (i = 0; i < sc->nclerks; i++) {
			c = &sc->clerks[i];
			for (k = 0; k < sc->npools; k++)
				if (sc->pools[k].id == c->pool)
					break;
			s->cands[s->ncands++] = (struct mbd_cand){
				.client = sc->number,
				.clerk = c->id,
				.priority = c->priority,
				.shrinkable = c->flags & MBD_CLERK_SHRINKABLE,
				.pool = base + k,
				.bytes = c->bytes,
				.taken = c->taken,
			};
		}
		base += sc->npools;
	}
	return 0;
}

static void mbd_freed(struct mbd_sys *s, uint64_t bytes)
{
	size_t i = s->nfrees++ % MBD_SYS_FREES;

	s->frees[i].ns = mbd_now_ns();
	s->frees[i].bytes = bytes;
}

/* What was given back after the reading was measured */
static uint64_t mbd_freed_since(const struct mbd_sys *s)
{
	size_t n = s->nfrees < MBD_SYS_FREES ? s->nfrees : MBD_SYS_FREES;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < n; i++)
		if (s->frees[i].ns > s->reading.time_ns)
			sum += s->frees[i].bytes;
	return sum;
}

static void mbd_decide(struct mbd_sys *s)
{
	uint64_t room, h;

	s->phase = MBD_PHASE_ASKING;
	if (mbd_build_order(s) < 0) {
		mbd_step_end(s);
		return;
	}
	h = mbd_hysteresis(s->reading.low, s->reading.high, s->hyst);
	if (s->kind == MBD_KIND_SHRINK) {
		s->need = mbd_shortfall(&s->reading, h, mbd_freed_since(s));
		s->st.shortfall = s->need;
		mbd_order_cheap_first(s->cands, s->ncands);
		s->need -= mbd_order_assign(s->cands, s->ncands, s->room,
					    s->need);
	} else {
		/*
		 * The room above the high threshold, less what was granted
		 * since the reading; once that is given, a hysteresis band
		 * per step while HIGH lasts: a growth that took available
		 * memory below high - h would have brought STEADY at once.
		 */
		room = s->reading.available > s->reading.high ?
		       s->reading.available - s->reading.high : 0;
		s->need = room > s->granted_since ? room - s->granted_since :
			  h;
		mbd_order_dear_first(s->cands, s->ncands);
		s->granted_since += mbd_order_grant(s->cands, s->ncands,
						    s->need);
	}
	mbd_send_asks(s);
	mbd_arm(s, s->o.answer_ns);
	mbd_sys_consider(s);
}

static bool mbd_any_pending(struct mbd_sys *s)
{
	struct mbd_sclient *sc;

	for (sc = s->clients; sc; sc = sc->next)
		if (!sc->skipped && sc->req_id && sc->req_step == s->step)
			return true;
	return false;
}

/*
 * @sc will not answer this step (silent, or gone): what it was to give
 * goes to the next in the order.
 */
static void mbd_pass_over(struct mbd_sys *s, struct mbd_sclient *sc,
			  uint32_t outcome)
{
	struct mbd_sclerk *c;
	uint64_t back = 0;
	size_t i;

	sc->skipped = true;
	for (i = 0; i < s->ncands; i++) {
		if (s->cands[i].client != sc->number)
			continue;
		s->cands[i].excluded = true;
		back += s->kind == MBD_KIND_SHRINK ? s->cands[i].ask :
						     s->cands[i].grant;
		s->room[s->cands[i].pool] += s->cands[i].ask;
		c = mbd_clerk_find(sc, s->cands[i].clerk);
		if (c && c->pending)
			mbd_record(s, sc, c, s->kind == MBD_KIND_SHRINK ?
				   MBD_DECISION_SHRINK : MBD_DECISION_GROW,
				   outcome, 0, c->ask, 0, c->cap,
				   c->asked_ns);
		/* a late answer is still taken for what it says (c->req) */
		if (c)
			c->pending = false;
		s->cands[i].ask = 0;
		s->cands[i].grant = 0;
	}
	if (!back || s->phase != MBD_PHASE_ASKING)
		return;
	if (s->kind == MBD_KIND_SHRINK) {
		s->need += back;
		s->need -= mbd_order_assign(s->cands, s->ncands, s->room,
					    s->need);
	} else {
		/* the grants of those asked already stay theirs */
		for (i = 0; i < s->ncands; i++)
			if (s->cands[i].grant)
				s->cands[i].excluded = true;
		s->granted_since -= back;
		s->granted_since += mbd_order_grant(s->cands, s->ncands,
						    back);
	}
	mbd_send_asks(s);
}

/* Decide if everyone who is to answer did. */
static void mbd_sys_consider(struct mbd_sys *s)
{
	struct mbd_sclient *sc;

	if (s->phase == MBD_PHASE_POLLING) {
		for (sc = s->clients; sc; sc = sc->next)
			if (!sc->skipped && !sc->polled)
				return;
		mbd_decide(s);
	} else if (s->phase == MBD_PHASE_ASKING) {
		if (!mbd_any_pending(s))
			mbd_step_end(s);
	}
}

static bool mbd_any_taken(struct mbd_sys *s)
{
	struct mbd_sclient *sc;
	size_t i;

	for (sc = s->clients; sc; sc = sc->next)
		for (i = 0; i < sc->nclerks; i++)
			if (sc->clerks[i].taken)
				return true;
	return false;
}

/* From idle: a step if the reading calls for one. */
static void mbd_step_start(struct mbd_sys *s)
{
	struct mbd_sclient *sc;

	s->phase = MBD_PHASE_IDLE;
	if (!s->have_reading || !s->clients)
		return;
	if (s->reading.state == MB_STATE_LOW)
		s->kind = MBD_KIND_SHRINK;
	else if (s->reading.state == MB_STATE_HIGH && mbd_any_taken(s))
		s->kind = MBD_KIND_GROW;
	else
		return;
	s->step++;
	s->st.steps[s->kind]++;
	s->phase = MBD_PHASE_POLLING;
	for (sc = s->clients; sc; sc = sc->next) {
		sc->polled = false;
		/* still owing an answer from an earlier step: unresponsive */
		sc->skipped = sc->req_id != 0;
		if (sc->skipped || mbd_request(sc, MBD_MSG_POLL, NULL, 0) < 0) {
			sc->skipped = true;
			s->st.skipped++;
		}
	}
	mbd_arm(s, s->o.answer_ns);
	mbd_sys_consider(s);
}

static int mbd_on_timer(sd_event_source *src, uint64_t usec, void *arg)
{
	struct mbd_sys *s = arg;
	struct mbd_sclient *sc;

	(void)src;
	(void)usec;
	switch (s->phase) {
	case MBD_PHASE_POLLING:
		for (sc = s->clients; sc; sc = sc->next) {
			if (!sc->skipped && !sc->polled) {
				sc->skipped = true;
				s->st.skipped++;
			}
		}
		mbd_decide(s);
		break;
	case MBD_PHASE_ASKING:
		/* first who is late: passing over asks others afresh */
		for (sc = s->clients; sc; sc = sc->next)
			sc->late = !sc->skipped && sc->req_id &&
				   sc->req_step == s->step;
		for (sc = s->clients; sc; sc = sc->next) {
			if (sc->late) {
				sc->late = false;
				s->st.skipped++;
				mbd_pass_over(s, sc, MBD_OUTCOME_SKIPPED);
			}
		}
		if (mbd_any_pending(s))
			mbd_arm(s, s->o.answer_ns);
		else
			mbd_step_end(s);
		break;
	case MBD_PHASE_SETTLING:
		/* no reading came: the last one, and what came back since */
		mbd_step_start(s);
		break;
	case MBD_PHASE_IDLE:
		break;
	}
	return 0;
}

/**
 * mbd_sys_reading() - a reading from the monitor
 * @s: the system broker
 * @n: the reading
 * @hysteresis: the module's configured hysteresis, 0 for automatic (and
 *	for other sources)
 */
void mbd_sys_reading(struct mbd_sys *s, const struct mb_notification *n,
		     uint64_t hysteresis)
{
	s->reading = *n;
	s->have_reading = true;
	s->hyst = hysteresis;
	/* no time: as if measured when it came */
	if (!s->reading.time_ns)
		s->reading.time_ns = mbd_now_ns();
	s->granted_since = 0;
	/* after a step's answers, a reading shows their effect */
	if (s->phase == MBD_PHASE_IDLE || s->phase == MBD_PHASE_SETTLING)
		mbd_step_start(s);
}

/* ---- answers ---- */

static void mbd_ask_answered(struct mbd_sclient *sc, uint32_t id,
			     int32_t status, const unsigned char *p,
			     size_t len)
{
	struct mbd_sys *s = sc->sys;
	struct mbd_ask_result r;
	struct mbd_sclerk *c;
	struct mbd_ask head;
	size_t i, size;

	if (status || len < sizeof(head))
		head.count = 0;
	else
		memcpy(&head, p, sizeof(head));
	size = head.count ? head.item_size : 0;
	for (i = 0; i < head.count; i++) {
		if (size < sizeof(r) ||
		    sizeof(head) + (i + 1) * size > len)
			break;
		memcpy(&r, p + sizeof(head) + i * size, sizeof(r));
		c = mbd_clerk_find(sc, r.clerk);
		if (!c || c->req != id)
			continue;
		c->req = 0;
		c->pending = false;
		c->bytes = r.bytes;
		if (!r.status)
			c->cap = r.cap;
		if (c->ask) {
			c->asked += c->ask;
			c->freed += r.freed;
			c->taken += r.freed;
			mbd_freed(s, r.freed);
			s->st.asked += c->ask;
			s->st.freed += r.freed;
		} else if (!r.status) {
			c->taken -= c->grant < c->taken ? c->grant : c->taken;
			if (r.cap == UINT64_MAX)
				c->taken = 0;
			s->st.granted += c->grant;
		}
		mbd_record(s, sc, c, c->ask ? MBD_DECISION_SHRINK :
			   MBD_DECISION_GROW, r.status ? MBD_OUTCOME_FAILED :
			   MBD_OUTCOME_DONE, r.status, c->ask, r.freed,
			   c->cap, c->asked_ns);
	}
	/* items it did not answer for: not done */
	for (i = 0; i < sc->nclerks; i++) {
		if (sc->clerks[i].req == id) {
			sc->clerks[i].req = 0;
			sc->clerks[i].pending = false;
		}
	}
}

/**
 * mbd_sys_answer() - a client's reply to the daemon's request
 * @sc: the client
 * @type: MBD_MSG_POLL or MBD_MSG_ASK (| MBD_MSG_REPLY)
 * @id: the request's id
 * @status: the reply's status
 * @flags: the reply's MBD_F_* (a POLL reply may take several packets)
 * @p: the payload
 * @len: its length
 *
 * A late answer (the step went on without it) still tells what the client
 * holds and gave back.
 */
void mbd_sys_answer(struct mbd_sclient *sc, uint16_t type, uint32_t id,
		    int32_t status, uint32_t flags, const void *p, size_t len)
{
	struct mbd_sys *s = sc->sys;
	bool current;

	type &= ~MBD_MSG_REPLY;
	if (!sc->req_id || id != sc->req_id || type != sc->req_type)
		return;
	if (type == MBD_MSG_POLL && (flags & MBD_F_MORE)) {
		/* more to come: the answer is whole with the last packet */
		if (!status && mbd_records(sc, p, len) < 0)
			s->st.refused++;
		return;
	}
	current = !sc->skipped && sc->req_step == s->step;
	sc->req_id = 0;
	if (type == MBD_MSG_POLL) {
		if (!status && mbd_records(sc, p, len) < 0)
			s->st.refused++;
		if (current && s->phase == MBD_PHASE_POLLING)
			sc->polled = true;
	} else {
		mbd_ask_answered(sc, id, status, p, len);
	}
	if (current)
		mbd_sys_consider(s);
}

/* ---- clients come and go ---- */

static size_t mbd_uid_clients(struct mbd_sys *s, uid_t uid)
{
	struct mbd_sclient *sc;
	size_t n = 0;

	for (sc = s->clients; sc; sc = sc->next)
		n += sc->uid == uid;
	return n;
}

int mbd_sys_register(struct mbd_sys *s, struct mbd_cclient *cl,
		     const struct ucred *cred, const void *p, size_t len,
		     struct mbd_sclient **out, void *reply, size_t *rlen)
{
	struct mbd_register reg = { 0 };
	struct mbd_registered r = { 0 };
	struct mbd_sclient *sc;

	if (cred->uid && mbd_uid_clients(s, cred->uid) >= MBD_SYS_UID_CLIENTS) {
		s->st.refused++;
		return -ENOSPC;
	}
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	memcpy(&reg, p, len < sizeof(reg) ? len : sizeof(reg));
	mbd_name(sc->comm, reg.comm, sizeof(sc->comm));
	sc->sys = s;
	sc->cl = cl;
	sc->pid = cred->pid;
	sc->uid = cred->uid;
	if (!++s->next_number)
		s->next_number = 1;
	sc->number = s->next_number;
	/* it takes part from the next step on */
	sc->skipped = s->phase != MBD_PHASE_IDLE;
	sc->next = s->clients;
	if (sc->next)
		sc->next->prev = sc;
	s->clients = sc;
	s->st.clients++;
	s->st.registered++;
	r.client = sc->number;
	/*
	 * The longest a step may keep a client waiting for a word, with
	 * rounds of others not answering: past it, a client takes LOW into
	 * its own hands again.
	 */
	r.silence_ms = (4 * s->o.answer_ns + 2 * s->o.settle_ns) /
		       MBD_NSEC_PER_MSEC;
	r.report_ms = s->o.report_ms;
	memcpy(reply, &r, sizeof(r));
	*rlen = sizeof(r);
	*out = sc;
	return 0;
}

int mbd_sys_report(struct mbd_sclient *sc, const void *p, size_t len)
{
	int err = mbd_records(sc, p, len);

	if (err)
		sc->sys->st.refused++;
	return err;
}

/* The client's connection is gone: its clerks leave the order. */
void mbd_sys_gone(struct mbd_sclient *sc)
{
	struct mbd_sys *s = sc->sys;
	bool owed = sc->req_id && !sc->skipped && sc->req_step == s->step;

	if (owed && s->phase == MBD_PHASE_ASKING)
		mbd_pass_over(s, sc, MBD_OUTCOME_GONE);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		s->clients = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	s->st.clients--;
	s->st.clerks -= sc->nclerks;
	s->st.gone++;
	free(sc->pools);
	free(sc->clerks);
	free(sc);
	if (owed)
		mbd_sys_consider(s);
}

/* ---- what membrokerctl sees ---- */

static void mbd_row(struct mbd_clerk_row *row, const struct mbd_sclient *sc,
		    const struct mbd_sclerk *c)
{
	const struct mbd_spool *p = mbd_pool_find((struct mbd_sclient *)sc,
						  c->pool);

	memset(row, 0, sizeof(*row));
	row->pid = sc->pid;
	row->uid = sc->uid;
	row->client = sc->number;
	row->priority = c->priority;
	row->flags = (c->flags & MBD_CLERK_SHRINKABLE ? MBD_ROW_SHRINKABLE :
		      0) | (sc->skipped ? MBD_ROW_SKIPPED : 0);
	row->clerks = 1;
	row->bytes = c->bytes;
	row->target = c->target;
	row->cap = c->cap;
	row->asked = c->asked;
	row->freed = c->freed;
	row->taken = c->taken;
	if (p) {
		row->pool_min = p->min;
		row->pool_max = p->max;
		memcpy(row->pool, p->name, sizeof(row->pool));
	}
	memcpy(row->comm, sc->comm, sizeof(row->comm));
	memcpy(row->name, c->name, sizeof(row->name));
}

/* Another user's row: summed into one per uid and priority, nameless. */
static int mbd_hide(struct mbd_clerk_row **agg, size_t *n,
		    const struct mbd_clerk_row *row)
{
	struct mbd_clerk_row *a;
	size_t i;

	for (i = 0; i < *n; i++) {
		a = &(*agg)[i];
		if (a->uid == row->uid && a->priority == row->priority) {
			a->clerks++;
			a->bytes += row->bytes;
			a->asked += row->asked;
			a->freed += row->freed;
			a->taken += row->taken;
			a->flags |= row->flags & MBD_ROW_SHRINKABLE;
			return 0;
		}
	}
	a = realloc(*agg, (*n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*agg = a;
	a = &a[(*n)++];
	memset(a, 0, sizeof(*a));
	a->uid = row->uid;
	a->priority = row->priority;
	a->flags = MBD_ROW_HIDDEN | (row->flags & MBD_ROW_SHRINKABLE);
	a->clerks = 1;
	a->bytes = row->bytes;
	a->target = UINT64_MAX;
	a->cap = UINT64_MAX;
	a->asked = row->asked;
	a->freed = row->freed;
	a->taken = row->taken;
	return 0;
}

/**
 * mbd_sys_clerks() - every registered clerk, as @uid may see them
 * @s: the system broker
 * @uid: who asks (SO_PEERCRED)
 * @emit: called with each struct mbd_clerk_row
 * @arg: its argument
 *
 * Return: 0 or the first -errno of @emit.
 */
int mbd_sys_clerks(struct mbd_sys *s, uid_t uid, mbd_emit_fn emit, void *arg)
{
	struct mbd_clerk_row row, *agg = NULL;
	struct mbd_sclient *sc;
	size_t i, n = 0;
	int err = 0;

	for (sc = s->clients; sc && !err; sc = sc->next) {
		for (i = 0; i < sc->nclerks && !err; i++) {
			mbd_row(&row, sc, &sc->clerks[i]);
			if (!uid || sc->uid == uid)
				err = emit(arg, &row, sizeof(row));
			else
				err = mbd_hide(&agg, &n, &row);
		}
	}
	for (i = 0; i < n && !err; i++)
		err = emit(arg, &agg[i], sizeof(agg[i]));
	free(agg);
	return err;
}

/**
 * mbd_sys_decisions() - the ring from @from on, as @uid may see it
 * @s: the system broker
 * @uid: who asks
 * @from: the first sequence number wanted (0: the oldest held)
 * @emit: called with each struct mbd_decision
 * @arg: its argument
 *
 * Another user's decisions come without pid, program, pool and clerk.
 *
 * Return: 0 or the first -errno of @emit.
 */
int mbd_sys_decisions(struct mbd_sys *s, uid_t uid, uint64_t from,
		      mbd_emit_fn emit, void *arg)
{
	struct mbd_decision d[64];
	uint64_t seqs[64], last, missed;
	int i, n, err = 0;

	last = mb_ring_last_seq(s->ring);
	if (!from || (last > MBD_SYS_RING && from < last - MBD_SYS_RING + 1))
		from = last > MBD_SYS_RING ? last - MBD_SYS_RING + 1 : 1;
	while (!err && from <= last) {
		n = mb_ring_read(s->ring, from, d, seqs, ARRAY_SIZE(d),
				 &missed);
		if (n <= 0 && !missed)
			break;
		for (i = 0; i < n && !err; i++) {
			d[i].seq = seqs[i];
			if (uid && d[i].uid != uid) {
				d[i].pid = 0;
				memset(d[i].comm, 0, sizeof(d[i].comm));
				memset(d[i].pool, 0, sizeof(d[i].pool));
				memset(d[i].clerk, 0, sizeof(d[i].clerk));
			}
			err = emit(arg, &d[i], sizeof(d[i]));
		}
		from += (uint64_t)(n > 0 ? n : 0) + missed;
	}
	return err;
}

void mbd_sys_stats(const struct mbd_sys *s, struct mbd_sys_stats *out)
{
	struct mbd_sclient *sc;
	size_t i;

	*out = s->st;
	out->phase = s->phase;
	out->bytes = 0;
	for (sc = s->clients; sc; sc = sc->next)
		for (i = 0; i < sc->nclerks; i++)
			out->bytes += sc->clerks[i].bytes;
}

int mbd_sys_open(struct mbd_sys **out, sd_event *e,
		 const struct mbd_sys_opts *opts)
{
	struct mbd_sys *s;
	int r;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	r = mb_ring_new(&s->ring, MBD_SYS_RING, sizeof(struct mbd_decision));
	if (r >= 0)
		r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, 0, 0,
				      mbd_on_timer, s);
	if (r >= 0)
		r = sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
	if (r < 0) {
		mbd_log("cannot set up the system broker: %s", strerror(-r));
		mbd_sys_close(s);
		return r;
	}
	*out = s;
	return 0;
}

/* After control.c closed every connection (mbd_sys_gone for each). */
void mbd_sys_close(struct mbd_sys *s)
{
	if (!s)
		return;
	sd_event_source_disable_unref(s->timer);
	mb_ring_free(s->ring);
	free(s->cands);
	free(s->room);
	free(s);
}
