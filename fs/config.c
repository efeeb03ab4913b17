/* config.c - load, validate and atomically save STATE/volume.conf.
 *
 * Parsing is done by inih. We feed it through our own line reader so that
 * every error can name its line, over-long lines are reported instead of
 * being split by inih, and section headers are checked even when a section
 * has no keys (inih only reports name = value pairs). */
#include "fs/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longest line we accept: "lower = " plus a PATH_MAX path, and room for the
 * '\r', '\n' and '\0' that inih counts in its line buffer. */
#define VOL_LINE_MAX (PATH_MAX + 64)

struct vol_parse {
    struct vol_config *cfg;
    const char *file;       /* path of volume.conf, for messages */
    FILE *in;
    int lineno;             /* line the reader handed to inih last */
    int rc;                 /* first error, 0 while none */
    int err_line;           /* line of that error, 0 when not tied to one */
    bool have_version, have_lower;
    char *err; size_t errlen;
};

/* Records the first error only: later ones are usually consequences. */
static void vol_fail(struct vol_parse *p, int rc, const char *fmt, ...)
{
    if (p->rc)
        return;
    p->rc = rc;
    p->err_line = p->lineno;
    if (!p->err || !p->errlen)
        return;
    int n = snprintf(p->err, p->errlen, "%s line %d: ", p->file, p->lineno);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void vol_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool vol_has_ctrl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

static bool vol_list_has(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* The section names we know; anything else is an error. */
static bool vol_section_known(const char *s, size_t len)
{
    static const char *const known[] = { "volume", "temp", "shared" };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strlen(known[i]) == len && memcmp(known[i], s, len) == 0)
            return true;
    return false;
}

/* fgets-style reader for inih that counts lines and checks what inih does
 * not: line length and the names of (possibly empty) sections. */
static char *vol_reader(char *buf, int size, void *stream)
{
    struct vol_parse *p = stream;
    if (!fgets(buf, size, p->in))
        return NULL;
    p->lineno++;
    size_t len = strlen(buf);
    if (len == (size_t)size - 1 && buf[len - 1] != '\n') {
        /* The buffer is full: the line fits only if it ends right here. */
        int c = fgetc(p->in);
        if (c != EOF && c != '\n') {
            vol_fail(p, -EINVAL, "line longer than %d characters", size - 3);
            /* Swallow the rest so inih does not see it as more lines. */
            while ((c = fgetc(p->in)) != EOF && c != '\n')
                ;
            buf[0] = '\0';
            return buf;
        }
    }
    const char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end && !vol_section_known(s + 1, (size_t)(end - s - 1)))
            vol_fail(p, -EINVAL, "unknown section [%.*s]",
                     (int)(end - s - 1), s + 1);
    }
    return buf;
}

static int vol_add_path(struct vol_parse *p, char ***list, size_t *n,
                        const char *sect, const char *value)
{
    struct vol_config *cfg = p->cfg;
    char *norm = NULL;
    int rc = vol_path_normalize(value, &norm);
    if (rc == -ENOMEM) {
        vol_fail(p, rc, "out of memory");
        return rc;
    }
    if (rc < 0) {
        vol_fail(p, rc, "bad %s path '%s' (must be a directory below the "
                 "mount root, without '.' or '..')", sect, value);
        return rc;
    }
    bool is_temp = list == &cfg->temp_paths;
    char **other = is_temp ? cfg->shared_paths : cfg->temp_paths;
    size_t n_other = is_temp ? cfg->n_shared_paths : cfg->n_temp_paths;
    if (vol_list_has(other, n_other, norm)) {
        vol_fail(p, -EINVAL, "path '%s' is both temp and shared", norm);
        rc = -EINVAL;
        goto out;
    }
    if (vol_list_has(*list, *n, norm))
        goto out;   /* a repeated line adds nothing */
    rc = vol_list_add(list, n, norm);
    if (rc < 0)
        vol_fail(p, rc, "out of memory");
out:
    free(norm);
    return rc;
}

