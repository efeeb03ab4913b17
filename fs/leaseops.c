/* leaseops.c - leases through the user.lanefs.lease attribute. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/events.h"
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
    char key[PATH_MAX + 96];
    int rc = leaseops_key(fs, rel, e, key, sizeof(key));
    if (rc < 0)
        return rc;
    /* Many read holders make a long value: grow up to the xattr limit. */
    char *val = NULL;
    for (size_t cap = 512; cap <= 65536; cap *= 4) {
        char *v = realloc(val, cap);
        if (!v) {
            rc = -ENOMEM;
            break;
        }
        val = v;
        rc = lease_show(fs->vol->leases, key, leaseops_now_ms(), val, cap);
        if (rc != -ERANGE)
            break;
    }
    if (rc >= 0 && size) {
        if ((size_t)rc > size)
            rc = -ERANGE;
        else
            memcpy(buf, val, (size_t)rc);   /* xattr values carry no NUL */
    }
    free(val);
    return rc;
}

int leaseops_set(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                 const char *value, size_t len)
{
    char key[PATH_MAX + 96];
    int rc = leaseops_key(fs, rel, e, key, sizeof(key));
    if (rc < 0)
        return rc;
    if (!value) {
        rc = lease_release(fs->vol->leases, key, fs->agent, leaseops_now_ms());
        if (rc == 0)
            ev_op(fs, "lease_release", rel, NULL, 0, NULL);
        return rc;
    }
    enum lease_mode mode;
    unsigned ttl;
    rc = lease_parse(value, len, &mode, &ttl);
    if (rc < 0)
        return rc;
    uint64_t epoch;
    rc = lease_acquire(fs->vol->leases, key, fs->agent, mode, ttl,
                       leaseops_now_ms(), &epoch);
    char detail[96];
    snprintf(detail, sizeof(detail), "%s ttl=%u epoch=%llu", lease_mode_name(mode), ttl,
             (unsigned long long)epoch);
    if (rc == 0) {
        log_say("lease: agent %s holds %s on /%s", fs->agent, detail, rel);
        ev_op(fs, "lease_acquire", rel, NULL, 0, detail);
    }
    return rc;
}

void leaseops_check_write(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e)
{
    char key[PATH_MAX + 96], holder[128];
    if (leaseops_key(fs, rel, e, key, sizeof(key)) < 0)
        return;
    if (lease_write_holder_other(fs->vol->leases, key, fs->agent, leaseops_now_ms(),
                                 holder, sizeof(holder)))
    {
        char detail[160];
        snprintf(detail, sizeof(detail), "write lease held by %s", holder);
        log_say("lease conflict: agent %s opened /%s for writing while agent %s "
                "holds its write lease", fs->agent, rel, holder);
        ev_op(fs, "lease_conflict", rel, NULL, 0, detail);
    }
}
