/* test_prefetch.c - the lower prefetch (fs/prefetch.c): a walk over a lower
 * tree has the subdirectories it will visit warmed ahead of it, a plain
 * listing warms no more than the window, agents walking the same tree warm
 * it once, a directory of the agent alone asks for nothing, the walk sees
 * the right entries throughout, a huge listing asks for no more than the
 * queue holds, its thread runs under SCHED_IDLE, and the daemon's
 * environment can turn it off. The counts come from `lanefs status
 * --json`, which reads them from the running thread. */
#include "harness.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/prefetch.h"

#define TEST_P(name) Test(prefetch, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

#define SUBDIRS 40
#define FILES   10

/* lower/tree/dNN/fNN: SUBDIRS directories of FILES files each. */
static void make_tree(void)
{
    for (int d = 0; d < SUBDIRS; d++) {
        h_mkdir_p(h_str("%s/tree/d%02d", H.lower, d), 0755);
        for (int f = 0; f < FILES; f++)
            h_put(h_str("%s/tree/d%02d/f%02d", H.lower, d, f), "x", 0644);
    }
}

/* Lists dir and stats every entry (what ls -l and find do); the number of
 * entries. Recurses into subdirectories when deep. */
static int walk(const char *dir, bool deep)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char *p = h_str("%s/%s", dir, de->d_name);
        struct stat st;
        cr_assert_eq(lstat(p, &st), 0, "stat %s: %s", p, strerror(errno));
        n++;
        if (deep && S_ISDIR(st.st_mode))
            n += walk(p, true);
    }
    closedir(d);
    return n;
}

/* status --json's "prefetch" object, or NULL when it is null (caller
 * deletes *root). */
static cJSON *prefetch_status(cJSON **root)
{
    *root = h_status();
    cJSON *p = cJSON_GetObjectItem(*root, "prefetch");
    cr_assert_not_null(p, "status --json has no \"prefetch\"");
    return cJSON_IsNull(p) ? NULL : p;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    cr_assert(cJSON_IsNumber(v), "prefetch.%s is not a number", k);
    return v->valuedouble;
}

/* Polls until the thread has warmed at least want directories (it runs
 * behind the walk), or 10 s; the count then. */
static double wait_dirs(double want)
{
    double dirs = 0;
    for (int i = 0; i < 200; i++) {
        cJSON *root, *p = prefetch_status(&root);
        cr_assert_not_null(p, "the prefetch is off");
        dirs = num(p, "dirs");
        cJSON_Delete(root);
        if (dirs >= want)
            break;
        usleep(50 * 1000);
    }
    return dirs;
}

TEST_P(a_walk_has_the_directories_it_visits_warmed_ahead)
{
    make_tree();
    h_init(NULL);
    const char *mnt = h_mount("a");
    int n = walk(h_str("%s/tree", mnt), true);
    cr_assert_eq(n, SUBDIRS * (FILES + 1), "the walk saw %d entries, expected %d",
                 n, SUBDIRS * (FILES + 1));
    wait_dirs(1);
    cJSON *root, *p = prefetch_status(&root);
    cr_assert_not_null(p);
    double dirs = num(p, "dirs"), entries = num(p, "entries"), followed = num(p, "followed");
    cr_assert(num(p, "queued") >= SUBDIRS, "queued %.0f, expected every subdirectory (%d)",
                 num(p, "queued"), SUBDIRS);
    cr_assert(dirs >= 1 && dirs <= SUBDIRS, "%.0f directories warmed", dirs);
    cr_assert_eq(entries, dirs * FILES, "%.0f entries looked up in %.0f directories of %d",
                 entries, dirs, FILES);
    /* Each warmed directory the walk then listed lets the thread go one
     * further: a walk that follows keeps it going. */
    cr_assert(followed >= 1 && followed <= dirs, "%.0f of %.0f warmed directories followed",
              followed, dirs);
    cJSON_Delete(root);
}

TEST_P(a_listing_alone_warms_no_more_than_the_window)
{
    make_tree();
    h_init(NULL);
    const char *mnt = h_mount("a");
    int n = walk(h_str("%s/tree", mnt), false);
    cr_assert_eq(n, SUBDIRS, "the listing saw %d entries, expected %d", n, SUBDIRS);
    double dirs = wait_dirs(PREFETCH_AHEAD);
    cr_assert_eq(dirs, PREFETCH_AHEAD, "%.0f directories warmed after a listing of %d, "
                 "expected the window of %u", dirs, SUBDIRS, PREFETCH_AHEAD);
    usleep(300 * 1000);         /* nothing follows: the thread must stay put */
    cJSON *root, *p = prefetch_status(&root);
    cr_assert_not_null(p);
    cr_assert_eq(num(p, "dirs"), PREFETCH_AHEAD, "%.0f directories warmed while nobody walked",
                 num(p, "dirs"));
    cr_assert_eq(num(p, "followed"), 0);
    cJSON_Delete(root);
}

