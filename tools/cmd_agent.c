/* cmd_agent.c - `lanefs agent reset` (drop an agent's private changes) and
 * `lanefs agent diff` (list them). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/config.h"
#include "fs/recover.h"
#include "tools/agent_diff.h"
#include "tools/cli.h"
#include "fs/sched.h"
#include "tools/ctl_client.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_JSON = 256, OPT_HELP };

/* How long reset waits for a daemon that is starting (it holds the lock but
 * does not answer yet). */
#define AGENT_DAEMON_WAIT_MS 10000

static void agent_usage(FILE *out)
{
    fputs(
"usage: lanefs agent reset STATE NAME\n"
"       lanefs agent diff  STATE NAME [--json]\n"
"       lanefs agent set   STATE NAME [--weight W] [--read-rate R]\n"
"                          [--read-iops N] [--read-reserve R]\n"
"\n"
"  reset   remove everything agent NAME changed (its private upper and its\n"
"          index of hard-linked copies): its next mount sees the lower as\n"
"          at its first mount. Refused while NAME is mounted.\n"
"  diff    list what agent NAME changed relative to the lower, one line per\n"
"          path, sorted: 'A PATH' added, 'C PATH' changed, 'D PATH' deleted\n"
"  set     change the read shaping of mounted agent NAME at once (only the\n"
"          options given; 0 removes a limit): --weight 1..10000, --read-rate\n"
"          and --read-reserve in bytes/s (50M, 1.5G), --read-iops in reads/s\n"
"\n"
"  --json       (diff) print {\"agent\": NAME, \"changes\": [{\"kind\",\n"
"               \"path\"}...]}\n"
"  -h, --help   show this help\n", out);
}

/* Parses "SUB STATE NAME [--json]". Returns CLI_EXIT_OK with the operands
 * set, -1 when the help was shown, or the exit code of a usage error. */
static int agent_args(const char *cmd, int argc, char **argv, bool json_ok,
                      const char **state, const char **name, bool *json)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *pos[2] = { NULL, NULL };
    size_t npos = 0;
    int c;

    *json = false;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (npos == 2)
                return cli_usage_err("agent", "unexpected argument '%s'",
                                     optarg);
            pos[npos++] = optarg;
            break;
        case OPT_JSON:
            if (!json_ok)
                return cli_usage_err("agent", "unknown option '--json' for "
                                     "%s", cmd);
            *json = true;
            break;
        case 'h':
        case OPT_HELP:
            agent_usage(stdout);
            return -1;
        default:
            return cli_bad_option("agent", c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (npos == 2)
            return cli_usage_err("agent", "unexpected argument '%s'",
                                 argv[optind]);
        pos[npos++] = argv[optind];
    }
    if (npos < 2)
        return cli_usage_err("agent", "missing %s", npos ? "NAME" :
                             "STATE and NAME");
    if (!vol_agent_name_valid(pos[1]))
        return cli_usage_err("agent", "bad agent name '%s': it must match "
                             "[a-z0-9][a-z0-9._-]{0,63}", pos[1]);
    *state = pos[0];
    *name = pos[1];
    return CLI_EXIT_OK;
}

/* CLI_EXIT_OK when STATE/agents/NAME is a directory. */
static int agent_check_exists(const char *state, const char *name)
{
    int fd = recover_open_agent_dir(state, name, ".");
    if (fd >= 0) {
        close(fd);
        return CLI_EXIT_OK;
    }
    if (fd == -ENOENT)
        cli_err("agent %s has no state in %s (it was never mounted)", name,
                state);
    else
        cli_err("%s/agents/%s: %s", state, name, strerror(-fd));
    return CLI_EXIT_FAIL;
}

/* ---- reset ------------------------------------------------------------ */

/* True when a session file in STATE/sessions names agent: a session a dead
 * daemon left, which `lanefs recover` ends. */
static bool agent_has_session_file(const char *state, const char *agent)
{
    char path[PATH_MAX], want[VOL_AGENT_NAME_MAX + 8], line[VOL_AGENT_NAME_MAX + 16];
    bool found = false;

    snprintf(path, sizeof(path), "%s/sessions", state);
    snprintf(want, sizeof(want), "agent=%s\n", agent);
    DIR *d = opendir(path);
    if (!d)
        return false;
    struct dirent *de;
    while (!found && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW |
                        O_CLOEXEC);
        FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
        if (!f) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        while (!found && fgets(line, sizeof(line), f))
            found = strcmp(line, want) == 0;
        fclose(f);
    }
    closedir(d);
    return found;
}

/* Refuses (CLI_EXIT_FAIL) when the daemon says agent is mounted. Sets
 * *no_daemon when nobody answers. */
