/* cli.c - helpers shared by the lanefs subcommands. */
#include "tools/cli.h"

#include "fs/config.h"
#include "fs/sched.h"
#include "tools/ctl_client.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void cli_err(const char *fmt, ...)
{
    va_list ap;
    fputs("lanefs: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("lanefs: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'lanefs %s -h')\n", cmd);
    return CLI_EXIT_USAGE;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    char what[64];
    const char *word = argv[optind - 1];

    /* Long options use values above 255, so this is "--flag=x". */
    if (c == '?' && optopt >= 256)
        return cli_usage_err(cmd, "option '%.*s' takes no value",
                             (int)strcspn(word, "="), word);
    /* Letters are named from optopt: inside a cluster ("-fx") optind may not
     * have moved past the word yet. Long options (optopt 0 when unknown) are
     * named from the word getopt just consumed, without any "=value". */
    if (optopt > 0 && optopt < 256)
        snprintf(what, sizeof(what), "-%c", optopt);
    else
        snprintf(what, sizeof(what), "%.*s", (int)strcspn(word, "="), word);
    if (c == ':')
        return cli_usage_err(cmd, "option '%s' needs a value", what);
    return cli_usage_err(cmd, "unknown option '%s' for %s", what, cmd);
}

bool cli_path_within(const char *path, const char *dir)
{
    /* Walk both paths component by component. */
    const char *p = path, *d = dir;
    for (;;) {
        while (*d == '/')
            d++;
        while (*p == '/')
            p++;
        if (!*d)
            return true;        /* every component of dir matched */
        size_t dn = strcspn(d, "/"), pn = strcspn(p, "/");
        if (dn != pn || memcmp(d, p, dn) != 0)
            return false;
        d += dn;
        p += pn;
    }
}

/* Splits off the last component of path: *dir gets a new string (at least
 * "/" or "."), *base points into path. Trailing slashes are ignored. */
static int cli_split_last(const char *path, char **dir, const char **base,
                          size_t *base_len)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && path[start - 1] != '/')
        start--;
    *base = path + start;
    *base_len = len - start;
    size_t dlen = start;
    while (dlen > 1 && path[dlen - 1] == '/')
        dlen--;
    *dir = dlen ? strndup(path, dlen) : strdup(".");
    return *dir ? 0 : -ENOMEM;
}

static int cli_join(const char *dir, const char *base, size_t base_len,
                    char **out)
{
    const char *sep = strcmp(dir, "/") == 0 ? "" : "/";
    if (asprintf(out, "%s%s%.*s", dir, sep, (int)base_len, base) < 0) {
        *out = NULL;
        return -ENOMEM;
    }
    return 0;
}

int cli_canon_lenient(const char *path, char **out)
{
    char *dir = NULL, *rdir = NULL;
    const char *base;
    size_t base_len;
    int rc;

    *out = realpath(path, NULL);
    if (*out)
        return 0;
    rc = -errno;
    if (rc == -ENOENT || rc == -ENOTDIR || rc == -ENOMEM)
        return rc;
    if (cli_split_last(path, &dir, &base, &base_len) < 0)
        return -ENOMEM;
    if (base_len == 0 || (base_len == 1 && base[0] == '.') ||
        (base_len == 2 && base[0] == '.' && base[1] == '.'))
        goto out;
    rdir = realpath(dir, NULL);
    if (!rdir)
        goto out;
    rc = cli_join(rdir, base, base_len, out);
out:
    free(dir);
    free(rdir);
    return rc;
}

