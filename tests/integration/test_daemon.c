/* test_daemon.c - one daemon serves every agent mount of a volume: one
 * process, a thread count that does not grow with mounts, status and
 * agents, session ends (umount, external umount, SIGTERM), and recovery
 * after SIGKILL. Contract: docs/control.md. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_D(name) Test(daemon, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

static char *sessions_log(void)
{
    char *s = h_get(h_str("%s/sessions.log", H.state));
    return s ? s : "";
}

static void assert_works(const char *mnt, const char *what)
{
    char *f = h_str("%s/probe-%d", mnt, (int)getpid());
    h_put(f, what, 0644);
    char *got = h_get(f);
    cr_assert(got && strcmp(got, what) == 0, "%s: %s does not work", what, mnt);
}

TEST_D(one_process_serves_all_mounts_with_bounded_threads)
{
    h_init(NULL);
    const char *a = h_mount("a");
    pid_t pid = h_daemon_pid();
    cr_assert(pid > 1, "no STATE/daemon.pid after the first mount");
    int threads_1 = h_threads(pid);
    cr_assert(threads_1 > 0);

    int threads_20 = 0;
    for (int i = 1; i < 100; i++) {
        char name[24];
        snprintf(name, sizeof name, "agent%02d", i);
        h_mount(name);
        cr_assert_eq(h_daemon_pid(), pid, "mount %d started another daemon", i + 1);
        if (i == 19)
            threads_20 = h_threads(pid);
    }
    int threads_100 = h_threads(pid);
    cr_log_info("daemon %d: %d threads with 1 mount, %d with 20, %d with 100",
                (int)pid, threads_1, threads_20, threads_100);
    cr_assert_eq(threads_20, threads_1,
                 "thread count grew with mounts: %d with 1, %d with 20",
                 threads_1, threads_20);
    cr_assert_eq(threads_100, threads_1,
                 "thread count grew with mounts: %d with 1, %d with 100",
                 threads_1, threads_100);
    assert_works(a, "first mount");
    assert_works(h_mnt("agent99"), "last mount");

    /* 100 agents make a long status: ask the socket, not the table. */
    cJSON *st = h_json(h_ctl("{\"v\":1,\"op\":\"status\"}"), "the status reply");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(st, "agents")), 100);
    cr_assert_eq(cJSON_GetObjectItem(st, "pid")->valueint, pid);
    cJSON_Delete(st);

    for (int i = 1; i < 100; i++) {
        char name[24];
        snprintf(name, sizeof name, "agent%02d", i);
        h_umount(name);
    }
    assert_works(a, "first mount after 99 umounts");
    cr_assert_eq(h_daemon_pid(), pid);
    h_umount("a");
}

