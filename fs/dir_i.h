/* dir_i.h - namespace changes (dir.c), used by the FUSE glue. Every function
 * is called with ns_lock held for writing and returns 0 or -errno. */
#ifndef LANEFS_DIR_I_H
#define LANEFS_DIR_I_H

#include <fuse_lowlevel.h>
#include <limits.h>

#include "fs/ovl_i.h"

/* A name about to be created: where it goes and what was there. */
struct dir_slot {
    char rel[PATH_MAX];
    const char *name;
    enum ovl_layer layer;     /* OVL_TEMP or OVL_UPPER */
    int dfd;                  /* parent dir in that layer */
    struct ovl_ent e;         /* resolution; after commit: the new entry */
    struct stat parent_st;
};

/* Makes the entry name in dfd; 0 or -errno. */
typedef int (*dir_make_fn)(int dfd, const char *name, void *arg);

/* Checks that name is free in parent and prepares its layer directory
 * (creating parents there). Call dir_slot_done in any case. */
int  dir_slot_prepare(struct ovl_fs *fs, struct ovl_node *parent,
                      const char *name, struct dir_slot *s);
/* Creates the entry through make, owned by the caller, atomically replacing
 * a whiteout; on success s->e describes it. */
int  dir_slot_commit(struct ovl_fs *fs, struct dir_slot *s,
                     const struct fuse_ctx *ctx, dir_make_fn make, void *arg);
void dir_slot_done(struct dir_slot *s);

/* unlink (want_dir false) or rmdir (true) of (parent, name). */
int  dir_unlink(struct ovl_fs *fs, struct ovl_node *parent, const char *name,
                bool want_dir);
/* rename/renameat2 with RENAME_NOREPLACE and RENAME_EXCHANGE. */
int  dir_rename(struct ovl_fs *fs, struct ovl_node *op, const char *oname,
                struct ovl_node *np, const char *nname, unsigned flags);

struct link_src { int dfd; const char *name; };
int  dir_make_link(int dfd, const char *name, void *arg);
/* Hard link of node n as (np, nname); slot describes the new name. */
int  dir_link(struct ovl_fs *fs, struct ovl_node *n, struct ovl_node *np,
              const char *nname, const struct fuse_ctx *ctx, struct dir_slot *slot);

#endif
