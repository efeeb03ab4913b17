/* Read scheduler: deficit round robin + token buckets. See sched.h and
 * docs/readengine.md for the algorithm and why. */
#include "fs/sched.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S      1000000000ULL
#define QUANTUM_UNIT  1024ULL           /* bytes of quantum per weight */
/* Tokens are int64_t: keep bursts and single charges far from overflow. */
#define TOKENS_MAX    (INT64_C(1) << 60)

/* A token bucket. The balance may go negative (a read larger than what is
 * left is let through and paid back later), so any read size works and the
 * long-run rate is exact: an agent dispatches only while its balance is
 * positive. rate == 0 means no limit. */
struct bucket {
    uint64_t rate;      /* units (bytes or reads) per second */
    int64_t burst;      /* the balance never exceeds this */
    int64_t tokens;
    uint64_t rem;       /* refill remainder, in units * ns (< NS_PER_S) */
    uint64_t last_ns;   /* refilled up to */
};

struct link {
    struct link *prev, *next;
};

struct agent {
    uint64_t id;
    struct sched_limits lim;
    uint64_t quantum;
    uint64_t deficit;
    bool in_turn;       /* got this round's quantum and is being served */
    bool active;        /* backlogged: on the round-robin ring */
    bool eligible;      /* scratch for one pass of drr_pick */
    struct link ring;
    struct sched_item *head, *tail;
    struct bucket rate, iops, res;
    struct sched_stats st;
    /* pacing */
    uint64_t vt;        /* service: bytes * VT_UNIT / weight */
    uint32_t inflight;  /* dispatched, not yet done */
    bool stream;        /* had two reads outstanding since it joined */
    uint64_t stream_ns; /* when it last asked with a read outstanding */
    uint64_t last_done; /* when its last read ended */
};

struct sched {
    struct agent **agents;  /* sorted by id */
    size_t n, cap;
    struct link ring;       /* backlogged agents; the head is served next */
    size_t nactive;
    size_t nres;            /* agents with a reservation */
    struct bucket vol;
    uint64_t now;           /* the latest time we were given */
    uint64_t lag_vt;        /* pacing: allowed lead, in vt units; 0: off */
    uint64_t idle_ns;       /* pacing: how long an agent contends after its last read */
};

/* vt units per byte at weight 1: a weight-100 agent's vt grows by
 * VT_UNIT / 100 per byte, so vt keeps some precision at any weight. */
#define VT_UNIT 1024ULL

#define RING_AGENT(l) ((struct agent *)((char *)(l) - offsetof(struct agent, ring)))

static int64_t clamp_units(uint64_t v)
{
    return v > (uint64_t)TOKENS_MAX ? TOKENS_MAX : (int64_t)v;
}

static void bucket_refill(struct bucket *b, uint64_t now)
{
    if (!b->rate || now <= b->last_ns)
        return;
    uint64_t dt = now - b->last_ns;
    b->last_ns = now;
    if (b->tokens >= b->burst) {
        b->rem = 0;
        return;
    }
    unsigned __int128 add = (unsigned __int128)b->rate * dt + b->rem;
    unsigned __int128 whole = add / NS_PER_S;
    uint64_t room = (uint64_t)(b->burst - b->tokens);
    if (whole >= room) {
        b->tokens = b->burst;       /* full: nothing more is banked */
        b->rem = 0;
    } else {
        b->tokens += (int64_t)whole;
        b->rem = (uint64_t)(add % NS_PER_S);
    }
}

static bool bucket_ok(const struct bucket *b)
{
    return !b->rate || b->tokens >= 1;
}

/* ns until the balance reaches 1 (the bucket must be refilled to now). */
static uint64_t bucket_wait(const struct bucket *b)
{
    if (bucket_ok(b))
        return 0;
    unsigned __int128 need = (unsigned __int128)(uint64_t)(1 - b->tokens) * NS_PER_S;
    need = need > b->rem ? need - b->rem : 0;
    unsigned __int128 w = (need + b->rate - 1) / b->rate;
    return w >= UINT64_MAX ? UINT64_MAX - 1 : (uint64_t)w;
}

static void bucket_charge(struct bucket *b, uint64_t units)
{
    if (b->rate)
        b->tokens -= clamp_units(units);
    if (b->tokens < -TOKENS_MAX)
        b->tokens = -TOKENS_MAX;
}

