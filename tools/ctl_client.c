/* ctl_client.c - talking to a volume daemon over STATE/control.sock. */
#include "tools/ctl_client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void ctl_set_err(struct ctl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ctl_set_err(struct ctl_err *err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static long long ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ctl_no_daemon(int rc, const struct ctl_err *err)
{
    return (rc == -ENOENT || rc == -ECONNREFUSED) &&
           !(err && err->connected);
}

int ctl_connect(const char *state)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int dirfd = -1, rc;

    int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", state,
                     CTL_SOCK_NAME);
    if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
        /* Too long for sun_path: go through a descriptor of STATE. */
        dirfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
            return -errno;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s",
                 dirfd, CTL_SOCK_NAME);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        rc = -errno;
        close(fd);
        goto out;
    }
    rc = fd;
out:
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

cJSON *ctl_request_new(const char *op)
{
    cJSON *req = cJSON_CreateObject();
    if (!req)
        return NULL;
    if (!cJSON_AddNumberToObject(req, "v", CTL_VERSION) ||
        !cJSON_AddStringToObject(req, "op", op)) {
        cJSON_Delete(req);
        return NULL;
    }
    return req;
}

int ctl_errno_value(const char *name)
{
    if (!name)
        return 0;
    for (int e = 1; e < 4096; e++) {
        const char *n = strerrorname_np(e);
        if (n && strcmp(n, name) == 0)
            return e;
    }
    return 0;
}

const char *ctl_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double ctl_num(const cJSON *obj, const char *key, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

bool ctl_bool(const cJSON *obj, const char *key, bool def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

int ctl_parse_reply(const char *line, cJSON **reply, struct ctl_err *err)
{
    cJSON *r = cJSON_Parse(line);

    *reply = NULL;
    if (!r || !cJSON_IsObject(r)) {
        ctl_set_err(err, "the daemon sent a reply that is not a JSON object");
        cJSON_Delete(r);
        return -EPROTO;
    }
    if (ctl_num(r, "v", -1) != CTL_VERSION) {
        ctl_set_err(err, "the daemon replied with protocol version %g; this "
                    "lanefs speaks %d", ctl_num(r, "v", -1), CTL_VERSION);
        cJSON_Delete(r);
        return -EPROTO;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok");
    if (!cJSON_IsBool(ok)) {
        ctl_set_err(err, "the daemon's reply has no \"ok\"");
        cJSON_Delete(r);
        return -EPROTO;
    }
    *reply = r;
    if (cJSON_IsTrue(ok))
        return 0;
    const char *name = ctl_str(r, "errno"), *msg = ctl_str(r, "error");
    int e = ctl_errno_value(name);
    ctl_set_err(err, "%s", msg ? msg : name ? name : "request failed");
    return e ? -e : -EIO;
}

/* Writes all of buf before the deadline. */
static int ctl_send_all(int fd, const char *buf, size_t len,
                        long long deadline)
{
    while (len > 0) {
        long long left = deadline - ctl_now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int n = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ETIMEDOUT;
        ssize_t w = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads up to the first '\n' before the deadline into a new string
 * (newline dropped). Bytes after it are not expected: one request, one
 * reply. */
static int ctl_recv_line(int fd, long long deadline, char **line)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    int rc;

    *line = NULL;
    if (!buf)
        return -ENOMEM;
    for (;;) {
        long long left = deadline - ctl_now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            goto out;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0) {
            rc = -ETIMEDOUT;
            goto out;
        }
        if (cap - len < 2) {
            if (cap >= CTL_REPLY_MAX) {
                rc = -EMSGSIZE;
                goto out;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            rc = -errno;
            goto out;
        }
        if (r == 0) {
            rc = -ECONNRESET;
            goto out;
        }
        char *nl = memchr(buf + len, '\n', (size_t)r);
        len += (size_t)r;
        if (nl) {
            *nl = '\0';
            *line = buf;
            return 0;
        }
    }
out:
    free(buf);
    return rc;
}

int ctl_exchange(int fd, const cJSON *req, int timeout_ms, cJSON **reply,
                 struct ctl_err *err)
{
    long long deadline = ctl_now_ms() + timeout_ms;
    char *text = NULL, *line = NULL;
    int rc;

    *reply = NULL;
    text = cJSON_PrintUnformatted(req);
    if (!text) {
        ctl_set_err(err, "out of memory");
        return -ENOMEM;
    }
    size_t len = strlen(text);
    if (len + 1 > CTL_REQUEST_MAX) {
        ctl_set_err(err, "request of %zu bytes is over the limit of %d",
                    len + 1, CTL_REQUEST_MAX);
        rc = -EMSGSIZE;
        goto out;
    }
    text[len] = '\n';           /* replaces the NUL; len + 1 bytes sent */
    rc = ctl_send_all(fd, text, len + 1, deadline);
    if (rc < 0) {
        ctl_set_err(err, "cannot send the request to the daemon: %s",
                    strerror(-rc));
        goto out;
    }
    rc = ctl_recv_line(fd, deadline, &line);
    if (rc == -ETIMEDOUT) {
        ctl_set_err(err, "the daemon did not reply within %d s",
                    timeout_ms / 1000);
        goto out;
    }
    if (rc == -ECONNRESET) {
        ctl_set_err(err, "the daemon closed the connection without a reply");
        goto out;
    }
    if (rc < 0) {
        ctl_set_err(err, "cannot read the daemon's reply: %s", strerror(-rc));
        goto out;
    }
    rc = ctl_parse_reply(line, reply, err);
out:
    free(text);
    free(line);
    return rc;
}

int ctl_call(const char *state, const cJSON *req, int timeout_ms,
             cJSON **reply, struct ctl_err *err)
{
    *reply = NULL;
    if (err)
        err->connected = false;
    int fd = ctl_connect(state);
    if (fd < 0) {
        ctl_set_err(err, "cannot connect to %s/%s: %s", state, CTL_SOCK_NAME,
                    strerror(-fd));
        return fd;
    }
    if (err)
        err->connected = true;
    int rc = ctl_exchange(fd, req, timeout_ms, reply, err);
    close(fd);
    return rc;
}
