/* test_isolation.c - two agents on one volume never see each other's private
 * or temp files; temp paths start empty and die with the session. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TEST_ISO(name) Test(isolation, name, .init = h_setup, .fini = h_teardown, \
                            .timeout = H_TIMEOUT)

static const char *A, *B;   /* mount points of agents a and b */

/* Lower with a tmp/ dir (must never show) and a pattern-named file (a temp
 * name: must never show either). */
static void two_agents(void)
{
    h_mkdir_p(h_str("%s/data", H.lower), 0755);
    h_mkdir_p(h_str("%s/docs", H.lower), 0755);
    h_mkdir_p(h_str("%s/tmp/sub", H.lower), 0755);
    h_put(h_str("%s/data/in.txt", H.lower), "input\n", 0644);
    h_put(h_str("%s/data/old.part", H.lower), "stale partial\n", 0644);
    h_put(h_str("%s/docs/readme", H.lower), "readme\n", 0644);
    h_put(h_str("%s/tmp/old.txt", H.lower), "lower tmp\n", 0644);
    h_put(h_str("%s/tmp/sub/deep", H.lower), "deep\n", 0644);
    h_init(NULL);
    A = h_mount("a");
    B = h_mount("b");
}

static char *in(const char *mnt, const char *rel)
{
    return h_str("%s/%s", mnt, rel);
}

static void assert_absent(const char *mnt, const char *rel, const char *who)
{
    struct stat st;
    int rc = h_lstat(in(mnt, rel), &st);
    cr_assert_eq(rc, -ENOENT, "%s: lstat %s: expected ENOENT, got %s", who, rel,
                 rc == 0 ? "an existing entry" : h_errname(-rc));
}

static void assert_content(const char *mnt, const char *rel, const char *want,
                           const char *who)
{
    char *got = h_get(in(mnt, rel));
    cr_assert_not_null(got, "%s: read %s: %s", who, rel, h_errname(errno));
    cr_assert_str_eq(got, want, "%s: %s holds \"%s\", expected \"%s\"", who, rel, got, want);
}

TEST_ISO(private_changes_stay_private)
{
    two_agents();
    assert_content(A, "data/in.txt", "input\n", "a");
    assert_content(B, "data/in.txt", "input\n", "b");

    h_put(in(A, "a_only.txt"), "A", 0644);
    h_put(in(B, "b_only.txt"), "B", 0644);
    cr_assert_eq(mkdir(in(A, "newdir"), 0755), 0, "mkdir: %s", strerror(errno));
    h_put(in(A, "data/in.txt"), "changed by a\n", 0644);
    cr_assert_eq(unlink(in(A, "docs/readme")), 0, "unlink: %s", strerror(errno));

    cr_assert_eq(unlink(in(B, "data/in.txt")), 0, "unlink: %s", strerror(errno));
    cr_assert_eq(rename(in(B, "docs"), in(B, "docs-b")), 0, "rename: %s", strerror(errno));

    assert_absent(B, "a_only.txt", "b");
    assert_absent(B, "newdir", "b");
    assert_absent(A, "b_only.txt", "a");
    assert_content(A, "data/in.txt", "changed by a\n", "a");
    assert_absent(B, "data/in.txt", "b");
    assert_absent(A, "docs/readme", "a");
    assert_content(B, "docs-b/readme", "readme\n", "b");

    cr_assert_str_eq(h_ls(A), "a_only.txt data docs newdir tmp");
    cr_assert_str_eq(h_ls(B), "b_only.txt data docs-b tmp");
    cr_assert_str_eq(h_ls(in(A, "docs")), "");
    cr_assert_str_eq(h_ls(in(A, "data")), "in.txt");
    cr_assert_str_eq(h_ls(in(B, "data")), "");
    cr_assert_str_eq(h_ls(in(B, "docs-b")), "readme");
}

