/* cowmap.c - lazy copy-up of large lower files (see cowmap.h).
 *
 * On disk, user.lanefs.cowmap is a struct map_hdr (native endian, like the
 * origin xattr) followed by the bitmap of the blocks below the limit, bit b
 * of byte b/8 for block b; user.lanefs.cowsrc is the lower path. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/log.h"

#define MAP_MAGIC   0x4d43464cu     /* "LFCM" */
#define MAP_VERSION 1
#define COPY_BUF    (1u << 20)

struct map_hdr {
    uint32_t magic;
    uint16_t version;
    uint8_t  shift;           /* log2 of the block size */
    uint8_t  pad;
    uint64_t limit;           /* bytes below come from the lower unless
                                 their block is present */
    uint64_t lower_ino;       /* the lower file the map was made from */
    uint64_t lower_size;
    int64_t  lower_mtime_sec;
    int64_t  lower_mtime_nsec;
};

struct cowmap {
    pthread_rwlock_t lock;
    int ufd, lfd;             /* owned: upper (read-write), lower */
    unsigned shift;           /* fixed */
    struct map_hdr hdr;       /* lock; hdr.limit is also read atomically */
    uint64_t nbits;           /* lock: blocks below the limit */
    uint64_t npresent;        /* lock: of those, present */
    uint8_t *bits;            /* lock: as loaded; only ever shrinks */
    size_t bits_cap;          /* bytes allocated for bits */
    uint64_t synced;          /* lock: fills that needed an fdatasync */
    uint64_t fill_after;      /* after that many, the rest is filled */
    /* the view's table (fs->cow_lock) */
    dev_t dev;
    ino_t ino;
    unsigned refs;
    struct cowmap *next;
};

static int fill_locked(struct cowmap *m);

static uint64_t blocks_of(uint64_t limit, unsigned shift)
{
    return (limit + ((uint64_t)1 << shift) - 1) >> shift;
}

unsigned cowmap_shift_for(uint64_t limit)
{
    unsigned shift = COWMAP_MIN_SHIFT;
    while (blocks_of(limit, shift) > COWMAP_MAX_BITS && shift < 62)
        shift++;
    return shift;
}

int cowmap_fault_parse(const char *s, struct cowmap_fault *f)
{
    static const char *const names[] = { "copied", "written", "marked" };
    const char *colon = strchr(s, ':');
    char *end;
    if (!colon)
        return -EINVAL;
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < 3; i++)
        if ((size_t)(colon - s) == strlen(names[i]) &&
            !strncmp(s, names[i], strlen(names[i])))
            f->stage = COWMAP_AT_COPIED + i;
    errno = 0;
    f->nth = strtoull(colon + 1, &end, 10);
    if (!f->stage || errno || *end || f->nth == 0)
        return -EINVAL;
    return 0;
}

/* The fault hook: dies like a daemon killed by `kill -9`. */
static void fault_at(struct cowmap_fault *f, enum cowmap_stage stage)
{
    if (!f || f->stage != (int)stage)
        return;
    if (__atomic_add_fetch(&f->count, 1, __ATOMIC_RELAXED) == f->nth)
        raise(SIGKILL);
}

static bool bit_test(const struct cowmap *m, uint64_t b)
{
    return m->bits[b >> 3] & (1u << (b & 7));
}

static void bit_set(struct cowmap *m, uint64_t b, bool on)
{
    if (on)
        m->bits[b >> 3] |= (uint8_t)(1u << (b & 7));
    else
        m->bits[b >> 3] &= (uint8_t)~(1u << (b & 7));
}

static uint64_t limit_of(struct cowmap *m)
{
    return __atomic_load_n(&m->hdr.limit, __ATOMIC_ACQUIRE);
}

/* Writes the map's xattr (flags: 0 or XATTR_REPLACE). */
static int map_store(int ufd, const struct map_hdr *h, const uint8_t *bits,
                     uint64_t nbits, int flags)
{
    size_t nb = (size_t)((nbits + 7) / 8), len = sizeof(*h) + nb;
    char buf[sizeof(*h) + COWMAP_MAX_BITS / 8];
    if (nb > COWMAP_MAX_BITS / 8)
        return -E2BIG;
    memcpy(buf, h, sizeof(*h));
    if (nb)
        memcpy(buf + sizeof(*h), bits, nb);
    return fsetxattr(ufd, COWMAP_XATTR, buf, len, flags) < 0 ? -errno : 0;
}

