/* query.c - selecting events by agent, path, op, session, time and id, and
 * the per-agent statistics over a selection.
 *
 * A query's SQL is put together from constant fragments, one per condition
 * present, so SQLite can use the index that fits (agent, path, op, ts);
 * every value given by a user is a bound parameter. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_i.h"

/* ---- building statements ------------------------------------------------ */

void journal_sql_add(struct journal_sql *q, const char *frag)
{
    size_t n = strlen(frag);
    if (q->len + n + 1 > sizeof(q->text)) {
        q->overflow = true;
        return;
    }
    memcpy(q->text + q->len, frag, n + 1);
    q->len += n;
}

void journal_sql_text(struct journal_sql *q, const char *s)
{
    if (q->nb == JOURNAL_SQL_BINDS) {
        q->overflow = true;
        return;
    }
    q->b[q->nb].s = s ? s : "";
    q->b[q->nb++].i = 0;
}

void journal_sql_int(struct journal_sql *q, int64_t v)
{
    if (q->nb == JOURNAL_SQL_BINDS) {
        q->overflow = true;
        return;
    }
    q->b[q->nb].s = NULL;
    q->b[q->nb++].i = v;
}

/* Starts the next condition: " WHERE " first, " AND " after. */
static void cond(struct journal_sql *q, bool *first, const char *prefix,
                 const char *frag)
{
    journal_sql_add(q, *first ? " WHERE " : " AND ");
    *first = false;
    journal_sql_add(q, "(");
    journal_sql_add(q, prefix);
    journal_sql_add(q, frag);
}

void journal_sql_where(struct journal_sql *q, const struct journal_filter *f,
                       const char *p)
{
    bool first = true;

    if (!f)
        return;
    if (f->agent) {
        cond(q, &first, p, "agent = ?)");
        journal_sql_text(q, f->agent);
    }
    if (f->path) {
        cond(q, &first, p, "path = ? OR ");
        journal_sql_add(q, p);
        journal_sql_add(q, "path2 = ?)");
        journal_sql_text(q, f->path);
        journal_sql_text(q, f->path);
    }
    if (f->path_glob) {
        cond(q, &first, p, "path GLOB ? OR ");
        journal_sql_add(q, p);
        journal_sql_add(q, "path2 GLOB ?)");
        journal_sql_text(q, f->path_glob);
        journal_sql_text(q, f->path_glob);
    }
    if (f->ops[0]) {
        cond(q, &first, p, "op IN (?");
        journal_sql_text(q, f->ops[0]);
        for (int i = 1; i < JOURNAL_FILTER_OPS && f->ops[i]; i++) {
            journal_sql_add(q, ", ?");
            journal_sql_text(q, f->ops[i]);
        }
        journal_sql_add(q, "))");
    }
    if (f->session) {
        cond(q, &first, p, "session = ?)");
        journal_sql_int(q, (int64_t)f->session);
    }
    if (f->has_since) {
        cond(q, &first, p, "ts >= ?)");
        journal_sql_int(q, f->since_us);
    }
    if (f->has_until) {
        cond(q, &first, p, "ts < ?)");
        journal_sql_int(q, f->until_us);
    }
    if (f->after_id) {
        cond(q, &first, p, "id > ?)");
        journal_sql_int(q, f->after_id);
    }
}

int journal_sql_prepare(sqlite3 *db, const struct journal_sql *q,
                        sqlite3_stmt **st)
{
    int rc;

    *st = NULL;
    if (q->overflow)
        return -EINVAL;
    if ((rc = sqlite3_prepare_v2(db, q->text, -1, st, NULL)) != SQLITE_OK)
        return journal_sql_err(rc);
    for (int i = 0; i < q->nb; i++) {
        if (q->b[i].s)
            rc = sqlite3_bind_text(*st, i + 1, q->b[i].s, -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_int64(*st, i + 1, q->b[i].i);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(*st);
            *st = NULL;
            return journal_sql_err(rc);
        }
    }
    return 0;
}

/* ---- queries ------------------------------------------------------------ */

static bool ops_fit(const struct journal_filter *f)
{
    /* ops is NULL-ended: a full array has no end. */
    return !f || !f->ops[JOURNAL_FILTER_OPS - 1];
}

