/* daemon.c - setting up an agent's layers and serving its mount.
 *
 * The lower is opened as a private, detached, read-only bind mount
 * (open_tree + mount_setattr) when the kernel allows it, so the kernel
 * itself refuses any write to the lower and no read updates its atimes;
 * otherwise it is opened plainly and every open uses O_NOATIME. */
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
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon.h"
#include "fs/ops.h"
#include "fs/ovl_i.h"

static void say(const char *fmt, ...)
{
    va_list ap;
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", gmtime_r(&now, &tm));
    fprintf(stderr, "lanefsd %s [%d] ", ts, (int)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *s = buf + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = c;
        if (!c)
            return 0;
    }
}

static int open_dir(const char *state, const char *agent, const char *leaf)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/agents/%s/%s", state, agent, leaf);
    int rc = mkdir_p(p, 0700);
    if (rc < 0)
        return rc;
    int fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* The lower as a read-only, noatime, detached mount; plain fd if refused. */
static int open_lower(const char *lower)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, lower,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd >= 0) {
        struct mount_attr attr = {
            .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                        MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME,
            .attr_clr = MOUNT_ATTR__ATIME,
        };
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
                    &attr, sizeof(attr)) == 0)
            return fd;
        say("lower: read-only bind refused (%s); using O_NOATIME opens",
            strerror(errno));
        close(fd);
    }
    fd = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Makes the view's directory rel exist (for parents of a nested temp
 * path): nothing to do when the lower or upper has it, else mkdir in the
 * upper. */
static int ensure_view_dir(struct ovl_fs *fs, const char *rel, void *arg)
{
    struct ovl_ent e;
    char prel[PATH_MAX];
    (void)arg;
    int rc = ovl_resolve_path(fs, rel, &e);
    if (rc == 0)
        return S_ISDIR(e.st.st_mode) ? 0 : -ENOTDIR;
    if (rc != -ENOENT)
        return rc;
    rc = ovl_make_parents(fs, OVL_UPPER, rel);
    if (rc < 0)
        return rc;
    const char *name = ovl_split(rel, prel, sizeof(prel));
    int dfd = layer_dir(fs, OVL_UPPER, prel);
    if (dfd < 0)
        return dfd;
    rc = e.upper_whiteout ? -EEXIST : 0;   /* a removed dir stays removed */
    if (rc == 0 && mkdirat(dfd, name, 0755) < 0)
        rc = -errno;
    close(dfd);
    return rc;
}

/* Temp roots exist in every session, empty, world-writable and sticky like
 * /tmp, whatever the lower holds at those paths. */
