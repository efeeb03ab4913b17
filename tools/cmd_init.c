/* cmd_init.c - `lanefs init`: create a volume (its state directory and
 * volume.conf) over a lower directory. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/config.h"
#include "fs/pathclass.h"
#include "tools/cli.h"

/* Long options get values above 255 so getopt errors can name them. */
enum { OPT_LOWER = 256, OPT_TEMP, OPT_TEMP_PATTERN, OPT_SHARED, OPT_FORCE,
       OPT_NO_JOURNAL, OPT_JOURNAL_MAX, OPT_VOLUME_READ_RATE, OPT_READ_GUARD,
       OPT_HELP };

static void init_usage(FILE *out)
{
    fputs(
"usage: lanefs init STATE --lower DIR [--temp PATH]... [--temp-pattern GLOB]...\n"
"                   [--shared PATH]... [--no-journal] [--journal-max SIZE]\n"
"                   [--volume-read-rate R] [--read-guard on|off] [--force]\n"
"\n"
"Creates a volume: STATE/volume.conf, STATE/agents/ and STATE/shared/upper/.\n"
"\n"
"  STATE                state directory; created (mode 0700) if missing\n"
"  --lower DIR          the shared data; lanefs never writes to it\n"
"  --temp PATH          a per-agent, per-session directory, relative to the\n"
"                       mount root (repeatable; default: tmp)\n"
"  --temp-pattern GLOB  file names that are temp wherever they are, as\n"
"                       fnmatch(3) patterns over one name (repeatable;\n"
"                       default: *.tmp *.part *.swp .~lock.*#)\n"
"  --shared PATH        a directory all agents write in common (repeatable)\n"
"  --no-journal         keep no event journal (STATE/journal.db)\n"
"  --journal-max SIZE   prune the oldest journal events past SIZE (256M, 1G)\n"
"  --volume-read-rate R at most R bytes/s of shared-data reads by all agents\n"
"                       together (50M, 1.5G; 0: no cap; change it live with\n"
"                       'lanefs volume set')\n"
"  --read-guard on|off  while small reads go to the device, keep streams'\n"
"                       reads few and small in its queue (default on;\n"
"                       docs/readengine.md; change it with 'lanefs volume set')\n"
"  --force              rewrite the configuration of an existing volume;\n"
"                       its agents' data is kept\n"
"  -h, --help           show this help\n", out);
}

/* volume.conf is read back by inih, which strips blanks around a value and
 * starts a comment at a ';' that follows a blank. */
static bool init_storable(const char *s)
{
    size_t n = strlen(s);
    if (!n || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
        return false;
    if (s[0] == ';')
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] == ';' && isspace((unsigned char)s[i - 1]))
            return false;
    return true;
}

