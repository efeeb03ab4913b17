/* harness_cmd.c - running the lanefs CLI with a deadline, and the volume /
 * mount wrappers built on it. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64

/* Reads at most cap-1 bytes of path into buf. */
static void slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fd);
}

static int run_argv(struct h_res *r, char *const *env_extra, const char **args)
{
    const char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = H.lanefs;
    for (int i = 0; args[i]; i++) {
        cr_assert(argc < MAX_ARGS, "too many arguments");
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;

    /* Extra variables go first: getenv() returns the first match. */
    size_t n_env = 0, n_extra = 0;
    while (environ[n_env])
        n_env++;
    while (env_extra && env_extra[n_extra])
        n_extra++;
    char **envp = calloc(n_env + n_extra + 1, sizeof *envp);
    cr_assert(envp != NULL);
    for (size_t i = 0; i < n_extra; i++)
        envp[i] = env_extra[i];
    for (size_t i = 0; i < n_env; i++)
        envp[n_extra + i] = environ[i];

    /* Output goes to files, not pipes: a daemon forked by `lanefs mount`
     * inherits them and would keep a pipe open for as long as it runs. */
    int seq = H.n_cmds++;
    char *outp = h_str("%s/log/%03d.out", H.root, seq);
    char *errp = h_str("%s/log/%03d.err", H.root, seq);
    int ofd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cr_assert(ofd >= 0 && efd >= 0 && nfd >= 0, "log files: %s", strerror(errno));

    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Own process group, so a timeout kills everything it started. */
        setpgid(0, 0);
        dup2(nfd, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        /* No test-runner descriptors may leak into a long-lived daemon. */
        close_range(3, ~0U, 0);
        execve(argv[0], (char *const *)argv, envp);
        _exit(127);
    }
    close(ofd);
    close(efd);
    close(nfd);
    free(envp);

    int status = 0;
    r->code = -1;
    for (int waited = 0; ; waited += 10) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            r->code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        if (w < 0 && errno != EINTR)
            break;
        if (waited >= H_CMD_TIMEOUT_MS) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(10 * 1000);
    }
    slurp(outp, r->out, sizeof r->out);
    slurp(errp, r->err, sizeof r->err);
    return r->code;
}

int h_lanefs(struct h_res *r, char *const *env_extra, ...)
{
    const char *args[MAX_ARGS + 1];
    int n = 0;
    va_list ap;
    va_start(ap, env_extra);
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL) {
        cr_assert(n < MAX_ARGS, "too many arguments");
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    return run_argv(r, env_extra, args);
}

void h_init(const char *first_extra, ...)
{
    const char *args[MAX_ARGS + 1] = { "init", H.state, "--lower", H.lower };
    int n = 4;
    va_list ap;
    va_start(ap, first_extra);
    for (const char *a = first_extra; a; a = va_arg(ap, const char *)) {
        cr_assert(n < MAX_ARGS, "too many arguments");
        args[n++] = a;
    }
    va_end(ap);
    args[n] = NULL;
    struct h_res r;
    run_argv(&r, NULL, args);
    cr_assert_eq(r.code, 0, "lanefs init failed (exit %d): %s", r.code, r.err);
}

const char *h_mnt(const char *agent)
{
    return h_str("%s/mnt/%s", H.root, agent);
}

char *h_agent_path(const char *agent, const char *sub)
{
    return h_str("%s/agents/%s/%s", H.state, agent, sub);
}

static struct h_mount *slot_of(const char *agent, bool create)
{
    for (int i = 0; i < H.n_mounts; i++)
        if (strcmp(H.mounts[i].agent, agent) == 0)
            return &H.mounts[i];
    if (!create)
        return NULL;
    cr_assert(H.n_mounts < H_MAX_MOUNTS, "too many mounts in one test");
    struct h_mount *m = &H.mounts[H.n_mounts++];
    snprintf(m->agent, sizeof m->agent, "%s", agent);
    m->mnt = (char *)h_mnt(agent);
    m->live = false;
    return m;
}

const char *h_mount_env(const char *agent, char *const *env_extra)
{
    struct h_mount *m = slot_of(agent, true);
    h_mkdir_p(m->mnt, 0755);
    struct h_res r;
    /* Registered before running, so teardown cleans up even a mount that
     * the command left behind while reporting failure. */
    h_lanefs(&r, env_extra, "mount", H.state, "--agent", agent, m->mnt, (char *)NULL);
    cr_assert_eq(r.code, 0, "lanefs mount --agent %s failed (exit %d): %s",
                 agent, r.code, r.err);
    cr_assert(h_wait_mount(m->mnt, true, H_MOUNT_WAIT_MS),
              "lanefs mount --agent %s returned 0 but %s is not a fuse.lanefs mount",
              agent, m->mnt);
    m->live = true;
    return m->mnt;
}

const char *h_mount(const char *agent)
{
    return h_mount_env(agent, NULL);
}

void h_umount(const char *agent)
{
    struct h_mount *m = slot_of(agent, false);
    cr_assert(m != NULL, "agent %s was never mounted", agent);
    struct h_res r;
    h_lanefs(&r, NULL, "umount", m->mnt, (char *)NULL);
    cr_assert_eq(r.code, 0, "lanefs umount %s failed (exit %d): %s", m->mnt, r.code, r.err);
    cr_assert(h_wait_mount(m->mnt, false, H_MOUNT_WAIT_MS),
              "lanefs umount returned 0 but %s is still mounted", m->mnt);
    m->live = false;
}

void h_forget_mount(const char *agent)
{
    struct h_mount *m = slot_of(agent, false);
    if (m)
        m->live = false;
}
