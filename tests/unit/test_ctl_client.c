/* Unit tests for tools/ctl_client.c: reply parsing, one exchange over a
 * socket pair, and connecting to STATE/control.sock. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tools/ctl_client.h"

Test(ctl_reply, ok)
{
    cJSON *r;
    struct ctl_err e = { .msg = "" };
    cr_assert_eq(ctl_parse_reply("{\"v\":1,\"ok\":true,\"pid\":42,"
                                 "\"state\":\"/s\"}", &r, &e), 0);
    cr_assert_not_null(r);
    cr_assert_eq(ctl_num(r, "pid", -1), 42);
    cr_assert_str_eq(ctl_str(r, "state"), "/s");
    cr_assert_null(ctl_str(r, "pid"), "a number is not a string");
    cr_assert_eq(ctl_num(r, "state", -1), -1, "a string is not a number");
    cr_assert_eq(ctl_bool(r, "missing", true), true);
    cJSON_Delete(r);
}

Test(ctl_reply, error_maps_errno_and_message)
{
    cJSON *r;
    struct ctl_err e = { .msg = "" };
    int rc = ctl_parse_reply("{\"v\":1,\"ok\":false,\"errno\":\"EEXIST\","
                             "\"error\":\"agent a is already mounted at "
                             "/m\"}", &r, &e);
    cr_assert_eq(rc, -EEXIST);
    cr_assert_str_eq(e.msg, "agent a is already mounted at /m");
    cr_assert_not_null(r, "the error reply is handed back too");
    cJSON_Delete(r);

    rc = ctl_parse_reply("{\"v\":1,\"ok\":false,\"errno\":\"ENOSUCH\"}", &r,
                         &e);
    cr_assert_eq(rc, -EIO, "an unknown errno name is EIO");
    cr_assert_str_eq(e.msg, "ENOSUCH", "without \"error\", the name is shown");
    cJSON_Delete(r);

    rc = ctl_parse_reply("{\"v\":1,\"ok\":false}", &r, &e);
    cr_assert_eq(rc, -EIO);
    cJSON_Delete(r);
}

Test(ctl_reply, malformed)
{
    const char *bad[] = {
        "", "garbage", "[1,2]", "\"ok\"", "{\"ok\":true}",
        "{\"v\":2,\"ok\":true}", "{\"v\":\"1\",\"ok\":true}",
        "{\"v\":1}", "{\"v\":1,\"ok\":1}", "{\"v\":1,\"ok\":true",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *r = (cJSON *)1;
        struct ctl_err e = { .msg = "" };
        cr_assert_eq(ctl_parse_reply(bad[i], &r, &e), -EPROTO, "%s", bad[i]);
        cr_assert_null(r, "%s", bad[i]);
        cr_assert(e.msg[0], "no message for %s", bad[i]);
    }
}

Test(ctl_reply, errno_names)
{
    cr_assert_eq(ctl_errno_value("ENOENT"), ENOENT);
    cr_assert_eq(ctl_errno_value("EPROTO"), EPROTO);
    cr_assert_eq(ctl_errno_value("EMSGSIZE"), EMSGSIZE);
    cr_assert_eq(ctl_errno_value("nope"), 0);
    cr_assert_eq(ctl_errno_value(NULL), 0);
}

/* A fake daemon on one end of a socket pair: reads one line, checks it,
 * sends the canned reply (possibly in pieces), or nothing. */
struct fake {
    int fd;
    const char *reply;      /* NULL: close without replying */
    char got[256];
};

static void *fake_serve(void *arg)
{
    struct fake *f = arg;
    size_t len = 0;
    while (len < sizeof(f->got) - 1) {
        ssize_t n = read(f->fd, f->got + len, 1);
        if (n <= 0 || f->got[len] == '\n')
            break;
        len++;
    }
    f->got[len] = '\0';
    if (f->reply) {
        /* In two writes, so the client has to put the line together. */
        size_t half = strlen(f->reply) / 2;
        if (write(f->fd, f->reply, half) < 0 ||
            write(f->fd, f->reply + half, strlen(f->reply) - half) < 0)
            return NULL;
    }
    close(f->fd);
    return NULL;
}

static int exchange_with(const char *reply, struct fake *f, cJSON **r,
                         struct ctl_err *e, int timeout_ms)
{
    int sv[2];
    pthread_t t;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    f->fd = sv[1];
    f->reply = reply;
    cr_assert_eq(pthread_create(&t, NULL, fake_serve, f), 0);
    cJSON *req = ctl_request_new("ping");
    cr_assert_not_null(req);
    int rc = ctl_exchange(sv[0], req, timeout_ms, r, e);
    cJSON_Delete(req);
    pthread_join(t, NULL);
    close(sv[0]);
    return rc;
}

