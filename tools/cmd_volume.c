/* cmd_volume.c - `lanefs volume set`: settings of the whole volume that can
 * change while it is served (the volume-wide read cap, the read guard). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/config.h"
#include "tools/cli.h"
#include "tools/ctl_client.h"

enum { OPT_VOLUME_READ_RATE = 256, OPT_READ_GUARD, OPT_HELP };

/* What a set changes: the fields given. */
struct volume_change {
    bool has_rate, has_guard;
    unsigned long long rate;
    bool guard;
};

/* How long set waits for a daemon that is starting (it holds the lock but
 * does not answer yet). */
#define VOLUME_DAEMON_WAIT_MS 10000

static void volume_usage(FILE *out)
{
    fputs(
"usage: lanefs volume set STATE [--volume-read-rate R] [--read-guard on|off]\n"
"\n"
"  set   change a setting of the volume: with a daemon serving it, at once\n"
"        and for the daemons after it; without one, for the next daemon\n"
"\n"
"  --volume-read-rate R  at most R bytes/s of shared-data reads by all\n"
"                        agents together (50M, 1.5G; 0: no cap). Agents\n"
"                        share what passes by their weights.\n"
"  --read-guard on|off   while small reads go to the device, keep streams'\n"
"                        reads few and small in its queue, so the small\n"
"                        reads stay fast (default on; docs/readengine.md)\n"
"  -h, --help            show this help\n", out);
}

/* No daemon serves the volume: write volume.conf under the daemon lock, so
 * none starts meanwhile with the old setting. */
static int volume_set_offline(const char *state, const struct volume_change *ch, bool *busy)
{
    *busy = false;
    int lock = cli_daemon_lock(state);
    if (lock == -EWOULDBLOCK) {
        *busy = true;               /* a daemon is starting: ask it */
        return CLI_EXIT_FAIL;
    }
    if (lock < 0) {
        cli_err("cannot lock %s/daemon.lock: %s", state, strerror(-lock));
        return CLI_EXIT_FAIL;
    }
    struct vol_config cfg = { 0 };
    char err[512];
    int ret = CLI_EXIT_FAIL, rc;
    if (vol_config_load(state, &cfg, err, sizeof(err)) < 0) {
        cli_err("%s", err);
    } else {
        if (ch->has_rate)
            cfg.volume_read_rate = ch->rate;
        if (ch->has_guard)
            cfg.no_read_guard = !ch->guard;
        if ((rc = vol_config_save(state, &cfg)) < 0)
            cli_err("cannot write %s/%s: %s", state, VOL_CONF_NAME, strerror(-rc));
        else
            ret = CLI_EXIT_OK;
    }
    vol_config_free(&cfg);
    close(lock);
    return ret;
}

static int volume_set(int argc, char **argv)
{
    static const struct option opts[] = {
        { "volume-read-rate", required_argument, NULL, OPT_VOLUME_READ_RATE },
        { "read-guard", required_argument, NULL, OPT_READ_GUARD },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *state_arg = NULL;
    struct volume_change ch = { 0 };
    int c, ret;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (state_arg)
                return cli_usage_err("volume", "unexpected argument '%s'", optarg);
            state_arg = optarg;
            break;
        case OPT_VOLUME_READ_RATE:
            if (cli_parse_size(optarg, &ch.rate) < 0)
                return cli_usage_err("volume", "bad --volume-read-rate '%s': "
                                     "expected bytes/s as a whole number, "
                                     "optionally with K, M, G or T (e.g. 50M, "
                                     "1.5G; 0: no cap)", optarg);
            ch.has_rate = true;
            break;
        case OPT_READ_GUARD:
            if (cli_parse_onoff(optarg, &ch.guard) < 0)
                return cli_usage_err("volume", "bad --read-guard '%s': expected on or off",
                                     optarg);
            ch.has_guard = true;
            break;
        case 'h':
        case OPT_HELP:
            volume_usage(stdout);
            return CLI_EXIT_OK;
        default:
            return cli_bad_option("volume", c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (state_arg)
            return cli_usage_err("volume", "unexpected argument '%s'", argv[optind]);
        state_arg = argv[optind];
    }
    if (!state_arg)
        return cli_usage_err("volume", "set needs STATE");
    if (!ch.has_rate && !ch.has_guard)
        return cli_usage_err("volume", "set needs --volume-read-rate or --read-guard");

    char *state = NULL;
    if ((ret = cli_volume_open(state_arg, &state, NULL)) != CLI_EXIT_OK)
        return ret;
    cJSON *req = ctl_request_new("volume_set"), *reply = NULL;
    ret = CLI_EXIT_FAIL;
    if (!req || (ch.has_rate &&
                 !cJSON_AddNumberToObject(req, "volume_read_rate", (double)ch.rate)) ||
        (ch.has_guard && !cJSON_AddBoolToObject(req, "read_guard", ch.guard))) {
        cli_err("out of memory");
        goto out;
    }
    for (int waited = 0; ; waited += 100) {
        struct ctl_err e = { .msg = "" };
        int rc = ctl_call(state, req, CTL_TIMEOUT_MS, &reply, &e);
        if (rc == 0) {
            ret = CLI_EXIT_OK;
            break;
        }
        if (!ctl_no_daemon(rc, &e)) {
            ret = cli_ctl_fail(state, "cannot change the volume's settings", rc, &e);
            break;
        }
        bool busy;
        ret = volume_set_offline(state, &ch, &busy);
        if (!busy)
            break;
        if (waited >= VOLUME_DAEMON_WAIT_MS) {
            cli_err("a daemon holds %s/daemon.lock but does not answer on %s/%s",
                    state, state, CTL_SOCK_NAME);
            break;
        }
        cli_sleep_ms(100);
    }
out:
    cJSON_Delete(req);
    cJSON_Delete(reply);
    free(state);
    return ret;
}

static int volume_run(int argc, char **argv)
{
    static const struct cli_sub subs[] = { { "set", volume_set } };
    return cli_run_sub("volume", subs, 1, volume_usage, argc, argv);
}

const struct cli_cmd cli_cmd_volume = {
    .name = "volume",
    .summary = "change a volume setting (read cap, read guard), live",
    .run = volume_run,
    .usage = volume_usage,
};
