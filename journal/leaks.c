/* leaks.c - what sessions left behind, read from the events.
 *
 * The daemon records at a session's end what it finds left: temp files
 * (temp_left, with size), open files (handle_left, with pid and process
 * name) and locks (lock_left); the lease table records leases that expired
 * instead of being released (lease_expire). Those are reported as they
 * are, except that a handle_left without a process name (its process was
 * gone by then) takes the pid and name of its handle's open. Besides, from
 * the events themselves:
 *   - an open (or a create that carries a handle) whose handle has no
 *     later close, handle_left, open or create (a reused handle) in its
 *     session: left open when the session ended or died; in a live
 *     session, open longer than the threshold;
 *   - a session_start with no session_end, in a session that is not live:
 *     the daemon died and no recovery recorded the end; and a session_end
 *     with reason "crash": recovery ended it after its daemon died;
 *   - a directory in STATE/agents that no session_start ever named (the
 *     agents table keeps the names past pruning). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_i.h"

struct leak_ctx {
    sqlite3 *db;
    const struct journal_leak_opts *o;
    journal_leak_fn fn;
    void *arg;
};

static bool is_live(const struct leak_ctx *c, uint64_t session)
{
    return c->o->live && session && c->o->live(c->o->live_arg, session);
}

static int emit(struct leak_ctx *c, const char *kind,
                const struct journal_row *r)
{
    struct journal_leak l = { .kind = kind, .agent = r->agent, .ev = r };
    return c->fn(c->arg, &l);
}

/* The agent and session conditions, on columns of alias e. */
static void scope(struct journal_sql *q, const struct journal_leak_opts *o)
{
    if (o->agent) {
        journal_sql_add(q, " AND e.agent = ?");
        journal_sql_text(q, o->agent);
    }
    if (o->session) {
        journal_sql_add(q, " AND e.session = ?");
        journal_sql_int(q, (int64_t)o->session);
    }
}

/* A handle_left event logged after its process was gone has no process
 * name (and maybe no pid): take them from the open of that handle. */
