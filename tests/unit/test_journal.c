/* Unit tests of the journal's writer and hash chain: the canonical
 * encoding, rows as written, the chain across reopening, detection of
 * edited, deleted, inserted and truncated rows (made with sqlite3 directly
 * on the test database), pruning under a size cap, queue overflow counted
 * as events_lost, and events that survive a SIGKILL of the writer. */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal/journal.h"
#include "journal/journal_db.h"
#include "journal/journal_i.h"

/* ---- helpers, also used by test_journal_query.c ------------------------- */

char *tj_dir(void)
{
    char tmpl[] = "/tmp/lanefs-journal-XXXXXX";
    char *d = mkdtemp(tmpl);
    cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
    return strdup(d);
}

void tj_rm(char *dir)
{
    const char *names[] = { JOURNAL_DB_NAME, JOURNAL_DB_NAME "-wal",
                            JOURNAL_DB_NAME "-shm" };
    char p[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    snprintf(p, sizeof(p), "%s/agents", dir);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
    cr_assert_eq(system(cmd), 0);
    rmdir(dir);
    free(dir);
}

struct journal_event tj_ev(const char *op, const char *agent, uint64_t session,
                           const char *path)
{
    struct journal_event ev = {
        .op = op, .agent = agent, .session = session, .path = path,
        .pid = -1, .handle = -1, .bytes_read = -1, .bytes_written = -1,
        .size = -1,
    };
    return ev;
}

sqlite3 *tj_rw(const char *dir)
{
    char p[512];
    sqlite3 *db = NULL;
    snprintf(p, sizeof(p), "%s/%s", dir, JOURNAL_DB_NAME);
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

void tj_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, msg ? msg : "?");
}

long long tj_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
                 "%s: %s", sql, sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

struct journal_verify tj_verify(const char *dir)
{
    struct journal_verify v;
    sqlite3 *db = NULL;
    cr_assert_eq(journal_db_open(dir, &db), 0);
    cr_assert_eq(journal_verify(db, &v), 0);
    journal_db_close(db);
    return v;
}

/* Writes n events: open/close pairs of agent a1/a2 on /f<i>. */
void tj_fill(const char *dir, int n)
{
    struct journal *j = NULL;
    char path[32];
    cr_assert_eq(journal_open(dir, 0, &j), 0);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "/f%d", i);
        struct journal_event ev = tj_ev(i % 2 ? "close" : "open",
                                        i % 3 ? "a1" : "a2", 1, path);
        ev.pid = 100 + i;
        ev.comm = "cat";
        ev.handle = i / 2;
        journal_log(j, &ev);
    }
    journal_close(j);
}

/* ---- encoding ----------------------------------------------------------- */

Test(journal_encode, layout)
{
    struct journal_row r = {
        .id = 1, .ts_us = 2, .op = "open", .agent = NULL, .session = 3,
        .path = "", .path2 = NULL, .pid = -1, .comm = "sh", .handle = -1,
        .bytes_read = -1, .bytes_written = -1, .size = 0, .err = 0,
        .detail = NULL,
    };
    static const uint8_t want[] = {
        1,                                  /* version */
        0, 0, 0, 0, 0, 0, 0, 1,             /* id */
        0, 0, 0, 0, 0, 0, 0, 2,             /* ts */
        1, 0, 0, 0, 4, 'o', 'p', 'e', 'n',  /* op */
        0,                                  /* agent: absent */
        1, 0, 0, 0, 0, 0, 0, 0, 3,          /* session */
        1, 0, 0, 0, 0,                      /* path: "" */
        0,                                  /* path2 */
        0,                                  /* pid */
        1, 0, 0, 0, 2, 's', 'h',            /* comm */
        0, 0, 0,                            /* handle, bytes_read, written */
        1, 0, 0, 0, 0, 0, 0, 0, 0,          /* size 0 is present */
        0,                                  /* err 0: absent */
        0,                                  /* detail */
    };
    struct journal_buf b = { 0 };
    cr_assert_eq(journal_encode(&r, &b), 0);
    cr_assert_eq(b.len, sizeof(want));
    cr_assert_arr_eq(b.p, want, sizeof(want));

    /* The hash is SHA-256 over the previous hash, then the encoding. */
    uint8_t prev[JOURNAL_HASH_LEN], h1[JOURNAL_HASH_LEN], h2[JOURNAL_HASH_LEN];
    unsigned n = 0;
    memset(prev, 0xab, sizeof(prev));
    cr_assert_eq(journal_row_hash(NULL, &b, prev, &r, h1), 0);
    uint8_t *cat = malloc(sizeof(prev) + b.len);
    memcpy(cat, prev, sizeof(prev));
    memcpy(cat + sizeof(prev), b.p, b.len);
    cr_assert_eq(EVP_Digest(cat, sizeof(prev) + b.len, h2, &n, EVP_sha256(),
                            NULL), 1);
    cr_assert_arr_eq(h1, h2, JOURNAL_HASH_LEN);
    free(cat);
    journal_buf_free(&b);
}

