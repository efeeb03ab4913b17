/* Unit tests for fs/recover.c on a state directory built in a temp dir
 * (no mounts: the session files name mount points that are not mounts). */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/recover.h"

static char root[64];

static void setup(void)
{
    strcpy(root, "/tmp/lanefs-recover-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
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

static void mk(const char *rel)
{
    cr_assert_eq(mkdir(at(rel), 0700), 0, "mkdir %s: %s", rel, strerror(errno));
}

static void put(const char *rel, const char *content)
{
    FILE *f = fopen(at(rel), "w");
    cr_assert_not_null(f, "create %s: %s", rel, strerror(errno));
    fputs(content, f);
    fclose(f);
}

static char *get(const char *rel)
{
    static char buf[4096];
    FILE *f = fopen(at(rel), "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

static int count_entries(const char *rel)
{
    char cmd[320];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 0", at(rel));
    return system(cmd) == 0 ? 0 : 1;
}

static void agent(const char *name)
{
    char p[128];
    snprintf(p, sizeof(p), "state/agents/%s", name);
    mk(p);
    const char *subs[] = { "upper", "temp", "work", "index" };
    for (int i = 0; i < 4; i++) {
        char s[160];
        snprintf(s, sizeof(s), "%s/%s", p, subs[i]);
        mk(s);
    }
}

static char notes[4096];

static void note(void *arg, const char *fmt, va_list ap)
{
    (void)arg;
    size_t l = strlen(notes);
    vsnprintf(notes + l, sizeof(notes) - l, fmt, ap);
    strncat(notes, "\n", sizeof(notes) - strlen(notes) - 1);
}

Test(recover, ends_sessions_and_removes_stale_files, .init = setup,
     .fini = teardown)
{
    mk("state");
    mk("state/agents");
    mk("state/sessions");
    mk("outside");
    put("outside/precious", "keep me");
    agent("alpha");
    agent("beta");
    /* alpha: temp content, a nested dir, and symlinks out of the tree that
     * must be removed, never followed. */
    put("state/agents/alpha/temp/t1", "t");
    mk("state/agents/alpha/temp/d");
    put("state/agents/alpha/temp/d/t2", "t");
    cr_assert_eq(symlink(at("outside"), at("state/agents/alpha/temp/d/out")), 0);
    cr_assert_eq(symlink(at("outside"), at("state/agents/alpha/temp/out")), 0);
    put("state/agents/alpha/work/w1", "half a copy");
    put("state/agents/alpha/upper/kept", "private");
    /* beta: ephemeral, loses its upper too. */
    put("state/agents/beta/upper/lost", "private");
    put("state/agents/beta/temp/t", "t");
    put("state/sessions/3", "agent=alpha\nmountpoint=/nonexistent/a\n"
                            "started=1700000000\n");
    put("state/sessions/7", "agent=beta\nmountpoint=/nonexistent/b\n"
                            "started=1700000100\nephemeral=1\n");
    put("state/sessions/next.tmp", "not a session");
    put("state/sessions.log", "1 alpha 1690000000 1690000100 umount\n");
    put("state/control.sock", "");
    put("state/daemon.pid", "99999\n");

    unsigned n = 99;
    notes[0] = '\0';
    cr_assert_eq(recover_run(at("state"), note, NULL, &n), 0, "%s", notes);
    cr_assert_eq(n, 2);

    cr_assert_eq(count_entries("state/agents/alpha/temp"), 0);
    cr_assert_eq(count_entries("state/agents/alpha/work"), 0);
    cr_assert(exists("state/agents/alpha/temp"), "temp itself stays");
    cr_assert_str_eq(get("outside/precious"), "keep me");
    cr_assert_str_eq(get("state/agents/alpha/upper/kept"), "private");
    cr_assert(!exists("state/agents/beta/upper/lost"));
    cr_assert_eq(count_entries("state/agents/beta/temp"), 0);

    cr_assert(!exists("state/sessions/3"));
    cr_assert(!exists("state/sessions/7"));
    cr_assert(exists("state/sessions/next.tmp"), "not a session file");
    cr_assert(!exists("state/control.sock"));
    cr_assert(!exists("state/daemon.pid"));

    char *log = get("state/sessions.log");
    cr_assert_not_null(log);
    cr_assert(strncmp(log, "1 alpha 1690000000 1690000100 umount\n", 37) == 0);
    cr_assert(strstr(log, "\n3 alpha 1700000000 ") != NULL, "%s", log);
    cr_assert(strstr(log, "\n7 beta 1700000100 ") != NULL, "%s", log);
    /* Each recovered line ends with " crash". */
    int crashes = 0;
    for (char *p = log; (p = strstr(p, " crash\n")); p++)
        crashes++;
    cr_assert_eq(crashes, 2, "%s", log);
    cr_assert(strstr(notes, "session 3 of agent alpha") != NULL, "%s", notes);

    /* A second run finds nothing. */
    cr_assert_eq(lanefsd_recover(at("state"), &n), 0);
    cr_assert_eq(n, 0);
}

Test(recover, nothing_to_do, .init = setup, .fini = teardown)
{
    mk("state");
    unsigned n = 5;
    cr_assert_eq(lanefsd_recover(at("state"), &n), 0);
    cr_assert_eq(n, 0);
    cr_assert(!exists("state/sessions.log"));
    cr_assert_eq(lanefsd_recover("relative/state", &n), -EINVAL);
}

Test(recover, agent_dir_symlink_is_not_followed, .init = setup,
     .fini = teardown)
{
    mk("state");
    mk("state/agents");
    mk("state/sessions");
    mk("outside");
    mk("outside/temp");
    put("outside/temp/precious", "keep me");
    /* agents/evil is a symlink to a directory outside the state dir. */
    cr_assert_eq(symlink(at("outside"), at("state/agents/evil")), 0);
    put("state/sessions/1", "agent=evil\nmountpoint=/nonexistent\n"
                            "started=1\n");
    unsigned n = 0;
    int rc = lanefsd_recover(at("state"), &n);
    cr_assert_neq(rc, 0, "emptying through a symlink must fail");
    cr_assert_str_eq(get("outside/temp/precious"), "keep me");
    cr_assert(exists("state/sessions/1"), "a failed session is kept");
}

Test(recover, empty_dir_keeps_the_dir, .init = setup, .fini = teardown)
{
    mk("d");
    mk("d/a");
    mk("d/a/b");
    put("d/a/b/c", "c");
    put("d/f", "f");
    int fd = open(at("d"), O_PATH | O_DIRECTORY | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(recover_empty_dir(fd), 0);
    close(fd);
    cr_assert(exists("d"));
    cr_assert_eq(count_entries("d"), 0);
}
