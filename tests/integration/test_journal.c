/* test_journal.c - the volume's journal through real mounts: events of two
 * and three agents, each kind of leak reproduced for real (temp files left
 * at session end, a file kept open across daemon shutdown and across a lazy
 * umount, a lease left to expire, a lock held at session end, a daemon
 * killed with SIGKILL) and reported by `lanefs journal leaks` with the
 * agent, path, pid and process name; nothing reported after a clean run;
 * three agents writing temp files of the same names at once, seen apart by
 * `timeline`; tail -f; verify of an intact and of an edited journal; bad
 * arguments. Contract: docs/journal.md. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_KIDS 8
/* The writer commits within 100 ms; give it room on a loaded machine. */
#define JOURNAL_WAIT_MS 10000

static pid_t kids[MAX_KIDS];
static int n_kids;

/* Kills what the test started before the harness unmounts. */
static void jt_fini(void)
{
    for (int i = 0; i < n_kids; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
        }
    n_kids = 0;
    h_teardown();
}

#define TEST_J(name) Test(journal, name, .init = h_setup, .fini = jt_fini, \
                          .timeout = H_TIMEOUT)

static void kid_gone(pid_t pid)
{
    for (int i = 0; i < n_kids; i++)
        if (kids[i] == pid)
            kids[i] = 0;
}

/* A process named name that opens path read-write (and write-locks it
 * with fcntl when lock), then waits to be killed. Returns its pid once
 * the file is open. */
static pid_t holder(const char *path, const char *name, bool lock)
{
    int pfd[2];
    char ok = 0;

    cr_assert_eq(pipe(pfd), 0);
    cr_assert_lt(n_kids, MAX_KIDS);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pfd[0]);
        prctl(PR_SET_NAME, name, 0, 0, 0);
        int fd = open(path, O_RDWR);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char c = fd >= 0 && (!lock || fcntl(fd, F_SETLK, &fl) == 0) ? 1 : 2;
        if (write(pfd[1], &c, 1) != 1 || c != 1)
            _exit(1);
        for (;;)
            pause();
    }
    kids[n_kids++] = pid;
    close(pfd[1]);
    cr_assert_eq(read(pfd[0], &ok, 1), 1);
    close(pfd[0]);
    cr_assert_eq(ok, 1, "%s could not open%s %s", name, lock ? " and lock" : "",
                 path);
    return pid;
}

static void kill_kid(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    kid_gone(pid);
}

/* ---- running `lanefs journal` ------------------------------------------- */

/* `lanefs journal STATE leaks --json` (exit 0 asserted). */
static cJSON *leaks(void)
{
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "leaks", "--json", (char *)NULL);
    cr_assert_eq(r.code, 0, "leaks: exit %d: %s", r.code, r.err);
    return h_json(r.out, "leaks --json");
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static bool same(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The first leak of kind by agent on path (path NULL: any), or NULL. */
static cJSON *find_leak(cJSON *root, const char *kind, const char *agent,
                        const char *path)
{
    cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(root, "leaks")) {
        if (same(jstr(l, "kind"), kind) && same(jstr(l, "agent"), agent) &&
            (!path || same(jstr(l, "path"), path)))
            return l;
    }
    return NULL;
}

/* Polls leaks until the wanted one shows up; returns a copy of it. */
static cJSON *wait_leak(const char *kind, const char *agent, const char *path)
{
    char *last = NULL;
    for (int waited = 0; waited < JOURNAL_WAIT_MS; waited += 100) {
        cJSON *root = leaks(), *l = find_leak(root, kind, agent, path);
        if (l) {
            cJSON *copy = cJSON_Duplicate(l, true);
            cJSON_Delete(root);
            return copy;
        }
        free(last);
        last = cJSON_Print(root);
        cJSON_Delete(root);
        usleep(100 * 1000);
    }
    cr_assert_fail("no %s leak of %s on %s; leaks: %s", kind, agent,
                   path ? path : "-", last);
    return NULL;
}

static int n_leaks(cJSON *root)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "leaks"));
}

/* JSON lines of `lanefs journal STATE CMD --json ARGS...` (up to six,
 * NULL-ended) as an array. */