static int fill_from_open(struct leak_ctx *c, const struct journal_row *r)
{
    struct journal_row f = *r;
    sqlite3_stmt *st = NULL;
    int rc;

    if ((r->comm && *r->comm && r->pid >= 0) || r->handle < 0 || !r->session)
        return emit(c, JOURNAL_LEAK_HANDLE, r);
    rc = journal_sql_err(sqlite3_prepare_v2(c->db, "SELECT pid, comm FROM "
                                            "events WHERE session = ?1 AND "
                                            "handle = ?2 AND id < ?3 AND "
                                            "op IN ('open', 'create') "
                                            "ORDER BY id DESC LIMIT 1", -1,
                                            &st, NULL));
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, (int64_t)r->session);
    sqlite3_bind_int64(st, 2, r->handle);
    sqlite3_bind_int64(st, 3, r->id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (f.pid < 0 && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
            f.pid = sqlite3_column_int64(st, 0);
        if ((!f.comm || !*f.comm) && sqlite3_column_type(st, 1) == SQLITE_TEXT)
            f.comm = (const char *)sqlite3_column_text(st, 1);
        rc = emit(c, JOURNAL_LEAK_HANDLE, &f);
    } else {
        rc = rc == SQLITE_DONE ? emit(c, JOURNAL_LEAK_HANDLE, r)
                               : journal_sql_err(rc);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs q; per row, decide(c, row, extra column) returns the kind to report
 * or NULL. */
typedef const char *(*decide_fn)(struct leak_ctx *c,
                                 const struct journal_row *r, int64_t extra);

static int run(struct leak_ctx *c, struct journal_sql *q, decide_fn decide,
               const char *kind)
{
    sqlite3_stmt *st = NULL;
    int rc = journal_sql_prepare(c->db, q, &st);

    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_row r;
        journal_row_load(st, 0, &r);
        const char *k = decide ? decide(c, &r, sqlite3_column_int64(st,
                                                                    JOURNAL_NCOLS))
                               : kind;
        if (k && strcmp(k, JOURNAL_LEAK_HANDLE) == 0 && !decide)
            rc = fill_from_open(c, &r);
        else
            rc = k ? emit(c, k, &r) : 0;
        if (rc != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
    sqlite3_finalize(st);
    return rc;
}

/* Every event of one op (with detail, when not NULL), as a leak of kind. */
static int by_op(struct leak_ctx *c, const char *op, const char *detail,
                 const char *kind)
{
    struct journal_sql q = { .len = 0 };

    journal_sql_add(&q, "SELECT " JOURNAL_COLS " FROM events e "
                    "WHERE e.op = ?");
    journal_sql_text(&q, op);
    if (detail) {
        journal_sql_add(&q, " AND e.detail = ?");
        journal_sql_text(&q, detail);
    }
    scope(&q, c->o);
    journal_sql_add(&q, " ORDER BY e.id");
    return run(c, &q, NULL, kind);
}

/* extra: whether the open's session has ended. */
static const char *decide_open(struct leak_ctx *c, const struct journal_row *r,
                               int64_t ended)
{
    if (ended || !is_live(c, r->session))
        return JOURNAL_LEAK_HANDLE;
    if (c->o->now_us - r->ts_us > c->o->open_max_us)
        return JOURNAL_LEAK_OPEN;
    return NULL;
}

/* Opens never closed; wanted: JOURNAL_LEAK_HANDLE or JOURNAL_LEAK_OPEN. */
static int open_handles(struct leak_ctx *c, const char *wanted)
{
    struct journal_sql q = { .len = 0 };
    sqlite3_stmt *st = NULL;
    int rc;

    journal_sql_add(&q, "SELECT " JOURNAL_COLS ", EXISTS (SELECT 1 FROM "
                    "events s WHERE s.op = 'session_end' AND "
                    "s.session = e.session) FROM events e "
                    "WHERE e.op IN ('open', 'create') AND "
                    "e.handle IS NOT NULL");
    scope(&q, c->o);
    journal_sql_add(&q, " AND NOT EXISTS (SELECT 1 FROM events n WHERE "
                    "n.session = e.session AND n.handle = e.handle AND "
                    "n.handle IS NOT NULL AND n.id > e.id AND "
                    "n.op IN ('close', 'handle_left', 'open', 'create')) "
                    "ORDER BY e.id");
    if ((rc = journal_sql_prepare(c->db, &q, &st)) < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_row r;
        journal_row_load(st, 0, &r);
        const char *k = decide_open(c, &r, sqlite3_column_int64(st,
                                                                JOURNAL_NCOLS));
        if (k && strcmp(k, wanted) == 0 && (rc = emit(c, k, &r)) != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    rc = rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
    sqlite3_finalize(st);
    return rc;
}

static const char *decide_session(struct leak_ctx *c,
                                   const struct journal_row *r, int64_t extra)
{
    (void)extra;
    return is_live(c, r->session) ? NULL : JOURNAL_LEAK_SESSION;
}

static int unended_sessions(struct leak_ctx *c)
{
    struct journal_sql q = { .len = 0 };

    journal_sql_add(&q, "SELECT " JOURNAL_COLS ", 0 FROM events e "
                    "WHERE e.op = 'session_start'");
    scope(&q, c->o);
    journal_sql_add(&q, " AND NOT EXISTS (SELECT 1 FROM events s WHERE "
                    "s.op = 'session_end' AND s.session = e.session) "
                    "ORDER BY e.id");
    return run(c, &q, decide_session, NULL);
}

/* Whether any session_start named agent. */
static int agent_known(sqlite3_stmt *st, const char *agent, bool *known)
{
    sqlite3_bind_text(st, 1, agent, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *known = rc == SQLITE_ROW;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : journal_sql_err(rc);
}

static int unused_agents(struct leak_ctx *c)
{
    struct dirent **names = NULL;
    sqlite3_stmt *st = NULL;
    char *dir = NULL;
    int n = 0, rc;

    if (!c->o->state_dir || c->o->session)
        return 0;
    if (asprintf(&dir, "%s/agents", c->o->state_dir) < 0)
        return -ENOMEM;
    rc = journal_sql_err(sqlite3_prepare_v2(c->db, "SELECT 1 FROM agents "
                                            "WHERE name = ?1 UNION ALL "
                                            "SELECT 1 FROM events WHERE "
                                            "op = 'session_start' AND "
                                            "agent = ?1 LIMIT 1", -1, &st,
                                            NULL));
    if (rc < 0)
        goto out;
    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        rc = errno == ENOENT ? 0 : -errno;
        n = 0;
        goto out;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        const char *name = names[i]->d_name;
        bool known = true;
        if (name[0] == '.' ||
            (names[i]->d_type != DT_DIR && names[i]->d_type != DT_UNKNOWN) ||
            (c->o->agent && strcmp(c->o->agent, name) != 0))
            continue;
        if ((rc = agent_known(st, name, &known)) < 0 || known)
            continue;
        struct journal_leak l = { .kind = JOURNAL_LEAK_AGENT, .agent = name };
        rc = c->fn(c->arg, &l);
    }
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    sqlite3_finalize(st);
    free(dir);
    return rc;
}

int journal_leaks(sqlite3 *db, const struct journal_leak_opts *o,
                  journal_leak_fn fn, void *arg)
{
    struct leak_ctx c = { .db = db, .o = o, .fn = fn, .arg = arg };
    int rc;

    if ((rc = journal_sql_err(sqlite3_exec(db, "BEGIN", NULL, NULL,
                                           NULL))) < 0)
        return rc;
    if ((rc = by_op(&c, "temp_left", NULL, JOURNAL_LEAK_TEMP)) == 0 &&
        (rc = by_op(&c, "handle_left", NULL, JOURNAL_LEAK_HANDLE)) == 0 &&
        (rc = open_handles(&c, JOURNAL_LEAK_HANDLE)) == 0 &&
        (rc = open_handles(&c, JOURNAL_LEAK_OPEN)) == 0 &&
        (rc = by_op(&c, "lease_expire", NULL, JOURNAL_LEAK_LEASE)) == 0 &&
        (rc = by_op(&c, "lock_left", NULL, JOURNAL_LEAK_LOCK)) == 0 &&
        (rc = unended_sessions(&c)) == 0 &&
        (rc = by_op(&c, "session_end", "crash", JOURNAL_LEAK_CRASH)) == 0)
        rc = unused_agents(&c);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}