/* Sets the rate live. A bucket that had no limit starts full, like a new
 * agent's; one that had keeps its balance, cut to the new burst. */
static void bucket_set(struct bucket *b, uint64_t rate, uint64_t burst, uint64_t now)
{
    bool was = b->rate != 0;
    bucket_refill(b, now);
    b->rate = rate;
    b->burst = clamp_units(burst ? burst : 1);
    if (!rate) {
        b->tokens = 0;
        b->rem = 0;
        return;
    }
    if (!was) {
        b->tokens = b->burst;
        b->rem = 0;
        b->last_ns = now;
    } else if (b->tokens > b->burst) {
        b->tokens = b->burst;
        b->rem = 0;
    }
}

/* ---- agents ---- */

static size_t agent_pos(const struct sched *s, uint64_t id, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->agents[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n && s->agents[lo]->id == id;
    return lo;
}

static struct agent *agent_get(const struct sched *s, uint64_t id)
{
    bool found;
    size_t i = agent_pos(s, id, &found);
    return found ? s->agents[i] : NULL;
}

static int limits_check(const struct sched_limits *l)
{
    if (l->weight > SCHED_WEIGHT_MAX)
        return -EINVAL;
    if (l->rate_bps && l->reserve_bps > l->rate_bps)
        return -EINVAL;     /* a guarantee the limit forbids */
    return 0;
}

static void agent_apply(struct sched *s, struct agent *a, const struct sched_limits *l)
{
    bool had_res = a->lim.reserve_bps != 0;
    a->lim = *l;
    if (!a->lim.weight)
        a->lim.weight = SCHED_WEIGHT_DEFAULT;
    a->quantum = (uint64_t)a->lim.weight * QUANTUM_UNIT;
    /* Limits allow a one-second burst. The reservation's burst is shorter
     * (100 ms): it buys priority over other agents, and an agent returning
     * from idle must not bring much of that with it. */
    bucket_set(&a->rate, l->rate_bps, l->rate_bps, s->now);
    bucket_set(&a->iops, l->iops, l->iops, s->now);
    bucket_set(&a->res, l->reserve_bps, l->reserve_bps / 10, s->now);
    s->nres += (size_t)(l->reserve_bps != 0) - (size_t)had_res;
}

static void ring_add_tail(struct sched *s, struct agent *a)
{
    a->ring.prev = s->ring.prev;
    a->ring.next = &s->ring;
    s->ring.prev->next = &a->ring;
    s->ring.prev = &a->ring;
    a->active = true;
    s->nactive++;
}

static void ring_del(struct sched *s, struct agent *a)
{
    a->ring.prev->next = a->ring.next;
    a->ring.next->prev = a->ring.prev;
    a->ring.prev = a->ring.next = NULL;
    a->active = false;
    s->nactive--;
}

/* Head to tail: the next agent's turn. */
static void ring_rotate(struct sched *s)
{
    struct agent *a = RING_AGENT(s->ring.next);
    ring_del(s, a);
    ring_add_tail(s, a);
}

/* ---- pacing ---- */

/* Queued reads always count. Reads in flight and the idle time after them
 * count only for a stream (an agent seen with two reads outstanding since
 * it started contending): one read at a time with pauses between, like a
 * light random reader, is not a backlog to wait for. */
static bool contends(const struct sched *s, const struct agent *a, uint64_t now)
{
    return a->head || (a->stream && (a->inflight ||
                       (a->last_done && now - a->last_done < s->idle_ns)));
}

/* The least vt among contending agents other than skip that are not held
 * by their own limits (their limits, not the others, keep them behind).
 * UINT64_MAX if there is none. */
static uint64_t pace_floor(struct sched *s, const struct agent *skip, uint64_t now)
{
    uint64_t v = UINT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        struct agent *a = s->agents[i];
        if (a == skip || !contends(s, a, now))
            continue;
        bucket_refill(&a->rate, now);
        bucket_refill(&a->iops, now);
        if (!bucket_ok(&a->rate) || !bucket_ok(&a->iops))
            continue;
        if (a->vt < v)
            v = a->vt;
    }
    if (v == UINT64_MAX)
        return v;
    /* Agents held by their limits are kept level with the floor, so once
     * allowed again they do not hold the others back for what their
     * limits kept them from. */
    for (size_t i = 0; i < s->n; i++) {
        struct agent *a = s->agents[i];
        if (a != skip && a->vt < v && contends(s, a, now) &&
            (!bucket_ok(&a->rate) || !bucket_ok(&a->iops)))
            a->vt = v;
    }
    return v;
}