Test(journal_encode, distinguishes)
{
    struct journal_row a = {
        .id = 7, .ts_us = 1, .op = "rename", .path = "/ab", .path2 = "c",
        .pid = -1, .handle = -1, .bytes_read = -1, .bytes_written = -1,
        .size = -1,
    };
    struct journal_row b = a;
    struct journal_buf ea = { 0 }, eb = { 0 };
    cr_assert_eq(journal_encode(&a, &ea), 0);

    /* Moving a byte from one field to the next changes the encoding. */
    b.path = "/a";
    b.path2 = "bc";
    cr_assert_eq(journal_encode(&b, &eb), 0);
    cr_assert(ea.len != eb.len || memcmp(ea.p, eb.p, ea.len) != 0);

    /* NULL and "" differ; absent and 0 differ. */
    b = a;
    b.path2 = "";
    cr_assert_eq(journal_encode(&b, &eb), 0);
    cr_assert(ea.len != eb.len || memcmp(ea.p, eb.p, ea.len) != 0);
    b = a;
    b.pid = 0;
    cr_assert_eq(journal_encode(&b, &eb), 0);
    cr_assert(ea.len != eb.len || memcmp(ea.p, eb.p, ea.len) != 0);
    b = a;
    b.id = 8;
    cr_assert_eq(journal_encode(&b, &eb), 0);
    cr_assert(memcmp(ea.p, eb.p, ea.len) != 0);
    journal_buf_free(&ea);
    journal_buf_free(&eb);
}

/* ---- writing ------------------------------------------------------------ */

Test(journal_write, rows_as_logged)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 0, &j), 0);
    struct journal_event ev = tj_ev("rename", "alpha", 4, "/a/b");
    ev.path2 = "/a/c";
    ev.pid = 42;
    ev.comm = "mv";
    ev.err = EXDEV;
    ev.detail = "why";
    ev.size = 0;
    ev.bytes_read = -7;     /* any negative: none */
    int64_t before = journal_now_us();
    journal_log(j, &ev);
    journal_log(NULL, &ev);
    journal_close(j);
    journal_close(NULL);

    char p[512];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, JOURNAL_DB_NAME);
    cr_assert_eq(stat(p, &st), 0);

    sqlite3 *db = tj_rw(dir);
    cr_assert_eq(tj_int(db, "PRAGMA user_version"), JOURNAL_SCHEMA_VERSION);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events"), 1);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events WHERE id = 1 AND "
                 "op = 'rename' AND agent = 'alpha' AND session = 4 AND "
                 "path = '/a/b' AND path2 = '/a/c' AND pid = 42 AND "
                 "comm = 'mv' AND handle IS NULL AND bytes_read IS NULL AND "
                 "bytes_written IS NULL AND size = 0 AND err = 18 AND "
                 "detail = 'why' AND length(hash) = 32"), 1);
    long long ts = tj_int(db, "SELECT ts FROM events WHERE id = 1");
    cr_assert(ts >= before && ts <= journal_now_us());
    cr_assert_eq(tj_int(db, "SELECT head_id FROM chain"), 1);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM pragma_index_list('events')"),
                 7);
    sqlite3_stmt *jm = NULL;
    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &jm, NULL);
    cr_assert_eq(sqlite3_step(jm), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(jm, 0), "wal");
    sqlite3_finalize(jm);
    sqlite3_close(db);

    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.checked, 1);
    tj_rm(dir);
}

