/* Unit tests for the lease table (locks/lease.c, locks/lease_mem.c): the
 * attribute parser, conflicts, renewal and mode changes, release, expiry
 * on a clock the test controls, epochs (also across a new table over the
 * same epoch file), the shown value, sweeping and per-agent release. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "locks/lease.h"

#define S(x) (x), sizeof(x) - 1          /* a value without its NUL */

static struct lease_table *t;
static char tdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void setup(void)
{
    t = lease_table_new(NULL);
    cr_assert_not_null(t);
    strcpy(tdir, "/tmp/lanefs-lease-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static void teardown(void)
{
    lease_table_free(t);
    t = NULL;
    nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *epoch_path(void)
{
    static char p[128];
    snprintf(p, sizeof(p), "%s/" LEASE_EPOCH_FILE, tdir);
    return p;
}

#define TEST_L(name) Test(lease, name, .init = setup, .fini = teardown)

/* Acquires and returns the epoch, asserting success. */
static uint64_t grant(const char *key, const char *agent, enum lease_mode m,
                      unsigned ttl, uint64_t now)
{
    uint64_t e = 0;
    int rc = lease_acquire(t, key, agent, m, ttl, now, &e);
    cr_assert_eq(rc, 0, "acquire %s by %s: %s", key, agent, strerror(-rc));
    cr_assert_gt(e, 0);
    return e;
}

static int try(const char *key, const char *agent, enum lease_mode m,
               uint64_t now)
{
    uint64_t e = 0;
    return lease_acquire(t, key, agent, m, 30, now, &e);
}

static const char *show(const char *key, uint64_t now)
{
    static char buf[256];
    int n = lease_show(t, key, now, buf, sizeof(buf));
    cr_assert_geq(n, 0, "show %s: %s", key, strerror(-n));
    cr_assert_eq((size_t)n, strlen(buf));
    return buf;
}

/* ---- lease_parse ------------------------------------------------------ */

static void parse_ok(const char *v, size_t len, enum lease_mode want_mode,
                     unsigned want_ttl)
{
    enum lease_mode m = 0;
    unsigned ttl = 0;
    int rc = lease_parse(v, len, &m, &ttl);
    cr_assert_eq(rc, 0, "'%.*s' refused: %s", (int)len, v, strerror(-rc));
    cr_assert_eq(m, want_mode, "'%.*s'", (int)len, v);
    cr_assert_eq(ttl, want_ttl, "'%.*s': ttl %u", (int)len, v, ttl);
}

static void parse_bad(const char *v, size_t len)
{
    enum lease_mode m = 77;
    unsigned ttl = 77;
    cr_assert_eq(lease_parse(v, len, &m, &ttl), -EINVAL,
                 "'%.*s' (%zu bytes) accepted", (int)len, v, len);
    cr_assert(m == 77 && ttl == 77, "outputs changed on a refusal");
}

Test(lease_parse, good_values)
{
    parse_ok(S("read"), LEASE_READ, LEASE_TTL_DEFAULT);
    parse_ok(S("write"), LEASE_WRITE, LEASE_TTL_DEFAULT);
    parse_ok(S("read,ttl=10"), LEASE_READ, 10);
    parse_ok(S("write,ttl=60"), LEASE_WRITE, 60);
    parse_ok(S("write,ttl=2"), LEASE_WRITE, 2);
    parse_ok(S("write,ttl=300"), LEASE_WRITE, 300);
    parse_ok(S("write,ttl=007"), LEASE_WRITE, 7);
    /* One NUL at the end, as C callers pass sizeof("write"). */
    parse_ok("write", 6, LEASE_WRITE, LEASE_TTL_DEFAULT);
    parse_ok("read,ttl=5", 11, LEASE_READ, 5);
}

Test(lease_parse, ttl_is_clamped)
{
    parse_ok(S("write,ttl=1"), LEASE_WRITE, LEASE_TTL_MIN);
    parse_ok(S("read,ttl=1000"), LEASE_READ, LEASE_TTL_MAX);
    parse_ok(S("write,ttl=301"), LEASE_WRITE, 300);
    parse_ok(S("write,ttl=99999999999999999999999999"), LEASE_WRITE, 300);
    parse_ok(S("write,ttl=00000000000000000000000000000000000000000000009"),
             LEASE_WRITE, 9);
}

Test(lease_parse, bad_values)
{
    static const char *const bad[] = {
        "writ", "wr", "writee", "rea", "reads", "WRITE", "Read", "lock",
        "write,ttl=-1", "write,ttl=0", "read,ttl=000", "write,",
        "write,ttl=", "write,ttl=5x", "write,ttl=x5", "write,ttl=5 ",
        "write,ttl=+5", "write,ttl=5.0", "write,ttl=0x10", "write,ttl=1e3",
        "write,TTL=5", "write,ttl5", "write,ttl", "write,ttl=5,ttl=6",
        "write,ttl=5,", "write;ttl=5", "write ,ttl=5", "write, ttl=5",
        ",ttl=5", ",", "ttl=5", " write", "write ", "write\n", "\twrite",
        "read,write", "write,read", "free", "none", "release", "-",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i], strlen(bad[i]));
}

Test(lease_parse, empty_nul_overlong_and_non_utf8)
{
    parse_bad("", 0);
    parse_bad("\0", 1);
    parse_bad(NULL, 0);
    parse_bad("wri\0te", 6);
    parse_bad("write\0\0", 7);
    parse_bad("\0write", 6);
    parse_bad("write\0,ttl=5", 12);
    /* Non-UTF-8 bytes, and UTF-8 that is not ASCII. */
    parse_bad("write\xff", 6);
    parse_bad("\xc3\x28", 2);
    parse_bad("wr\xc3\xa9te", 7);
    parse_bad("write,ttl=\xd9\xa5", 12);     /* ARABIC-INDIC DIGIT FIVE */
    parse_bad("\xef\xbb\xbfwrite", 8);       /* BOM */
    /* Overlong: 65 bytes, even when the start is good. */
    char big[200];
    memset(big, '0', sizeof(big));
    memcpy(big, "write,ttl=", 10);
    big[sizeof(big) - 1] = '5';
    parse_bad(big, sizeof(big));
    parse_bad(big, LEASE_VALUE_MAX + 1);
    /* ... while 64 bytes of the same shape are fine. */
    memcpy(big + LEASE_VALUE_MAX - 1, "5", 1);
    parse_ok(big, LEASE_VALUE_MAX, LEASE_WRITE, 5);
    memset(big, 'w', sizeof(big));
    parse_bad(big, sizeof(big));
}

Test(lease_parse, mode_names)
{
    cr_assert_str_eq(lease_mode_name(LEASE_READ), "read");
    cr_assert_str_eq(lease_mode_name(LEASE_WRITE), "write");
}

/* ---- conflicts -------------------------------------------------------- */

TEST_L(write_excludes_write)
{
    grant("f", "a", LEASE_WRITE, 30, 1000);
    cr_assert_eq(try("f", "b", LEASE_WRITE, 1000), -EWOULDBLOCK);
    cr_assert_str_eq(show("f", 1000), "mode=write holder=a ttl=30 epoch=1");
    /* Another key is independent. */
    grant("g", "b", LEASE_WRITE, 30, 1000);
}

TEST_L(write_excludes_read_both_ways)
{
    grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_eq(try("f", "b", LEASE_READ, 0), -EWOULDBLOCK);
    grant("g", "a", LEASE_READ, 30, 0);
    cr_assert_eq(try("g", "b", LEASE_WRITE, 0), -EWOULDBLOCK);
    cr_assert_str_eq(show("g", 0), "mode=read holder=a ttl=30 epoch=2");
}

TEST_L(reads_share)
{
    grant("f", "b", LEASE_READ, 30, 0);
    grant("f", "a", LEASE_READ, 10, 0);
    grant("f", "c", LEASE_READ, 60, 0);
    /* Holders sorted, the soonest expiry, the latest epoch. */
    cr_assert_str_eq(show("f", 0), "mode=read holder=a,b,c ttl=10 epoch=3");
    cr_assert_eq(try("f", "d", LEASE_WRITE, 0), -EWOULDBLOCK);
    cr_assert_eq(try("f", "a", LEASE_WRITE, 0), -EWOULDBLOCK);
    cr_assert_str_eq(show("f", 0), "mode=read holder=a,b,c ttl=10 epoch=3");
}

TEST_L(failed_acquire_changes_nothing)
{
    uint64_t e = 12345;
    grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_eq(lease_acquire(t, "f", "b", LEASE_WRITE, 30, 0, &e),
                 -EWOULDBLOCK);
    cr_assert_eq(e, 12345);
    /* The failed try took no epoch. */
    cr_assert_eq(grant("g", "b", LEASE_WRITE, 30, 0), 2);
}

TEST_L(bad_arguments)
{
    uint64_t e;
    cr_assert_eq(lease_acquire(t, "", "a", LEASE_WRITE, 30, 0, &e), -EINVAL);
    cr_assert_eq(lease_acquire(t, NULL, "a", LEASE_WRITE, 30, 0, &e), -EINVAL);
    cr_assert_eq(lease_acquire(t, "f", "", LEASE_WRITE, 30, 0, &e), -EINVAL);
    cr_assert_eq(lease_acquire(t, "f", NULL, LEASE_WRITE, 30, 0, &e), -EINVAL);
    cr_assert_eq(lease_acquire(t, "f", "a", 0, 30, 0, &e), -EINVAL);
    cr_assert_eq(lease_acquire(t, "f", "a", 3, 30, 0, &e), -EINVAL);
    cr_assert_str_eq(show("f", 0), "free");
    cr_assert_eq(lease_release(t, "", "a", 0), -ENODATA);
    cr_assert_eq(lease_release(t, "f", NULL, 0), -ENODATA);
    cr_assert_eq(lease_release_agent(t, ""), 0);
}

/* ---- renew and mode changes ------------------------------------------- */

TEST_L(renew_extends_and_takes_a_new_epoch)
{
    uint64_t e1 = grant("f", "a", LEASE_WRITE, 10, 0);
    uint64_t e2 = grant("f", "a", LEASE_WRITE, 10, 8000);
    cr_assert_gt(e2, e1);
    /* Past the first expiry, still held: the renewal counts from 8 s. */
    cr_assert_eq(try("f", "b", LEASE_WRITE, 12000), -EWOULDBLOCK);
    cr_assert_str_eq(show("f", 12000), "mode=write holder=a ttl=6 epoch=2");
    cr_assert_eq(try("f", "b", LEASE_WRITE, 18000), 0);
}

TEST_L(renew_can_shorten)
{
    grant("f", "a", LEASE_WRITE, 300, 0);
    grant("f", "a", LEASE_WRITE, 2, 0);
    cr_assert_str_eq(show("f", 0), "mode=write holder=a ttl=2 epoch=2");
    cr_assert_eq(try("f", "b", LEASE_WRITE, 2000), 0);
}

TEST_L(upgrade_only_as_sole_holder)
{
    grant("f", "a", LEASE_READ, 30, 0);
    uint64_t e = grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_str_eq(show("f", 0), "mode=write holder=a ttl=30 epoch=2");
    cr_assert_eq(e, 2);

    grant("g", "a", LEASE_READ, 30, 0);
    grant("g", "b", LEASE_READ, 30, 0);
    cr_assert_eq(try("g", "a", LEASE_WRITE, 0), -EWOULDBLOCK);
    /* a keeps its read lease as it was. */
    cr_assert_str_eq(show("g", 0), "mode=read holder=a,b ttl=30 epoch=4");
    cr_assert_eq(lease_release(t, "g", "b", 0), 0);
    grant("g", "a", LEASE_WRITE, 30, 0);
    cr_assert_str_eq(show("g", 0), "mode=write holder=a ttl=30 epoch=5");
}

TEST_L(downgrade_lets_readers_in)
{
    grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_eq(try("f", "b", LEASE_READ, 0), -EWOULDBLOCK);
    grant("f", "a", LEASE_READ, 30, 0);
    grant("f", "b", LEASE_READ, 30, 0);
    cr_assert_str_eq(show("f", 0), "mode=read holder=a,b ttl=30 epoch=3");
}

TEST_L(acquire_clamps_ttl)
{
    grant("f", "a", LEASE_WRITE, 0, 0);
    cr_assert_str_eq(show("f", 0), "mode=write holder=a ttl=2 epoch=1");
    grant("g", "a", LEASE_WRITE, 100000, 0);
    cr_assert_str_eq(show("g", 0), "mode=write holder=a ttl=300 epoch=2");
}

/* ---- release ---------------------------------------------------------- */

TEST_L(release)
{
    grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_eq(lease_release(t, "f", "b", 0), -ENODATA);
    cr_assert_eq(lease_release(t, "g", "a", 0), -ENODATA);
    cr_assert_str_eq(show("f", 0), "mode=write holder=a ttl=30 epoch=1");
    cr_assert_eq(lease_release(t, "f", "a", 0), 0);
    cr_assert_str_eq(show("f", 0), "free");
    cr_assert_eq(lease_release(t, "f", "a", 0), -ENODATA);
    grant("f", "b", LEASE_WRITE, 30, 0);
}

TEST_L(release_of_one_reader_keeps_the_others)
{
    grant("f", "a", LEASE_READ, 30, 0);
    grant("f", "b", LEASE_READ, 30, 0);
    cr_assert_eq(lease_release(t, "f", "a", 0), 0);
    cr_assert_str_eq(show("f", 0), "mode=read holder=b ttl=30 epoch=2");
    cr_assert_eq(try("f", "c", LEASE_WRITE, 0), -EWOULDBLOCK);
}

TEST_L(release_of_an_expired_lease_is_an_error)
{
    grant("f", "a", LEASE_WRITE, 5, 0);
    cr_assert_eq(lease_release(t, "f", "a", 5000), -ENODATA);
    cr_assert_eq(lease_sweep(t, 5000, NULL, NULL), 0, "it was dropped");
}

/* ---- expiry ----------------------------------------------------------- */

TEST_L(expires_exactly_after_its_ttl)
{
    uint64_t t0 = 1234567;
    grant("f", "a", LEASE_WRITE, 10, t0);
    cr_assert_eq(try("f", "b", LEASE_WRITE, t0 + 9999), -EWOULDBLOCK);
    cr_assert_str_eq(show("f", t0 + 9999), "mode=write holder=a ttl=1 epoch=1");
    cr_assert(lease_write_holder_other(t, "f", "b", t0 + 9999, NULL, 0));
    /* At t0 + 10 s it is gone: it neither shows nor blocks. */
    cr_assert_str_eq(show("f", t0 + 10000), "free");
    cr_assert(!lease_write_holder_other(t, "f", "b", t0 + 10000, NULL, 0));
    uint64_t e = grant("f", "b", LEASE_WRITE, 10, t0 + 10000);
    cr_assert_eq(e, 2);
    cr_assert_str_eq(show("f", t0 + 10000), "mode=write holder=b ttl=10 epoch=2");
}

TEST_L(ttl_shown_rounds_up)
{
    grant("f", "a", LEASE_WRITE, 30, 0);
    cr_assert_str_eq(show("f", 1), "mode=write holder=a ttl=30 epoch=1");
    cr_assert_str_eq(show("f", 1000), "mode=write holder=a ttl=29 epoch=1");
    cr_assert_str_eq(show("f", 1001), "mode=write holder=a ttl=29 epoch=1");
    cr_assert_str_eq(show("f", 29999), "mode=write holder=a ttl=1 epoch=1");
}

TEST_L(expired_reader_does_not_block_a_writer)
{
    grant("f", "a", LEASE_READ, 5, 0);
    grant("f", "b", LEASE_READ, 20, 0);
    cr_assert_str_eq(show("f", 6000), "mode=read holder=b ttl=14 epoch=2");
    cr_assert_eq(lease_release(t, "f", "b", 6000), 0);
    grant("f", "c", LEASE_WRITE, 30, 6000);
    cr_assert_str_eq(show("f", 6000), "mode=write holder=c ttl=30 epoch=3");
}

TEST_L(expired_own_lease_is_granted_anew)
{
    grant("f", "a", LEASE_READ, 5, 0);
    grant("f", "b", LEASE_READ, 5, 3000);
    /* a's lease expired: a write by b (now the only holder) is an upgrade. */
    grant("f", "b", LEASE_WRITE, 5, 6000);
    cr_assert_eq(try("f", "a", LEASE_READ, 6000), -EWOULDBLOCK);
    grant("f", "a", LEASE_READ, 5, 11000);
}

/* ---- epochs ----------------------------------------------------------- */

TEST_L(epochs_strictly_increase_across_keys_and_agents)
{
    uint64_t last = 0;
    char key[16];
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "k%d", i % 37);
        const char *agent = (i % 3 == 0) ? "a" : (i % 3 == 1) ? "b" : "c";
        uint64_t e = grant(key, agent, LEASE_READ, 30, (uint64_t)i);
        cr_assert_gt(e, last, "epoch %llu after %llu",
                     (unsigned long long)e, (unsigned long long)last);
        last = e;
    }
}

