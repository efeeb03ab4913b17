/* cmd_serve.c - `lanefs serve`: run a volume's daemon with no mount yet;
 * `lanefs mount` and the other commands then talk to it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/daemon.h"
#include "tools/cli.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_FOREGROUND = 256, OPT_DEBUG, OPT_HELP };

static void serve_usage(FILE *out)
{
    fputs(
"usage: lanefs serve STATE [-f] [-d]\n"
"\n"
"Starts the daemon that serves every agent mount of the volume in STATE.\n"
"Returns once its control socket (STATE/control.sock) accepts requests; the\n"
"daemon runs on in the background, logging to STATE/lanefs.log, until\n"
"SIGTERM or SIGINT, which unmount every agent of the volume.\n"
"\n"
"  -f, --foreground  stay in the foreground, logging to stderr\n"
"  -d, --debug       print libfuse debug output (implies -f)\n"
"  -h, --help        show this help\n", out);
}

static int serve_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "foreground", no_argument, NULL, OPT_FOREGROUND },
        { "debug",      no_argument, NULL, OPT_DEBUG },
        { "help",       no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct lanefsd_serve_opts o = { 0 };
    const char *arg = NULL;
    char *state = NULL;
    int c, rc, ret = CLI_EXIT_USAGE;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:fdh", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (arg) {
                ret = cli_usage_err("serve", "unexpected argument '%s'",
                                    optarg);
                goto out;
            }
            arg = optarg;
            break;
        case 'f':
        case OPT_FOREGROUND:
            o.foreground = true;
            break;
        case 'd':
        case OPT_DEBUG:
            o.debug = o.foreground = true;
            break;
        case 'h':
        case OPT_HELP:
            serve_usage(stdout);
            ret = CLI_EXIT_OK;
            goto out;
        default:
            ret = cli_bad_option("serve", c, argv);
            goto out;
        }
    }
    for (; optind < argc; optind++) {
        if (arg) {
            ret = cli_usage_err("serve", "unexpected argument '%s'",
                                argv[optind]);
            goto out;
        }
        arg = argv[optind];
    }
    if (!arg) {
        ret = cli_usage_err("serve", "missing STATE (the state directory)");
        goto out;
    }
    if ((ret = cli_volume_open(arg, &state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = CLI_EXIT_FAIL;
    o.state_dir = state;
    pid_t me = getpid();
    rc = lanefsd_serve(&o);
    if (getpid() != me) {
        /* The daemon's own process, once it has stopped serving. */
        ret = rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        goto out;
    }
    if (rc == -EBUSY) {
        cli_daemon_busy(state, "already serves it");
        goto out;
    }
    if (rc < 0) {
        cli_err("cannot serve %s: %s", state, strerror(-rc));
        goto out;
    }
    ret = CLI_EXIT_OK;
out:
    free(state);
    return ret;
}

const struct cli_cmd cli_cmd_serve = {
    .name = "serve",
    .summary = "start the daemon that serves a volume's mounts",
    .run = serve_run,
    .usage = serve_usage,
};
