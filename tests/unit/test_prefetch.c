/* Unit tests for fs/prefetch.c over a scratch directory standing in for a
 * lower: the window of directories warmed ahead, the bounded queue that
 * drops the oldest, and listings that let the thread go further. The
 * thread is real; the tests poll its counts. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/prefetch.h"

#define NDIRS (PREFETCH_AHEAD + PREFETCH_QUEUE + 76)

static char root[64];
static int root_fd = -1;

/* root/dNNNN/{a,b,c} for NDIRS directories. */
static void make_lower(void)
{
    snprintf(root, sizeof(root), "/tmp/lanefs-prefetch-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(root_fd, 0);
    char p[128];
    for (unsigned i = 0; i < NDIRS; i++) {
        snprintf(p, sizeof(p), "d%04u", i);
        cr_assert_eq(mkdirat(root_fd, p, 0755), 0);
        for (const char *f = "abc"; *f; f++) {
            snprintf(p, sizeof(p), "d%04u/%c", i, *f);
            int fd = openat(root_fd, p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            cr_assert_geq(fd, 0);
            close(fd);
        }
    }
}

static void remove_lower(void)
{
    char cmd[128];
    if (root_fd >= 0)
        close(root_fd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (root[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", root);
}

/* Polls until field(stats) reaches want, for at most 5 s; the last count. */
static uint64_t wait_for(struct prefetch *p, size_t field, uint64_t want)
{
    struct prefetch_stats st;
    uint64_t v = 0;
    for (int i = 0; i < 500; i++) {
        prefetch_get_stats(p, &st);
        memcpy(&v, (const char *)&st + field, sizeof(v));
        if (v >= want)
            break;
        usleep(10 * 1000);
    }
    return v;
}

static void dir_name(char *buf, size_t len, unsigned i)
{
    snprintf(buf, len, "d%04u", i);
}

Test(prefetch, window_queue_and_listings, .init = make_lower, .fini = remove_lower,
     .timeout = 60)
{
    struct prefetch *p;
    struct prefetch_stats st;
    char name[32];
    cr_assert_eq(prefetch_start(&p, root_fd), 0);

    /* A window's worth is warmed, every entry of each. */
    for (unsigned i = 0; i < PREFETCH_AHEAD; i++) {
        dir_name(name, sizeof(name), i);
        prefetch_dir(p, name);
    }
    cr_assert_eq(wait_for(p, offsetof(struct prefetch_stats, dirs), PREFETCH_AHEAD),
                 PREFETCH_AHEAD);
    prefetch_get_stats(p, &st);
    cr_assert_eq(st.entries, 3 * (uint64_t)PREFETCH_AHEAD, "%llu entries looked up",
                 (unsigned long long)st.entries);

    /* Nobody listed them: the thread stays put, and what is asked for
     * waits in the queue, whose oldest go when it is full. */
    for (unsigned i = PREFETCH_AHEAD; i < NDIRS; i++) {
        dir_name(name, sizeof(name), i);
        prefetch_dir(p, name);
    }
    usleep(200 * 1000);
    prefetch_get_stats(p, &st);
    cr_assert_eq(st.dirs, PREFETCH_AHEAD, "%llu directories warmed with the window full",
                 (unsigned long long)st.dirs);
    cr_assert_eq(st.dropped, NDIRS - PREFETCH_AHEAD - PREFETCH_QUEUE, "%llu dropped",
                 (unsigned long long)st.dropped);

    /* A walker lists ten warmed directories: ten more are warmed. */
    for (unsigned i = 0; i < 10; i++) {
        dir_name(name, sizeof(name), i);
        prefetch_listed(p, name);
    }
    cr_assert_eq(wait_for(p, offsetof(struct prefetch_stats, dirs), PREFETCH_AHEAD + 10),
                 PREFETCH_AHEAD + 10);
    usleep(200 * 1000);
    prefetch_get_stats(p, &st);
    cr_assert_eq(st.followed, 10);
    cr_assert_eq(st.dirs, PREFETCH_AHEAD + 10, "%llu directories warmed after 10 listings",
                 (unsigned long long)st.dirs);

    /* Asked again while recent: skipped, not warmed twice. */
    uint64_t skipped = st.skipped;
    dir_name(name, sizeof(name), 0);
    prefetch_dir(p, name);
    prefetch_get_stats(p, &st);
    cr_assert_eq(st.skipped, skipped + 1);
    prefetch_stop(p);
}

Test(prefetch, missing_directories_are_skipped_and_stop_is_clean,
     .init = make_lower, .fini = remove_lower, .timeout = 60)
{
    struct prefetch *p;
    cr_assert_eq(prefetch_start(&p, root_fd), 0);
    prefetch_dir(p, "no-such-dir");
    prefetch_dir(p, "d0000/a");         /* a file, not a directory */
    prefetch_dir(p, "../escape");       /* never out of the root */
    cr_assert_eq(wait_for(p, offsetof(struct prefetch_stats, skipped), 3), 3);
    struct prefetch_stats st;
    prefetch_get_stats(p, &st);
    cr_assert_eq(st.dirs, 0);
    for (unsigned i = 0; i < 100; i++) {    /* stop with work queued */
        char name[32];
        dir_name(name, sizeof(name), i);
        prefetch_dir(p, name);
    }
    prefetch_stop(p);
    prefetch_stop(NULL);
    prefetch_dir(NULL, "d0000");
    prefetch_listed(NULL, "d0000");
}
