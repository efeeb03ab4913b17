/* daemon.c - the volume daemon: one process, one event loop and one worker
 * pool for every agent mount of a volume (see daemon_i.h, docs/control.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon.h"
#include "fs/daemon_i.h"
#include "fs/log.h"
#include "fs/ops.h"
#include "fs/prefetch.h"
#include "fs/recover.h"
#include "fs/rengine.h"
#include "fs/view.h"
#include "journal/journal.h"

#define DEFAULT_WORKERS 8

static int read_next_session(struct daemon *d)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/next_session", d->vol.state_dir);
    d->next_session = 1;
    FILE *f = fopen(p, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    unsigned long long v;
    if (fscanf(f, "%llu", &v) == 1 && v > 0)
        d->next_session = v;
    fclose(f);
    return 0;
}

static int take_lock(struct daemon *d)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/daemon.lock", d->vol.state_dir);
    d->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        return -errno;
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -EBUSY : -errno;
    return 0;
}

static void write_daemon_pid(struct daemon *d)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/daemon.pid", d->vol.state_dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        dprintf(fd, "%d\n", (int)getpid());
        close(fd);
    }
}

static void remove_runtime_files(struct daemon *d)
{
    const char *names[] = { "daemon.pid", "control.sock" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", d->vol.state_dir, names[i]);
        unlink(p);
    }
}

/* Each mount holds a /dev/fuse fd and each open file one more: take all
 * the descriptors the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        log_say("open-file limit: %llu", (unsigned long long)rl.rlim_cur);
}

/* Event fds and the signals the loop handles (blocked in every thread). */
static int setup_events(struct daemon *d)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -EINVAL;
    signal(SIGPIPE, SIG_IGN);
    d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    d->epfd = epoll_create1(EPOLL_CLOEXEC);
    d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->reap_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->sig_fd < 0 || d->epfd < 0 || d->wake_fd < 0 || d->reap_fd < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &d->sig_fd };
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->sig_fd, &ev) < 0)
        return -errno;
    ev.data.ptr = &d->wake_fd;
    if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_fd, &ev) < 0)
        return -errno;
    return 0;
}

static void close_fds(struct daemon *d)
{
    int *fds[] = { &d->sig_fd, &d->epfd, &d->wake_fd, &d->reap_fd, &d->ctl_fd,
                   &d->lock_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

/* Forks the serving process. The parent waits for the child's word: "R"
 * (ready) or "E" and a message; it returns 1 or -EIO. The child gets 0,
 * detached, with stdio on /dev/null and stderr on STATE/lanefs.log; it
 * must call detach_done. */
static int detach(struct daemon *d, int *ready_fd)
{
    int p[2];
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
        char msg[600];
        ssize_t n, len = 0;
        close(p[1]);
        while ((n = read(p[0], msg + len, sizeof(msg) - 1 - (size_t)len)) > 0 ||
               (n < 0 && errno == EINTR))
            len += n > 0 ? n : 0;
        close(p[0]);
        msg[len] = '\0';
        if (len > 0 && msg[0] == 'R')
            return 1;
        fprintf(stderr, "lanefs: %s\n", len > 1 ? msg + 1 : "the daemon failed to start");
        return -EIO;
    }
    close(p[0]);
    setsid();
    if (chdir("/") < 0) { /* nothing below uses the cwd */ }
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, STDIN_FILENO);
        dup2(nul, STDOUT_FILENO);
        close(nul);
    }
    char logp[PATH_MAX];
    snprintf(logp, sizeof(logp), "%s/lanefs.log", d->vol.state_dir);
    int lfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd >= 0) {
        dup2(lfd, STDERR_FILENO);
        close(lfd);
    }
    *ready_fd = p[1];
    return 0;
}

static void detach_done(int *ready_fd, const char *err)
{
    if (*ready_fd < 0)
        return;
    char msg[600];
    int n = err ? snprintf(msg, sizeof(msg), "E%s", err) : snprintf(msg, sizeof(msg), "R");
    if (write(*ready_fd, msg, (size_t)n) < 0) { /* the parent is gone */ }
    close(*ready_fd);
    *ready_fd = -1;
}