/* An agent that starts contending joins level with the one furthest behind
 * (it banked nothing while idle, and owes nothing either). */
static void pace_join(struct sched *s, struct agent *a, uint64_t now)
{
    uint64_t v = pace_floor(s, a, now);
    a->vt = v == UINT64_MAX ? 0 : v;
}

/* Whether agent a is ahead of the floor by more than its lag. */
static bool pace_ahead(const struct sched *s, const struct agent *a, uint64_t floor)
{
    return floor != UINT64_MAX && a->vt > floor && a->vt - floor > s->lag_vt;
}

/* With every queued agent paced: how long until one of the agents holding
 * them back stops contending on its own (a read ending wakes the caller
 * anyway). */
static uint64_t pace_wait(const struct sched *s, uint64_t now)
{
    uint64_t w = s->idle_ns ? s->idle_ns : 1;
    for (size_t i = 0; i < s->n; i++) {
        const struct agent *a = s->agents[i];
        if (a->head || a->inflight || !a->last_done || now - a->last_done >= s->idle_ns)
            continue;
        uint64_t left = s->idle_ns - (now - a->last_done);
        if (left < w)
            w = left;
    }
    return w;
}

void sched_set_pacing(struct sched *s, uint64_t lag_bytes, uint64_t idle_ns)
{
    s->lag_vt = lag_bytes * VT_UNIT / SCHED_WEIGHT_DEFAULT;
    s->idle_ns = idle_ns;
}

void sched_done(struct sched *s, uint64_t agent, uint64_t now_ns)
{
    struct agent *a = agent_get(s, agent);
    if (!a || !s->lag_vt)
        return;
    if (now_ns > s->now)
        s->now = now_ns;
    if (a->inflight)
        a->inflight--;
    a->last_done = now_ns ? now_ns : 1;
}

/* ---- public ---- */

bool sched_symmetric(struct sched *s, uint64_t now_ns)
{
    if (!s->lag_vt || s->vol.rate || s->nres)
        return false;
    uint32_t weight = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct agent *a = s->agents[i];
        bool recent = a->head || a->inflight ||
                      (a->last_done && now_ns < a->last_done + SCHED_RECENT_NS);
        if (!recent)
            continue;
        /* A stream whose reads are answered quickly may have paused
         * contending in between; it is one if it had two reads
         * outstanding lately. */
        bool stream = a->stream_ns && now_ns < a->stream_ns + SCHED_RECENT_NS;
        if (!stream || a->lim.rate_bps || a->lim.iops || a->lim.reserve_bps ||
            (weight && a->lim.weight != weight))
            return false;
        weight = a->lim.weight;
    }
    return true;
}

struct sched *sched_new(uint64_t volume_rate_bps)
{
    struct sched *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ring.prev = s->ring.next = &s->ring;
    bucket_set(&s->vol, volume_rate_bps, volume_rate_bps, 0);
    return s;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->agents[i]);
    free(s->agents);
    free(s);
}

void sched_set_volume_rate(struct sched *s, uint64_t volume_rate_bps)
{
    bucket_set(&s->vol, volume_rate_bps, volume_rate_bps, s->now);
}

int sched_agent_add(struct sched *s, uint64_t agent, const struct sched_limits *l)
{
    static const struct sched_limits none;
    bool found;

    if (!l)
        l = &none;
    if (limits_check(l) < 0)
        return -EINVAL;
    size_t i = agent_pos(s, agent, &found);
    if (found)
        return -EEXIST;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct agent **v = realloc(s->agents, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        s->agents = v;
        s->cap = cap;
    }
    struct agent *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->id = agent;
    agent_apply(s, a, l);
    memmove(&s->agents[i + 1], &s->agents[i], (s->n - i) * sizeof(*s->agents));
    s->agents[i] = a;
    s->n++;
    return 0;
}