TEST_P(agents_walking_one_tree_warm_it_once)
{
    make_tree();
    h_init(NULL);
    const char *a = h_mount("a"), *b = h_mount("b");
    cr_assert_eq(walk(h_str("%s/tree", a), true), SUBDIRS * (FILES + 1));
    cr_assert_eq(walk(h_str("%s/tree", b), true), SUBDIRS * (FILES + 1));
    cJSON *root, *p = prefetch_status(&root);
    cr_assert_not_null(p);
    cr_assert_eq(num(p, "queued"), 2 * SUBDIRS, "queued %.0f", num(p, "queued"));
    cr_assert(num(p, "dirs") <= SUBDIRS, "%.0f directories warmed for two walks of %d",
              num(p, "dirs"), SUBDIRS);
    cr_assert(num(p, "skipped") >= SUBDIRS, "%.0f requests skipped; the second walk's "
              "%d should all be", num(p, "skipped"), SUBDIRS);
    cJSON_Delete(root);
}

TEST_P(what_the_walk_sees_is_the_merged_tree)
{
    make_tree();
    h_init(NULL);
    const char *mnt = h_mount("a");
    /* The agent's own changes under directories the thread warms. */
    h_put(h_str("%s/tree/d05/new", mnt), "y", 0644);
    cr_assert_eq(unlink(h_str("%s/tree/d06/f00", mnt)), 0);
    cr_assert_eq(walk(h_str("%s/tree", mnt), true), SUBDIRS * (FILES + 1));
    cr_assert(h_exists(h_str("%s/tree/d05/new", mnt)));
    cr_assert_not(h_exists(h_str("%s/tree/d06/f00", mnt)));
    cr_assert(h_exists(h_str("%s/tree/d06/f00", H.lower)), "the lower lost a file");
}

TEST_P(a_directory_of_the_agent_alone_asks_for_nothing)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    for (int d = 0; d < 5; d++)
        h_mkdir_p(h_str("%s/mine/d%d", mnt, d), 0755);
    cr_assert_eq(walk(h_str("%s/mine", mnt), true), 5);
    cJSON *root, *p = prefetch_status(&root);
    cr_assert_not_null(p);
    cr_assert_eq(num(p, "queued"), 0, "%.0f lower directories asked for under a "
                 "directory the lower does not have", num(p, "queued"));
    cJSON_Delete(root);
}

/* A listing naming more subdirectories than the queue holds asks for the
 * first PREFETCH_QUEUE of them only, so nothing is pushed out unread. */
TEST_P(a_huge_listing_asks_for_no_more_than_the_queue_holds)
{
    const unsigned n = PREFETCH_QUEUE + 100;
    for (unsigned d = 0; d < n; d++)
        h_mkdir_p(h_str("%s/wide/d%05u", H.lower, d), 0755);
    h_init(NULL);
    const char *mnt = h_mount("a");
    cr_assert_eq(walk(h_str("%s/wide", mnt), false), (int)n);
    cJSON *root, *p = prefetch_status(&root);
    cr_assert_not_null(p);
    cr_assert_eq(num(p, "queued"), PREFETCH_QUEUE, "%.0f directories asked for by a listing "
                 "of %u", num(p, "queued"), n);
    cr_assert_eq(num(p, "dropped"), 0, "%.0f requests pushed out", num(p, "dropped"));
    cJSON_Delete(root);
}

/* Threads of process pid under SCHED_IDLE (field 41 of each task's stat,
 * the scheduling policy). */
static int idle_threads(pid_t pid)
{
    char *dir = h_str("/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *st = h_get(h_str("%s/%s/stat", dir, de->d_name));
        const char *p = st ? strrchr(st, ')') : NULL;
        if (!p)
            continue;               /* the thread ended meanwhile */
        int field = 2, policy = -1;
        for (const char *q = p + 1; *q; q++)
            if (*q == ' ' && ++field == 41) {
                policy = atoi(q + 1);
                break;
            }
        n += policy == SCHED_IDLE;
    }
    closedir(d);
    return n;
}

/* Speculative work runs on idle CPU only: one thread of the daemon, the
 * prefetch's, is under SCHED_IDLE, and none without the prefetch. */
TEST_P(the_thread_runs_on_idle_cpu_only)
{
    h_init(NULL);
    h_mount("a");
    pid_t pid = h_daemon_pid();
    cr_assert_gt(pid, 0);
    cr_assert_eq(idle_threads(pid), 1, "%d daemon threads under SCHED_IDLE, expected "
                 "the prefetch's alone", idle_threads(pid));
}

TEST_P(the_environment_turns_it_off)
{
    make_tree();
    h_init(NULL);
    char *env[] = { "LANEFS_PREFETCH=off", NULL };
    const char *mnt = h_mount_env("a", env);
    cr_assert_eq(walk(h_str("%s/tree", mnt), true), SUBDIRS * (FILES + 1));
    cJSON *root;
    cr_assert_null(prefetch_status(&root), "prefetch counts with LANEFS_PREFETCH=off");
    cJSON_Delete(root);
    cr_assert_eq(idle_threads(h_daemon_pid()), 0, "a daemon thread under SCHED_IDLE "
                 "with the prefetch off");
}