static cJSON *records6(const char *cmd, const char *a1, const char *a2,
                       const char *a3, const char *a4, const char *a5,
                       const char *a6)
{
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, cmd, "--json", a1, a2, a3, a4, a5,
             a6, (char *)NULL);
    cr_assert_eq(r.code, 0, "journal %s: exit %d: %s", cmd, r.code, r.err);
    cr_assert(strlen(r.out) < sizeof(r.out) - 1, "journal %s: output "
              "truncated", cmd);
    cJSON *list = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(r.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        cJSON_AddItemToArray(list, h_json(line, cmd));
    return list;
}

static cJSON *records(const char *cmd, const char *a1, const char *a2,
                      const char *a3, const char *a4)
{
    return records6(cmd, a1, a2, a3, a4, NULL, NULL);
}

/* Waits until the journal holds an event op by agent (on path). */
static void wait_event(const char *op, const char *agent, const char *path)
{
    for (int waited = 0; waited < JOURNAL_WAIT_MS; waited += 100) {
        cJSON *list = records6("query", "--op", op, "--agent", agent,
                               path ? "--path" : NULL, path);
        bool found = cJSON_GetArraySize(list) > 0;
        cJSON_Delete(list);
        if (found)
            return;
        usleep(100 * 1000);
    }
    cr_assert_fail("no %s event of %s on %s", op, agent, path ? path : "-");
}

static void assert_verified(void)
{
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "verify", (char *)NULL);
    cr_assert_eq(r.code, 0, "verify: exit %d: %s%s", r.code, r.out, r.err);
    cr_assert(strstr(r.out, "intact") != NULL, "verify: %s", r.out);
}

static void stop_daemon(void)
{
    pid_t pid = h_daemon_pid();
    cr_assert(pid > 1);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert(h_wait_pid_gone(pid, 30000), "daemon alive 30 s after SIGTERM");
}

/* ---- tests -------------------------------------------------------------- */

TEST_J(written_and_verified)
{
    h_init(NULL);
    h_mount("a");
    cr_assert(h_exists(h_str("%s/journal.db", H.state)));
    wait_event("session_start", "a", NULL);
    h_put(h_str("%s/hello", h_mnt("a")), "hi\n", 0644);
    wait_event("create", "a", "/hello");
    cJSON *list = records("query", "--agent", "a", "--op", "session_start");
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cr_assert_gt(jnum(cJSON_GetArrayItem(list, 0), "session"), 0);
    cJSON_Delete(list);
    assert_verified();
    h_umount("a");
    wait_event("session_end", "a", NULL);
    assert_verified();

    /* The text forms read the same journal. */
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "stats", (char *)NULL);
    cr_assert_eq(r.code, 0, "stats: %s", r.err);
    cr_assert(strstr(r.out, "\na ") != NULL, "stats: %s", r.out);
    h_lanefs(&r, NULL, "journal", H.state, "tail", "-n", "1", (char *)NULL);
    cr_assert_eq(r.code, 0, "tail: %s", r.err);
    cr_assert(strstr(r.out, "session_end") != NULL, "tail: %s", r.out);
}

