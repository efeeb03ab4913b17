/* leaseops.c - leases through the user.lanefs.lease attribute. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/leaseops.h"
#include "fs/log.h"
#include "fs/ovl_i.h"
#include "locks/lease.h"

uint64_t leaseops_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int leaseops_key(const struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                 char *key, size_t len)
{
    int n = (e->layer == OVL_LOWER || e->layer == OVL_SHARED)
          ? snprintf(key, len, "vol:/%s", rel)
          : snprintf(key, len, "agent:%s:/%s", fs->agent, rel);
    return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int leaseops_get(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                 char *buf, size_t size)
{
    char key[PATH_MAX + 96], val[512];
    int rc = leaseops_key(fs, rel, e, key, sizeof(key));
    if (rc < 0)
        return rc;
    rc = lease_show(fs->vol->leases, key, leaseops_now_ms(), val, sizeof(val));
    if (rc < 0)
        return rc;
    if (size == 0)
        return rc;
    if ((size_t)rc > size)
        return -ERANGE;
    memcpy(buf, val, (size_t)rc);   /* xattr values carry no NUL */
    return rc;
}

int leaseops_set(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                 const char *value, size_t len)
{
    char key[PATH_MAX + 96];
    int rc = leaseops_key(fs, rel, e, key, sizeof(key));
    if (rc < 0)
        return rc;
    if (!value)
        return lease_release(fs->vol->leases, key, fs->agent, leaseops_now_ms());
    enum lease_mode mode;
    unsigned ttl;
    rc = lease_parse(value, len, &mode, &ttl);
    if (rc < 0)
        return rc;
    uint64_t epoch;
    rc = lease_acquire(fs->vol->leases, key, fs->agent, mode, ttl,
                       leaseops_now_ms(), &epoch);
    if (rc == 0)
        log_say("lease: agent %s holds %s on /%s for %u s (epoch %llu)", fs->agent,
                lease_mode_name(mode), rel, ttl, (unsigned long long)epoch);
    return rc;
}

void leaseops_check_write(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e)
{
    char key[PATH_MAX + 96], holder[128];
    if (leaseops_key(fs, rel, e, key, sizeof(key)) < 0)
        return;
    if (lease_write_holder_other(fs->vol->leases, key, fs->agent, leaseops_now_ms(),
                                 holder, sizeof(holder)))
        log_say("lease conflict: agent %s opened /%s for writing while agent %s "
                "holds its write lease", fs->agent, rel, holder);
}
