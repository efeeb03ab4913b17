/* test_names.c - POSIX behaviour that depends on how names map to kernel
 * inodes: every name of a hard-linked file shows the same attributes after
 * a change through another name, an open file keeps answering fstat and
 * fchmod after its last name is gone, and a new name belongs to the user
 * and group that made it. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_N(name) Test(names, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

static const char *M;

static char *m(const char *rel) { return h_str("%s/%s", M, rel); }

static struct stat must_lstat(const char *path)
{
    struct stat st;
    int rc = h_lstat(path, &st);
    cr_assert_eq(rc, 0, "lstat %s: %s", path, h_errname(-rc));
    return st;
}

/* A fifo with three names: chmod, chown and unlink through one name are
 * seen at once through the others (pjdfstest link/00 does this). */
TEST_N(hard_linked_fifo_names_agree)
{
    h_init(NULL);
    M = h_mount("a");
    cr_assert_eq(mkfifo(m("n0"), 0644), 0, "mkfifo: %s", strerror(errno));
    cr_assert_eq(link(m("n0"), m("n1")), 0, "link: %s", strerror(errno));
    cr_assert_eq(must_lstat(m("n0")).st_nlink, 2);
    cr_assert_eq(link(m("n1"), m("n2")), 0, "link: %s", strerror(errno));
    cr_assert_eq(must_lstat(m("n0")).st_nlink, 3, "n0 nlink after the second link");
    cr_assert_eq(chmod(m("n1"), 0201), 0);
    cr_assert_eq(lchown(m("n1"), 65534, 65533), 0);
    const char *names[] = { "n0", "n1", "n2" };
    for (size_t i = 0; i < 3; i++) {
        struct stat st = must_lstat(m(names[i]));
        cr_assert_eq(st.st_mode & 07777, 0201, "%s mode %o", names[i], st.st_mode & 07777);
        cr_assert_eq(st.st_uid, 65534, "%s uid %u", names[i], st.st_uid);
        cr_assert_eq(st.st_gid, 65533, "%s gid %u", names[i], st.st_gid);
        cr_assert_eq(st.st_nlink, 3, "%s nlink %lu", names[i], (unsigned long)st.st_nlink);
    }
    cr_assert_eq(unlink(m("n0")), 0);
    cr_assert_eq(must_lstat(m("n1")).st_nlink, 2, "n1 nlink after unlink n0");
    cr_assert_eq(must_lstat(m("n2")).st_nlink, 2, "n2 nlink after unlink n0");
}

/* open, unlink, then fstat and fchmod on the descriptor (pjdfstest
 * unlink/14): the file lives on while it is open. */
TEST_N(unlinked_open_file_answers_fstat_and_fchmod)
{
    h_init(NULL);
    M = h_mount("a");
    h_put(m("f"), "data", 0644);
    int fd = open(m("f"), O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(unlink(m("f")), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0, "fstat of an unlinked open file: %s", strerror(errno));
    cr_assert_eq(st.st_nlink, 0);
    cr_assert_eq(st.st_size, 4);
    cr_assert_eq(fchmod(fd, 0600), 0, "fchmod of an unlinked open file: %s", strerror(errno));
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);
    cr_assert_eq(pwrite(fd, "more", 4, 4), 4);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 8);
    close(fd);
    cr_assert_eq(h_lstat(m("f"), &st), -ENOENT);
}

/* The same for a lower file: the write-open copies it up, and the unlink
 * leaves a whiteout at its name. The open file must still answer as the
 * file it is, never as what now lies at its old path. */
TEST_N(unlinked_open_copy_of_a_lower_file_answers_as_itself)
{
    h_put(h_str("%s/f", H.lower), "data", 0644);
    h_init(NULL);
    M = h_mount("a");
    struct stat st;
    cr_assert_eq(stat(m("f"), &st), 0);      /* the node knows where f lives */
    int fd = open(m("f"), O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(unlink(m("f")), 0);
    cr_assert_eq(fstat(fd, &st), 0, "fstat of an unlinked open file: %s", strerror(errno));
    cr_assert(S_ISREG(st.st_mode), "the unlinked file answers as mode %o", st.st_mode);
    cr_assert_eq(st.st_size, 4);
    cr_assert_eq(fchmod(fd, 0600), 0, "fchmod of an unlinked open file: %s", strerror(errno));
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600, "mode %o", st.st_mode);
    close(fd);
    cr_assert_eq(h_lstat(m("f"), &st), -ENOENT);
}

/* In a child running as uid:gid, makes a file, a directory, a fifo and a
 * symlink under dir; exits 0 when all four were made. */
static void make_as(uid_t uid, gid_t gid, const char *dir)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* From inside dir: the test's own directories above the mount
         * are not searchable by other users. */
        if (chdir(dir) < 0 || setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
            _exit(2);
        int fd = open("file", O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || close(fd) < 0 || mkdir("dir", 0755) < 0 ||
            mkfifo("fifo", 0644) < 0 || symlink("file", "link") < 0)
            _exit(1);
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "making entries as %u:%u failed (status 0x%x)", uid, gid, status);
}

/* The daemon makes every entry as root and hands it over; a caller that is
 * root itself needs no handing over. Both must end with the caller's
 * owner, in a directory of the upper and in one of the lower. */
TEST_N(new_entries_belong_to_their_maker)
{
    cr_assert_eq(mkdir(h_str("%s/lowdir", H.lower), 0777), 0);
    cr_assert_eq(chmod(h_str("%s/lowdir", H.lower), 0777), 0);
    h_init(NULL);
    M = h_mount("a");
    cr_assert_eq(mkdir(m("up"), 0777), 0);
    cr_assert_eq(chmod(m("up"), 0777), 0);
    const char *dirs[] = { "up", "lowdir" };
    const char *names[] = { "file", "dir", "fifo", "link" };
    for (size_t d = 0; d < 2; d++) {
        cr_assert_eq(mkdir(m(h_str("%s/root", dirs[d])), 0777), 0);
        cr_assert_eq(chmod(m(h_str("%s/root", dirs[d])), 0777), 0);
        cr_assert_eq(mkdir(m(h_str("%s/user", dirs[d])), 0777), 0);
        cr_assert_eq(chmod(m(h_str("%s/user", dirs[d])), 0777), 0);
        make_as(0, 0, m(h_str("%s/root", dirs[d])));
        make_as(1234, 2345, m(h_str("%s/user", dirs[d])));
        for (size_t i = 0; i < 4; i++) {
            struct stat r = must_lstat(m(h_str("%s/root/%s", dirs[d], names[i])));
            struct stat u = must_lstat(m(h_str("%s/user/%s", dirs[d], names[i])));
            cr_assert(r.st_uid == 0 && r.st_gid == 0, "%s/root/%s is %u:%u", dirs[d],
                      names[i], r.st_uid, r.st_gid);
            cr_assert(u.st_uid == 1234 && u.st_gid == 2345, "%s/user/%s is %u:%u",
                      dirs[d], names[i], u.st_uid, u.st_gid);
        }
    }
}