static int agent_check_unmounted(const char *state, const char *agent,
                                 bool *no_daemon)
{
    struct ctl_err e = { .msg = "" };
    cJSON *req = ctl_request_new("agents"), *reply = NULL;
    int ret = CLI_EXIT_FAIL;

    *no_daemon = false;
    if (!req) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
    if (ctl_no_daemon(rc, &e)) {
        *no_daemon = true;
        ret = CLI_EXIT_OK;
        goto out;
    }
    if (rc < 0) {
        ret = cli_ctl_fail(state, "cannot ask the daemon which agents are "
                           "mounted", rc, &e);
        goto out;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(reply, "agents")) {
        const char *name = ctl_str(a, "agent");
        if (!name || strcmp(name, agent) != 0 || !ctl_bool(a, "mounted", false))
            continue;
        const char *mp = ctl_str(a, "mountpoint");
        cli_err("agent %s is mounted at %s; unmount it first with 'lanefs "
                "umount %s'", agent, mp ? mp : "?", mp ? mp : "MOUNTPOINT");
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    return ret;
}

/* Empties STATE/agents/NAME/SUB (a missing one is fine). */
static int agent_empty(const char *state, const char *agent, const char *sub)
{
    int fd = recover_open_agent_dir(state, agent, sub);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0)
        return fd;
    int rc = recover_empty_dir(fd);
    if (rc == 0 && strcmp(sub, "upper") == 0) {
        /* The root's own marks go too, so the next mount takes the lower
         * root's owner, mode and times again as at a first mount. */
        const char *marks[] = { "user.lanefs.origin", "user.lanefs.opaque" };
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
        int dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (size_t i = 0; dfd >= 0 && i < 2; i++)
            if (fremovexattr(dfd, marks[i]) < 0 && errno != ENODATA &&
                errno != ENOTSUP && rc == 0)
                rc = -errno;
        if (dfd < 0)
            rc = -errno;
        else
            close(dfd);
    }
    close(fd);
    return rc;
}

static int agent_reset(int argc, char **argv)
{
    const char *arg, *name;
    char *state = NULL;
    bool json, no_daemon;
    int lock = -1, rc;
    int ret = agent_args("reset", argc, argv, false, &arg, &name, &json);

    if (ret != CLI_EXIT_OK)
        return ret < 0 ? CLI_EXIT_OK : ret;
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK ||
        (ret = agent_check_exists(state, name)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    /* Without a daemon, hold its lock while resetting so none starts and
     * mounts the agent meanwhile. A daemon that holds the lock but does
     * not answer yet is starting: ask again. */
    for (int waited = 0; ; waited += 100) {
        if (agent_check_unmounted(state, name, &no_daemon) != CLI_EXIT_OK)
            goto out;
        if (!no_daemon)
            break;
        lock = cli_daemon_lock(state);
        if (lock >= 0)
            break;
        if (lock != -EWOULDBLOCK) {
            cli_err("cannot lock %s/daemon.lock: %s", state, strerror(-lock));
            goto out;
        }
        if (waited >= AGENT_DAEMON_WAIT_MS) {
            cli_err("a daemon holds %s/daemon.lock but does not answer on "
                    "%s/%s", state, state, CTL_SOCK_NAME);
            goto out;
        }
        cli_sleep_ms(100);
    }
    if (lock >= 0 && agent_has_session_file(state, name)) {
        cli_err("agent %s has a session left by a daemon that died; run "
                "'lanefs recover %s' first", name, state);
        goto out;
    }
    if ((rc = agent_empty(state, name, "upper")) < 0 ||
        (rc = agent_empty(state, name, "index")) < 0) {
        cli_err("cannot reset agent %s of %s: %s", name, state, strerror(-rc));
        goto out;
    }
    printf("reset agent %s of %s: its private changes are gone\n", name,
           state);
    ret = CLI_EXIT_OK;
out:
    if (lock >= 0)
        close(lock);
    free(state);
    return ret;
}

/* ---- diff ------------------------------------------------------------- */

/* Prints a path with control characters and '\' as \ooo, so each change
 * stays on one line. */
static void agent_print_path(const char *p)
{
    for (; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            printf("\\%03o", ch);
        else
            putchar(ch);
    }
}

static int agent_diff_json(const char *name, const struct adiff_list *l)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    char *s = NULL;
    int ret = CLI_EXIT_FAIL;

    if (!o || !cJSON_AddStringToObject(o, "agent", name) ||
        !(arr = cJSON_AddArrayToObject(o, "changes")))
        goto out;
    for (size_t i = 0; i < l->n; i++) {
        char kind[2] = { l->v[i].kind, '\0' };
        cJSON *c = cJSON_CreateObject();
        if (!c || !cJSON_AddItemToArray(arr, c) ||
            !cJSON_AddStringToObject(c, "kind", kind) ||
            !cJSON_AddStringToObject(c, "path", l->v[i].path))
            goto out;
    }
    if (!(s = cJSON_Print(o)))
        goto out;
    printf("%s\n", s);
    ret = CLI_EXIT_OK;
out:
    if (ret != CLI_EXIT_OK)
        cli_err("out of memory");
    free(s);
    cJSON_Delete(o);
    return ret;
}

