/* Unit tests for the size parser and the formatters in tools/cli.c. */
#include <criterion/criterion.h>

#include <errno.h>

#include "tools/cli.h"

static unsigned long long parsed(const char *s)
{
    unsigned long long v = 12345;
    int rc = cli_parse_size(s, &v);
    cr_assert_eq(rc, 0, "cli_parse_size(\"%s\") = %d", s, rc);
    return v;
}

static void refused(const char *s, int want)
{
    unsigned long long v = 777;
    int rc = cli_parse_size(s, &v);
    cr_assert_eq(rc, want, "cli_parse_size(\"%s\") = %d, want %d", s, rc,
                 want);
    cr_assert_eq(v, 777, "a refused size changed the output");
}

Test(size, plain_and_suffixed)
{
    cr_assert_eq(parsed("0"), 0);
    cr_assert_eq(parsed("4096"), 4096);
    cr_assert_eq(parsed("10K"), 10240);
    cr_assert_eq(parsed("10k"), 10240);
    cr_assert_eq(parsed("50M"), 50ULL << 20);
    cr_assert_eq(parsed("2G"), 2ULL << 30);
    cr_assert_eq(parsed("3T"), 3ULL << 40);
    cr_assert_eq(parsed("007"), 7);
}

/* Rates and sizes of every option share this parser: a unit may end in B. */
Test(size, trailing_b)
{
    cr_assert_eq(parsed("512B"), 512);
    cr_assert_eq(parsed("10KB"), 10240);
    cr_assert_eq(parsed("10kb"), 10240);
    cr_assert_eq(parsed("50MB"), 50ULL << 20);
    cr_assert_eq(parsed("1.5GB"), 3ULL << 29);
    cr_assert_eq(parsed("2TB"), 2ULL << 40);
    cr_assert_eq(cli_parse_size(NULL, &(unsigned long long){ 0 }), -EINVAL);
}

Test(size, fractions_round_down)
{
    cr_assert_eq(parsed("1.5G"), 3ULL << 29);
    cr_assert_eq(parsed("0.5K"), 512);
    cr_assert_eq(parsed("1.0001K"), 1024);      /* 1024.1 -> 1024 */
    cr_assert_eq(parsed("0.1234567891234K"), 126);
}

Test(size, limits)
{
    cr_assert_eq(parsed("18446744073709551615"), 18446744073709551615ULL);
    refused("18446744073709551616", -ERANGE);
    refused("16777216T", -ERANGE);              /* 2^24 * 2^40 = 2^64 */
    refused("99999999999999999999999M", -ERANGE);
    cr_assert_eq(parsed("16777215T"), 16777215ULL << 40);
}

Test(size, malformed)
{
    const char *bad[] = {
        "", "K", "-1", "+1", "-50M", " 1", "1 ", "1.5", "1.", ".5K", "1KK",
        "1X", "12Q", "0x10", "1e3", "1,5K", "1..5K", "1.5.2", "B", "1BB",
        "1KBB", "1KiB", "1.5B",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        refused(bad[i], -EINVAL);
}

Test(size, formats)
{
    char b[32];
    cli_fmt_size(b, sizeof(b), 0);
    cr_assert_str_eq(b, "0");
    cli_fmt_size(b, sizeof(b), 1023);
    cr_assert_str_eq(b, "1023");
    cli_fmt_size(b, sizeof(b), 1024);
    cr_assert_str_eq(b, "1K");
    cli_fmt_size(b, sizeof(b), 1536);
    cr_assert_str_eq(b, "1.5K");
    cli_fmt_size(b, sizeof(b), 50ULL << 20);
    cr_assert_str_eq(b, "50M");
    cli_fmt_duration(b, sizeof(b), 42);
    cr_assert_str_eq(b, "42s");
    cli_fmt_duration(b, sizeof(b), 310);
    cr_assert_str_eq(b, "5m10s");
    cli_fmt_duration(b, sizeof(b), 3600 * 3 + 120);
    cr_assert_str_eq(b, "3h02m");
    cli_fmt_duration(b, sizeof(b), 86400 * 2 + 3600 * 4);
    cr_assert_str_eq(b, "2d04h");
    cli_fmt_duration(b, sizeof(b), -5);
    cr_assert_str_eq(b, "0s");
}
