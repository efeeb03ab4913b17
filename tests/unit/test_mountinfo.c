/* Unit tests for fs/mountinfo.c. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/mountinfo.h"

static const char sample[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "36 22 0:52 / /mnt/agent\\040one rw,nosuid,nodev,relatime - fuse.lanefs "
    "lanefs@one:/srv/vol\\040a rw,user_id=0,group_id=0,allow_other\n"
    "40 22 0:60 /sub /mnt/bind rw master:3 shared:7 - tmpfs tmpfs rw\n"
    "41 36 0:61 / /mnt/agent\\040one rw - fuse.lanefs lanefs@two:/srv/b rw\n";

Test(mountinfo, parses_fields)
{
    struct minfo_table t;
    cr_assert_eq(minfo_parse_string(sample, &t), 0);
    cr_assert_eq(t.n, 4);

    cr_assert_eq(t.v[0].id, 22);
    cr_assert_eq(t.v[0].parent_id, 1);
    cr_assert_str_eq(t.v[0].dev, "8:1");
    cr_assert_str_eq(t.v[0].root, "/");
    cr_assert_str_eq(t.v[0].mountpoint, "/");
    cr_assert_str_eq(t.v[0].options, "rw,relatime");
    cr_assert_str_eq(t.v[0].fstype, "ext4");
    cr_assert_str_eq(t.v[0].source, "/dev/sda1");
    cr_assert_str_eq(t.v[0].super_options, "rw,errors=remount-ro");

    cr_assert_eq(t.v[1].id, 36);
    cr_assert_str_eq(t.v[1].dev, "0:52");
    cr_assert_str_eq(t.v[1].mountpoint, "/mnt/agent one");
    cr_assert_str_eq(t.v[1].fstype, "fuse.lanefs");
    cr_assert_str_eq(t.v[1].source, "lanefs@one:/srv/vol a");
    cr_assert_str_eq(t.v[1].options, "rw,nosuid,nodev,relatime");
    cr_assert_str_eq(t.v[1].super_options,
                     "rw,user_id=0,group_id=0,allow_other");

    /* Several optional fields before the separator. */
    cr_assert_str_eq(t.v[2].root, "/sub");
    cr_assert_str_eq(t.v[2].mountpoint, "/mnt/bind");
    cr_assert_str_eq(t.v[2].fstype, "tmpfs");
    cr_assert_str_eq(t.v[2].source, "tmpfs");
    minfo_free(&t);
    cr_assert_eq(t.n, 0);
    cr_assert_null(t.v);
}

Test(mountinfo, parses_from_file)
{
    struct minfo_table t;
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fputs(sample, f);
    rewind(f);
    cr_assert_eq(minfo_parse_file(f, &t), 0);
    fclose(f);
    cr_assert_eq(t.n, 4);
    cr_assert_str_eq(t.v[3].source, "lanefs@two:/srv/b");
    minfo_free(&t);
}

Test(mountinfo, last_line_without_newline)
{
    struct minfo_table t;
    cr_assert_eq(minfo_parse_string("1 0 0:1 / /x rw - tmpfs none rw", &t), 0);
    cr_assert_eq(t.n, 1);
    cr_assert_str_eq(t.v[0].super_options, "rw");
    minfo_free(&t);
}

Test(mountinfo, empty_input)
{
    struct minfo_table t;
    cr_assert_eq(minfo_parse_string("", &t), 0);
    cr_assert_eq(t.n, 0);
    minfo_free(&t);
}