TEST_D(status_and_agents)
{
    h_init(NULL);
    struct h_res r;
    /* No daemon yet: status fails clearly, agents lists nothing. */
    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, (char *)NULL), 1);
    cr_assert(strstr(r.err, "no daemon") != NULL, "status without daemon: %s", r.err);

    h_mount("gone");
    h_mount("alpha");
    h_umount("gone");
    const char *beta = h_mnt("beta");
    h_mkdir_p(beta, 0755);
    cr_assert_eq(h_lanefs(&r, NULL, "mount", H.state, "--agent", "beta", beta,
                          "--quota-bytes", "10M", "--quota-inodes", "1K", (char *)NULL), 0,
                 "mount with quotas: %s", r.err);
    h_forget_mount("beta");
    cr_assert(h_wait_mount(beta, true, H_MOUNT_WAIT_MS));

    h_put(h_str("%s/held", beta), "held open", 0644);
    int fd = open(h_str("%s/held", beta), O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);

    cJSON *st = h_status();
    cr_assert_eq(cJSON_GetObjectItem(st, "pid")->valueint, h_daemon_pid());
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(st, "agents")), 2);
    cJSON *b = h_status_agent(st, "beta");
    cr_assert_not_null(b, "status lists no agent beta");
    cr_assert_str_eq(cJSON_GetObjectItem(b, "mountpoint")->valuestring, beta);
    cJSON *q = cJSON_GetObjectItem(b, "quota");
    cr_assert_eq(cJSON_GetObjectItem(q, "bytes_limit")->valuedouble, 10 << 20);
    cr_assert_eq(cJSON_GetObjectItem(q, "inodes_limit")->valuedouble, 1024);
    bool seen = false;
    cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(b, "handles"))
        seen |= cJSON_GetObjectItem(h, "pid")->valueint == getpid();
    cr_assert(seen, "the open file of this test is not among beta's handles");
    cJSON_Delete(st);

    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, (char *)NULL), 0);
    cr_assert(strstr(r.out, "AGENT") && strstr(r.out, "beta") && strstr(r.out, beta),
              "status table: %s", r.out);
    cr_assert(strstr(r.out, h_str("pid %d ", (int)getpid())) != NULL,
              "status lists no handle of this test: %s", r.out);
    cr_assert(strstr(r.out, "/10M") != NULL, "status shows no byte quota: %s", r.out);
    close(fd);

    cr_assert_eq(h_lanefs(&r, NULL, "agents", H.state, "--json", (char *)NULL), 0);
    cJSON *ag = h_json(r.out, "agents --json");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(h_status_agent(ag, "alpha"), "mounted")));
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(h_status_agent(ag, "gone"), "mounted")),
              "%s", r.out);
    cJSON_Delete(ag);
    cr_assert_eq(h_lanefs(&r, NULL, "agents", H.state, (char *)NULL), 0);
    cr_assert(strstr(r.out, "gone") && strstr(r.out, "no"), "agents table: %s", r.out);

    h_umount("alpha");
    cr_assert_eq(h_lanefs(&r, NULL, "umount", beta, (char *)NULL), 0, "%s", r.err);
    /* The daemon a mount started ends with its last session. */
    cr_assert_eq(h_lanefs(&r, NULL, "agents", H.state, (char *)NULL), 0);
    cr_assert(strstr(r.out, "yes") == NULL, "agents after every umount: %s", r.out);
}

TEST_D(second_mount_of_a_mounted_agent_is_refused)
{
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *second = h_at("mnt/a-again");
    h_mkdir_p(second, 0755);
    struct h_res r;
    h_lanefs(&r, NULL, "mount", H.state, "--agent", "a", second, (char *)NULL);
    cr_assert_eq(r.code, 1, "second mount of a: exit %d: %s", r.code, r.err);
    cr_assert(strncmp(r.err, "lanefs: ", 8) == 0 && strstr(r.err, mnt) != NULL,
              "the refusal must name the mount point %s: %s", mnt, r.err);
    cr_assert_str_eq(h_mount_fstype(second), "");
    assert_works(mnt, "first mount after a refused second one");
}

TEST_D(bad_sizes_are_refused_naming_the_argument)
{
    h_init(NULL);
    char *mnt = h_at("mnt/a");
    h_mkdir_p(mnt, 0755);
    const char *bad[] = { "10X", "-5", "1.5", "", "huge", "99999999999T" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct h_res r;
        h_lanefs(&r, NULL, "mount", H.state, "--agent", "a", mnt,
                 "--quota-bytes", bad[i], (char *)NULL);
        cr_assert_eq(r.code, 2, "--quota-bytes '%s': exit %d: %s", bad[i], r.code, r.err);
        cr_assert(strstr(r.err, "--quota-bytes") && strstr(r.err, h_str("'%s'", bad[i])),
                  "the message must name the argument: %s", r.err);
        cr_assert_str_eq(h_mount_fstype(mnt), "");
    }
}

