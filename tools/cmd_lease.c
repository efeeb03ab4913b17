/* cmd_lease.c - `lanefs lease acquire|release|show`, `lanefs claim` and
 * `lanefs leases`.
 *
 * lease and claim work from inside a sandbox: they only set, read and
 * remove the extended attribute user.lanefs.lease of files in an agent's
 * mount, which the daemon serves from its lease table (docs/leases.md).
 * leases runs on the host and asks the daemon over its control socket. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/ctl_client.h"
#include "tools/table.h"

#define LEASE_XATTR      "user.lanefs.lease"
#define LEASE_TTL_LO     2
#define LEASE_TTL_HI     300
#define LEASE_WAIT_MAX_S 86400
#define LEASE_RETRY_MIN_MS 100
#define LEASE_RETRY_MAX_MS 250
#define FUSE_MAGIC       0x65735546

/* A lease conflict as setxattr reports it. The daemon answers EBUSY:
 * Linux turns an EWOULDBLOCK answer of a FUSE filesystem's setxattr into
 * EOPNOTSUPP. EWOULDBLOCK is taken too, for other ways to the table. */
static bool is_conflict(int e)
{
    return e == EBUSY || e == EWOULDBLOCK;
}

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_MODE = 256, OPT_TTL, OPT_WAIT, OPT_JSON, OPT_HELP };

static void lease_usage(FILE *out)
{
    fputs(
"usage: lanefs lease acquire FILE [--mode read|write] [--ttl S] [--wait S]\n"
"       lanefs lease release FILE\n"
"       lanefs lease show    FILE\n"
"\n"
"Advisory leases on files of a lanefs mount, through the extended attribute\n"
"user.lanefs.lease (works inside a sandbox; no socket needed).\n"
"\n"
"  acquire   take or renew a lease; prints it (mode, holders, seconds left,\n"
"            epoch). Fails at once when another agent holds a conflicting\n"
"            lease, unless --wait is given.\n"
"  release   give the lease up (an error when you hold none)\n"
"  show      print the lease: 'free', or 'mode=M holder=A ttl=T epoch=E'\n"
"\n"
"  --mode read|write  (acquire) read leases share, a write lease is\n"
"                     exclusive; default write\n"
"  --ttl S            (acquire) seconds the lease lasts unless renewed,\n"
"                     2 to 300; default 30\n"
"  --wait S           (acquire) on a conflict, retry for up to S seconds\n"
"  -h, --help         show this help\n", out);
}

static void claim_usage(FILE *out)
{
    fputs(
"usage: lanefs claim DIR [--ttl S]\n"
"\n"
"Takes a write lease on the first regular file of DIR (by name, byte order)\n"
"that no agent holds, and prints its path: a work queue over a shared\n"
"directory. Exits 1 when every file is held. Works inside a sandbox.\n"
"\n"
"  --ttl S      seconds the lease lasts unless renewed, 2 to 300; default 30\n"
"  -h, --help   show this help\n", out);
}

static void leases_usage(FILE *out)
{
    fputs(
"usage: lanefs leases STATE [--json]\n"
"\n"
"Lists every lease the volume's daemon holds: file key, agent, mode, epoch\n"
"and time left. Fails when no daemon runs.\n"
"\n"
"  --json       print {\"leases\": [{key, agent, mode, epoch, ms_left}...]}\n"
"  -h, --help   show this help\n", out);
}

/* ---- arguments -------------------------------------------------------- */

/* Parses whole seconds in [LEASE_TTL_LO, LEASE_TTL_HI]. */
static bool parse_ttl(const char *s, unsigned *out)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 3)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v < LEASE_TTL_LO || v > LEASE_TTL_HI)
        return false;
    *out = (unsigned)v;
    return true;
}

/* Parses seconds, optionally with a fraction ("2", "0.5"), at most
 * LEASE_WAIT_MAX_S, into milliseconds. */
static bool parse_wait(const char *s, long long *ms)
{
    long long whole = 0, frac = 0, scale = 100;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        whole = whole * 10 + (*p - '0');
        if (whole > LEASE_WAIT_MAX_S)
            return false;
    }
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        for (; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    if (*p || (whole == LEASE_WAIT_MAX_S && frac))
        return false;
    *ms = whole * 1000 + frac;
    return true;
}

/* ---- the attribute ---------------------------------------------------- */

