/* writer.c - the journal's queue and its writer thread.
 *
 * journal_log copies an event into one allocation and appends it to a
 * bounded ring under a mutex that is only ever held for a few pointer
 * moves; the writer thread never holds it while it talks to SQLite. The
 * writer sleeps until the ring is non-empty, then gives the batch up to
 * batch_ms (or until batch_events are waiting), takes everything queued and
 * writes it in one transaction: each row with the next id and its chained
 * hash, the chain's head updated in the same transaction. When events were
 * dropped because the ring was full, an events_lost row follows the batch
 * that was queued before them. After each batch, when the used pages pass
 * the size cap, the oldest rows are deleted and the chain's anchor moves to
 * the last of them. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal_i.h"

/* Pruning deletes down to this share of the cap, so it runs now and then
 * rather than after every batch. */
#define PRUNE_TARGET_PCT 75
/* The WAL is truncated to this after a checkpoint. */
#define WAL_SIZE_LIMIT (4LL << 20)

struct jitem {
    int64_t ts_us;
    struct journal_event ev;    /* strings point into data */
    char data[];
};

struct journal {
    pthread_mutex_t mu;
    pthread_cond_t wake;        /* the writer waits on it */
    pthread_cond_t done;        /* journal_flush waits on it */
    struct jitem **ring;        /* mu: qlen items from qhead */
    size_t qcap, qhead, qlen;   /* mu */
    uint64_t lost;              /* mu: dropped, not yet written */
    uint64_t seq_in, seq_done;  /* mu: events queued / written or lost */
    bool stop, paused, hurry;   /* mu */

    /* writer thread only (and journal_open/journal_close around it) */
    sqlite3 *db;
    sqlite3_stmt *ins, *agent_up, *head_up, *pages, *free_pages,
        *page_size, *anchor_row, *del, *anchor_up;
    EVP_MD_CTX *md;
    struct journal_buf enc;
    struct jitem **batch;       /* qcap slots */
    int64_t next_id;
    uint8_t prev[JOURNAL_HASH_LEN];
    int64_t anchor_id;
    uint64_t max_bytes;
    unsigned batch_ms, batch_events;
    bool failing;               /* the last transaction failed */
    pthread_t thread;
};

int64_t journal_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- journal_log -------------------------------------------------------- */

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *str_put(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*at, s, n);
    *at += n;
    return d;
}

static struct jitem *item_new(const struct journal_event *ev)
{
    size_t n = str_size(ev->op) + str_size(ev->agent) + str_size(ev->path) +
               str_size(ev->path2) + str_size(ev->comm) +
               str_size(ev->detail);
    struct jitem *it = malloc(sizeof(*it) + n);
    if (!it)
        return NULL;
    char *at = it->data;
    it->ev = *ev;
    it->ev.op = str_put(&at, ev->op);
    it->ev.agent = str_put(&at, ev->agent);
    it->ev.path = str_put(&at, ev->path);
    it->ev.path2 = str_put(&at, ev->path2);
    it->ev.comm = str_put(&at, ev->comm);
    it->ev.detail = str_put(&at, ev->detail);
    return it;
}

void journal_log(struct journal *j, const struct journal_event *ev)
{
    struct jitem *it = NULL;

    if (!j)
        return;
    if (ev && ev->op)
        it = item_new(ev);
    pthread_mutex_lock(&j->mu);
    if (!it || j->qlen == j->qcap) {
        j->lost++;
        pthread_mutex_unlock(&j->mu);
        free(it);
        return;
    }
    /* Taken under the lock, so times never go back along the ids (unless
     * the clock itself is set back). */
    it->ts_us = journal_now_us();
    j->ring[(j->qhead + j->qlen) % j->qcap] = it;
    j->qlen++;
    j->seq_in++;
    if (j->qlen == 1 || j->qlen == j->batch_events)
        pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
}

