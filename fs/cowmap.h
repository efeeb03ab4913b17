/* cowmap.h - lazy copy-up of large lower files: a sparse upper file plus a
 * map of the blocks it holds.
 *
 * A large lower file is copied up as an empty sparse file of the lower's
 * size (owner, mode, times, xattrs and origin as for a whole copy), carrying
 * two xattrs:
 *   user.lanefs.cowsrc  the lower file's path, relative to the lower root
 *   user.lanefs.cowmap  header + bitmap: which blocks the upper holds
 * and a *lower limit* L. A byte at offset x of the file comes from
 *   the upper  when x >= L, or its block is marked present;
 *   the lower  otherwise (the lower file is only ever read).
 * L starts at the lower's size and only goes down (a shrinking truncate),
 * so bytes past a truncation never come back from the lower. The upper's
 * size is the file's size; L <= that size always holds (a load clamps it).
 *
 * A write that touches a block not yet present first copies the parts of
 * that block the write does not cover from the lower, then the write is
 * applied, then (if lower data was copied) the upper is fdatasync'ed, then
 * the mark is persisted (one fsetxattr), and only then the write is
 * answered. A block marked present therefore always holds the right data,
 * after a kill of the daemon at any point and after a power loss; a crash
 * before the mark leaves the block read from the lower (the unanswered
 * write is lost, which it may be). When every block is present the map is
 * removed and the file is an ordinary upper file.
 *
 * Block size: 64 KiB, doubled until the bitmap fits in COWMAP_MAX_BITS bits
 * (1 KiB), so the map, the source path and the file's own xattrs fit in one
 * ext4 xattr block (4 KiB).
 *
 * Locking: one rwlock per map (per upper inode). Reads and writes that only
 * touch present blocks or bytes past L take it shared; a write that fills
 * blocks, a truncate and a fill take it exclusive. The view's table of maps
 * (fs->cow_lock) is only touched at open, release and truncate. */
#ifndef LANEFS_COWMAP_H
#define LANEFS_COWMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/ovl_i.h"

#define COWMAP_XATTR      "user.lanefs.cowmap"
#define COWMAP_XATTR_SRC  "user.lanefs.cowsrc"
/* Regular lower files at least this large are copied up lazily (when the
 * filesystem cannot clone them); smaller ones are copied whole. */
#define COWMAP_MIN_FILE   ((off_t)4 << 20)
#define COWMAP_MIN_SHIFT  16            /* 64 KiB blocks at least */
#define COWMAP_MAX_BITS   8192u         /* bitmap at most 1 KiB */
/* Each write that fills a block with lower data pays one fdatasync. A file
 * written all over at random would pay more that way than a whole copy:
 * after this many such writes (over the life of the map in memory) the
 * next one fills every block left at once and drops the map. */
#define COWMAP_FILL_AFTER 1024u

struct cowmap;

/* Fault hook for the crash tests: the daemon kills itself (SIGKILL) at the
 * nth time (counting from 1) a write reaches stage. */
enum cowmap_stage {
    COWMAP_AT_NONE = 0,
    COWMAP_AT_COPIED,     /* lower parts copied, the agent's write not yet */
    COWMAP_AT_WRITTEN,    /* the agent's write applied, no sync, no mark */
    COWMAP_AT_MARKED,     /* the mark persisted, the write not answered */
};
/* Parses "STAGE:N" (STAGE copied, written or marked) into *f; -EINVAL. */
int  cowmap_fault_parse(const char *s, struct cowmap_fault *f);

/* ---- one file (descriptor level; no view needed) ---- */

/* Block size shift for a lower limit of limit bytes. */
unsigned cowmap_shift_for(uint64_t limit);

/* Makes ufd (a new upper file being built, already of the lower's size)
 * a lazy copy of the lower file lst found at src (path relative to the
 * lower root): writes both xattrs with no block present and L = its size.
 * 0 or -errno (-ENOSPC, -E2BIG, -ENOTSUP when the xattrs do not fit: the
 * caller copies the data whole instead). */
int  cowmap_init_file(int ufd, const char *src, const struct stat *lst);

/* Whether ufd carries a map (false on any error). */
bool cowmap_has_map(int ufd);

/* The lower path of the map of ufd into buf (NUL-terminated): 0, -ENODATA
 * when ufd has no map, -ERANGE, or -errno. */
int  cowmap_src(int ufd, char *buf, size_t len);

