/* chain.c - the canonical encoding of an event and its chained hash.
 *
 * Encoding (version 1), big-endian throughout:
 *   u8   1 (the encoding's version)
 *   i64  id
 *   i64  ts (microseconds)
 *   then op, agent, session, path, path2, pid, comm, handle, bytes_read,
 *   bytes_written, size, err, detail, each as
 *     absent:  u8 0
 *     integer: u8 1, i64 value
 *     string:  u8 1, u32 length, the bytes (no NUL)
 * hash = SHA-256(previous row's hash || encoding); the row before the first
 * has the anchor's hash (32 zero bytes for a journal never pruned). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_i.h"

#define ENC_VERSION 1

static int buf_reserve(struct journal_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put_u8(struct journal_buf *b, uint8_t v)
{
    b->p[b->len++] = v;
}

static void put_be(struct journal_buf *b, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        put_u8(b, (uint8_t)(v >> (8 * i)));
}

static int enc_int(struct journal_buf *b, bool present, int64_t v)
{
    if (buf_reserve(b, 9) < 0)
        return -ENOMEM;
    put_u8(b, present ? 1 : 0);
    if (present)
        put_be(b, (uint64_t)v, 8);
    return 0;
}

static int enc_str(struct journal_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > UINT32_MAX)
        return -EOVERFLOW;
    if (buf_reserve(b, 5 + n) < 0)
        return -ENOMEM;
    put_u8(b, s ? 1 : 0);
    if (s) {
        put_be(b, n, 4);
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
    return 0;
}

int journal_encode(const struct journal_row *r, struct journal_buf *b)
{
    int rc;

    b->len = 0;
    if (buf_reserve(b, 17) < 0)
        return -ENOMEM;
    put_u8(b, ENC_VERSION);
    put_be(b, (uint64_t)r->id, 8);
    put_be(b, (uint64_t)r->ts_us, 8);
    if ((rc = enc_str(b, r->op)) < 0 ||
        (rc = enc_str(b, r->agent)) < 0 ||
        (rc = enc_int(b, r->session != 0, (int64_t)r->session)) < 0 ||
        (rc = enc_str(b, r->path)) < 0 ||
        (rc = enc_str(b, r->path2)) < 0 ||
        (rc = enc_int(b, r->pid >= 0, r->pid)) < 0 ||
        (rc = enc_str(b, r->comm)) < 0 ||
        (rc = enc_int(b, r->handle >= 0, r->handle)) < 0 ||
        (rc = enc_int(b, r->bytes_read >= 0, r->bytes_read)) < 0 ||
        (rc = enc_int(b, r->bytes_written >= 0, r->bytes_written)) < 0 ||
        (rc = enc_int(b, r->size >= 0, r->size)) < 0 ||
        (rc = enc_int(b, r->err != 0, r->err)) < 0 ||
        (rc = enc_str(b, r->detail)) < 0)
        return rc;
    return 0;
}

void journal_buf_free(struct journal_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int journal_hash(EVP_MD_CTX *ctx, const uint8_t *prev,
                 const struct journal_buf *enc, uint8_t *hash)
{
    EVP_MD_CTX *own = NULL;
    unsigned int n = 0;
    int rc = -EIO;

    if (!ctx && !(ctx = own = EVP_MD_CTX_new()))
        return -ENOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, prev, JOURNAL_HASH_LEN) != 1 ||
        EVP_DigestUpdate(ctx, enc->p, enc->len) != 1 ||
        EVP_DigestFinal_ex(ctx, hash, &n) != 1 || n != JOURNAL_HASH_LEN)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(own);
    return rc;
}

int journal_row_hash(EVP_MD_CTX *ctx, struct journal_buf *b,
                     const uint8_t *prev, const struct journal_row *r,
                     uint8_t *hash)
{
    int rc = journal_encode(r, b);
    return rc < 0 ? rc : journal_hash(ctx, prev, b, hash);
}

void journal_hash_hex(char *buf, const uint8_t *hash)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < JOURNAL_HASH_LEN; i++) {
        buf[2 * i] = hex[hash[i] >> 4];
        buf[2 * i + 1] = hex[hash[i] & 15];
    }
    buf[2 * JOURNAL_HASH_LEN] = '\0';
}