int cli_canon_missing(const char *path, char **out)
{
    char *cur = NULL, *tail = NULL, *next = NULL, *dir = NULL;
    const char *base;
    size_t base_len;
    int rc;

    *out = NULL;
    if (!*path)
        return -ENOENT;
    cur = strdup(path);
    tail = strdup("");
    if (!cur || !tail) {
        rc = -ENOMEM;
        goto out;
    }
    /* Strip components until what is left exists; remember them in tail. */
    while (!(*out = realpath(cur, NULL))) {
        if (errno != ENOENT) {
            rc = -errno;
            goto out;
        }
        if (cli_split_last(cur, &dir, &base, &base_len) < 0) {
            rc = -ENOMEM;
            goto out;
        }
        if (base_len == 2 && base[0] == '.' && base[1] == '.') {
            rc = -EINVAL;       /* ".." over a missing directory */
            goto out;
        }
        if (!(base_len == 1 && base[0] == '.')) {
            if (asprintf(&next, "/%.*s%s", (int)base_len, base, tail) < 0) {
                next = NULL;
                rc = -ENOMEM;
                goto out;
            }
            free(tail);
            tail = next;
            next = NULL;
        }
        free(cur);
        cur = dir;
        dir = NULL;
    }
    if (*tail) {
        char *res;
        const char *head = strcmp(*out, "/") == 0 ? "" : *out;
        if (asprintf(&res, "%s%s", head, tail) < 0) {
            rc = -ENOMEM;
            goto out;
        }
        free(*out);
        *out = res;
    }
    rc = 0;
out:
    if (rc < 0) {
        free(*out);
        *out = NULL;
    }
    free(cur);
    free(tail);
    free(dir);
    return rc;
}

int cli_mkdir_p(const char *dir, mode_t mode)
{
    char *buf = strdup(dir);
    struct stat st;
    int rc = 0;

    if (!buf)
        return -ENOMEM;
    size_t len = strlen(buf);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    /* Visit every prefix that ends a component, the whole path last. */
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        bool last = i == len;
        if (mkdir(buf, last ? mode : 0777) < 0) {
            if (errno != EEXIST) {
                rc = -errno;
            } else if (stat(buf, &st) < 0) {
                rc = -errno;
            } else if (!S_ISDIR(st.st_mode)) {
                rc = -ENOTDIR;
            }
        }
        buf[i] = saved;
        if (rc < 0)
            break;
    }
    free(buf);
    return rc;
}

int cli_pid_read(const char *file, pid_t *pid)
{
    char buf[32];
    FILE *f = fopen(file, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err)
        return -EIO;
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    while (*end == '\n' || *end == ' ')
        end++;
    if (errno || end == buf || *end || v <= 1 || v > INT_MAX)
        return -EINVAL;
    *pid = (pid_t)v;
    return 0;
}

bool cli_pid_lanefs_alive(pid_t pid)
{
    char path[64], buf[512];

    if (pid <= 1 || (kill(pid, 0) < 0 && errno != EPERM))
        return false;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno != ENOENT;     /* no /proc to ask: trust kill() */
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "PID (COMM) STATE ...": COMM may itself hold ')', so use the last. */
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    if (!open || !close || close < open || close[1] != ' ')
        return true;
    if (close[2] == 'Z' || close[2] == 'X')
        return false;               /* exited, waiting to be reaped */
    *close = '\0';
    return strstr(open + 1, "lanefs") != NULL;
}

char *cli_pid_file(const char *state, const char *agent)
{
    char *s;
    if (asprintf(&s, "%s/agents/%s/daemon.pid", state, agent) < 0)
        return NULL;
    return s;
}

int cli_parse_onoff(const char *s, bool *out)
{
    if (!strcmp(s, "on") || !strcmp(s, "off")) {
        *out = !strcmp(s, "on");
        return 0;
    }
    return -EINVAL;
}

int cli_parse_size(const char *s, unsigned long long *out)
{
    unsigned long long ip = 0, frac = 0, fdiv = 1, mult = 1;
    const char *p = s;
    bool has_frac = false;

    if (!s || *p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(ip, 10, &ip) ||
            __builtin_add_overflow(ip, (unsigned long long)(*p - '0'), &ip))
            return -ERANGE;
    if (*p == '.') {
        has_frac = true;
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        /* Up to nine fraction digits count; any further ones are read
         * and ignored. */
        for (; *p >= '0' && *p <= '9'; p++)
            if (fdiv < 1000000000ULL) {
                frac = frac * 10 + (unsigned long long)(*p - '0');
                fdiv *= 10;
            }
    }
    switch (*p) {
    case 'k': case 'K': mult = 1ULL << 10; p++; break;
    case 'm': case 'M': mult = 1ULL << 20; p++; break;
    case 'g': case 'G': mult = 1ULL << 30; p++; break;
    case 't': case 'T': mult = 1ULL << 40; p++; break;
    default: break;
    }
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p || (has_frac && mult == 1))
        return -EINVAL;
    unsigned long long v;
    if (__builtin_mul_overflow(ip, mult, &v) ||
        __builtin_add_overflow(v, (unsigned long long)
                               ((unsigned __int128)frac * mult / fdiv), &v))
        return -ERANGE;
    *out = v;
    return 0;
}