/* Loads the map of the upper file ufd whose lower file is lfd. Takes
 * ownership of both descriptors on success (ufd must be open read-write).
 * A limit above the upper's size (a crash between a truncate and its
 * mark) is lowered to it and persisted. 0 with *out set; -ENODATA when ufd
 * has no map; -ESTALE when lfd is not the file the map was made from
 * (inode, size or mtime differ); -EINVAL for a malformed map; -errno. */
int  cowmap_load(int ufd, int lfd, struct cowmap **out);

/* Closes the descriptors and frees m (no I/O). NULL is a no-op. */
void cowmap_free(struct cowmap *m);

/* Reads up to size bytes at off of the file m describes into buf, each
 * range from the layer that holds it; stops at the file's end. Returns the
 * bytes read or -errno. */
ssize_t cowmap_read(struct cowmap *m, void *buf, size_t size, off_t off);

/* A write of len bytes at off, in two halves around the caller's write to
 * the upper: begin copies from the lower what the write leaves uncovered
 * of every block it touches that is not yet present, and takes m's lock;
 * end (always called after a successful begin, with the bytes the write
 * put, or a negative number when it failed) marks the blocks the write
 * completed, durably, and drops the lock. 0 or -errno; when end fails the
 * blocks stay unmarked (they read from the lower) and the write must be
 * answered with the error. */
struct cowmap_wr {
    off_t off, len;
    uint64_t b0, b1;      /* blocks filled by begin, [b0, b1) */
    bool excl;            /* m's lock taken exclusive */
    bool copied;          /* lower data was copied */
};
int  cowmap_write_begin(struct cowmap *m, off_t off, off_t len,
                        struct cowmap_wr *w, struct cowmap_fault *fault);
int  cowmap_write_end(struct cowmap *m, struct cowmap_wr *w, ssize_t done,
                      struct cowmap_fault *fault);

/* Sets the file's size to size (ftruncate of the upper), then lowers the
 * limit to it when it is below, persisted; a map left with every block
 * present is dropped. 0 or -errno. */
int  cowmap_truncate(struct cowmap *m, off_t size);

/* Copies every block not yet present from the lower and drops the map: the
 * upper becomes an ordinary file. Access and modification times are kept.
 * 0 or -errno. */
int  cowmap_fill(struct cowmap *m);

/* Sets after how many syncing fills the rest is filled at once (default
 * COWMAP_FILL_AFTER; for tests). */
void cowmap_set_fill_after(struct cowmap *m, uint64_t n);

/* State, for tests and status (take m's lock shared). */
uint64_t cowmap_limit(struct cowmap *m);
uint64_t cowmap_block_size(const struct cowmap *m);
bool     cowmap_present(struct cowmap *m, uint64_t off);
/* True when the file no longer depends on the lower (map dropped). */
bool     cowmap_complete(struct cowmap *m);
/* The upper file's descriptor (owned by m). */
int      cowmap_upper_fd(const struct cowmap *m);

/* ---- the maps of a view (upper and temp layer files) ---- */

/* Initialises / destroys the view's table (fs->cow_lock, fs->cows). */
void cowmap_view_init(struct ovl_fs *fs);
void cowmap_view_destroy(struct ovl_fs *fs);

/* The map of the open upper or temp file fd (any access mode), shared by
 * every handle of that inode: 0 with *out a new reference, or *out NULL
 * when the file has no map; -errno (-ESTALE: the lower changed) when it
 * has one that cannot be loaded. */
int  cowmap_get(struct ovl_fs *fs, int fd, struct cowmap **out);
/* Another reference to m. */
struct cowmap *cowmap_ref(struct ovl_fs *fs, struct cowmap *m);
/* Drops a reference; the last one frees the map. NULL is a no-op. */
void cowmap_put(struct ovl_fs *fs, struct cowmap *m);

/* Truncates the upper or temp file rel of layer l to size through its map
 * when it has one: 1 when done that way, 0 when it has no map (the caller
 * truncates as usual), -errno. */
int  cowmap_truncate_path(struct ovl_fs *fs, enum ovl_layer l, const char *rel,
                          off_t size);

/* Fills the file rel of layer l when it has a map, or every file with a
 * map below the directory rel (before they leave the agent's layers for
 * the shared one, where no map is read). 0 or -errno. */
int  cowmap_fill_path(struct ovl_fs *fs, enum ovl_layer l, const char *rel);

#endif
