/* lease_mem.c - the in-process lease backend: a hash table of keys, each
 * with the agents holding a lease on it, under one mutex.
 *
 * Epochs are recorded in the epoch file ahead of use, in blocks of
 * MEM_EPOCH_BLOCK: the file holds a number no granted epoch exceeds, so
 * only one grant in a block writes it, and after a crash the next daemon
 * starts above anything granted before. A clean lease_table_free records
 * the last epoch granted, so a restart then continues from it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "locks/lease.h"

#define MEM_EPOCH_BLOCK  1024
#define MEM_BUCKETS_MIN  64

struct holder {
    char *agent;
    enum lease_mode mode;
    uint64_t expires_ms;       /* unexpired while now_ms < expires_ms */
    uint64_t epoch;
};

struct entry {
    struct entry *next;        /* in its bucket */
    struct holder *h;
    size_t n, cap;
    char key[];
};

struct mem {
    struct lease_backend base;
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets, nentries;
    uint64_t epoch;            /* the last epoch granted */
    uint64_t reserved;         /* every epoch up to it is in the file */
    char *epoch_file;          /* NULL: memory only */
};

#define MEM(b) ((struct mem *)(b))

/* ---- the epoch file --------------------------------------------------- */

/* Reads the epoch file into *out: 0 when it does not exist. 0 or -errno
 * (-EINVAL when it holds anything but a decimal number and a newline). */
static int epoch_load(const char *file, uint64_t *out)
{
    char buf[32];
    ssize_t n;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    *out = 0;
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    if (n < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    close(fd);
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    if (n == 0 || n > 20)
        return -EINVAL;
    uint64_t v = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -EINVAL;
        unsigned d = (unsigned)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Writes v to the epoch file atomically (a temp file beside it, fsync,
 * rename, fsync of the directory). 0 or -errno. */
static int epoch_store(const char *file, uint64_t v)
{
    char tmp[PATH_MAX], dir[PATH_MAX], text[32];
    int fd = -1, rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int len = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)v);
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
        return -errno;
    ssize_t w = write(fd, text, (size_t)len);
    if (w != len) {
        rc = w < 0 ? -errno : -EIO;
        goto out;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        rc = -errno;
        fd = -1;
        goto out;
    }
    fd = -1;
    if (rename(tmp, file) < 0) {
        rc = -errno;
        goto out;
    }
    tmp[0] = '\0';
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp[0])
        unlink(tmp);
    return rc;
}

/* Makes sure the next epoch is recorded. Caller holds m->mu. */
static int epoch_reserve(struct mem *m)
{
    if (!m->epoch_file || m->epoch < m->reserved)
        return 0;
    uint64_t upto = m->epoch + MEM_EPOCH_BLOCK;
    int rc = epoch_store(m->epoch_file, upto);
    if (rc == 0)
        m->reserved = upto;
    return rc;
}

/* ---- the hash table --------------------------------------------------- */

static size_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;      /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return (size_t)h;
}

/* The entry of key, and in *link where it is linked, or NULL. */
static struct entry *find(struct mem *m, const char *key,
                          struct entry ***link)
{
    struct entry **p = &m->buckets[hash_key(key) & (m->nbuckets - 1)];
    for (; *p; p = &(*p)->next)
        if (strcmp((*p)->key, key) == 0)
            break;
    if (link)
        *link = p;
    return *p;
}

/* Doubles the buckets when entries outnumber them; a failed allocation
 * just keeps the table as it is. */
static void grow(struct mem *m)
{
    if (m->nentries <= m->nbuckets)
        return;
    size_t nb = m->nbuckets * 2;
    struct entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct entry *e = m->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            size_t j = hash_key(e->key) & (nb - 1);
            e->next = b[j];
            b[j] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

static void entry_free(struct entry *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->h[i].agent);
    free(e->h);
    free(e);
}

/* Removes holder i of e (order is not kept). */
static void holder_drop(struct entry *e, size_t i)
{
    free(e->h[i].agent);
    e->h[i] = e->h[--e->n];
}