struct logger {
    struct journal *j;
    int id, n;
};

static void *logger_main(void *arg)
{
    struct logger *l = arg;
    char agent[16], path[32];
    snprintf(agent, sizeof(agent), "t%d", l->id);
    for (int i = 0; i < l->n; i++) {
        snprintf(path, sizeof(path), "/d/%d", i);
        struct journal_event ev = tj_ev("create", agent, (uint64_t)l->id + 1,
                                        path);
        journal_log(l->j, &ev);
    }
    return NULL;
}

Test(journal_write, threads_and_reopen)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    pthread_t th[4];
    struct logger lg[4];

    for (int round = 0; round < 2; round++) {
        cr_assert_eq(journal_open(dir, 0, &j), 0);
        for (int i = 0; i < 4; i++) {
            lg[i] = (struct logger){ .j = j, .id = i, .n = 3000 };
            pthread_create(&th[i], NULL, logger_main, &lg[i]);
        }
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        journal_close(j);
    }
    sqlite3 *db = tj_rw(dir);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events"), 24000);
    cr_assert_eq(tj_int(db, "SELECT max(id) FROM events"), 24000);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events WHERE "
                 "agent = 't2'"), 6000);
    /* Per agent, events are in the order logged. */
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events a JOIN events b ON "
                 "a.agent = b.agent AND a.id < b.id AND "
                 "CAST(substr(a.path, 4) AS INTEGER) > "
                 "CAST(substr(b.path, 4) AS INTEGER) AND a.id > 12000 AND "
                 "b.id > 12000 AND b.id < a.id + 50"), 0);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events a JOIN events b ON "
                 "b.id = a.id + 1 WHERE b.ts < a.ts"), 0);
    sqlite3_close(db);
    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.checked, 24000);
    tj_rm(dir);
}

/* ---- the chain ---------------------------------------------------------- */

static void tamper(const char *dir, const char *sql)
{
    sqlite3 *db = tj_rw(dir);
    tj_exec(db, sql);
    sqlite3_close(db);
}

static void expect_bad(const char *dir, int64_t id, const char *word)
{
    struct journal_verify v = tj_verify(dir);
    cr_assert_not(v.ok, "verify passed a tampered journal");
    cr_assert_eq(v.first_bad, id, "first bad %lld, want %lld (%s)",
                 (long long)v.first_bad, (long long)id, v.problem);
    cr_assert(strstr(v.problem, word), "problem \"%s\" lacks \"%s\"",
              v.problem, word);
}

Test(journal_chain, intact)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.checked, 20);
    cr_assert_eq(v.first_bad, 0);
    cr_assert_eq(v.chain.anchor_id, 0);
    cr_assert_eq(v.chain.head_id, 20);
    tj_rm(dir);
}

Test(journal_chain, edited_row)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET path = '/elsewhere' WHERE id = 5");
    expect_bad(dir, 5, "edited");
    tj_rm(dir);
}

Test(journal_chain, edited_number_and_type)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET pid = pid + 1 WHERE id = 11");
    expect_bad(dir, 11, "edited");
    tj_rm(dir);

    dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET pid = pid || 'x' WHERE id = 3");
    expect_bad(dir, 3, "wrong type");
    tj_rm(dir);

    dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET ts = ts - 1000000 WHERE id = 20");
    expect_bad(dir, 20, "edited");
    tj_rm(dir);
}

Test(journal_chain, hash_replaced)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET hash = zeroblob(32) WHERE id = 9");
    expect_bad(dir, 9, "edited");
    tj_rm(dir);
}

Test(journal_chain, deleted_rows)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "DELETE FROM events WHERE id = 7");
    expect_bad(dir, 7, "missing");
    tj_rm(dir);

    dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "DELETE FROM events WHERE id BETWEEN 4 AND 6");
    expect_bad(dir, 4, "missing");
    tj_rm(dir);

    /* The oldest row, without moving the anchor. */
    dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "DELETE FROM events WHERE id = 1");
    expect_bad(dir, 1, "missing");
    tj_rm(dir);
}

