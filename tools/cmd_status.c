/* cmd_status.c - `lanefs status` and `lanefs agents`: what the volume's
 * daemon serves, as a table or as JSON. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/config.h"
#include "tools/cli.h"
#include "tools/ctl_client.h"
#include "tools/table.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_JSON = 256, OPT_HELP };

static void status_usage(FILE *out)
{
    fputs(
"usage: lanefs status STATE [--json]\n"
"\n"
"Shows what the volume's daemon serves: its pid and uptime, and for each\n"
"mounted agent its mount point, session, bytes read and written, quota use\n"
"and open files (pid, process name, path). Fails when no daemon runs.\n"
"\n"
"  --json       print the daemon's reply as a JSON object\n"
"  -h, --help   show this help\n", out);
}

static void agents_usage(FILE *out)
{
    fputs(
"usage: lanefs agents STATE [--json]\n"
"\n"
"Lists every agent of the volume (each directory in STATE/agents) and\n"
"whether it is mounted, where and in which session. Without a running\n"
"daemon no agent is mounted.\n"
"\n"
"  --json       print {\"agents\": [...]} as JSON\n"
"  -h, --help   show this help\n", out);
}

/* Parses "STATE [--json]" for cmd. Returns CLI_EXIT_OK with *state_arg set,
 * or the exit code to return (help shown, or a usage error). */
static int status_args(const char *cmd, void (*usage)(FILE *), int argc,
                       char **argv, const char **state_arg, bool *json)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    int c;

    *state_arg = NULL;
    *json = false;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (*state_arg)
                return cli_usage_err(cmd, "unexpected argument '%s'", optarg);
            *state_arg = optarg;
            break;
        case OPT_JSON:
            *json = true;
            break;
        case 'h':
        case OPT_HELP:
            usage(stdout);
            return -1;
        default:
            return cli_bad_option(cmd, c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (*state_arg)
            return cli_usage_err(cmd, "unexpected argument '%s'",
                                 argv[optind]);
        *state_arg = argv[optind];
    }
    if (!*state_arg)
        return cli_usage_err(cmd, "missing STATE (the state directory)");
    return CLI_EXIT_OK;
}

/* Prints obj without the protocol's "v" and "ok", as indented JSON. */
static int status_print_json(cJSON *obj)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "v");
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "ok");
    char *s = cJSON_Print(obj);
    if (!s) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    printf("%s\n", s);
    free(s);
    return CLI_EXIT_OK;
}

static unsigned long long status_ull(const cJSON *o, const char *key)
{
    double v = ctl_num(o, key, 0);
    return v > 0 ? (unsigned long long)v : 0;
}

/* "used/limit" with sizes formatted, "-" for no limit. */
static void status_quota(char *buf, size_t len, const cJSON *q,
                         const char *used_key, const char *limit_key,
                         bool bytes)
{
    char u[32], l[32];
    unsigned long long used = status_ull(q, used_key);
    unsigned long long limit = status_ull(q, limit_key);
    if (bytes)
        cli_fmt_size(u, sizeof(u), used);
    else
        snprintf(u, sizeof(u), "%llu", used);
    if (!limit)
        snprintf(l, sizeof(l), "-");
    else if (bytes)
        cli_fmt_size(l, sizeof(l), limit);
    else
        snprintf(l, sizeof(l), "%llu", limit);
    snprintf(buf, len, "%s/%s", u, l);
}

