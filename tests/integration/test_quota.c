/* test_quota.c - per-agent quotas: the agent over its limit gets EDQUOT,
 * another agent of the volume does not, and statfs shows each its own. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TEST_Q(name) Test(quota, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

static const char *mount_with_quota(const char *agent, const char *bytes,
                                    const char *inodes)
{
    const char *mnt = h_mnt(agent);
    h_mkdir_p(mnt, 0755);
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "mount", H.state, "--agent", agent, mnt,
                          "--quota-bytes", bytes, "--quota-inodes", inodes,
                          (char *)NULL), 0, "%s", r.err);
    cr_assert(h_wait_mount(mnt, true, H_MOUNT_WAIT_MS));
    return mnt;
}

/* Writes len bytes in 64 KiB pieces; 0 or the errno of the first failure. */
static int write_len(const char *path, size_t len)
{
    static char chunk[65536];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno;
    int err = 0;
    for (size_t done = 0; done < len && !err; done += sizeof chunk)
        if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
            err = errno;
    if (close(fd) < 0 && !err)
        err = errno;
    return err;
}

TEST_Q(limits_are_per_agent)
{
    h_put(h_str("%s/big", H.lower), "0123456789", 0644);
    h_init(NULL);
    const char *q = mount_with_quota("q", "1M", "8");
    const char *free_agent = h_mount("f");

    cr_assert_eq(write_len(h_str("%s/f1", q), 512 * 1024), 0);
    cr_assert_eq(write_len(h_str("%s/f2", q), 1024 * 1024), EDQUOT,
                 "writing past 1M did not fail with EDQUOT");
    /* The other agent writes the same without a limit. */
    cr_assert_eq(write_len(h_str("%s/f1", free_agent), 2 * 1024 * 1024), 0);

    /* statfs shows q its own limit and use; f sees the disk. */
    struct statvfs sq, sf;
    cr_assert_eq(statvfs(q, &sq), 0);
    cr_assert_eq(statvfs(free_agent, &sf), 0);
    cr_assert_eq((unsigned long long)sq.f_blocks * sq.f_frsize, 1024 * 1024);
    cr_assert(sq.f_bavail * sq.f_frsize < 512 * 1024, "q has %llu bytes left",
              (unsigned long long)(sq.f_bavail * sq.f_frsize));
    cr_assert_eq(sq.f_files, 8);
    cr_assert(sf.f_blocks * sf.f_frsize > 1024 * 1024);

    /* Inodes: names up to the limit, then EDQUOT; removing frees one. */
    int made = 0, err = 0;
    for (int i = 0; i < 16 && !err; i++) {
        int fd = open(h_str("%s/t%d", q, i), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            err = errno;
        else {
            close(fd);
            made++;
        }
    }
    cr_assert_eq(err, EDQUOT, "creating names past the limit: %s", strerror(err));
    cr_assert(made > 0 && made < 8, "made %d names", made);
    cr_assert_eq(unlink(h_str("%s/t0", q)), 0);
    int fd = open(h_str("%s/again", q), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "a name freed by unlink is not usable: %s", strerror(errno));
    close(fd);
    /* A copy-up counts too: q is at its inode limit now. */
    fd = open(h_str("%s/big", q), O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd < 0 && errno == EDQUOT, "copy-up past the inode limit: %s",
              fd < 0 ? strerror(errno) : "succeeded");
    /* Freeing space makes writes possible again. */
    cr_assert_eq(unlink(h_str("%s/f1", q)), 0);
    cr_assert_eq(write_len(h_str("%s/f2", q), 256 * 1024), 0);
}
