/* journal_db.h - reading a volume's journal: verification of the hash
 * chain, queries, a path's timeline, per-agent statistics, leaks, and the
 * formats records are printed in (text, JSON, CSV).
 *
 * Every function here works on a connection from journal_db_open, which is
 * read-only, so it is safe while the daemon writes (WAL readers see the
 * last committed state and never block the writer). Each call reads one
 * consistent snapshot. Functions return 0 or -errno; -EIO stands for an
 * SQLite failure. */
#ifndef LANEFS_JOURNAL_DB_H
#define LANEFS_JOURNAL_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cJSON.h>
#include <sqlite3.h>

/* The schema version this program writes and reads (PRAGMA user_version). */
#define JOURNAL_SCHEMA_VERSION 2
#define JOURNAL_HASH_LEN 32

/* One event as stored. Absent values: NULL strings, session 0, pid,
 * handle, bytes_read, bytes_written and size -1, err 0. */
struct journal_row {
    int64_t id;                 /* 1, 2, 3... in the order events were logged */
    int64_t ts_us;              /* microseconds since the Unix epoch */
    const char *op;             /* never NULL */
    const char *agent;
    uint64_t session;
    const char *path, *path2;
    int64_t pid;
    const char *comm;
    int64_t handle;
    int64_t bytes_read, bytes_written, size;
    int err;
    const char *detail;
    uint8_t hash[JOURNAL_HASH_LEN];
};

/* ---- opening -------------------------------------------------------- */

/* Opens STATE/journal.db read-only into *out. Returns 0, -ENOENT when
 * there is no journal, -EPROTO when its schema version is not one this
 * program reads, -EIO. */
int journal_db_open(const char *state_dir, sqlite3 **out);

/* Closes a connection of journal_db_open. NULL is fine. */
void journal_db_close(sqlite3 *db);

/* ---- the hash chain ------------------------------------------------- */

/* Where the chain starts and ends. Pruning moves the anchor: it is the
 * last pruned event (id 0 and a zero hash when nothing was pruned). The
 * head is the last event written. */
struct journal_chain {
    int64_t anchor_id;
    uint8_t anchor_hash[JOURNAL_HASH_LEN];
    int64_t head_id;
    uint8_t head_hash[JOURNAL_HASH_LEN];
};

struct journal_verify {
    bool ok;
    int64_t checked;            /* events whose hash was recomputed */
    int64_t first_bad;          /* the first bad event's id; 0 when ok */
    char problem[200];          /* what is wrong with it; "" when ok */
    struct journal_chain chain;
};

/* Recomputes the chain from the anchor to the head into *res: res->ok is
 * false when an event was edited (its hash does not match its contents and
 * its predecessor's hash), deleted (an id is missing, also at the end),
 * inserted (an id past the head or at or below the anchor, or a hash that
 * does not chain), or holds a value of the wrong type. Returns 0 (whatever
 * the verdict) or -errno when the journal cannot be read. */
int journal_verify(sqlite3 *db, struct journal_verify *res);

/* Lower-case hex of a hash into buf (at least 2 * JOURNAL_HASH_LEN + 1). */
void journal_hash_hex(char *buf, const uint8_t *hash);

/* ---- queries -------------------------------------------------------- */

#define JOURNAL_FILTER_OPS 16

/* Which events a query returns; a zeroed filter returns all, oldest first. */
struct journal_filter {
    const char *agent;          /* exact agent name */
    const char *path_glob;      /* SQLite GLOB on path or path2 ('*' also
                                   matches '/') */
    const char *path;           /* exactly this path or path2 */
    const char *ops[JOURNAL_FILTER_OPS];  /* any of these ops; NULL-ended */
    uint64_t session;           /* 0: any */
    bool has_since, has_until;
    int64_t since_us;           /* ts >= since_us */
    int64_t until_us;           /* ts < until_us */
    int64_t after_id;           /* id > after_id */
    int64_t limit;              /* at most this many (0: no limit) */
    bool newest_first;
};

/* Called per event; the row is valid only during the call. A non-zero
 * return stops the query and is returned by it. */
typedef int (*journal_row_fn)(void *arg, const struct journal_row *r);

/* Runs fn on every event f selects, in id order (descending with
 * newest_first). Returns 0, fn's non-zero return, -EINVAL (more than
 * JOURNAL_FILTER_OPS ops), or -EIO. */
int journal_query(sqlite3 *db, const struct journal_filter *f,
                  journal_row_fn fn, void *arg);

/* ---- statistics ----------------------------------------------------- */