TEST_D(external_umount_ends_only_that_session)
{
    h_init(NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    pid_t pid = h_daemon_pid();
    h_put(h_str("%s/tmp/t", a), "temp", 0644);
    cr_assert_eq(umount2(a, MNT_DETACH), 0, "umount -l %s: %s", a, strerror(errno));
    h_forget_mount("a");
    cr_assert(h_wait_file_has(h_str("%s/sessions.log", H.state), " a ", 30000),
              "no session end of a in sessions.log: %s", sessions_log());
    cr_assert(strstr(sessions_log(), "external-umount") != NULL,
              "sessions.log: %s", sessions_log());
    cr_assert_eq(h_daemon_pid(), pid);
    assert_works(b, "the other agent after an external umount");
    char *left = h_ls(h_agent_path("a", "temp"));
    cr_assert(strcmp(left, "") == 0 || strcmp(left, "!ENOENT") == 0,
              "a's temp layer after its external umount: %s", left);
    /* a can mount again on the same daemon. */
    a = h_mount("a");
    cr_assert_eq(h_daemon_pid(), pid);
    assert_works(a, "a remounted");
}

TEST_D(sigterm_unmounts_everything)
{
    h_init(NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    h_put(h_str("%s/tmp/t", a), "temp", 0644);
    pid_t pid = h_daemon_pid();
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert(h_wait_pid_gone(pid, 30000), "daemon alive 30 s after SIGTERM");
    h_forget_mount("a");
    h_forget_mount("b");
    cr_assert_str_eq(h_mount_fstype(a), "", "a still mounted after SIGTERM");
    cr_assert_str_eq(h_mount_fstype(b), "", "b still mounted after SIGTERM");
    char *log = sessions_log();
    int n = 0;
    for (char *p = log; (p = strstr(p, " shutdown\n")); p++)
        n++;
    cr_assert_eq(n, 2, "two sessions end with reason shutdown: %s", log);
    cr_assert_str_eq(h_ls(h_str("%s/sessions", H.state)), "");
    cr_assert(!h_exists(h_str("%s/control.sock", H.state)), "control.sock left");
    cr_assert(!h_exists(h_str("%s/daemon.pid", H.state)), "daemon.pid left");
    cr_assert_str_eq(h_ls(h_agent_path("a", "temp")), "");
}

TEST_D(sigkill_then_recover_cleans_up)
{
    h_init(NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    h_put(h_str("%s/tmp/t", a), "temp", 0644);
    h_put(h_str("%s/x.part", b), "temp", 0644);
    h_put(h_str("%s/kept", a), "private", 0644);
    pid_t pid = h_daemon_pid();

    struct h_res r;
    h_lanefs(&r, NULL, "recover", H.state, (char *)NULL);
    cr_assert_eq(r.code, 1, "recover while the daemon runs: exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, "daemon") != NULL, "%s", r.err);

    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert(h_wait_pid_gone(pid, 30000));
    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, (char *)NULL), 1);
    cr_assert(strstr(r.err, "recover") != NULL, "status after a crash: %s", r.err);

    h_lanefs(&r, NULL, "recover", H.state, (char *)NULL);
    cr_assert_eq(r.code, 0, "recover: exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.out, "recovered 2 sessions") != NULL, "recover said: %s", r.out);
    h_forget_mount("a");
    h_forget_mount("b");
    cr_assert_str_eq(h_mount_fstype(a), "", "a still mounted after recover");
    cr_assert_str_eq(h_mount_fstype(b), "", "b still mounted after recover");
    cr_assert_str_eq(h_ls(h_agent_path("a", "temp")), "");
    cr_assert_str_eq(h_ls(h_agent_path("b", "temp")), "");
    cr_assert_str_eq(h_ls(h_str("%s/sessions", H.state)), "");
    cr_assert(!h_exists(h_str("%s/control.sock", H.state)));
    cr_assert(!h_exists(h_str("%s/daemon.pid", H.state)));
    char *log = sessions_log();
    int n = 0;
    for (char *p = log; (p = strstr(p, " crash\n")); p++)
        n++;
    cr_assert_eq(n, 2, "sessions.log: %s", log);
    cr_assert_str_eq(h_get(h_str("%s/kept", h_agent_path("a", "upper"))), "private");

    h_lanefs(&r, NULL, "recover", H.state, (char *)NULL);
    cr_assert_eq(r.code, 0);
    cr_assert(strstr(r.out, "nothing to recover") != NULL, "%s", r.out);
    a = h_mount("a");
    cr_assert_str_eq(h_get(h_str("%s/kept", a)), "private");
}

TEST_D(umount_without_daemon_detaches_and_points_to_recover)
{
    h_init(NULL);
    const char *a = h_mount("a");
    pid_t pid = h_daemon_pid();
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert(h_wait_pid_gone(pid, 30000));
    struct h_res r;
    h_lanefs(&r, NULL, "umount", a, (char *)NULL);
    cr_assert_eq(r.code, 1, "umount of a mount whose daemon died: exit %d: %s", r.code,
                 r.err);
    cr_assert(strstr(r.err, h_str("lanefs recover %s", H.state)) != NULL, "%s", r.err);
    h_forget_mount("a");
    cr_assert_str_eq(h_mount_fstype(a), "", "the dead mount is still there");
    cr_assert_eq(h_lanefs(&r, NULL, "recover", H.state, (char *)NULL), 0, "%s", r.err);
    cr_assert_str_eq(h_ls(h_str("%s/sessions", H.state)), "");
}

TEST_D(serve_and_foreground_mount_refused_while_a_daemon_runs)
{
    h_init(NULL);
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "serve", H.state, (char *)NULL), 0, "serve: %s", r.err);
    pid_t pid = h_daemon_pid();
    cr_assert(pid > 1);
    cr_assert_eq(h_lanefs(&r, NULL, "serve", H.state, (char *)NULL), 1);
    cr_assert(strstr(r.err, h_str("pid %d", (int)pid)) != NULL, "%s", r.err);
    char *mnt = h_at("mnt/a");
    h_mkdir_p(mnt, 0755);
    cr_assert_eq(h_lanefs(&r, NULL, "mount", H.state, "--agent", "a", mnt, "-f",
                          (char *)NULL), 1);
    cr_assert(strstr(r.err, "without -f") != NULL, "%s", r.err);
    cr_assert_str_eq(h_mount_fstype(mnt), "");
    /* A plain mount joins it, and the daemon outlives the session. */
    h_mount("a");
    cr_assert_eq(h_daemon_pid(), pid);
    h_umount("a");
    cr_assert(strstr(h_ctl("{\"v\":1,\"op\":\"ping\"}"), "\"ok\":true") != NULL);
    char *reply = h_ctl("{\"v\":1,\"op\":\"shutdown\"}");
    cr_assert(strstr(reply, "\"ok\":true") != NULL, "shutdown: %s", reply);
    cr_assert(h_wait_pid_gone(pid, 30000), "daemon alive 30 s after shutdown");
}

static void assert_err_reply(const char *reply, const char *errname, const char *what)
{
    cr_assert_not_null(reply, "%s: no reply", what);
    cJSON *j = h_json(reply, what);
    cJSON *ok = cJSON_GetObjectItem(j, "ok"), *e = cJSON_GetObjectItem(j, "errno");
    cr_assert(cJSON_IsFalse(ok), "%s: %s", what, reply);
    cr_assert(cJSON_IsString(e) && strcmp(e->valuestring, errname) == 0,
              "%s: want errno %s, got %s", what, errname, reply);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(j, "error")), "%s: no error: %s", what,
              reply);
    cr_assert_eq(cJSON_GetObjectItem(j, "v")->valueint, 1, "%s: %s", what, reply);
    cJSON_Delete(j);
}

