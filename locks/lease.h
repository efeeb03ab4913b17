/* lease.h - advisory per-file leases of a volume: read (shared) or write
 * (exclusive), per agent, with a TTL and a fencing epoch.
 *
 * A lease is named by a key, an opaque string the caller builds for a file
 * (the daemon names the file in its layer, so every agent that sees the
 * file sees its lease), and held by an agent. It lasts ttl seconds from its
 * last grant: acquiring again renews it. Every grant on a table takes the
 * next epoch, a number that only grows (also across restarts, through the
 * epoch file), so a holder can hand its epoch to whatever it writes to and
 * a stale holder is told apart from the current one (fencing).
 *
 * Leases are advisory: nothing here blocks I/O. An expired lease counts as
 * gone for every call; lease_sweep drops it from memory and reports it.
 *
 * Time is the caller's: every call that needs it takes now_ms, a monotonic
 * clock in milliseconds (the daemon passes CLOCK_MONOTONIC; tests pass what
 * they like). Calls on one table must not pass a clock that goes back.
 *
 * The table sits behind a backend interface (struct lease_backend_ops): the
 * in-process backend (lease_mem_new) keeps everything in memory under one
 * mutex; a backend over a distributed store can be plugged in with
 * lease_table_with_backend without changing any caller. Every lease_*
 * function is safe to call from any thread. */
#ifndef LANEFS_LEASE_H
#define LANEFS_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lease_mode { LEASE_READ = 1, LEASE_WRITE = 2 };

#define LEASE_TTL_DEFAULT 30
#define LEASE_TTL_MIN 2
#define LEASE_TTL_MAX 300

/* The longest attribute value lease_parse accepts, in bytes. */
#define LEASE_VALUE_MAX 64

/* Name of the epoch file in the state directory. */
#define LEASE_EPOCH_FILE "lease.epoch"

struct lease_table;

/* Called once per lease by lease_sweep and lease_foreach. key and agent
 * are valid only during the call; ms_left is the time left until expiry
 * (0 or less for an expired lease). fn must not call lease_* on the table
 * that called it. */
typedef void (*lease_fn)(void *arg, const char *key, const char *agent,
                         enum lease_mode mode, uint64_t epoch, int64_t ms_left);

/* ---- the table -------------------------------------------------------- */

/* A new table with the in-process backend. epoch_file: where the epochs
 * granted are recorded (STATE/lease.epoch), so epochs keep growing across
 * daemon restarts; NULL keeps them in memory only. A missing file starts
 * at epoch 1. Returns NULL with errno set: ENOMEM, EINVAL when the file
 * holds no epoch, or the error of reading it. */
struct lease_table *lease_table_new(const char *epoch_file);

/* Frees t, its backend and every lease in it (records the last epoch
 * granted in the epoch file first). NULL is fine. */
void lease_table_free(struct lease_table *t);

/* Parses an attribute value: "read", "write", "read,ttl=N", "write,ttl=N",
 * N decimal seconds, at least 1, clamped to [LEASE_TTL_MIN, LEASE_TTL_MAX];
 * without ttl, LEASE_TTL_DEFAULT. len is the value length (attribute values
 * are not NUL-terminated); one NUL at the very end is allowed, as C callers
 * often pass sizeof("write"). Anything else is -EINVAL and leaves *mode and
 * *ttl_s untouched: unknown or misspelt words ("writ", "WRITE"), ttl=0,
 * ttl=-1, "write,", "write,ttl=", "write,ttl=5x", blanks, an empty value,
 * more than LEASE_VALUE_MAX bytes, bytes outside ASCII (so anything that is
 * not UTF-8), a NUL before the end. Returns 0 on success. */
int lease_parse(const char *val, size_t len, enum lease_mode *mode,
                unsigned *ttl_s);

/* The mode's name: "read" or "write". */
const char *lease_mode_name(enum lease_mode mode);

/* Acquires or renews agent's lease on key for ttl_s seconds (clamped to
 * [LEASE_TTL_MIN, LEASE_TTL_MAX]) from now_ms. Read leases share with read
 * leases of other agents; a write lease excludes every other agent. The
 * same agent acquiring again renews its lease (new expiry, new epoch) and
 * may change its mode when no other agent conflicts: an upgrade read to
 * write only when it is the sole holder; a downgrade always. On success
 * *epoch gets the lease's new epoch, greater than any granted before on t.
 * Returns 0; -EWOULDBLOCK when an unexpired lease of another agent
 * conflicts; -EINVAL for a NULL or empty key or agent or a bad mode;
 * -ENOMEM; or the error of recording the epoch. On failure nothing
 * changes (an agent's existing lease stays as it was). */