TEST_J(clean_run_reports_nothing)
{
    h_put(h_str("%s/in.txt", H.lower), "input\n", 0644);
    h_init(NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    /* temp files made and removed, private files made, renamed, removed,
     * a lower file read and edited, a lease taken and released */
    h_put(h_str("%s/tmp/scratch", a), "scratch\n", 0644);
    cr_assert_eq(unlink(h_str("%s/tmp/scratch", a)), 0);
    h_put(h_str("%s/x.part", b), "partial\n", 0644);
    cr_assert_eq(rename(h_str("%s/x.part", b), h_str("%s/x", b)), 0);
    h_mkdir_p(h_str("%s/out", a), 0755);
    h_put(h_str("%s/out/r", a), "result\n", 0644);
    cr_assert_eq(rename(h_str("%s/out/r", a), h_str("%s/out/r2", a)), 0);
    cr_assert_eq(unlink(h_str("%s/out/r2", a)), 0);
    cr_assert_eq(rmdir(h_str("%s/out", a)), 0);
    cr_assert_str_eq(h_get(h_str("%s/in.txt", b)), "input\n");
    h_put(h_str("%s/in.txt", a), "edited\n", 0644);
    const char *leased = h_str("%s/in.txt", b);
    cr_assert_eq(setxattr(leased, "user.lanefs.lease", "write", 5, 0), 0,
                 "lease: %s", strerror(errno));
    cr_assert_eq(removexattr(leased, "user.lanefs.lease"), 0);
    h_umount("a");
    h_umount("b");
    wait_event("session_end", "b", NULL);
    usleep(300 * 1000);

    cJSON *root = leaks();
    char *text = cJSON_Print(root);
    cr_assert_eq(n_leaks(root), 0, "a clean run leaked: %s", text);
    free(text);
    cJSON_Delete(root);
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "leaks", (char *)NULL);
    cr_assert_eq(r.code, 0);
    cr_assert_str_eq(r.out, "no leaks\n");
    assert_verified();

    /* The run is in the journal: stats per agent and a timeline. */
    h_lanefs(&r, NULL, "journal", H.state, "stats", "--json", (char *)NULL);
    cr_assert_eq(r.code, 0, "stats: %s", r.err);
    cJSON *st = h_json(r.out, "stats"), *g;
    int agents = 0;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(st, "agents")) {
        if (!jstr(g, "agent"))
            continue;
        agents++;
        cr_assert_eq(jnum(g, "sessions"), 1, "%s", r.out);
    }
    cr_assert_eq(agents, 2, "%s", r.out);
    cJSON_Delete(st);
    cJSON *tl = records("timeline", "/in.txt", NULL, NULL, NULL), *e;
    bool a_copied = false, b_read = false;
    cJSON_ArrayForEach(e, tl) {
        a_copied |= same(jstr(e, "agent"), "a") &&
                    same(jstr(e, "op"), "copy_up");
        b_read |= same(jstr(e, "agent"), "b") && same(jstr(e, "op"), "open");
    }
    cr_assert(a_copied && b_read, "timeline of /in.txt lacks a's copy-up "
              "or b's open");
    cJSON_Delete(tl);
}

TEST_J(temp_files_left_at_session_end)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_mkdir_p(h_str("%s/tmp/sub", a), 0755);
    h_put(h_str("%s/tmp/sub/scratch.txt", a), "0123456789", 0644);
    h_put(h_str("%s/download.part", a), "abc", 0644);
    h_umount("a");
    cJSON *l = wait_leak("temp_left", "a", "/tmp/sub/scratch.txt");
    cr_assert_eq(jnum(l, "size"), 10);
    cr_assert_gt(jnum(l, "session"), 0);
    cJSON_Delete(l);
    l = wait_leak("temp_left", "a", "/download.part");
    cr_assert_eq(jnum(l, "size"), 3);
    cJSON_Delete(l);

    /* The table names them too. */
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "leaks", "--agent", "a",
             (char *)NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "temp_left") && strstr(r.out, "/download.part"),
              "leaks: %s", r.out);
    h_lanefs(&r, NULL, "journal", H.state, "leaks", "--agent", "b",
             (char *)NULL);
    cr_assert_str_eq(r.out, "no leaks\n");
}

TEST_J(file_open_at_daemon_shutdown)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_mount("b");
    h_put(h_str("%s/report.csv", a), "1,2\n", 0644);
    pid_t pid = holder(h_str("%s/report.csv", a), "holder", false);
    wait_event("open", "a", "/report.csv");
    stop_daemon();
    h_forget_mount("a");
    h_forget_mount("b");
    cJSON *l = wait_leak("handle_left", "a", "/report.csv");
    cr_assert_eq(jnum(l, "pid"), pid);
    cr_assert_str_eq(jstr(l, "comm"), "holder");
    cJSON_Delete(l);
    kill_kid(pid);
    cJSON *root = leaks();
    cr_assert_null(find_leak(root, "handle_left", "b", NULL));
    cr_assert_null(find_leak(root, "session_unended", "a", NULL));
    cJSON_Delete(root);
    assert_verified();
}

