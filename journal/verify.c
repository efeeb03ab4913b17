/* verify.c - recomputing the hash chain from the anchor to the head.
 *
 * Rows are read in id order inside one read transaction. Ids are dense:
 * the writer gives each event the next one and only pruning removes rows,
 * from the oldest, moving the anchor. So the first row must be the
 * anchor's successor and each row the successor of the one before; a gap
 * is a deleted row, a row at or below the anchor or past the head an
 * inserted one, and a hash that does not match SHA-256(previous hash ||
 * encoding) an edited (or inserted) one. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "journal/journal_i.h"

static void bad(struct journal_verify *res, int64_t id, const char *fmt,
                long long a, long long b)
{
    res->ok = false;
    res->first_bad = id;
    snprintf(res->problem, sizeof(res->problem), fmt, a, b);
}

/* Walks the rows of the snapshot. */
static int verify_rows(sqlite3 *db, struct journal_verify *res)
{
    const struct journal_chain *c = &res->chain;
    struct journal_buf enc = { 0 };
    uint8_t prev[JOURNAL_HASH_LEN], hash[JOURNAL_HASH_LEN];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    sqlite3_stmt *st = NULL;
    int64_t want = c->anchor_id + 1;
    int rc;

    if (!md)
        return -ENOMEM;
    memcpy(prev, c->anchor_hash, sizeof(prev));
    rc = journal_sql_err(sqlite3_prepare_v2(db, "SELECT " JOURNAL_COLS
                                            " FROM events ORDER BY id", -1,
                                            &st, NULL));
    if (rc < 0)
        goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_row r;
        bool typed = journal_row_load(st, 0, &r);
        if (r.id <= c->anchor_id) {
            bad(res, r.id, "event %lld is at or before the pruning point "
                "(event %lld): inserted", (long long)r.id, c->anchor_id);
            break;
        }
        if (r.id > c->head_id) {
            bad(res, r.id, "event %lld is past the last event written "
                "(%lld): inserted", r.id, c->head_id);
            break;
        }
        if (r.id != want) {
            if (r.id == want + 1)
                bad(res, want, "event %lld is missing: deleted", want, 0);
            else
                bad(res, want, "events %lld to %lld are missing: deleted",
                    want, r.id - 1);
            break;
        }
        if (!typed) {
            bad(res, r.id, "event %lld holds a value of the wrong type: "
                "edited", r.id, 0);
            break;
        }
        if ((rc = journal_row_hash(md, &enc, prev, &r, hash)) < 0)
            goto out;
        res->checked++;
        if (memcmp(hash, r.hash, sizeof(hash)) != 0) {
            bad(res, r.id, "event %lld does not match its hash: edited, or "
                "the chain before it was changed", r.id, 0);
            break;
        }
        memcpy(prev, hash, sizeof(prev));
        want++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = journal_sql_err(rc);
        goto out;
    }
    rc = 0;
    if (!res->ok)
        goto out;
    if (want - 1 < c->head_id) {
        if (want == c->head_id)
            bad(res, want, "event %lld, the last one written, is missing: "
                "deleted", want, 0);
        else
            bad(res, want, "events %lld to %lld, the last ones written, are "
                "missing: deleted", want, c->head_id);
    } else if (memcmp(prev, c->head_hash, sizeof(prev)) != 0) {
        bad(res, c->head_id, "event %lld does not end the chain as "
            "recorded: edited", c->head_id, 0);
    }
out:
    sqlite3_finalize(st);
    journal_buf_free(&enc);
    EVP_MD_CTX_free(md);
    return rc;
}

int journal_verify(sqlite3 *db, struct journal_verify *res)
{
    int rc;

    memset(res, 0, sizeof(*res));
    res->ok = true;
    if ((rc = journal_sql_err(sqlite3_exec(db, "BEGIN", NULL, NULL,
                                           NULL))) < 0)
        return rc;
    if ((rc = journal_chain_read(db, &res->chain)) == 0)
        rc = verify_rows(db, res);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return rc;
}
