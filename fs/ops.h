/* ops.h - the FUSE lowlevel operation table of an agent's view. The session
 * userdata must be the struct ovl_fs of that view. */
#ifndef LANEFS_OPS_H
#define LANEFS_OPS_H

#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops ovl_ops;

/* xattr.c */
void ovl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                  const char *value, size_t size, int flags);
void ovl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ovl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ovl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
