/* prefetch.c - warming the lower's metadata ahead of a tree walk (see
 * prefetch.h for why).
 *
 * One thread per volume takes directories from a bounded stack (the latest
 * first) and looks every entry up with fstatat, which leaves the entry's
 * dentry and inode in the kernel's caches; the results are thrown away.
 * It runs at most PREFETCH_AHEAD directories ahead of the walkers: each
 * listing of a warmed directory lets it go one further.
 * Callers only push under a mutex: the device is never waited for by
 * anyone but this thread. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/ovl_i.h"
#include "fs/prefetch.h"

#define RECENT_SLOTS 4096u      /* directories remembered as warmed */
#define NS_PER_S 1000000000u

struct recent { uint64_t hash, at_ns; };
struct request { char *rel; uint64_t at_ns; };

struct prefetch {
    pthread_t thread;
    int lower_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* CLOCK_MONOTONIC */
    struct request stack[PREFETCH_QUEUE]; /* mu: ring, the newest at bottom + n - 1 */
    unsigned bottom, n;           /* mu */
    struct recent ahead[PREFETCH_AHEAD];  /* mu: warmed, not yet listed */
    unsigned n_ahead;             /* mu */
    bool stop;                    /* mu; read unlocked between entries */
    struct recent recent[RECENT_SLOTS];   /* mu: warmed or listed, by hash */
    struct prefetch_stats st;     /* mu */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t path_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;       /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h ? h : 1;                         /* 0 marks an empty slot */
}

/* True when the directory of hash h was warmed or listed within
 * PREFETCH_RECENT_S. */
static bool recent_locked(struct prefetch *p, uint64_t h, uint64_t now)
{
    const struct recent *r = &p->recent[h % RECENT_SLOTS];
    return r->hash == h && now - r->at_ns < (uint64_t)PREFETCH_RECENT_S * NS_PER_S;
}

static void remember_locked(struct prefetch *p, uint64_t h, uint64_t now)
{
    p->recent[h % RECENT_SLOTS] = (struct recent){ h, now };
}

/* True when PREFETCH_AHEAD warmed directories still wait for a walker.
 * Those nobody listed within PREFETCH_FOLLOW_S stop counting. */
static bool ahead_full_locked(struct prefetch *p, uint64_t now)
{
    for (unsigned i = 0; i < p->n_ahead;) {
        if (now - p->ahead[i].at_ns >= (uint64_t)PREFETCH_FOLLOW_S * NS_PER_S)
            p->ahead[i] = p->ahead[--p->n_ahead];
        else
            i++;
    }
    return p->n_ahead >= PREFETCH_AHEAD;
}

/* Waits until there is a request and room ahead, or stop. */
static void wait_work_locked(struct prefetch *p)
{
    while (!p->stop && (p->n == 0 || ahead_full_locked(p, now_ns()))) {
        if (p->n == 0) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        uint64_t oldest = UINT64_MAX;     /* the next to stop counting */
        for (unsigned i = 0; i < p->n_ahead; i++)
            if (p->ahead[i].at_ns < oldest)
                oldest = p->ahead[i].at_ns;
        uint64_t until = oldest + (uint64_t)PREFETCH_FOLLOW_S * NS_PER_S;
        struct timespec ts = { .tv_sec = (time_t)(until / NS_PER_S),
                               .tv_nsec = (long)(until % NS_PER_S) };
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
}

/* Looks up every entry of lower directory rel, up to PREFETCH_MAX_ENTRIES;
 * the number looked up, or -errno when the directory cannot be read. */
static long warm(struct prefetch *p, const char *rel)
{
    int rc = 0;
    DIR *d = layer_opendir(p->lower_fd, rel, true, &rc);
    if (!d)
        return rc;
    long n = 0;
    struct dirent *de;
    struct stat st;
    while (n < (long)PREFETCH_MAX_ENTRIES && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
            break;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            n++;
    }
    closedir(d);
    return n;
}

static void *prefetch_main(void *arg)
{
    struct prefetch *p = arg;
    /* Speculative work runs on idle CPU only: a lone walker leaves a core
     * idle while it waits on the daemon, which is what the thread uses;
     * when the cores are busy (many agents walking at once, whose first
     * walker warms the tree for the rest anyway) it would only take CPU
     * from them. Best effort. */
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        wait_work_locked(p);
        if (p->stop)
            break;
        struct request rq = p->stack[(p->bottom + --p->n) % PREFETCH_QUEUE];
        uint64_t h = path_hash(rq.rel), now = now_ns();
        if (recent_locked(p, h, now) ||
            now - rq.at_ns >= (uint64_t)PREFETCH_FOLLOW_S * NS_PER_S) {
            p->st.skipped++;            /* warm already, or nobody came */
            free(rq.rel);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        long got = warm(p, rq.rel);
        free(rq.rel);
        pthread_mutex_lock(&p->mu);
        now = now_ns();
        /* Remembered also when missing from the lower: asking again
         * within the window would find it missing again. */
        remember_locked(p, h, now);
        if (got < 0) {
            p->st.skipped++;
            continue;
        }
        p->st.dirs++;
        p->st.entries += (uint64_t)got;
        p->ahead[p->n_ahead++] = (struct recent){ h, now };   /* room: waited */
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int prefetch_start(struct prefetch **out, int lower_fd)
{
    struct prefetch *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->lower_fd = lower_fd;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&p->thread, NULL, prefetch_main, p);
    if (rc) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return -rc;
    }
    *out = p;
    return 0;
}

void prefetch_dir(struct prefetch *p, const char *rel)
{
    if (!p)
        return;
    uint64_t h = path_hash(rel), now = now_ns();
    pthread_mutex_lock(&p->mu);
    p->st.queued++;
    if (recent_locked(p, h, now)) {
        p->st.skipped++;
        goto out;
    }
    char *s = strdup(rel);
    if (!s)
        goto out;               /* a hint lost, nothing else */
    if (p->n == PREFETCH_QUEUE) {       /* full: the oldest goes */
        free(p->stack[p->bottom].rel);
        p->bottom = (p->bottom + 1) % PREFETCH_QUEUE;
        p->n--;
        p->st.dropped++;
    }
    p->stack[(p->bottom + p->n++) % PREFETCH_QUEUE] = (struct request){ s, now };
    pthread_cond_signal(&p->cv);
out:
    pthread_mutex_unlock(&p->mu);
}

void prefetch_listed(struct prefetch *p, const char *rel)
{
    if (!p)
        return;
    uint64_t h = path_hash(rel), now = now_ns();
    pthread_mutex_lock(&p->mu);
    remember_locked(p, h, now);
    for (unsigned i = 0; i < p->n_ahead; i++)
        if (p->ahead[i].hash == h) {
            p->ahead[i] = p->ahead[--p->n_ahead];
            p->st.followed++;
            pthread_cond_signal(&p->cv);
            break;
        }
    pthread_mutex_unlock(&p->mu);
}

void prefetch_get_stats(struct prefetch *p, struct prefetch_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

void prefetch_stop(struct prefetch *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->stop, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    for (unsigned i = 0; i < p->n; i++)
        free(p->stack[(p->bottom + i) % PREFETCH_QUEUE].rel);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