/* ---- writing a batch ---------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_int(sqlite3_stmt *st, int i, bool present, int64_t v)
{
    if (present)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
}

static void row_from_event(struct journal_row *r, int64_t id, int64_t ts_us,
                           const struct journal_event *ev)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->ts_us = ts_us;
    r->op = ev->op;
    r->agent = ev->agent;
    r->session = ev->session;
    r->path = ev->path;
    r->path2 = ev->path2;
    r->pid = ev->pid < 0 ? -1 : ev->pid;
    r->comm = ev->comm;
    r->handle = ev->handle < 0 ? -1 : ev->handle;
    r->bytes_read = ev->bytes_read < 0 ? -1 : ev->bytes_read;
    r->bytes_written = ev->bytes_written < 0 ? -1 : ev->bytes_written;
    r->size = ev->size < 0 ? -1 : ev->size;
    r->err = ev->err;
    r->detail = ev->detail;
}

/* Inserts r (its hash computed from prev, left in r->hash). */
static int insert_row(struct journal *j, const uint8_t *prev,
                      struct journal_row *r)
{
    sqlite3_stmt *st = j->ins;
    int rc = journal_row_hash(j->md, &j->enc, prev, r, r->hash);

    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_int64(st, 2, r->ts_us);
    bind_text(st, 3, r->op);
    bind_text(st, 4, r->agent);
    bind_int(st, 5, r->session != 0, (int64_t)r->session);
    bind_text(st, 6, r->path);
    bind_text(st, 7, r->path2);
    bind_int(st, 8, r->pid >= 0, r->pid);
    bind_text(st, 9, r->comm);
    bind_int(st, 10, r->handle >= 0, r->handle);
    bind_int(st, 11, r->bytes_read >= 0, r->bytes_read);
    bind_int(st, 12, r->bytes_written >= 0, r->bytes_written);
    bind_int(st, 13, r->size >= 0, r->size);
    bind_int(st, 14, r->err != 0, r->err);
    bind_text(st, 15, r->detail);
    sqlite3_bind_blob(st, 16, r->hash, JOURNAL_HASH_LEN, SQLITE_STATIC);
    rc = step_done(st);
    sqlite3_clear_bindings(st);
    if (rc < 0 || strcmp(r->op, "session_start") != 0 || !r->agent)
        return rc;
    sqlite3_bind_text(j->agent_up, 1, r->agent, -1, SQLITE_STATIC);
    sqlite3_bind_int64(j->agent_up, 2, r->ts_us);
    return step_done(j->agent_up);
}

