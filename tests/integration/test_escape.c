/* test_escape.c - symlinks in the lower never make the daemon touch anything
 * outside the volume.
 *
 * What can and cannot be tested from outside:
 * - When a process opens "mnt/link/x" the *kernel* asks the daemon to look up
 *   "link", reads its target and follows it in the caller's own namespace.
 *   Following "/etc" there is ordinary symlink semantics, not an escape of
 *   the daemon, so host-side opens through outward links prove nothing.
 *   Instead one test chroots into the mount, which is how a sandbox sees its
 *   view: there, absolute and ".." links must resolve inside the view.
 * - The daemon itself resolves layer paths. It escapes if, while doing so,
 *   it follows a lower symlink: when a name is a symlink in the lower but
 *   a directory in the agent's upper (whiteout + mkdir, rename, exchange),
 *   when it copies up a symlink's metadata, or when it moves a lower
 *   directory that contains outward symlinks. Those tests check that a
 *   canary directory outside the volume (its entries carry old times, so
 *   even a read without O_NOATIME shows) is unchanged, that nothing new
 *   appears next to the volume, and that no canary content was copied in.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_ESC(name) Test(escape, name, .init = h_setup, .fini = h_teardown, \
                            .timeout = H_TIMEOUT)

static const char *M;           /* agent a's mount point */
static char *canary;            /* ROOT/canary, outside the volume */
static char *canary_before, *lower_before;

static char *m(const char *rel) { return h_str("%s/%s", M, rel); }
static char *lo(const char *rel) { return h_str("%s/%s", H.lower, rel); }

static int old_times(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    struct timespec ts[2] = { { 1000000000, 0 }, { 1100000000, 0 } };
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void setup_volume(void)
{
    canary = h_at("canary");
    h_mkdir_p(canary, 0755);
    h_put(h_str("%s/victim", canary), "CANARY\n", 0644);
    nftw(canary, old_times, 8, FTW_PHYS);
    canary_before = h_snapshot(canary);

    h_symlink("/etc", lo("evil"));
    h_symlink(canary, lo("evil2"));
    h_symlink("../../..", lo("up"));
    h_symlink(canary, lo("sx"));
    h_symlink("../canary", lo("sy"));
    h_symlink("../canary", lo("sz"));
    h_symlink(h_str("%s/victim", canary), lo("sf"));
    h_mkdir_p(lo("d"), 0755);
    h_put(lo("d/f"), "D\n", 0644);
    h_symlink("d", lo("ld"));
    h_mkdir_p(lo("dd/inner"), 0755);
    h_symlink(canary, lo("dd/out"));
    h_symlink("../../canary/victim", lo("dd/inner/rel"));
    h_put(lo("dd/inner/file"), "inner\n", 0644);
    lower_before = h_snapshot(H.lower);

    h_init(NULL);
    M = h_mount("a");
}

static bool found_victim;

static int look_for_victim(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)type;
    if (S_ISREG(st->st_mode) && strcmp(path + f->base, "victim") == 0)
        found_victim = true;
    return 0;
}

/* Everything outside the agent's layers is as it was. */
static void assert_outside_untouched(void)
{
    h_assert_same_snapshot(canary_before, h_snapshot(canary), "canary dir outside the volume");
    cr_assert_str_eq(h_ls(H.root), "canary log lower mnt state",
                     "new entries appeared next to the volume");
    found_victim = false;
    nftw(H.state, look_for_victim, 16, FTW_PHYS | FTW_MOUNT);
    cr_assert(!found_victim, "a copy of the canary's victim file appeared in the state dir");
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower");
}

static void assert_enoent(const char *path)
{
    struct stat st;
    int rc = h_lstat(path, &st);
    cr_assert_eq(rc, -ENOENT, "lstat %s: expected ENOENT, got %s", path,
                 rc == 0 ? "an entry" : h_errname(-rc));
}