static int status_print_agent(struct tbl *t, const cJSON *a, long long now)
{
    char session[32], up[32], rd[32], wr[32], qb[80], qi[80], nh[32];
    const char *name = ctl_str(a, "agent"), *mp = ctl_str(a, "mountpoint");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(a, "handles");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(a, "quota");
    int rc;

    snprintf(session, sizeof(session), "%llu", status_ull(a, "session"));
    double started = ctl_num(a, "started", 0);
    if (started > 0)
        cli_fmt_duration(up, sizeof(up), now - (long long)started);
    else
        snprintf(up, sizeof(up), "-");
    cli_fmt_size(rd, sizeof(rd), status_ull(a, "bytes_read"));
    cli_fmt_size(wr, sizeof(wr), status_ull(a, "bytes_written"));
    status_quota(qb, sizeof(qb), q, "bytes_used", "bytes_limit", true);
    status_quota(qi, sizeof(qi), q, "inodes_used", "inodes_limit", false);
    snprintf(nh, sizeof(nh), "%d", cJSON_IsArray(hs) ? cJSON_GetArraySize(hs)
                                                     : 0);
    const char *row[] = {
        name ? name : "?", mp ? mp : "?", session, up, rd, wr, qb, qi, nh,
        ctl_bool(a, "ephemeral", false) ? "ephemeral" : "",
    };
    if ((rc = tbl_add(t, row)) < 0)
        return rc;
    const cJSON *h;
    cJSON_ArrayForEach(h, hs) {
        char line[PATH_MAX + 128];
        const char *comm = ctl_str(h, "comm"), *path = ctl_str(h, "path");
        snprintf(line, sizeof(line), "pid %llu (%s) %s", status_ull(h, "pid"),
                 comm ? comm : "?", path ? path : "?");
        if ((rc = tbl_note(t, line)) < 0)
            return rc;
    }
    return 0;
}

static int status_print_human(const char *state, const cJSON *r)
{
    static const char *const head[] = {
        "AGENT", "MOUNTPOINT", "SESSION", "UP", "READ", "WRITTEN",
        "QUOTA BYTES", "QUOTA INODES", "HANDLES", "",
    };
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(r, "agents");
    char up[32];
    struct tbl t;
    int n = cJSON_IsArray(agents) ? cJSON_GetArraySize(agents) : 0;
    long long now = (long long)time(NULL);

    cli_fmt_duration(up, sizeof(up), (long long)ctl_num(r, "uptime_s", 0));
    printf("volume %s: daemon pid %llu, up %s, %llu threads, %d agent%s "
           "mounted\n", state, status_ull(r, "pid"), up,
           status_ull(r, "threads"), n, n == 1 ? "" : "s");
    const cJSON *vr = cJSON_GetObjectItemCaseSensitive(r, "volume_read_rate");
    if (cJSON_IsNumber(vr) && vr->valuedouble > 0) {
        char rate[32];
        cli_fmt_size(rate, sizeof(rate), (unsigned long long)vr->valuedouble);
        printf("volume read cap: %s/s\n", rate);
    } else if (cJSON_IsNumber(vr)) {
        printf("volume read cap: none\n");
    }
    const cJSON *rg = cJSON_GetObjectItemCaseSensitive(r, "read_guard");
    if (cJSON_IsObject(rg))
        printf("read guard: %s%s, engaged %llu times (%.1f s in all), %llu reads in pieces\n",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rg, "enabled")) ? "on" : "off",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rg, "active")) ? " (holding)" : "",
               status_ull(rg, "engaged"), (double)status_ull(rg, "held_ms") / 1000.0,
               status_ull(rg, "pieced"));
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(r, "prefetch");
    if (cJSON_IsObject(pf))
        printf("lower prefetch: %llu directories warmed (%llu entries), %llu followed by a walk\n",
               status_ull(pf, "dirs"), status_ull(pf, "entries"), status_ull(pf, "followed"));
    if (n == 0)
        return CLI_EXIT_OK;
    if (tbl_init(&t, sizeof(head) / sizeof(head[0]), head) < 0) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, agents) {
        if (status_print_agent(&t, a, now) < 0) {
            tbl_free(&t);
            cli_err("out of memory");
            return CLI_EXIT_FAIL;
        }
    }
    tbl_print(&t, stdout);
    tbl_free(&t);
    return CLI_EXIT_OK;
}

static int status_run(int argc, char **argv)
{
    const char *arg;
    char *state = NULL;
    cJSON *req = NULL, *reply = NULL;
    struct ctl_err e = { .msg = "" };
    bool json;
    int ret = status_args("status", status_usage, argc, argv, &arg, &json);

    if (ret != CLI_EXIT_OK)
        return ret < 0 ? CLI_EXIT_OK : ret;
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    if (!(req = ctl_request_new("status"))) {
        cli_err("out of memory");
        goto out;
    }
    int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
    if (rc < 0) {
        ret = cli_ctl_fail(state, "status", rc, &e);
        goto out;
    }
    ret = json ? status_print_json(reply) : status_print_human(state, reply);
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    free(state);
    return ret;
}