/* Opens a write transaction; 0 or -errno. */
static int tx_begin(struct journal *j)
{
    return journal_sql_err(sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
}

/* Ends the transaction tx_begin opened: commits when rc is 0, else (or when
 * the commit fails) rolls back. Returns 0 or the -errno. */
static int tx_end(struct journal *j, int rc)
{
    if (rc == 0)
        rc = journal_sql_err(sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL));
    if (rc < 0)
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Writes n items, then an events_lost row when lost > 0, in one
 * transaction. On success the chain's next id and hash move on. */
static int write_batch(struct journal *j, struct jitem **items, size_t n,
                       uint64_t lost)
{
    uint8_t prev[JOURNAL_HASH_LEN];
    struct journal_row r;
    int64_t id = j->next_id;
    char detail[96];
    int rc;

    if ((rc = tx_begin(j)) < 0)
        return rc;
    memcpy(prev, j->prev, sizeof(prev));
    for (size_t i = 0; i < n; i++) {
        row_from_event(&r, id++, items[i]->ts_us, &items[i]->ev);
        if ((rc = insert_row(j, prev, &r)) < 0)
            goto out;
        memcpy(prev, r.hash, sizeof(prev));
    }
    if (lost) {
        struct journal_event ev = {
            .op = "events_lost", .pid = -1, .handle = -1, .bytes_read = -1,
            .bytes_written = -1, .size = (int64_t)lost, .detail = detail,
        };
        snprintf(detail, sizeof(detail), "%llu events dropped: the journal "
                 "queue was full", (unsigned long long)lost);
        row_from_event(&r, id++, journal_now_us(), &ev);
        if ((rc = insert_row(j, prev, &r)) < 0)
            goto out;
        memcpy(prev, r.hash, sizeof(prev));
    }
    sqlite3_bind_int64(j->head_up, 1, id - 1);
    sqlite3_bind_blob(j->head_up, 2, prev, JOURNAL_HASH_LEN, SQLITE_STATIC);
    rc = step_done(j->head_up);
out:
    if ((rc = tx_end(j, rc)) < 0)
        return rc;
    j->next_id = id;
    memcpy(j->prev, prev, sizeof(prev));
    return 0;
}

/* ---- pruning ------------------------------------------------------------ */

static int64_t pragma_int(sqlite3_stmt *st)
{
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

/* Bytes the database's used pages take. */
static int64_t used_bytes(struct journal *j)
{
    int64_t pages = pragma_int(j->pages), free_pages = pragma_int(j->free_pages);
    int64_t psize = pragma_int(j->page_size);
    if (pages < 0 || free_pages < 0 || psize <= 0)
        return -1;
    return (pages - free_pages) * psize;
}

/* Deletes the oldest rows, up to and including id upto, and moves the
 * anchor to the last of them, in one transaction. */
static int prune_upto(struct journal *j, int64_t upto)
{
    uint8_t hash[JOURNAL_HASH_LEN];
    int64_t last = -1;
    int rc = tx_begin(j);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(j->anchor_row, 1, upto);
    rc = sqlite3_step(j->anchor_row);
    if (rc == SQLITE_ROW &&
        sqlite3_column_bytes(j->anchor_row, 1) == JOURNAL_HASH_LEN) {
        last = sqlite3_column_int64(j->anchor_row, 0);
        memcpy(hash, sqlite3_column_blob(j->anchor_row, 1), sizeof(hash));
        rc = 0;
    } else {
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? -ENOENT
                                                   : journal_sql_err(rc);
    }
    sqlite3_reset(j->anchor_row);
    if (rc < 0)
        goto out;
    sqlite3_bind_int64(j->del, 1, last);
    if ((rc = step_done(j->del)) < 0)
        goto out;
    sqlite3_bind_int64(j->anchor_up, 1, last);
    sqlite3_bind_blob(j->anchor_up, 2, hash, JOURNAL_HASH_LEN, SQLITE_STATIC);
    rc = step_done(j->anchor_up);
out:
    if ((rc = tx_end(j, rc)) < 0)
        return rc;
    j->anchor_id = last;
    return 0;
}

/* Keeps the used pages under the cap: deletes the share of the rows that
 * brings them to PRUNE_TARGET_PCT of it (ids are dense, so rows are
 * counted by ids). */
static void prune(struct journal *j)
{
    int64_t used = used_bytes(j), rows = j->next_id - 1 - j->anchor_id;
    if (!j->max_bytes || used < 0 || (uint64_t)used <= j->max_bytes ||
        rows <= 0)
        return;
    double target = (double)j->max_bytes * PRUNE_TARGET_PCT / 100.0;
    int64_t n = (int64_t)((double)rows * ((double)used - target) /
                          (double)used) + 1;
    if (n > rows)
        n = rows;
    int rc = prune_upto(j, j->anchor_id + n);
    if (rc < 0)
        fprintf(stderr, "lanefsd: journal: pruning failed: %s\n",
                strerror(-rc));
}

/* ---- the writer thread -------------------------------------------------- */

static void deadline_after(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *writer_main(void *arg)
{
    struct journal *j = arg;
    struct timespec deadline;

    pthread_mutex_lock(&j->mu);
    for (;;) {
        while (!j->stop && (j->paused || (j->qlen == 0 && j->lost == 0)))
            pthread_cond_wait(&j->wake, &j->mu);
        if (j->stop && j->qlen == 0 && j->lost == 0)
            break;
        deadline_after(&deadline, j->batch_ms);
        while (!j->stop && !j->paused && !j->hurry &&
               j->qlen < j->batch_events)
            if (pthread_cond_timedwait(&j->wake, &j->mu, &deadline) ==
                ETIMEDOUT)
                break;
        if (j->paused && !j->stop)
            continue;
        size_t n = j->qlen;
        for (size_t i = 0; i < n; i++)
            j->batch[i] = j->ring[(j->qhead + i) % j->qcap];
        j->qhead = (j->qhead + n) % j->qcap;
        j->qlen = 0;
        uint64_t lost = j->lost;
        j->lost = 0;
        j->hurry = false;
        pthread_mutex_unlock(&j->mu);

        int rc = write_batch(j, j->batch, n, lost);
        if (rc < 0 && !j->failing)
            fprintf(stderr, "lanefsd: journal: writing %zu events failed: "
                    "%s (counted as lost)\n", n, strerror(-rc));
        j->failing = rc < 0;
        if (rc == 0)
            prune(j);
        for (size_t i = 0; i < n; i++)
            free(j->batch[i]);

        pthread_mutex_lock(&j->mu);
        if (rc < 0)
            j->lost += n + lost;
        j->seq_done += n;
        pthread_cond_broadcast(&j->done);
        if (rc < 0 && j->stop)
            break;      /* a last attempt failed: give up, they are counted */
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- open and close ----------------------------------------------------- */

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    return journal_sql_err(sqlite3_prepare_v3(db, sql, -1,
                                              SQLITE_PREPARE_PERSISTENT, st,
                                              NULL));
}

static int prepare_all(struct journal *j)
{
    int rc;
    if ((rc = prepare(j->db, "INSERT INTO events (" JOURNAL_COLS ") VALUES "
                      "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", &j->ins)) < 0 ||
        (rc = prepare(j->db, "INSERT INTO agents (name, first_ts, last_ts, "
                      "sessions) VALUES (?1, ?2, ?2, 1) ON CONFLICT (name) "
                      "DO UPDATE SET last_ts = excluded.last_ts, "
                      "sessions = sessions + 1", &j->agent_up)) < 0 ||
        (rc = prepare(j->db, "UPDATE chain SET head_id = ?1, head_hash = ?2 "
                      "WHERE one = 1", &j->head_up)) < 0 ||
        (rc = prepare(j->db, "PRAGMA page_count", &j->pages)) < 0 ||
        (rc = prepare(j->db, "PRAGMA freelist_count", &j->free_pages)) < 0 ||
        (rc = prepare(j->db, "PRAGMA page_size", &j->page_size)) < 0 ||
        (rc = prepare(j->db, "SELECT id, hash FROM events WHERE id <= ?1 "
                      "ORDER BY id DESC LIMIT 1", &j->anchor_row)) < 0 ||
        (rc = prepare(j->db, "DELETE FROM events WHERE id <= ?1",
                      &j->del)) < 0 ||
        (rc = prepare(j->db, "UPDATE chain SET anchor_id = ?1, "
                      "anchor_hash = ?2 WHERE one = 1", &j->anchor_up)) < 0)
        return rc;
    return 0;
}

/* WAL, synchronous=NORMAL, a bounded WAL file. */
static int configure(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    char sql[64];
    int rc;

    sqlite3_busy_timeout(db, 5000);
    if ((rc = prepare(db, "PRAGMA journal_mode = WAL", &st)) < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode && strcmp(mode, "wal") == 0 ? 0 : -EIO;
    } else {
        rc = journal_sql_err(rc);
    }
    sqlite3_finalize(st);
    if (rc < 0)
        return rc;
    snprintf(sql, sizeof(sql), "PRAGMA journal_size_limit = %lld",
             WAL_SIZE_LIMIT);
    if ((rc = journal_sql_err(sqlite3_exec(db, "PRAGMA synchronous = NORMAL",
                                           NULL, NULL, NULL))) < 0 ||
        (rc = journal_sql_err(sqlite3_exec(db, sql, NULL, NULL, NULL))) < 0)
        return rc;
    return 0;
}

/* Where the next row goes: after the head, or after any row past it (a row
 * inserted behind the daemon's back, which verification will name). */
static int load_chain(struct journal *j)
{
    struct journal_chain c;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = journal_chain_read(j->db, &c)) < 0)
        return rc;
    j->next_id = c.head_id + 1;
    j->anchor_id = c.anchor_id;
    memcpy(j->prev, c.head_hash, sizeof(j->prev));
    if ((rc = prepare(j->db, "SELECT max(id) FROM events", &st)) < 0)
        return rc;
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_int64(st, 0) >= j->next_id)
        j->next_id = sqlite3_column_int64(st, 0) + 1;
    if (j->next_id <= j->anchor_id)
        j->next_id = j->anchor_id + 1;
    sqlite3_finalize(st);
    return 0;
}

static void journal_free(struct journal *j)
{
    sqlite3_stmt *sts[] = {
        j->ins, j->agent_up, j->head_up, j->pages, j->free_pages,
        j->page_size, j->anchor_row, j->del, j->anchor_up,
    };
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
        sqlite3_finalize(sts[i]);
    sqlite3_close(j->db);
    for (size_t i = 0; i < j->qlen; i++)
        free(j->ring[(j->qhead + i) % j->qcap]);
    free(j->ring);
    free(j->batch);
    EVP_MD_CTX_free(j->md);
    journal_buf_free(&j->enc);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->done);
    pthread_mutex_destroy(&j->mu);
    free(j);
}