TEST_J(file_open_across_lazy_umount)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_put(h_str("%s/model.bin", a), "weights", 0644);
    pid_t pid = holder(h_str("%s/model.bin", a), "lazyholder", false);
    struct h_res r;
    h_lanefs(&r, NULL, "umount", "--lazy", a, (char *)NULL);
    cr_assert_eq(r.code, 0, "umount --lazy: %s", r.err);
    h_forget_mount("a");
    wait_event("open", "a", "/model.bin");
    sleep(2);
    /* The session lives on while the file is open: open longer than 1s. */
    h_lanefs(&r, NULL, "journal", H.state, "leaks", "--open-for", "1s",
             "--json", (char *)NULL);
    cr_assert_eq(r.code, 0, "leaks: %s", r.err);
    cJSON *root = h_json(r.out, "leaks");
    cJSON *l = find_leak(root, "handle_open_long", "a", "/model.bin");
    cr_assert_not_null(l, "no handle_open_long: %s", r.out);
    cr_assert_eq(jnum(l, "pid"), pid);
    cr_assert_str_eq(jstr(l, "comm"), "lazyholder");
    cJSON_Delete(root);
    /* Not under the default threshold of an hour. */
    root = leaks();
    cr_assert_null(find_leak(root, "handle_open_long", "a", NULL));
    cJSON_Delete(root);

    /* When the holder goes, the detached mount goes. Whether the kernel
     * sent the release before the connection went or not, nothing else is
     * reported: no open file, or one left open by the holder. */
    kill_kid(pid);
    wait_event("session_end", "a", NULL);
    usleep(300 * 1000);
    root = leaks();
    cr_assert_null(find_leak(root, "handle_open_long", "a", NULL));
    l = find_leak(root, "handle_left", "a", NULL);
    if (l) {
        cr_assert_str_eq(jstr(l, "path"), "/model.bin");
        cr_assert_eq(jnum(l, "pid"), pid);
        cr_assert_str_eq(jstr(l, "comm"), "lazyholder");
    }
    cJSON_Delete(root);
}

TEST_J(lease_left_to_expire)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_put(h_str("%s/job", a), "todo\n", 0644);
    cr_assert_eq(setxattr(h_str("%s/job", a), "user.lanefs.lease",
                          "write,ttl=2", 11, 0), 0, "lease: %s",
                 strerror(errno));
    cJSON *l = wait_leak("lease_expired", "a", "/job");
    cr_assert(strstr(jstr(l, "detail"), "write") != NULL);
    cJSON_Delete(l);
    h_umount("a");
}

TEST_J(lock_held_at_session_end)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_put(h_str("%s/db", a), "", 0644);
    pid_t pid = holder(h_str("%s/db", a), "locker", true);
    wait_event("open", "a", "/db");
    stop_daemon();
    h_forget_mount("a");
    cJSON *l = wait_leak("lock_left", "a", NULL);
    cr_assert_gt(jnum(l, "session"), 0);
    const char *path = jstr(l, "path");
    if (path)
        cr_assert_str_eq(path, "/db");
    if (jnum(l, "pid") >= 0)
        cr_assert_eq(jnum(l, "pid"), pid);
    cJSON_Delete(l);
    /* The file the lock was on, still open, names the process. */
    l = wait_leak("handle_left", "a", "/db");
    cr_assert_eq(jnum(l, "pid"), pid);
    cr_assert_str_eq(jstr(l, "comm"), "locker");
    cJSON_Delete(l);
    kill_kid(pid);
}

TEST_J(daemon_sigkill)
{
    h_init(NULL);
    const char *a = h_mount("a");
    h_put(h_str("%s/data", a), "x", 0644);
    pid_t pid = holder(h_str("%s/data", a), "victim", false);
    wait_event("open", "a", "/data");
    /* Every event committed before the kill is there after it. */
    h_put(h_str("%s/last-before-kill", a), "y", 0644);
    usleep(500 * 1000);
    pid_t d = h_daemon_pid();
    cr_assert_eq(kill(d, SIGKILL), 0);
    cr_assert(h_wait_pid_gone(d, 30000));
    kill_kid(pid);
    struct h_res r;
    h_lanefs(&r, NULL, "recover", H.state, (char *)NULL);
    cr_assert_eq(r.code, 0, "recover: %s", r.err);
    h_forget_mount("a");

    wait_event("create", "a", "/last-before-kill");
    assert_verified();
    /* The file open when the daemon died, by whom; the session that ended
     * by the crash (or never ended, when recovery does not journal). */
    cJSON *l = wait_leak("handle_left", "a", "/data");
    cr_assert_eq(jnum(l, "pid"), pid);
    cr_assert_str_eq(jstr(l, "comm"), "victim");
    cJSON_Delete(l);
    cJSON *root = leaks();
    cr_assert(find_leak(root, "session_unended", "a", NULL) ||
              find_leak(root, "session_crashed", "a", NULL),
              "no dead session of a reported");
    cJSON_Delete(root);

    /* A new daemon continues the chain. */
    a = h_mount("a");
    h_put(h_str("%s/after", a), "z", 0644);
    wait_event("create", "a", "/after");
    assert_verified();
}

