/* test_cli.c - every refusal of `lanefs init` and `lanefs mount` exits
 * non-zero with a "lanefs: " message and leaves nothing behind. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_CLI(name) Test(cli, name, .init = h_setup, .fini = h_teardown, \
                            .timeout = H_TIMEOUT)

/* A refusal is an ordinary non-zero exit (not a crash, not a hang) with a
 * message on stderr that names the tool. */
static void assert_refused(const struct h_res *r, const char *what)
{
    cr_assert(r->code > 0 && r->code < 128,
              "%s: expected a refusal (exit 1..127), got exit %d; stderr: %s",
              what, r->code, r->err);
    cr_assert(strncmp(r->err, "lanefs: ", 8) == 0,
              "%s: stderr must start with \"lanefs: \", got \"%s\"", what, r->err);
}

static void assert_no_conf(const char *state, const char *what)
{
    cr_assert(!h_exists(h_str("%s/volume.conf", state)),
              "%s: refused, yet %s/volume.conf exists", what, state);
}

TEST_CLI(init_creates_volume_conf)
{
    h_init(NULL);
    struct stat st;
    cr_assert_eq(h_lstat(h_str("%s/volume.conf", H.state), &st), 0);
    cr_assert(S_ISREG(st.st_mode));
}

TEST_CLI(init_refuses_missing_lower)
{
    struct h_res r;
    h_lanefs(&r, NULL, "init", H.state, "--lower", h_at("nope"), (char *)NULL);
    assert_refused(&r, "missing lower");
    assert_no_conf(H.state, "missing lower");
}

TEST_CLI(init_refuses_lower_not_a_directory)
{
    h_put(h_at("plainfile"), "x", 0644);
    struct h_res r;
    h_lanefs(&r, NULL, "init", H.state, "--lower", h_at("plainfile"), (char *)NULL);
    assert_refused(&r, "lower is a regular file");
    assert_no_conf(H.state, "lower is a regular file");
}

TEST_CLI(init_refuses_state_inside_lower)
{
    h_put(h_str("%s/data", H.lower), "shared", 0644);
    char *before = h_snapshot(H.lower);
    /* Directly below, equal, and below through a symlink to the lower: the
     * check must compare canonical paths, not strings. */
    h_symlink(H.lower, h_at("alias"));
    const char *states[] = {
        h_str("%s/st", H.lower), H.lower, h_at("alias/st"), h_str("%s/deep/er/st", H.lower),
    };
    for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
        struct h_res r;
        h_lanefs(&r, NULL, "init", states[i], "--lower", H.lower, (char *)NULL);
        char *what = h_str("state %s inside lower %s", states[i], H.lower);
        assert_refused(&r, what);
        assert_no_conf(states[i], what);
    }
    /* The refusal must not have created anything in the lower either. */
    h_assert_same_snapshot(before, h_snapshot(H.lower), "lower after refused init");
}

TEST_CLI(init_refuses_lower_inside_state)
{
    char *state = h_at("st");
    char *lower = h_at("st/data");
    h_mkdir_p(lower, 0755);
    struct h_res r;
    h_lanefs(&r, NULL, "init", state, "--lower", lower, (char *)NULL);
    assert_refused(&r, "lower inside state");
    assert_no_conf(state, "lower inside state");
}

TEST_CLI(init_refuses_existing_volume_without_force)
{
    h_init(NULL);
    char *conf = h_str("%s/volume.conf", H.state);
    char *first = h_get(conf);
    cr_assert_not_null(first);

    struct h_res r;
    h_lanefs(&r, NULL, "init", H.state, "--lower", H.lower, "--temp", "scratch", (char *)NULL);
    assert_refused(&r, "init over an existing volume");
    char *again = h_get(conf);
    cr_assert_not_null(again, "volume.conf vanished after a refused re-init: %s",
                       strerror(errno));
    cr_assert_str_eq(again, first, "a refused re-init rewrote volume.conf");

    h_lanefs(&r, NULL, "init", H.state, "--lower", H.lower, "--temp", "scratch",
             "--force", (char *)NULL);
    cr_assert_eq(r.code, 0, "init --force over an existing volume: exit %d: %s", r.code, r.err);
    cr_assert(strstr(h_get(conf), "scratch") != NULL,
              "init --force did not write the new --temp path into volume.conf");
}