int sched_agent_set(struct sched *s, uint64_t agent, const struct sched_limits *l)
{
    static const struct sched_limits none;
    struct agent *a = agent_get(s, agent);

    if (!a)
        return -ENOENT;
    if (!l)
        l = &none;
    if (limits_check(l) < 0)
        return -EINVAL;
    agent_apply(s, a, l);
    return 0;
}

struct sched_item *sched_agent_remove(struct sched *s, uint64_t agent)
{
    bool found;
    size_t i = agent_pos(s, agent, &found);
    if (!found)
        return NULL;
    struct agent *a = s->agents[i];
    struct sched_item *list = a->head;
    if (a->active)
        ring_del(s, a);
    if (a->lim.reserve_bps)
        s->nres--;
    memmove(&s->agents[i], &s->agents[i + 1], (s->n - i - 1) * sizeof(*s->agents));
    s->n--;
    free(a);
    return list;
}

int sched_enqueue(struct sched *s, uint64_t agent, struct sched_item *it, uint64_t now_ns)
{
    struct agent *a = agent_get(s, agent);
    if (!a)
        return -ENOENT;
    if (now_ns > s->now)
        s->now = now_ns;
    it->enq_ns = now_ns;
    it->next = NULL;
    if (s->lag_vt) {
        if (!a->head && !contends(s, a, now_ns)) {
            pace_join(s, a, now_ns);
            a->stream = false;
        }
        if (a->head || a->inflight) {
            a->stream = true;
            a->stream_ns = now_ns ? now_ns : 1;
        }
    }
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->st.depth++;
    if (!a->active) {
        /* Joins at the back of the round with nothing in hand. */
        a->deficit = 0;
        a->in_turn = false;
        ring_add_tail(s, a);
    }
    return 0;
}

/* Whether the agent's own limits let it dispatch now; refills them. */
static bool agent_ok(struct agent *a, uint64_t now)
{
    bucket_refill(&a->rate, now);
    bucket_refill(&a->iops, now);
    return bucket_ok(&a->rate) && bucket_ok(&a->iops);
}

static uint64_t agent_wait(const struct agent *a)
{
    uint64_t w1 = bucket_wait(&a->rate), w2 = bucket_wait(&a->iops);
    return w1 > w2 ? w1 : w2;
}

static uint64_t min_agent_wait(struct sched *s, uint64_t now)
{
    uint64_t w = UINT64_MAX;
    for (struct link *l = s->ring.next; l != &s->ring; l = l->next) {
        struct agent *a = RING_AGENT(l);
        uint64_t aw = agent_ok(a, now) ? 0 : agent_wait(a);
        if (aw < w)
            w = aw;
    }
    return w;
}

/* An agent under its reservation and within its limits, the one whose head
 * read has waited longest; NULL if none. */
static struct agent *pick_reserved(struct sched *s, uint64_t now)
{
    struct agent *best = NULL;
    for (struct link *l = s->ring.next; l != &s->ring; l = l->next) {
        struct agent *a = RING_AGENT(l);
        if (!a->res.rate)
            continue;
        bucket_refill(&a->res, now);
        if (!bucket_ok(&a->res) || !agent_ok(a, now))
            continue;
        if (!best || a->head->enq_ns < best->head->enq_ns)
            best = a;
    }
    return best;
}

/* Deficit round robin over the ring. Agents held by their own limits are
 * passed over and lose their deficit (they are not in a position to use
 * their turn, and must not bank it). NULL when every backlogged agent is
 * held; *wait_ns is then the shortest of their waits. */
