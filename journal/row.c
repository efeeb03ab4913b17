/* row.c - an event row from a statement, with the checks verification
 * needs: an edit that changes a column's type, or hides bytes behind a NUL,
 * must not go unnoticed. */
#include <string.h>

#include "journal/journal_i.h"

/* An integer column; absent (NULL) gives none (-1 or 0). A stored value
 * must be one the writer stores: not negative where none is -1, not 0
 * where none is 0 (the writer stores NULL for those). */
static bool col_int(sqlite3_stmt *st, int col, int64_t none, int64_t *out)
{
    int t = sqlite3_column_type(st, col);
    if (t == SQLITE_NULL) {
        *out = none;
        return true;
    }
    *out = sqlite3_column_int64(st, col);
    return t == SQLITE_INTEGER && (none < 0 ? *out >= 0 : *out != 0);
}

static bool col_str(sqlite3_stmt *st, int col, const char **out)
{
    int t = sqlite3_column_type(st, col);
    if (t == SQLITE_NULL) {
        *out = NULL;
        return true;
    }
    *out = (const char *)sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    return t == SQLITE_TEXT && *out && strlen(*out) == (size_t)n;
}

bool journal_row_load(sqlite3_stmt *st, int c, struct journal_row *r)
{
    int64_t session, err;
    bool ok = true;

    memset(r, 0, sizeof(*r));
    ok &= sqlite3_column_type(st, c) == SQLITE_INTEGER;
    r->id = sqlite3_column_int64(st, c);
    ok &= sqlite3_column_type(st, c + 1) == SQLITE_INTEGER;
    r->ts_us = sqlite3_column_int64(st, c + 1);
    ok &= col_str(st, c + 2, &r->op) && r->op;
    if (!r->op)
        r->op = "";
    ok &= col_str(st, c + 3, &r->agent);
    ok &= col_int(st, c + 4, 0, &session);
    r->session = (uint64_t)session;
    ok &= col_str(st, c + 5, &r->path);
    ok &= col_str(st, c + 6, &r->path2);
    ok &= col_int(st, c + 7, -1, &r->pid);
    ok &= col_str(st, c + 8, &r->comm);
    ok &= col_int(st, c + 9, -1, &r->handle);
    ok &= col_int(st, c + 10, -1, &r->bytes_read);
    ok &= col_int(st, c + 11, -1, &r->bytes_written);
    ok &= col_int(st, c + 12, -1, &r->size);
    ok &= col_int(st, c + 13, 0, &err);
    r->err = (int)err;
    ok &= err == r->err;
    const void *h = sqlite3_column_blob(st, c + 15);
    bool hash_ok = sqlite3_column_type(st, c + 15) == SQLITE_BLOB && h &&
                   sqlite3_column_bytes(st, c + 15) == JOURNAL_HASH_LEN;
    if (hash_ok)
        memcpy(r->hash, h, JOURNAL_HASH_LEN);
    ok &= hash_ok;
    ok &= col_str(st, c + 14, &r->detail);
    return ok;
}