static void assert_ping(const char *after)
{
    char *reply = h_ctl("{\"v\":1,\"op\":\"ping\"}");
    cJSON *j = h_json(reply, "ping");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")), "ping after %s: %s", after, reply);
    cr_assert_eq(cJSON_GetObjectItem(j, "pid")->valueint, h_daemon_pid());
    cr_assert_str_eq(cJSON_GetObjectItem(j, "state")->valuestring, H.state);
    cJSON_Delete(j);
}

TEST_D(control_socket_survives_bad_input)
{
    h_init(NULL);
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "serve", H.state, (char *)NULL), 0, "serve: %s", r.err);
    pid_t pid = h_daemon_pid();
    struct stat st;
    cr_assert_eq(h_lstat(h_str("%s/control.sock", H.state), &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "control.sock mode %o", st.st_mode & 0777);

    assert_err_reply(h_ctl("garbage \x01\x02\xff"), "EINVAL", "garbage bytes");
    assert_ping("garbage");
    assert_err_reply(h_ctl("[1,2,3]"), "EINVAL", "not an object");
    assert_err_reply(h_ctl("{\"v\":2,\"op\":\"ping\"}"), "EPROTO", "version 2");
    assert_err_reply(h_ctl("{\"op\":\"ping\"}"), "EPROTO", "no version");
    assert_err_reply(h_ctl("{\"v\":1,\"op\":\"frobnicate\"}"), "EINVAL", "unknown op");
    assert_err_reply(h_ctl("{\"v\":1}"), "EINVAL", "no op");
    assert_err_reply(h_ctl("{\"v\":1,\"op\":\"mount\",\"agent\":5,"
                           "\"mountpoint\":\"/x\"}"), "EINVAL", "mistyped agent");
    assert_err_reply(h_ctl("{\"v\":1,\"op\":\"umount\",\"agent\":\"nobody\"}"), "ENOENT",
                     "umount of no session");
    assert_ping("bad requests");

    /* A 70,000-byte line: EMSGSIZE, then the connection is closed. */
    int fd = h_ctl_connect();
    size_t big = 70000;
    char *line = malloc(big + 1);
    cr_assert_not_null(line);
    memcpy(line, "{\"v\":1,\"op\":\"ping\",\"pad\":\"", 27);
    memset(line + 27, 'x', big - 27 - 3);
    memcpy(line + big - 3, "\"}\n", 3);
    h_ctl_send(fd, line, big);      /* the daemon may close before all is sent */
    free(line);
    assert_err_reply(h_ctl_read_line(fd, 10000), "EMSGSIZE", "70,000-byte line");
    char *more = h_ctl_read_line(fd, 10000);
    cr_assert_null(more, "the connection stays open after EMSGSIZE: %s", more);
    close(fd);
    assert_ping("an oversized line");

    /* A client that goes away in the middle of a request. */
    fd = h_ctl_connect();
    h_ctl_send(fd, "{\"v\":1,\"op\":", 12);
    close(fd);
    assert_ping("a client that went away");

    /* Two requests on one connection. */
    fd = h_ctl_connect();
    const char *two = "{\"v\":1,\"op\":\"ping\"}\n";
    cr_assert(h_ctl_send(fd, two, strlen(two)));
    cr_assert_not_null(strstr(h_ctl_read_line(fd, 10000), "\"ok\":true"));
    cr_assert(h_ctl_send(fd, two, strlen(two)));
    cr_assert_not_null(strstr(h_ctl_read_line(fd, 10000), "\"ok\":true"));
    close(fd);

    cr_assert_eq(h_daemon_pid(), pid);
    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, (char *)NULL), 0, "%s", r.err);
    kill(pid, SIGTERM);
    cr_assert(h_wait_pid_gone(pid, 30000));
}

