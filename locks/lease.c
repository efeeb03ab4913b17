/* lease.c - the lease table's public calls: argument checks, the attribute
 * value parser and the value shown to agents, over a backend (lease.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "locks/lease.h"

struct lease_table {
    struct lease_backend *be;
};

struct lease_table *lease_table_with_backend(struct lease_backend *b)
{
    if (!b) {
        errno = EINVAL;
        return NULL;
    }
    struct lease_table *t = calloc(1, sizeof(*t));
    if (!t) {
        b->ops->destroy(b);
        errno = ENOMEM;
        return NULL;
    }
    t->be = b;
    return t;
}

struct lease_table *lease_table_new(const char *epoch_file)
{
    struct lease_backend *b = lease_mem_new(epoch_file);
    return b ? lease_table_with_backend(b) : NULL;
}

void lease_table_free(struct lease_table *t)
{
    if (!t)
        return;
    t->be->ops->destroy(t->be);
    free(t);
}

const char *lease_mode_name(enum lease_mode mode)
{
    return mode == LEASE_WRITE ? "write" : "read";
}

static unsigned clamp_ttl(unsigned long long s)
{
    if (s < LEASE_TTL_MIN)
        return LEASE_TTL_MIN;
    if (s > LEASE_TTL_MAX)
        return LEASE_TTL_MAX;
    return (unsigned)s;
}

/* True when the len bytes at p are exactly the word w. */
static bool word_is(const char *p, size_t len, const char *w)
{
    return strlen(w) == len && memcmp(p, w, len) == 0;
}

int lease_parse(const char *val, size_t len, enum lease_mode *mode,
                unsigned *ttl_s)
{
    enum lease_mode m;
    unsigned long long ttl = LEASE_TTL_DEFAULT;

    if (!val || len == 0 || len > LEASE_VALUE_MAX)
        return -EINVAL;
    if (val[len - 1] == '\0')
        len--;                  /* one terminating NUL */
    if (len == 0 || memchr(val, '\0', len))
        return -EINVAL;
    const char *comma = memchr(val, ',', len);
    size_t wlen = comma ? (size_t)(comma - val) : len;
    if (word_is(val, wlen, "read"))
        m = LEASE_READ;
    else if (word_is(val, wlen, "write"))
        m = LEASE_WRITE;
    else
        return -EINVAL;
    if (comma) {
        const char *p = comma + 1, *end = val + len;
        if ((size_t)(end - p) < 4 || memcmp(p, "ttl=", 4) != 0)
            return -EINVAL;
        p += 4;
        if (p == end)
            return -EINVAL;
        ttl = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return -EINVAL;
            if (ttl <= LEASE_TTL_MAX)   /* past the limit: saturate */
                ttl = ttl * 10 + (unsigned)(*p - '0');
        }
        if (ttl == 0)
            return -EINVAL;
    }
    *mode = m;
    *ttl_s = clamp_ttl(ttl);
    return 0;
}

static bool key_ok(const char *s)
{
    return s && *s;
}

int lease_acquire(struct lease_table *t, const char *key, const char *agent,
                  enum lease_mode mode, unsigned ttl_s, uint64_t now_ms,
                  uint64_t *epoch)
{
    uint64_t e;
    if (!key_ok(key) || !key_ok(agent) ||
        (mode != LEASE_READ && mode != LEASE_WRITE))
        return -EINVAL;
    int rc = t->be->ops->acquire(t->be, key, agent, mode, clamp_ttl(ttl_s),
                                 now_ms, &e);
    if (rc == 0 && epoch)
        *epoch = e;
    return rc;
}

int lease_release(struct lease_table *t, const char *key, const char *agent,
                  uint64_t now_ms)
{
    if (!key_ok(key) || !key_ok(agent))
        return -ENODATA;
    return t->be->ops->release(t->be, key, agent, now_ms);
}

/* What lease_show gathers from the leases on one key. */
struct show_acc {
    char **names;
    size_t n, cap;
    enum lease_mode mode;
    int64_t min_left;
    uint64_t max_epoch;
    int err;
};

