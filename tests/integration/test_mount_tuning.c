/* test_mount_tuning.c - what the daemon sets on each agent mount for speed:
 * the kernel's read-ahead, raised from its 128 KiB FUSE default to one
 * maximal request, so a sequential reader costs a request per MiB. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

TEST_T(every_mount_reads_ahead_one_mib)
{
    h_init((char *)NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    cr_assert_eq(readahead_kb(a), 1024, "agent a: read_ahead_kb %ld", readahead_kb(a));
    cr_assert_eq(readahead_kb(b), 1024, "agent b: read_ahead_kb %ld", readahead_kb(b));
}
