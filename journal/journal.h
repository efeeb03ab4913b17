/* journal.h - the volume's event journal: who did what, written to
 * STATE/journal.db (SQLite, WAL) by one writer thread.
 *
 * journal_log only copies the event into a bounded in-memory queue, so no
 * FUSE request ever waits on SQLite. The writer thread takes what is queued
 * every JOURNAL_BATCH_MS milliseconds (sooner when JOURNAL_BATCH_EVENTS are
 * waiting) and writes it in one transaction. Every row carries a SHA-256
 * over the previous row's hash and its own canonical encoding (a hash
 * chain, see docs/journal.md), so an edited, deleted or inserted row is
 * found by verification (journal/journal_db.h).
 *
 * Durability: a transaction is committed at most JOURNAL_BATCH_MS after its
 * first event was logged (plus the time of the commit itself); committed
 * transactions survive a crash of the daemon (SIGKILL), as SQLite's WAL
 * with synchronous=NORMAL loses only on power failure or an OS crash. */
#ifndef LANEFS_JOURNAL_H
#define LANEFS_JOURNAL_H

#include <stdint.h>

/* The database's file name in the state directory. */
#define JOURNAL_DB_NAME "journal.db"

/* Batching of the writer: at most this long between an event being logged
 * and the start of the transaction that writes it... */
#define JOURNAL_BATCH_MS 100
/* ...or sooner, when this many events are waiting. */
#define JOURNAL_BATCH_EVENTS 500
/* Events the queue holds; past it events are dropped and counted. */
#define JOURNAL_QUEUE_MAX 65536

struct journal;

struct journal_event {
    const char *op;          /* "session_start", "session_end", "open", "close", "create",
                                "mkdir", "unlink", "rmdir", "rename", "link", "symlink",
                                "setattr", "copy_up", "whiteout", "lease_acquire",
                                "lease_release", "lease_expire", "lease_conflict",
                                "lock_wait", "quota_hit", "denied", "io_error",
                                "temp_left", "handle_left", "lock_left", "events_lost" */
    const char *agent;       /* may be NULL */
    uint64_t session;        /* 0: none */
    const char *path;        /* view path ("/a/b"), may be NULL */
    const char *path2;       /* rename/link target, may be NULL */
    int64_t pid;             /* -1: unknown */
    const char *comm;        /* process name, may be NULL */
    int64_t handle;          /* -1: none */
    int64_t bytes_read, bytes_written, size;   /* -1: n/a */
    int err;                 /* errno of a failure, 0 */
    const char *detail;      /* free text (reason, mode, holder...), may be NULL */
};

/* Opens (creating, migrating) STATE/journal.db in WAL mode and starts the
 * writer thread. max_bytes: size cap (0: none) past which the oldest events
 * are pruned, keeping the chain verifiable from the pruning point.
 * Returns 0 with *out set, or -errno: -EPROTO when the database has a
 * schema newer than this program knows, -EIO when SQLite fails otherwise,
 * -ENOMEM, or the error of creating the thread. */
int  journal_open(const char *state_dir, uint64_t max_bytes, struct journal **out);

/* Queues one event (strings copied; timestamp taken now). Never blocks and
 * never fails the caller: when the bounded queue is full the event is
 * dropped and counted, and the count is written as an "events_lost" event
 * once there is room. Thread-safe. NULL j: no-op.
 * An event with a NULL op is dropped and counted. Negative pid, handle,
 * bytes_read, bytes_written and size all mean "none" (stored as NULL). */
void journal_log(struct journal *j, const struct journal_event *ev);

/* Writes everything queued, stops the writer, closes. NULL: no-op.
 * No journal_log may run concurrently with or after it. */
void journal_close(struct journal *j);

#endif
