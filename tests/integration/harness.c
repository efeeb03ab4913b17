/* harness.c - per-test temp root, teardown that always cleans up, and the
 * reaper that cleans up when the test process dies before teardown. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct h_world H = { .reaper_fd = -1 };

/* ---- string arena ------------------------------------------------------ */

/* Strings handed out by h_str live until teardown; tests stay free of
 * buffer bookkeeping and nothing leaks under ASan. */
static char **arena;
static size_t arena_n, arena_cap;

char *h_str(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0, "out of memory");
    if (arena_n == arena_cap) {
        size_t cap = arena_cap ? arena_cap * 2 : 64;
        char **a = realloc(arena, cap * sizeof *a);
        cr_assert(a != NULL, "out of memory");
        arena = a;
        arena_cap = cap;
    }
    arena[arena_n++] = s;
    return s;
}

static void arena_free(void)
{
    for (size_t i = 0; i < arena_n; i++)
        free(arena[i]);
    free(arena);
    arena = NULL;
    arena_n = arena_cap = 0;
}

const char *h_errname(int e)
{
    if (e == 0)
        return "0";
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* ---- mountinfo ----------------------------------------------------------- */

/* Decodes the \ooo escapes mountinfo uses for blanks in paths. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; ) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] && r[3]) {
            *w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Calls fn(mountpoint, fstype, opts, arg) for each mount, opts being the
 * per-mount options, a blank, and the superblock options; stops when fn
 * returns true. Safe to call from the reaper (no assertions). */
static void mounts_each(bool (*fn)(const char *, const char *, const char *, void *),
                        void *arg)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent maj:min root mountpoint opts [optional...] - fstype src super */
        char *save = NULL, *tok, *mp = NULL, *opts = NULL, *fstype = NULL, *super = "";
        int i = 0, after = -1;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save), i++) {
            if (i == 4)
                mp = tok;
            else if (i == 5)
                opts = tok;
            else if (after < 0 && i > 5 && strcmp(tok, "-") == 0)
                after = i;
            else if (after >= 0 && i == after + 1)
                fstype = tok;
            else if (after >= 0 && i == after + 3)
                super = tok;
        }
        if (!mp || !fstype)
            continue;
        unescape(mp);
        char all[1024];
        snprintf(all, sizeof all, "%s %s", opts, super);
        if (fn(mp, fstype, all, arg))
            break;
    }
    free(line);
    fclose(f);
}

struct find_arg { const char *path; char fstype[64]; char opts[1024]; };

static bool find_cb(const char *mp, const char *fstype, const char *opts, void *a)
{
    struct find_arg *fa = a;
    if (strcmp(mp, fa->path) != 0)
        return false;
    /* Keep scanning: the last entry for a path is the one on top. */
    snprintf(fa->fstype, sizeof fa->fstype, "%s", fstype);
    snprintf(fa->opts, sizeof fa->opts, "%s", opts);
    return false;
}

const char *h_mount_fstype(const char *path)
{
    struct find_arg fa = { .path = path };
    mounts_each(find_cb, &fa);
    return h_str("%s", fa.fstype);
}

const char *h_mount_opts(const char *path)
{
    struct find_arg fa = { .path = path };
    mounts_each(find_cb, &fa);
    return h_str("%s", fa.opts);
}

bool h_wait_mount(const char *path, bool want, int timeout_ms)
{
    for (int waited = 0; ; waited += 20) {
        struct find_arg fa = { .path = path };
        mounts_each(find_cb, &fa);
        if ((strcmp(fa.fstype, "fuse.lanefs") == 0) == want)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep(20 * 1000);
    }
}

/* ---- cleanup shared by teardown and reaper --------------------------------- */

struct under_arg { const char *prefix; size_t len; char found[PATH_MAX]; };

static bool under_cb(const char *mp, const char *fstype, const char *opts, void *a)
{
    (void)fstype;
    (void)opts;
    struct under_arg *ua = a;
    if (strncmp(mp, ua->prefix, ua->len) == 0 && (mp[ua->len] == '/' || mp[ua->len] == '\0')) {
        snprintf(ua->found, sizeof ua->found, "%s", mp);
        return true;
    }
    return false;
}

