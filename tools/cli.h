/* cli.h - helpers shared by the lanefs subcommands: messages, exit codes,
 * canonical paths, directories and daemon pid files.
 *
 * Subcommands return an exit code; only main() ends the process. */
#ifndef LANEFS_CLI_H
#define LANEFS_CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

struct vol_config;
struct ctl_err;

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

extern const struct cli_cmd cli_cmd_init, cli_cmd_mount, cli_cmd_umount,
    cli_cmd_serve, cli_cmd_status, cli_cmd_agents, cli_cmd_recover,
    cli_cmd_agent, cli_cmd_volume;

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

/* Parses a size or a rate, the one parser of every size option: decimal
 * digits, optionally a fraction, optionally one suffix K, M, G or T (either
 * case; powers of 1024), optionally a trailing B (either case): "4096",
 * "10K", "10KB", "512B", "1.5G". A fraction needs a K/M/G/T suffix; the
 * result is rounded down to whole bytes. Returns 0, or -EINVAL (malformed:
 * empty, a sign, blanks, "12Q", "1.5.2", "1.5") / -ERANGE (over 2^64-1);
 * *out is untouched on error. */
int cli_parse_size(const char *s, unsigned long long *out);
/* "on" -> true, "off" -> false. 0, or -EINVAL for anything else. */
int cli_parse_onoff(const char *s, bool *out);

struct sched_limits;
/* Reads one read-shaping option (--weight, --read-rate, --read-iops,
 * --read-reserve) of command cmd into l. CLI_EXIT_OK, or CLI_EXIT_USAGE
 * after a message naming the option and value. */
int cli_read_shaping_arg(const char *cmd, const char *opt, const char *arg,
                         struct sched_limits *l);

/* Resolves the STATE operand (realpath) into newly allocated *state and
 * checks that it holds a volume (volume.conf loads); when cfg is not NULL
 * the configuration is left in it. Prints the reason and returns
 * CLI_EXIT_FAIL when not; CLI_EXIT_OK otherwise. */
int cli_volume_open(const char *arg, char **state, struct vol_config *cfg);

/* Prints the message of a failed control-socket call (rc and err of
 * ctl_call) and returns CLI_EXIT_FAIL. When no daemon runs, the message
 * says so and how to start one; otherwise it is "what: <message>". */
int cli_ctl_fail(const char *state, const char *what, int rc,
                 const struct ctl_err *err);

/* Takes STATE/daemon.lock (created 0600 when missing) with
 * flock(LOCK_EX | LOCK_NB): holding it proves no daemon serves the volume,
 * and keeps one from starting until the fd is closed. Returns the locked
 * fd, -EWOULDBLOCK when a daemon holds the lock, or -errno. */
int cli_daemon_lock(const char *state);

/* Prints "lanefs: S: a daemon (pid P) WHAT" for a daemon holding
 * STATE/daemon.lock (the pid from STATE/daemon.pid when readable). */
void cli_daemon_busy(const char *state, const char *what);

/* Sleeps ms milliseconds (polling loops of the commands). */
void cli_sleep_ms(long ms);

/* A subcommand of a command (`lanefs agent set`, `lanefs volume set`). */
struct cli_sub {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the subcommand */
};

/* Runs the subcommand named by argv[1] among the n of subs, with argv from
 * there; -h/--help prints usage. A missing or unknown subcommand is a usage
 * error naming the ones there are. Returns the exit code. */
int cli_run_sub(const char *cmd, const struct cli_sub *subs, size_t n,
                void (*usage)(FILE *out), int argc, char **argv);

/* Formats a byte count for people: "512", "1.5K", "20M" (powers of 1024). */
void cli_fmt_size(char *buf, size_t len, unsigned long long bytes);

/* Formats a duration in seconds: "42s", "5m10s", "3h02m", "2d04h". */
void cli_fmt_duration(char *buf, size_t len, long long seconds);

#endif
