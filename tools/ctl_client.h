/* ctl_client.h - the client side of a volume daemon's control socket
 * (STATE/control.sock; protocol in docs/control.md).
 *
 * A request is one JSON object on one line, {"v":1,"op":"OP",...}; the
 * reply is one line, {"v":1,"ok":true,...} or {"v":1,"ok":false,
 * "errno":"ENAME","error":"..."}. */
#ifndef LANEFS_CTL_CLIENT_H
#define LANEFS_CTL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>

#define CTL_VERSION        1
#define CTL_SOCK_NAME      "control.sock"
#define CTL_REQUEST_MAX    65536          /* bytes, newline included */
#define CTL_REPLY_MAX      (16 << 20)     /* a guard, not a protocol limit */
#define CTL_TIMEOUT_MS     10000
#define CTL_UMOUNT_TIMEOUT_MS 60000

/* A failed call's message: the daemon's "error", or what went wrong on the
 * way to it. */
struct ctl_err {
    char msg[512];
    bool connected;     /* the socket was connected: a daemon answered */
};

/* Connects to STATE/control.sock (state: an absolute path; a path too long
 * for sun_path is reached through /proc/self/fd). Returns a connected
 * socket fd, or -errno: -ENOENT when there is no socket, -ECONNREFUSED when
 * nobody listens on it (a daemon that died). */
int ctl_connect(const char *state);

/* True when the call that returned rc, with err (may be NULL for a bare
 * ctl_connect result), failed because no daemon serves the volume: the
 * socket is missing or nobody listens on it. A daemon's own ENOENT reply
 * is not that. */
bool ctl_no_daemon(int rc, const struct ctl_err *err);

/* A new request {"v":1,"op":op}, or NULL when out of memory. */
cJSON *ctl_request_new(const char *op);

/* Sends req on fd and reads one reply line, waiting at most timeout_ms in
 * all. On success returns 0 with the reply object in *reply (the caller
 * frees it with cJSON_Delete). A reply with ok:false returns the -errno its
 * "errno" names (-EIO when unknown) with its "error" in err and the reply
 * still in *reply; other failures return -errno (-ETIMEDOUT, -EMSGSIZE for
 * a request over CTL_REQUEST_MAX, -EPROTO for a reply that is not a valid
 * reply object, -ECONNRESET when the daemon closed the connection) with
 * *reply NULL and a message in err. */
int ctl_exchange(int fd, const cJSON *req, int timeout_ms, cJSON **reply,
                 struct ctl_err *err);

/* ctl_connect + ctl_exchange + close. A failed connect is returned as is
 * (see ctl_no_daemon) with a message in err. */
int ctl_call(const char *state, const cJSON *req, int timeout_ms,
             cJSON **reply, struct ctl_err *err);

/* Parses one reply line (without its newline) into *reply, with the rules
 * of ctl_exchange. */
int ctl_parse_reply(const char *line, cJSON **reply, struct ctl_err *err);

/* The errno value of a symbolic name ("ENOENT"), or 0 when unknown. */
int ctl_errno_value(const char *name);

/* Accessors for reply fields: the value when present with the right type,
 * else def (strings: NULL). */
const char *ctl_str(const cJSON *obj, const char *key);
double ctl_num(const cJSON *obj, const char *key, double def);
bool ctl_bool(const cJSON *obj, const char *key, bool def);

#endif
