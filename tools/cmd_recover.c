/* cmd_recover.c - `lanefs recover`: end the sessions a dead daemon left
 * behind (dead mounts, temp files, session files). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/recover.h"
#include "tools/cli.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_HELP = 256 };

static void recover_usage(FILE *out)
{
    fputs(
"usage: lanefs recover STATE\n"
"\n"
"Cleans up after a volume daemon that died (killed, crashed): detaches the\n"
"mounts it served, empties those agents' temp and work directories, logs\n"
"each session as ended by \"crash\" in STATE/sessions.log, and removes the\n"
"stale control socket and pid file. Refuses while a daemon serves STATE.\n"
"\n"
"  -h, --help   show this help\n", out);
}

static void recover_print(void *arg, const char *fmt, va_list ap)
{
    (void)arg;
    vprintf(fmt, ap);
    putchar('\n');
}

static int recover_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *arg = NULL;
    char *state = NULL;
    unsigned n = 0;
    int c, rc, lock = -1, ret = CLI_EXIT_USAGE;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (arg) {
                ret = cli_usage_err("recover", "unexpected argument '%s'",
                                    optarg);
                goto out;
            }
            arg = optarg;
            break;
        case 'h':
        case OPT_HELP:
            recover_usage(stdout);
            ret = CLI_EXIT_OK;
            goto out;
        default:
            ret = cli_bad_option("recover", c, argv);
            goto out;
        }
    }
    for (; optind < argc; optind++) {
        if (arg) {
            ret = cli_usage_err("recover", "unexpected argument '%s'",
                                argv[optind]);
            goto out;
        }
        arg = argv[optind];
    }
    if (!arg) {
        ret = cli_usage_err("recover", "missing STATE (the state directory)");
        goto out;
    }
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    lock = cli_daemon_lock(state);
    if (lock == -EWOULDBLOCK) {
        cli_daemon_busy(state, "serves it; recover is for a volume whose "
                        "daemon is gone");
        goto out;
    }
    if (lock < 0) {
        cli_err("cannot lock %s/daemon.lock: %s", state, strerror(-lock));
        goto out;
    }
    rc = recover_run(state, recover_print, NULL, &n);
    if (n == 0 && rc == 0)
        printf("nothing to recover in %s\n", state);
    else
        printf("recovered %u session%s of %s\n", n, n == 1 ? "" : "s", state);
    if (rc < 0) {
        cli_err("recovery of %s is incomplete: %s (run it again once the "
                "cause is fixed)", state, strerror(-rc));
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    if (lock >= 0)
        close(lock);
    free(state);
    return ret;
}

const struct cli_cmd cli_cmd_recover = {
    .name = "recover",
    .summary = "clean up after a volume daemon that died",
    .run = recover_cmd_run,
    .usage = recover_usage,
};
