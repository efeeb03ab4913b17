/* ovl_i.h - internals of the overlay: layers, nodes, resolution, copy-up.
 *
 * An agent's view is the union, top to bottom, of its temp layer (temp-class
 * paths only), its private upper (private paths) or the volume's shared
 * upper (shared paths), and the lower. Every layer is a directory
 * tree opened once as a root fd; every access below a root goes through
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so no symlink in any layer
 * is ever followed by the daemon and nothing outside the roots is reachable.
 *
 * Conventions in the upper layer (overlayfs-like):
 *   whiteout  a character device 0/0 hides the lower entry of the same name
 *   opaque    xattr user.lanefs.opaque on an upper dir hides the lower dir
 *   origin    xattr user.lanefs.origin (8 bytes, native endian) on a copied-up
 *             entry holds the lower inode number, so st_ino survives copy-up
 *
 * Locking: fs->ns_lock (rwlock) serialises namespace changes (writers) against
 * resolution (readers); on a volume with shared paths the volume's
 * shared_lock is taken after it, in the same mode, since the shared upper
 * is changed by every view. Data I/O on open handles takes no lock.
 * fs->node_lock protects the node index and reference counts.
 */
#ifndef LANEFS_OVL_I_H
#define LANEFS_OVL_I_H

#include <dirent.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct fuse_session;
struct cowmap;

#include "fs/config.h"
#include "fs/fuseio.h"
#include "fs/pathclass.h"
#include "fs/quota.h"
#include "fs/rengine.h"
#include "fs/volume.h"

#define OVL_XATTR_PREFIX  "user.lanefs."
#define OVL_XATTR_OPAQUE  "user.lanefs.opaque"
#define OVL_XATTR_ORIGIN  "user.lanefs.origin"

enum ovl_layer { OVL_NONE = 0, OVL_LOWER, OVL_UPPER, OVL_TEMP, OVL_SHARED };

/* The layer that takes writes to paths of class c. */
static inline enum ovl_layer ovl_upper_of(enum pclass c)
{
    return c == PCLASS_TEMP ? OVL_TEMP : c == PCLASS_SHARED ? OVL_SHARED : OVL_UPPER;
}

/* Layers an agent's quota counts. */
static inline bool ovl_is_private(enum ovl_layer l)
{
    return l == OVL_UPPER || l == OVL_TEMP;
}

/* Layers that hold whiteouts, opaque marks and copied-up entries. */
static inline bool ovl_is_upper(enum ovl_layer l)
{
    return l == OVL_UPPER || l == OVL_SHARED;
}

/* Fault hook of lazy copy-up for the crash tests (see fs/cowmap.h): the
 * daemon kills itself the nth time a write reaches stage. */
struct cowmap_fault {
    int stage;                /* enum cowmap_stage; 0: off */
    uint64_t nth;
    uint64_t count;           /* atomic */
};

struct ovl_node {
    struct ovl_node *parent;  /* ns_lock (write to change); NULL for root */
    char *name;               /* ns_lock (write to change) */
    uint64_t ino;             /* reported st_ino; fixed at creation */
    uint64_t nlookup;         /* node_lock: kernel lookup count */
    uint64_t nchildren;       /* node_lock: hashed or live children */
    bool hashed;              /* node_lock: reachable by (parent, name) */
    uint64_t merge_cache;     /* atomic: (gen << 1) | lower_merge flag */
    uint64_t res_cache;       /* atomic: (gen << 16) | what resolution found */
};

/* dircache.c: the layer directories a view used last (layer_dir). */
#define DC_SLOTS 16
struct dc_slot {
    char *rel;                /* NULL: empty */
    uint64_t hash, gen, used;
    enum ovl_layer layer;
    int fd;                   /* O_PATH, owned */
};
struct dircache {
    pthread_mutex_t mu;       /* zeroed is unlocked */
    uint64_t tick;            /* mu */
    struct dc_slot slot[DC_SLOTS];    /* mu */
};

