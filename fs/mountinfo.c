/* mountinfo.c - parser for /proc/self/mountinfo (format in proc(5)). */
#include "fs/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/config.h"

#define LANEFS_SOURCE_PREFIX "lanefs@"

static void minfo_entry_free(struct minfo_entry *e)
{
    free(e->dev);
    free(e->root);
    free(e->mountpoint);
    free(e->options);
    free(e->fstype);
    free(e->source);
    free(e->super_options);
    memset(e, 0, sizeof(*e));
}

void minfo_free(struct minfo_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        minfo_entry_free(&t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

static bool minfo_is_octal(char c)
{
    return c >= '0' && c <= '7';
}

void minfo_unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && minfo_is_octal(r[1]) && minfo_is_octal(r[2]) &&
            minfo_is_octal(r[3])) {
            int v = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
            if (v > 0 && v < 256) {
                *w++ = (char)v;
                r += 4;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
}

/* Next space-separated field of *cur (the line is modified), or NULL. */
static char *minfo_field(char **cur)
{
    char *s = *cur;
    while (*s == ' ')
        s++;
    if (!*s)
        return NULL;
    char *end = strchr(s, ' ');
    if (end) {
        *end = '\0';
        *cur = end + 1;
    } else {
        *cur = s + strlen(s);
    }
    return s;
}

static bool minfo_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 0x7fffffff)
        return false;
    *out = (int)v;
    return true;
}

static int minfo_dup(char **dst, const char *src, bool unescape)
{
    *dst = strdup(src);
    if (!*dst)
        return -ENOMEM;
    if (unescape)
        minfo_unescape(*dst);
    return 0;
}

/* Parses one line (modified in place) into *e. */
static int minfo_parse_line(char *line, struct minfo_entry *e)
{
    char *cur = line, *f[6], *fstype, *source, *super;
    int rc;

    for (int i = 0; i < 6; i++)
        if (!(f[i] = minfo_field(&cur)))
            return -EINVAL;
    if (!minfo_int(f[0], &e->id) || !minfo_int(f[1], &e->parent_id))
        return -EINVAL;
    /* Optional fields ("shared:1", ...) run up to a lone "-". */
    char *opt;
    while ((opt = minfo_field(&cur)) && strcmp(opt, "-") != 0)
        ;
    if (!opt)
        return -EINVAL;
    if (!(fstype = minfo_field(&cur)) || !(source = minfo_field(&cur)))
        return -EINVAL;
    super = minfo_field(&cur);
    if ((rc = minfo_dup(&e->dev, f[2], false)) < 0 ||
        (rc = minfo_dup(&e->root, f[3], true)) < 0 ||
        (rc = minfo_dup(&e->mountpoint, f[4], true)) < 0 ||
        (rc = minfo_dup(&e->options, f[5], false)) < 0 ||
        (rc = minfo_dup(&e->fstype, fstype, true)) < 0 ||
        (rc = minfo_dup(&e->source, source, true)) < 0 ||
        (rc = minfo_dup(&e->super_options, super ? super : "", false)) < 0)
        return rc;
    return 0;
}

int minfo_parse_file(FILE *f, struct minfo_table *t)
{
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    int rc = 0;

    memset(t, 0, sizeof(*t));
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (t->n == alloc) {
            size_t want = alloc ? alloc * 2 : 32;
            struct minfo_entry *v = realloc(t->v, want * sizeof(*v));
            if (!v) {
                rc = -ENOMEM;
                goto out;
            }
            t->v = v;
            alloc = want;
        }
        struct minfo_entry *e = &t->v[t->n];
        memset(e, 0, sizeof(*e));
        t->n++;                 /* counted now so errors free it too */
        rc = minfo_parse_line(line, e);
        if (rc < 0)
            goto out;
    }
    if (ferror(f))
        rc = -EIO;
out:
    free(line);
    if (rc < 0)
        minfo_free(t);
    return rc;
}

int minfo_parse_string(const char *text, struct minfo_table *t)
{
    memset(t, 0, sizeof(*t));
    if (!*text)
        return 0;               /* fmemopen refuses an empty buffer */
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    if (!f)
        return -errno;
    int rc = minfo_parse_file(f, t);
    fclose(f);
    return rc;
}

int minfo_load(struct minfo_table *t)
{
    memset(t, 0, sizeof(*t));
    FILE *f = fopen(MINFO_PATH, "re");
    if (!f)
        return -errno;
    int rc = minfo_parse_file(f, t);
    fclose(f);
    return rc;
}

const struct minfo_entry *minfo_find_mountpoint(const struct minfo_table *t,
                                                const char *mountpoint)
{
    for (size_t i = t->n; i-- > 0;)
        if (strcmp(t->v[i].mountpoint, mountpoint) == 0)
            return &t->v[i];
    return NULL;
}

const struct minfo_entry *minfo_find_lanefs_source(const struct minfo_table *t,
                                                   const char *source)
{
    for (size_t i = t->n; i-- > 0;)
        if (strcmp(t->v[i].fstype, MINFO_LANEFS_FSTYPE) == 0 &&
            strcmp(t->v[i].source, source) == 0)
            return &t->v[i];
    return NULL;
}

int minfo_lanefs_source_split(const char *src, char **agent, char **state)
{
    size_t plen = strlen(LANEFS_SOURCE_PREFIX);

    *agent = *state = NULL;
    if (strncmp(src, LANEFS_SOURCE_PREFIX, plen) != 0)
        return -EINVAL;
    const char *name = src + plen;
    const char *colon = strchr(name, ':');  /* names never hold ':' */
    if (!colon || colon[1] != '/')
        return -EINVAL;
    char *a = strndup(name, (size_t)(colon - name));
    if (!a)
        return -ENOMEM;
    if (!vol_agent_name_valid(a)) {
        free(a);
        return -EINVAL;
    }
    char *s = strdup(colon + 1);
    if (!s) {
        free(a);
        return -ENOMEM;
    }
    *agent = a;
    *state = s;
    return 0;
}

int minfo_set_readahead(const char *mountpoint, unsigned kib)
{
    struct minfo_table t;
    char path[128], text[32];
    int rc = minfo_load(&t);
    if (rc < 0)
        return rc;
    const struct minfo_entry *e = minfo_find_mountpoint(&t, mountpoint);
    if (!e || strchr(e->dev, '/')) {
        rc = -ENOENT;
        goto out;
    }
    snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", e->dev);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    int len = snprintf(text, sizeof(text), "%u\n", kib);
    rc = write(fd, text, (size_t)len) == len ? 0 : -errno;
    close(fd);
out:
    minfo_free(&t);
    return rc;
}