int journal_open_opts(const char *state_dir, uint64_t max_bytes,
                      const struct journal_opts *o, struct journal **out)
{
    struct journal_opts d = { 0 };
    pthread_condattr_t ca;
    struct journal *j;
    char *path = NULL;
    int rc;

    *out = NULL;
    if (o)
        d = *o;
    if (!d.queue_max)
        d.queue_max = JOURNAL_QUEUE_MAX;
    if (!d.batch_ms)
        d.batch_ms = JOURNAL_BATCH_MS;
    if (!d.batch_events)
        d.batch_events = JOURNAL_BATCH_EVENTS;
    if (!(j = calloc(1, sizeof(*j))))
        return -ENOMEM;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&j->done, NULL);
    j->qcap = d.queue_max;
    j->batch_ms = d.batch_ms;
    j->batch_events = d.batch_events;
    j->max_bytes = max_bytes;
    j->ring = calloc(j->qcap, sizeof(*j->ring));
    j->batch = calloc(j->qcap, sizeof(*j->batch));
    j->md = EVP_MD_CTX_new();
    if (!j->ring || !j->batch || !j->md) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = journal_db_path(state_dir, &path)) < 0)
        goto out;
    rc = sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE |
                         SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if ((rc = journal_sql_err(rc)) < 0 ||
        (rc = configure(j->db)) < 0 ||
        (rc = journal_schema_migrate(j->db)) < 0 ||
        (rc = load_chain(j)) < 0 ||
        (rc = prepare_all(j)) < 0)
        goto out;
    if ((rc = -pthread_create(&j->thread, NULL, writer_main, j)) < 0)
        goto out;
    *out = j;
    j = NULL;
out:
    if (j)
        journal_free(j);
    free(path);
    return rc;
}

int journal_open(const char *state_dir, uint64_t max_bytes,
                 struct journal **out)
{
    return journal_open_opts(state_dir, max_bytes, NULL, out);
}

void journal_pause(struct journal *j, bool paused)
{
    pthread_mutex_lock(&j->mu);
    j->paused = paused;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
}

void journal_flush(struct journal *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    uint64_t want = j->seq_in;
    j->hurry = true;
    pthread_cond_signal(&j->wake);
    while (j->seq_done < want)
        pthread_cond_wait(&j->done, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    journal_free(j);
}