/* Refuses (CLI_EXIT_FAIL, message printed) a path that is not in a FUSE
 * filesystem: on a local filesystem setting user.lanefs.lease would store
 * a plain attribute and look like a lease. */
static int check_lanefs(const char *path)
{
    struct statfs sf;
    if (statfs(path, &sf) < 0) {
        cli_err("%s: %s", path, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (sf.f_type != FUSE_MAGIC) {
        cli_err("%s is not in a lanefs mount (leases exist only on files of "
                "an agent's view)", path);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* The lease attribute of path in a new string, or NULL with errno set. */
static char *attr_get(const char *path)
{
    size_t cap = 256;
    for (int tries = 0; tries < 8; tries++) {
        char *buf = malloc(cap + 1);
        if (!buf)
            return NULL;
        ssize_t n = getxattr(path, LEASE_XATTR, buf, cap);
        if (n >= 0) {
            buf[n] = '\0';
            return buf;
        }
        int e = errno;
        free(buf);
        if (e != ERANGE) {
            errno = e;
            return NULL;
        }
        n = getxattr(path, LEASE_XATTR, NULL, 0);
        if (n < 0)
            return NULL;
        cap = (size_t)n + 64;
    }
    errno = ERANGE;
    return NULL;
}

/* Copies the value of field name ("holder") of a shown lease
 * "mode=M holder=H ttl=T epoch=E" into out; false when it has none. */
static bool lease_field(const char *v, const char *name, char *out,
                        size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = v; *p; ) {
        size_t wl = strcspn(p, " ");
        if (wl > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
            snprintf(out, len, "%.*s", (int)(wl - nl - 1), p + nl + 1);
            return true;
        }
        p += wl;
        p += strspn(p, " ");
    }
    return false;
}

/* Prints why path could not be leased: who holds it and until when. */
static void say_conflict(const char *path, const char *gave_up)
{
    char *v = attr_get(path);
    char holder[4096], mode[16], ttl[16];

    if (v && lease_field(v, "holder", holder, sizeof(holder)) &&
        lease_field(v, "mode", mode, sizeof(mode)) &&
        lease_field(v, "ttl", ttl, sizeof(ttl))) {
        char until[32] = "?";
        time_t end = time(NULL) + atol(ttl);
        struct tm tm;
        if (localtime_r(&end, &tm))
            strftime(until, sizeof(until), "%H:%M:%S", &tm);
        cli_err("%s is leased by %s (%s) until %s (%s s left, unless "
                "renewed)%s", path, holder, mode, until, ttl, gave_up);
    } else if (v && strcmp(v, "free") == 0) {
        cli_err("%s was leased by another agent a moment ago; it is free "
                "now, try again%s", path, gave_up);
    } else {
        cli_err("%s is leased by another agent%s", path, gave_up);
    }
    free(v);
}

/* Prints the message of a failed attribute call on path. */
static void say_attr_err(const char *what, const char *path, int e)
{
    if (e == ENOTSUP)
        cli_err("%s: extended attributes are not supported there (is it in "
                "a lanefs mount?)", path);
    else
        cli_err("%s %s: %s", what, path, strerror(e));
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- lease ------------------------------------------------------------ */

struct lease_args {
    const char *sub, *file;
    const char *mode;          /* "read", "write" */
    unsigned ttl;              /* 0: the daemon's default */
    long long wait_ms;
    bool has_mode, has_ttl, has_wait;
};

/* Parses "SUB FILE [options]". Returns CLI_EXIT_OK, -1 when the help was
 * shown, or the exit code of a usage error. */
static int lease_args(int argc, char **argv, struct lease_args *a)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, OPT_MODE },
        { "ttl", required_argument, NULL, OPT_TTL },
        { "wait", required_argument, NULL, OPT_WAIT },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *pos[2] = { NULL, NULL };
    size_t npos = 0;
    int c;

    memset(a, 0, sizeof(*a));
    a->mode = "write";
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (npos == 2)
                return cli_usage_err("lease", "unexpected argument '%s'",
                                     optarg);
            pos[npos++] = optarg;
            break;
        case OPT_MODE:
            if (a->has_mode)
                return cli_usage_err("lease", "--mode given twice");
            if (strcmp(optarg, "read") && strcmp(optarg, "write"))
                return cli_usage_err("lease", "bad --mode '%s': expected "
                                     "read or write", optarg);
            a->mode = optarg;
            a->has_mode = true;
            break;
        case OPT_TTL:
            if (a->has_ttl)
                return cli_usage_err("lease", "--ttl given twice");
            if (!parse_ttl(optarg, &a->ttl))
                return cli_usage_err("lease", "bad --ttl '%s': expected whole "
                                     "seconds from %d to %d", optarg,
                                     LEASE_TTL_LO, LEASE_TTL_HI);
            a->has_ttl = true;
            break;
        case OPT_WAIT:
            if (a->has_wait)
                return cli_usage_err("lease", "--wait given twice");
            if (!parse_wait(optarg, &a->wait_ms))
                return cli_usage_err("lease", "bad --wait '%s': expected "
                                     "seconds from 0 to %d (e.g. 10, 2.5)",
                                     optarg, LEASE_WAIT_MAX_S);
            a->has_wait = true;
            break;
        case 'h':
        case OPT_HELP:
            lease_usage(stdout);
            return -1;
        default:
            return cli_bad_option("lease", c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (npos == 2)
            return cli_usage_err("lease", "unexpected argument '%s'",
                                 argv[optind]);
        pos[npos++] = argv[optind];
    }
    if (npos == 0)
        return cli_usage_err("lease", "missing what to do: acquire, release "
                             "or show");
    a->sub = pos[0];
    if (strcmp(a->sub, "acquire") && strcmp(a->sub, "release") &&
        strcmp(a->sub, "show"))
        return cli_usage_err("lease", "unknown lease command '%s' (acquire, "
                             "release or show)", a->sub);
    if (npos < 2)
        return cli_usage_err("lease", "missing FILE");
    if (!*pos[1])
        return cli_usage_err("lease", "bad FILE '': empty");
    a->file = pos[1];
    if (strcmp(a->sub, "acquire") != 0) {
        const char *opt = a->has_mode ? "--mode" : a->has_ttl ? "--ttl" :
                          a->has_wait ? "--wait" : NULL;
        if (opt)
            return cli_usage_err("lease", "%s is an option of 'lease "
                                 "acquire', not of 'lease %s'", opt, a->sub);
    }
    return CLI_EXIT_OK;
}

/* Prints the lease of path as shown by the daemon. */
static int lease_print(const char *path)
{
    char *v = attr_get(path);
    if (!v) {
        say_attr_err("cannot read the lease of", path, errno);
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", v);
    free(v);
    return CLI_EXIT_OK;
}

static int lease_acquire_run(const struct lease_args *a)
{
    char val[64];
    long long deadline = mono_ms() + a->wait_ms;
    unsigned seed = (unsigned)getpid() ^ (unsigned)mono_ms();

    if (a->ttl)
        snprintf(val, sizeof(val), "%s,ttl=%u", a->mode, a->ttl);
    else
        snprintf(val, sizeof(val), "%s", a->mode);
    for (;;) {
        if (setxattr(a->file, LEASE_XATTR, val, strlen(val), 0) == 0)
            return lease_print(a->file);
        if (!is_conflict(errno)) {
            say_attr_err("cannot lease", a->file, errno);
            return CLI_EXIT_FAIL;
        }
        long long left = deadline - mono_ms();
        if (left <= 0)
            break;
        long long nap = LEASE_RETRY_MIN_MS + rand_r(&seed) %
                        (LEASE_RETRY_MAX_MS - LEASE_RETRY_MIN_MS + 1);
        sleep_ms(nap < left ? nap : left);
    }
    char gave_up[64] = "";
    if (a->wait_ms > 0 && a->wait_ms % 1000)
        snprintf(gave_up, sizeof(gave_up), "; gave up after %lld.%03lld s",
                 a->wait_ms / 1000, a->wait_ms % 1000);
    else if (a->wait_ms > 0)
        snprintf(gave_up, sizeof(gave_up), "; gave up after %lld s",
                 a->wait_ms / 1000);
    say_conflict(a->file, gave_up);
    return CLI_EXIT_FAIL;
}

static int lease_release_run(const struct lease_args *a)
{
    if (removexattr(a->file, LEASE_XATTR) == 0) {
        printf("released the lease on %s\n", a->file);
        return CLI_EXIT_OK;
    }
    if (errno == ENODATA)
        cli_err("you hold no lease on %s", a->file);
    else
        say_attr_err("cannot release the lease on", a->file, errno);
    return CLI_EXIT_FAIL;
}

static int lease_run(int argc, char **argv)
{
    struct lease_args a;
    int ret = lease_args(argc, argv, &a);

    if (ret != CLI_EXIT_OK)
        return ret < 0 ? CLI_EXIT_OK : ret;
    if ((ret = check_lanefs(a.file)) != CLI_EXIT_OK)
        return ret;
    if (strcmp(a.sub, "acquire") == 0)
        return lease_acquire_run(&a);
    if (strcmp(a.sub, "release") == 0)
        return lease_release_run(&a);
    return lease_print(a.file);
}

/* ---- claim ------------------------------------------------------------ */

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The names of the regular files in dir (not following symlinks), sorted
 * by strcmp, in *names (*n of them). 0 or -errno. */
static int claim_list(const char *dir, char ***names, size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    DIR *d = opendir(dir);

    *names = NULL;
    *n = 0;
    if (!d)
        return -errno;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (de->d_type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                !S_ISREG(st.st_mode))
                continue;
        } else if (de->d_type != DT_REG) {
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **v = realloc(*names, cap * sizeof(*v));
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            *names = v;
        }
        if (!((*names)[*n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        (*n)++;
        errno = 0;
    }
    if (rc == 0 && errno)
        rc = -errno;
    closedir(d);
    if (rc == 0)
        qsort(*names, *n, sizeof(**names), cmp_name);
    return rc;
}

/* Tries a write lease on path unless somebody (this agent included) holds
 * one. 1 when granted, 0 when held or gone, or -errno. */
static int claim_try(const char *path, const char *val)
{
    char *v = attr_get(path);
    if (!v)
        return errno == ENOENT ? 0 : -errno;
    bool is_free = strcmp(v, "free") == 0;
    free(v);
    if (!is_free)
        return 0;
    if (setxattr(path, LEASE_XATTR, val, strlen(val), 0) == 0)
        return 1;
    if (is_conflict(errno) || errno == ENOENT)
        return 0;
    return -errno;
}

static int claim_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "ttl", required_argument, NULL, OPT_TTL },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *dir = NULL;
    char **names = NULL, val[32] = "write";
    size_t n = 0;
    unsigned ttl = 0;
    int c, ret;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (dir)
                return cli_usage_err("claim", "unexpected argument '%s'",
                                     optarg);
            dir = optarg;
            break;
        case OPT_TTL:
            if (ttl)
                return cli_usage_err("claim", "--ttl given twice");
            if (!parse_ttl(optarg, &ttl))
                return cli_usage_err("claim", "bad --ttl '%s': expected whole "
                                     "seconds from %d to %d", optarg,
                                     LEASE_TTL_LO, LEASE_TTL_HI);
            break;
        case 'h':
        case OPT_HELP:
            claim_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("claim", c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (dir)
            return cli_usage_err("claim", "unexpected argument '%s'",
                                 argv[optind]);
        dir = argv[optind];
    }
    if (!dir)
        return cli_usage_err("claim", "missing DIR (the directory of files "
                             "to claim)");
    if (!*dir)
        return cli_usage_err("claim", "bad DIR '': empty");
    if (ttl)
        snprintf(val, sizeof(val), "write,ttl=%u", ttl);
    if ((ret = check_lanefs(dir)) != CLI_EXIT_OK)
        return ret;
    int rc = claim_list(dir, &names, &n);
    if (rc < 0) {
        cli_err("cannot list %s: %s", dir, strerror(-rc));
        ret = CLI_EXIT_FAIL;
        goto out;
    }
    size_t dl = strlen(dir);
    const char *sep = dl && dir[dl - 1] == '/' ? "" : "/";
    ret = CLI_EXIT_FAIL;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s%s%s", dir, sep, names[i]) >=
            (int)sizeof(path))
            continue;
        rc = claim_try(path, val);
        if (rc == 1) {
            printf("%s\n", path);
            ret = CLI_EXIT_OK;
            goto out;
        }
        if (rc < 0) {
            say_attr_err("cannot lease", path, -rc);
            goto out;
        }
    }
    cli_err("no free file in %s", dir);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

/* ---- leases ----------------------------------------------------------- */

/* A copy of s with control characters and '\' as \ooo (one table cell). */
static char *escape(const char *s)
{
    char *out = malloc(strlen(s) * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            o += sprintf(o, "\\%03o", *p);
        else
            *o++ = (char)*p;
    }
    *o = '\0';
    return out;
}

static int cmp_lease(const void *x, const void *y)
{
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    const char *ka = ctl_str(a, "key"), *kb = ctl_str(b, "key");
    int c = strcmp(ka ? ka : "", kb ? kb : "");
    if (c)
        return c;
    const char *aa = ctl_str(a, "agent"), *ab = ctl_str(b, "agent");
    return strcmp(aa ? aa : "", ab ? ab : "");
}

/* Sorts the array list in place by key, then agent. 0 or -ENOMEM. */
static int sort_leases(cJSON *list)
{
    int n = cJSON_GetArraySize(list);
    if (n < 2)
        return 0;
    cJSON **v = malloc((size_t)n * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (int i = n - 1; i >= 0; i--)
        v[i] = cJSON_DetachItemFromArray(list, i);
    qsort(v, (size_t)n, sizeof(*v), cmp_lease);
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(list, v[i]);
    free(v);
    return 0;
}

static int leases_print_human(const cJSON *list)
{
    static const char *const head[] = { "KEY", "AGENT", "MODE", "EPOCH", "TTL" };
    const cJSON *l;
    struct tbl t;

    if (cJSON_GetArraySize(list) == 0) {
        printf("no leases\n");
        return CLI_EXIT_OK;
    }
    if (tbl_init(&t, 5, head) < 0)
        goto oom;
    cJSON_ArrayForEach(l, list) {
        char epoch[32], ttl[32];
        const char *key = ctl_str(l, "key"), *agent = ctl_str(l, "agent");
        const char *mode = ctl_str(l, "mode");
        double ms = ctl_num(l, "ms_left", 0);
        snprintf(epoch, sizeof(epoch), "%llu",
                 (unsigned long long)ctl_num(l, "epoch", 0));
        cli_fmt_duration(ttl, sizeof(ttl), ms > 0 ? ((long long)ms + 999) /
                                                    1000 : 0);
        char *ek = escape(key ? key : "?"), *ea = escape(agent ? agent : "?");
        const char *row[] = { ek, ea, mode ? mode : "?", epoch, ttl };
        int rc = ek && ea ? tbl_add(&t, row) : -ENOMEM;
        free(ek);
        free(ea);
        if (rc < 0) {
            tbl_free(&t);
            goto oom;
        }
    }
    tbl_print(&t, stdout);
    tbl_free(&t);
    return CLI_EXIT_OK;
oom:
    cli_err("out of memory");
    return CLI_EXIT_FAIL;
}

static int leases_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *arg = NULL;
    char *state = NULL;
    cJSON *req = NULL, *reply = NULL;
    struct ctl_err e = { .msg = "" };
    bool json = false;
    int c, ret;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (arg)
                return cli_usage_err("leases", "unexpected argument '%s'",
                                     optarg);
            arg = optarg;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
        case OPT_HELP:
            leases_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("leases", c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (arg)
            return cli_usage_err("leases", "unexpected argument '%s'",
                                 argv[optind]);
        arg = argv[optind];
    }
    if (!arg)
        return cli_usage_err("leases", "missing STATE (the state directory)");
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    if (!(req = ctl_request_new("leases"))) {
        cli_err("out of memory");
        goto out;
    }
    int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
    if (rc < 0) {
        ret = cli_ctl_fail(state, "leases", rc, &e);
        goto out;
    }
    cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "leases");
    if (!cJSON_IsArray(list)) {
        cli_err("leases: the daemon's reply has no \"leases\" list");
        goto out;
    }
    if (sort_leases(list) < 0) {
        cli_err("out of memory");
        goto out;
    }
    if (json) {
        cJSON_DeleteItemFromObjectCaseSensitive(reply, "v");
        cJSON_DeleteItemFromObjectCaseSensitive(reply, "ok");
        char *s = cJSON_Print(reply);
        if (!s) {
            cli_err("out of memory");
            goto out;
        }
        printf("%s\n", s);
        free(s);
        ret = CLI_EXIT_OK;
    } else {
        ret = leases_print_human(list);
    }
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    free(state);
    return ret;
}

const struct cli_cmd cli_cmd_lease = {
    .name = "lease",
    .summary = "acquire, release or show a lease on a file (in a sandbox)",
    .run = lease_run,
    .usage = lease_usage,
};

const struct cli_cmd cli_cmd_claim = {
    .name = "claim",
    .summary = "lease the first free file of a directory and print it",
    .run = claim_run,
    .usage = claim_usage,
};

const struct cli_cmd cli_cmd_leases = {
    .name = "leases",
    .summary = "list every lease of a volume",
    .run = leases_run,
    .usage = leases_usage,
};