/* Without a daemon: {"agents":[{agent, mounted:false}...]} from the
 * directories in STATE/agents, sorted by name. */
static int agents_local(const char *state, cJSON **out)
{
    char path[PATH_MAX];
    struct dirent **names = NULL;
    int rc = 0;

    *out = cJSON_CreateObject();
    cJSON *list = *out ? cJSON_AddArrayToObject(*out, "agents") : NULL;
    if (!list)
        return -ENOMEM;
    snprintf(path, sizeof(path), "%s/agents", state);
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0)
        return errno == ENOENT ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (rc == 0 && vol_agent_name_valid(name) &&
            (names[i]->d_type == DT_DIR || names[i]->d_type == DT_UNKNOWN)) {
            cJSON *a = cJSON_CreateObject();
            if (!a || !cJSON_AddItemToArray(list, a) ||
                !cJSON_AddStringToObject(a, "agent", name) ||
                !cJSON_AddFalseToObject(a, "mounted"))
                rc = -ENOMEM;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int agents_print_human(const cJSON *r)
{
    static const char *const head[] = {
        "AGENT", "MOUNTED", "SESSION", "MOUNTPOINT",
    };
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(r, "agents");
    const cJSON *a;
    struct tbl t;

    if (!cJSON_IsArray(agents) || cJSON_GetArraySize(agents) == 0) {
        printf("no agents\n");
        return CLI_EXIT_OK;
    }
    if (tbl_init(&t, 4, head) < 0)
        goto oom;
    cJSON_ArrayForEach(a, agents) {
        char session[32] = "-";
        const char *name = ctl_str(a, "agent"), *mp = ctl_str(a, "mountpoint");
        bool mounted = ctl_bool(a, "mounted", false);
        if (mounted && ctl_num(a, "session", -1) >= 0)
            snprintf(session, sizeof(session), "%llu",
                     (unsigned long long)ctl_num(a, "session", 0));
        const char *row[] = {
            name ? name : "?", mounted ? "yes" : "no", session,
            mounted && mp ? mp : "-",
        };
        if (tbl_add(&t, row) < 0) {
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

static int agents_run(int argc, char **argv)
{
    const char *arg;
    char *state = NULL;
    cJSON *req = NULL, *reply = NULL, *out = NULL;
    struct ctl_err e = { .msg = "" };
    bool json;
    int ret = status_args("agents", agents_usage, argc, argv, &arg, &json);

    if (ret != CLI_EXIT_OK)
        return ret < 0 ? CLI_EXIT_OK : ret;
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    if (!(req = ctl_request_new("agents"))) {
        cli_err("out of memory");
        goto out;
    }
    int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
    if (ctl_no_daemon(rc, &e)) {
        rc = agents_local(state, &out);
        if (rc < 0) {
            cli_err("cannot list %s/agents: %s", state, strerror(-rc));
            goto out;
        }
    } else if (rc < 0) {
        ret = cli_ctl_fail(state, "agents", rc, &e);
        goto out;
    } else {
        out = cJSON_CreateObject();
        cJSON *list = cJSON_DetachItemFromObjectCaseSensitive(reply, "agents");
        if (!out || !list || !cJSON_AddItemToObject(out, "agents", list)) {
            cJSON_Delete(list);
            cli_err(list ? "out of memory" : "the daemon's reply has no "
                    "\"agents\"");
            goto out;
        }
    }
    ret = json ? status_print_json(out) : agents_print_human(out);
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    cJSON_Delete(out);
    free(state);
    return ret;
}

const struct cli_cmd cli_cmd_status = {
    .name = "status",
    .summary = "show what a volume's daemon serves",
    .run = status_run,
    .usage = status_usage,
};

const struct cli_cmd cli_cmd_agents = {
    .name = "agents",
    .summary = "list a volume's agents and where they are mounted",
    .run = agents_run,
    .usage = agents_usage,
};
