/* cli.h - helpers shared by the lanefs subcommands: messages, exit codes,
 * canonical paths, directories and daemon pid files.
 *
 * Subcommands return an exit code; only main() ends the process. */
#ifndef LANEFS_CLI_H
#define LANEFS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1   /* the command could not do its job */
#define CLI_EXIT_USAGE 2   /* the command line itself is wrong */

/* Seconds `lanefs umount` waits for the daemon to finish its cleanup. */
#define CLI_UMOUNT_WAIT_S 30

struct cli_cmd {
    const char *name;
    const char *summary;                 /* one line for `lanefs --help` */
    int (*run)(int argc, char **argv);   /* argv[0] is the command name */
    void (*usage)(FILE *out);
};

extern const struct cli_cmd cli_cmd_init, cli_cmd_mount, cli_cmd_umount;

/* Prints "lanefs: <message>" and a newline to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the message like cli_err, then a hint to `lanefs CMD -h`, and
 * returns CLI_EXIT_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports an option getopt_long() rejected ('?' or ':' with the current
 * optind/optopt) and returns CLI_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* True when path equals dir or lies below it. Both must be absolute and
 * canonical; the comparison is by whole components ("/a/bc" is not below
 * "/a/b"). */
bool cli_path_within(const char *path, const char *dir);

/* Canonical absolute path of an existing path (realpath(3)) in newly
 * allocated *out. When path itself cannot be resolved (a dead FUSE mount
 * answers ENOTCONN), resolves its parent and appends the last component.
 * Returns 0 or the -errno of resolving path. */
int cli_canon_lenient(const char *path, char **out);

/* Canonical absolute path of a path that may not exist yet: its longest
 * existing ancestor resolved by realpath(3), plus the missing components.
 * Returns 0, -EINVAL when a missing part holds "..", or -errno. */
int cli_canon_missing(const char *path, char **out);

/* Creates dir and its missing parents; the parents get the default mode,
 * dir itself mode. An existing dir is fine; an existing non-directory is
 * -ENOTDIR. Returns 0 or -errno. */
int cli_mkdir_p(const char *dir, mode_t mode);

/* Reads a pid file (decimal pid, optional newline). Returns 0, -ENOENT,
 * -EINVAL when it holds no valid pid, or -errno. */
int cli_pid_read(const char *file, pid_t *pid);

/* True when pid is a live (not zombie) process that looks like a lanefs
 * daemon (its name contains "lanefs"), so a stale pid file whose pid was
 * reused is not mistaken for a running mount. */
bool cli_pid_lanefs_alive(pid_t pid);

/* Newly allocated "STATE/agents/NAME/daemon.pid", or NULL. */
char *cli_pid_file(const char *state, const char *agent);

#endif