/* Unlinks and frees e when it holds no lease any more. */
static void entry_gc(struct mem *m, struct entry **link)
{
    struct entry *e = *link;
    if (e->n)
        return;
    *link = e->next;
    entry_free(e);
    m->nentries--;
}

static int64_t left(const struct holder *h, uint64_t now_ms)
{
    return (int64_t)(h->expires_ms - now_ms);
}

/* ---- operations ------------------------------------------------------- */

static int mem_acquire(struct lease_backend *b, const char *key,
                       const char *agent, enum lease_mode mode, unsigned ttl_s,
                       uint64_t now_ms, uint64_t *epoch)
{
    struct mem *m = MEM(b);
    struct entry **link, *e, *fresh = NULL;
    struct holder *own = NULL;
    char *name = NULL;
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    e = find(m, key, &link);
    for (size_t i = 0; e && i < e->n; i++) {
        struct holder *h = &e->h[i];
        if (strcmp(h->agent, agent) == 0) {
            own = h;
            continue;
        }
        if (h->expires_ms > now_ms &&
            (mode == LEASE_WRITE || h->mode == LEASE_WRITE)) {
            rc = -EWOULDBLOCK;
            goto out;
        }
    }
    if ((rc = epoch_reserve(m)) < 0)
        goto out;
    /* Room for a new holder: nothing is linked until it all succeeded. */
    if (!own) {
        size_t klen = strlen(key) + 1;
        if (!(name = strdup(agent)))
            goto oom;
        if (!e) {
            if (!(fresh = calloc(1, sizeof(*fresh) + klen)))
                goto oom;
            memcpy(fresh->key, key, klen);
            e = fresh;
        }
        if (e->n == e->cap) {
            size_t cap = e->cap ? 2 * e->cap : 2;
            struct holder *v = realloc(e->h, cap * sizeof(*v));
            if (!v)
                goto oom;
            e->h = v;
            e->cap = cap;
        }
        own = &e->h[e->n++];
        own->agent = name;
        name = NULL;
        if (fresh) {
            *link = fresh;
            fresh = NULL;
            m->nentries++;
            grow(m);
        }
    }
    own->mode = mode;
    own->expires_ms = now_ms + (uint64_t)ttl_s * 1000;
    own->epoch = ++m->epoch;
    *epoch = own->epoch;
    goto out;
oom:
    rc = -ENOMEM;
out:
    free(name);
    if (fresh)
        entry_free(fresh);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_release(struct lease_backend *b, const char *key,
                       const char *agent, uint64_t now_ms)
{
    struct mem *m = MEM(b);
    struct entry **link, *e;
    int rc = -ENODATA;

    pthread_mutex_lock(&m->mu);
    e = find(m, key, &link);
    for (size_t i = 0; e && i < e->n; i++) {
        if (strcmp(e->h[i].agent, agent) != 0)
            continue;
        if (e->h[i].expires_ms > now_ms)
            rc = 0;
        holder_drop(e, i);
        entry_gc(m, link);
        break;
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static int mem_key_leases(struct lease_backend *b, const char *key,
                          uint64_t now_ms, lease_fn fn, void *arg)
{
    struct mem *m = MEM(b);

    pthread_mutex_lock(&m->mu);
    struct entry *e = find(m, key, NULL);
    for (size_t i = 0; e && i < e->n; i++) {
        const struct holder *h = &e->h[i];
        if (h->expires_ms > now_ms)
            fn(arg, e->key, h->agent, h->mode, h->epoch, left(h, now_ms));
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* Drops, in every entry, the holders for which drop() says so, calling fn
 * for each first when fn is not NULL. Caller holds m->mu. */
static unsigned mem_drop_if(struct mem *m, bool (*drop)(const struct holder *,
                            const void *), const void *ctx, uint64_t now_ms,
                            lease_fn fn, void *arg)
{
    unsigned n = 0;
    for (size_t bi = 0; bi < m->nbuckets; bi++) {
        struct entry **link = &m->buckets[bi];
        while (*link) {
            struct entry *e = *link;
            for (size_t i = 0; i < e->n;) {
                const struct holder *h = &e->h[i];
                if (!drop(h, ctx)) {
                    i++;
                    continue;
                }
                if (fn)
                    fn(arg, e->key, h->agent, h->mode, h->epoch,
                       left(h, now_ms));
                holder_drop(e, i);
                n++;
            }
            if (e->n)
                link = &e->next;
            else
                entry_gc(m, link);
        }
    }
    return n;
}

static bool is_agent(const struct holder *h, const void *agent)
{
    return strcmp(h->agent, agent) == 0;
}

static unsigned mem_release_agent(struct lease_backend *b, const char *agent)
{
    struct mem *m = MEM(b);
    pthread_mutex_lock(&m->mu);
    unsigned n = mem_drop_if(m, is_agent, agent, 0, NULL, NULL);
    pthread_mutex_unlock(&m->mu);
    return n;
}

static bool is_expired(const struct holder *h, const void *now_ms)
{
    return h->expires_ms <= *(const uint64_t *)now_ms;
}

static unsigned mem_sweep(struct lease_backend *b, uint64_t now_ms,
                          lease_fn fn, void *arg)
{
    struct mem *m = MEM(b);
    pthread_mutex_lock(&m->mu);
    unsigned n = mem_drop_if(m, is_expired, &now_ms, now_ms, fn, arg);
    pthread_mutex_unlock(&m->mu);
    return n;
}

static void mem_foreach(struct lease_backend *b, uint64_t now_ms, lease_fn fn,
                        void *arg)
{
    struct mem *m = MEM(b);
    pthread_mutex_lock(&m->mu);
    for (size_t bi = 0; bi < m->nbuckets; bi++)
        for (struct entry *e = m->buckets[bi]; e; e = e->next)
            for (size_t i = 0; i < e->n; i++) {
                const struct holder *h = &e->h[i];
                if (h->expires_ms > now_ms)
                    fn(arg, e->key, h->agent, h->mode, h->epoch,
                       left(h, now_ms));
            }
    pthread_mutex_unlock(&m->mu);
}

static void mem_destroy(struct lease_backend *b)
{
    struct mem *m = MEM(b);
    if (m->epoch_file && m->epoch < m->reserved)
        epoch_store(m->epoch_file, m->epoch);   /* best effort */
    for (size_t bi = 0; m->buckets && bi < m->nbuckets; bi++) {
        struct entry *e = m->buckets[bi], *next;
        for (; e; e = next) {
            next = e->next;
            entry_free(e);
        }
    }
    free(m->buckets);
    free(m->epoch_file);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static const struct lease_backend_ops mem_ops = {
    .name = "memory",
    .acquire = mem_acquire,
    .release = mem_release,
    .key_leases = mem_key_leases,
    .release_agent = mem_release_agent,
    .sweep = mem_sweep,
    .foreach = mem_foreach,
    .destroy = mem_destroy,
};

struct lease_backend *lease_mem_new(const char *epoch_file)
{
    struct mem *m = calloc(1, sizeof(*m));
    int rc = -ENOMEM;

    if (!m)
        goto fail;
    m->base.ops = &mem_ops;
    pthread_mutex_init(&m->mu, NULL);
    m->nbuckets = MEM_BUCKETS_MIN;
    if (!(m->buckets = calloc(m->nbuckets, sizeof(*m->buckets))))
        goto fail;
    if (epoch_file) {
        if (!(m->epoch_file = strdup(epoch_file)))
            goto fail;
        if ((rc = epoch_load(epoch_file, &m->epoch)) < 0)
            goto fail;
        m->reserved = m->epoch;
    }
    return &m->base;
fail:
    if (m) {
        free(m->buckets);
        free(m->epoch_file);
        pthread_mutex_destroy(&m->mu);
        free(m);
    }
    errno = -rc;
    return NULL;
}
