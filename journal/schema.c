/* schema.c - the journal's schema, its version (PRAGMA user_version) and
 * the migrations that bring an older database up to date.
 *
 * Migration i takes a database of version i to version i + 1; version 0 is
 * an empty database. All migrations that are due run in one transaction,
 * with the new user_version, so a database is never half migrated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/journal_i.h"

static const char *const journal_migrations[JOURNAL_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  ts INTEGER NOT NULL,"
    "  op TEXT NOT NULL,"
    "  agent TEXT,"
    "  session INTEGER,"
    "  path TEXT,"
    "  path2 TEXT,"
    "  pid INTEGER,"
    "  comm TEXT,"
    "  handle INTEGER,"
    "  bytes_read INTEGER,"
    "  bytes_written INTEGER,"
    "  size INTEGER,"
    "  err INTEGER,"
    "  detail TEXT,"
    "  hash BLOB NOT NULL);"
    "CREATE INDEX events_agent ON events(agent);"
    "CREATE INDEX events_path ON events(path);"
    "CREATE INDEX events_path2 ON events(path2) WHERE path2 IS NOT NULL;"
    "CREATE INDEX events_op ON events(op);"
    "CREATE INDEX events_ts ON events(ts);"
    "CREATE INDEX events_handle ON events(session, handle)"
    "  WHERE handle IS NOT NULL;"
    "CREATE TABLE chain ("
    "  one INTEGER PRIMARY KEY CHECK (one = 1),"
    "  anchor_id INTEGER NOT NULL,"
    "  anchor_hash BLOB NOT NULL,"
    "  head_id INTEGER NOT NULL,"
    "  head_hash BLOB NOT NULL);"
    "INSERT INTO chain VALUES (1, 0, zeroblob(32), 0, zeroblob(32));"
    "CREATE TABLE agents ("
    "  name TEXT PRIMARY KEY,"
    "  first_ts INTEGER NOT NULL,"
    "  last_ts INTEGER NOT NULL,"
    "  sessions INTEGER NOT NULL) WITHOUT ROWID;",
    /* 1 -> 2: the end of a session found without a scan (leaks) */
    "CREATE INDEX events_session_end ON events(session)"
    "  WHERE op = 'session_end';",
};

int journal_sql_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
        return 0;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return -EBADMSG;
    default:
        return -EIO;
    }
}

int journal_db_path(const char *state_dir, char **out)
{
    if (asprintf(out, "%s/%s", state_dir, JOURNAL_DB_NAME) < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

static int schema_version(sqlite3 *db, int *version)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return journal_sql_err(rc);
}

int journal_schema_migrate(sqlite3 *db)
{
    char sql[64];
    int version = 0, rc;

    if ((rc = journal_sql_err(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL,
                                           NULL))) < 0)
        return rc;
    if ((rc = schema_version(db, &version)) < 0)
        goto out;
    if (version > JOURNAL_SCHEMA_VERSION || version < 0) {
        rc = -EPROTO;
        goto out;
    }
    for (int v = version; v < JOURNAL_SCHEMA_VERSION; v++) {
        rc = journal_sql_err(sqlite3_exec(db, journal_migrations[v], NULL,
                                          NULL, NULL));
        if (rc < 0)
            goto out;
    }
    if (version < JOURNAL_SCHEMA_VERSION) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
                 JOURNAL_SCHEMA_VERSION);
        if ((rc = journal_sql_err(sqlite3_exec(db, sql, NULL, NULL,
                                               NULL))) < 0)
            goto out;
    }
    rc = journal_sql_err(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
out:
    if (rc < 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static void copy_hash(uint8_t *dst, sqlite3_stmt *st, int col)
{
    const void *p = sqlite3_column_blob(st, col);
    memset(dst, 0, JOURNAL_HASH_LEN);
    if (p && sqlite3_column_bytes(st, col) == JOURNAL_HASH_LEN)
        memcpy(dst, p, JOURNAL_HASH_LEN);
}

int journal_chain_read(sqlite3 *db, struct journal_chain *c)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT anchor_id, anchor_hash, head_id, "
                                "head_hash FROM chain WHERE one = 1", -1, &st,
                                NULL);

    memset(c, 0, sizeof(*c));
    if (rc != SQLITE_OK)
        goto out;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        c->anchor_id = sqlite3_column_int64(st, 0);
        copy_hash(c->anchor_hash, st, 1);
        c->head_id = sqlite3_column_int64(st, 2);
        copy_hash(c->head_hash, st, 3);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_CORRUPT;    /* the chain row is gone */
    }
out:
    sqlite3_finalize(st);
    return journal_sql_err(rc);
}

int journal_db_open(const char *state_dir, sqlite3 **out)
{
    sqlite3 *db = NULL;
    char *path = NULL;
    int version = -1, rc;

    *out = NULL;
    if ((rc = journal_db_path(state_dir, &path)) < 0)
        return rc;
    if (access(path, F_OK) < 0) {
        rc = -errno;
        goto out;
    }
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc != SQLITE_OK) {
        rc = journal_sql_err(rc);
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if ((rc = schema_version(db, &version)) < 0)
        goto out;
    if (version < 1 || version > JOURNAL_SCHEMA_VERSION) {
        rc = -EPROTO;
        goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    free(path);
    return rc;
}

void journal_db_close(sqlite3 *db)
{
    sqlite3_close(db);
}