static bool init_has(char **list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

/* Normalises a --temp/--shared argument and adds it to the list once. */
static int init_add_path(const char *opt, const char *arg, char ***list,
                         size_t *n)
{
    char *norm = NULL;
    int rc = vol_path_normalize(arg, &norm);
    if (rc == -ENOMEM) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    if (rc < 0)
        return cli_usage_err("init", "bad %s path '%s': it must name a "
                             "directory below the mount root, without '.' "
                             "or '..' components or control characters",
                             opt, arg);
    if (!init_storable(norm)) {
        free(norm);
        return cli_usage_err("init", "bad %s path '%s': volume.conf cannot "
                             "hold leading or trailing blanks or a ';' "
                             "after a blank", opt, arg);
    }
    rc = init_has(*list, *n, norm) ? 0 : vol_list_add(list, n, norm);
    free(norm);
    if (rc < 0) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static int init_add_pattern(const char *arg, struct vol_config *cfg)
{
    if (!*arg)
        return cli_usage_err("init", "bad --temp-pattern '': a pattern "
                             "cannot be empty");
    if (strchr(arg, '/'))
        return cli_usage_err("init", "bad --temp-pattern '%s': a pattern "
                             "matches one file name, so it cannot contain "
                             "'/'", arg);
    for (const char *s = arg; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return cli_usage_err("init", "bad --temp-pattern '%s': control "
                                 "characters are not allowed", arg);
    if (!init_storable(arg))
        return cli_usage_err("init", "bad --temp-pattern '%s': volume.conf "
                             "cannot hold leading or trailing blanks or a "
                             "';' after a blank", arg);
    if (init_has(cfg->temp_patterns, cfg->n_temp_patterns, arg))
        return CLI_EXIT_OK;
    if (vol_list_add(&cfg->temp_patterns, &cfg->n_temp_patterns, arg) < 0) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* Refuses layouts where one path class could never apply. */
static int init_check_classes(const struct vol_config *cfg)
{
    for (size_t i = 0; i < cfg->n_shared_paths; i++) {
        const char *p = cfg->shared_paths[i];
        if (init_has(cfg->temp_paths, cfg->n_temp_paths, p))
            return cli_usage_err("init", "'%s' is given both as --temp and "
                                 "--shared", p);
        if (pclass_of(cfg, p) == PCLASS_TEMP)
            return cli_usage_err("init", "--shared '%s' lies inside a temp "
                                 "path or matches a temp pattern; temp wins "
                                 "over shared, so it would never be shared",
                                 p);
    }
    return CLI_EXIT_OK;
}

static void init_print_list(const char *label, char **list, size_t n)
{
    printf("; %s:", label);
    if (n == 0)
        printf(" none");
    for (size_t i = 0; i < n; i++)
        printf(" %s", list[i]);
}

/* Creates the state directory's skeleton; every directory mode 0700. */
static int init_make_dirs(const char *state)
{
    static const char *const sub[] = { "agents", "shared", "shared/upper" };
    char *path = NULL;
    int rc = cli_mkdir_p(state, 0700);
    if (rc < 0) {
        cli_err("cannot create state directory %s: %s", state, strerror(-rc));
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
        if (asprintf(&path, "%s/%s", state, sub[i]) < 0) {
            cli_err("out of memory");
            return CLI_EXIT_FAIL;
        }
        rc = cli_mkdir_p(path, 0700);
        if (rc < 0) {
            cli_err("cannot create %s: %s", path, strerror(-rc));
            free(path);
            return CLI_EXIT_FAIL;
        }
        free(path);
    }
    return CLI_EXIT_OK;
}

static int init_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "lower",        required_argument, NULL, OPT_LOWER },
        { "temp",         required_argument, NULL, OPT_TEMP },
        { "temp-pattern", required_argument, NULL, OPT_TEMP_PATTERN },
        { "shared",       required_argument, NULL, OPT_SHARED },
        { "force",        no_argument,       NULL, OPT_FORCE },
        { "no-journal",   no_argument,       NULL, OPT_NO_JOURNAL },
        { "journal-max",  required_argument, NULL, OPT_JOURNAL_MAX },
        { "volume-read-rate", required_argument, NULL, OPT_VOLUME_READ_RATE },
        { "read-guard",   required_argument, NULL, OPT_READ_GUARD },
        { "help",         no_argument,       NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    struct vol_config cfg = { 0 };
    const char *state_arg = NULL, *lower_arg = NULL;
    char *state = NULL, *conf = NULL;
    bool force = false, existed, had_conf;
    struct stat st;
    int c, rc, ret = CLI_EXIT_OK;

    optind = 0;     /* full getopt reset */
    opterr = 0;
    /* Leading '-': operands come back as 1, so options go anywhere. */
    while ((c = getopt_long(argc, argv, "-:h", opts, NULL)) != -1) {
        switch (c) {
        case 1:
            if (state_arg) {
                ret = cli_usage_err("init", "unexpected argument '%s'",
                                    optarg);
                goto out;
            }
            state_arg = optarg;
            break;
        case OPT_LOWER:
            if (lower_arg) {
                ret = cli_usage_err("init", "--lower given twice");
                goto out;
            }
            lower_arg = optarg;
            break;
        case OPT_TEMP:
            ret = init_add_path("--temp", optarg, &cfg.temp_paths,
                                &cfg.n_temp_paths);
            break;
        case OPT_SHARED:
            ret = init_add_path("--shared", optarg, &cfg.shared_paths,
                                &cfg.n_shared_paths);
            break;
        case OPT_TEMP_PATTERN:
            ret = init_add_pattern(optarg, &cfg);
            break;
        case OPT_NO_JOURNAL:
            cfg.no_journal = true;
            break;
        case OPT_JOURNAL_MAX:
            if (cli_parse_size(optarg, &cfg.journal_max) < 0) {
                ret = cli_usage_err("init", "bad --journal-max '%s': expected a "
                                    "size such as 256M or 1G", optarg);
                goto out;
            }
            break;
        case OPT_VOLUME_READ_RATE:
            if (cli_parse_size(optarg, &cfg.volume_read_rate) < 0) {
                ret = cli_usage_err("init", "bad --volume-read-rate '%s': expected "
                                    "bytes/s as a whole number, optionally with K, "
                                    "M, G or T (e.g. 50M, 1.5G; 0: no cap)", optarg);
                goto out;
            }
            break;
        case OPT_READ_GUARD: {
            bool on;
            if (cli_parse_onoff(optarg, &on) < 0) {
                ret = cli_usage_err("init", "bad --read-guard '%s': expected on or off",
                                    optarg);
                goto out;
            }
            cfg.no_read_guard = !on;
            break;
        }
        case OPT_FORCE:
            force = true;
            break;
        case 'h':
        case OPT_HELP:
            init_usage(stdout);
            goto out;
        default:
            ret = cli_bad_option("init", c, argv);
            goto out;
        }
        if (ret != CLI_EXIT_OK)
            goto out;
    }
    for (; optind < argc; optind++) {       /* operands after "--" */
        if (state_arg) {
            ret = cli_usage_err("init", "unexpected argument '%s'",
                                argv[optind]);
            goto out;
        }
        state_arg = argv[optind];
    }
    if (!state_arg) {
        ret = cli_usage_err("init", "missing STATE (the state directory)");
        goto out;
    }
    if (!lower_arg) {
        ret = cli_usage_err("init", "missing --lower DIR (the shared data)");
        goto out;
    }
    if ((ret = init_check_classes(&cfg)) != CLI_EXIT_OK)
        goto out;
    if (vol_config_defaults(&cfg) < 0) {
        cli_err("out of memory");
        ret = CLI_EXIT_FAIL;
        goto out;
    }
    /* Again, now that the default temp path and patterns are in. */
    if ((ret = init_check_classes(&cfg)) != CLI_EXIT_OK)
        goto out;

    ret = CLI_EXIT_FAIL;
    cfg.lower = realpath(lower_arg, NULL);
    if (!cfg.lower) {
        cli_err("lower directory '%s': %s", lower_arg, strerror(errno));
        goto out;
    }
    if (stat(cfg.lower, &st) < 0 || !S_ISDIR(st.st_mode)) {
        cli_err("lower '%s' is not a directory", lower_arg);
        goto out;
    }
    if (strcmp(cfg.lower, "/") == 0) {
        cli_err("lower cannot be the root directory: the state directory "
                "would be inside it");
        goto out;
    }
    if (!init_storable(cfg.lower)) {
        cli_err("lower '%s' cannot be stored in volume.conf (leading or "
                "trailing blanks, or a ';' after a blank)", cfg.lower);
        goto out;
    }
    rc = cli_canon_missing(state_arg, &state);
    if (rc < 0) {
        cli_err("state directory '%s': %s", state_arg,
                rc == -EINVAL ? "'..' after a directory that does not exist"
                              : strerror(-rc));
        goto out;
    }
    existed = stat(state, &st) == 0;
    if (existed && !S_ISDIR(st.st_mode)) {
        cli_err("state directory '%s' exists and is not a directory",
                state_arg);
        goto out;
    }
    if (strcmp(state, cfg.lower) == 0) {
        cli_err("state directory and lower are the same directory (%s)",
                state);
        goto out;
    }
    if (cli_path_within(state, cfg.lower)) {
        cli_err("state directory %s is inside the lower %s", state,
                cfg.lower);
        goto out;
    }
    if (cli_path_within(cfg.lower, state)) {
        cli_err("lower %s is inside the state directory %s", cfg.lower,
                state);
        goto out;
    }
    if (asprintf(&conf, "%s/%s", state, VOL_CONF_NAME) < 0) {
        conf = NULL;
        cli_err("out of memory");
        goto out;
    }
    had_conf = existed && lstat(conf, &st) == 0;
    if (had_conf && !force) {
        cli_err("%s already holds a volume (%s); add --force to rewrite its "
                "configuration (agents' data is kept)", state, conf);
        goto out;
    }
    if ((ret = init_make_dirs(state)) != CLI_EXIT_OK)
        goto out;
    rc = vol_config_save(state, &cfg);
    if (rc < 0) {
        cli_err("cannot write %s: %s", conf, strerror(-rc));
        ret = CLI_EXIT_FAIL;
        goto out;
    }
    printf("%s volume %s: lower %s", had_conf ? "reconfigured" :
           "created", state, cfg.lower);
    init_print_list("temp", cfg.temp_paths, cfg.n_temp_paths);
    init_print_list("temp patterns", cfg.temp_patterns, cfg.n_temp_patterns);
    init_print_list("shared", cfg.shared_paths, cfg.n_shared_paths);
    printf("\n");
    ret = CLI_EXIT_OK;
out:
    vol_config_free(&cfg);
    free(state);
    free(conf);
    return ret;
}

const struct cli_cmd cli_cmd_init = {
    .name = "init",
    .summary = "create a volume over a lower directory",
    .run = init_run,
    .usage = init_usage,
};