static int persist(struct cowmap *m)
{
    return map_store(m->ufd, &m->hdr, m->bits, m->nbits, XATTR_REPLACE);
}

/* The file no longer needs the lower: removes the map (the source path
 * after it; a source path alone means nothing). Caller holds the lock
 * exclusive and has made the data durable. */
static int drop_map(struct cowmap *m)
{
    if (fremovexattr(m->ufd, COWMAP_XATTR) < 0 && errno != ENODATA)
        return -errno;
    fremovexattr(m->ufd, COWMAP_XATTR_SRC);
    __atomic_store_n(&m->hdr.limit, 0, __ATOMIC_RELEASE);
    m->nbits = m->npresent = 0;
    return 0;
}

/* Lowers the limit to limit (never raises it); clears the bits of blocks
 * now past it and recounts. Caller holds the lock exclusive. */
static void set_limit(struct cowmap *m, uint64_t limit)
{
    uint64_t n = blocks_of(limit, m->shift);
    for (uint64_t b = n; b < m->nbits; b++)
        bit_set(m, b, false);
    m->npresent = 0;
    for (uint64_t b = 0; b < n; b++)
        m->npresent += bit_test(m, b);
    m->nbits = n;
    __atomic_store_n(&m->hdr.limit, limit, __ATOMIC_RELEASE);
}

