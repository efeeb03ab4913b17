/* Unit tests of the volume lock table (locks/posix.c): conflicts between
 * owners, ranges split and converted like fcntl, flock apart from POSIX,
 * and release by owner and by session. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>

#include "locks/posix.h"

static struct lk_table *t;

static void setup(void) { t = lk_table_new(); cr_assert_not_null(t); }
static void teardown(void) { lk_table_free(t); }

TestSuite(lk, .init = setup, .fini = teardown);

static struct lk_lock L(int type, uint64_t s, uint64_t e, uint64_t sess, uint64_t own)
{
    return (struct lk_lock){ .dev = 1, .ino = 42, .kind = LK_POSIX, .type = type,
                             .start = s, .end = e, .session = sess, .owner = own,
                             .pid = (pid_t)(100 + own) };
}

Test(lk, write_excludes_other_owners_read_shares)
{
    struct lk_lock a = L(F_WRLCK, 0, 99, 1, 1);
    cr_assert_eq(lk_set(t, &a), 0);
    struct lk_lock b = L(F_RDLCK, 50, 60, 2, 7);
    cr_assert_eq(lk_set(t, &b), -EAGAIN, "a read lock over another session's write lock");
    struct lk_lock c;
    cr_assert(lk_test(t, &b, &c));
    cr_assert_eq(c.type, F_WRLCK);
    cr_assert_eq(c.start, 0);
    cr_assert_eq(c.end, 99);
    cr_assert_eq(c.pid, 101);
    struct lk_lock d = L(F_RDLCK, 100, 200, 2, 7);   /* no overlap */
    cr_assert_eq(lk_set(t, &d), 0);
    /* Same owner never conflicts with itself. */
    struct lk_lock e = L(F_WRLCK, 10, 20, 1, 1);
    cr_assert_eq(lk_set(t, &e), 0);
    /* Two read locks of different owners share. */
    struct lk_lock r1 = L(F_RDLCK, 300, 400, 3, 1), r2 = L(F_RDLCK, 350, 450, 4, 1);
    cr_assert_eq(lk_set(t, &r1), 0);
    cr_assert_eq(lk_set(t, &r2), 0);
    struct lk_lock w = L(F_WRLCK, 420, 420, 5, 1);
    cr_assert_eq(lk_set(t, &w), -EAGAIN);
}

Test(lk, unlock_in_the_middle_splits)
{
    struct lk_lock a = L(F_WRLCK, 0, LK_EOF, 1, 1);
    cr_assert_eq(lk_set(t, &a), 0);
    struct lk_lock u = L(F_UNLCK, 100, 199, 1, 1);
    cr_assert_eq(lk_set(t, &u), 0);
    cr_assert_eq(lk_count(t), 2, "the write lock should be split in two");
    struct lk_lock probe = L(F_WRLCK, 150, 160, 2, 2);
    cr_assert_eq(lk_set(t, &probe), 0, "the unlocked hole is free for others");
    struct lk_lock left = L(F_RDLCK, 99, 99, 3, 3), right = L(F_RDLCK, 200, 200, 3, 3);
    cr_assert_eq(lk_set(t, &left), -EAGAIN);
    cr_assert_eq(lk_set(t, &right), -EAGAIN);
    struct lk_lock far = L(F_RDLCK, 1ULL << 40, (1ULL << 40) + 5, 3, 3);
    cr_assert_eq(lk_set(t, &far), -EAGAIN, "to-EOF part still held");
}

Test(lk, downgrade_and_upgrade_of_a_range)
{
    struct lk_lock a = L(F_WRLCK, 0, 99, 1, 1);
    cr_assert_eq(lk_set(t, &a), 0);
    struct lk_lock down = L(F_RDLCK, 0, 49, 1, 1);
    cr_assert_eq(lk_set(t, &down), 0);
    struct lk_lock other = L(F_RDLCK, 0, 49, 2, 2);
    cr_assert_eq(lk_set(t, &other), 0, "a read lock shares the downgraded part");
    struct lk_lock other_w = L(F_RDLCK, 50, 60, 2, 2);
    cr_assert_eq(lk_set(t, &other_w), -EAGAIN, "the rest is still written");
    struct lk_lock up = L(F_WRLCK, 0, 49, 1, 1);
    cr_assert_eq(lk_set(t, &up), -EAGAIN, "upgrade blocked by the other reader");
    struct lk_lock unl = L(F_UNLCK, 0, LK_EOF, 2, 2);
    cr_assert_eq(lk_set(t, &unl), 0);
    cr_assert_eq(lk_set(t, &up), 0, "upgrade once alone");
}

Test(lk, flock_is_separate_from_posix)
{
    struct lk_lock p = L(F_WRLCK, 0, LK_EOF, 1, 1);
    cr_assert_eq(lk_set(t, &p), 0);
    struct lk_lock f = L(F_WRLCK, 0, LK_EOF, 2, 2);
    f.kind = LK_FLOCK;
    cr_assert_eq(lk_set(t, &f), 0, "flock does not see POSIX locks on Linux");
    struct lk_lock g = f;
    g.session = 3;
    g.type = F_RDLCK;
    cr_assert_eq(lk_set(t, &g), -EAGAIN);
}

Test(lk, release_by_owner_and_by_session)
{
    struct lk_lock a = L(F_WRLCK, 0, 9, 1, 1), b = L(F_WRLCK, 20, 29, 1, 2),
                   c = L(F_WRLCK, 40, 49, 2, 1);
    cr_assert_eq(lk_set(t, &a), 0);
    cr_assert_eq(lk_set(t, &b), 0);
    cr_assert_eq(lk_set(t, &c), 0);
    struct lk_lock other = (struct lk_lock){ .dev = 1, .ino = 43, .kind = LK_POSIX,
        .type = F_WRLCK, .start = 0, .end = LK_EOF, .session = 1, .owner = 1 };
    cr_assert_eq(lk_set(t, &other), 0);
    cr_assert_eq(lk_release_owner(t, 1, 42, LK_POSIX, 1, 1), 1);
    cr_assert_eq(lk_count(t), 3);
    cr_assert_eq(lk_release_session(t, 1), 2, "session 1 held one lock on each file");
    cr_assert_eq(lk_count(t), 1);
    struct lk_lock probe = L(F_WRLCK, 0, 39, 9, 9);
    cr_assert_eq(lk_set(t, &probe), 0);
    struct lk_lock probe2 = L(F_WRLCK, 45, 45, 9, 9);
    cr_assert_eq(lk_set(t, &probe2), -EAGAIN, "session 2's lock stays");
}

Test(lk, unlock_of_nothing_succeeds)
{
    struct lk_lock u = L(F_UNLCK, 0, LK_EOF, 1, 1);
    cr_assert_eq(lk_set(t, &u), 0);
    cr_assert_eq(lk_count(t), 0);
}
