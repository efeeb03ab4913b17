/* quota.h - per-agent limits on the private upper plus the temp layer.
 *
 * Usage is counted in apparent bytes (sizes of regular files) and inodes
 * (names of files, directories, symlinks, fifos and hard links; whiteouts
 * are not counted), measured by a walk when the session starts and kept by
 * the operations that change it: creating, copying up, writing, truncating,
 * removing and renaming files. Whole directories moved between the private
 * and shared classes are counted at the next session start.
 * Going over a limit fails that agent's request with EDQUOT; other agents
 * and the shared layer are not counted. A limit of 0 means none, and then
 * nothing is counted at all. */
#ifndef LANEFS_QUOTA_H
#define LANEFS_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

struct ovl_fs;

struct quota {
    unsigned long long bytes_limit, inodes_limit;   /* 0: none */
    int64_t bytes_used, inodes_used;                /* atomic */
};

/* True when fs counts usage (a limit is set). */
bool quota_on(const struct ovl_fs *fs);
/* Sets the limits and measures what the upper and temp layers hold now.
 * 0 or -errno. */
int  quota_init(struct ovl_fs *fs, unsigned long long bytes_limit,
                unsigned long long inodes_limit);
/* Adds bytes and inodes (either may be negative). Growth that would pass
 * a limit is refused with -EDQUOT and changes nothing; shrinking always
 * succeeds. No-op returning 0 when quotas are off. */
int  quota_charge(struct ovl_fs *fs, int64_t bytes, int64_t inodes);

#endif