TEST_D(ephemeral_agent_loses_its_upper)
{
    h_init(NULL);
    h_put(h_str("%s/shared.txt", H.lower), "lower", 0644);
    char *mnt = (char *)h_mnt("e");
    h_mkdir_p(mnt, 0755);
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "mount", H.state, "--agent", "e", mnt, "--ephemeral",
                          (char *)NULL), 0, "%s", r.err);
    cr_assert(h_wait_mount(mnt, true, H_MOUNT_WAIT_MS));
    h_put(h_str("%s/new", mnt), "new", 0644);
    h_put(h_str("%s/shared.txt", mnt), "changed", 0644);
    cr_assert_eq(h_lanefs(&r, NULL, "umount", mnt, (char *)NULL), 0, "%s", r.err);
    char *left = h_ls(h_agent_path("e", "upper"));
    cr_assert(strcmp(left, "") == 0 || strcmp(left, "!ENOENT") == 0,
              "upper of an ephemeral agent after umount: %s", left);
    mnt = (char *)h_mount("e");
    cr_assert(!h_exists(h_str("%s/new", mnt)));
    cr_assert_str_eq(h_get(h_str("%s/shared.txt", mnt)), "lower");
    /* Not ephemeral this time: the change stays. */
    h_put(h_str("%s/new", mnt), "new", 0644);
    h_umount("e");
    mnt = (char *)h_mount("e");
    cr_assert_str_eq(h_get(h_str("%s/new", mnt)), "new");
}

