/* Unit tests for fs/pathclass.c. */
#include <criterion/criterion.h>

#include <fnmatch.h>
#include <stdbool.h>
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

/* Patterns of the forms matched without fnmatch (a literal, one '*' at the
 * start, middle or end) and of the forms left to it (two '*', '?', '[',
 * '\\') give what fnmatch(pattern, name, 0) gives, for every name here. */
Test(pathclass, patterns_agree_with_fnmatch)
{
    static char *pats[] = {
        "*.tmp", ".~lock.*#", "core", "*", "a*", "*a", "ab*ab", "*.t*p",
        "?.swp", "[ab].swp", "\\*.x", "",
    };
    static const char *names[] = {
        "a.tmp", ".tmp", "tmp", "x.tmpx", ".~lock.#", ".~lock.a.odt#", ".~lock.a",
        "core", "cores", "a", "aa", "ab", "aba", "abab", "abxab", "b.swp", "ab.swp",
        "*.x", "y.x", ".hidden", "a.tp", "a.txyp",
    };
    for (size_t p = 0; p < sizeof(pats) / sizeof(pats[0]); p++) {
        char *one[] = { pats[p] };
        const struct vol_config c = { .temp_patterns = one, .n_temp_patterns = 1 };
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
            bool want = fnmatch(pats[p], names[n], 0) == 0;
            bool got = pclass_of(&c, names[n]) == PCLASS_TEMP;
            cr_assert_eq(got, want, "pattern \"%s\", name \"%s\": %s, fnmatch says %s",
                         pats[p], names[n], got ? "temp" : "not temp",
                         want ? "match" : "no match");
        }
    }
}
