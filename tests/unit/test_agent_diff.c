/* Unit tests for tools/agent_diff.c on a lower and an upper built in a
 * temp dir. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "tools/agent_diff.h"

static char root[64];

static void setup(void)
{
    strcpy(root, "/tmp/lanefs-diff-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    umask(022);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    cr_assert_eq(system(cmd), 0);
}

static const char *at(const char *rel)
{
    static char buf[8][256];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, sizeof(buf[0]), "%s/%s", root, rel);
    return b;
}

static void dir(const char *rel, mode_t mode)
{
    cr_assert_eq(mkdir(at(rel), mode), 0, "mkdir %s: %s", rel, strerror(errno));
    cr_assert_eq(chmod(at(rel), mode), 0);
}

static void file(const char *rel, const char *content)
{
    FILE *f = fopen(at(rel), "w");
    cr_assert_not_null(f, "create %s: %s", rel, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static void whiteout(const char *rel)
{
    cr_assert_eq(mknod(at(rel), S_IFCHR | 0, makedev(0, 0)), 0,
                 "mknod %s: %s", rel, strerror(errno));
}

static bool xattr(const char *rel, const char *name, const char *value)
{
    if (lsetxattr(at(rel), name, value, strlen(value), 0) == 0)
        return true;
    cr_assert(errno == ENOTSUP, "setxattr %s: %s", rel, strerror(errno));
    return false;
}

/* The changes as "K /path\n" lines. */
static char *diff_text(void)
{
    struct adiff_list l;
    int u = open(at("upper"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    int lo = open(at("lower"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert(u >= 0 && lo >= 0);
    cr_assert_eq(adiff_collect(u, lo, &l), 0);
    close(u);
    close(lo);
    size_t cap = 1;
    for (size_t i = 0; i < l.n; i++)
        cap += strlen(l.v[i].path) + 3;
    char *s = calloc(1, cap);
    cr_assert_not_null(s);
    for (size_t i = 0; i < l.n; i++)
        sprintf(s + strlen(s), "%c %s\n", l.v[i].kind, l.v[i].path);
    adiff_free(&l);
    return s;
}

Test(agent_diff, classifies_changes, .init = setup, .fini = teardown)
{
    dir("lower", 0755);
    dir("upper", 0755);
    file("lower/keep.txt", "k");
    file("lower/mod.txt", "old");
    file("lower/gone.txt", "g");
    dir("lower/dir", 0755);
    file("lower/dir/a", "a");
    file("lower/dir/b", "b");
    dir("lower/odir", 0755);
    file("lower/odir/x", "x");
    file("lower/odir/y", "y");
    dir("lower/odir/sub", 0755);
    file("lower/odir/sub/deep", "d");
    dir("lower/meta", 0755);
    dir("lower/same", 0755);
    file("lower/same/f", "f");
    file("lower/ftod", "file that became a directory");
    dir("lower/dtof", 0755);
    file("lower/dtof/inside", "i");
    dir("lower/xdir", 0755);

    file("upper/mod.txt", "new");                   /* C */
    whiteout("upper/gone.txt");                     /* D */
    whiteout("upper/ghost");                        /* nothing in the lower */
    file("upper/new.txt", "n");                     /* A */
    dir("upper/newdir", 0755);                      /* A, and A below */
    file("upper/newdir/inner", "i");
    dir("upper/dir", 0755);                         /* merged, same meta */
    file("upper/dir/a", "changed");                 /* C */
    file("upper/dir/c", "c");                       /* A */
    whiteout("upper/dir/b");                        /* D */
    dir("upper/odir", 0755);                        /* opaque: C */
    file("upper/odir/x", "replaced");               /* C (hid the lower x) */
    whiteout("upper/odir/y");                       /* D, listed once */
    dir("upper/odir/sub", 0755);                    /* C, hidden below */
    dir("upper/meta", 0700);                        /* mode differs: C */
    dir("upper/same", 0755);                        /* unchanged */
    dir("upper/ftod", 0755);                        /* dir over file: C */
    file("upper/ftod/q", "q");                      /* A */
    file("upper/dtof", "file over a directory");    /* C */
    cr_assert_eq(symlink("/etc", at("upper/link")), 0);   /* A, not followed */
    dir("upper/linkdir", 0755);
    cr_assert_eq(symlink("../lower/dir", at("upper/linkdir/l")), 0);
    dir("upper/xdir", 0755);

    bool have_xattrs = xattr("upper/odir", "user.lanefs.opaque", "y");
    if (have_xattrs) {
        /* lanefs's own marks are not changes; other user xattrs are. */
        xattr("upper/same", "user.lanefs.origin", "12345678");
        xattr("upper/xdir", "user.color", "red");
    }
    char *got = diff_text();
    const char *want_x =
        "C /dir/a\n"
        "D /dir/b\n"
        "A /dir/c\n"
        "C /dtof\n"
        "C /ftod\n"
        "A /ftod/q\n"
        "D /gone.txt\n"
        "A /link\n"
        "A /linkdir\n"
        "A /linkdir/l\n"
        "C /meta\n"
        "C /mod.txt\n"
        "A /new.txt\n"
        "A /newdir\n"
        "A /newdir/inner\n"
        "C /odir\n"
        "C /odir/sub\n"
        "D /odir/sub/deep\n"
        "C /odir/x\n"
        "D /odir/y\n"
        "C /xdir\n";
    if (have_xattrs)
        cr_assert_str_eq(got, want_x);
    else
        cr_log_warn("no user xattrs on %s: opaque and xattr cases skipped",
                    root);
    free(got);
}

Test(agent_diff, opaque_subdir_hides_lower_children, .init = setup,
     .fini = teardown)
{
    dir("lower", 0755);
    dir("upper", 0755);
    dir("lower/o", 0755);
    dir("lower/o/s", 0755);
    file("lower/o/s/one", "1");
    file("lower/o/s/two", "2");
    dir("upper/o", 0755);
    dir("upper/o/s", 0755);
    file("upper/o/s/two", "2");
    if (!xattr("upper/o", "user.lanefs.opaque", "y"))
        return;
    char *got = diff_text();
    /* Below an opaque directory the lower is hidden: s replaced a hidden
     * directory, one is gone, two replaced a hidden file. */
    cr_assert_str_eq(got, "C /o\nC /o/s\nD /o/s/one\nC /o/s/two\n");
    free(got);
}

Test(agent_diff, empty_upper_and_empty_lower, .init = setup, .fini = teardown)
{
    dir("lower", 0755);
    dir("upper", 0755);
    char *got = diff_text();
    cr_assert_str_eq(got, "");
    free(got);

    file("upper/a", "a");
    dir("upper/d", 0755);
    file("upper/d/b", "b");
    whiteout("upper/w");
    struct adiff_list l;
    int u = open(at("upper"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert_eq(adiff_collect(u, -1, &l), 0);
    close(u);
    cr_assert_eq(l.n, 3);
    cr_assert_str_eq(l.v[0].path, "/a");
    cr_assert_str_eq(l.v[1].path, "/d");
    cr_assert_str_eq(l.v[2].path, "/d/b");
    for (size_t i = 0; i < l.n; i++)
        cr_assert_eq(l.v[i].kind, 'A');
    adiff_free(&l);
}