/* Runs probes inside chroot(mount): the sandbox's own view. */
TEST_ESC(chroot_view_resolves_outward_links_inside_the_view)
{
    setup_volume();
    char *host_probe = h_str("/etc/lanefs-escape-probe-%d", (int)getpid());
    int p[2];
    cr_assert(pipe(p) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        if (chroot(M) != 0 || chdir("/") != 0)
            _exit(90);
        struct { const char *path; int flags; } probes[] = {
            /* "/etc" of the view does not exist: no host passwd. */
            { "/evil/passwd", O_RDONLY },
            /* The canary's absolute path does not exist in the view. */
            { "/evil2/victim", O_RDONLY },
            { "/evil2/victim", O_WRONLY | O_TRUNC },
            { "/evil2/planted", O_WRONLY | O_CREAT },
            { host_probe + 0, O_WRONLY | O_CREAT },
            { "/evil/lanefs-escape-probe", O_WRONLY | O_CREAT },
            /* ".." stops at the view's root: this is /d/created. */
            { "/up/d/created", O_WRONLY | O_CREAT },
            { "/up/up/up/d/f", O_RDONLY },
        };
        for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
            errno = 0;
            int fd = open(probes[i].path, probes[i].flags | O_CLOEXEC, 0644);
            dprintf(p[1], "%s %s\n", probes[i].path, fd >= 0 ? "ok" : h_errname(errno));
            if (fd >= 0)
                close(fd);
        }
        _exit(0);
    }
    close(p[1]);
    char out[4096] = "";
    size_t len = 0;
    ssize_t n;
    while (len < sizeof out - 1 && (n = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    bool leaked = h_exists(host_probe);
    if (leaked)
        unlink(host_probe);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "chroot child failed (status 0x%x)", status);
    cr_assert(!leaked, "a file was created in the host's /etc");
    char *want = h_str("/evil/passwd ENOENT\n"
                       "/evil2/victim ENOENT\n"
                       "/evil2/victim ENOENT\n"
                       "/evil2/planted ENOENT\n"
                       "%s ENOENT\n"
                       "/evil/lanefs-escape-probe ENOENT\n"
                       "/up/d/created ok\n"
                       "/up/up/up/d/f ok\n", host_probe);
    cr_assert_str_eq(out, want, "probes inside chroot(mount):\n%s", out);
    cr_assert(h_exists(m("d/created")), "/up/d/created did not land at d/created in the view");
    assert_outside_untouched();
}

/* Whiteout + mkdir over a lower symlink: the new directory is the agent's
 * own; the daemon must not merge it with (or create in) the link target. */
TEST_ESC(dir_over_deleted_lower_symlink_is_not_merged_with_its_target)
{
    setup_volume();
    const char *links[] = { "sx", "sy" };
    for (size_t i = 0; i < 2; i++) {
        const char *l = links[i];
        cr_assert_eq(unlink(m(l)), 0, "unlink %s: %s", l, strerror(errno));
        cr_assert_eq(mkdir(m(l), 0755), 0, "mkdir %s: %s", l, strerror(errno));
        cr_assert_str_eq(h_ls(m(l)), "", "new dir %s over a deleted link lists the link target", l);
        assert_enoent(m(h_str("%s/victim", l)));
        h_put(m(h_str("%s/new", l)), "mine", 0644);
        cr_assert_str_eq(h_ls(m(l)), "new");
        cr_assert_str_eq(h_get(m(h_str("%s/new", l))), "mine");
        cr_assert_eq(unlink(m(h_str("%s/new", l))), 0);
        cr_assert_eq(rmdir(m(l)), 0, "rmdir %s: %s", l, strerror(errno));
        /* The deleted lower link stays deleted. */
        assert_enoent(m(l));
    }
    assert_outside_untouched();
}

/* A directory renamed or exchanged onto a lower symlink's name: without an
 * opaque marker a naive merge would look into lower/NAME, i.e. follow it. */
