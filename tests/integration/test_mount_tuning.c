/* test_mount_tuning.c - what the daemon sets up for speed: the kernel's
 * read-ahead of each agent mount, raised from its 128 KiB FUSE default to
 * one maximal request, so a sequential reader costs a request per 1008 KiB; and
 * the layer roots' hint to spread their subdirectories over the disk. */
#include "harness.h"
#include "fs/ops.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define TEST_T(name) Test(tuning, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

/* read_ahead_kb of the filesystem mounted at mnt. */
static long readahead_kb(const char *mnt)
{
    struct stat st;
    cr_assert(stat(mnt, &st) == 0, "stat %s: %s", mnt, strerror(errno));
    char *path = h_str("/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
                       minor(st.st_dev));
    FILE *f = fopen(path, "r");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    long kb = -1;
    cr_assert(fscanf(f, "%ld", &kb) == 1, "%s: no number", path);
    fclose(f);
    return kb;
}

/* One maximal request (OVL_MAX_IO, 1008 KiB) per read-ahead window. */
TEST_T(every_mount_reads_ahead_one_maximal_request)
{
    h_init((char *)NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    long want = OVL_MAX_IO / 1024;
    cr_assert_eq(readahead_kb(a), want, "agent a: read_ahead_kb %ld", readahead_kb(a));
    cr_assert_eq(readahead_kb(b), want, "agent b: read_ahead_kb %ld", readahead_kb(b));
}

/* FS_TOPDIR_FL on the directory at path, or -1 when its filesystem keeps
 * no such flags. */
static int topdir_flag(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    int flags = 0;
    int rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
    close(fd);
    return rc < 0 ? -1 : !!(flags & FS_TOPDIR_FL);
}

/* An agent's upper and temp roots, and the shared layer's, ask the
 * filesystem to spread their subdirectories (ext4's Orlov allocator), so an
 * agent's directories do not all land in one block group. */
TEST_T(layer_roots_spread_their_subdirectories)
{
    h_init((char *)NULL);
    h_mount("a");
    const char *roots[] = { "agents/a/upper", "agents/a/temp", "shared/upper" };
    for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        int f = topdir_flag(h_str("%s/%s", H.state, roots[i]));
        if (f < 0)
            cr_skip_test("the state directory's filesystem keeps no inode flags");
        cr_assert_eq(f, 1, "%s: FS_TOPDIR_FL not set", roots[i]);
    }
}
