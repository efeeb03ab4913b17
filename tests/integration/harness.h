/* harness.h - shared machinery of the integration tests.
 *
 * Every test owns one private temp root (H.root), created by h_setup and
 * removed by h_teardown, holding:
 *   lower/   the shared read-only data of the volume
 *   state/   the volume's state directory
 *   mnt/NAME the mount point of agent NAME
 *   log/     stdout/stderr of every CLI command the test ran
 * Tests register h_setup/h_teardown as Criterion .init/.fini, so teardown
 * also runs after a failed assertion. A reaper process started by h_setup
 * cleans up the root if the test process dies without reaching teardown
 * (Criterion timeout, crash), so no test leaves a mount behind.
 *
 * Helpers that cannot reasonably fail (creating test fixtures) assert
 * themselves; helpers that probe the filesystem under test return -errno so
 * the test can assert the exact value.
 */
#ifndef LANEFS_IT_HARNESS_H
#define LANEFS_IT_HARNESS_H

#include <criterion/criterion.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Criterion per-test timeout (seconds): generous, only a guard against hangs. */
#define H_TIMEOUT 240.0
/* Deadline for one CLI command and for a mount to show up or go away. */
#define H_CMD_TIMEOUT_MS   60000
#define H_MOUNT_WAIT_MS    30000

#define H_MAX_MOUNTS 110

struct h_mount {
    char agent[80];
    char *mnt;          /* mount point (arena string) */
    bool live;          /* mounted by the test and not yet unmounted */
};

struct h_world {
    char *lanefs;       /* absolute path of the lanefs binary ($LANEFS) */
    char *root;         /* the test's temp root */
    char *lower;        /* root/lower */
    char *state;        /* root/state */
    int reaper_fd;      /* write end of the reaper's pipe, -1 when none */
    pid_t reaper_pid;
    struct h_mount mounts[H_MAX_MOUNTS];
    int n_mounts;
    int n_cmds;         /* commands run so far, names log files */
};

extern struct h_world H;

/* Criterion fixtures. */
void h_setup(void);
void h_teardown(void);

/* ---- strings ---------------------------------------------------------- */

/* printf into a string that lives until teardown. Never NULL. */
char *h_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, as a path below the temp root: h_at("lower/%s", x). */
#define h_at(...) h_str("%s/%s", H.root, h_str(__VA_ARGS__))
/* Symbolic errno name ("ENOENT"), or "0". */
const char *h_errname(int e);

/* ---- running the CLI -------------------------------------------------- */

struct h_res {
    int code;           /* exit status, 128+signal, or -1 on timeout */
    char out[65536];    /* stdout, truncated, NUL-terminated */
    char err[8192];     /* stderr, truncated, NUL-terminated */
};

/* Runs `lanefs ARGS...` (NULL-terminated) with env_extra ("K=V" strings,
 * NULL-terminated, may be NULL) added to the environment, killing it after
 * H_CMD_TIMEOUT_MS. Returns r->code. */
int h_lanefs(struct h_res *r, char *const *env_extra, ...)
    __attribute__((sentinel));

/* `lanefs init STATE --lower LOWER EXTRA...` (NULL-terminated; h_init(NULL)
 * for none); asserts success. */
void h_init(const char *first_extra, ...);

/* Mounts agent at root/mnt/AGENT with `lanefs mount`, asserts it succeeded
 * and the mount is live in /proc/self/mountinfo; returns the mount point. */
const char *h_mount(const char *agent);
const char *h_mount_env(const char *agent, char *const *env_extra);
/* Mount point the harness uses for agent (whether mounted or not). */
const char *h_mnt(const char *agent);
/* `lanefs umount MNT`; asserts success and that the mount is gone. */
void h_umount(const char *agent);
/* Marks agent's mount as gone (the test detached it itself). */
void h_forget_mount(const char *agent);