Test(ctl_exchange, request_line_and_reply)
{
    struct fake f;
    struct ctl_err e = { .msg = "" };
    cJSON *r;
    int rc = exchange_with("{\"v\":1,\"ok\":true,\"pid\":7}\n", &f, &r, &e,
                           5000);
    cr_assert_eq(rc, 0, "%s", e.msg);
    cr_assert_str_eq(f.got, "{\"v\":1,\"op\":\"ping\"}");
    cr_assert_eq(ctl_num(r, "pid", 0), 7);
    cJSON_Delete(r);
}

Test(ctl_exchange, closed_without_reply)
{
    struct fake f;
    struct ctl_err e = { .msg = "" };
    cJSON *r;
    cr_assert_eq(exchange_with(NULL, &f, &r, &e, 5000), -ECONNRESET);
    cr_assert_null(r);
    cr_assert(strstr(e.msg, "closed") != NULL, "%s", e.msg);
    /* A reply without its newline is no reply either. */
    cr_assert_eq(exchange_with("{\"v\":1,\"ok\":true}", &f, &r, &e, 5000),
                 -ECONNRESET);
}

Test(ctl_exchange, times_out)
{
    int sv[2];
    struct ctl_err e = { .msg = "" };
    cJSON *r;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cJSON *req = ctl_request_new("status");
    cr_assert_eq(ctl_exchange(sv[0], req, 200, &r, &e), -ETIMEDOUT);
    cr_assert(strstr(e.msg, "did not reply") != NULL, "%s", e.msg);
    cJSON_Delete(req);
    close(sv[0]);
    close(sv[1]);
}

Test(ctl_exchange, refuses_oversized_request)
{
    int sv[2];
    struct ctl_err e = { .msg = "" };
    cJSON *r;
    char *big = malloc(CTL_REQUEST_MAX);
    cr_assert_not_null(big);
    memset(big, 'x', CTL_REQUEST_MAX - 1);
    big[CTL_REQUEST_MAX - 1] = '\0';
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    cJSON *req = ctl_request_new("mount");
    cJSON_AddStringToObject(req, "mountpoint", big);
    cr_assert_eq(ctl_exchange(sv[0], req, 1000, &r, &e), -EMSGSIZE);
    cJSON_Delete(req);
    free(big);
    close(sv[0]);
    close(sv[1]);
}

static char *make_dir(const char *base, size_t min_len)
{
    char *d = strdup(base);
    cr_assert_not_null(mkdtemp(d));
    /* Grow it past sun_path's 108 bytes when asked. */
    while (strlen(d) < min_len) {
        char *n;
        cr_assert(asprintf(&n, "%s/%s", d, "abcdefghijklmnopqrstuvwxyz") > 0);
        cr_assert_eq(mkdir(n, 0700), 0);
        free(d);
        d = n;
    }
    return d;
}

static void connect_cases(const char *state)
{
    char *sock;
    cr_assert(asprintf(&sock, "%s/control.sock", state) > 0);
    cr_assert_eq(ctl_connect(state), -ENOENT);
    cr_assert(ctl_no_daemon(-ENOENT, NULL));
    struct ctl_err answered = { .connected = true };
    cr_assert(!ctl_no_daemon(-ENOENT, &answered),
              "a daemon's ENOENT reply is not a missing daemon");

    /* Bind through a descriptor too, for the long path. */
    int dfd = open(state, O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert(dfd >= 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/control.sock",
             dfd);
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s",
                 strerror(errno));
    cr_assert_eq(listen(l, 4), 0);
    int c = ctl_connect(state);
    cr_assert(c >= 0, "connect: %s", strerror(-c));
    close(c);
    close(l);
    /* The socket file stays; nobody listens: a daemon that died. */
    cr_assert_eq(ctl_connect(state), -ECONNREFUSED);
    cr_assert(ctl_no_daemon(-ECONNREFUSED, NULL));
    cr_assert(!ctl_no_daemon(-EACCES, NULL));
    unlink(sock);
    close(dfd);
    free(sock);
}

Test(ctl_connect, short_and_long_state_paths)
{
    char *s = make_dir("/tmp/lanefs-ctl-XXXXXX", 0);
    connect_cases(s);
    char *l = make_dir("/tmp/lanefs-ctl-XXXXXX", 150);
    connect_cases(l);
    char *cmd;
    /* The long one's base is its first component below /tmp. */
    cr_assert(asprintf(&cmd, "rm -rf '%s' '%.*s'", s,
                       (int)strlen("/tmp/lanefs-ctl-XXXXXX"), l) > 0);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
    free(s);
    free(l);
}