TEST_D(agent_diff_and_reset)
{
    h_mkdir_p(h_str("%s/docs", H.lower), 0755);
    h_put(h_str("%s/docs/keep", H.lower), "k", 0644);
    h_put(h_str("%s/docs/edit", H.lower), "old", 0644);
    h_put(h_str("%s/docs/drop", H.lower), "d", 0644);
    h_init(NULL);
    const char *mnt = h_mount("a");
    h_put(h_str("%s/docs/edit", mnt), "new", 0644);
    cr_assert_eq(unlink(h_str("%s/docs/drop", mnt)), 0);
    h_mkdir_p(h_str("%s/out", mnt), 0755);
    h_put(h_str("%s/out/result", mnt), "r", 0644);
    h_put(h_str("%s/tmp/scratch", mnt), "temp is not a change", 0644);

    struct h_res r;
    h_lanefs(&r, NULL, "agent", "reset", H.state, "a", (char *)NULL);
    cr_assert_eq(r.code, 1, "reset of a mounted agent: exit %d: %s", r.code, r.err);
    cr_assert(strstr(r.err, mnt) != NULL, "the refusal names the mount point: %s", r.err);

    cr_assert_eq(h_lanefs(&r, NULL, "agent", "diff", H.state, "a", (char *)NULL), 0,
                 "%s", r.err);
    cr_assert_str_eq(r.out, "D /docs/drop\nC /docs/edit\nA /out\nA /out/result\n",
                     "%s", r.out);
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "diff", H.state, "a", "--json",
                          (char *)NULL), 0);
    cJSON *j = h_json(r.out, "agent diff --json");
    cr_assert_str_eq(cJSON_GetObjectItem(j, "agent")->valuestring, "a");
    cJSON *ch = cJSON_GetObjectItem(j, "changes");
    cr_assert_eq(cJSON_GetArraySize(ch), 4);
    cJSON *first = cJSON_GetArrayItem(ch, 0);
    cr_assert_str_eq(cJSON_GetObjectItem(first, "kind")->valuestring, "D");
    cr_assert_str_eq(cJSON_GetObjectItem(first, "path")->valuestring, "/docs/drop");
    cJSON_Delete(j);

    h_umount("a");
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "reset", H.state, "a", (char *)NULL), 0,
                 "%s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "diff", H.state, "a", (char *)NULL), 0);
    cr_assert_str_eq(r.out, "");
    mnt = h_mount("a");
    cr_assert_str_eq(h_get(h_str("%s/docs/edit", mnt)), "old");
    cr_assert_str_eq(h_get(h_str("%s/docs/drop", mnt)), "d");
    cr_assert(!h_exists(h_str("%s/out", mnt)));

    h_lanefs(&r, NULL, "agent", "diff", H.state, "nobody", (char *)NULL);
    cr_assert_eq(r.code, 1, "%s", r.err);
    h_lanefs(&r, NULL, "agent", "reset", H.state, "Bad", (char *)NULL);
    cr_assert_eq(r.code, 2, "%s", r.err);
}

