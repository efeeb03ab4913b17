/* cmd_umount.c - `lanefs umount`: unmount an agent's view and wait until
 * its daemon has finished cleaning up, so callers can rely on the temp layer
 * being gone when the command returns. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include "tools/cli.h"
#include "fs/mountinfo.h"

#define UMOUNT_POLL_MS 50

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_LAZY = 256, OPT_HELP };
/* With --lazy the daemon exits only after the last open file is closed, so
 * umount waits briefly for a quick exit but does not insist. */
#define UMOUNT_LAZY_WAIT_S 2

static void umount_usage(FILE *out)
{
    fputs(
"usage: lanefs umount MOUNTPOINT [--lazy]\n"
"\n"
"Unmounts an agent's view and waits (up to 30 s) until its daemon has\n"
"removed the session's temp files and exited.\n"
"\n"
"  -l, --lazy   detach now even if files are open (MNT_DETACH); the daemon\n"
"               ends the session once the last of them is closed, and\n"
"               umount does not wait for that\n"
"  -h, --help   show this help\n", out);
}

static double umount_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits up to seconds for pid to go away. True when it did. */
static bool umount_wait_exit(pid_t pid, int seconds)
{
    const struct timespec step = { 0, UMOUNT_POLL_MS * 1000000L };
    double deadline = umount_now() + seconds;

    while (cli_pid_lanefs_alive(pid)) {
        if (umount_now() >= deadline)
            return false;
        nanosleep(&step, NULL);
    }
    return true;
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
    char *mp = NULL, *agent = NULL, *state = NULL, *pidfile = NULL;
    bool lazy = false;
    pid_t pid = 0;
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
    pidfile = cli_pid_file(state, agent);
    if (!pidfile) {
        cli_err("out of memory");
        goto out;
    }
    /* Read before unmounting: the daemon removes the file as it exits. */
    rc = cli_pid_read(pidfile, &pid);
    if (rc < 0 || !cli_pid_lanefs_alive(pid))
        pid = 0;

    if (umount2(mp, lazy ? MNT_DETACH : 0) < 0) {
        if (errno == EBUSY)
            cli_err("%s is busy (a process has a file or its working "
                    "directory there); close it, or use 'lanefs umount "
                    "--lazy %s'", mp, mp);
        else
            cli_err("cannot unmount %s: %s", mp, strerror(errno));
        goto out;
    }
    /* A lazily detached mount stays served while files are open on it: that
     * is what --lazy asks for, so a daemon still running is no failure. */
    if (pid && lazy && !umount_wait_exit(pid, UMOUNT_LAZY_WAIT_S)) {
        printf("%s is detached; its daemon (pid %d, agent %s) ends the "
               "session when the last open file is closed\n", mp, (int)pid,
               agent);
        ret = CLI_EXIT_OK;
        goto out;
    }
    if (pid && !umount_wait_exit(pid, CLI_UMOUNT_WAIT_S)) {
        cli_err("%s is unmounted, but its daemon (pid %d, agent %s) did "
                "not exit within %d s; see %s/lanefs.log", mp, (int)pid,
                agent, CLI_UMOUNT_WAIT_S, state);
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    minfo_free(&mt);
    free(mp);
    free(agent);
    free(state);
    free(pidfile);
    return ret;
}

const struct cli_cmd cli_cmd_umount = {
    .name = "umount",
    .summary = "unmount an agent's view and wait for its daemon",
    .run = umount_run,
    .usage = umount_usage,
};