/* Each of three agents writes /tmp/out.txt and /work.part 40 times at
 * once, with its own content, reading it back, and removes them every
 * other time (so 21 creates and 20 unlinks of each). */
static int temp_worker(const char *mnt, const char *agent)
{
    char want[64];
    snprintf(want, sizeof(want), "from %s\n", agent);
    for (int i = 0; i < 40; i++) {
        const char *files[] = { "tmp/out.txt", "work.part" };
        for (int k = 0; k < 2; k++) {
            char p[512], got[64] = "";
            snprintf(p, sizeof(p), "%s/%s", mnt, files[k]);
            int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, want, strlen(want)) < 0 || close(fd) < 0)
                return 1;
            fd = open(p, O_RDONLY);
            if (fd < 0)
                return 2;
            ssize_t n = read(fd, got, sizeof(got) - 1);
            close(fd);
            if (n < 0 || strcmp(got, want) != 0)
                return 3;       /* another agent's content */
            if (i % 2 == 0 && unlink(p) < 0)
                return 4;       /* vanished under us */
        }
    }
    return 0;
}

TEST_J(three_agents_same_temp_names)
{
    static const char *const names[] = { "a", "b", "c" };
    const char *mnts[3];
    pid_t pids[3];

    h_init(NULL);
    for (int i = 0; i < 3; i++)
        mnts[i] = h_mount(names[i]);
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        cr_assert_geq(pids[i], 0);
        if (pids[i] == 0) {
            prctl(PR_SET_NAME, h_str("writer-%s", names[i]), 0, 0, 0);
            _exit(temp_worker(mnts[i], names[i]));
        }
    }
    for (int i = 0; i < 3; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "agent %s saw another agent's temp file (status 0x%x)",
                  names[i], st);
    }
    for (int i = 0; i < 3; i++)
        cr_assert_str_eq(h_get(h_str("%s/tmp/out.txt", mnts[i])),
                         h_str("from %s\n", names[i]));
    wait_event("close", "c", "/tmp/out.txt");
    usleep(300 * 1000);

    /* The timeline of the one name shows each agent's own file: every
     * event of agent X on it was made by X's writer process. */
    for (int i = 0; i < 3; i++) {
        cJSON *tl = records6("timeline", "/tmp/out.txt", "--agent", names[i],
                             "--op", "create,unlink", NULL), *e;
        int creates = 0, unlinks = 0;
        cJSON_ArrayForEach(e, tl) {
            cr_assert_str_eq(jstr(e, "agent"), names[i]);
            cr_assert_eq(jnum(e, "pid"), pids[i],
                         "agent %s's timeline has pid %.0f", names[i],
                         jnum(e, "pid"));
            creates += same(jstr(e, "op"), "create");
            unlinks += same(jstr(e, "op"), "unlink");
        }
        cr_assert_eq(creates, 21, "agent %s: %d creates", names[i], creates);
        cr_assert_eq(unlinks, 20, "agent %s: %d unlinks", names[i], unlinks);
        cJSON_Delete(tl);
    }
    /* All three together, in order. */
    cJSON *all = records("timeline", "tmp/out.txt", "--op", "create", NULL);
    int seen[3] = { 0 };
    double last = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, all) {
        for (int i = 0; i < 3; i++)
            seen[i] += same(jstr(e, "agent"), names[i]);
        cr_assert_gt(jnum(e, "id"), last);
        last = jnum(e, "id");
    }
    cJSON_Delete(all);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(seen[i], 21, "agent %s: %d creates in the timeline of "
                     "all", names[i], seen[i]);
        h_umount(names[i]);
    }
}

