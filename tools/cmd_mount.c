/* cmd_mount.c - `lanefs mount`: check everything that can be checked from
 * outside, then hand the mount to the daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/config.h"
#include "fs/daemon.h"
#include "fs/mountinfo.h"
#include "tools/cli.h"
#include "tools/ctl_client.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_AGENT = 256, OPT_FOREGROUND, OPT_DEBUG, OPT_EPHEMERAL,
       OPT_QUOTA_BYTES, OPT_QUOTA_INODES, OPT_WEIGHT, OPT_READ_RATE,
       OPT_READ_IOPS, OPT_READ_RESERVE, OPT_HELP };

/* How long a mount waits for a daemon that another command is starting. */
#define MOUNT_DAEMON_WAIT_MS 10000
#define MOUNT_RETRY_MS       100

static void mount_usage(FILE *out)
{
    fputs(
"usage: lanefs mount STATE --agent NAME MOUNTPOINT [-f] [-d] [--ephemeral]\n"
"                    [--quota-bytes N] [--quota-inodes N] [--weight W]\n"
"                    [--read-rate R] [--read-iops N] [--read-reserve R]\n"
"\n"
"Mounts agent NAME's view of the volume in STATE at MOUNTPOINT. Returns once\n"
"the mount is live. The volume's daemon serves it: the running one, or one\n"
"started now that runs on in the background (logging to STATE/lanefs.log).\n"
"\n"
"  --agent NAME        agent name: [a-z0-9][a-z0-9._-]{0,63}\n"
"  --ephemeral         the agent's private changes are removed when this\n"
"                      session ends\n"
"  --quota-bytes N     limit the bytes of the agent's upper and temp layers\n"
"                      (K, M, G, T suffixes: 500M, 1.5G; 0: no limit)\n"
"  --quota-inodes N    limit their files and directories (suffixes too)\n"
"  --weight W          share of shared-data reads next to busy agents\n"
"                      (1..10000, default 100)\n"
"  --read-rate R       at most R bytes/s of shared-data reads (50M, 1.5G)\n"
"  --read-iops N       at most N shared-data reads/s\n"
"  --read-reserve R    R bytes/s of shared-data reads served first\n"
"  -f, --foreground    start the volume's daemon in the foreground with this\n"
"                      mount, logging to stderr (refused if one runs)\n"
"  -d, --debug         print libfuse debug output (implies -f)\n"
"  -h, --help          show this help\n", out);
}

/* Refuses a mount point that is already a lanefs mount; a dead one (daemon
 * gone, ENOTCONN) is caught here too, since it is still in the table. */
static int mount_check_not_mounted(const struct minfo_table *mt,
                                   const char *mp)
{
    const struct minfo_entry *e = minfo_find_mountpoint(mt, mp);
    char *agent = NULL, *state = NULL;

    if (!e || strcmp(e->fstype, MINFO_LANEFS_FSTYPE) != 0)
        return CLI_EXIT_OK;
    if (minfo_lanefs_source_split(e->source, &agent, &state) == 0)
        cli_err("%s is already a lanefs mount (agent %s of %s); unmount it "
                "first with 'lanefs umount %s'", mp, agent, state, mp);
    else
        cli_err("%s is already a lanefs mount; unmount it first with "
                "'lanefs umount %s'", mp, mp);
    free(agent);
    free(state);
    return CLI_EXIT_FAIL;
}

/* Mounting inside the volume's own directories, or over one of them, would
 * make the daemon serve itself or hide its layers from other mounts. */