static int vol_set_version(struct vol_parse *p, const char *value)
{
    if (p->have_version) {
        vol_fail(p, -EINVAL, "version given twice");
        return -EINVAL;
    }
    p->have_version = true;
    bool digits = *value != '\0';
    for (const char *s = value; *s; s++)
        if (!isdigit((unsigned char)*s))
            digits = false;
    if (!digits || strlen(value) > 9 || atoi(value) != VOL_CONF_VERSION) {
        vol_fail(p, -EINVAL, "unsupported version '%s' (this lanefs reads "
                 "version %d)", value, VOL_CONF_VERSION);
        return -EINVAL;
    }
    return 0;
}

static int vol_set_lower(struct vol_parse *p, const char *value)
{
    if (p->have_lower) {
        vol_fail(p, -EINVAL, "lower given twice");
        return -EINVAL;
    }
    p->have_lower = true;
    char *norm = NULL;
    int rc = value[0] == '/' ? vol_path_normalize(value, &norm) : -EINVAL;
    if (rc == 0 && strcmp(norm, value + 1) != 0)
        rc = -EINVAL;       /* must already be canonical */
    free(norm);
    if (rc == -ENOMEM) {
        vol_fail(p, rc, "out of memory");
        return rc;
    }
    if (rc < 0) {
        vol_fail(p, rc, "bad lower '%s' (must be an absolute canonical "
                 "path, not '/')", value);
        return rc;
    }
    p->cfg->lower = strdup(value);
    if (!p->cfg->lower) {
        vol_fail(p, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int vol_add_pattern(struct vol_parse *p, const char *value)
{
    struct vol_config *cfg = p->cfg;
    if (!*value || strchr(value, '/') || vol_has_ctrl(value)) {
        vol_fail(p, -EINVAL, "bad temp pattern '%s' (a pattern matches one "
                 "name: not empty, no '/')", value);
        return -EINVAL;
    }
    if (vol_list_has(cfg->temp_patterns, cfg->n_temp_patterns, value))
        return 0;
    int rc = vol_list_add(&cfg->temp_patterns, &cfg->n_temp_patterns, value);
    if (rc < 0)
        vol_fail(p, rc, "out of memory");
    return rc;
}

/* An on/off key: *off is whether it is "off". */
static void vol_set_off(struct vol_parse *p, const char *name, const char *value, bool *off)
{
    if (strcmp(value, "on") && strcmp(value, "off"))
        vol_fail(p, -EINVAL, "%s must be on or off, not '%s'", name, value);
    *off = strcmp(value, "off") == 0;
}

/* inih callback: nonzero to go on. We always go on (the first error is
 * kept) so inih's return value only adds syntax errors. */
static int vol_handler(void *user, const char *section, const char *name,
                       const char *value)
{
    struct vol_parse *p = user;
    struct vol_config *cfg = p->cfg;

    if (p->rc)
        return 1;
    if (strcmp(section, "volume") == 0 && strcmp(name, "version") == 0)
        vol_set_version(p, value);
    else if (strcmp(section, "volume") == 0 && strcmp(name, "lower") == 0)
        vol_set_lower(p, value);
    else if (strcmp(section, "volume") == 0 && strcmp(name, "journal") == 0)
        vol_set_off(p, name, value, &cfg->no_journal);
    else if (strcmp(section, "volume") == 0 && strcmp(name, "read_guard") == 0)
        vol_set_off(p, name, value, &cfg->no_read_guard);
    else if (strcmp(section, "volume") == 0 && strcmp(name, "journal_max") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-')
            vol_fail(p, -EINVAL, "journal_max must be a number of bytes, not '%s'", value);
        cfg->journal_max = v;
    } else if (strcmp(section, "volume") == 0 && strcmp(name, "volume_read_rate") == 0) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-')
            vol_fail(p, -EINVAL, "volume_read_rate must be a number of bytes/s, not '%s'",
                     value);
        cfg->volume_read_rate = v;
    }
    else if (strcmp(section, "temp") == 0 && strcmp(name, "path") == 0)
        vol_add_path(p, &cfg->temp_paths, &cfg->n_temp_paths, "temp", value);
    else if (strcmp(section, "temp") == 0 && strcmp(name, "pattern") == 0)
        vol_add_pattern(p, value);
    else if (strcmp(section, "shared") == 0 && strcmp(name, "path") == 0)
        vol_add_path(p, &cfg->shared_paths, &cfg->n_shared_paths, "shared",
                     value);
    else if (!*section)
        vol_fail(p, -EINVAL, "key '%s' outside any section", name);
    else if (vol_section_known(section, strlen(section)))
        vol_fail(p, -EINVAL, "unknown key '%s' in [%s]", name, section);
    /* else: the reader has reported the unknown section already */
    return 1;
}

/* inih's default line buffer (200 bytes) is too short for a PATH_MAX lower;
 * Debian's inih exposes the limit as a run-time option. Raised once, before
 * the first parse, so concurrent loads never race on it. */
static void vol_ini_setup(void)
{
    if (ini_max_line < VOL_LINE_MAX)
        ini_max_line = VOL_LINE_MAX;
}

int vol_config_load(const char *state_dir, struct vol_config *cfg,
                    char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct vol_parse p = { .cfg = cfg, .err = err, .errlen = errlen };
    char *file = NULL;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    if (err && errlen)
        err[0] = '\0';
    if (asprintf(&file, "%s/%s", state_dir, VOL_CONF_NAME) < 0) {
        file = NULL;
        vol_errf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    p.file = file;
    p.in = fopen(file, "re");
    if (!p.in) {
        rc = -errno;
        if (rc == -ENOENT)
            vol_errf(err, errlen, "%s does not exist (not a lanefs volume; "
                     "create one with 'lanefs init')", file);
        else
            vol_errf(err, errlen, "cannot read %s: %s", file, strerror(-rc));
        goto out;
    }
    pthread_once(&once, vol_ini_setup);
    int line = ini_parse_stream(vol_reader, &p, vol_handler, &p);
    if (ferror(p.in))
        vol_fail(&p, -EIO, "read error");
    if (line == -2)
        vol_fail(&p, -ENOMEM, "out of memory");
    /* inih reports lines it could not split (no '=' or no ']'); the
     * handler never fails, so line > 0 is always such a line. */
    if (line > 0 && (!p.rc || line < p.err_line)) {
        p.rc = 0;
        p.lineno = line;
        vol_fail(&p, -EINVAL, "cannot parse line (expected [section] or "
                 "key = value)");
    }
    rc = p.rc;
    if (rc < 0)
        goto out;
    if (!p.have_version || !cfg->lower) {
        vol_errf(err, errlen, "%s: missing '%s' in [volume]", file,
                 p.have_version ? "lower" : "version");
        rc = -EINVAL;
        goto out;
    }
    rc = 0;
out:
    if (p.in)
        fclose(p.in);
    free(file);
    if (rc < 0)
        vol_config_free(cfg);
    return rc;
}

/* True when inih reads s back unchanged as a value written "key = s": inih
 * strips surrounding blanks and cuts at a ';' that follows a blank. */
static bool vol_value_storable(const char *s)
{
    if (!*s || isspace((unsigned char)*s) || vol_has_ctrl(s))
        return false;
    if (*s == ';' || isspace((unsigned char)s[strlen(s) - 1]))
        return false;
    for (const char *c = s + 1; *c; c++)
        if (*c == ';' && isspace((unsigned char)c[-1]))
            return false;
    return strlen(s) + 16 < VOL_LINE_MAX;
}

static bool vol_list_storable(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!list[i] || !vol_value_storable(list[i]))
            return false;
    return true;
}

static int vol_write_list(FILE *f, const char *key, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fprintf(f, "%s = %s\n", key, list[i]) < 0)
            return -EIO;
    return 0;
}

static int vol_write(FILE *f, const struct vol_config *cfg)
{
    if (fprintf(f, "; lanefs volume configuration\n"
                "[volume]\nversion = %d\nlower = %s\njournal = %s\n"
                "journal_max = %llu\nvolume_read_rate = %llu\nread_guard = %s\n",
                VOL_CONF_VERSION, cfg->lower, cfg->no_journal ? "off" : "on",
                cfg->journal_max, cfg->volume_read_rate,
                cfg->no_read_guard ? "off" : "on") < 0)
        return -EIO;
    if (fprintf(f, "\n[temp]\n") < 0 ||
        vol_write_list(f, "path", cfg->temp_paths, cfg->n_temp_paths) < 0 ||
        vol_write_list(f, "pattern", cfg->temp_patterns,
                       cfg->n_temp_patterns) < 0)
        return -EIO;
    if (fprintf(f, "\n[shared]\n") < 0 ||
        vol_write_list(f, "path", cfg->shared_paths,
                       cfg->n_shared_paths) < 0)
        return -EIO;
    return 0;
}

int vol_config_save(const char *state_dir, const struct vol_config *cfg)
{
    char *tmp = NULL, *dst = NULL;
    FILE *f = NULL;
    int fd = -1, dfd = -1, rc;

    if (!cfg->lower || cfg->lower[0] != '/' ||
        !vol_value_storable(cfg->lower) ||
        !vol_list_storable(cfg->temp_paths, cfg->n_temp_paths) ||
        !vol_list_storable(cfg->temp_patterns, cfg->n_temp_patterns) ||
        !vol_list_storable(cfg->shared_paths, cfg->n_shared_paths))
        return -EINVAL;
    if (asprintf(&tmp, "%s/%s.tmp", state_dir, VOL_CONF_NAME) < 0) {
        tmp = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if (asprintf(&dst, "%s/%s", state_dir, VOL_CONF_NAME) < 0) {
        dst = NULL;
        rc = -ENOMEM;
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
              0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        rc = -errno;
        goto out_unlink;
    }
    fd = -1;                        /* owned by f now */
    rc = vol_write(f, cfg);
    if (rc == 0 && fflush(f) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fileno(f)) < 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    f = NULL;
    if (rc < 0)
        goto out_unlink;
    if (rename(tmp, dst) < 0) {
        rc = -errno;
        goto out_unlink;
    }
    /* Make the rename itself durable. */
    dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        fsync(dfd);
    rc = 0;
    goto out;
out_unlink:
    unlink(tmp);
out:
    if (f)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(tmp);
    free(dst);
    return rc;
}

static void vol_list_free(char ***list, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

void vol_config_free(struct vol_config *cfg)
{
    free(cfg->lower);
    vol_list_free(&cfg->temp_paths, &cfg->n_temp_paths);
    vol_list_free(&cfg->temp_patterns, &cfg->n_temp_patterns);
    vol_list_free(&cfg->shared_paths, &cfg->n_shared_paths);
    memset(cfg, 0, sizeof(*cfg));
}

int vol_list_add(char ***list, size_t *n, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        return -ENOMEM;
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (!grown) {
        free(copy);
        return -ENOMEM;
    }
    grown[*n] = copy;
    *list = grown;
    (*n)++;
    return 0;
}

int vol_config_defaults(struct vol_config *cfg)
{
    static const char *const patterns[] = {
        "*.tmp", "*.part", "*.swp", ".~lock.*#",
    };
    int rc = 0;

    if (cfg->n_temp_paths == 0)
        rc = vol_list_add(&cfg->temp_paths, &cfg->n_temp_paths, "tmp");
    if (rc == 0 && cfg->n_temp_patterns == 0)
        for (size_t i = 0; rc == 0 && i < sizeof(patterns) / sizeof(*patterns);
             i++)
            rc = vol_list_add(&cfg->temp_patterns, &cfg->n_temp_patterns,
                              patterns[i]);
    return rc;
}

/* Explicit ranges: isalnum() depends on the locale. */
static bool vol_name_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool vol_agent_name_valid(const char *name)
{
    if (!name || !vol_name_alnum(name[0]))
        return false;
    for (size_t i = 1; name[i]; i++) {
        char c = name[i];
        if (i >= VOL_AGENT_NAME_MAX)
            return false;
        if (!vol_name_alnum(c) && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

int vol_path_normalize(const char *in, char **out)
{
    *out = NULL;
    if (!in || vol_has_ctrl(in))
        return -EINVAL;
    size_t cap = strlen(in) + 1;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    size_t len = 0;
    const char *s = in;
    while (*s) {
        while (*s == '/')
            s++;
        if (!*s)
            break;
        size_t n = strcspn(s, "/");
        if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
            free(buf);
            return -EINVAL;
        }
        if (len)
            buf[len++] = '/';
        memcpy(buf + len, s, n);
        len += n;
        s += n;
    }
    buf[len] = '\0';
    if (len == 0 || len >= PATH_MAX) {
        free(buf);
        return -EINVAL;
    }
    *out = buf;
    return 0;
}