struct ovl_fs {
    struct volume *vol;       /* outlives the view */
    uint64_t sid;             /* the session's number (lock owners) */
    char agent[VOL_AGENT_NAME_MAX + 1];
    const struct vol_config *cfg;   /* &vol->cfg */
    int lower_fd;             /* the volume's lower root (not owned) */
    int shared_fd, shared_work_fd, shared_index_fd;  /* the volume's */
    int upper_fd;             /* agents/NAME/upper */
    int temp_fd;              /* agents/NAME/temp */
    int work_fd;              /* agents/NAME/work */
    dev_t lower_dev;          /* st_dev of the lower root */
    int index_fd;             /* agents/NAME/index: copies of hard-linked
                                 lower files, by lower dev and inode */
    pthread_rwlock_t ns_lock;
    pthread_mutex_t node_lock;
    void *node_index;         /* node_lock: tsearch tree keyed (parent,name) */
    struct ovl_node *root;
    uint64_t *gen;            /* &vol->gen: bumped by every change of any view
                                 that can move an existing entry (shared
                                 paths are common) */
    uint64_t *merge_gen;      /* &vol->merge_gen: bumped by every change that
                                 can change whether a directory merges */
    uint64_t work_seq;        /* atomic: unique names in the work dir */
    double timeout;           /* entry/attr cache timeout, seconds */
    unsigned copyup_pause_ms; /* fault hook: pause mid copy-up (tests) */
    pthread_mutex_t cow_lock;
    struct cowmap *cows;      /* cow_lock: maps of open lazily copied files */
    struct cowmap_fault cow_fault;    /* fault hook (tests) */
    struct fuse_session *se;  /* for cache invalidations */
    pthread_mutex_t handle_lock;
    struct ovl_handle *handles;       /* handle_lock: every open file */
    struct ovl_fs *vnext;     /* vol->views_lock: the volume's views */
    uint64_t bytes_read;      /* atomic: bytes requested by reads */
    uint64_t bytes_written;   /* atomic */
    struct quota quota;       /* private upper + temp of this agent */
    pid_t comm_pid;           /* handle_lock: the last process named... */
    char comm[32];            /* handle_lock: ...and its name (events) */
    uint64_t next_handle;     /* atomic: handle ids for the journal */
    bool read_unlimited;      /* atomic: no rate or IOPS limit on reads */
    bool readahead_pending;   /* atomic: INIT answered, read-ahead not tuned */
    struct dircache dcache;   /* layer_dir's descriptors */
    struct re_count in_engine;  /* this view's reads in the engine */
    uint64_t cached_reads, cached_bytes;  /* atomic: shared-data reads answered
                                             from the page cache at once */
    uint64_t direct_reads, direct_bytes;  /* atomic: ...and the other reads
                                             of a lone agent (worker rings) */
    struct fuseio io;         /* the session's transport (fuseio.h) */
    uint64_t cap_checks;      /* atomic: GETXATTRs of security.capability,
                                 the kernel's check before a write */
};

/* An open file of the view. */
struct ovl_handle {
    int fd;                   /* the layer's file; replaced after copy-up */
    enum ovl_layer layer;     /* handle_lock while tracked */
    dev_t dev;                /* the file's, as opened */
    ino_t ino;
    pid_t pid;                /* the process that opened it */
    char *path;               /* its path in the view when opened */
    struct ovl_node *node;    /* the kernel holds it while the file is open */
    uint64_t id;              /* its number in the journal */
    struct cowmap *cow;       /* atomic (set once): the map of a lazily
                                 copied file; reads and writes go through
                                 it, and a handle moved by a copy-up keeps
                                 its old fd and reads through it only */
    uint64_t bytes_read, bytes_written;   /* atomic: through this handle */
    uint64_t *lk_owners;      /* handle_lock: lock owners that took POSIX or
                                 OFD locks through this open file */
    unsigned n_lk_owners;     /* handle_lock */
    struct ovl_handle *prev, *next;   /* handle_lock: fs->handles */
};

