/* posix.h - one table of POSIX record locks (fcntl, OFD) and flock locks for
 * every agent mount of a volume, so locks taken through two mounts of one
 * file exclude each other as on a local filesystem.
 *
 * Files are named by the (dev, ino) of the layer file; owners by the session
 * and the kernel's lock owner id (a process's files for fcntl locks, the
 * open file description for OFD and flock locks). Ranges are inclusive;
 * LK_EOF as the end means "to the end of the file and beyond". POSIX and
 * flock locks are separate, as on Linux. No function blocks: waiting is the
 * caller's (it retries lk_set when locks are released). */
#ifndef LANEFS_LOCKS_POSIX_H
#define LANEFS_LOCKS_POSIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define LK_EOF UINT64_MAX

enum lk_kind { LK_POSIX = 0, LK_FLOCK = 1 };

struct lk_lock {
    uint64_t dev, ino;        /* the file */
    enum lk_kind kind;
    int type;                 /* F_RDLCK, F_WRLCK or F_UNLCK */
    uint64_t start, end;      /* inclusive; flock: 0..LK_EOF */
    uint64_t session, owner;  /* who holds it */
    pid_t pid;                /* for F_GETLK answers */
};

struct lk_table;

/* A new, empty table, or NULL on ENOMEM. Thread-safe. */
struct lk_table *lk_table_new(void);
void lk_table_free(struct lk_table *t);

/* F_GETLK: true, with the first lock in the way in *conflict, when r
 * (type F_RDLCK or F_WRLCK) could not be granted now; false otherwise. */
bool lk_test(struct lk_table *t, const struct lk_lock *r, struct lk_lock *conflict);

/* Sets r for its owner: a lock (replacing, splitting or converting what the
 * owner held over that range) or, with F_UNLCK, an unlock of the range.
 * Returns 0, -EAGAIN when another owner's lock is in the way (nothing
 * changes), or -ENOMEM. An unlock never fails for lack of a lock. */
int  lk_set(struct lk_table *t, const struct lk_lock *r);

/* Drops every lock of (session, owner) of the given kind on a file (close,
 * flush). Returns how many locks went. */
unsigned lk_release_owner(struct lk_table *t, uint64_t dev, uint64_t ino,
                          enum lk_kind kind, uint64_t session, uint64_t owner);

/* Drops every lock of a session (its mount ended). Returns how many. */
unsigned lk_release_session(struct lk_table *t, uint64_t session);

/* Number of locks held (for status and tests). */
unsigned lk_count(struct lk_table *t);

#endif
