/* timefmt.c - the times the journal's queries take and print.
 *
 * Stored times are microseconds since the Unix epoch. Printed times are
 * UTC ISO 8601 with microseconds and a "Z", which the parser reads back
 * exactly. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/journal_db.h"

#define US_PER_S 1000000LL

/* Exactly n digits at *p into *v. */
static bool digits(const char **p, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* "N(s|m|h|d|w)" into microseconds. */
static int parse_relative(const char *s, int64_t *us)
{
    int64_t n = 0, unit;
    const char *p = s;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (n > (INT64_MAX - 9) / 10)
            return -ERANGE;
        n = n * 10 + (*p - '0');
    }
    switch (*p) {
    case 's': unit = US_PER_S; break;
    case 'm': unit = 60 * US_PER_S; break;
    case 'h': unit = 3600 * US_PER_S; break;
    case 'd': unit = 86400 * US_PER_S; break;
    case 'w': unit = 7 * 86400 * US_PER_S; break;
    default: return -EINVAL;
    }
    if (p[1] != '\0')
        return -EINVAL;
    if (n > INT64_MAX / unit)
        return -ERANGE;
    *us = n * unit;
    return 0;
}

/* "Z", "+hh:mm", "+hhmm", "+hh" (or '-') into seconds east of UTC. */
static int parse_offset(const char *p, long *east)
{
    int h, m = 0;
    if (strcmp(p, "Z") == 0 || strcmp(p, "z") == 0) {
        *east = 0;
        return 0;
    }
    if (*p != '+' && *p != '-')
        return -EINVAL;
    int sign = *p++ == '-' ? -1 : 1;
    if (!digits(&p, 2, &h))
        return -EINVAL;
    if (*p == ':')
        p++;
    if (*p && !digits(&p, 2, &m))
        return -EINVAL;
    if (*p || h > 23 || m > 59)
        return -EINVAL;
    *east = sign * (h * 3600L + m * 60L);
    return 0;
}

static int parse_iso(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t frac = 0;
    long east = 0;
    bool zoned = false;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
        *p++ != '-' || !digits(&p, 2, &d))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -EINVAL;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return -EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &sec))
                return -EINVAL;
            if (*p == '.' || *p == ',') {
                int64_t scale = 100000;
                p++;
                if (!isdigit((unsigned char)*p))
                    return -EINVAL;
                for (; isdigit((unsigned char)*p); p++, scale /= 10)
                    frac += (*p - '0') * scale;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return -EINVAL;
        if (sec == 60)
            sec = 59;   /* a leap second: the last one the clock shows */
    }
    if (*p) {
        if (parse_offset(p, &east) < 0)
            return -EINVAL;
        zoned = true;
    }
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
        .tm_min = mi, .tm_sec = sec, .tm_isdst = -1,
    };
    time_t t = zoned ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1 && !(y == 1969 && mo == 12 && d == 31))
        return -ERANGE;
    *out = ((int64_t)t - east) * US_PER_S + frac;
    return 0;
}

int journal_time_parse(const char *s, int64_t now_us, int64_t *out_us)
{
    int64_t v;
    int rc;

    if (!s || !*s)
        return -EINVAL;
    if (strcmp(s, "now") == 0) {
        *out_us = now_us;
        return 0;
    }
    if (s[0] == '@') {
        char *end;
        errno = 0;
        long long sec = strtoll(s + 1, &end, 10);
        if (!isdigit((unsigned char)s[1]) || *end)
            return -EINVAL;
        if (errno || sec > INT64_MAX / US_PER_S)
            return -ERANGE;
        *out_us = sec * US_PER_S;
        return 0;
    }
    if (strlen(s) >= 10 && s[4] == '-') {
        if ((rc = parse_iso(s, &v)) < 0)
            return rc;
        *out_us = v;
        return 0;
    }
    if ((rc = parse_relative(s, &v)) < 0)
        return rc;
    *out_us = now_us - v;
    return 0;
}

void journal_time_format(char *buf, size_t len, int64_t ts_us)
{
    int64_t sec = ts_us / US_PER_S, us = ts_us % US_PER_S;
    struct tm tm;
    char date[24];

    if (us < 0) {
        us += US_PER_S;
        sec--;
    }
    time_t t = (time_t)sec;
    if (!gmtime_r(&t, &tm) ||
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(buf, len, "@%lld", (long long)sec);
        return;
    }
    snprintf(buf, len, "%s.%06lldZ", date, (long long)us);
}