TEST_J(tail_follows)
{
    h_init(NULL);
    const char *a = h_mount("a");
    wait_event("session_start", "a", NULL);
    char *out = h_str("%s/tail.out", H.root);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        execl(H.lanefs, H.lanefs, "journal", H.state, "tail", "-f", "-n", "0",
              "--agent", "a", "--json", (char *)NULL);
        _exit(127);
    }
    kids[n_kids++] = pid;
    usleep(500 * 1000);
    h_put(h_str("%s/followed", a), "f", 0644);
    cr_assert(h_wait_file_has(out, "\"/followed\"", JOURNAL_WAIT_MS),
              "tail -f did not show the new file: %s", h_get(out));
    cr_assert(strstr(h_get(out), "session_start") == NULL,
              "tail -n 0 printed old events: %s", h_get(out));
    kill_kid(pid);
}

TEST_J(verify_finds_an_edit)
{
    h_init(NULL);
    const char *a = h_mount("a");
    for (int i = 0; i < 5; i++)
        h_put(h_str("%s/f%d", a, i), "x", 0644);
    h_umount("a");
    wait_event("session_end", "a", NULL);
    assert_verified();

    sqlite3 *db;
    cr_assert_eq(sqlite3_open(h_str("%s/journal.db", H.state), &db),
                 SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_exec(db, "UPDATE events SET agent = 'b' WHERE id = "
                              "(SELECT min(id) FROM events WHERE op = "
                              "'create')", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT min(id) FROM events WHERE "
                                    "op = 'create'", -1, &st, NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    long long id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "verify", (char *)NULL);
    cr_assert_eq(r.code, 1, "verify of an edited journal: exit %d: %s",
                 r.code, r.out);
    cr_assert(strstr(r.out, h_str("BROKEN at event %lld", id)) != NULL,
              "verify: %s", r.out);
    h_lanefs(&r, NULL, "journal", H.state, "verify", "--json", (char *)NULL);
    cr_assert_eq(r.code, 1);
    cJSON *v = h_json(r.out, "verify --json");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(v, "ok")));
    cr_assert_eq(jnum(v, "first_bad"), id);
    cJSON_Delete(v);
}

TEST_J(bad_arguments)
{
    h_init(NULL);
    h_mount("a");
    wait_event("session_start", "a", NULL);
    const char *bad[][4] = {
        { "query", "--since", "yesterday", NULL },
        { "query", "--until", "2024-13-01", NULL },
        { "query", "--since", "1h", "--until" },
        { "tail", "-n", "many", NULL },
        { "export", "--format", "xml", NULL },
        { "timeline", NULL, NULL, NULL },
        { "leaks", "--open-for", "soon", NULL },
        { "verify", "--agent", "a", NULL },
        { "frobnicate", NULL, NULL, NULL },
        { "query", "--agent", "No/Such", NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct h_res r;
        h_lanefs(&r, NULL, "journal", H.state, bad[i][0], bad[i][1],
                 bad[i][2], bad[i][3], (char *)NULL);
        cr_assert_eq(r.code, 2, "journal %s %s %s: exit %d", bad[i][0],
                     bad[i][1] ? bad[i][1] : "", bad[i][2] ? bad[i][2] : "",
                     r.code);
        cr_assert(strncmp(r.err, "lanefs: ", 8) == 0, "%s", r.err);
    }
    /* Good times in every form. */
    const char *times[] = { "10m", "2h", "1d", "2024-05-01",
                            "2024-05-01T12:00:00Z", "@0" };
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        struct h_res r;
        h_lanefs(&r, NULL, "journal", H.state, "query", "--since", times[i],
                 (char *)NULL);
        cr_assert_eq(r.code, 0, "--since %s: %s", times[i], r.err);
    }
    struct h_res r;
    h_lanefs(&r, NULL, "journal", H.state, "query", "--since", "1h",
             "--op", "session_start", (char *)NULL);
    cr_assert(strstr(r.out, "session_start") != NULL, "%s", r.out);
    h_lanefs(&r, NULL, "journal", H.state, "query", "--until", "1h",
             (char *)NULL);
    cr_assert_str_eq(r.out, "no events\n");
}