static int make_temp_roots(struct ovl_fs *fs)
{
    for (size_t i = 0; i < fs->cfg.n_temp_paths; i++) {
        const char *rel = fs->cfg.temp_paths[i];
        char prel[PATH_MAX];
        const char *name = ovl_split(rel, prel, sizeof(prel));
        /* Its parents must be directories of the view to be reachable. */
        int rc = ovl_each_prefix(fs, prel, ensure_view_dir, NULL);
        if (rc < 0) {
            say("temp path %s is unreachable (%s); skipped", rel, strerror(-rc));
            continue;
        }
        rc = ovl_make_parents(fs, OVL_TEMP, rel);
        if (rc < 0)
            return rc;
        int dfd = layer_dir(fs, OVL_TEMP, prel);
        if (dfd < 0)
            return dfd;
        if (mkdirat(dfd, name, 01777) < 0 && errno != EEXIST)
            rc = -errno;
        close(dfd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void fs_close(struct ovl_fs *fs)
{
    int *fds[] = { &fs->lower_fd, &fs->upper_fd, &fs->temp_fd, &fs->work_fd,
                   &fs->index_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    if (fs->root)
        node_destroy(fs);
    vol_config_free(&fs->cfg);
    pthread_rwlock_destroy(&fs->ns_lock);
    pthread_mutex_destroy(&fs->node_lock);
    pthread_mutex_destroy(&fs->handle_lock);
}

/* A new upper root takes the lower root's owner, mode and times, as a
 * copy-up would, and is marked with its origin so this happens once. */
static int adopt_lower_root(struct ovl_fs *fs, const struct stat *lst)
{
    char p[64];
    uint64_t origin;
    layer_fdpath(p, sizeof(p), fs->upper_fd, ".");
    if (lgetxattr(p, OVL_XATTR_ORIGIN, &origin, sizeof(origin)) == sizeof(origin))
        return 0;
    struct timespec ts[2] = { lst->st_atim, lst->st_mtim };
    origin = lst->st_ino;
    if (chown(p, lst->st_uid, lst->st_gid) < 0 ||
        chmod(p, lst->st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID)) < 0 ||
        utimensat(AT_FDCWD, p, ts, 0) < 0 ||
        lsetxattr(p, OVL_XATTR_ORIGIN, &origin, sizeof(origin), 0) < 0)
        return -errno;
    return 0;
}

/* Opens the layers of o->agent and starts the session with an empty temp
 * layer and work dir. */
static int fs_open(struct ovl_fs *fs, const struct lanefsd_opts *o)
{
    char err[256];
    struct stat st;
    int rc;

    memset(fs, 0, sizeof(*fs));
    fs->lower_fd = fs->upper_fd = fs->temp_fd = fs->work_fd = fs->index_fd = -1;
    pthread_rwlock_init(&fs->ns_lock, NULL);
    pthread_mutex_init(&fs->node_lock, NULL);
    pthread_mutex_init(&fs->handle_lock, NULL);
    /* Only this daemon changes this agent's view, and every change goes
     * through the agent's own kernel mount, which updates its caches: so
     * entries and attributes may be cached long. */
    fs->timeout = 3600.0;
    const char *pause = getenv("LANEFS_FAULT_COPYUP_PAUSE_MS");
    if (pause)
        fs->copyup_pause_ms = (unsigned)strtoul(pause, NULL, 10);

    rc = vol_config_load(o->state_dir, &fs->cfg, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "lanefs: %s\n", err);
        return rc;
    }
    if ((rc = fs->lower_fd = open_lower(fs->cfg.lower)) < 0) {
        fprintf(stderr, "lanefs: cannot open lower %s: %s\n", fs->cfg.lower,
                strerror(-rc));
        return rc;
    }
    if ((rc = fs->upper_fd = open_dir(o->state_dir, o->agent, "upper")) < 0 ||
        (rc = fs->temp_fd = open_dir(o->state_dir, o->agent, "temp")) < 0 ||
        (rc = fs->work_fd = open_dir(o->state_dir, o->agent, "work")) < 0 ||
        (rc = fs->index_fd = open_dir(o->state_dir, o->agent, "index")) < 0) {
        fprintf(stderr, "lanefs: cannot create the layers of agent %s in %s: %s\n",
                o->agent, o->state_dir, strerror(-rc));
        return rc;
    }
    /* Leftovers of a session that crashed: temp files and half copies. */
    if ((rc = layer_empty_dir(fs->temp_fd)) < 0 ||
        (rc = layer_empty_dir(fs->work_fd)) < 0 ||
        (rc = make_temp_roots(fs)) < 0) {
        fprintf(stderr, "lanefs: cannot reset the temp layer of %s: %s\n",
                o->agent, strerror(-rc));
        return rc;
    }
    if (fstat(fs->lower_fd, &st) < 0)
        return -errno;
    fs->lower_dev = st.st_dev;
    if ((rc = adopt_lower_root(fs, &st)) < 0) {
        fprintf(stderr, "lanefs: cannot prepare the upper of %s: %s\n",
                o->agent, strerror(-rc));
        return rc;
    }
    return node_init(fs, layer_ino(OVL_LOWER, st.st_ino));
}

/* Appends s to the option string with ',' and '\' escaped for fuse_opt. */
static void opt_escaped(char *buf, size_t len, const char *s)
{
    size_t u = strlen(buf);
    for (; *s && u + 2 < len; s++) {
        if (*s == ',' || *s == '\\')
            buf[u++] = '\\';
        buf[u++] = *s;
    }
    buf[u] = '\0';
}

static int write_pid(const struct lanefsd_opts *o)
{
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    snprintf(p, sizeof(p), "%s/agents/%s/daemon.pid", o->state_dir, o->agent);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fprintf(f, "%d\n", (int)getpid());
    if (fclose(f) != 0 || rename(tmp, p) < 0)
        return -errno;
    return 0;
}

static void remove_pid(const struct lanefsd_opts *o)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/agents/%s/daemon.pid", o->state_dir, o->agent);
    unlink(p);
}

/* Forks the serving process off the mounted session. The parent gets 1 once
 * the child has written its pid file and detached (so a caller that returns
 * finds the agent registered), or -EIO when the child failed. The child gets
 * 0 with stdio on /dev/null and the log. */
static int detach(const struct lanefsd_opts *o)
{
    int p[2];
    char c = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int rc = -errno;
        close(p[0]);
        close(p[1]);
        return rc;
    }
    if (pid > 0) {
        ssize_t n;
        close(p[1]);
        do n = read(p[0], &c, 1); while (n < 0 && errno == EINTR);
        close(p[0]);
        return (n == 1 && c == 'R') ? 1 : -EIO;
    }
    close(p[0]);
    setsid();
    if (chdir("/") < 0) { /* nothing below uses the cwd */ }
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    char logp[PATH_MAX];
    snprintf(logp, sizeof(logp), "%s/lanefs.log", o->state_dir);
    int lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (nul >= 0) {
        dup2(nul, STDIN_FILENO);
        dup2(nul, STDOUT_FILENO);
        close(nul);
    }
    int rc = write_pid(o);
    if (rc < 0)
        fprintf(stderr, "lanefs: cannot write the pid file: %s\n", strerror(-rc));
    else if (write(p[1], "R", 1) != 1)
        rc = -EIO;
    close(p[1]);
    if (lfd >= 0) {
        dup2(lfd, STDERR_FILENO);
        close(lfd);
    }
    return rc;
}