/* STATE/agents/AGENT/SUB. */
char *h_agent_path(const char *agent, const char *sub);

/* ---- mounts ----------------------------------------------------------- */

/* fstype of the mount whose mount point is exactly path, "" when none. */
const char *h_mount_fstype(const char *path);
/* Options of that mount: the per-mount field ("rw,nosuid,...") and the
 * superblock field ("rw,user_id=0,allow_other,...") joined by a blank; ""
 * when there is no such mount. */
const char *h_mount_opts(const char *path);
/* Polls mountinfo until path is (want) or is not (!want) a fuse.lanefs
 * mount, up to timeout_ms. Returns whether the wish came true. */
bool h_wait_mount(const char *path, bool want, int timeout_ms);

/* ---- files ------------------------------------------------------------ */

/* Creates or truncates path with content, mode (asserts). */
void h_put(const char *path, const char *content, mode_t mode);
void h_put_bytes(const char *path, const void *buf, size_t len, mode_t mode);
/* Reads path into an arena string; NULL with errno set on failure. */
char *h_get(const char *path);
/* mkdir -p (asserts). */
void h_mkdir_p(const char *path, mode_t mode);
/* symlink (asserts). */
void h_symlink(const char *target, const char *linkpath);
/* lstat, returning 0 or -errno. */
int h_lstat(const char *path, struct stat *st);
/* true when path exists (lstat). */
bool h_exists(const char *path);
/* Sorted names in a directory (no . and ..) joined by ' ', "" when empty,
 * or "!ENAME" when it cannot be listed. */
char *h_ls(const char *path);
/* Sets atime/mtime (seconds) without following a final symlink (asserts). */
void h_set_times(const char *path, time_t atime, time_t mtime);
/* Removes a tree without crossing mount points; ignores errors. */
void h_rm_rf(const char *path);

/* ---- the volume daemon (harness_daemon.c) ---------------------------- */

/* Pid in STATE/daemon.pid, or 0 when there is none. */
pid_t h_daemon_pid(void);
/* The Threads: line of /proc/PID/status, or -1. */
int h_threads(pid_t pid);
/* text parsed as JSON; asserts that it is, naming what it is in the
 * message (the caller deletes it). */
struct cJSON *h_json(const char *text, const char *what);
/* `lanefs status STATE --json`, parsed (asserts; the caller deletes it). */
struct cJSON *h_status(void);
/* The object of agent in the "agents" list of st (`status --json` or
 * `agents --json`), or NULL. */
struct cJSON *h_status_agent(struct cJSON *st, const char *agent);
/* Waits up to ms for pid to exit (a zombie counts as gone). */
bool h_wait_pid_gone(pid_t pid, int ms);
/* A connection to STATE/control.sock (asserts). */
int h_ctl_connect(void);
/* Sends len bytes on fd; false when the peer is gone. */
bool h_ctl_send(int fd, const void *buf, size_t len);
/* One reply line (without '\n') read from fd within ms, as an arena
 * string; NULL on EOF, error or timeout (errno ETIMEDOUT). */
char *h_ctl_read_line(int fd, int ms);
/* Connects, sends line + '\n', returns the reply line (asserts). */
char *h_ctl(const char *line);
/* Waits up to ms until file holds needle. */
bool h_wait_file_has(const char *path, const char *needle, int ms);

/* ---- snapshots -------------------------------------------------------- */

/* A line per entry below dir (dir itself included as "."), sorted by path:
 * type, mode, uid, gid, size, nlink, ino, atime (not for symlinks: see
 * harness_snap.c), mtime, ctime (ns), SHA-256 of the content or the symlink
 * target, and every xattr with its value.
 * Reads with O_NOATIME so taking a snapshot changes nothing in it. */
char *h_snapshot(const char *dir);
/* Asserts two snapshots are equal, printing the first differing line. */
void h_assert_same_snapshot(const char *before, const char *after,
                            const char *what);

#endif