/* What resolution found for one path of the view. */
struct ovl_ent {
    enum ovl_layer layer;     /* where the visible entry lives; NONE: absent */
    struct stat st;           /* lstat of that entry */
    bool in_lower;            /* a visible lower entry exists at this path */
    bool lower_merge;         /* dir: the lower dir's entries show through */
    bool upper_whiteout;      /* upper holds a whiteout at this path */
    bool made;                /* a new inode of this request: no origin */
    enum pclass cls;
};

/* ---- layer.c: safe access below a layer root ---- */
int  layer_root_fd(const struct ovl_fs *fs, enum ovl_layer l);
/* Asks the filesystem to spread the subdirectories of the directory at
 * path over the disk, as it does for those of its root (ext4's Orlov
 * allocator honours FS_TOPDIR_FL; elsewhere this does nothing). An
 * agent's top-level directories then do not all pile into one block
 * group. Best effort: errors are ignored. */
void layer_spread_subdirs(const char *path);
/* openat2 of rel below the directory root with no symlink followed (one
 * met on the way is -ENOENT); the fd or -errno. */
int  layer_openat(int root, const char *rel, int flags, mode_t mode);
/* Opens directory rel below root for listing, with O_NOATIME when asked
 * and allowed; the stream, or NULL with -errno in *rc. */
DIR *layer_opendir(int root, const char *rel, bool noatime, int *rc);
/* layer_openat below the root of layer l. */
int  layer_open(const struct ovl_fs *fs, enum ovl_layer l, const char *rel,
                int flags, mode_t mode);
/* Scratch dir and hard-link index on the same filesystem as layer l. */
int  layer_work_fd(const struct ovl_fs *fs, enum ovl_layer l);
int  layer_index_fd(const struct ovl_fs *fs, enum ovl_layer l);
/* O_PATH|O_DIRECTORY fd of the directory rel in layer l (the caller
 * closes it), from the view's cache when still valid (dircache.c);
 * -errno. */
int  layer_dir(struct ovl_fs *fs, enum ovl_layer l, const char *rel);
/* Closes the cached descriptors (the view is closing). */
void dircache_clear(struct ovl_fs *fs);
bool layer_is_whiteout(const struct stat *st);
/* Path "/proc/self/fd/FD[/name]" for calls with no *at form. */
void layer_fdpath(char *buf, size_t len, int fd, const char *name);
/* Creates a whiteout named name in dirfd; 0/-errno. */
int  layer_mkwhiteout(int dirfd, const char *name);
/* Removes the tree name below dirfd (never following symlinks); 0/-errno. */
int  layer_rm_tree(int dirfd, const char *name);
/* Removes every entry of the directory dirfd; 0/-errno. */
int  layer_empty_dir(int dirfd);
/* Unique name in the work dir for a new scratch entry. */
void layer_work_name(struct ovl_fs *fs, char *buf, size_t len);
/* Name of the index entry of lower file st ("DEV-INO" in hex). */
void layer_index_name(char *buf, size_t len, const struct stat *st);
/* Reported inode number of an entry of layer l. */
uint64_t layer_ino(enum ovl_layer l, ino_t real);
/* Reads the origin xattr of name in dirfd: reported ino, or 0 if none. */
uint64_t layer_origin(int dirfd, const char *name);
/* True when the upper dir name in dirfd carries the opaque mark. */
bool layer_is_opaque(int dirfd, const char *name);

/* ---- path helpers (namei.c) ---- */
/* Joins parent rel path and name into buf; -ENAMETOOLONG. */
int  ovl_join(char *buf, size_t len, const char *dir, const char *name);
/* Splits rel into its parent (written to dir) and last name (pointer in rel). */
const char *ovl_split(const char *rel, char *dir, size_t len);

/* Calls fn on each leading part of rel that ends at a component boundary
 * ("a", "a/b", ..., rel), in that order; stops at the first non-zero. */
typedef int (*ovl_prefix_fn)(struct ovl_fs *fs, const char *prefix, void *arg);
int  ovl_each_prefix(struct ovl_fs *fs, const char *rel, ovl_prefix_fn fn,
                     void *arg);