static void show_add(void *arg, const char *key, const char *agent,
                     enum lease_mode mode, uint64_t epoch, int64_t ms_left)
{
    struct show_acc *a = arg;
    (void)key;
    if (a->err)
        return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 4;
        char **v = realloc(a->names, cap * sizeof(*v));
        if (!v) {
            a->err = -ENOMEM;
            return;
        }
        a->names = v;
        a->cap = cap;
    }
    if (!(a->names[a->n] = strdup(agent))) {
        a->err = -ENOMEM;
        return;
    }
    a->n++;
    if (mode == LEASE_WRITE)
        a->mode = LEASE_WRITE;
    if (a->n == 1 || ms_left < a->min_left)
        a->min_left = ms_left;
    if (epoch > a->max_epoch)
        a->max_epoch = epoch;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* snprintf into buf at *off; false when it did not fit. */
static bool put(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= len - *off)
        return false;
    *off += (size_t)n;
    return true;
}

int lease_show(struct lease_table *t, const char *key, uint64_t now_ms,
               char *buf, size_t len)
{
    struct show_acc a = { .mode = LEASE_READ };
    size_t off = 0;
    int rc = 0;

    if (!buf || len == 0)
        return -ERANGE;
    if (key_ok(key))
        rc = t->be->ops->key_leases(t->be, key, now_ms, show_add, &a);
    if (rc == 0)
        rc = a.err;
    if (rc < 0)
        goto out;
    if (a.n == 0) {
        rc = put(buf, len, &off, "free") ? (int)off : -ERANGE;
        goto out;
    }
    qsort(a.names, a.n, sizeof(*a.names), cmp_str);
    rc = -ERANGE;
    if (!put(buf, len, &off, "mode=%s holder=", lease_mode_name(a.mode)))
        goto out;
    for (size_t i = 0; i < a.n; i++)
        if (!put(buf, len, &off, "%s%s", i ? "," : "", a.names[i]))
            goto out;
    if (!put(buf, len, &off, " ttl=%lld epoch=%llu",
             (long long)((a.min_left + 999) / 1000),
             (unsigned long long)a.max_epoch))
        goto out;
    rc = (int)off;
out:
    if (rc < 0)
        buf[0] = '\0';
    for (size_t i = 0; i < a.n; i++)
        free(a.names[i]);
    free(a.names);
    return rc;
}

/* What lease_write_holder_other looks for. */
struct other_acc {
    const char *agent;
    char *holder;
    size_t len;
    bool found;
};

static void other_check(void *arg, const char *key, const char *agent,
                        enum lease_mode mode, uint64_t epoch, int64_t ms_left)
{
    struct other_acc *a = arg;
    (void)key;
    (void)epoch;
    (void)ms_left;
    if (a->found || mode != LEASE_WRITE || strcmp(agent, a->agent) == 0)
        return;
    a->found = true;
    if (a->holder && a->len)
        snprintf(a->holder, a->len, "%s", agent);
}

bool lease_write_holder_other(struct lease_table *t, const char *key,
                              const char *agent, uint64_t now_ms,
                              char *holder, size_t len)
{
    struct other_acc a = {
        .agent = agent ? agent : "", .holder = holder, .len = len,
    };
    if (!key_ok(key))
        return false;
    if (t->be->ops->key_leases(t->be, key, now_ms, other_check, &a) < 0)
        return false;
    return a.found;
}

unsigned lease_release_agent(struct lease_table *t, const char *agent)
{
    if (!key_ok(agent))
        return 0;
    return t->be->ops->release_agent(t->be, agent);
}

unsigned lease_sweep(struct lease_table *t, uint64_t now_ms, lease_fn fn,
                     void *arg)
{
    return t->be->ops->sweep(t->be, now_ms, fn, arg);
}

void lease_foreach(struct lease_table *t, uint64_t now_ms, lease_fn fn,
                   void *arg)
{
    if (fn)
        t->be->ops->foreach(t->be, now_ms, fn, arg);
}
