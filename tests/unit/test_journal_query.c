/* Unit tests of reading the journal: time parsing and formatting, queries
 * by agent, path glob, op, session, time and id, a path's timeline,
 * statistics, leaks, and the JSON, CSV and text formats of an event. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "journal/journal.h"
#include "journal/journal_db.h"

/* Defined in test_journal.c. */
char *tj_dir(void);
void tj_rm(char *dir);
struct journal_event tj_ev(const char *op, const char *agent, uint64_t session,
                           const char *path);
sqlite3 *tj_rw(const char *dir);
void tj_exec(sqlite3 *db, const char *sql);
long long tj_int(sqlite3 *db, const char *sql);

/* ---- time --------------------------------------------------------------- */

static int64_t parsed(const char *s, int64_t now)
{
    int64_t v = 0;
    int rc = journal_time_parse(s, now, &v);
    cr_assert_eq(rc, 0, "journal_time_parse(\"%s\") = %d", s, rc);
    return v;
}

Test(journal_time, iso)
{
    const int64_t s = 1000000;
    cr_assert_eq(parsed("2024-05-01T12:00:00Z", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01 12:00:00Z", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01T12:00Z", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01T12:00:00.5Z", 0), 1714564800 * s + 500000);
    cr_assert_eq(parsed("2024-05-01T12:00:00.123456Z", 0),
                 1714564800 * s + 123456);
    cr_assert_eq(parsed("2024-05-01T14:00:00+02:00", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01T14:00:00+0200", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01T07:00:00-05", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01Z", 0), 1714521600 * s);
    cr_assert_eq(parsed("2024-02-29T00:00:00Z", 0), 1709164800 * s);
    cr_assert_eq(parsed("1970-01-01T00:00:00Z", 0), 0);

    /* Without an offset: local time. */
    setenv("TZ", "UTC", 1);
    tzset();
    cr_assert_eq(parsed("2024-05-01T12:00:00", 0), 1714564800 * s);
    cr_assert_eq(parsed("2024-05-01", 0), 1714521600 * s);
}

Test(journal_time, relative_and_others)
{
    const int64_t now = 1714564800LL * 1000000;
    cr_assert_eq(parsed("10m", now), now - 600LL * 1000000);
    cr_assert_eq(parsed("2h", now), now - 7200LL * 1000000);
    cr_assert_eq(parsed("1d", now), now - 86400LL * 1000000);
    cr_assert_eq(parsed("1w", now), now - 7 * 86400LL * 1000000);
    cr_assert_eq(parsed("30s", now), now - 30LL * 1000000);
    cr_assert_eq(parsed("0s", now), now);
    cr_assert_eq(parsed("now", now), now);
    cr_assert_eq(parsed("@1714564800", now), now);
}

Test(journal_time, refused)
{
    const char *bad[] = {
        "", "10", "10x", "m", "-5m", "10 m", "10mm", "1.5h", "2024-13-01",
        "2024-02-30", "2023-02-29", "2024-05-01T25:00", "2024-05-01T12:60",
        "2024-05-01T12", "2024-05-01T12:00:00+2", "2024-05-01T12:00:00Q",
        "2024-5-1", "24-05-01", "2024-05-01T12:00:00.", "@", "@x", "@-1",
        "yesterday", "2024-05-01TZ",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = 77;
        int rc = journal_time_parse(bad[i], 0, &v);
        cr_assert_lt(rc, 0, "\"%s\" was accepted", bad[i]);
        cr_assert_eq(v, 77);
    }
    int64_t v;
    cr_assert_eq(journal_time_parse("99999999999999999999w", 0, &v), -ERANGE);
    cr_assert_eq(journal_time_parse("9999999999999999w", 0, &v), -ERANGE);
}

Test(journal_time, format_round_trip)
{
    char buf[40];
    journal_time_format(buf, sizeof(buf), 1714564800LL * 1000000 + 42);
    cr_assert_str_eq(buf, "2024-05-01T12:00:00.000042Z");
    cr_assert_eq(parsed(buf, 0), 1714564800LL * 1000000 + 42);
    journal_time_format(buf, sizeof(buf), -1);
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999999Z");
}

/* ---- a journal to query ------------------------------------------------- */

struct fixture {
    char *dir;
    sqlite3 *db;
};

static void log_ev(struct journal *j, const char *op, const char *agent,
                   uint64_t session, const char *path, int64_t handle)
{
    struct journal_event ev = tj_ev(op, agent, session, path);
    ev.handle = handle;
    ev.pid = handle >= 0 ? 1000 + handle : -1;
    ev.comm = handle >= 0 ? "worker" : NULL;
    if (strcmp(op, "close") == 0) {
        ev.bytes_read = 10;
        ev.bytes_written = 3;
    }
    journal_log(j, &ev);
}

/* Events 1..12, with ts set to id * 1 s after 2024-05-01T00:00:00Z. */
static struct fixture fixture(void)
{
    struct fixture f = { .dir = tj_dir() };
    struct journal *j = NULL;
    cr_assert_eq(journal_open(f.dir, 0, &j), 0);
    log_ev(j, "session_start", "alpha", 1, NULL, -1);     /* 1 */
    log_ev(j, "session_start", "beta", 2, NULL, -1);      /* 2 */
    log_ev(j, "create", "alpha", 1, "/tmp/a.txt", -1);    /* 3 */
    log_ev(j, "open", "alpha", 1, "/tmp/a.txt", 1);       /* 4 */
    log_ev(j, "close", "alpha", 1, "/tmp/a.txt", 1);      /* 5 */
    log_ev(j, "create", "beta", 2, "/tmp/a.txt", -1);     /* 6 */
    struct journal_event rn = tj_ev("rename", "beta", 2, "/tmp/a.txt");
    rn.path2 = "/out/b.txt";
    journal_log(j, &rn);                                  /* 7 */
    log_ev(j, "open", "beta", 2, "/out/b.txt", 1);        /* 8 */
    log_ev(j, "close", "beta", 2, "/out/b.txt", 1);       /* 9 */
    log_ev(j, "copy_up", "alpha", 1, "/docs/r.md", -1);   /* 10 */
    log_ev(j, "session_end", "alpha", 1, NULL, -1);       /* 11 */
    log_ev(j, "session_end", "beta", 2, NULL, -1);        /* 12 */
    journal_close(j);
    sqlite3 *rw = tj_rw(f.dir);
    tj_exec(rw, "UPDATE events SET ts = (1714521600 + id) * 1000000");
    sqlite3_close(rw);
    cr_assert_eq(journal_db_open(f.dir, &f.db), 0);
    return f;
}

static void fixture_done(struct fixture *f)
{
    journal_db_close(f->db);
    tj_rm(f->dir);
}

struct ids {
    int64_t id[64];
    int n;
};

static int collect(void *arg, const struct journal_row *r)
{
    struct ids *ids = arg;
    if (ids->n < 64)
        ids->id[ids->n++] = r->id;
    return 0;
}

/* The ids f selects, as "1 2 3". */
static char *ids_of(sqlite3 *db, const struct journal_filter *f)
{
    static char buf[512];
    struct ids ids = { .n = 0 };
    size_t len = 0;
    cr_assert_eq(journal_query(db, f, collect, &ids), 0);
    buf[0] = '\0';
    for (int i = 0; i < ids.n; i++)
        len += snprintf(buf + len, sizeof(buf) - len, "%s%lld",
                        i ? " " : "", (long long)ids.id[i]);
    return buf;
}

Test(journal_query, filters)
{
    struct fixture fx = fixture();
    struct journal_filter f = { .agent = NULL };

    cr_assert_str_eq(ids_of(fx.db, &f), "1 2 3 4 5 6 7 8 9 10 11 12");
    f = (struct journal_filter){ .agent = "beta" };
    cr_assert_str_eq(ids_of(fx.db, &f), "2 6 7 8 9 12");
    f = (struct journal_filter){ .agent = "gamma" };
    cr_assert_str_eq(ids_of(fx.db, &f), "");
    f = (struct journal_filter){ .path_glob = "/tmp/*" };
    cr_assert_str_eq(ids_of(fx.db, &f), "3 4 5 6 7");
    f = (struct journal_filter){ .path_glob = "*.md" };
    cr_assert_str_eq(ids_of(fx.db, &f), "10");
    f = (struct journal_filter){ .path_glob = "/out/?.txt" };
    cr_assert_str_eq(ids_of(fx.db, &f), "7 8 9");
    f = (struct journal_filter){ .ops = { "open", "close" } };
    cr_assert_str_eq(ids_of(fx.db, &f), "4 5 8 9");
    f = (struct journal_filter){ .ops = { "create" }, .agent = "alpha" };
    cr_assert_str_eq(ids_of(fx.db, &f), "3");
    f = (struct journal_filter){ .session = 2, .ops = { "close" } };
    cr_assert_str_eq(ids_of(fx.db, &f), "9");

    /* since inclusive, until exclusive */
    f = (struct journal_filter){ .has_since = true,
                                 .since_us = (1714521600LL + 4) * 1000000,
                                 .has_until = true,
                                 .until_us = (1714521600LL + 7) * 1000000 };
    cr_assert_str_eq(ids_of(fx.db, &f), "4 5 6");
    f = (struct journal_filter){ .after_id = 10 };
    cr_assert_str_eq(ids_of(fx.db, &f), "11 12");
    f = (struct journal_filter){ .newest_first = true, .limit = 3 };
    cr_assert_str_eq(ids_of(fx.db, &f), "12 11 10");

    /* A glob is a value, never SQL. */
    f = (struct journal_filter){ .path_glob = "' OR 1=1 --" };
    cr_assert_str_eq(ids_of(fx.db, &f), "");
    f = (struct journal_filter){ .agent = "alpha' OR 'x'='x" };
    cr_assert_str_eq(ids_of(fx.db, &f), "");
    fixture_done(&fx);
}

static int stop_at_two(void *arg, const struct journal_row *r)
{
    int *n = arg;
    (void)r;
    return ++*n == 2 ? 42 : 0;
}

Test(journal_query, callback_stops)
{
    struct fixture fx = fixture();
    int n = 0;
    cr_assert_eq(journal_query(fx.db, NULL, stop_at_two, &n), 42);
    cr_assert_eq(n, 2);
    fixture_done(&fx);
}

Test(journal_query, timeline)
{
    struct fixture fx = fixture();
    struct journal_filter f = { .path = "/tmp/a.txt" };
    cr_assert_str_eq(ids_of(fx.db, &f), "3 4 5 6 7");
    f = (struct journal_filter){ .path = "/out/b.txt" };
    cr_assert_str_eq(ids_of(fx.db, &f), "7 8 9");
    f = (struct journal_filter){ .path = "/tmp" };
    cr_assert_str_eq(ids_of(fx.db, &f), "");
    fixture_done(&fx);
}

Test(journal_query, stats)
{
    struct fixture fx = fixture();
    struct journal_stats s;
    cr_assert_eq(journal_stats(fx.db, NULL, &s), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.events, 12);
    cr_assert_eq(s.lost, 0);
    cr_assert_eq(s.chain.head_id, 12);
    struct journal_agent_stats *a = &s.agents[0], *b = &s.agents[1];
    cr_assert_str_eq(a->agent, "alpha");
    cr_assert_str_eq(b->agent, "beta");
    cr_assert_eq(a->events, 6);
    cr_assert_eq(a->sessions, 1);
    cr_assert_eq(a->opens, 1);
    cr_assert_eq(a->creates, 1);
    cr_assert_eq(a->copy_ups, 1);
    cr_assert_eq(a->bytes_read, 10);
    cr_assert_eq(a->bytes_written, 3);
    cr_assert_eq(a->first_us, (1714521600LL + 1) * 1000000);
    cr_assert_eq(a->last_us, (1714521600LL + 11) * 1000000);
    cr_assert_eq(b->events, 6);
    cr_assert_eq(b->copy_ups, 0);
    journal_stats_free(&s);

    struct journal_filter f = { .agent = "beta" };
    cr_assert_eq(journal_stats(fx.db, &f, &s), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.events, 6);
    journal_stats_free(&s);
    fixture_done(&fx);
}

/* ---- leaks -------------------------------------------------------------- */

struct found {
    char text[4096];
    size_t len;
};

static int note_leak(void *arg, const struct journal_leak *l)
{
    struct found *f = arg;
    f->len += snprintf(f->text + f->len, sizeof(f->text) - f->len,
                       "%s %s %s %lld %s|", l->kind, l->agent ? l->agent : "-",
                       l->ev && l->ev->path ? l->ev->path : "-",
                       l->ev ? (long long)l->ev->pid : -1LL,
                       l->ev && l->ev->comm ? l->ev->comm : "-");
    return 0;
}

static bool live_3(void *arg, uint64_t session)
{
    (void)arg;
    return session == 3;
}

static void mkdirs(const char *dir, const char *const *agents)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/agents", dir);
    mkdir(p, 0755);
    for (; *agents; agents++) {
        snprintf(p, sizeof(p), "%s/agents/%s", dir, *agents);
        cr_assert_eq(mkdir(p, 0755), 0);
    }
}

static char *leaks_of(const char *dir, const char *agent, uint64_t session)
{
    static struct found f;
    sqlite3 *db = NULL;
    struct journal_leak_opts o = {
        .state_dir = dir, .agent = agent, .session = session,
        .now_us = journal_now_us(), .open_max_us = 3600LL * 1000000,
        .live = live_3,
    };
    memset(&f, 0, sizeof(f));
    cr_assert_eq(journal_db_open(dir, &db), 0);
    cr_assert_eq(journal_leaks(db, &o, note_leak, &f), 0);
    journal_db_close(db);
    return f.text;
}

Test(journal_leaks, every_kind)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    static const char *const agents[] = { "alpha", "beta", "gamma", "delta",
                                          "epsilon", NULL };
    mkdirs(dir, agents);
    cr_assert_eq(journal_open(dir, 0, &j), 0);
    /* alpha, session 1: ended, with leftovers */
    log_ev(j, "session_start", "alpha", 1, NULL, -1);
    log_ev(j, "open", "alpha", 1, "/kept", 1);            /* never closed */
    log_ev(j, "open", "alpha", 1, "/closed", 2);
    log_ev(j, "close", "alpha", 1, "/closed", 2);
    log_ev(j, "open", "alpha", 1, "/r1", 3);
    log_ev(j, "close", "alpha", 1, "/r1", 3);
    log_ev(j, "open", "alpha", 1, "/r2", 3);              /* handle reused */
    struct journal_event ev = tj_ev("handle_left", "alpha", 1, "/r2");
    ev.handle = 3;
    ev.pid = 77;
    ev.comm = "tail";
    journal_log(j, &ev);
    ev = tj_ev("temp_left", "alpha", 1, "/tmp/x.part");
    ev.size = 5;
    journal_log(j, &ev);
    ev = tj_ev("lock_left", "alpha", 1, "/db");
    ev.pid = 78;
    ev.comm = "sqlite3";
    journal_log(j, &ev);
    log_ev(j, "session_end", "alpha", 1, NULL, -1);
    /* beta, session 2: died (no end, not live) */
    log_ev(j, "session_start", "beta", 2, NULL, -1);
    log_ev(j, "open", "beta", 2, "/b", 4);
    ev = tj_ev("lease_expire", "beta", 2, "/in/f1");
    ev.detail = "write";
    journal_log(j, &ev);
    /* gamma, session 3: live, one old open, one recent */
    log_ev(j, "session_start", "gamma", 3, NULL, -1);
    log_ev(j, "open", "gamma", 3, "/old", 5);
    log_ev(j, "open", "gamma", 3, "/new", 6);
    /* epsilon, session 4: its daemon died, recovery ended it */
    log_ev(j, "session_start", "epsilon", 4, NULL, -1);
    log_ev(j, "open", "epsilon", 4, "/e", 7);
    ev = tj_ev("session_end", "epsilon", 4, NULL);
    ev.detail = "crash";
    journal_log(j, &ev);
    journal_close(j);
    sqlite3 *rw = tj_rw(dir);
    tj_exec(rw, "UPDATE events SET ts = ts - 7200000000 WHERE path = '/old'");
    sqlite3_close(rw);

    cr_assert_str_eq(leaks_of(dir, NULL, 0),
                     "temp_left alpha /tmp/x.part -1 -|"
                     "handle_left alpha /r2 77 tail|"
                     "handle_left alpha /kept 1001 worker|"
                     "handle_left beta /b 1004 worker|"
                     "handle_left epsilon /e 1007 worker|"
                     "handle_open_long gamma /old 1005 worker|"
                     "lease_expired beta /in/f1 -1 -|"
                     "lock_left alpha /db 78 sqlite3|"
                     "session_unended beta - -1 -|"
                     "session_crashed epsilon - -1 -|"
                     "agent_unused delta - -1 -|");
    cr_assert_str_eq(leaks_of(dir, "beta", 0),
                     "handle_left beta /b 1004 worker|"
                     "lease_expired beta /in/f1 -1 -|"
                     "session_unended beta - -1 -|");
    cr_assert_str_eq(leaks_of(dir, NULL, 1),
                     "temp_left alpha /tmp/x.part -1 -|"
                     "handle_left alpha /r2 77 tail|"
                     "handle_left alpha /kept 1001 worker|"
                     "lock_left alpha /db 78 sqlite3|");
    cr_assert_str_eq(leaks_of(dir, "delta", 0), "agent_unused delta - -1 -|");
    tj_rm(dir);
}

Test(journal_leaks, clean_run)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    static const char *const agents[] = { "alpha", NULL };
    mkdirs(dir, agents);
    cr_assert_eq(journal_open(dir, 0, &j), 0);
    log_ev(j, "session_start", "alpha", 1, NULL, -1);
    log_ev(j, "open", "alpha", 1, "/a", 1);
    log_ev(j, "close", "alpha", 1, "/a", 1);
    log_ev(j, "create", "alpha", 1, "/tmp/t", -1);
    log_ev(j, "unlink", "alpha", 1, "/tmp/t", -1);
    log_ev(j, "session_end", "alpha", 1, NULL, -1);
    /* a live session with a recent open is no leak either */
    log_ev(j, "session_start", "alpha", 3, NULL, -1);
    log_ev(j, "open", "alpha", 3, "/a", 1);
    journal_close(j);
    cr_assert_str_eq(leaks_of(dir, NULL, 0), "");
    tj_rm(dir);
}

Test(journal_leaks, agents_survive_pruning)
{
    /* The agent's session_start was pruned; it is still known. */
    char *dir = tj_dir();
    struct journal *j = NULL;
    static const char *const agents[] = { "alpha", NULL };
    mkdirs(dir, agents);
    cr_assert_eq(journal_open(dir, 0, &j), 0);
    log_ev(j, "session_start", "alpha", 1, NULL, -1);
    log_ev(j, "session_end", "alpha", 1, NULL, -1);
    journal_close(j);
    sqlite3 *rw = tj_rw(dir);
    tj_exec(rw, "DELETE FROM events");
    sqlite3_close(rw);
    cr_assert_str_eq(leaks_of(dir, NULL, 0), "");
    tj_rm(dir);
}

/* ---- formats ------------------------------------------------------------ */

static struct journal_row sample(void)
{
    struct journal_row r = {
        .id = 9, .ts_us = 1714564800LL * 1000000 + 5, .op = "rename",
        .agent = "alpha", .session = 2, .path = "/a,\"b\"", .path2 = "/c\nd",
        .pid = 12, .comm = "mv", .handle = -1, .bytes_read = -1,
        .bytes_written = -1, .size = 0, .err = ENOENT, .detail = NULL,
    };
    memset(r.hash, 0xab, sizeof(r.hash));
    return r;
}

Test(journal_format, json)
{
    struct journal_row r = sample();
    cJSON *o = journal_row_json(&r);
    cr_assert_not_null(o);
    char *s = cJSON_PrintUnformatted(o);
    cr_assert_str_eq(s, "{\"id\":9,\"time\":\"2024-05-01T12:00:00.000005Z\","
                     "\"ts_us\":1714564800000005,\"op\":\"rename\","
                     "\"agent\":\"alpha\",\"session\":2,"
                     "\"path\":\"/a,\\\"b\\\"\",\"path2\":\"/c\\nd\","
                     "\"pid\":12,\"comm\":\"mv\",\"size\":0,\"err\":2,"
                     "\"errno\":\"ENOENT\",\"hash\":\"abababababababababababab"
                     "abababababababababababababababababababab\"}");
    free(s);
    cJSON_Delete(o);
}

static char *captured(void (*fn)(FILE *, const struct journal_row *),
                      const struct journal_row *r)
{
    static char buf[1024];
    FILE *f = fmemopen(buf, sizeof(buf), "w");
    fn(f, r);
    fclose(f);
    return buf;
}

Test(journal_format, csv)
{
    struct journal_row r = sample();
    cr_assert_str_eq(captured(journal_row_csv, &r),
                     "9,2024-05-01T12:00:00.000005Z,1714564800000005,rename,"
                     "alpha,2,\"/a,\"\"b\"\"\",\"/c\nd\",12,mv,,,,0,2,,"
                     "abababababababababababababababababababababababababababab"
                     "abababab\n");
}

Test(journal_format, text)
{
    struct journal_row r = sample();
    cr_assert_str_eq(captured(journal_row_text, &r),
                     "2024-05-01T12:00:00.000Z      9 alpha/2        "
                     "rename         /a,\"b\" -> /c\\x0ad pid=12(mv) size=0 "
                     "err=ENOENT\n");
}
