/* posix.c - the volume's lock table: per file, a list of locks; a lock
 * request is checked against other owners' locks and then merged into its
 * owner's, splitting ranges as fcntl does. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>

#include "locks/posix.h"

struct lk_entry {
    struct lk_lock l;
    struct lk_entry *next;
};

struct lk_file {
    uint64_t dev, ino;
    struct lk_entry *locks;
};

struct lk_table {
    pthread_mutex_t mu;
    void *files;              /* mu: tsearch tree of struct lk_file */
    unsigned count;           /* mu */
};

static int file_cmp(const void *a, const void *b)
{
    const struct lk_file *x = a, *y = b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

struct lk_table *lk_table_new(void)
{
    struct lk_table *t = calloc(1, sizeof(*t));
    if (t)
        pthread_mutex_init(&t->mu, NULL);
    return t;
}

static void file_free(void *p)
{
    struct lk_file *f = p;
    while (f->locks) {
        struct lk_entry *e = f->locks;
        f->locks = e->next;
        free(e);
    }
    free(f);
}

void lk_table_free(struct lk_table *t)
{
    if (!t)
        return;
    tdestroy(t->files, file_free);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct lk_file *file_find(struct lk_table *t, uint64_t dev, uint64_t ino,
                                 bool create)
{
    struct lk_file key = { .dev = dev, .ino = ino };
    void **slot = tfind(&key, &t->files, file_cmp);
    if (slot)
        return *slot;
    if (!create)
        return NULL;
    struct lk_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->dev = dev;
    f->ino = ino;
    if (!tsearch(f, &t->files, file_cmp)) {
        free(f);
        return NULL;
    }
    return f;
}

/* Forgets a file without locks, so the tree holds only locked files. */
static void file_drop_if_empty(struct lk_table *t, struct lk_file *f)
{
    if (f->locks)
        return;
    tdelete(f, &t->files, file_cmp);
    free(f);
}

static bool same_owner(const struct lk_lock *a, const struct lk_lock *b)
{
    return a->session == b->session && a->owner == b->owner;
}

static bool overlaps(const struct lk_lock *a, const struct lk_lock *b)
{
    return a->start <= b->end && b->start <= a->end;
}

/* The first lock of another owner that r conflicts with, or NULL. */
static const struct lk_lock *conflict_of(const struct lk_file *f,
                                         const struct lk_lock *r)
{
    for (const struct lk_entry *e = f ? f->locks : NULL; e; e = e->next) {
        const struct lk_lock *l = &e->l;
        if (l->kind != r->kind || same_owner(l, r) || !overlaps(l, r))
            continue;
        if (l->type == F_WRLCK || r->type == F_WRLCK)
            return l;
    }
    return NULL;
}

bool lk_test(struct lk_table *t, const struct lk_lock *r, struct lk_lock *conflict)
{
    pthread_mutex_lock(&t->mu);
    const struct lk_lock *c = conflict_of(file_find(t, r->dev, r->ino, false), r);
    if (c && conflict)
        *conflict = *c;
    pthread_mutex_unlock(&t->mu);
    return c != NULL;
}

static struct lk_entry *entry_new(const struct lk_lock *l)
{
    struct lk_entry *e = malloc(sizeof(*e));
    if (e) {
        e->l = *l;
        e->next = NULL;
    }
    return e;
}

/* Removes r's range from the owner's locks of r's kind, splitting a lock
 * that covers it on both sides. Caller holds mu. -ENOMEM leaves f as it
 * was. */
static int carve(struct lk_table *t, struct lk_file *f, const struct lk_lock *r)
{
    /* A split needs one new entry: get it before changing anything. */
    struct lk_entry *spare = NULL;
    for (struct lk_entry *e = f->locks; e; e = e->next)
        if (e->l.kind == r->kind && same_owner(&e->l, r) &&
            e->l.start < r->start && e->l.end > r->end) {
            if (!(spare = entry_new(&e->l)))
                return -ENOMEM;
            break;
        }
    for (struct lk_entry **pp = &f->locks; *pp;) {
        struct lk_entry *e = *pp;
        struct lk_lock *l = &e->l;
        if (l->kind != r->kind || !same_owner(l, r) || !overlaps(l, r)) {
            pp = &e->next;
            continue;
        }
        if (l->start < r->start && l->end > r->end) {
            /* r is inside l: l keeps the left part, spare the right. */
            spare->l.start = r->end + 1;
            spare->next = e->next;
            e->next = spare;
            spare = NULL;
            t->count++;
            l->end = r->start - 1;
            pp = &e->next->next;
        } else if (l->start < r->start) {
            l->end = r->start - 1;
            pp = &e->next;
        } else if (l->end > r->end) {
            l->start = r->end + 1;
            pp = &e->next;
        } else {
            *pp = e->next;      /* wholly covered */
            free(e);
            t->count--;
        }
    }
    free(spare);
    return 0;
}

int lk_set(struct lk_table *t, const struct lk_lock *r)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    struct lk_file *f = file_find(t, r->dev, r->ino, r->type != F_UNLCK);
    if (!f) {
        rc = r->type == F_UNLCK ? 0 : -ENOMEM;
        goto out;
    }
    if (r->type != F_UNLCK && conflict_of(f, r)) {
        rc = -EAGAIN;
        goto out_drop;
    }
    struct lk_entry *add = NULL;
    if (r->type != F_UNLCK && !(add = entry_new(r))) {
        rc = -ENOMEM;
        goto out_drop;
    }
    rc = carve(t, f, r);
    if (rc < 0) {
        free(add);
        goto out_drop;
    }
    if (add) {
        add->next = f->locks;
        f->locks = add;
        t->count++;
    }
out_drop:
    file_drop_if_empty(t, f);
out:
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Drops the locks of f that match; caller holds mu. */
static unsigned drop_matching(struct lk_table *t, struct lk_file *f, int kind,
                              uint64_t session, bool any_owner, uint64_t owner)
{
    unsigned n = 0;
    for (struct lk_entry **pp = &f->locks; *pp;) {
        struct lk_entry *e = *pp;
        if ((kind < 0 || (int)e->l.kind == kind) && e->l.session == session &&
            (any_owner || e->l.owner == owner)) {
            *pp = e->next;
            free(e);
            n++;
        } else {
            pp = &e->next;
        }
    }
    t->count -= n;
    return n;
}

unsigned lk_release_owner(struct lk_table *t, uint64_t dev, uint64_t ino,
                          enum lk_kind kind, uint64_t session, uint64_t owner)
{
    unsigned n = 0;
    pthread_mutex_lock(&t->mu);
    struct lk_file *f = file_find(t, dev, ino, false);
    if (f) {
        n = drop_matching(t, f, (int)kind, session, false, owner);
        file_drop_if_empty(t, f);
    }
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* twalk has no argument: the session being dropped travels in these. */
static __thread struct lk_table *walk_t;
static __thread uint64_t walk_session;
static __thread unsigned walk_n;
static __thread struct lk_file **walk_empty;
static __thread size_t walk_n_empty, walk_cap_empty;

static void walk_drop(const void *node, VISIT v, int depth)
{
    (void)depth;
    if (v != postorder && v != leaf)
        return;
    struct lk_file *f = *(struct lk_file *const *)node;
    walk_n += drop_matching(walk_t, f, -1, walk_session, true, 0);
    if (!f->locks && walk_n_empty < walk_cap_empty)
        walk_empty[walk_n_empty++] = f;
}

unsigned lk_release_session(struct lk_table *t, uint64_t session)
{
    pthread_mutex_lock(&t->mu);
    /* Room to note the files left empty (their count bounds it). */
    size_t cap = t->count + 1;
    walk_empty = calloc(cap, sizeof(*walk_empty));
    walk_cap_empty = walk_empty ? cap : 0;
    walk_n_empty = 0;
    walk_t = t;
    walk_session = session;
    walk_n = 0;
    twalk(t->files, walk_drop);
    for (size_t i = 0; i < walk_n_empty; i++)
        file_drop_if_empty(t, walk_empty[i]);
    free(walk_empty);
    walk_empty = NULL;
    unsigned n = walk_n;
    pthread_mutex_unlock(&t->mu);
    return n;
}

unsigned lk_count(struct lk_table *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}