int journal_query(sqlite3 *db, const struct journal_filter *f,
                  journal_row_fn fn, void *arg)
{
    struct journal_sql q = { .len = 0 };
    sqlite3_stmt *st = NULL;
    int rc;

    if (!ops_fit(f))
        return -EINVAL;
    journal_sql_add(&q, "SELECT " JOURNAL_COLS " FROM events");
    journal_sql_where(&q, f, "");
    journal_sql_add(&q, f && f->newest_first ? " ORDER BY id DESC"
                                             : " ORDER BY id");
    if (f && f->limit > 0) {
        journal_sql_add(&q, " LIMIT ?");
        journal_sql_int(&q, f->limit);
    }
    if ((rc = journal_sql_prepare(db, &q, &st)) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_row r;
        journal_row_load(st, 0, &r);
        int stop = fn(arg, &r);
        if (stop) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
    sqlite3_finalize(st);
    return rc;
}

/* ---- statistics --------------------------------------------------------- */

#define STATS_COLS \
    "coalesce(agent, ''), count(*), " \
    "total(op = 'session_start'), total(op = 'open'), " \
    "total(op IN ('create', 'mkdir', 'symlink', 'link')), " \
    "total(op IN ('unlink', 'rmdir')), " \
    "total(CASE WHEN op IN ('close', 'handle_left') THEN bytes_read END), " \
    "total(CASE WHEN op IN ('close', 'handle_left') THEN bytes_written END), " \
    "total(op = 'copy_up'), total(op = 'denied'), total(op = 'quota_hit'), " \
    "total(op = 'io_error'), total(op = 'lease_conflict'), " \
    "total(op = 'lock_wait'), min(ts), max(ts), " \
    "total(CASE WHEN op = 'events_lost' THEN size END)"

static int stats_rows(sqlite3 *db, const struct journal_filter *f,
                      struct journal_stats *out)
{
    struct journal_sql q = { .len = 0 };
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    int rc;

    journal_sql_add(&q, "SELECT " STATS_COLS " FROM events");
    journal_sql_where(&q, f, "");
    journal_sql_add(&q, " GROUP BY coalesce(agent, '') ORDER BY 1");
    if ((rc = journal_sql_prepare(db, &q, &st)) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            void *p = realloc(out->agents, ncap * sizeof(*out->agents));
            if (!p) {
                rc = -ENOMEM;
                goto out;
            }
            out->agents = p;
            cap = ncap;
        }
        struct journal_agent_stats *a = &out->agents[out->n];
        memset(a, 0, sizeof(*a));
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!(a->agent = strdup(name ? name : ""))) {
            rc = -ENOMEM;
            goto out;
        }
        out->n++;
        int64_t *v[] = {
            &a->events, &a->sessions, &a->opens, &a->creates, &a->removes,
            &a->bytes_read, &a->bytes_written, &a->copy_ups, &a->denials,
            &a->quota_hits, &a->io_errors, &a->lease_conflicts,
            &a->lock_waits, &a->first_us, &a->last_us,
        };
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
            *v[i] = (int64_t)sqlite3_column_double(st, (int)i + 1);
        a->events = sqlite3_column_int64(st, 1);
        a->first_us = sqlite3_column_int64(st, 14);
        a->last_us = sqlite3_column_int64(st, 15);
        out->events += a->events;
        out->lost += (int64_t)sqlite3_column_double(st, 16);
    }
    rc = rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
out:
    sqlite3_finalize(st);
    return rc;
}

int journal_stats(sqlite3 *db, const struct journal_filter *f,
                  struct journal_stats *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (!ops_fit(f))
        return -EINVAL;
    if ((rc = journal_sql_err(sqlite3_exec(db, "BEGIN", NULL, NULL,
                                           NULL))) < 0)
        return rc;
    if ((rc = journal_chain_read(db, &out->chain)) == 0)
        rc = stats_rows(db, f, out);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc < 0)
        journal_stats_free(out);
    return rc;
}

void journal_stats_free(struct journal_stats *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->agents[i].agent);
    free(s->agents);
    memset(s, 0, sizeof(*s));
}
