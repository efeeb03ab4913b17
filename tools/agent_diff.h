/* agent_diff.h - what an agent changed relative to the lower, read from its
 * private upper (like `docker diff`).
 *
 * Rules, for a path P of the view (the upper root itself is never listed):
 *   A P  the upper has P and the lower, as the view merges it, does not
 *        (everything below an added directory is A too);
 *   C P  the upper has P and the lower has it too: for a non-directory, or a
 *        directory over a non-directory, always; for a directory over a
 *        directory, when the upper one is opaque (xattr user.lanefs.opaque,
 *        or below an opaque one) or its mode, owner, group or user xattrs
 *        differ (lanefs's own user.lanefs.* xattrs and times are not
 *        compared: a directory's times change whenever its entries do);
 *   D P  the lower has P but the view does not: an upper whiteout (a
 *        character device 0/0) over it, or a direct lower entry of an
 *        opaque directory that the upper directory does not hold.
 * Symlinks are never followed, in either tree. */
#ifndef LANEFS_AGENT_DIFF_H
#define LANEFS_AGENT_DIFF_H

#include <stddef.h>

struct adiff_change {
    char kind;          /* 'A', 'C' or 'D' */
    char *path;         /* "/a/b": from the view's root */
};

struct adiff_list {
    struct adiff_change *v;
    size_t n, cap;
};

/* Compares the upper tree at upper_fd with the lower tree at lower_fd (any
 * directory fds; lower_fd -1 for an empty lower) and fills *out (zeroed
 * first) with the changes, sorted by path (strcmp). Returns 0 or -errno; on
 * error *out holds nothing to free. */
int adiff_collect(int upper_fd, int lower_fd, struct adiff_list *out);

/* Frees what *l owns and zeroes it. Safe on a zeroed list. */
void adiff_free(struct adiff_list *l);

#endif