TEST_ESC(dir_renamed_onto_lower_symlink_name_is_not_merged)
{
    setup_volume();
    cr_assert_eq(mkdir(m("mine"), 0755), 0);
    h_put(m("mine/own"), "own", 0644);
    cr_assert_eq(unlink(m("sy")), 0, "unlink sy: %s", strerror(errno));
    cr_assert_eq(rename(m("mine"), m("sy")), 0, "rename mine -> sy: %s", strerror(errno));
    cr_assert_str_eq(h_ls(m("sy")), "own");
    assert_enoent(m("sy/victim"));
    h_put(m("sy/more"), "more", 0644);
    cr_assert_str_eq(h_ls(m("sy")), "more own");

    cr_assert_eq(mkdir(m("mine2"), 0755), 0);
    h_put(m("mine2/own2"), "own2", 0644);
    long rc = syscall(SYS_renameat2, AT_FDCWD, m("mine2"), AT_FDCWD, m("sz"), RENAME_EXCHANGE);
    cr_assert_eq(rc, 0, "exchange mine2 <-> sz: %s", strerror(errno));
    struct stat st;
    cr_assert_eq(h_lstat(m("sz"), &st), 0);
    cr_assert(S_ISDIR(st.st_mode), "sz after exchange: mode 0%o, expected a dir", st.st_mode);
    cr_assert_str_eq(h_ls(m("sz")), "own2");
    assert_enoent(m("sz/victim"));
    cr_assert_eq(h_lstat(m("mine2"), &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "mine2 after exchange: mode 0%o, expected a symlink", st.st_mode);
    char t[PATH_MAX];
    ssize_t n = readlink(m("mine2"), t, sizeof t - 1);
    cr_assert(n >= 0, "readlink mine2: %s", strerror(errno));
    t[n] = '\0';
    cr_assert_str_eq(t, "../canary");
    assert_outside_untouched();
}

/* Writing through a lower symlink to a lower dir changes the agent's view
 * of the target (the kernel followed the link in the view), never the lower
 * target file nor the link. */
TEST_ESC(write_via_symlinked_lower_parent_changes_only_the_view)
{
    setup_volume();
    h_put(m("ld/f"), "via link\n", 0644);
    cr_assert_str_eq(h_get(m("d/f")), "via link\n");
    h_put(m("ld/new"), "new\n", 0644);
    cr_assert_str_eq(h_ls(m("d")), "f new");
    char t[PATH_MAX];
    ssize_t n = readlink(m("ld"), t, sizeof t - 1);
    cr_assert(n >= 0, "readlink ld: %s", strerror(errno));
    t[n] = '\0';
    cr_assert_str_eq(t, "d");
    assert_outside_untouched();
}

/* chown/utimes on an outward symlink itself (no-follow) copies up the link,
 * not its target, and changes only the link. */
TEST_ESC(metadata_change_on_outward_symlink_stays_on_the_link)
{
    setup_volume();
    cr_assert_eq(lchown(m("sf"), 1234, 1234), 0, "lchown sf: %s", strerror(errno));
    struct timespec ts[2] = { { 7, 0 }, { 8, 0 } };
    cr_assert_eq(utimensat(AT_FDCWD, m("sf"), ts, AT_SYMLINK_NOFOLLOW), 0,
                 "utimensat sf: %s", strerror(errno));
    struct stat st;
    cr_assert_eq(h_lstat(m("sf"), &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "sf is no longer a symlink in the view (mode 0%o)", st.st_mode);
    cr_assert_eq(st.st_uid, 1234);
    cr_assert_eq(st.st_gid, 1234);
    cr_assert_eq(st.st_mtim.tv_sec, 8);
    char t[PATH_MAX];
    ssize_t n = readlink(m("sf"), t, sizeof t - 1);
    cr_assert(n >= 0);
    t[n] = '\0';
    cr_assert_str_eq(t, h_str("%s/victim", canary));
    char *up = h_str("%s/sf", h_agent_path("a", "upper"));
    if (h_lstat(up, &st) == 0)
        cr_assert(S_ISLNK(st.st_mode), "copy-up of symlink sf is not a symlink (mode 0%o)",
                  st.st_mode);
    assert_outside_untouched();
}

/* Moving a lower directory (which may copy its tree up) keeps the outward
 * symlinks below it as symlinks and copies nothing from their targets. */
TEST_ESC(renaming_lower_dir_keeps_outward_links_as_links)
{
    setup_volume();
    cr_assert_eq(rename(m("dd"), m("dd2")), 0, "rename dd -> dd2: %s", strerror(errno));
    struct stat st;
    const char *links[][2] = {
        { "dd2/out", canary }, { "dd2/inner/rel", "../../canary/victim" },
    };
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(h_lstat(m(links[i][0]), &st), 0, "%s missing after rename", links[i][0]);
        cr_assert(S_ISLNK(st.st_mode), "%s is no longer a symlink (mode 0%o)",
                  links[i][0], st.st_mode);
        char t[PATH_MAX];
        ssize_t n = readlink(m(links[i][0]), t, sizeof t - 1);
        cr_assert(n >= 0);
        t[n] = '\0';
        cr_assert_str_eq(t, links[i][1]);
    }
    cr_assert_str_eq(h_get(m("dd2/inner/file")), "inner\n");
    assert_enoent(m("dd"));
    assert_outside_untouched();
}