TEST_ISO(temp_paths_start_empty_and_are_private)
{
    two_agents();
    /* The lower's tmp/ content and pattern-named files are never shown. */
    cr_assert_str_eq(h_ls(in(A, "tmp")), "", "a's /tmp must start empty");
    cr_assert_str_eq(h_ls(in(B, "tmp")), "", "b's /tmp must start empty");
    assert_absent(A, "tmp/old.txt", "a");
    assert_absent(A, "tmp/sub", "a");
    assert_absent(A, "data/old.part", "a");
    cr_assert_str_eq(h_ls(in(A, "data")), "in.txt");

    h_put(in(A, "tmp/x"), "from a", 0644);
    assert_absent(B, "tmp/x", "b");
    h_put(in(B, "tmp/x"), "from b", 0644);
    assert_content(A, "tmp/x", "from a", "a");
    assert_content(B, "tmp/x", "from b", "b");

    /* Temp names inside a private (lower) directory. */
    h_put(in(A, "data/work.tmp"), "wa", 0644);
    h_put(in(A, "data/.~lock.doc#"), "lock", 0644);
    h_put(in(A, "data/edit.swp"), "swap", 0644);
    cr_assert_eq(mkdir(in(A, "data/dl.part"), 0755), 0, "mkdir: %s", strerror(errno));
    h_put(in(A, "data/dl.part/chunk"), "c", 0644);
    assert_absent(B, "data/work.tmp", "b");
    assert_absent(B, "data/.~lock.doc#", "b");
    assert_absent(B, "data/edit.swp", "b");
    assert_absent(B, "data/dl.part", "b");
    h_put(in(B, "data/work.tmp"), "wb", 0644);
    assert_content(A, "data/work.tmp", "wa", "a");
    assert_content(B, "data/work.tmp", "wb", "b");
    cr_assert_str_eq(h_ls(in(A, "data")), ".~lock.doc# dl.part edit.swp in.txt work.tmp");
    cr_assert_str_eq(h_ls(in(B, "data")), "in.txt work.tmp");

    /* Temp files live in the temp layer, never in the persistent upper. */
    cr_assert(!h_exists(h_str("%s/data/work.tmp", h_agent_path("a", "upper"))),
              "a's temp file data/work.tmp was written into its private upper");
    cr_assert(!h_exists(h_str("%s/tmp/x", h_agent_path("a", "upper"))),
              "a's temp file tmp/x was written into its private upper");
}

TEST_ISO(session_end_drops_temp_keeps_private)
{
    two_agents();
    h_put(in(A, "keep.txt"), "keep", 0644);
    h_put(in(A, "data/in.txt"), "changed\n", 0644);
    cr_assert_eq(unlink(in(A, "docs/readme")), 0, "unlink: %s", strerror(errno));
    h_put(in(A, "tmp/gone"), "g", 0644);
    cr_assert_eq(mkdir(in(A, "tmp/dir"), 0755), 0, "mkdir: %s", strerror(errno));
    h_put(in(A, "tmp/dir/f"), "f", 0644);
    h_put(in(A, "data/gone.swp"), "s", 0644);
    h_put(in(B, "tmp/kept-by-b"), "b", 0644);

    h_umount("a");
    /* Removed by the time umount returns. */
    char *temp = h_agent_path("a", "temp");
    char *left = h_ls(temp);
    cr_assert(strcmp(left, "") == 0 || strcmp(left, "!ENOENT") == 0,
              "a's temp layer after umount still holds: %s", left);
    /* b's session is untouched by a's end. */
    assert_content(B, "tmp/kept-by-b", "b", "b");

    A = h_mount("a");
    assert_content(A, "keep.txt", "keep", "a after remount");
    assert_content(A, "data/in.txt", "changed\n", "a after remount");
    assert_absent(A, "docs/readme", "a after remount");
    cr_assert_str_eq(h_ls(in(A, "tmp")), "", "a's /tmp after remount");
    assert_absent(A, "data/gone.swp", "a after remount");
    cr_assert_str_eq(h_ls(in(A, "data")), "in.txt");
    cr_assert_str_eq(h_ls(A), "data docs keep.txt tmp");
}
