/* test_mount_tuning.c - what the daemon sets up for speed: the kernel's
 * read-ahead of each agent mount, raised from its 128 KiB FUSE default to
 * one maximal request, so a sequential reader costs a request per 1008 KiB;
 * the layer roots' hint to spread their subdirectories over the disk; and
 * FUSE_HANDLE_KILLPRIV_V2, so writes are not each preceded by a request for
 * the file's security.capability (fs/fuseio.h). */
#include "harness.h"
#include "fs/ops.h"

#include <cjson/cJSON.h>

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

/* Writes count bytes to a new file of mnt, one write() each, then reads
 * back the agent's killpriv_v2 and cap_checks from status (*checks is the
 * growth of cap_checks over the writes). */
static bool small_writes(const char *mnt, const char *agent, int count, double *checks)
{
    cJSON *st = h_status();
    cJSON *a = h_status_agent(st, agent);
    cr_assert_not_null(a, "status lists no agent %s", agent);
    double before = cJSON_GetObjectItem(a, "cap_checks")->valuedouble;
    cJSON_Delete(st);

    char *path = h_str("%s/small-writes", mnt);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    for (int i = 0; i < count; i++)
        cr_assert_eq(write(fd, "x", 1), 1, "write %d: %s", i, strerror(errno));
    cr_assert_eq(close(fd), 0);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_size, count, "size %lld after %d writes", (long long)sb.st_size, count);

    st = h_status();
    a = h_status_agent(st, agent);
    cr_assert_not_null(a);
    cJSON *c = cJSON_GetObjectItem(a, "cap_checks"), *k = cJSON_GetObjectItem(a, "killpriv_v2");
    cr_assert(cJSON_IsNumber(c) && cJSON_IsBool(k), "status: no cap_checks or killpriv_v2");
    *checks = c->valuedouble - before;
    bool v2 = cJSON_IsTrue(k);
    cJSON_Delete(st);
    return v2;
}

/* With the flag the kernel checks a file's capabilities once, not before
 * each of 200 writes; LANEFS_KILLPRIV=off shows what the flag saves. What
 * the flag leaves to the daemon, that no file keeps a set-id bit, is
 * copyup::setuid_and_setgid_bits_are_stripped. */
TEST_T(writes_check_capabilities_once_with_killpriv_v2)
{
    double checks = 0;
    h_init((char *)NULL);
    const char *a = h_mount("a");
    cr_assert(small_writes(a, "a", 200, &checks), "killpriv_v2 was not negotiated");
    cr_assert_leq(checks, 2, "%.0f capability checks for 200 writes", checks);
}

TEST_T(without_killpriv_v2_every_write_is_checked)
{
    double checks = 0;
    char *env[] = { "LANEFS_KILLPRIV=off", NULL };
    h_init((char *)NULL);
    const char *a = h_mount_env("a", env);
    cr_assert_not(small_writes(a, "a", 200, &checks), "killpriv_v2 negotiated while off");
    cr_assert_geq(checks, 200, "%.0f capability checks for 200 writes", checks);
}