Test(mountinfo, finds_topmost_mount)
{
    struct minfo_table t;
    cr_assert_eq(minfo_parse_string(sample, &t), 0);
    const struct minfo_entry *e = minfo_find_mountpoint(&t, "/mnt/agent one");
    cr_assert_not_null(e);
    cr_assert_eq(e->id, 41);                /* stacked: the last one */
    cr_assert_null(minfo_find_mountpoint(&t, "/mnt/agent\\040one"));
    cr_assert_null(minfo_find_mountpoint(&t, "/mnt"));
    cr_assert_eq(minfo_find_mountpoint(&t, "/")->id, 22);

    e = minfo_find_lanefs_source(&t, "lanefs@one:/srv/vol a");
    cr_assert_not_null(e);
    cr_assert_eq(e->id, 36);
    cr_assert_null(minfo_find_lanefs_source(&t, "tmpfs"));
    cr_assert_null(minfo_find_lanefs_source(&t, "lanefs@one:/srv/vol"));
    minfo_free(&t);
}

static void assert_malformed(const char *text)
{
    struct minfo_table t = { .n = 99 };
    cr_assert_eq(minfo_parse_string(text, &t), -EINVAL, "accepted: %s", text);
    cr_assert_eq(t.n, 0);
    cr_assert_null(t.v);
}

Test(mountinfo, refuses_malformed)
{
    assert_malformed("1 0 0:1 / /x rw tmpfs none rw\n");    /* no "-" */
    assert_malformed("1 0 0:1 / /x rw -\n");                 /* no fstype */
    assert_malformed("1 0 0:1 / /x rw - tmpfs\n");           /* no source */
    assert_malformed("1 0 0:1 /\n");
    assert_malformed("x 0 0:1 / /x rw - tmpfs none rw\n");
    assert_malformed("1 -2 0:1 / /x rw - tmpfs none rw\n");
    /* A bad line after good ones fails the whole parse. */
    char *text;
    cr_assert_gt(asprintf(&text, "%sgarbage\n", sample), 0);
    assert_malformed(text);
    free(text);
}

static void assert_unescape(const char *in, const char *want)
{
    char buf[64];
    strcpy(buf, in);
    minfo_unescape(buf);
    cr_assert_str_eq(buf, want, "'%s' gave '%s'", in, buf);
}

Test(mountinfo, unescape)
{
    assert_unescape("a\\040b", "a b");
    assert_unescape("\\011tab\\012nl", "\ttab\nnl");
    assert_unescape("back\\134slash", "back\\slash");
    assert_unescape("\\040\\040", "  ");
    assert_unescape("end\\04", "end\\04");       /* too short: kept */
    assert_unescape("bad\\08x", "bad\\08x");     /* 8 is not octal */
    assert_unescape("nul\\000", "nul\\000");     /* NUL would cut it */
    assert_unescape("big\\777", "big\\777");     /* not one byte */
    assert_unescape("plain", "plain");
    assert_unescape("", "");
}

Test(mountinfo, lanefs_source_split)
{
    char *agent, *state;
    cr_assert_eq(minfo_lanefs_source_split("lanefs@a-1:/srv/st", &agent,
                                           &state), 0);
    cr_assert_str_eq(agent, "a-1");
    cr_assert_str_eq(state, "/srv/st");
    free(agent);
    free(state);

    cr_assert_eq(minfo_lanefs_source_split("lanefs@b:/s:t x", &agent,
                                           &state), 0);
    cr_assert_str_eq(agent, "b");
    cr_assert_str_eq(state, "/s:t x");
    free(agent);
    free(state);

    const char *bad[] = {
        "fuse-overlayfs", "lanefs@", "lanefs@a", "lanefs@:/x", "lanefs@A:/x",
        "lanefs@a:relative", "lanefs@a:", "lanefsa:/x", "Lanefs@a:/x",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        agent = state = (char *)"untouched";
        cr_assert_eq(minfo_lanefs_source_split(bad[i], &agent, &state),
                     -EINVAL, "accepted %s", bad[i]);
        cr_assert_null(agent);
        cr_assert_null(state);
    }
}

Test(mountinfo, loads_this_process_table)
{
    struct minfo_table t;
    cr_assert_eq(minfo_load(&t), 0);
    cr_assert_gt(t.n, 0);
    for (size_t i = 0; i < t.n; i++)
        cr_assert_eq(t.v[i].mountpoint[0], '/', "%s", t.v[i].mountpoint);
    minfo_free(&t);
}