/* Lazily detaches every mount below root (stacked mounts included). */
static void detach_all_under(const char *root)
{
    for (int guard = 0; guard < 64; guard++) {
        struct under_arg ua = { .prefix = root, .len = strlen(root) };
        mounts_each(under_cb, &ua);
        if (!ua.found[0])
            return;
        if (umount2(ua.found, MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
            return;
    }
}

/* True when pid runs the lanefs binary, so a recycled pid is never killed. */
static bool is_lanefs_pid(pid_t pid)
{
    char exe[PATH_MAX], want[PATH_MAX];
    char link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
    ssize_t n = readlink(link, exe, sizeof exe - 1);
    if (n <= 0 || !H.lanefs || !realpath(H.lanefs, want))
        return false;
    exe[n] = '\0';
    return strcmp(exe, want) == 0;
}

/* Kills (SIGKILL) the daemons named by STATE/agents/<any>/daemon.pid of
 * every state dir directly below root. */
static void kill_daemons_under(const char *root)
{
    DIR *top = opendir(root);
    if (!top)
        return;
    struct dirent *t;
    while ((t = readdir(top)) != NULL) {
        if (t->d_name[0] == '.')
            continue;
        char agents[PATH_MAX];
        snprintf(agents, sizeof agents, "%s/%s/agents", root, t->d_name);
        DIR *ad = opendir(agents);
        if (!ad)
            continue;
        struct dirent *a;
        while ((a = readdir(ad)) != NULL) {
            if (a->d_name[0] == '.')
                continue;
            char pidf[PATH_MAX + 300], buf[32] = "";
            snprintf(pidf, sizeof pidf, "%s/%s/daemon.pid", agents, a->d_name);
            int fd = open(pidf, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t n = read(fd, buf, sizeof buf - 1);
            close(fd);
            pid_t pid = n > 0 ? (pid_t)atoi(buf) : 0;
            if (pid > 1 && pid != getpid() && is_lanefs_pid(pid))
                kill(pid, SIGKILL);
        }
        closedir(ad);
    }
    closedir(top);
}

/* Kills (SIGKILL) the volume daemons named by STATE/daemon.pid of every
 * state dir directly below root. */
static void kill_volume_daemons_under(const char *root)
{
    DIR *top = opendir(root);
    if (!top)
        return;
    struct dirent *t;
    while ((t = readdir(top)) != NULL) {
        if (t->d_name[0] == '.')
            continue;
        char pidf[PATH_MAX], buf[32] = "";
        snprintf(pidf, sizeof pidf, "%s/%s/daemon.pid", root, t->d_name);
        int fd = open(pidf, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        pid_t pid = n > 0 ? (pid_t)atoi(buf) : 0;
        if (pid > 1 && pid != getpid() && is_lanefs_pid(pid))
            kill(pid, SIGKILL);
    }
    closedir(top);
}

/* What teardown and reaper both do once graceful unmounting is over. */
static void cleanup_root(const char *root)
{
    detach_all_under(root);
    kill_daemons_under(root);
    kill_volume_daemons_under(root);
    /* A killed daemon can leave its mount half-dead; detach again. */
    detach_all_under(root);
    h_rm_rf(root);
}

/* ---- reaper ------------------------------------------------------------- */

/* A child that outlives the test process: it blocks on a pipe whose write
 * end only the test process holds. Teardown writes one byte ("all clean");
 * EOF without it means the test died, and the reaper cleans up instead. */
static void start_reaper(void)
{
    int p[2];
    cr_assert(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Own session: survives Criterion killing the test's process group. */
        setsid();
        close(p[1]);
        for (int fd = 0; fd < 1024; fd++)
            if (fd != p[0])
                close(fd);
        char c;
        ssize_t n;
        do
            n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        if (n != 1)
            cleanup_root(H.root);
        _exit(0);
    }
    close(p[0]);
    H.reaper_fd = p[1];
    H.reaper_pid = pid;
}

/* ---- fixtures ----------------------------------------------------------- */

void h_setup(void)
{
    const char *bin = getenv("LANEFS");
    cr_assert(bin && bin[0] == '/', "LANEFS must hold the absolute path of the lanefs binary");
    cr_assert(access(bin, X_OK) == 0, "LANEFS=%s: %s", bin, strerror(errno));
    H.lanefs = h_str("%s", bin);

    /* The runner script gives each run its own base so its last-resort
     * cleanup never touches another run's mounts. */
    const char *base = getenv("LANEFS_IT_TMP");
    if (!base || !*base)
        base = "/tmp";
    char *tmpl = h_str("%s/lanefs-it.XXXXXX", base);
    cr_assert(mkdtemp(tmpl) != NULL, "mkdtemp %s: %s", tmpl, strerror(errno));
    char real[PATH_MAX];
    cr_assert(realpath(tmpl, real) != NULL);
    H.root = h_str("%s", real);
    H.lower = h_str("%s/lower", H.root);
    H.state = h_str("%s/state", H.root);
    h_mkdir_p(H.lower, 0755);
    h_mkdir_p(h_str("%s/mnt", H.root), 0755);
    h_mkdir_p(h_str("%s/log", H.root), 0755);
    start_reaper();
    /* Deterministic modes for everything the tests create. */
    umask(022);
}

void h_teardown(void)
{
    if (!H.root)
        return;
    /* Leave the mount points first: a cwd inside one would keep it busy.
     * "/" always exists, so the result needs no handling. */
    int rc = chdir("/");
    (void)rc;
    for (int i = 0; i < H.n_mounts; i++) {
        struct h_mount *m = &H.mounts[i];
        if (strcmp(h_mount_fstype(m->mnt), "fuse.lanefs") != 0)
            continue;
        struct h_res r;
        h_lanefs(&r, NULL, "umount", m->mnt, (char *)NULL);
        if (!h_wait_mount(m->mnt, false, 2000))
            umount2(m->mnt, MNT_DETACH);
    }
    cleanup_root(H.root);
    if (H.reaper_fd >= 0) {
        ssize_t n = write(H.reaper_fd, "x", 1);
        (void)n;
        close(H.reaper_fd);
        H.reaper_fd = -1;
        waitpid(H.reaper_pid, NULL, 0);
    }
    H.root = NULL;
    H.n_mounts = 0;
    arena_free();
}