struct journal_agent_stats {
    char *agent;                /* "" for events without an agent */
    int64_t events;             /* every event of the agent */
    int64_t sessions;           /* session_start */
    int64_t opens, creates, removes;          /* open; create, mkdir,
                                                 symlink, link; unlink, rmdir */
    int64_t bytes_read, bytes_written;        /* summed over close */
    int64_t copy_ups, denials, quota_hits, io_errors;
    int64_t lease_conflicts, lock_waits;
    int64_t first_us, last_us;                /* first and last event */
};

struct journal_stats {
    struct journal_agent_stats *agents;       /* sorted by name */
    size_t n;
    int64_t events;             /* events selected */
    int64_t lost;               /* events dropped (summed events_lost) */
    struct journal_chain chain; /* pruned: chain.anchor_id events */
};

/* Per-agent counts of the events f selects (f's path, op and id fields
 * are honoured too; NULL: all) into *out. Returns 0, -ENOMEM, -EIO. */
int journal_stats(sqlite3 *db, const struct journal_filter *f,
                  struct journal_stats *out);

/* Frees what journal_stats allocated and zeroes *s. */
void journal_stats_free(struct journal_stats *s);

/* ---- leaks ---------------------------------------------------------- */

/* Kinds of leak, in the order journal_leaks reports them. */
#define JOURNAL_LEAK_TEMP     "temp_left"        /* temp file left at session end (size) */
#define JOURNAL_LEAK_HANDLE   "handle_left"      /* open at session end, or a session that
                                                    did not end: pid, comm, path */
#define JOURNAL_LEAK_OPEN     "handle_open_long" /* open longer than the threshold in a live session */
#define JOURNAL_LEAK_LEASE    "lease_expired"    /* lease that expired instead of being released */
#define JOURNAL_LEAK_LOCK     "lock_left"        /* lock held at session end */
#define JOURNAL_LEAK_SESSION  "session_unended"  /* started, never ended, not live */
#define JOURNAL_LEAK_CRASH    "session_crashed"  /* ended by recovery after its daemon died
                                                    (session_end "crash") */
#define JOURNAL_LEAK_AGENT    "agent_unused"     /* STATE/agents/NAME with no session ever */

struct journal_leak {
    const char *kind;           /* one of JOURNAL_LEAK_* */
    const char *agent;
    const struct journal_row *ev;   /* the event that shows it; NULL for
                                       agent_unused */
};

struct journal_leak_opts {
    const char *state_dir;      /* for agent_unused; NULL: skip that kind */
    const char *agent;          /* only this agent (NULL: all) */
    uint64_t session;           /* only this session (0: all) */
    int64_t now_us;
    int64_t open_max_us;        /* handle_open_long threshold */
    /* Whether a session is still being served (then it is no leak that it
     * has not ended); NULL: none is. */
    bool (*live)(void *arg, uint64_t session);
    void *live_arg;
};

/* Called per leak; everything in l is valid only during the call. A
 * non-zero return stops the search and is returned. */
typedef int (*journal_leak_fn)(void *arg, const struct journal_leak *l);

/* Finds what was left behind, from the events (see docs/journal.md):
 * temp_left, handle_left and lock_left events, opens (and creates with a
 * handle) with no close in a session that ended or died, opens in a live
 * session older than
 * o->open_max_us, lease_expire events, session_start with no session_end
 * in a session that is not live, session_end events whose reason (detail)
 * is "crash", and agent directories no session_start ever named. Returns 0, fn's return, -ENOMEM, -EIO. */
int journal_leaks(sqlite3 *db, const struct journal_leak_opts *o,
                  journal_leak_fn fn, void *arg);

/* ---- time ----------------------------------------------------------- */

/* Parses a time into microseconds since the epoch: ISO 8601
 * "YYYY-MM-DD[(T| )hh:mm[:ss[.frac]]][Z|(+|-)hh[:]mm]" (without an offset:
 * local time), "@SECONDS" (Unix time), "now", or a relative "N(s|m|h|d|w)"
 * meaning N units before now_us. Returns 0 or -EINVAL (-ERANGE when out of
 * range). */
int journal_time_parse(const char *s, int64_t now_us, int64_t *out_us);

/* "2024-05-01T12:00:00.123456Z" (UTC) into buf (32 bytes suffice). */
void journal_time_format(char *buf, size_t len, int64_t ts_us);

/* The current time in microseconds since the epoch. */
int64_t journal_now_us(void);

/* ---- formats -------------------------------------------------------- */

/* A JSON object of the row: id, time, ts_us, op, the fields present, and
 * hash (hex). NULL when out of memory. */
cJSON *journal_row_json(const struct journal_row *r);

/* The CSV header line, and one row (RFC 4180 quoting, "" for absent). */
void journal_csv_header(FILE *out);
void journal_row_csv(FILE *out, const struct journal_row *r);

/* One line for people: time, id, agent/session, op, path, then the other
 * fields present as key=value. */
void journal_row_text(FILE *out, const struct journal_row *r);

#endif
