/* Unit tests for fs/pathclass.c. */
#include <criterion/criterion.h>

#include <string.h>

#include "fs/pathclass.h"

static char *temp_paths[] = { "tmp", "build/cache" };
static char *temp_patterns[] = { "*.tmp", ".~lock.*#", "[ab].swp" };
static char *shared_paths[] = { "out", "data/shared", "tmp/shared" };

static const struct vol_config cfg = {
    .lower = "/srv/lower",
    .temp_paths = temp_paths, .n_temp_paths = 2,
    .temp_patterns = temp_patterns, .n_temp_patterns = 3,
    .shared_paths = shared_paths, .n_shared_paths = 3,
};

#define assert_class(path, want)                                            \
    cr_assert_eq(pclass_of(&cfg, path), want, "%s: got %s, want %s", path, \
                 pclass_name(pclass_of(&cfg, path)), pclass_name(want))

Test(pathclass, root_is_private)
{
    assert_class("", PCLASS_PRIVATE);
    cr_assert_eq(pclass_of(&cfg, NULL), PCLASS_PRIVATE);
    cr_assert_not(pclass_is_temp_root(&cfg, ""));
}

Test(pathclass, temp_path_prefix_on_components)
{
    assert_class("tmp", PCLASS_TEMP);
    assert_class("tmp/x", PCLASS_TEMP);
    assert_class("tmp/x/y/z", PCLASS_TEMP);
    assert_class("tmpx", PCLASS_PRIVATE);
    assert_class("tm", PCLASS_PRIVATE);
    assert_class("x/tmp", PCLASS_PRIVATE);      /* anchored at the root */
    assert_class("build", PCLASS_PRIVATE);
    assert_class("build/cache", PCLASS_TEMP);
    assert_class("build/cache/obj", PCLASS_TEMP);
    assert_class("build/cachex", PCLASS_PRIVATE);
    assert_class("build/cach", PCLASS_PRIVATE);
}

Test(pathclass, patterns_at_any_depth)
{
    assert_class("a.tmp", PCLASS_TEMP);
    assert_class("deep/er/still/a.tmp", PCLASS_TEMP);
    assert_class("dir.tmp/file", PCLASS_TEMP);  /* a directory component */
    assert_class("a.tmpx", PCLASS_PRIVATE);
    assert_class("a.tmp.keep", PCLASS_PRIVATE);
    assert_class(".hidden.tmp", PCLASS_TEMP);   /* flags 0: dot not special */
    assert_class(".~lock.report.odt#", PCLASS_TEMP);
    assert_class("docs/.~lock.a#", PCLASS_TEMP);
    assert_class("docs/~lock.a#", PCLASS_PRIVATE);
    assert_class("a.swp", PCLASS_TEMP);
    assert_class("b.swp", PCLASS_TEMP);
    assert_class("c.swp", PCLASS_PRIVATE);
}

Test(pathclass, shared_paths)
{
    assert_class("out", PCLASS_SHARED);
    assert_class("out/result.json", PCLASS_SHARED);
    assert_class("outx", PCLASS_PRIVATE);
    assert_class("data", PCLASS_PRIVATE);
    assert_class("data/shared", PCLASS_SHARED);
    assert_class("data/shared/a/b", PCLASS_SHARED);
    assert_class("data/sharedy", PCLASS_PRIVATE);
    assert_class("x/out", PCLASS_PRIVATE);
}

Test(pathclass, temp_beats_shared)
{
    assert_class("out/part.tmp", PCLASS_TEMP);
    assert_class("out/x.tmp/y", PCLASS_TEMP);
    assert_class("tmp/shared", PCLASS_TEMP);
    assert_class("tmp/shared/f", PCLASS_TEMP);
}

Test(pathclass, empty_config_all_private)
{
    const struct vol_config empty = { .lower = "/x" };
    cr_assert_eq(pclass_of(&empty, "tmp"), PCLASS_PRIVATE);
    cr_assert_eq(pclass_of(&empty, "a.tmp"), PCLASS_PRIVATE);
    cr_assert_eq(pclass_of(&empty, ""), PCLASS_PRIVATE);
    cr_assert_not(pclass_is_temp_root(&empty, "tmp"));
}

Test(pathclass, overlong_component_not_matched)
{
    char path[400];
    memset(path, 'a', 300);
    strcpy(path + 300, ".tmp");
    cr_assert_eq(pclass_of(&cfg, path), PCLASS_PRIVATE);
    strcpy(path + 304, "/b.tmp");
    cr_assert_eq(pclass_of(&cfg, path), PCLASS_TEMP);
}

Test(pathclass, temp_roots)
{
    cr_assert(pclass_is_temp_root(&cfg, "tmp"));
    cr_assert(pclass_is_temp_root(&cfg, "build/cache"));
    cr_assert_not(pclass_is_temp_root(&cfg, "tmp/x"));
    cr_assert_not(pclass_is_temp_root(&cfg, "build"));
    cr_assert_not(pclass_is_temp_root(&cfg, "a.tmp"));
    cr_assert_not(pclass_is_temp_root(&cfg, "out"));
    cr_assert_not(pclass_is_temp_root(&cfg, NULL));
}

Test(pathclass, names)
{
    cr_assert_str_eq(pclass_name(PCLASS_PRIVATE), "private");
    cr_assert_str_eq(pclass_name(PCLASS_TEMP), "temp");
    cr_assert_str_eq(pclass_name(PCLASS_SHARED), "shared");
}