int lanefsd_serve(const struct lanefsd_serve_opts *o)
{
    static struct daemon d;
    char err[512] = "";
    int rc, ready_fd = -1;
    bool threads = false;

    memset(&d, 0, sizeof(d));
    d.lock_fd = d.epfd = d.sess_epfd = d.exit_fd = d.sig_fd = d.wake_fd = d.reap_fd = d.ctl_fd = -1;
    pthread_mutex_init(&d.lock, NULL);
    d.started = time(NULL);
    d.auto_exit = o->agent != NULL;
    d.nworkers = DEFAULT_WORKERS;
    const char *w = getenv("LANEFS_WORKERS");
    if (w && atoi(w) > 0 && atoi(w) <= 256)
        d.nworkers = (unsigned)atoi(w);
    umask(0);   /* modes come from the kernel with the caller's umask applied */

    rc = volume_open(&d.vol, o->state_dir, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "lanefs: %s\n", err);
        return rc;
    }
    rc = take_lock(&d);
    if (rc < 0) {
        if (rc != -EBUSY)
            fprintf(stderr, "lanefs: cannot lock %s/daemon.lock: %s\n",
                    o->state_dir, strerror(-rc));
        goto out;
    }
    /* What a daemon that died left behind goes first. */
    unsigned n_recovered = 0;
    rc = lanefsd_recover(d.vol.state_dir, &n_recovered);
    if (n_recovered)
        fprintf(stderr, "lanefs: recovered %u session(s) of a daemon that died\n",
                n_recovered);
    if (rc < 0)
        fprintf(stderr, "lanefs: recovery of %s was incomplete: %s\n",
                o->state_dir, strerror(-rc));
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/sessions", o->state_dir);
    if ((mkdir(p, 0700) < 0 && errno != EEXIST) ||
        (rc = read_next_session(&d)) < 0 || (rc = ctl_listen(&d)) < 0) {
        rc = rc < 0 ? rc : -errno;
        fprintf(stderr, "lanefs: cannot set up %s: %s\n", o->state_dir, strerror(-rc));
        goto out;
    }
    if (!o->foreground && !o->debug) {
        rc = detach(&d, &ready_fd);
        if (rc != 0) {
            /* The parent: the child owns the lock, socket and mounts now. */
            close_fds(&d);
            volume_close(&d.vol);
            return rc;
        }
    }
    write_daemon_pid(&d);
    raise_fd_limit();

    /* Signals are blocked (for the signalfd) before any thread starts, so
     * every thread inherits the mask. */
    if ((rc = setup_events(&d)) < 0) {
        snprintf(err, sizeof(err), "cannot start the daemon: %s", strerror(-rc));
        goto out_threads;
    }
    /* The journal: every session, namespace change, lease and leak. A
     * journal that cannot be opened is logged and the volume served
     * without one, rather than not at all. */
    rc = d.vol.cfg.no_journal ? 0 : journal_open(d.vol.state_dir, d.vol.cfg.journal_max,
                                                 &d.vol.journal);
    if (rc < 0) {
        log_say("cannot open the journal %s/%s: %s; serving without it",
                d.vol.state_dir, JOURNAL_DB_NAME, strerror(-rc));
        d.vol.journal = NULL;
    }
    /* The read engine, unless LANEFS_READ_ENGINE=off (reads then go
     * straight to the layer from the worker). */
    const char *re = getenv("LANEFS_READ_ENGINE");
    if (!(re && !strcmp(re, "off")) && (rc = rengine_start(&d.vol.rengine, 32)) < 0) {
        log_say("cannot start the read engine: %s; reading directly", strerror(-rc));
        d.vol.rengine = NULL;
    }
    if (d.vol.rengine && d.vol.cfg.volume_read_rate)
        rengine_set_volume_rate(d.vol.rengine, d.vol.cfg.volume_read_rate);
    if (d.vol.rengine && d.vol.cfg.no_read_guard)
        rengine_set_guard(d.vol.rengine, false);
    /* Lower directories warmed ahead of a walk (prefetch.h), unless
     * LANEFS_PREFETCH=off; without it, walks are only slower. */
    const char *pf = getenv("LANEFS_PREFETCH");
    if (!(pf && !strcmp(pf, "off")) &&
        (rc = prefetch_start(&d.vol.prefetch, d.vol.lower_fd)) < 0) {
        log_say("cannot start the lower prefetch: %s; serving without it", strerror(-rc));
        d.vol.prefetch = NULL;
    }
    if ((threads = true, rc = loop_start_workers(&d)) < 0) {
        snprintf(err, sizeof(err), "cannot start the daemon: %s", strerror(-rc));
        goto out_threads;
    }
    /* The first mount goes before the control socket serves anyone: a
     * mount asked for meanwhile waits in the socket's backlog. */
    if (o->agent) {
        struct sess_opts so = {
            .agent = o->agent, .mountpoint = o->mountpoint, .ephemeral = o->ephemeral,
            .quota_bytes = o->quota_bytes, .quota_inodes = o->quota_inodes,
            .read = o->read,
        };
        struct session *s;
        rc = sess_start(&d, &so, &s, err, sizeof(err));
        if (rc < 0) {
            pthread_mutex_lock(&d.lock);
            d.stopping = true;
            pthread_mutex_unlock(&d.lock);
            goto out_threads;
        }
    }
    if ((rc = ctl_start(&d)) < 0) {
        snprintf(err, sizeof(err), "cannot start the control thread: %s", strerror(-rc));
        pthread_mutex_lock(&d.lock);
        d.stopping = true;
        pthread_mutex_unlock(&d.lock);
        goto out_threads;
    }
    d.ctl_started = true;
    log_say("serving volume %s with %u workers", d.vol.state_dir, d.nworkers);
    detach_done(&ready_fd, NULL);
    rc = loop_run(&d);
    log_say("volume %s: daemon exits", d.vol.state_dir);
out_threads:
    if (err[0]) {
        if (ready_fd < 0)
            fprintf(stderr, "lanefs: %s\n", err);
        detach_done(&ready_fd, err);
    }
    if (threads) {
        pthread_mutex_lock(&d.lock);
        d.stopping = true;
        pthread_mutex_unlock(&d.lock);
        if (d.ctl_started)
            ctl_join(&d);
        loop_join_workers(&d);
    }
    rengine_stop(d.vol.rengine);     /* every agent is gone by now */
    d.vol.rengine = NULL;
    prefetch_stop(d.vol.prefetch);
    d.vol.prefetch = NULL;
    journal_close(d.vol.journal);    /* after every session has ended */
    d.vol.journal = NULL;
    remove_runtime_files(&d);
out:
    close_fds(&d);
    volume_close(&d.vol);
    return rc;
}