/* A mount right after the daemon a mount started has exited with its last
 * session, or while it is exiting, must still succeed. */
TEST_D(remount_while_the_daemon_exits)
{
    h_init(NULL);
    for (int i = 0; i < 10; i++) {
        const char *a = h_mount("a");
        assert_works(a, "mount after the daemon exited");
        h_umount("a");
    }
}

/* Mounts started at the same moment with no daemon running end up in one
 * daemon. */
TEST_D(concurrent_first_mounts_share_one_daemon)
{
    enum { N = 4 };
    h_init(NULL);
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        const char *mnt = h_mnt(h_str("c%d", i));
        h_mkdir_p(mnt, 0755);
        char *agent = h_str("c%d", i);
        kids[i] = fork();
        cr_assert(kids[i] >= 0);
        if (kids[i] == 0) {
            int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
            dup2(nul, 0);
            dup2(nul, 1);
            close_range(3, ~0U, 0);
            execl(H.lanefs, H.lanefs, "mount", H.state, "--agent", agent, mnt,
                  (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "concurrent mount %d: status 0x%x", i, status);
    }
    pid_t pid = h_daemon_pid();
    cr_assert(pid > 1);
    cJSON *st = h_status();
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(st, "agents")), N);
    cJSON_Delete(st);
    struct h_res r;
    for (int i = 0; i < N; i++) {
        const char *mnt = h_mnt(h_str("c%d", i));
        cr_assert(h_wait_mount(mnt, true, 1000), "%s is not mounted", mnt);
        assert_works(mnt, "a concurrently started mount");
        cr_assert_eq(h_lanefs(&r, NULL, "umount", mnt, (char *)NULL), 0, "%s", r.err);
    }
}

/* True when a child can stat path within ms (a mount nobody serves would
 * block the caller forever, so the probe runs in a child). */
static bool answers_within(const char *path, int ms)
{
    pid_t kid = fork();
    cr_assert(kid >= 0);
    if (kid == 0) {
        struct stat st;
        _exit(stat(path, &st) == 0 ? 0 : 1);
    }
    for (int waited = 0; waited < ms; waited += 10) {
        int status;
        if (waitpid(kid, &status, WNOHANG) == kid)
            return WIFEXITED(status) && WEXITSTATUS(status) == 0;
        usleep(10 * 1000);
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    return false;
}

/* The last umount of a daemon that a mount started, and another agent's
 * mount, at the same moment: the mount must end up served, by this daemon
 * or a new one. */
Test(daemon, mount_racing_the_last_umount, .init = h_setup, .fini = h_teardown,
     .timeout = H_TIMEOUT)
{
    h_init(NULL);
    const char *b = h_mnt("b");
    h_mkdir_p(b, 0755);
    for (int i = 0; i < 20; i++) {
        const char *a = h_mount("a");
        pid_t kid = fork();
        cr_assert(kid >= 0);
        if (kid == 0) {
            int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
            close_range(3, ~0U, 0);
            execl(H.lanefs, H.lanefs, "umount", a, (char *)NULL);
            _exit(127);
        }
        struct h_res r;
        h_lanefs(&r, NULL, "mount", H.state, "--agent", "b", b, (char *)NULL);
        int status;
        waitpid(kid, &status, 0);
        h_forget_mount("a");
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: umount a: 0x%x",
                  i, status);
        cr_assert_eq(r.code, 0, "round %d: mount b: %s", i, r.err);
        cr_assert(answers_within(b, 10000),
                  "round %d: b is mounted but nobody serves it (a mount accepted by a "
                  "daemon that was exiting?)", i);
        cr_assert_eq(h_lanefs(&r, NULL, "umount", b, (char *)NULL), 0, "round %d: %s", i,
                     r.err);
    }
}