static int mount_check_placement(const char *mp, const char *state,
                                 const char *lower)
{
    if (cli_path_within(mp, state)) {
        cli_err("mount point %s is inside the state directory %s", mp, state);
        return CLI_EXIT_FAIL;
    }
    if (cli_path_within(mp, lower)) {
        cli_err("mount point %s is inside the lower %s", mp, lower);
        return CLI_EXIT_FAIL;
    }
    if (cli_path_within(state, mp)) {
        cli_err("mount point %s contains the state directory %s; the mount "
                "would hide it", mp, state);
        return CLI_EXIT_FAIL;
    }
    if (cli_path_within(lower, mp)) {
        cli_err("mount point %s contains the lower %s; the mount would hide "
                "it", mp, lower);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* Asks the daemon to add the mount. Returns 0, or -errno with the
 * daemon's message (or what went wrong on the way) in e. */
static int mount_request(const struct lanefsd_serve_opts *o,
                         struct ctl_err *e)
{
    cJSON *req = ctl_request_new("mount"), *reply = NULL;
    int rc = -ENOMEM;

    snprintf(e->msg, sizeof(e->msg), "out of memory");
    if (!req || !cJSON_AddStringToObject(req, "agent", o->agent) ||
        !cJSON_AddStringToObject(req, "mountpoint", o->mountpoint) ||
        !cJSON_AddBoolToObject(req, "ephemeral", o->ephemeral) ||
        !cJSON_AddNumberToObject(req, "quota_bytes", (double)o->quota_bytes) ||
        !cJSON_AddNumberToObject(req, "quota_inodes",
                                 (double)o->quota_inodes) ||
        !cJSON_AddNumberToObject(req, "weight", o->read.weight) ||
        !cJSON_AddNumberToObject(req, "read_rate", (double)o->read.rate_bps) ||
        !cJSON_AddNumberToObject(req, "read_iops", (double)o->read.iops) ||
        !cJSON_AddNumberToObject(req, "read_reserve", (double)o->read.reserve_bps))
        goto out;
    rc = ctl_call(o->state_dir, req, CTL_TIMEOUT_MS, &reply, e);
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    return rc;
}

static long long mount_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds the mount to the volume's daemon, starting the daemon with it as
 * its first mount when none runs. Waits (up to MOUNT_DAEMON_WAIT_MS) while
 * a daemon is starting (it holds the lock, its socket is not there yet) or
 * stopping (it answers ESHUTDOWN or closes connections without a reply, or
 * still holds the lock after its socket is gone), then tries again. */
static int mount_via_daemon(const struct lanefsd_serve_opts *o)
{
    struct ctl_err e = { .msg = "" };
    long long deadline = mount_now_ms() + MOUNT_DAEMON_WAIT_MS;
    int rc;

    for (;;) {
        rc = mount_request(o, &e);
        if (rc == 0)
            return CLI_EXIT_OK;
        if (ctl_no_daemon(rc, &e)) {
            pid_t me = getpid();
            rc = lanefsd_serve(o);
            if (getpid() != me)     /* the daemon, once it stopped serving */
                return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
            if (rc >= 0)
                return CLI_EXIT_OK;
            if (rc != -EBUSY) {
                cli_err("mounting agent %s at %s failed: %s", o->agent,
                        o->mountpoint, strerror(-rc));
                return CLI_EXIT_FAIL;
            }
            snprintf(e.msg, sizeof(e.msg), "a daemon holds %s/daemon.lock "
                     "but did not answer on its control socket within %d s",
                     o->state_dir, MOUNT_DAEMON_WAIT_MS / 1000);
        } else if (rc != -ECONNRESET && rc != -EPIPE && rc != -ESHUTDOWN) {
            break;
        }
        if (mount_now_ms() >= deadline)
            break;
        cli_sleep_ms(MOUNT_RETRY_MS);
    }
    if (rc == -EEXIST || rc == -EBUSY)
        cli_err("%s", e.msg);   /* the daemon names the mount point */
    else
        cli_err("mounting agent %s at %s failed: %s", o->agent,
                o->mountpoint, e.msg);
    return CLI_EXIT_FAIL;
}

/* Reads a --quota-* value. */
static int mount_size_arg(const char *opt, const char *arg,
                          unsigned long long *v)
{
    int rc = cli_parse_size(arg, v);
    if (rc == -ERANGE)
        return cli_usage_err("mount", "bad %s '%s': too large", opt, arg);
    if (rc < 0)
        return cli_usage_err("mount", "bad %s '%s': expected a whole number, "
                             "optionally with K, M, G or T (e.g. 500M, "
                             "1.5G)", opt, arg);
    return CLI_EXIT_OK;
}

static int mount_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "agent",      required_argument, NULL, OPT_AGENT },
        { "foreground", no_argument,       NULL, OPT_FOREGROUND },
        { "debug",      no_argument,       NULL, OPT_DEBUG },
        { "ephemeral",  no_argument,       NULL, OPT_EPHEMERAL },
        { "quota-bytes", required_argument, NULL, OPT_QUOTA_BYTES },
        { "quota-inodes", required_argument, NULL, OPT_QUOTA_INODES },
        { "weight",     required_argument, NULL, OPT_WEIGHT },
        { "read-rate",  required_argument, NULL, OPT_READ_RATE },
        { "read-iops",  required_argument, NULL, OPT_READ_IOPS },
        { "read-reserve", required_argument, NULL, OPT_READ_RESERVE },
        { "help",       no_argument,       NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct vol_config cfg = { 0 };
    struct minfo_table mt = { 0 };
    struct lanefsd_serve_opts o = { 0 };
    const char *pos[2] = { NULL, NULL }, *agent = NULL;
    char *state = NULL, *lower = NULL, *mp = NULL, err[512];
    size_t npos = 0;
    struct stat st;
    int c, rc, ret = CLI_EXIT_USAGE;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:fdh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (npos == 2) {
                ret = cli_usage_err("mount", "unexpected argument '%s'",
                                    optarg);
                goto out;
            }
            pos[npos++] = optarg;
            break;
        case OPT_AGENT:
            if (agent) {
                ret = cli_usage_err("mount", "--agent given twice");
                goto out;
            }
            agent = optarg;
            break;
        case 'f':
        case OPT_FOREGROUND:
            o.foreground = true;
            break;
        case 'd':
        case OPT_DEBUG:
            o.debug = o.foreground = true;
            break;
        case OPT_EPHEMERAL:
            o.ephemeral = true;
            break;
        case OPT_QUOTA_BYTES:
        case OPT_QUOTA_INODES:
            rc = c == OPT_QUOTA_BYTES ?
                 mount_size_arg("--quota-bytes", optarg, &o.quota_bytes) :
                 mount_size_arg("--quota-inodes", optarg, &o.quota_inodes);
            if (rc != CLI_EXIT_OK) {
                ret = rc;
                goto out;
            }
            break;
        case OPT_WEIGHT:
        case OPT_READ_RATE:
        case OPT_READ_IOPS:
        case OPT_READ_RESERVE:
            rc = cli_read_shaping_arg("mount", c == OPT_WEIGHT ? "--weight" :
                                      c == OPT_READ_RATE ? "--read-rate" :
                                      c == OPT_READ_IOPS ? "--read-iops" :
                                      "--read-reserve", optarg, &o.read);
            if (rc != CLI_EXIT_OK) {
                ret = rc;
                goto out;
            }
            break;
        case 'h':
        case OPT_HELP:
            mount_usage(stdout);
            ret = CLI_EXIT_OK;
            goto out;
        default:
            ret = cli_bad_option("mount", c, argv);
            goto out;
        }
    }
    for (; optind < argc; optind++) {
        if (npos == 2) {
            ret = cli_usage_err("mount", "unexpected argument '%s'",
                                argv[optind]);
            goto out;
        }
        pos[npos++] = argv[optind];
    }
    if (npos < 2) {
        ret = cli_usage_err("mount", "missing %s", npos ? "MOUNTPOINT" :
                            "STATE and MOUNTPOINT");
        goto out;
    }
    if (!agent) {
        ret = cli_usage_err("mount", "missing --agent NAME");
        goto out;
    }
    if (!vol_agent_name_valid(agent)) {
        ret = cli_usage_err("mount", "bad agent name '%s': it must match "
                            "[a-z0-9][a-z0-9._-]{0,63}", agent);
        goto out;
    }

    ret = CLI_EXIT_FAIL;
    state = realpath(pos[0], NULL);
    if (!state) {
        cli_err("state directory '%s': %s", pos[0], strerror(errno));
        goto out;
    }
    if (vol_config_load(state, &cfg, err, sizeof(err)) < 0) {
        cli_err("%s", err);
        goto out;
    }
    lower = realpath(cfg.lower, NULL);
    if (!lower) {
        cli_err("lower %s of volume %s: %s", cfg.lower, state,
                strerror(errno));
        goto out;
    }
    rc = minfo_load(&mt);
    if (rc < 0) {
        cli_err("cannot read %s: %s", MINFO_PATH, strerror(-rc));
        goto out;
    }
    rc = cli_canon_lenient(pos[1], &mp);
    if (rc < 0) {
        cli_err("mount point '%s': %s", pos[1], strerror(-rc));
        goto out;
    }
    if (mount_check_not_mounted(&mt, mp) != CLI_EXIT_OK)
        goto out;
    if (stat(mp, &st) < 0) {
        cli_err("mount point '%s': %s", pos[1], strerror(errno));
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_err("mount point '%s' is not a directory", pos[1]);
        goto out;
    }
    if (mount_check_placement(mp, state, lower) != CLI_EXIT_OK)
        goto out;

    o.state_dir = state;
    o.agent = agent;
    o.mountpoint = mp;
    if (!o.foreground) {
        ret = mount_via_daemon(&o);
        goto out;
    }
    pid_t me = getpid();
    rc = lanefsd_serve(&o);
    if (getpid() != me) {
        ret = rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        goto out;
    }
    if (rc == -EBUSY) {
        cli_daemon_busy(state, "already serves it; mount without -f to add "
                        "the mount to that daemon");
        goto out;
    }
    if (rc < 0) {
        cli_err("mounting agent %s at %s failed: %s", agent, mp,
                strerror(-rc));
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    vol_config_free(&cfg);
    minfo_free(&mt);
    free(state);
    free(lower);
    free(mp);
    return ret;
}

const struct cli_cmd cli_cmd_mount = {
    .name = "mount",
    .summary = "mount an agent's view of a volume",
    .run = mount_run,
    .usage = mount_usage,
};
