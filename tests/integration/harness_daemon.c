/* harness_daemon.c - the volume daemon seen from a test: its pid and
 * threads, and raw access to its control socket. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

pid_t h_daemon_pid(void)
{
    char *s = h_get(h_str("%s/daemon.pid", H.state));
    return s ? (pid_t)atoi(s) : 0;
}

int h_threads(pid_t pid)
{
    char *s = h_get(h_str("/proc/%d/status", (int)pid));
    char *t = s ? strstr(s, "\nThreads:") : NULL;
    return t ? atoi(t + strlen("\nThreads:")) : -1;
}

cJSON *h_json(const char *text, const char *what)
{
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "%s is not JSON: %s", what, text);
    return j;
}

cJSON *h_status(void)
{
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, "--json", (char *)NULL), 0,
                 "status --json: %s", r.err);
    return h_json(r.out, "status --json");
}

cJSON *h_status_agent(cJSON *st, const char *agent)
{
    cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(st, "agents")) {
        cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "agent");
        if (cJSON_IsString(n) && strcmp(n->valuestring, agent) == 0)
            return a;
    }
    return NULL;
}

bool h_wait_pid_gone(pid_t pid, int ms)
{
    for (int waited = 0; ; waited += 20) {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        char *st = h_get(h_str("/proc/%d/stat", (int)pid));
        char *paren = st ? strrchr(st, ')') : NULL;
        if (!st || (paren && paren[1] == ' ' && paren[2] == 'Z'))
            return true;
        if (waited >= ms)
            return false;
        usleep(20 * 1000);
    }
}

int h_ctl_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/control.sock", H.state);
    cr_assert(n > 0 && (size_t)n < sizeof sa.sun_path, "state path too long");
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0,
                 "connect %s: %s", sa.sun_path, strerror(errno));
    return fd;
}

bool h_ctl_send(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

char *h_ctl_read_line(int fd, int ms)
{
    char buf[1 << 16];
    size_t len = 0;
    for (int waited = 0; len < sizeof buf - 1; ) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, 50);
        if (n == 0) {
            waited += 50;
            if (waited >= ms) {
                errno = ETIMEDOUT;
                return NULL;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        ssize_t r = n < 0 ? -1 : read(fd, buf + len, 1);
        if (r <= 0)
            return NULL;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return h_str("%s", buf);
        }
        len++;
    }
    errno = EMSGSIZE;
    return NULL;
}

char *h_ctl(const char *line)
{
    int fd = h_ctl_connect();
    char *msg = h_str("%s\n", line);
    cr_assert(h_ctl_send(fd, msg, strlen(msg)), "send: %s", strerror(errno));
    char *reply = h_ctl_read_line(fd, 10000);
    close(fd);
    cr_assert_not_null(reply, "no reply to %s: %s", line, strerror(errno));
    return reply;
}

bool h_wait_file_has(const char *path, const char *needle, int ms)
{
    for (int waited = 0; ; waited += 20) {
        char *s = h_get(path);
        if (s && strstr(s, needle))
            return true;
        if (waited >= ms)
            return false;
        usleep(20 * 1000);
    }
}