int cli_volume_open(const char *arg, char **state, struct vol_config *cfg)
{
    struct vol_config local = { 0 };
    char err[512];

    *state = realpath(arg, NULL);
    if (!*state) {
        cli_err("state directory '%s': %s", arg, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (vol_config_load(*state, cfg ? cfg : &local, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        free(*state);
        *state = NULL;
        return CLI_EXIT_FAIL;
    }
    vol_config_free(&local);
    return CLI_EXIT_OK;
}

int cli_ctl_fail(const char *state, const char *what, int rc,
                 const struct ctl_err *err)
{
    const char *msg = err ? err->msg : NULL;
    if (!ctl_no_daemon(rc, err))
        cli_err("%s: %s", what, msg && *msg ? msg : strerror(-rc));
    else if (rc == -ENOENT)
        cli_err("no daemon serves %s (no %s/%s); 'lanefs mount' or "
                "'lanefs serve %s' starts one", state, state, CTL_SOCK_NAME,
                state);
    else if (rc == -ECONNREFUSED)
        cli_err("no daemon serves %s (its control socket is stale: the "
                "daemon died); 'lanefs recover %s' cleans up", state, state);
    return CLI_EXIT_FAIL;
}

void cli_fmt_size(char *buf, size_t len, unsigned long long bytes)
{
    static const char units[] = "KMGTPE";
    if (bytes < 1024) {
        snprintf(buf, len, "%llu", bytes);
        return;
    }
    double v = (double)bytes;
    size_t u = 0;
    v /= 1024;
    while (v >= 1024 && u + 1 < sizeof(units) - 1) {
        v /= 1024;
        u++;
    }
    if (v < 10 && v != (double)(unsigned long long)v)
        snprintf(buf, len, "%.1f%c", v, units[u]);
    else
        snprintf(buf, len, "%.0f%c", v, units[u]);
}

void cli_fmt_duration(char *buf, size_t len, long long s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(buf, len, "%llds", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

int cli_daemon_lock(const char *state)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/daemon.lock", state) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        close(fd);
        return rc;
    }
    return fd;
}

void cli_daemon_busy(const char *state, const char *what)
{
    char pidfile[PATH_MAX];
    pid_t pid;
    snprintf(pidfile, sizeof(pidfile), "%s/daemon.pid", state);
    if (cli_pid_read(pidfile, &pid) == 0)
        cli_err("%s: a daemon (pid %d) %s", state, (int)pid, what);
    else
        cli_err("%s: a daemon %s", state, what);
}

int cli_read_shaping_arg(const char *cmd, const char *opt, const char *arg,
                         struct sched_limits *l)
{
    unsigned long long v;
    int rc = cli_parse_size(arg, &v);
    if (rc < 0)
        return cli_usage_err(cmd, "bad %s '%s': expected a whole number, "
                             "optionally with K, M, G or T (e.g. 50M, 1.5G)",
                             opt, arg);
    if (!strcmp(opt, "--weight")) {
        if (v < 1 || v > 10000)
            return cli_usage_err(cmd, "bad --weight '%s': it must be 1..10000", arg);
        l->weight = (uint32_t)v;
    } else if (!strcmp(opt, "--read-rate")) {
        l->rate_bps = v;
    } else if (!strcmp(opt, "--read-iops")) {
        l->iops = v;
    } else {
        l->reserve_bps = v;
    }
    return CLI_EXIT_OK;
}

void cli_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int cli_run_sub(const char *cmd, const struct cli_sub *subs, size_t n,
                void (*usage)(FILE *out), int argc, char **argv)
{
    char names[256] = "";           /* "a", "a or b", "a, b or c" */
    for (size_t i = 0; i < n; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        size_t len = strlen(names);
        snprintf(names + len, sizeof(names) - len, "%s%s", sep, subs[i].name);
    }
    if (argc < 2) {
        cli_err("missing a subcommand: %s (see 'lanefs %s -h')", names, cmd);
        return CLI_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(sub, subs[i].name))
            return subs[i].run(argc - 1, argv + 1);
    return cli_usage_err(cmd, "unknown subcommand '%s' (%s)", sub, names);
}