/* ---- node.c ---- */
int  node_init(struct ovl_fs *fs, uint64_t root_ino);
void node_destroy(struct ovl_fs *fs);
struct ovl_node *node_get(struct ovl_fs *fs, uint64_t nodeid);
uint64_t node_id(struct ovl_fs *fs, struct ovl_node *n);
/* Finds or creates the hashed child (parent, name) and adds one lookup.
 * ino is used only when a node is created. NULL on ENOMEM. */
struct ovl_node *node_lookup_ref(struct ovl_fs *fs, struct ovl_node *parent,
                                 const char *name, uint64_t ino);
/* Drops n lookups; frees nodes nobody references any more. */
void node_forget(struct ovl_fs *fs, struct ovl_node *n, uint64_t nlookup);
/* Writes n's path relative to the root ("" for the root); -ENOENT when the
 * node was unlinked, -ENAMETOOLONG. Caller holds ns_lock. */
int  node_path(struct ovl_node *n, char *buf, size_t len);
/* Namespace updates; caller holds ns_lock for writing. */
void node_unhash(struct ovl_fs *fs, struct ovl_node *parent, const char *name);
int  node_move(struct ovl_fs *fs, struct ovl_node *op, const char *oname,
               struct ovl_node *np, const char *nname, bool exchange);

/* ---- namei.c: resolution ---- */
/* Resolves name in dir node parent (path prel) into *e; rel receives the
 * child's path. Returns 0 (e->layer may be OVL_NONE) or -errno. */
int  ovl_resolve_child(struct ovl_fs *fs, struct ovl_node *parent,
                       const char *prel, const char *name, struct ovl_ent *e);
/* The parent directory's fd in each layer, opened on first use and kept
 * for a batch of ovl_resolve_child_at calls in one directory (readdirplus
 * resolves every child). Valid while the caller holds the view lock: no
 * namespace change can move the directories meanwhile. */
struct ovl_dirfds {
    int fd[OVL_SHARED + 1];   /* -2: not opened yet, -1: absent, else fd */
};
void ovl_dirfds_init(struct ovl_dirfds *c);
void ovl_dirfds_close(struct ovl_dirfds *c);
/* ovl_resolve_child with the parent's directory fds taken from c. */
int  ovl_resolve_child_at(struct ovl_fs *fs, struct ovl_node *parent,
                          const char *prel, const char *name,
                          struct ovl_ent *e, struct ovl_dirfds *c);
/* Resolves node n; *rel gets its path. 0 or -errno (-ENOENT if absent). */
int  ovl_resolve_node(struct ovl_fs *fs, struct ovl_node *n, char *rel,
                      size_t len, struct ovl_ent *e);
/* Resolves a path of the view by walking it from the root; for trees that
 * the kernel has not looked up (copy-up of a whole directory). */
int  ovl_resolve_path(struct ovl_fs *fs, const char *rel, struct ovl_ent *e);
/* Whether the lower shows through dir node n (cached per namespace gen). */
bool ovl_dir_merges(struct ovl_fs *fs, struct ovl_node *n);
/* Marks every cached resolution of every view stale; caller holds ns_lock
 * for writing. Call after every change that can move an existing entry or
 * change whether a directory merges (rmdir, rename, copy-up, opaque). */
void ovl_ns_changed(struct ovl_fs *fs);
/* Same for where entries live only; directories' merging stays cached.
 * For the removal of a non-directory, which changes no directory. */
void ovl_entries_changed(struct ovl_fs *fs);
/* Takes the index's own link out of the link count of st (an entry of
 * layer l, reported inode number ino) when st is an indexed copy of a
 * hard-linked lower file. */
void ovl_fix_nlink(struct ovl_fs *fs, enum ovl_layer l, uint64_t ino,
                   struct stat *st);
/* Reported st_ino of a resolved entry at rel. */
uint64_t ovl_ent_ino(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e);
/* Same, with the parent's directory fds taken from c (may be NULL). */
uint64_t ovl_ent_ino_at(struct ovl_fs *fs, const char *rel,
                        const struct ovl_ent *e, struct ovl_dirfds *c);

