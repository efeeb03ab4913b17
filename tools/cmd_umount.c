/* cmd_umount.c - `lanefs umount`: ask the volume's daemon to end an agent's
 * session, and wait until it has, so callers can rely on the temp layer
 * being gone when the command returns. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "fs/mountinfo.h"
#include "tools/cli.h"
#include "tools/ctl_client.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_LAZY = 256, OPT_HELP };

#define UMOUNT_POLL_MS 50
/* How long umount waits for a daemon that said it exits. */
#define UMOUNT_EXIT_WAIT_S 5

static void umount_usage(FILE *out)
{
    fputs(
"usage: lanefs umount MOUNTPOINT [--lazy]\n"
"\n"
"Unmounts an agent's view: asks the volume's daemon to end the session and\n"
"waits (up to 60 s) until the session's temp files are removed.\n"
"\n"
"  -l, --lazy   detach now even if files are open (MNT_DETACH); the daemon\n"
"               ends the session once the last of them is closed, and\n"
"               umount does not wait for that\n"
"  -h, --help   show this help\n", out);
}

/* No daemon answers for the volume: detach the mount so the mount point is
 * usable again, and leave the rest to `lanefs recover`. */
static int umount_orphan(const char *mp, const char *state, const char *why)
{
    if (umount2(mp, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
        cli_err("%s; cannot detach %s: %s", why, mp, strerror(errno));
        return CLI_EXIT_FAIL;
    }
    cli_err("%s; %s is detached, and 'lanefs recover %s' cleans up the rest "
            "of its session", why, mp, state);
    return CLI_EXIT_FAIL;
}

/* Waits up to seconds for the daemon pid to go away. True when it did. */
static bool umount_wait_exit(pid_t pid, int seconds)
{
    for (long waited = 0; cli_pid_lanefs_alive(pid); waited += UMOUNT_POLL_MS) {
        if (waited >= seconds * 1000L)
            return false;
        cli_sleep_ms(UMOUNT_POLL_MS);
    }
    return true;
}

static int umount_request(const char *mp, const char *agent,
                          const char *state, bool lazy)
{
    struct ctl_err e = { .msg = "" };
    cJSON *req = ctl_request_new("umount"), *reply = NULL;
    int ret = CLI_EXIT_FAIL, rc;
    char why[PATH_MAX + 128];
    pid_t pid = 0;

    /* The daemon's pid, in case this is its last session and it exits. */
    snprintf(why, sizeof(why), "%s/daemon.pid", state);
    if (cli_pid_read(why, &pid) < 0)
        pid = 0;

    if (!req || !cJSON_AddStringToObject(req, "mountpoint", mp) ||
        !cJSON_AddBoolToObject(req, "lazy", lazy)) {
        cli_err("out of memory");
        goto out;
    }
    rc = ctl_call(state, req, lazy ? CTL_TIMEOUT_MS : CTL_UMOUNT_TIMEOUT_MS,
                  &reply, &e);
    if (ctl_no_daemon(rc, &e)) {
        snprintf(why, sizeof(why), "no daemon serves %s (agent %s)", state,
                 agent);
        ret = umount_orphan(mp, state, why);
        goto out;
    }
    if (rc == -ENOENT) {
        /* A mount of this volume that its daemon does not serve: left by
         * a daemon that died before this one started. */
        snprintf(why, sizeof(why), "the daemon of %s has no session at %s",
                 state, mp);
        ret = umount_orphan(mp, state, why);
        goto out;
    }
    if (rc == -EBUSY) {
        cli_err("%s is busy (a process has a file or its working directory "
                "there); close it, or use 'lanefs umount --lazy %s'", mp, mp);
        goto out;
    }
    if (rc == -ETIMEDOUT) {
        cli_err("%s: the daemon did not report the end of the session within "
                "%d s; see %s/lanefs.log", mp, CTL_UMOUNT_TIMEOUT_MS / 1000,
                state);
        goto out;
    }
    if (rc < 0) {
        cli_err("cannot unmount %s: %s", mp, e.msg);
        goto out;
    }
    if (lazy && ctl_bool(reply, "pending", false))
        printf("%s is detached; the daemon ends session %llu (agent %s) when "
               "the last open file is closed\n", mp,
               (unsigned long long)ctl_num(reply, "session", 0), agent);
    /* A daemon that a mount started exits with its last session: wait a
     * little for that, so a mount that follows starts a fresh daemon rather
     * than reaching this one on its way out. Not waiting longer is no
     * failure: the session has ended, and another mount may have reached
     * the daemon in time to keep it. */
    if (ctl_bool(reply, "daemon_exits", false) && pid > 0)
        umount_wait_exit(pid, UMOUNT_EXIT_WAIT_S);
    ret = CLI_EXIT_OK;
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    return ret;
}

static int umount_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "lazy", no_argument, NULL, OPT_LAZY },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct minfo_table mt = { 0 };
    const char *arg = NULL;
    char *mp = NULL, *agent = NULL, *state = NULL;
    bool lazy = false;
    int c, rc, ret = CLI_EXIT_USAGE;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:lh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (arg) {
                ret = cli_usage_err("umount", "unexpected argument '%s'",
                                    optarg);
                goto out;
            }
            arg = optarg;
            break;
        case 'l':
        case OPT_LAZY:
            lazy = true;
            break;
        case 'h':
        case OPT_HELP:
            umount_usage(stdout);
            ret = CLI_EXIT_OK;
            goto out;
        default:
            ret = cli_bad_option("umount", c, argv);
            goto out;
        }
    }
    for (; optind < argc; optind++) {
        if (arg) {
            ret = cli_usage_err("umount", "unexpected argument '%s'",
                                argv[optind]);
            goto out;
        }
        arg = argv[optind];
    }
    if (!arg) {
        ret = cli_usage_err("umount", "missing MOUNTPOINT");
        goto out;
    }

    ret = CLI_EXIT_FAIL;
    /* Lenient: a mount whose daemon died cannot be stat'ed (ENOTCONN) but
     * must still be unmountable. */
    rc = cli_canon_lenient(arg, &mp);
    if (rc < 0) {
        cli_err("mount point '%s': %s", arg, strerror(-rc));
        goto out;
    }
    rc = minfo_load(&mt);
    if (rc < 0) {
        cli_err("cannot read %s: %s", MINFO_PATH, strerror(-rc));
        goto out;
    }
    const struct minfo_entry *e = minfo_find_mountpoint(&mt, mp);
    if (!e || strcmp(e->fstype, MINFO_LANEFS_FSTYPE) != 0) {
        cli_err("%s is not a lanefs mount", mp);
        goto out;
    }
    if (minfo_lanefs_source_split(e->source, &agent, &state) < 0) {
        cli_err("%s: mount source '%s' is not of the form lanefs@NAME:STATE",
                mp, e->source);
        goto out;
    }
    ret = umount_request(mp, agent, state, lazy);
out:
    minfo_free(&mt);
    free(mp);
    free(agent);
    free(state);
    return ret;
}

const struct cli_cmd cli_cmd_umount = {
    .name = "umount",
    .summary = "unmount an agent's view and wait for its session to end",
    .run = umount_run,
    .usage = umount_usage,
};