static uint64_t run_table(const char *file, int grants, uint64_t *first)
{
    struct lease_table *u = lease_table_new(file);
    uint64_t e = 0, prev = 0;
    cr_assert_not_null(u, "lease_table_new(%s): %s", file, strerror(errno));
    for (int i = 0; i < grants; i++) {
        cr_assert_eq(lease_acquire(u, "f", "a", LEASE_WRITE, 30, 0, &e), 0);
        cr_assert_gt(e, prev);
        if (i == 0 && first)
            *first = e;
        prev = e;
    }
    lease_table_free(u);
    return e;
}

TEST_L(epochs_persist_across_tables)
{
    uint64_t first, last;
    last = run_table(epoch_path(), 5, &first);
    cr_assert_eq(first, 1);
    cr_assert_eq(last, 5);
    /* A clean free records the last epoch: the next table continues. */
    last = run_table(epoch_path(), 3000, &first);
    cr_assert_eq(first, 6);
    cr_assert_eq(last, 3005);
    last = run_table(epoch_path(), 1, &first);
    cr_assert_eq(first, 3006);
    /* A table that grants nothing keeps the value. */
    run_table(epoch_path(), 0, NULL);
    run_table(epoch_path(), 1, &first);
    cr_assert_eq(first, 3007);
}