Test(journal_chain, truncated_tail)
{
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "DELETE FROM events WHERE id > 12");
    expect_bad(dir, 13, "missing");
    tj_rm(dir);
}

Test(journal_chain, inserted_rows)
{
    /* Past the head. */
    char *dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "INSERT INTO events (id, ts, op, agent, hash) "
           "SELECT 21, ts + 1, 'unlink', 'a1', hash FROM events WHERE id = 20");
    expect_bad(dir, 21, "inserted");
    tj_rm(dir);

    /* In the middle: renumber to make room, copying a real row. */
    dir = tj_dir();
    tj_fill(dir, 20);
    tamper(dir, "UPDATE events SET id = id + 1000 WHERE id > 10;"
           "UPDATE events SET id = id - 999 WHERE id > 1000;"
           "INSERT INTO events (id, ts, op, agent, path, hash) "
           "SELECT 11, ts, 'unlink', 'a2', '/f3', hash FROM events "
           "WHERE id = 10;"
           "UPDATE chain SET head_id = 21");
    expect_bad(dir, 11, "edited");
    tj_rm(dir);

    /* Before the first event, with a journal never pruned. */
    dir = tj_dir();
    tj_fill(dir, 5);
    tamper(dir, "INSERT INTO events (id, ts, op, hash) "
           "VALUES (0, 1, 'open', zeroblob(32))");
    expect_bad(dir, 0, "inserted");
    tj_rm(dir);
}

Test(journal_chain, tamper_then_more_events)
{
    /* A daemon that starts after the tail was cut chains onto the
     * recorded head, so the cut still shows. */
    char *dir = tj_dir();
    tj_fill(dir, 10);
    tamper(dir, "DELETE FROM events WHERE id > 8");
    tj_fill(dir, 5);
    expect_bad(dir, 9, "missing");
    tj_rm(dir);

    /* ...and rows slipped in past the head do not stop it writing. */
    dir = tj_dir();
    tj_fill(dir, 10);
    tamper(dir, "INSERT INTO events (id, ts, op, hash) "
           "VALUES (11, 1, 'open', zeroblob(32))");
    tj_fill(dir, 5);
    sqlite3 *db = tj_rw(dir);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events"), 16);
    sqlite3_close(db);
    expect_bad(dir, 11, "edited");
    tj_rm(dir);
}

/* ---- retention ---------------------------------------------------------- */

Test(journal_prune, cap_keeps_chain)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    char detail[200];
    const uint64_t cap = 256 * 1024;

    memset(detail, 'x', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    cr_assert_eq(journal_open(dir, cap, &j), 0);
    for (int i = 0; i < 20000; i++) {
        struct journal_event ev = tj_ev("create", "a", 1, "/p");
        ev.detail = detail;
        journal_log(j, &ev);
        if (i % 1000 == 999)
            journal_flush(j);
    }
    journal_close(j);

    sqlite3 *db = tj_rw(dir);
    long long anchor = tj_int(db, "SELECT anchor_id FROM chain");
    long long rows = tj_int(db, "SELECT count(*) FROM events");
    cr_assert_gt(anchor, 0, "nothing was pruned");
    cr_assert_eq(tj_int(db, "SELECT min(id) FROM events"), anchor + 1);
    cr_assert_eq(tj_int(db, "SELECT max(id) FROM events"), 20000);
    cr_assert_eq(rows, 20000 - anchor);
    long long used = tj_int(db, "SELECT (page_count - freelist_count) * "
                            "page_size FROM pragma_page_count, "
                            "pragma_freelist_count, pragma_page_size");
    cr_assert_leq(used, (long long)cap, "used %lld past the cap", used);
    sqlite3_close(db);

    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.chain.anchor_id, anchor);
    cr_assert_eq(v.checked, rows);

    /* Deleting the row after the anchor is still found. */
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM events WHERE id = %lld",
             anchor + 1);
    tamper(dir, sql);
    expect_bad(dir, anchor + 1, "missing");
    tj_rm(dir);
}

