/* test_parity.c - the same call sequence gives the same results and errno on
 * a lanefs mount as on a plain directory, whether the starting tree lies in
 * the lower, in the agent's upper, or in a temp path. */
#include "harness.h"
#include "parity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_PAR(name) Test(parity, name, .init = h_setup, .fini = h_teardown, \
                            .timeout = H_TIMEOUT)

/* Index of the line after section header "== name" in log, or log->n. */
static size_t section_start(const struct plog *log, const char *header)
{
    for (size_t i = 0; i < log->n; i++)
        if (strcmp(log->line[i], header) == 0)
            return i + 1;
    return log->n;
}

static size_t section_end(const struct plog *log, size_t from)
{
    while (from < log->n && strncmp(log->line[from], "== ", 3) != 0)
        from++;
    return from;
}

/* Asserts both logs are equal. Sections are compared one by one, so one
 * difference does not hide the next behaviour's; the first difference of
 * each differing section is shown. */
static void assert_same_log(const struct plog *fs, const struct plog *plain)
{
    char *report = h_str("%s", "");
    int bad = 0;
    for (size_t h = 0; h < plain->n; h++) {
        if (strncmp(plain->line[h], "== ", 3) != 0)
            continue;
        size_t pb = h + 1, pe = section_end(plain, pb);
        size_t fb = section_start(fs, plain->line[h]), fe = section_end(fs, fb);
        for (size_t k = 0; pb + k < pe || fb + k < fe; k++) {
            const char *a = fb + k < fe ? fs->line[fb + k] : "(end of section)";
            const char *b = pb + k < pe ? plain->line[pb + k] : "(end of section)";
            if (strcmp(a, b) == 0)
                continue;
            report = h_str("%s\n[%s]\n  previous: %s\n  lanefs:   %s\n  plain:    %s",
                           report, plain->line[h] + 3,
                           k ? plain->line[pb + k - 1] : "(start of section)", a, b);
            bad++;
            break;
        }
    }
    cr_assert_eq(bad, 0, "lanefs differs from a plain directory in %d section(s):%s",
                 bad, report);
}

/* With LANEFS_IT_DUMP=DIR set, both logs are written there for reading. */
static void dump(const struct plog *log, const char *name)
{
    const char *dir = getenv("LANEFS_IT_DUMP");
    if (!dir || !*dir)
        return;
    FILE *f = fopen(h_str("%s/%s", dir, name), "w");
    if (!f)
        return;
    for (size_t i = 0; i < log->n; i++)
        fprintf(f, "%s\n", log->line[i]);
    fclose(f);
}

static void run_both(const char *fs_base)
{
    char *plain = h_at("plain/w");
    h_mkdir_p(plain, 0755);
    parity_build_tree(plain);
    struct plog on_fs = { 0 }, on_plain = { 0 };
    parity_run(fs_base, &on_fs);
    parity_run(plain, &on_plain);
    const char *test = criterion_current_test->name;
    dump(&on_fs, h_str("%s.lanefs.log", test));
    dump(&on_plain, h_str("%s.plain.log", test));
    assert_same_log(&on_fs, &on_plain);
    cr_assert(on_fs.n > 200, "the sequence logged only %zu steps", on_fs.n);
    free(on_fs.line);
    free(on_plain.line);
}

TEST_PAR(starting_tree_only_in_lower)
{
    h_mkdir_p(h_str("%s/w", H.lower), 0755);
    parity_build_tree(h_str("%s/w", H.lower));
    char *before = h_snapshot(H.lower);
    h_init(NULL);
    const char *mnt = h_mount("a");
    run_both(h_str("%s/w", mnt));
    h_umount("a");
    h_assert_same_snapshot(before, h_snapshot(H.lower), "lower after the parity sequence");
}

TEST_PAR(empty_lower)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *base = h_str("%s/w", mnt);
    h_mkdir_p(base, 0755);
    parity_build_tree(base);
    run_both(base);
}

TEST_PAR(inside_temp_path)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *base = h_str("%s/tmp/w", mnt);
    h_mkdir_p(base, 0755);
    parity_build_tree(base);
    run_both(base);
}
