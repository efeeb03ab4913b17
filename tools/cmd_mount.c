/* cmd_mount.c - `lanefs mount`: check everything that can be checked from
 * outside, then hand the mount to the daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/config.h"
#include "fs/daemon.h"
#include "tools/cli.h"
#include "fs/mountinfo.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_AGENT = 256, OPT_FOREGROUND, OPT_DEBUG, OPT_HELP };

static void mount_usage(FILE *out)
{
    fputs(
"usage: lanefs mount STATE --agent NAME MOUNTPOINT [-f] [-d]\n"
"\n"
"Mounts agent NAME's view of the volume in STATE at MOUNTPOINT. Returns once\n"
"the mount is live; the daemon serving it runs on in the background.\n"
"\n"
"  --agent NAME      agent name: [a-z0-9][a-z0-9._-]{0,63}\n"
"  -f, --foreground  serve in the foreground, logging to stderr\n"
"  -d, --debug       print libfuse debug output (implies -f)\n"
"  -h, --help        show this help\n", out);
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

/* Refuses a second mount of the same agent: its pid file names a live
 * daemon. A stale pid file (daemon gone, or pid reused) is fine. */
static int mount_check_agent_free(const struct minfo_table *mt,
                                  const char *state, const char *agent)
{
    char *pidfile = cli_pid_file(state, agent), *source = NULL;
    pid_t pid;
    int ret = CLI_EXIT_FAIL;

    if (!pidfile) {
        cli_err("out of memory");
        goto out;
    }
    if (cli_pid_read(pidfile, &pid) < 0 || !cli_pid_lanefs_alive(pid)) {
        ret = CLI_EXIT_OK;
        goto out;
    }
    if (asprintf(&source, "lanefs@%s:%s", agent, state) < 0) {
        source = NULL;
        cli_err("out of memory");
        goto out;
    }
    const struct minfo_entry *e = minfo_find_lanefs_source(mt, source);
    if (e)
        cli_err("agent %s is already mounted at %s", agent, e->mountpoint);
    else
        cli_err("agent %s is already mounted (daemon pid %d, see %s)", agent,
                (int)pid, pidfile);
out:
    free(pidfile);
    free(source);
    return ret;
}

static int mount_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "agent",      required_argument, NULL, OPT_AGENT },
        { "foreground", no_argument,       NULL, OPT_FOREGROUND },
        { "debug",      no_argument,       NULL, OPT_DEBUG },
        { "help",       no_argument,       NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct vol_config cfg = { 0 };
    struct minfo_table mt = { 0 };
    struct lanefsd_opts o = { 0 };
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
    if (mount_check_placement(mp, state, lower) != CLI_EXIT_OK ||
        mount_check_agent_free(&mt, state, agent) != CLI_EXIT_OK)
        goto out;

    o.state_dir = state;
    o.agent = agent;
    o.mountpoint = mp;
    rc = lanefsd_run(&o);
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
