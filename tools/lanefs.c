/* lanefs.c - the lanefs command: dispatch to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "tools/cli.h"

extern const struct cli_cmd cli_cmd_lease, cli_cmd_claim, cli_cmd_leases,
    cli_cmd_journal;

static const struct cli_cmd *const lanefs_cmds[] = {
    &cli_cmd_init, &cli_cmd_serve, &cli_cmd_mount, &cli_cmd_umount,
    &cli_cmd_status,
    &cli_cmd_agents, &cli_cmd_agent, &cli_cmd_volume, &cli_cmd_recover,
    &cli_cmd_lease, &cli_cmd_claim, &cli_cmd_leases,
    &cli_cmd_journal,
};
#define LANEFS_NCMDS (sizeof(lanefs_cmds) / sizeof(lanefs_cmds[0]))

static void lanefs_usage(FILE *out)
{
    fputs("usage: lanefs COMMAND [ARGS...]\n"
          "\n"
          "Per-agent copy-on-write views of a shared read-only volume.\n"
          "\n"
          "Commands:\n", out);
    for (size_t i = 0; i < LANEFS_NCMDS; i++)
        fprintf(out, "  %-8s %s\n", lanefs_cmds[i]->name,
                lanefs_cmds[i]->summary);
    fputs("  help     show this help, or a command's: lanefs help COMMAND\n"
          "\n"
          "Each command takes -h for its own help. Exit status: 0 success,\n"
          "1 failure, 2 bad command line.\n", out);
}

static const struct cli_cmd *lanefs_find(const char *name)
{
    for (size_t i = 0; i < LANEFS_NCMDS; i++)
        if (strcmp(lanefs_cmds[i]->name, name) == 0)
            return lanefs_cmds[i];
    return NULL;
}

static int lanefs_help(int argc, char **argv)
{
    if (argc < 3) {
        lanefs_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 3) {
        cli_err("help takes at most one COMMAND");
        return CLI_EXIT_USAGE;
    }
    const struct cli_cmd *cmd = lanefs_find(argv[2]);
    if (!cmd) {
        cli_err("unknown command '%s'; see 'lanefs --help'", argv[2]);
        return CLI_EXIT_USAGE;
    }
    cmd->usage(stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_err("no command given");
        lanefs_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0)
        return lanefs_help(argc, argv);
    const struct cli_cmd *cmd = lanefs_find(name);
    if (!cmd) {
        if (name[0] == '-')
            cli_err("unknown option '%s'; a command comes first, see "
                    "'lanefs --help'", name);
        else
            cli_err("unknown command '%s'; see 'lanefs --help'", name);
        return CLI_EXIT_USAGE;
    }
    int ret = cmd->run(argc - 1, argv + 1);
    if (fflush(stdout) != 0 && ret == CLI_EXIT_OK) {
        cli_err("cannot write to standard output");
        ret = CLI_EXIT_FAIL;
    }
    return ret;
}