int lanefsd_run(const struct lanefsd_opts *o)
{
    static struct ovl_fs fs;
    char opts[3 * PATH_MAX];
    struct fuse_session *se = NULL;
    bool pid_written = false;
    int rc;

    umask(0);   /* modes come from the kernel with the caller's umask applied */
    rc = fs_open(&fs, o);
    if (rc < 0)
        goto out;

    snprintf(opts, sizeof(opts),
             "allow_other,default_permissions,nosuid,nodev,subtype=lanefs,"
             "fsname=lanefs@%s:", o->agent);
    opt_escaped(opts, sizeof(opts), o->state_dir);
    char *argv[] = { "lanefs", "-o", opts, o->debug ? "-d" : NULL, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);

    se = fuse_session_new(&args, &ovl_ops, sizeof(ovl_ops), &fs);
    fuse_opt_free_args(&args);
    if (!se) {
        fprintf(stderr, "lanefs: cannot create the FUSE session\n");
        rc = -EIO;
        goto out;
    }
    fs.se = se;
    if (fuse_set_signal_handlers(se) != 0) {
        rc = -EIO;
        goto out_destroy;
    }
    if (fuse_session_mount(se, o->mountpoint) != 0) {
        fprintf(stderr, "lanefs: cannot mount at %s (is /dev/fuse there, and "
                "are we root?)\n", o->mountpoint);
        rc = -EIO;
        goto out_signals;
    }
    if (!o->foreground && !o->debug) {
        rc = detach(o);
        if (rc == 1)
            return 1;           /* parent: the daemon serves the mount */
        if (rc < 0)
            goto out_unmount;
    } else if ((rc = write_pid(o)) < 0) {
        fprintf(stderr, "lanefs: cannot write the pid file: %s\n", strerror(-rc));
        goto out_unmount;
    }
    pid_written = true;
    say("serving agent %s at %s", o->agent, o->mountpoint);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (!lc) {
        rc = -ENOMEM;
        goto out_unmount;
    }
    fuse_loop_cfg_set_clone_fd(lc, 0);
    fuse_loop_cfg_set_max_threads(lc, 16);
    fuse_loop_cfg_set_idle_threads(lc, 4);
    rc = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
    rc = rc > 0 ? 0 : rc;   /* a positive value is the signal that ended it */
    say("session of agent %s ended", o->agent);
out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_destroy:
    fuse_session_destroy(se);
out:
    /* The temp layer lives for one session only. */
    if (fs.temp_fd >= 0)
        layer_empty_dir(fs.temp_fd);
    if (fs.work_fd >= 0)
        layer_empty_dir(fs.work_fd);
    fs_close(&fs);
    /* Last: whoever waits for this agent's daemon may now reuse its layers. */
    if (pid_written)
        remove_pid(o);
    return rc;
}
