/* test_shared.c - shared paths: one layer for every agent of a volume, seen
 * by the others at once (names and data), while private paths stay private
 * and the lower is never written. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_S(name) Test(shared, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

static char *at(const char *mnt, const char *rel) { return h_str("%s/%s", mnt, rel); }

static void setup(const char **a, const char **b)
{
    h_mkdir_p(h_str("%s/out", H.lower), 0777);
    h_mkdir_p(h_str("%s/in", H.lower), 0755);
    h_put(h_str("%s/out/base", H.lower), "base\n", 0666);
    h_put(h_str("%s/in/doc", H.lower), "doc\n", 0644);
    h_init("--shared", "out", "--shared", "results/final", (char *)NULL);
    *a = h_mount("a");
    *b = h_mount("b");
}

TEST_S(names_are_seen_by_every_agent_at_once)
{
    const char *a, *b;
    setup(&a, &b);
    /* A shared path the lower lacks exists anyway, parents included. */
    struct stat st;
    cr_assert_eq(h_lstat(at(b, "results/final"), &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    /* b looks first, so a cached miss would show. */
    cr_assert_eq(h_lstat(at(b, "out/new"), &st), -ENOENT);
    h_put(at(a, "out/new"), "from a\n", 0644);
    cr_assert_str_eq(h_get(at(b, "out/new")), "from a\n");
    cr_assert_eq(rename(at(b, "out/new"), at(b, "out/renamed")), 0);
    cr_assert_eq(h_lstat(at(a, "out/new"), &st), -ENOENT);
    cr_assert_str_eq(h_get(at(a, "out/renamed")), "from a\n");
    cr_assert_eq(mkdir(at(a, "results/final/r1"), 0755), 0);
    cr_assert_str_eq(h_ls(at(b, "results/final")), "r1");
    cr_assert_eq(unlink(at(a, "out/base")), 0);
    cr_assert_eq(h_lstat(at(b, "out/base"), &st), -ENOENT);
    cr_assert_str_eq(h_ls(at(b, "out")), "renamed");
    /* Private paths stay private. */
    h_put(at(a, "in/doc"), "a's edit\n", 0644);
    cr_assert_str_eq(h_get(at(b, "in/doc")), "doc\n");
    /* The lower is untouched; the shared layer holds the shared changes. */
    cr_assert_str_eq(h_get(h_str("%s/out/base", H.lower)), "base\n");
    cr_assert(!h_exists(h_str("%s/out/renamed", H.lower)));
    cr_assert(h_exists(h_str("%s/shared/upper/out/renamed", H.state)));
    cr_assert(!h_exists(h_str("%s/out/renamed", h_agent_path("a", "upper"))));
}

/* Both agents keep the file open: every write through one is what the
 * other's next read returns (no stale page cache in either mount). */
TEST_S(data_is_coherent_between_open_files)
{
    const char *a, *b;
    setup(&a, &b);
    int fa = open(at(a, "out/base"), O_RDWR | O_CLOEXEC);
    int fb = open(at(b, "out/base"), O_RDONLY | O_CLOEXEC);
    cr_assert(fa >= 0 && fb >= 0);
    char buf[64];
    ssize_t n = pread(fb, buf, sizeof buf, 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(pwrite(fa, "BASE", 4, 0), 4);    /* copies it up, once */
    n = pread(fb, buf, sizeof buf, 0);
    cr_assert_eq(n, 5);
    cr_assert(memcmp(buf, "BASE\n", 5) == 0, "b read \"%.*s\"", (int)n, buf);
    cr_assert_eq(pwrite(fa, "tail", 4, 5), 4);
    n = pread(fb, buf, sizeof buf, 0);
    cr_assert_eq(n, 9, "b sees size %zd after a's append", n);
    cr_assert(memcmp(buf, "BASE\ntail", 9) == 0);
    struct stat st;
    cr_assert_eq(fstat(fb, &st), 0);
    cr_assert_eq(st.st_size, 9);
    close(fa);
    close(fb);
    cr_assert_str_eq(h_get(h_str("%s/out/base", H.lower)), "base\n");
}

/* An agent's directory moved by another agent: the first agent's next
 * files go where the name now points, not into the directory it used
 * before under that name (its daemon caches layer directories, and must
 * drop them when any agent moves one). */
TEST_S(files_follow_a_directory_another_agent_replaced)
{
    const char *a, *b;
    setup(&a, &b);
    cr_assert_eq(mkdir(at(a, "out/d1"), 0777), 0);
    h_put(at(a, "out/d1/x"), "x\n", 0644);       /* a uses out/d1 */
    cr_assert_eq(rename(at(b, "out/d1"), at(b, "out/d2")), 0);
    cr_assert_eq(mkdir(at(b, "out/d1"), 0777), 0);
    h_put(at(a, "out/d1/y"), "y\n", 0644);
    cr_assert_str_eq(h_ls(at(b, "out/d1")), "y");
    cr_assert_str_eq(h_ls(at(b, "out/d2")), "x");
    /* The same in a's private tree, where only a changes names. */
    cr_assert_eq(mkdir(at(a, "in/p1"), 0755), 0);
    h_put(at(a, "in/p1/x"), "x\n", 0644);
    cr_assert_eq(rename(at(a, "in/p1"), at(a, "in/p2")), 0);
    cr_assert_eq(mkdir(at(a, "in/p1"), 0755), 0);
    h_put(at(a, "in/p1/y"), "y\n", 0644);
    cr_assert_str_eq(h_ls(at(a, "in/p1")), "y");
    cr_assert_str_eq(h_ls(at(a, "in/p2")), "x");
}
