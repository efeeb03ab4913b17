/* format.c - an event as JSON, as a CSV row, and as one line for people. */
#include <stdio.h>
#include <string.h>

#include "journal/journal_db.h"

/* ---- JSON --------------------------------------------------------------- */

static bool add_str(cJSON *o, const char *key, const char *s)
{
    return !s || cJSON_AddStringToObject(o, key, s);
}

static bool add_num(cJSON *o, const char *key, bool present, int64_t v)
{
    return !present || cJSON_AddNumberToObject(o, key, (double)v);
}

cJSON *journal_row_json(const struct journal_row *r)
{
    char t[40], hex[2 * JOURNAL_HASH_LEN + 1];
    cJSON *o = cJSON_CreateObject();
    const char *ename = r->err ? strerrorname_np(r->err) : NULL;

    journal_time_format(t, sizeof(t), r->ts_us);
    journal_hash_hex(hex, r->hash);
    if (!o ||
        !add_num(o, "id", true, r->id) ||
        !add_str(o, "time", t) ||
        !add_num(o, "ts_us", true, r->ts_us) ||
        !add_str(o, "op", r->op) ||
        !add_str(o, "agent", r->agent) ||
        !add_num(o, "session", r->session != 0, (int64_t)r->session) ||
        !add_str(o, "path", r->path) ||
        !add_str(o, "path2", r->path2) ||
        !add_num(o, "pid", r->pid >= 0, r->pid) ||
        !add_str(o, "comm", r->comm) ||
        !add_num(o, "handle", r->handle >= 0, r->handle) ||
        !add_num(o, "bytes_read", r->bytes_read >= 0, r->bytes_read) ||
        !add_num(o, "bytes_written", r->bytes_written >= 0, r->bytes_written) ||
        !add_num(o, "size", r->size >= 0, r->size) ||
        !add_num(o, "err", r->err != 0, r->err) ||
        !add_str(o, "errno", ename) ||
        !add_str(o, "detail", r->detail) ||
        !add_str(o, "hash", hex)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- CSV ---------------------------------------------------------------- */

void journal_csv_header(FILE *out)
{
    fputs("id,time,ts_us,op,agent,session,path,path2,pid,comm,handle,"
          "bytes_read,bytes_written,size,err,detail,hash\n", out);
}

/* A field, quoted when it holds a comma, quote, CR or LF (RFC 4180). */
static void csv_str(FILE *out, const char *s, bool last)
{
    if (s && s[strcspn(s, ",\"\r\n")]) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else if (s) {
        fputs(s, out);
    }
    fputs(last ? "\n" : ",", out);
}

static void csv_num(FILE *out, bool present, int64_t v)
{
    if (present)
        fprintf(out, "%lld", (long long)v);
    fputc(',', out);
}

void journal_row_csv(FILE *out, const struct journal_row *r)
{
    char t[40], hex[2 * JOURNAL_HASH_LEN + 1];

    journal_time_format(t, sizeof(t), r->ts_us);
    journal_hash_hex(hex, r->hash);
    csv_num(out, true, r->id);
    csv_str(out, t, false);
    csv_num(out, true, r->ts_us);
    csv_str(out, r->op, false);
    csv_str(out, r->agent, false);
    csv_num(out, r->session != 0, (int64_t)r->session);
    csv_str(out, r->path, false);
    csv_str(out, r->path2, false);
    csv_num(out, r->pid >= 0, r->pid);
    csv_str(out, r->comm, false);
    csv_num(out, r->handle >= 0, r->handle);
    csv_num(out, r->bytes_read >= 0, r->bytes_read);
    csv_num(out, r->bytes_written >= 0, r->bytes_written);
    csv_num(out, r->size >= 0, r->size);
    csv_num(out, r->err != 0, r->err);
    csv_str(out, r->detail, false);
    csv_str(out, hex, true);
}

/* ---- text --------------------------------------------------------------- */

/* s with control bytes and backslashes escaped, so a name with a newline
 * cannot forge a line. */
static void put_esc(FILE *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
}

void journal_row_text(FILE *out, const struct journal_row *r)
{
    char t[40], who[96];

    journal_time_format(t, sizeof(t), r->ts_us);
    /* milliseconds are enough to read: "....123456Z" -> "....123Z" */
    size_t n = strlen(t);
    if (n > 4 && t[n - 1] == 'Z') {
        t[n - 4] = 'Z';
        t[n - 3] = '\0';
    }
    if (r->session)
        snprintf(who, sizeof(who), "%s/%llu", r->agent ? r->agent : "-",
                 (unsigned long long)r->session);
    else
        snprintf(who, sizeof(who), "%s", r->agent ? r->agent : "-");
    fprintf(out, "%s %6lld %-14s %-14s ", t, (long long)r->id, who, r->op);
    put_esc(out, r->path ? r->path : "-");
    if (r->path2) {
        fputs(" -> ", out);
        put_esc(out, r->path2);
    }
    if (r->pid >= 0 || r->comm) {
        if (r->pid >= 0)
            fprintf(out, " pid=%lld", (long long)r->pid);
        else
            fputs(" pid=?", out);
        if (r->comm) {
            fputc('(', out);
            put_esc(out, r->comm);
            fputc(')', out);
        }
    }
    if (r->handle >= 0)
        fprintf(out, " handle=%lld", (long long)r->handle);
    if (r->bytes_read >= 0)
        fprintf(out, " read=%lld", (long long)r->bytes_read);
    if (r->bytes_written >= 0)
        fprintf(out, " written=%lld", (long long)r->bytes_written);
    if (r->size >= 0)
        fprintf(out, " size=%lld", (long long)r->size);
    if (r->err) {
        const char *e = strerrorname_np(r->err);
        if (e)
            fprintf(out, " err=%s", e);
        else
            fprintf(out, " err=%d", r->err);
    }
    if (r->detail) {
        fputs(" \"", out);
        put_esc(out, r->detail);
        fputc('"', out);
    }
    fputc('\n', out);
}
