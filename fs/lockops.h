/* lockops.h - the FUSE lock operations, served by the volume's lock table,
 * and the lock side of a session's end. */
#ifndef LANEFS_LOCKOPS_H
#define LANEFS_LOCKOPS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>

struct ovl_fs;
struct volume;

void lockops_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock);
void lockops_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *lock, int sleep);
void lockops_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);

/* Drops the fcntl locks fi's lock owner (a process) holds on its file, as
 * close() does, and answers the waiters that can now go. */
void lockops_release_owner(struct ovl_fs *fs, struct fuse_file_info *fi);
/* At the release of an open file: drops the OFD (and, with flock_release,
 * flock) locks taken through it, and answers the waiters that can go. */
void lockops_release_handle(struct ovl_fs *fs, struct fuse_file_info *fi);
/* Answers (EINTR) the parked requests of session sid and drops its locks.
 * Call before the session's FUSE session is destroyed. Returns how many
 * locks the session still held. */
unsigned lockops_session_end(struct volume *v, uint64_t sid);
/* Grants parked requests that no longer conflict, oldest first. */
void lockops_wake(struct volume *v);

#endif