TEST_CLI(init_refuses_bad_temp_and_shared_paths)
{
    /* Paths that cannot name something inside the view. */
    const char *bad[] = { "../x", "", "a/../../x", "..", ".", "/", "x/./y" };
    const char *opts[] = { "--temp", "--shared" };
    int k = 0;
    for (size_t o = 0; o < 2; o++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++, k++) {
            char *state = h_at("st%d", k);
            struct h_res r;
            h_lanefs(&r, NULL, "init", state, "--lower", H.lower, opts[o], bad[i],
                     (char *)NULL);
            char *what = h_str("init %s \"%s\"", opts[o], bad[i]);
            assert_refused(&r, what);
            assert_no_conf(state, what);
        }
}

TEST_CLI(mount_refuses_invalid_agent_names)
{
    h_init(NULL);
    char too_long[66];
    memset(too_long, 'a', 65);
    too_long[65] = '\0';
    const char *bad[] = {
        "A", "aB", "-a", ".a", "_a", "", "a/b", "a b", "..", ".", "a:b", "é", too_long,
    };
    char *mnt = h_at("mnt/x");
    h_mkdir_p(mnt, 0755);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct h_res r;
        h_lanefs(&r, NULL, "mount", H.state, "--agent", bad[i], mnt, (char *)NULL);
        char *what = h_str("mount --agent \"%s\"", bad[i]);
        cr_assert_eq(r.code, 2, "%s: expected exit 2, got %d; stderr: %s", what, r.code, r.err);
        assert_refused(&r, what);
        cr_assert_str_eq(h_mount_fstype(mnt), "", "%s: something got mounted", what);
    }
    /* No refused name may have created agent state (".." would be STATE). */
    char *agents = h_str("%s/agents", H.state);
    char *left = h_exists(agents) ? h_ls(agents) : "";
    cr_assert_str_eq(left, "", "refused agent names left state: %s", left);
}

TEST_CLI(mount_accepts_boundary_agent_names)
{
    h_init(NULL);
    char longest[65];
    longest[0] = '0';
    memset(longest + 1, 'z', 63);
    longest[64] = '\0';
    const char *good[] = { longest, "0a.b_c-d", "a" };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        const char *mnt = h_mount(good[i]);
        h_put(h_str("%s/probe", mnt), good[i], 0644);
        cr_assert_str_eq(h_get(h_str("%s/probe", mnt)), good[i]);
        h_umount(good[i]);
    }
}

TEST_CLI(mount_refuses_agent_already_mounted)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *second = h_at("mnt/a-again");
    h_mkdir_p(second, 0755);
    struct h_res r;
    h_lanefs(&r, NULL, "mount", H.state, "--agent", "a", second, (char *)NULL);
    assert_refused(&r, "second mount of agent a");
    cr_assert_str_eq(h_mount_fstype(second), "", "second mount of agent a is live");
    /* The first mount keeps working. */
    h_put(h_str("%s/still", mnt), "ok", 0644);
    cr_assert_str_eq(h_get(h_str("%s/still", mnt)), "ok");
    cr_assert_str_eq(h_mount_fstype(mnt), "fuse.lanefs");
}

TEST_CLI(mount_refuses_directory_that_is_not_a_volume)
{
    char *notvol = h_at("notvol");
    h_mkdir_p(notvol, 0755);
    char *mnt = h_at("mnt/a");
    h_mkdir_p(mnt, 0755);
    struct h_res r;
    h_lanefs(&r, NULL, "mount", notvol, "--agent", "a", mnt, (char *)NULL);
    assert_refused(&r, "mount of a directory without volume.conf");
    cr_assert_str_eq(h_mount_fstype(mnt), "");
}

TEST_CLI(mount_refuses_missing_mount_point)
{
    h_init(NULL);
    struct h_res r;
    h_lanefs(&r, NULL, "mount", H.state, "--agent", "a", h_at("mnt/none"), (char *)NULL);
    assert_refused(&r, "mount on a missing mount point");
    cr_assert_str_eq(h_mount_fstype(h_at("mnt/none")), "");
}

