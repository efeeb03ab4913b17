/* leaseops.h - the lease attribute (user.lanefs.lease) of an agent's view,
 * served from the volume's lease table (locks/lease.h, docs/leases.md). */
#ifndef LANEFS_LEASEOPS_H
#define LANEFS_LEASEOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_XATTR "user.lanefs.lease"

struct ovl_fs;
struct ovl_ent;

/* Milliseconds of a monotonic clock: the lease table's time. */
uint64_t leaseops_now_ms(void);
/* The table's name for the file rel of the view (resolved as *e): files of
 * the lower and of the shared layer are one file for every agent
 * ("vol:REL"); an agent's own copies are its own ("agent:NAME:REL").
 * -ENAMETOOLONG. */
int  leaseops_key(const struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                  char *key, size_t len);
/* getxattr: the lease value of the file into buf (size 0: its length).
 * Returns the length or -errno. Caller holds the namespace lock. */
int  leaseops_get(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                  char *buf, size_t size);
/* setxattr: acquire or renew (value as lease_parse takes it): 0, -EINVAL,
 * -EWOULDBLOCK. removexattr (value NULL): release: 0 or -ENODATA. */
int  leaseops_set(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                  const char *value, size_t len);
/* Logs a conflict when the agent of fs opens rel for writing while another
 * agent holds its write lease. */
void leaseops_check_write(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e);

#endif