/* ---- copy_up.c ---- */
/* Makes rel (resolved as *e) live in the upper of its class (private or
 * shared): copies a lower file, symlink, fifo or dir (dirs: metadata only)
 * atomically via the work dir, creating upper parents as needed. skip_data: the caller truncates to 0 anyway.
 * Updates *e. Caller holds ns_lock for writing. 0 or -errno. */
int  ovl_copy_up(struct ovl_fs *fs, const char *rel, struct ovl_ent *e,
                 bool skip_data);
/* Copies up a directory with everything visible below it and marks every
 * directory of the copy opaque, so the tree no longer depends on the lower
 * (used before renaming a directory that has lower content). */
int  ovl_copy_up_tree(struct ovl_fs *fs, const char *rel, struct ovl_ent *e);
/* Creates the parents of rel in layer l: parents of l's own class are
 * copied up from the lower; others are plain directories that only hold the
 * way down (never shown: listings filter names by class). */
int  ovl_make_parents(struct ovl_fs *fs, enum ovl_layer l, const char *rel);

/* ---- handle.c ---- */
/* Registers / forgets an open file of the view (for status and copy-up). */
void handle_track(struct ovl_fs *fs, struct ovl_handle *h);
void handle_untrack(struct ovl_fs *fs, struct ovl_handle *h);
/* The descriptor of h's data and its layer: the map's upper file for a
 * handle of a lazily copied file, else h->fd and h->layer. */
int  handle_fd(const struct ovl_handle *h, enum ovl_layer *layer);
/* Untracks, closes and frees h. */
void handle_free(struct ovl_fs *fs, struct ovl_handle *h);
/* Remembers that owner took a POSIX or OFD lock through h, so the locks an
 * open file description holds go when it is released. 0 or -ENOMEM. */
int  handle_note_lock_owner(struct ovl_fs *fs, struct ovl_handle *h, uint64_t owner);
/* A new descriptor (the caller closes it) of a file open on node n, for
 * requests about a name already unlinked (fstat, fchmod of an open file);
 * *layer gets its layer. -ENOENT when n has no open file. */
int  handle_dup_of_node(struct ovl_fs *fs, struct ovl_node *n, enum ovl_layer *layer);
/* The lower file lst was copied up to rel in layer l: points every open
 * read-only handle of it at the copy (in every view, for the shared
 * layer), so a reader sees the writes that follow. */
void handle_copied_up(struct ovl_fs *fs, const struct stat *lst, enum ovl_layer l,
                      const char *rel);

/* ---- readdir.c ---- */
struct ovl_dirent {
    char *name;
    uint64_t ino;
    unsigned char type;       /* DT_* */
};
struct ovl_dir {
    struct ovl_dirent *ents;  /* snapshot, "." and ".." first */
    size_t n;
    bool lower_merge;         /* the lower's entries show through */
    pthread_mutex_t lock;     /* serialises refreshes of this handle */
};
/* Builds the merged listing of dir node n. Caller holds ns_lock (read). */
int  ovl_dir_snapshot(struct ovl_fs *fs, struct ovl_node *n, struct ovl_dir *d);
void ovl_dir_clear(struct ovl_dir *d);
/* 1 when the merged directory at rel (resolved as *e) has no entries, 0 when
 * it has some, or -errno. */
int  ovl_dir_is_empty(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e);
/* Calls cb for each visible entry of the merged directory rel (sorted by
 * name), with the layer that shows it and its reported inode number; stops
 * when cb returns non-zero. merges: whether the lower dir shows through.
 * Returns 0 or -errno (a negative cb return is passed on). */
typedef int (*ovl_list_cb)(void *arg, const char *name, enum ovl_layer l,
                           unsigned char dtype, uint64_t ino);
int  ovl_list(struct ovl_fs *fs, const char *rel, bool merges,
              ovl_list_cb cb, void *arg);

/* Namespace locks of a view (and the shared one after it, when the volume
 * has shared paths). */
void ovl_lock_read(struct ovl_fs *fs);
void ovl_lock_write(struct ovl_fs *fs);
void ovl_unlock(struct ovl_fs *fs);

#endif
