/* mountinfo.h - read the kernel's mount table (/proc/self/mountinfo) and
 * map lanefs mounts back to their volume and agent.
 *
 * A line looks like (see proc(5)):
 *   36 35 0:52 / /mnt/a rw,nosuid master:1 - fuse.lanefs lanefs@a:/srv/s rw
 * Fields that hold paths escape ' ', '\t', '\n' and '\\' as \ooo octal;
 * the parser decodes them. */
#ifndef LANEFS_MOUNTINFO_H
#define LANEFS_MOUNTINFO_H

#include <stddef.h>
#include <stdio.h>

#define MINFO_LANEFS_FSTYPE "fuse.lanefs"
#define MINFO_PATH          "/proc/self/mountinfo"

struct minfo_entry {
    int id, parent_id;
    char *dev;           /* "MAJOR:MINOR" of the mounted filesystem */
    char *root;          /* root of the mount within its filesystem */
    char *mountpoint;    /* decoded absolute path */
    char *options;       /* per-mount options: "rw,nosuid,..." */
    char *fstype;        /* "ext4", "fuse.lanefs", ... */
    char *source;        /* decoded; for lanefs "lanefs@NAME:STATE" */
    char *super_options; /* per-superblock options */
};

struct minfo_table {
    struct minfo_entry *v;
    size_t n;
};

/* Parses mountinfo text from f into *t (zeroed first). Returns 0, -EINVAL
 * when a line is malformed, -ENOMEM, or -EIO on a read error. On error *t
 * holds nothing to free. */
int minfo_parse_file(FILE *f, struct minfo_table *t);

/* Same as minfo_parse_file over a NUL-terminated string. */
int minfo_parse_string(const char *text, struct minfo_table *t);

/* Reads this process's mount table (MINFO_PATH). Returns 0 or -errno. */
int minfo_load(struct minfo_table *t);

/* Frees everything *t owns and zeroes it. Safe on a zeroed table. */
void minfo_free(struct minfo_table *t);

/* Decodes \ooo octal escapes of s in place; other backslashes stay. */
void minfo_unescape(char *s);

/* The entry mounted at mountpoint (an absolute canonical path): the last
 * one in the table, i.e. the one on top when several are stacked. NULL when
 * nothing is mounted there. */
const struct minfo_entry *minfo_find_mountpoint(const struct minfo_table *t,
                                                const char *mountpoint);

/* Sets the kernel read-ahead of the filesystem mounted at mountpoint (its
 * backing device info, /sys/class/bdi/MAJOR:MINOR/read_ahead_kb) to kib.
 * Returns 0, -ENOENT when nothing is mounted there, or the -errno of the
 * write (-EROFS, -EACCES where sysfs is read-only, as in rootless
 * containers: the caller then keeps the kernel's default). */
int minfo_set_readahead(const char *mountpoint, unsigned kib);

/* The last lanefs entry whose source is exactly source, or NULL. */
const struct minfo_entry *minfo_find_lanefs_source(const struct minfo_table *t,
                                                   const char *source);

/* Splits a lanefs mount source "lanefs@NAME:STATE" into newly allocated
 * *agent and *state. Returns 0, -EINVAL when src has another form, or
 * -ENOMEM. */
int minfo_lanefs_source_split(const char *src, char **agent, char **state);

#endif