static int pread_full(int fd, char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;      /* shorter than it must be */
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

static int pwrite_full(int fd, const char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Copies [from, to) of the lower into the upper at the same offsets. */
static int copy_lower(struct cowmap *m, off_t from, off_t to)
{
    char *buf = NULL;
    int rc = 0;
    while (from < to) {
        loff_t in = from, out = from;
        ssize_t n = copy_file_range(m->lfd, &in, m->ufd, &out,
                                    (size_t)(to - from), 0);
        if (n > 0) {
            from += n;
            continue;
        }
        if (n == 0) {
            rc = -EIO;        /* the lower is shorter than its map says */
            goto out;
        }
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
            errno != EOPNOTSUPP) {
            rc = -errno;
            goto out;
        }
        /* No in-kernel copy between these files: through a buffer. */
        if (!buf && !(buf = malloc(COPY_BUF))) {
            rc = -ENOMEM;
            goto out;
        }
        size_t want = (size_t)(to - from) < COPY_BUF ? (size_t)(to - from) : COPY_BUF;
        if ((rc = pread_full(m->lfd, buf, want, from)) < 0 ||
            (rc = pwrite_full(m->ufd, buf, want, from)) < 0)
            goto out;
        from += (off_t)want;
    }
out:
    free(buf);
    return rc;
}

int cowmap_init_file(int ufd, const char *src, const struct stat *lst)
{
    struct map_hdr h = {
        .magic = MAP_MAGIC,
        .version = MAP_VERSION,
        .shift = (uint8_t)cowmap_shift_for((uint64_t)lst->st_size),
        .limit = (uint64_t)lst->st_size,
        .lower_ino = (uint64_t)lst->st_ino,
        .lower_size = (uint64_t)lst->st_size,
        .lower_mtime_sec = lst->st_mtim.tv_sec,
        .lower_mtime_nsec = lst->st_mtim.tv_nsec,
    };
    uint8_t zero[COWMAP_MAX_BITS / 8] = { 0 };
    if (fsetxattr(ufd, COWMAP_XATTR_SRC, src, strlen(src), 0) < 0)
        return -errno;
    return map_store(ufd, &h, zero, blocks_of(h.limit, h.shift), 0);
}

bool cowmap_has_map(int ufd)
{
    return fgetxattr(ufd, COWMAP_XATTR, NULL, 0) >= 0;
}

int cowmap_src(int ufd, char *buf, size_t len)
{
    if (!cowmap_has_map(ufd))
        return errno == ENOTSUP ? -ENODATA : -errno;
    ssize_t n = fgetxattr(ufd, COWMAP_XATTR_SRC, buf, len ? len - 1 : 0);
    if (n < 0)
        return -errno;
    if (n == 0)
        return -EINVAL;
    buf[n] = '\0';
    return 0;
}

int cowmap_load(int ufd, int lfd, struct cowmap **out)
{
    char buf[sizeof(struct map_hdr) + COWMAP_MAX_BITS / 8];
    struct stat ust, lst;
    struct cowmap *m = NULL;
    int rc;

    ssize_t n = fgetxattr(ufd, COWMAP_XATTR, buf, sizeof(buf));
    if (n < 0) {
        int e = errno;
        return e == ENODATA || e == ENOTSUP ? -ENODATA : e == ERANGE ? -EINVAL : -e;
    }
    if ((size_t)n < sizeof(struct map_hdr))
        return -EINVAL;
    if (!(m = calloc(1, sizeof(*m))))
        return -ENOMEM;
    memcpy(&m->hdr, buf, sizeof(m->hdr));
    m->shift = m->hdr.shift;
    m->ufd = ufd;
    m->lfd = lfd;
    if (m->hdr.magic != MAP_MAGIC || m->hdr.version != MAP_VERSION ||
        m->shift < COWMAP_MIN_SHIFT || m->shift > 62) {
        rc = -EINVAL;
        goto fail;
    }
    m->nbits = blocks_of(m->hdr.limit, m->shift);
    m->bits_cap = (size_t)((m->nbits + 7) / 8);
    if (m->nbits > COWMAP_MAX_BITS || (size_t)n != sizeof(m->hdr) + m->bits_cap) {
        rc = -EINVAL;
        goto fail;
    }
    if (!(m->bits = calloc(1, m->bits_cap ? m->bits_cap : 1))) {
        rc = -ENOMEM;
        goto fail;
    }
    memcpy(m->bits, buf + sizeof(m->hdr), m->bits_cap);
    if (fstat(ufd, &ust) < 0 || fstat(lfd, &lst) < 0) {
        rc = -errno;
        goto fail;
    }
    if ((uint64_t)lst.st_ino != m->hdr.lower_ino ||
        (uint64_t)lst.st_size != m->hdr.lower_size ||
        lst.st_mtim.tv_sec != m->hdr.lower_mtime_sec ||
        lst.st_mtim.tv_nsec != m->hdr.lower_mtime_nsec ||
        m->hdr.limit > m->hdr.lower_size) {
        rc = -ESTALE;
        goto fail;
    }
    m->fill_after = COWMAP_FILL_AFTER;
    pthread_rwlock_init(&m->lock, NULL);
    /* Trailing bits past the last block mean nothing: clear them. */
    set_limit(m, m->hdr.limit);
    if ((uint64_t)ust.st_size < m->hdr.limit) {
        /* Truncated, then the daemon died before the limit was lowered:
         * lower it now, before anything can extend the file again. */
        set_limit(m, (uint64_t)ust.st_size);
        rc = m->npresent == m->nbits ? drop_map(m) : persist(m);
        if (rc < 0) {
            pthread_rwlock_destroy(&m->lock);
            goto fail;
        }
    }
    *out = m;
    return 0;
fail:
    free(m->bits);
    free(m);
    return rc;
}

void cowmap_free(struct cowmap *m)
{
    if (!m)
        return;
    close(m->ufd);
    close(m->lfd);
    pthread_rwlock_destroy(&m->lock);
    free(m->bits);
    free(m);
}

ssize_t cowmap_read(struct cowmap *m, void *buf, size_t size, off_t off)
{
    struct stat st;
    ssize_t rc = 0;
    pthread_rwlock_rdlock(&m->lock);
    if (fstat(m->ufd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (off >= st.st_size)
        goto out;
    uint64_t end = (uint64_t)off + size, limit = m->hdr.limit, B = (uint64_t)1 << m->shift;
    if (end > (uint64_t)st.st_size)
        end = (uint64_t)st.st_size;
    for (uint64_t pos = (uint64_t)off; pos < end;) {
        uint64_t seg = end;
        int fd = m->ufd;
        if (pos < limit) {
            /* A run of blocks that are all present or all absent. */
            uint64_t b = pos >> m->shift;
            bool here = bit_test(m, b);
            seg = (b + 1) * B;
            while (seg < limit && seg < end && bit_test(m, seg >> m->shift) == here)
                seg += B;
            if (seg > limit)
                seg = limit;
            if (seg > end)
                seg = end;
            fd = here ? m->ufd : m->lfd;
        }
        int r = pread_full(fd, (char *)buf + (pos - (uint64_t)off), (size_t)(seg - pos),
                           (off_t)pos);
        if (r == -EIO && fd == m->ufd) {
            /* The upper ended early: a truncate raced with this read. */
            end = pos;
            break;
        }
        if (r < 0) {
            rc = r;
            goto out;
        }
        pos = seg;
    }
    rc = (ssize_t)(end - (uint64_t)off);
out:
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

/* Whether a block of [from, to) (below the limit) is absent. Caller holds
 * the lock. */
static bool any_absent(const struct cowmap *m, uint64_t from, uint64_t to)
{
    for (uint64_t b = from >> m->shift; b <= (to - 1) >> m->shift; b++)
        if (!bit_test(m, b))
            return true;
    return false;
}

int cowmap_write_begin(struct cowmap *m, off_t off, off_t len,
                       struct cowmap_wr *w, struct cowmap_fault *fault)
{
    int rc = 0;
    memset(w, 0, sizeof(*w));
    w->off = off;
    w->len = len < 0 ? 0 : len;
    pthread_rwlock_rdlock(&m->lock);
    uint64_t limit = m->hdr.limit, end = (uint64_t)off + (uint64_t)w->len;
    if (w->len == 0 || (uint64_t)off >= limit ||
        !any_absent(m, (uint64_t)off, end < limit ? end : limit))
        return 0;             /* no block to fill: shared is enough */
    pthread_rwlock_unlock(&m->lock);
    pthread_rwlock_wrlock(&m->lock);
    w->excl = true;
    limit = m->hdr.limit;     /* again: it may have moved meanwhile */
    if ((uint64_t)off < limit && m->synced >= m->fill_after) {
        /* Written all over: one whole fill costs less than a sync per
         * block from here on. */
        if ((rc = fill_locked(m)) < 0)
            goto fail;
        limit = 0;
    }
    if ((uint64_t)off >= limit)
        return 0;
    if (end > limit)
        end = limit;
    w->b0 = (uint64_t)off >> m->shift;
    w->b1 = ((end - 1) >> m->shift) + 1;
    for (uint64_t b = w->b0; b < w->b1; b++) {
        if (bit_test(m, b))
            continue;
        uint64_t bs = b << m->shift, be = (b + 1) << m->shift;
        if (be > limit)
            be = limit;
        uint64_t ws = (uint64_t)off, we = (uint64_t)off + (uint64_t)w->len;
        /* What the write leaves of the block: before it and after it. */
        if (bs < ws && (rc = copy_lower(m, (off_t)bs, (off_t)(ws < be ? ws : be))) < 0)
            goto fail;
        if (we < be && (rc = copy_lower(m, (off_t)(we > bs ? we : bs), (off_t)be)) < 0)
            goto fail;
        if (bs < ws || we < be)
            w->copied = true;
    }
    fault_at(fault, COWMAP_AT_COPIED);
    return 0;
fail:
    w->excl = false;
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

int cowmap_write_end(struct cowmap *m, struct cowmap_wr *w, ssize_t done,
                     struct cowmap_fault *fault)
{
    uint64_t *mark = NULL, nmark = 0, limit = m->hdr.limit;
    uint64_t good = (uint64_t)w->off + (uint64_t)(done > 0 ? done : 0);
    uint64_t wend = (uint64_t)w->off + (uint64_t)w->len;
    int rc = 0;

    if (!w->excl || w->b0 == w->b1)
        goto out;
    fault_at(fault, COWMAP_AT_WRITTEN);
    if (!(mark = malloc((size_t)(w->b1 - w->b0) * sizeof(*mark)))) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint64_t b = w->b0; b < w->b1; b++) {
        uint64_t bs = b << m->shift, be = (b + 1) << m->shift;
        if (be > limit)
            be = limit;
        /* Complete unless the write fell short inside it. */
        if (!bit_test(m, b) && !(good < wend && good < be && bs < wend))
            mark[nmark++] = b;
    }
    if (nmark == 0)
        goto out;
    /* The copied lower data reaches the disk before the mark can. */
    if (w->copied && fdatasync(m->ufd) < 0) {
        rc = -errno;
        goto out;
    }
    for (uint64_t i = 0; i < nmark; i++)
        bit_set(m, mark[i], true);
    m->npresent += nmark;
    rc = m->npresent == m->nbits ? drop_map(m) : persist(m);
    if (rc < 0) {
        for (uint64_t i = 0; i < nmark; i++)
            bit_set(m, mark[i], false);
        m->npresent -= nmark;
        goto out;
    }
    if (w->copied)
        m->synced++;
    fault_at(fault, COWMAP_AT_MARKED);
out:
    free(mark);
    w->excl = false;
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

int cowmap_truncate(struct cowmap *m, off_t size)
{
    int rc = 0;
    pthread_rwlock_wrlock(&m->lock);
    /* Size first: a crash before the new limit is persisted leaves a
     * limit above the size, which the next load lowers. */
    if (ftruncate(m->ufd, size) < 0) {
        rc = -errno;
        goto out;
    }
    if ((uint64_t)size < m->hdr.limit) {
        set_limit(m, (uint64_t)size);
        rc = m->npresent == m->nbits ? drop_map(m) : persist(m);
    }
out:
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

/* cowmap_fill with m's lock held exclusive. */
static int fill_locked(struct cowmap *m)
{
    struct stat st;
    int rc = 0;
    if (m->hdr.limit == 0)
        return 0;
    if (fstat(m->ufd, &st) < 0)
        return -errno;
    for (uint64_t b = 0; b < m->nbits; b++) {
        if (bit_test(m, b))
            continue;
        uint64_t bs = b << m->shift, be = (b + 1) << m->shift;
        if (be > m->hdr.limit)
            be = m->hdr.limit;
        if ((rc = copy_lower(m, (off_t)bs, (off_t)be)) < 0)
            return rc;
    }
    if (fdatasync(m->ufd) < 0)
        return -errno;
    if ((rc = drop_map(m)) < 0)
        return rc;
    /* Filling is not a change the agent made. */
    struct timespec ts[2] = { st.st_atim, st.st_mtim };
    return futimens(m->ufd, ts) < 0 ? -errno : 0;
}

int cowmap_fill(struct cowmap *m)
{
    pthread_rwlock_wrlock(&m->lock);
    int rc = fill_locked(m);
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

void cowmap_set_fill_after(struct cowmap *m, uint64_t n)
{
    pthread_rwlock_wrlock(&m->lock);
    m->fill_after = n;
    pthread_rwlock_unlock(&m->lock);
}

uint64_t cowmap_limit(struct cowmap *m)
{
    return limit_of(m);
}

uint64_t cowmap_block_size(const struct cowmap *m)
{
    return (uint64_t)1 << m->shift;
}

bool cowmap_present(struct cowmap *m, uint64_t off)
{
    pthread_rwlock_rdlock(&m->lock);
    bool p = off >= m->hdr.limit || bit_test(m, off >> m->shift);
    pthread_rwlock_unlock(&m->lock);
    return p;
}

bool cowmap_complete(struct cowmap *m)
{
    return limit_of(m) == 0;
}

int cowmap_upper_fd(const struct cowmap *m)
{
    return m->ufd;
}

/* ---- the maps of a view ---- */

void cowmap_view_init(struct ovl_fs *fs)
{
    pthread_mutex_init(&fs->cow_lock, NULL);
    fs->cows = NULL;
    const char *f = getenv("LANEFS_FAULT_COW_KILL");
    if (f && cowmap_fault_parse(f, &fs->cow_fault) < 0)
        memset(&fs->cow_fault, 0, sizeof(fs->cow_fault));
}

void cowmap_view_destroy(struct ovl_fs *fs)
{
    /* Handles hold the references: all released by now. */
    while (fs->cows) {
        struct cowmap *m = fs->cows;
        fs->cows = m->next;
        cowmap_free(m);
    }
    pthread_mutex_destroy(&fs->cow_lock);
}

int cowmap_get(struct ovl_fs *fs, int fd, struct cowmap **out)
{
    char src[PATH_MAX], p[64];
    struct stat st;
    struct cowmap *m;
    int rc = 0, ufd = -1, lfd = -1;

    *out = NULL;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* Most files have no map: no lock for them. A map never appears on
     * an existing file, it only goes (when complete), and then the upper
     * alone is right, with or without the map object. */
    if (!S_ISREG(st.st_mode))
        return 0;
    if (fgetxattr(fd, COWMAP_XATTR, NULL, 0) < 0)
        return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
    pthread_mutex_lock(&fs->cow_lock);
    for (m = fs->cows; m; m = m->next)
        if (m->dev == st.st_dev && m->ino == st.st_ino) {
            m->refs++;
            *out = m;
            goto out;
        }
    rc = cowmap_src(fd, src, sizeof(src));
    if (rc < 0) {
        rc = rc == -ENODATA ? 0 : rc;   /* an ordinary file */
        goto out;
    }
    lfd = layer_open(fs, OVL_LOWER, src, O_RDONLY | O_NOATIME, 0);
    if (lfd == -EPERM)
        lfd = layer_open(fs, OVL_LOWER, src, O_RDONLY, 0);
    if (lfd < 0) {
        rc = lfd == -ENOENT ? -ESTALE : lfd;
        goto out;
    }
    layer_fdpath(p, sizeof(p), fd, NULL);
    if ((ufd = open(p, O_RDWR | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = cowmap_load(ufd, lfd, &m)) < 0) {
        rc = rc == -ENODATA ? 0 : rc;   /* dropped meanwhile */
        goto out;
    }
    ufd = lfd = -1;
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->refs = 1;
    m->next = fs->cows;
    fs->cows = m;
    *out = m;
out:
    pthread_mutex_unlock(&fs->cow_lock);
    if (ufd >= 0)
        close(ufd);
    if (lfd >= 0)
        close(lfd);
    if (rc < 0)
        log_say("lazy copy of %s: cannot load its map: %s",
                rc == -ESTALE ? "a file whose lower changed" : "a file",
                strerror(-rc));
    return rc;
}

struct cowmap *cowmap_ref(struct ovl_fs *fs, struct cowmap *m)
{
    pthread_mutex_lock(&fs->cow_lock);
    m->refs++;
    pthread_mutex_unlock(&fs->cow_lock);
    return m;
}

void cowmap_put(struct ovl_fs *fs, struct cowmap *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&fs->cow_lock);
    bool last = --m->refs == 0;
    if (last)
        for (struct cowmap **pp = &fs->cows; *pp; pp = &(*pp)->next)
            if (*pp == m) {
                *pp = m->next;
                break;
            }
    pthread_mutex_unlock(&fs->cow_lock);
    if (last)
        cowmap_free(m);
}

int cowmap_truncate_path(struct ovl_fs *fs, enum ovl_layer l, const char *rel,
                         off_t size)
{
    struct cowmap *m;
    int fd = layer_open(fs, l, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0)
        return fd;
    int rc = cowmap_get(fs, fd, &m);
    close(fd);
    if (rc < 0 || !m)
        return rc;
    rc = cowmap_truncate(m, size);
    cowmap_put(fs, m);
    return rc < 0 ? rc : 1;
}

/* Fills every file with a map below the directory dfd. */
static int fill_tree(struct ovl_fs *fs, int dfd)
{
    int rc = 0;
    int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dup >= 0 ? fdopendir(dup) : NULL;
    if (!d) {
        if (dup >= 0)
            close(dup);
        return -errno;
    }
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
            continue;
        int fd = openat(dfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;         /* a whiteout, a fifo: nothing to fill */
        struct stat st;
        struct cowmap *m = NULL;
        if (fstat(fd, &st) < 0)
            rc = -errno;
        else if (S_ISDIR(st.st_mode))
            rc = fill_tree(fs, fd);
        else if (S_ISREG(st.st_mode) && cowmap_has_map(fd) &&
                 (rc = cowmap_get(fs, fd, &m)) == 0 && m) {
            rc = cowmap_fill(m);
            cowmap_put(fs, m);
        }
        close(fd);
    }
    closedir(d);
    return rc;
}

int cowmap_fill_path(struct ovl_fs *fs, enum ovl_layer l, const char *rel)
{
    struct cowmap *m;
    struct stat st;
    int fd = layer_open(fs, l, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd == -ELOOP || fd == -ENOENT)
        return 0;             /* a symlink; nothing there */
    if (fd < 0)
        return fd;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        rc = fill_tree(fs, fd);
    } else if (rc == 0 && S_ISREG(st.st_mode) && (rc = cowmap_get(fs, fd, &m)) == 0 && m) {
        rc = cowmap_fill(m);
        cowmap_put(fs, m);
    }
    close(fd);
    return rc;
}