static struct agent *drr_pick(struct sched *s, uint64_t now, uint64_t floor,
                              uint64_t *wait_ns)
{
    size_t visits = 0, eligible = 0;
    uint64_t minwait = UINT64_MAX, minrounds = UINT64_MAX;

    for (;;) {
        struct agent *a = RING_AGENT(s->ring.next);
        a->eligible = agent_ok(a, now);
        if (a->eligible && pace_ahead(s, a, floor)) {
            /* Ahead of a contending agent: waits for it (which is no
             * wait at all as far as *wait_ns goes; sched_next says). */
            a->eligible = false;
            a->deficit = 0;
            a->in_turn = false;
        } else if (!a->eligible) {
            a->deficit = 0;
            a->in_turn = false;
            uint64_t w = agent_wait(a);
            if (w < minwait)
                minwait = w;
        } else {
            if (!a->in_turn) {
                a->deficit += a->quantum;
                a->in_turn = true;
            }
            if (a->deficit >= a->head->bytes)
                return a;       /* stays at the head while its turn lasts */
            a->in_turn = false;
            eligible++;
            uint64_t r = (a->head->bytes - a->deficit + a->quantum - 1) / a->quantum;
            if (r < minrounds)
                minrounds = r;
        }
        ring_rotate(s);
        if (++visits < s->nactive)
            continue;
        /* A whole round without a dispatch (the ring is back where it
         * started). */
        if (!eligible) {
            *wait_ns = minwait;
            return NULL;
        }
        /* Every eligible agent's head read is larger than its deficit (big
         * reads, small quanta): grant at once the rounds in which nobody
         * could dispatch, exactly as walking them would. */
        if (minrounds > 1)
            for (struct link *l = s->ring.next; l != &s->ring; l = l->next)
                if (RING_AGENT(l)->eligible)
                    RING_AGENT(l)->deficit += (minrounds - 1) * RING_AGENT(l)->quantum;
        visits = eligible = 0;
        minrounds = UINT64_MAX;
    }
}

struct sched_item *sched_next(struct sched *s, uint64_t now_ns, uint64_t *wait_ns, uint64_t *agent_out)
{
    uint64_t wdummy;
    if (!wait_ns)
        wait_ns = &wdummy;
    if (now_ns > s->now)
        s->now = now_ns;
    if (!s->nactive) {
        *wait_ns = UINT64_MAX;
        return NULL;
    }
    bucket_refill(&s->vol, now_ns);
    if (!bucket_ok(&s->vol)) {
        uint64_t vw = bucket_wait(&s->vol), aw = min_agent_wait(s, now_ns);
        *wait_ns = vw > aw ? vw : aw;
        return NULL;
    }

    bool reserved = false;
    uint64_t floor = s->lag_vt ? pace_floor(s, NULL, now_ns) : UINT64_MAX;
    struct agent *a = s->nres ? pick_reserved(s, now_ns) : NULL;
    if (a) {
        reserved = true;
    } else if (!(a = drr_pick(s, now_ns, floor, wait_ns))) {
        if (floor != UINT64_MAX) {
            uint64_t pw = pace_wait(s, now_ns);
            if (pw < *wait_ns)
                *wait_ns = pw;
        }
        return NULL;
    }

    struct sched_item *it = a->head;
    a->head = it->next;
    if (!a->head)
        a->tail = NULL;
    it->next = NULL;

    bucket_charge(&a->rate, it->bytes);
    bucket_charge(&a->iops, 1);
    bucket_charge(&s->vol, it->bytes);
    if (reserved) {
        bucket_charge(&a->res, it->bytes);
    } else {
        /* Bytes served by weight count toward the reservation too, so an
         * agent gets the larger of its reservation and its fair share, not
         * their sum. Down to minus one burst only: what it got above its
         * reservation must not suspend the guarantee for long once others
         * crowd it (at most 100 ms of refill). */
        if (a->res.rate) {
            int64_t floor = a->res.tokens < -a->res.burst ? a->res.tokens : -a->res.burst;
            bucket_charge(&a->res, it->bytes);
            if (a->res.tokens < floor)
                a->res.tokens = floor;
        }
        a->deficit -= it->bytes;
    }

    if (s->lag_vt) {
        a->vt += it->bytes * VT_UNIT / a->lim.weight;
        a->inflight++;
    }
    a->st.bytes += it->bytes;
    a->st.reads++;
    a->st.queued_ns += now_ns > it->enq_ns ? now_ns - it->enq_ns : 0;
    a->st.depth--;
    if (!a->head) {
        /* Idle agents bank no credit. */
        ring_del(s, a);
        a->deficit = 0;
        a->in_turn = false;
    }
    *wait_ns = 0;
    if (agent_out)
        *agent_out = a->id;
    return it;
}

int sched_stats(struct sched *s, uint64_t agent, struct sched_stats *out)
{
    struct agent *a = agent_get(s, agent);
    if (!a)
        return -ENOENT;
    *out = a->st;
    return 0;
}
