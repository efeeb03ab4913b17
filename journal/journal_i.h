/* journal_i.h - internals shared by the journal's writer and readers: the
 * schema, the canonical encoding of a row, its hash, and loading a row from
 * a statement. */
#ifndef LANEFS_JOURNAL_I_H
#define LANEFS_JOURNAL_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "journal/journal.h"
#include "journal/journal_db.h"

/* The columns of an event, in the order journal_row_load reads them. */
#define JOURNAL_COLS "id, ts, op, agent, session, path, path2, pid, comm, " \
                     "handle, bytes_read, bytes_written, size, err, detail, hash"
#define JOURNAL_NCOLS 16

/* ---- schema (schema.c) ---------------------------------------------- */

/* Brings db to JOURNAL_SCHEMA_VERSION, creating it when empty, in one
 * transaction. Returns 0, -EPROTO when it is newer, -EIO. */
int journal_schema_migrate(sqlite3 *db);

/* Reads the chain row (anchor and head). Returns 0, -EIO. */
int journal_chain_read(sqlite3 *db, struct journal_chain *c);

/* Absolute path "STATE/journal.db" in newly allocated *out; 0 or -ENOMEM. */
int journal_db_path(const char *state_dir, char **out);

/* sqlite3 result code to -errno. */
int journal_sql_err(int rc);

/* ---- encoding and hashing (chain.c) --------------------------------- */

struct journal_buf {
    uint8_t *p;
    size_t len, cap;
};

/* Canonical encoding of r (every field but hash) into b, replacing what
 * it held. Returns 0 or -ENOMEM. */
int journal_encode(const struct journal_row *r, struct journal_buf *b);

void journal_buf_free(struct journal_buf *b);

/* hash = SHA-256(prev || enc), with ctx a reusable digest context (NULL:
 * a one-off context). Returns 0, -ENOMEM or -EIO. */
int journal_hash(EVP_MD_CTX *ctx, const uint8_t *prev, const struct journal_buf *enc,
                 uint8_t *hash);

/* Hash of a row: encodes into b, then journal_hash. */
int journal_row_hash(EVP_MD_CTX *ctx, struct journal_buf *b,
                     const uint8_t *prev, const struct journal_row *r,
                     uint8_t *hash);

/* ---- the writer (writer.c): knobs and hooks for tests --------------- */

struct journal_opts {
    size_t queue_max;           /* JOURNAL_QUEUE_MAX */
    unsigned batch_ms;          /* JOURNAL_BATCH_MS */
    unsigned batch_events;      /* JOURNAL_BATCH_EVENTS */
};

/* journal_open with other knobs (NULL o: the defaults; a 0 field: its
 * default). */
int journal_open_opts(const char *state_dir, uint64_t max_bytes,
                      const struct journal_opts *o, struct journal **out);

/* Holds the writer (paused) or lets it go: while held it takes nothing
 * from the queue, so the queue fills. journal_close writes regardless. */
void journal_pause(struct journal *j, bool paused);

/* Returns once every event logged before the call has been written (or
 * counted lost when its transaction failed). Must not be called while the
 * writer is held. NULL: no-op. */
void journal_flush(struct journal *j);

/* ---- SQL from fixed fragments (query.c) ------------------------------ */

/* A statement put together from constant fragments, with the values of
 * its parameters kept apart: no value is ever part of the SQL text. */
#define JOURNAL_SQL_MAX 2048
#define JOURNAL_SQL_BINDS 48

struct journal_sql {
    char text[JOURNAL_SQL_MAX];
    size_t len;
    int nb;
    bool overflow;              /* text or binds ran out */
    struct {
        const char *s;          /* text value, or NULL for an integer */
        int64_t i;
    } b[JOURNAL_SQL_BINDS];
};

/* Appends a constant fragment. */
void journal_sql_add(struct journal_sql *q, const char *frag);
/* Appends the next parameter's value (for a '?' in a fragment). */
void journal_sql_text(struct journal_sql *q, const char *s);
void journal_sql_int(struct journal_sql *q, int64_t v);
/* Appends " WHERE ..." for f's conditions (nothing when there are none).
 * col_prefix qualifies the columns ("" or "e."). */
void journal_sql_where(struct journal_sql *q, const struct journal_filter *f,
                       const char *col_prefix);
/* Prepares q and binds its values. Returns 0, -EINVAL (overflow), -EIO. */
int journal_sql_prepare(sqlite3 *db, const struct journal_sql *q,
                        sqlite3_stmt **st);

/* ---- rows (row.c) --------------------------------------------------- */

/* Fills r from the current row of st, whose columns from col are
 * JOURNAL_COLS. Strings point into the statement (valid until it steps or
 * resets). Returns true when every column holds the type the schema
 * expects (integers or NULL, text without NUL bytes or NULL, a 32-byte
 * hash); false otherwise (r is then filled as well as it can be). */
bool journal_row_load(sqlite3_stmt *st, int col, struct journal_row *r);

#endif