static char *slurp(const char *file)
{
    static char buf[64];
    FILE *f = fopen(file, "r");
    cr_assert_not_null(f, "%s: %s", file, strerror(errno));
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *file, const char *text)
{
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f, "%s: %s", file, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

TEST_L(epochs_survive_a_crash)
{
    /* A daemon killed before it could record its last epoch leaves only
     * what was recorded ahead of use: the file as it was just before
     * lease_table_free. The next table still starts above every epoch
     * granted. */
    uint64_t e = 0, crashed_last = 0;
    for (int round = 0; round < 3; round++) {
        struct lease_table *u = lease_table_new(epoch_path());
        cr_assert_not_null(u);
        for (int i = 0; i < 1500; i++) {
            cr_assert_eq(lease_acquire(u, "f", "a", LEASE_WRITE, 30, 0, &e), 0);
            cr_assert_gt(e, crashed_last);
        }
        crashed_last = e;
        char before[64];
        snprintf(before, sizeof(before), "%s", slurp(epoch_path()));
        lease_table_free(u);
        spit(epoch_path(), before);
    }
}

TEST_L(epoch_file_errors)
{
    static const char *const bad[] = {
        "not a number\n", "", "\n", "12x\n", "-3\n", "99999999999999999999\n",
        "1\n2\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        spit(epoch_path(), bad[i]);
        errno = 0;
        cr_assert_null(lease_table_new(epoch_path()), "'%s' accepted", bad[i]);
        cr_assert_eq(errno, EINVAL);
    }
    spit(epoch_path(), "41\n");
    uint64_t first;
    run_table(epoch_path(), 1, &first);
    cr_assert_eq(first, 42);
}

TEST_L(unrecordable_epoch_refuses_the_grant)
{
    char file[128];
    uint64_t e = 0;
    snprintf(file, sizeof(file), "%s/gone/" LEASE_EPOCH_FILE, tdir);
    struct lease_table *u = lease_table_new(file);   /* missing: epoch 0 */
    cr_assert_not_null(u);
    cr_assert_eq(lease_acquire(u, "f", "a", LEASE_WRITE, 30, 0, &e), -ENOENT);
    char buf[64];
    cr_assert_eq(lease_show(u, "f", 0, buf, sizeof(buf)), 4);
    cr_assert_str_eq(buf, "free");
    lease_table_free(u);
}

/* ---- show ------------------------------------------------------------- */

TEST_L(show_range)
{
    char buf[64];
    cr_assert_eq(lease_show(t, "f", 0, buf, 5), 4);
    cr_assert_str_eq(buf, "free");
    cr_assert_eq(lease_show(t, "f", 0, buf, 4), -ERANGE);
    grant("f", "a-rather-long-agent-name", LEASE_READ, 30, 0);
    grant("f", "another-rather-long-agent-name", LEASE_READ, 30, 0);
    cr_assert_eq(lease_show(t, "f", 0, buf, sizeof(buf)), -ERANGE);
    char big[256];
    int n = lease_show(t, "f", 0, big, sizeof(big));
    cr_assert_eq(n, (int)strlen("mode=read holder=a-rather-long-agent-name,"
                                "another-rather-long-agent-name ttl=30 epoch=2"));
    cr_assert_eq(lease_show(t, "f", 0, big, (size_t)n + 1), n);
    cr_assert_eq(lease_show(t, "f", 0, big, (size_t)n), -ERANGE);
}

TEST_L(write_holder_other)
{
    char who[8] = "";
    grant("f", "alpha", LEASE_WRITE, 30, 0);
    cr_assert(lease_write_holder_other(t, "f", "beta", 0, who, sizeof(who)));
    cr_assert_str_eq(who, "alpha");
    cr_assert(!lease_write_holder_other(t, "f", "alpha", 0, who, sizeof(who)));
    cr_assert(!lease_write_holder_other(t, "g", "beta", 0, who, sizeof(who)));
    grant("g", "alpha", LEASE_READ, 30, 0);
    cr_assert(!lease_write_holder_other(t, "g", "beta", 0, who, sizeof(who)));
    grant("h", "a-long-name", LEASE_WRITE, 30, 0);
    cr_assert(lease_write_holder_other(t, "h", "beta", 0, who, sizeof(who)));
    cr_assert_str_eq(who, "a-long-");
}

/* ---- release_agent, sweep, foreach ------------------------------------ */

TEST_L(release_agent_drops_all_its_leases)
{
    grant("f", "a", LEASE_WRITE, 30, 0);
    grant("g", "a", LEASE_READ, 30, 0);
    grant("g", "b", LEASE_READ, 30, 0);
    grant("h", "b", LEASE_WRITE, 30, 0);
    grant("x", "a", LEASE_WRITE, 2, 0);      /* expired, not yet swept */
    cr_assert_eq(lease_release_agent(t, "a"), 3);
    cr_assert_eq(lease_release_agent(t, "a"), 0);
    cr_assert_str_eq(show("f", 0), "free");
    cr_assert_str_eq(show("g", 0), "mode=read holder=b ttl=30 epoch=3");
    cr_assert_str_eq(show("h", 0), "mode=write holder=b ttl=30 epoch=4");
    grant("f", "c", LEASE_WRITE, 30, 0);
}

struct seen {
    char lines[64][128];
    int n;
};

static void record(void *arg, const char *key, const char *agent,
                   enum lease_mode mode, uint64_t epoch, int64_t ms_left)
{
    struct seen *s = arg;
    cr_assert_lt(s->n, 64);
    snprintf(s->lines[s->n++], 128, "%s %s %s %llu %lld", key, agent,
             lease_mode_name(mode), (unsigned long long)epoch,
             (long long)ms_left);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void sort_seen(struct seen *s)
{
    qsort(s->lines, (size_t)s->n, sizeof(s->lines[0]), cmp_line);
}

TEST_L(sweep_drops_expired_and_reports_them)
{
    struct seen s = { .n = 0 };
    grant("f", "a", LEASE_WRITE, 5, 0);
    grant("g", "a", LEASE_READ, 10, 0);
    grant("g", "b", LEASE_READ, 4, 1000);
    grant("h", "c", LEASE_WRITE, 30, 0);
    cr_assert_eq(lease_sweep(t, 4999, record, &s), 0);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(lease_sweep(t, 6000, record, &s), 2);
    sort_seen(&s);
    cr_assert_str_eq(s.lines[0], "f a write 1 -1000");
    cr_assert_str_eq(s.lines[1], "g b read 3 -1000");
    cr_assert_eq(lease_sweep(t, 6000, record, &s), 0);
    cr_assert_str_eq(show("g", 6000), "mode=read holder=a ttl=4 epoch=2");
    cr_assert_eq(lease_sweep(t, 10000, NULL, NULL), 1);
    cr_assert_eq(lease_sweep(t, 1000000, record, &s), 1);
    cr_assert_str_eq(s.lines[2], "h c write 4 -970000");
    cr_assert_eq(lease_sweep(t, 1000000, record, &s), 0);
}

TEST_L(foreach_lists_unexpired_leases)
{
    struct seen s = { .n = 0 };
    lease_foreach(t, 0, record, &s);
    cr_assert_eq(s.n, 0);
    grant("f", "a", LEASE_WRITE, 5, 0);
    grant("g", "a", LEASE_READ, 10, 0);
    grant("g", "b", LEASE_READ, 30, 0);
    lease_foreach(t, 5000, record, &s);
    sort_seen(&s);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.lines[0], "g a read 2 5000");
    cr_assert_str_eq(s.lines[1], "g b read 3 25000");
}

TEST_L(many_keys)
{
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "/in/file-%05d", i);
        grant(key, i % 2 ? "a" : "b", LEASE_WRITE, 30, 0);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "/in/file-%05d", i);
        cr_assert_eq(try(key, "c", LEASE_READ, 0), -EWOULDBLOCK);
    }
    cr_assert_eq(lease_release_agent(t, "a"), 2500);
    cr_assert_eq(lease_sweep(t, 30000, NULL, NULL), 2500);
    cr_assert_str_eq(show("/in/file-00000", 30000), "free");
}