int lease_acquire(struct lease_table *t, const char *key, const char *agent,
                  enum lease_mode mode, unsigned ttl_s, uint64_t now_ms,
                  uint64_t *epoch);

/* Releases agent's lease on key. Returns 0, or -ENODATA when agent holds
 * no unexpired lease on it (an expired one is dropped all the same). */
int lease_release(struct lease_table *t, const char *key, const char *agent,
                  uint64_t now_ms);

/* Writes the value shown to agents for key into buf, NUL-terminated:
 * "free" when no agent holds an unexpired lease on it, else
 * "mode=M holder=H ttl=T epoch=E" where H lists every holder by name,
 * comma-separated and sorted ("holder=a,b" for read leases), T is the
 * seconds left until the soonest expiry among them, rounded up, and E the
 * highest epoch among them (the latest grant). Returns the length written
 * (without the NUL), -ERANGE when buf is too small, or -ENOMEM. */
int lease_show(struct lease_table *t, const char *key, uint64_t now_ms,
               char *buf, size_t len);

/* True when an agent other than agent holds an unexpired write lease on
 * key; then holder (len bytes, may be NULL when len is 0) gets its name,
 * truncated to fit. The daemon logs a conflict when agent opens that file
 * for writing. */
bool lease_write_holder_other(struct lease_table *t, const char *key,
                              const char *agent, uint64_t now_ms,
                              char *holder, size_t len);

/* Drops every lease agent holds (its session ended), expired ones not yet
 * swept included. Returns how many were dropped. */
unsigned lease_release_agent(struct lease_table *t, const char *agent);

/* Drops every lease expired at now_ms, calling fn (may be NULL) for each
 * just before (for the log). In the in-process backend fn runs with the
 * table locked. Returns how many were dropped. */
unsigned lease_sweep(struct lease_table *t, uint64_t now_ms, lease_fn fn,
                     void *arg);

/* Calls fn for every unexpired lease (ms_left > 0), in no particular
 * order (for "lanefs leases"). In the in-process backend fn runs with the
 * table locked. */
void lease_foreach(struct lease_table *t, uint64_t now_ms, lease_fn fn,
                   void *arg);

/* ---- backends --------------------------------------------------------- */

struct lease_backend;

/* What a backend implements. The table checks arguments (non-empty key and
 * agent, a valid mode, ttl clamped) before calling; the backend keeps its
 * own consistency between threads. Semantics are those of the lease_*
 * function of the same name; key_leases reports the unexpired leases on
 * one key (in any order) and returns 0 or -errno. */
struct lease_backend_ops {
    const char *name;
    int (*acquire)(struct lease_backend *b, const char *key, const char *agent,
                   enum lease_mode mode, unsigned ttl_s, uint64_t now_ms,
                   uint64_t *epoch);
    int (*release)(struct lease_backend *b, const char *key, const char *agent,
                   uint64_t now_ms);
    int (*key_leases)(struct lease_backend *b, const char *key,
                      uint64_t now_ms, lease_fn fn, void *arg);
    unsigned (*release_agent)(struct lease_backend *b, const char *agent);
    unsigned (*sweep)(struct lease_backend *b, uint64_t now_ms, lease_fn fn,
                      void *arg);
    void (*foreach)(struct lease_backend *b, uint64_t now_ms, lease_fn fn,
                    void *arg);
    void (*destroy)(struct lease_backend *b);
};

/* A backend: embed this as the first member of the backend's own state. */
struct lease_backend {
    const struct lease_backend_ops *ops;
};

/* The in-process backend (lease_mem.c): a hash table in memory under one
 * mutex, epochs recorded in epoch_file (NULL: memory only) as for
 * lease_table_new. Returns NULL with errno set on failure. */
struct lease_backend *lease_mem_new(const char *epoch_file);

/* A table over backend b, which it owns from now on (destroyed by
 * lease_table_free, or here on failure). Returns NULL (errno ENOMEM, or
 * EINVAL for a NULL b) on failure. */
struct lease_table *lease_table_with_backend(struct lease_backend *b);

#endif