TEST_CLI(umount_refuses_what_is_not_a_lanefs_mount)
{
    char *dir = h_at("mnt/plain");
    h_mkdir_p(dir, 0755);
    struct h_res r;
    h_lanefs(&r, NULL, "umount", dir, (char *)NULL);
    assert_refused(&r, "umount of a plain directory");
    h_lanefs(&r, NULL, "umount", h_at("mnt/none"), (char *)NULL);
    assert_refused(&r, "umount of a missing path");
}

static bool pid_alive(pid_t pid)
{
    char *st = h_get(h_str("/proc/%d/stat", (int)pid));
    char *paren = st ? strrchr(st, ')') : NULL;
    return paren && paren[1] == ' ' && paren[2] != 'Z';
}

/* umount returns once the daemon has gone and the temp layer with it. */
TEST_CLI(umount_waits_for_the_daemon)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    h_put(h_str("%s/tmp/t", mnt), "t", 0644);
    char *pidtext = h_get(h_agent_path("a", "daemon.pid"));
    cr_assert_not_null(pidtext, "no daemon.pid while mounted");
    pid_t pid = (pid_t)atoi(pidtext);
    cr_assert(pid > 1 && pid_alive(pid), "daemon.pid names no live process: \"%s\"", pidtext);
    h_umount("a");
    cr_assert(!pid_alive(pid), "daemon %d still runs after umount returned", (int)pid);
    char *left = h_ls(h_agent_path("a", "temp"));
    cr_assert(strcmp(left, "") == 0 || strcmp(left, "!ENOENT") == 0,
              "temp layer after umount: %s", left);
    cr_assert_str_eq(h_ls(mnt), "", "the mount point is not the empty dir it was");
}

/* --lazy detaches a busy mount at once; open files keep working and the
 * session ends when the last one closes. */
TEST_CLI(umount_lazy_detaches_a_busy_mount)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    h_put(h_str("%s/tmp/t", mnt), "t", 0644);
    h_put(h_str("%s/f", mnt), "held open", 0644);
    int fd = open(h_str("%s/f", mnt), O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    pid_t pid = (pid_t)atoi(h_get(h_agent_path("a", "daemon.pid")));
    struct h_res r;
    h_lanefs(&r, NULL, "umount", mnt, "--lazy", (char *)NULL);
    cr_assert_eq(r.code, 0, "umount --lazy of a busy mount: exit %d: %s", r.code, r.err);
    cr_assert_str_eq(h_mount_fstype(mnt), "", "still mounted after umount --lazy");
    h_forget_mount("a");
    char buf[32] = "";
    cr_assert_eq(pread(fd, buf, sizeof buf - 1, 0), 9, "read from a lazily detached mount: %s",
                 strerror(errno));
    cr_assert_str_eq(buf, "held open");
    close(fd);
    bool gone = false;
    for (int waited = 0; !gone && waited < 30000; waited += 50) {
        gone = !pid_alive(pid);
        if (!gone)
            usleep(50 * 1000);
    }
    cr_assert(gone, "daemon still runs 30 s after the last file of a lazy umount closed");
    char *left = h_ls(h_agent_path("a", "temp"));
    cr_assert(strcmp(left, "") == 0 || strcmp(left, "!ENOENT") == 0,
              "temp layer after the lazy session ended: %s", left);
}

TEST_CLI(mount_options_and_fstype)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    cr_assert_str_eq(h_mount_fstype(mnt), "fuse.lanefs");
    /* Flags the kernel enforces whatever the daemon does: no setuid or
     * device from the volume takes effect, other users (container uids)
     * may enter, and the kernel checks mode bits. */
    const char *opts = h_str(",%s,", h_mount_opts(mnt));
    for (char *p = (char *)opts; *p; p++)
        if (*p == ' ')
            *p = ',';
    const char *want[] = { ",nosuid,", ",nodev,", ",allow_other,", ",default_permissions," };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert(strstr(opts, want[i]) != NULL, "mount options \"%s\" lack %s",
                  opts, want[i]);
}