/* ---- threads ---------------------------------------------------------- */

#define TH_N     8
#define TH_KEYS  16
#define TH_ITER  2000

static int holders[TH_KEYS];          /* write leases held, per key */
static uint64_t epochs[TH_N][TH_ITER];

static void *contend(void *arg)
{
    long id = (long)arg;
    char agent[16], key[16];
    snprintf(agent, sizeof(agent), "agent%ld", id);
    for (int i = 0; i < TH_ITER; i++) {
        int k = (int)((i * 7 + id) % TH_KEYS);
        uint64_t e = 0;
        snprintf(key, sizeof(key), "k%d", k);
        if (lease_acquire(t, key, agent, LEASE_WRITE, 30, 0, &e) == 0) {
            if (__atomic_add_fetch(&holders[k], 1, __ATOMIC_SEQ_CST) != 1)
                return (void *)1L;
            epochs[id][i] = e;
            __atomic_sub_fetch(&holders[k], 1, __ATOMIC_SEQ_CST);
            if (lease_release(t, key, agent, 0) != 0)
                return (void *)2L;
        }
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

TEST_L(threads_exclude_and_epochs_are_unique)
{
    pthread_t th[TH_N];
    memset(epochs, 0, sizeof(epochs));
    for (long i = 0; i < TH_N; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, contend, (void *)i), 0);
    for (int i = 0; i < TH_N; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_assert_null(r, "thread %d saw two writers (or a failed release)", i);
    }
    uint64_t *all = &epochs[0][0];
    size_t n = TH_N * TH_ITER;
    qsort(all, n, sizeof(*all), cmp_u64);
    for (size_t i = 1; i < n; i++)
        cr_assert(all[i] == 0 || all[i] != all[i - 1], "epoch %llu twice",
                  (unsigned long long)all[i]);
    for (int k = 0; k < TH_KEYS; k++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", k);
        cr_assert_str_eq(show(key, 0), "free");
    }
}