/* ---- the queue ---------------------------------------------------------- */

Test(journal_queue, overflow_is_counted)
{
    char *dir = tj_dir();
    struct journal *j = NULL;
    struct journal_opts o = { .queue_max = 8 };

    cr_assert_eq(journal_open_opts(dir, 0, &o, &j), 0);
    journal_pause(j, true);
    for (int i = 0; i < 20; i++) {
        struct journal_event ev = tj_ev("open", "a", 1, "/x");
        ev.handle = i;
        journal_log(j, &ev);
    }
    struct journal_event noop = tj_ev(NULL, "a", 1, "/x");
    journal_log(j, &noop);          /* no op: dropped and counted too */
    journal_pause(j, false);
    journal_flush(j);
    struct journal_event last = tj_ev("close", "a", 1, "/x");
    journal_log(j, &last);
    journal_close(j);

    sqlite3 *db = tj_rw(dir);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events"), 10);
    cr_assert_eq(tj_int(db, "SELECT max(handle) FROM events WHERE "
                 "op = 'open'"), 7);
    cr_assert_eq(tj_int(db, "SELECT id FROM events WHERE "
                 "op = 'events_lost'"), 9);
    cr_assert_eq(tj_int(db, "SELECT size FROM events WHERE "
                 "op = 'events_lost'"), 13);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events WHERE "
                 "op = 'events_lost' AND detail LIKE '13 events dropped%'"),
                 1);
    cr_assert_eq(tj_int(db, "SELECT id FROM events WHERE op = 'close'"), 10);
    sqlite3_close(db);
    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    tj_rm(dir);
}

Test(journal_queue, survives_sigkill)
{
    char *dir = tj_dir();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct journal *j = NULL;
        if (journal_open(dir, 0, &j) < 0)
            _exit(3);
        for (int i = 0; i < 300; i++) {
            struct journal_event ev = tj_ev("create", "a", 1, "/k");
            journal_log(j, &ev);
        }
        /* The documented bound: a batch interval plus one commit. */
        usleep((JOURNAL_BATCH_MS + 400) * 1000);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    sqlite3 *db = NULL;
    cr_assert_eq(journal_db_open(dir, &db), 0);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM events"), 300);
    journal_db_close(db);
    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);

    /* A new writer continues the chain. */
    tj_fill(dir, 3);
    v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.chain.head_id, 303);
    tj_rm(dir);
}

Test(journal_open, migrates_older_schema)
{
    /* A version 1 journal (before the session_end index) is brought to
     * the current version, its chain intact and continued. */
    char *dir = tj_dir();
    tj_fill(dir, 4);
    tamper(dir, "DROP INDEX events_session_end; PRAGMA user_version = 1");
    sqlite3 *db = NULL;
    cr_assert_eq(journal_db_open(dir, &db), 0);     /* readers read v1 */
    journal_db_close(db);
    tj_fill(dir, 4);
    db = tj_rw(dir);
    cr_assert_eq(tj_int(db, "PRAGMA user_version"), JOURNAL_SCHEMA_VERSION);
    cr_assert_eq(tj_int(db, "SELECT count(*) FROM pragma_index_list('events') "
                 "WHERE name = 'events_session_end'"), 1);
    sqlite3_close(db);
    struct journal_verify v = tj_verify(dir);
    cr_assert(v.ok, "%s", v.problem);
    cr_assert_eq(v.checked, 8);
    tj_rm(dir);
}

Test(journal_open, newer_schema_refused)
{
    char *dir = tj_dir();
    tj_fill(dir, 1);
    tamper(dir, "PRAGMA user_version = 99");
    struct journal *j = NULL;
    cr_assert_eq(journal_open(dir, 0, &j), -EPROTO);
    cr_assert_null(j);
    sqlite3 *db = NULL;
    cr_assert_eq(journal_db_open(dir, &db), -EPROTO);
    tj_rm(dir);

    dir = tj_dir();
    cr_assert_eq(journal_db_open(dir, &db), -ENOENT);
    tj_rm(dir);
}
