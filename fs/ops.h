/* ops.h - the FUSE lowlevel operation table of an agent's view. The session
 * userdata must be the struct ovl_fs of that view. */
#ifndef LANEFS_OPS_H
#define LANEFS_OPS_H

#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops ovl_ops;

/* The largest read or write request a view takes (INIT's max_pages), and
 * the kernel's read-ahead of the mount: 252 pages, not FUSE's 256, so that
 * a read's reply and its header fit a pipe of the kernel's default
 * pipe-max-size (1 MiB, the most a daemon without CAP_SYS_RESOURCE gets),
 * which splicing the reply needs (fs/rpipe.h). */
#define OVL_MAX_IO (1008u * 1024)

/* xattr.c */
void ovl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                  const char *value, size_t size, int flags);
void ovl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void ovl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void ovl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

#endif