static int agent_diff(int argc, char **argv)
{
    struct vol_config cfg = { 0 };
    struct adiff_list l = { 0 };
    const char *arg, *name;
    char *state = NULL;
    bool json;
    int ufd = -1, lfd = -1, rc;
    int ret = agent_args("diff", argc, argv, true, &arg, &name, &json);

    if (ret != CLI_EXIT_OK)
        return ret < 0 ? CLI_EXIT_OK : ret;
    if ((ret = cli_volume_open(arg, &state, &cfg)) != CLI_EXIT_OK ||
        (ret = agent_check_exists(state, name)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    lfd = open(cfg.lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (lfd < 0) {
        cli_err("lower %s of volume %s: %s", cfg.lower, state,
                strerror(errno));
        goto out;
    }
    ufd = recover_open_agent_dir(state, name, "upper");
    if (ufd == -ENOENT) {
        ret = json ? agent_diff_json(name, &l) : CLI_EXIT_OK;
        goto out;
    }
    if (ufd < 0) {
        cli_err("%s/agents/%s/upper: %s", state, name, strerror(-ufd));
        goto out;
    }
    rc = adiff_collect(ufd, lfd, &l);
    if (rc < 0) {
        cli_err("cannot compare the upper of agent %s with the lower: %s",
                name, strerror(-rc));
        goto out;
    }
    if (json) {
        ret = agent_diff_json(name, &l);
        goto out;
    }
    for (size_t i = 0; i < l.n; i++) {
        printf("%c ", l.v[i].kind);
        agent_print_path(l.v[i].path);
        putchar('\n');
    }
    ret = CLI_EXIT_OK;
out:
    if (ufd >= 0)
        close(ufd);
    if (lfd >= 0)
        close(lfd);
    adiff_free(&l);
    vol_config_free(&cfg);
    free(state);
    return ret;
}

/* "set STATE NAME OPTIONS": the daemon's agent_set with the options given. */
static int agent_set(int argc, char **argv)
{
    static const struct option opts[] = {
        { "weight", required_argument, NULL, 'w' },
        { "read-rate", required_argument, NULL, 'r' },
        { "read-iops", required_argument, NULL, 'i' },
        { "read-reserve", required_argument, NULL, 'R' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *pos[2] = { NULL, NULL };
    const char *given[4] = { NULL, NULL, NULL, NULL };
    struct sched_limits l = { 0 };
    size_t npos = 0;
    int c, ret;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        const char *opt = NULL;
        int slot = -1;
        switch (c) {
        case 1:
            if (npos == 2)
                return cli_usage_err("agent", "unexpected argument '%s'", optarg);
            pos[npos++] = optarg;
            continue;
        case 'w': opt = "--weight"; slot = 0; break;
        case 'r': opt = "--read-rate"; slot = 1; break;
        case 'i': opt = "--read-iops"; slot = 2; break;
        case 'R': opt = "--read-reserve"; slot = 3; break;
        case 'h':
            agent_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("agent", c, argv);
        }
        if ((ret = cli_read_shaping_arg("agent", opt, optarg, &l)) != CLI_EXIT_OK)
            return ret;
        given[slot] = opt;
    }
    if (npos < 2)
        return cli_usage_err("agent", "set needs STATE and NAME");
    if (!given[0] && !given[1] && !given[2] && !given[3])
        return cli_usage_err("agent", "set needs at least one of --weight, "
                             "--read-rate, --read-iops, --read-reserve");
    if (!vol_agent_name_valid(pos[1]))
        return cli_usage_err("agent", "invalid agent name '%s': it must match "
                             "[a-z0-9][a-z0-9._-]{0,63}", pos[1]);
    char *state = NULL;
    if ((ret = cli_volume_open(pos[0], &state, NULL)) != CLI_EXIT_OK)
        return ret;
    cJSON *req = ctl_request_new("agent_set"), *reply = NULL;
    struct ctl_err e = { .msg = "" };
    ret = CLI_EXIT_FAIL;
    if (!req || !cJSON_AddStringToObject(req, "agent", pos[1]) ||
        (given[0] && !cJSON_AddNumberToObject(req, "weight", l.weight)) ||
        (given[1] && !cJSON_AddNumberToObject(req, "read_rate", (double)l.rate_bps)) ||
        (given[2] && !cJSON_AddNumberToObject(req, "read_iops", (double)l.iops)) ||
        (given[3] && !cJSON_AddNumberToObject(req, "read_reserve", (double)l.reserve_bps))) {
        cli_err("out of memory");
        goto out;
    }
    int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
    if (rc < 0) {
        ret = cli_ctl_fail(state, "cannot change the read shaping", rc, &e);
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    free(state);
    return ret;
}

static int agent_run(int argc, char **argv)
{
    static const struct cli_sub subs[] = {
        { "reset", agent_reset }, { "diff", agent_diff }, { "set", agent_set },
    };
    return cli_run_sub("agent", subs, sizeof(subs) / sizeof(subs[0]), agent_usage,
                       argc, argv);
}

const struct cli_cmd cli_cmd_agent = {
    .name = "agent",
    .summary = "reset an agent's private changes, list them (diff), or set its read shaping",
    .run = agent_run,
    .usage = agent_usage,
};
