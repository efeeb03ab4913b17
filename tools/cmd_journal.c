/* cmd_journal.c - `lanefs journal STATE COMMAND`: the volume's event
 * journal, read-only (the daemon may be writing it): tail, query,
 * timeline, leaks, stats, export, verify. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/config.h"
#include "journal/journal.h"
#include "journal/journal_db.h"
#include "tools/cli.h"
#include "tools/table.h"

#define CMD "journal"

/* How often `tail -f` looks for new events. */
#define TAIL_POLL_MS 200
/* Default of leaks --open-for: a handle open this long in a live session
 * is reported. */
#define OPEN_FOR_DEFAULT_US (3600LL * 1000000)

/* Long options get values above 255 so getopt errors can name them. */
enum {
    OPT_JSON = 256, OPT_AGENT, OPT_PATH, OPT_OP, OPT_SESSION, OPT_SINCE,
    OPT_UNTIL, OPT_LIMIT, OPT_FORMAT, OPT_OPEN_FOR, OPT_HELP,
};

/* Which options a command takes. */
enum {
    A_JSON = 1 << 0, A_AGENT = 1 << 1, A_PATH = 1 << 2, A_OP = 1 << 3,
    A_SESSION = 1 << 4, A_TIME = 1 << 5, A_LIMIT = 1 << 6,
    A_FORMAT = 1 << 7, A_TAIL = 1 << 8, A_OPEN_FOR = 1 << 9,
    A_FILTERS = A_AGENT | A_PATH | A_OP | A_SESSION | A_TIME,
};

struct jargs {
    const char *state_arg, *cmd, *operand;
    char *state;
    sqlite3 *db;
    struct journal_filter f;
    char *ops_buf;              /* the --op values, split in place */
    bool json, follow, csv;
    long long lines;            /* tail -n */
    int64_t now_us, open_for_us;
    unsigned seen;              /* A_* of the options given */
    const char *first_opt[16];  /* the first option of each A_* bit seen */
};

static void journal_usage(FILE *out)
{
    fputs(
"usage: lanefs journal STATE COMMAND [OPTIONS]\n"
"\n"
"Reads the volume's event journal (STATE/journal.db), which the daemon\n"
"writes: who opened, created, removed, copied up, leased, locked what, and\n"
"what sessions left behind. Read-only, so safe while the daemon runs.\n"
"\n"
"Commands:\n"
"  tail [-n N] [-f] [FILTERS] [--json]\n"
"                  the last N events (default 10); with -f, then every new\n"
"                  event as it is written, until interrupted\n"
"  query [FILTERS] [--limit N] [--json]\n"
"                  the events that match every filter, oldest first\n"
"  timeline PATH [--agent A] [--op OP] [--session N] [--since T]\n"
"                  [--until T] [--json]\n"
"                  every agent's operations on PATH (a path in the agents'\n"
"                  views, like /tmp/x; also as rename or link target)\n"
"  leaks [--agent A] [--session N] [--open-for T] [--json]\n"
"                  what sessions left behind: temp files left at session\n"
"                  end (size), files open at session end or in a session\n"
"                  that died (pid, process), files open longer than\n"
"                  --open-for (default 1h) in a live session, leases that\n"
"                  expired instead of being released, locks held at session\n"
"                  end, sessions that never ended or ended by a crash,\n"
"                  agent directories in STATE that no session ever used\n"
"  stats [FILTERS] [--json]\n"
"                  per agent: sessions, events, opens, creations, removals,\n"
"                  bytes read and written, copy-ups, denials, quota hits,\n"
"                  I/O errors\n"
"  export [--format jsonl|csv] [FILTERS]\n"
"                  every event (or those that match), JSON lines (default)\n"
"                  or CSV with a header\n"
"  verify [--json] recomputes the hash chain; exit status 1 and the first\n"
"                  bad event when a row was edited, deleted or inserted\n"
"\n"
"Filters (an event must match all that are given):\n"
"  --agent A       the agent's events\n"
"  --path GLOB     path or target matches GLOB (* ? [..]; * also matches /)\n"
"  --op OP[,OP..]  one of these operations (open, close, create, unlink,\n"
"                  rename, copy_up, denied, session_start, ...); repeatable\n"
"  --session N     the session's events\n"
"  --since T       at or after T\n"
"  --until T       before T\n"
"\n"
"Times T: ISO 8601 (2024-05-01T12:00:00Z, 2024-05-01 12:00+02:00,\n"
"2024-05-01; without an offset, local time), a time ago (30s, 10m, 2h, 1d,\n"
"1w), @UNIX_SECONDS, or now. Times print in UTC.\n"
"\n"
"  --json          records as JSON: tail, query and timeline print one\n"
"                  object per line; leaks, stats and verify one object\n"
"  -h, --help      show this help\n"
"\n"
"Exit status: 0 success (verify: the chain is intact), 1 failure (verify:\n"
"the chain is broken), 2 bad command line.\n", out);
}

/* ---- arguments ---------------------------------------------------------- */

struct jcmd {
    const char *name;
    unsigned takes;             /* A_* */
    bool operand;               /* takes PATH */
    int (*run)(struct jargs *a);
};

static int tail_run(struct jargs *a);
static int query_run(struct jargs *a);
static int leaks_run(struct jargs *a);
static int stats_run(struct jargs *a);
static int export_run(struct jargs *a);
static int verify_run(struct jargs *a);

static const struct jcmd jcmds[] = {
    { "tail", A_JSON | A_FILTERS | A_TAIL, false, tail_run },
    { "query", A_JSON | A_FILTERS | A_LIMIT, false, query_run },
    { "timeline", A_JSON | A_AGENT | A_OP | A_SESSION | A_TIME, true,
      query_run },
    { "leaks", A_JSON | A_AGENT | A_SESSION | A_OPEN_FOR, false, leaks_run },
    { "stats", A_JSON | A_FILTERS, false, stats_run },
    { "export", A_FORMAT | A_FILTERS, false, export_run },
    { "verify", A_JSON, false, verify_run },
};
#define NJCMDS (sizeof(jcmds) / sizeof(jcmds[0]))

static void seen(struct jargs *a, unsigned bit, const char *opt)
{
    a->seen |= bit;
    for (int i = 0; i < 16; i++)
        if (bit == 1u << i && !a->first_opt[i])
            a->first_opt[i] = opt;
}

/* A decimal integer in [min, max]. */
static bool parse_num(const char *s, long long min, long long max,
                      long long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_time(struct jargs *a, const char *opt, const char *s,
                      int64_t *out)
{
    int rc = journal_time_parse(s, a->now_us, out);
    if (rc == -ERANGE)
        return cli_usage_err(CMD, "%s: '%s' is out of range", opt, s);
    if (rc < 0)
        return cli_usage_err(CMD, "%s: '%s' is not a time (ISO 8601 like "
                             "2024-05-01T12:00:00Z, or a time ago like 10m, "
                             "2h, 1d)", opt, s);
    return CLI_EXIT_OK;
}

/* "open,close": each an op name, at most JOURNAL_FILTER_OPS in all. */
static int parse_ops(struct jargs *a, const char *s)
{
    size_t n = 0, have = strlen(a->ops_buf ? a->ops_buf : "");
    char *buf = realloc(a->ops_buf, have + strlen(s) + 2);

    if (!buf) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    if (!a->ops_buf)
        buf[0] = '\0';
    a->ops_buf = buf;
    if (have)
        strcat(buf, ",");
    strcat(buf, s);
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == ','))
            return cli_usage_err(CMD, "--op: '%s' is not a list of "
                                 "operations (like open,close)", s);
    for (const char *p = buf; *p; p++)
        n += *p == ',';
    if (n + 1 > JOURNAL_FILTER_OPS - 1)
        return cli_usage_err(CMD, "--op: at most %d operations",
                             JOURNAL_FILTER_OPS - 1);
    return CLI_EXIT_OK;
}

/* Splits ops_buf into f.ops. */
static int split_ops(struct jargs *a)
{
    int n = 0;
    if (!a->ops_buf)
        return CLI_EXIT_OK;
    for (char *save = NULL, *tok = strtok_r(a->ops_buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        a->f.ops[n++] = tok;
    if (n == 0)
        return cli_usage_err(CMD, "--op: no operation given");
    return CLI_EXIT_OK;
}

/* A view path: "/" prefixed when missing, trailing slashes dropped. */
static int view_path(struct jargs *a, char **out)
{
    const char *p = a->operand;
    size_t n = strlen(p);
    if (n == 0)
        return cli_usage_err(CMD, "timeline: PATH is empty");
    while (n > 1 && p[n - 1] == '/')
        n--;
    if (asprintf(out, "%s%.*s", p[0] == '/' ? "" : "/", (int)n, p) < 0) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

static const struct jcmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NJCMDS; i++)
        if (strcmp(jcmds[i].name, name) == 0)
            return &jcmds[i];
    return NULL;
}

/* Parses the whole command line into a. Returns CLI_EXIT_OK, -1 when help
 * was shown, or an exit code. */
static int journal_args(int argc, char **argv, struct jargs *a,
                        const struct jcmd **cmd)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "agent", required_argument, NULL, OPT_AGENT },
        { "path", required_argument, NULL, OPT_PATH },
        { "op", required_argument, NULL, OPT_OP },
        { "session", required_argument, NULL, OPT_SESSION },
        { "since", required_argument, NULL, OPT_SINCE },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "format", required_argument, NULL, OPT_FORMAT },
        { "open-for", required_argument, NULL, OPT_OPEN_FOR },
        { "lines", required_argument, NULL, 'n' },
        { "follow", no_argument, NULL, 'f' },
        { "help", no_argument, NULL, OPT_HELP },
        { NULL, 0, NULL, 0 },
    };
    const char *since = NULL, *until = NULL, *open_for = NULL;
    long long v;
    int c, rc;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "-:hn:f", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 1:
            if (!a->state_arg)
                a->state_arg = optarg;
            else if (!a->cmd)
                a->cmd = optarg;
            else if (!a->operand)
                a->operand = optarg;
            else
                return cli_usage_err(CMD, "unexpected argument '%s'", optarg);
            break;
        case OPT_JSON:
            seen(a, A_JSON, "--json");
            a->json = true;
            break;
        case OPT_AGENT:
            seen(a, A_AGENT, "--agent");
            if (!vol_agent_name_valid(optarg))
                return cli_usage_err(CMD, "--agent: '%s' is not an agent "
                                     "name", optarg);
            a->f.agent = optarg;
            break;
        case OPT_PATH:
            seen(a, A_PATH, "--path");
            if (!*optarg)
                return cli_usage_err(CMD, "--path: empty pattern");
            a->f.path_glob = optarg;
            break;
        case OPT_OP:
            seen(a, A_OP, "--op");
            if ((rc = parse_ops(a, optarg)) != CLI_EXIT_OK)
                return rc;
            break;
        case OPT_SESSION:
            seen(a, A_SESSION, "--session");
            if (!parse_num(optarg, 1, LLONG_MAX, &v))
                return cli_usage_err(CMD, "--session: '%s' is not a session "
                                     "number", optarg);
            a->f.session = (uint64_t)v;
            break;
        case OPT_SINCE:
            seen(a, A_TIME, "--since");
            since = optarg;
            break;
        case OPT_UNTIL:
            seen(a, A_TIME, "--until");
            until = optarg;
            break;
        case OPT_LIMIT:
            seen(a, A_LIMIT, "--limit");
            if (!parse_num(optarg, 1, LLONG_MAX, &v))
                return cli_usage_err(CMD, "--limit: '%s' is not a positive "
                                     "number", optarg);
            a->f.limit = v;
            break;
        case OPT_FORMAT:
            seen(a, A_FORMAT, "--format");
            if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "jsonl") != 0)
                return cli_usage_err(CMD, "--format: '%s' is neither jsonl "
                                     "nor csv", optarg);
            a->csv = strcmp(optarg, "csv") == 0;
            break;
        case OPT_OPEN_FOR:
            seen(a, A_OPEN_FOR, "--open-for");
            open_for = optarg;
            break;
        case 'n':
            seen(a, A_TAIL, opt[1] == '-' ? "--lines" : "-n");
            if (!parse_num(optarg, 0, 1000000000LL, &v))
                return cli_usage_err(CMD, "-n: '%s' is not a number of "
                                     "events", optarg);
            a->lines = v;
            break;
        case 'f':
            seen(a, A_TAIL, opt[1] == '-' ? "--follow" : "-f");
            a->follow = true;
            break;
        case 'h':
        case OPT_HELP:
            journal_usage(stdout);
            return -1;
        default:
            return cli_bad_option(CMD, c, argv);
        }
    }
    for (; optind < argc; optind++) {
        if (!a->state_arg)
            a->state_arg = argv[optind];
        else if (!a->cmd)
            a->cmd = argv[optind];
        else if (!a->operand)
            a->operand = argv[optind];
        else
            return cli_usage_err(CMD, "unexpected argument '%s'",
                                 argv[optind]);
    }
    if (!a->state_arg)
        return cli_usage_err(CMD, "missing STATE (the state directory)");
    if (!a->cmd)
        return cli_usage_err(CMD, "missing COMMAND (tail, query, timeline, "
                             "leaks, stats, export or verify)");
    if (!(*cmd = find_cmd(a->cmd)))
        return cli_usage_err(CMD, "unknown journal command '%s'", a->cmd);
    if ((*cmd)->operand && !a->operand)
        return cli_usage_err(CMD, "%s: missing PATH", a->cmd);
    if (!(*cmd)->operand && a->operand)
        return cli_usage_err(CMD, "unexpected argument '%s'", a->operand);
    unsigned bad = a->seen & ~(*cmd)->takes;
    for (int i = 0; bad && i < 16; i++)
        if (bad & (1u << i))
            return cli_usage_err(CMD, "%s: '%s' is not an option of this "
                                 "command", a->cmd, a->first_opt[i]);
    if ((since && (rc = parse_time(a, "--since", since, &a->f.since_us))) ||
        (until && (rc = parse_time(a, "--until", until, &a->f.until_us))))
        return rc;
    a->f.has_since = since != NULL;
    a->f.has_until = until != NULL;
    if (since && until && a->f.since_us >= a->f.until_us)
        return cli_usage_err(CMD, "--since %s is not before --until %s",
                             since, until);
    if (open_for) {
        int64_t t;
        size_t nd = strspn(open_for, "0123456789");
        if (nd == 0 || !open_for[nd] || !strchr("smhdw", open_for[nd]) ||
            open_for[nd + 1] || journal_time_parse(open_for, a->now_us, &t))
            return cli_usage_err(CMD, "--open-for: '%s' is not a duration "
                                 "(like 30s, 10m, 2h, 1d)", open_for);
        a->open_for_us = a->now_us - t;
    }
    return split_ops(a);
}

/* ---- opening ------------------------------------------------------------ */

static int open_db(struct jargs *a, bool wait)
{
    int rc;

    for (;;) {
        rc = journal_db_open(a->state, &a->db);
        if (rc != -ENOENT || !wait)
            break;
        usleep(TAIL_POLL_MS * 1000);
    }
    if (rc == -ENOENT)
        cli_err("%s has no journal (%s/%s): the volume's daemon writes it "
                "once an agent mounts", a->state, a->state, JOURNAL_DB_NAME);
    else if (rc == -EPROTO)
        cli_err("%s/%s: a journal schema this lanefs does not read (it "
                "reads version %d at most)", a->state, JOURNAL_DB_NAME,
                JOURNAL_SCHEMA_VERSION);
    else if (rc < 0)
        cli_err("cannot open %s/%s: %s", a->state, JOURNAL_DB_NAME,
                strerror(-rc));
    return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int read_fail(struct jargs *a, int rc)
{
    cli_err("cannot read %s/%s: %s", a->state, JOURNAL_DB_NAME,
            strerror(-rc));
    return CLI_EXIT_FAIL;
}

/* ---- printing events ---------------------------------------------------- */

struct printer {
    bool json;
    int64_t n;
    int64_t last_id;
    bool oom;
};

static int print_row(void *arg, const struct journal_row *r)
{
    struct printer *p = arg;
    p->n++;
    p->last_id = r->id;
    if (!p->json) {
        journal_row_text(stdout, r);
        return 0;
    }
    cJSON *o = journal_row_json(r);
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!s) {
        p->oom = true;
        return -ENOMEM;
    }
    puts(s);
    free(s);
    return 0;
}

static int run_print(struct jargs *a, const struct journal_filter *f,
                     struct printer *p)
{
    int rc = journal_query(a->db, f, print_row, p);
    if (rc < 0 && p->oom) {
        cli_err("out of memory");
        return CLI_EXIT_FAIL;
    }
    return rc < 0 ? read_fail(a, rc) : CLI_EXIT_OK;
}

/* query and timeline */
static int query_run(struct jargs *a)
{
    struct printer p = { .json = a->json };
    char *path = NULL;
    int ret;

    if (a->operand) {
        if ((ret = view_path(a, &path)) != CLI_EXIT_OK)
            return ret;
        a->f.path = path;
    }
    if ((ret = open_db(a, false)) == CLI_EXIT_OK)
        ret = run_print(a, &a->f, &p);
    if (ret == CLI_EXIT_OK && p.n == 0 && !a->json) {
        if (path)
            printf("no events on %s\n", path);
        else
            printf("no events\n");
    }
    free(path);
    return ret;
}

static int lowest_id(void *arg, const struct journal_row *r)
{
    *(int64_t *)arg = r->id;
    return 0;
}

static int tail_run(struct jargs *a)
{
    struct printer p = { .json = a->json };
    struct journal_filter f = a->f;
    int64_t from = 0, newest = 0;
    int ret, rc;

    if ((ret = open_db(a, a->follow)) != CLI_EXIT_OK)
        return ret;
    /* The id of the N-th newest match; print from there. */
    if (a->lines > 0) {
        f.newest_first = true;
        f.limit = a->lines;
        if ((rc = journal_query(a->db, &f, lowest_id, &from)) < 0)
            return read_fail(a, rc);
        f = a->f;
        f.after_id = from - 1;
        if (from && (ret = run_print(a, &f, &p)) != CLI_EXIT_OK)
            return ret;
    }
    if (!a->follow)
        return CLI_EXIT_OK;
    /* Then whatever comes after the newest event, match or not. */
    struct journal_filter all = { .newest_first = true, .limit = 1 };
    if ((rc = journal_query(a->db, &all, lowest_id, &newest)) < 0)
        return read_fail(a, rc);
    if (newest > p.last_id)
        p.last_id = newest;
    for (;;) {
        if (fflush(stdout) != 0 || ferror(stdout))
            return CLI_EXIT_FAIL;
        usleep(TAIL_POLL_MS * 1000);
        f = a->f;
        f.after_id = p.last_id;
        if ((ret = run_print(a, &f, &p)) != CLI_EXIT_OK)
            return ret;
    }
}

static int csv_row(void *arg, const struct journal_row *r)
{
    (void)arg;
    journal_row_csv(stdout, r);
    return 0;
}

static int export_run(struct jargs *a)
{
    struct printer p = { .json = true };
    int ret, rc;

    if ((ret = open_db(a, false)) != CLI_EXIT_OK)
        return ret;
    if (!a->csv)
        return run_print(a, &a->f, &p);
    journal_csv_header(stdout);
    if ((rc = journal_query(a->db, &a->f, csv_row, NULL)) < 0)
        return read_fail(a, rc);
    return CLI_EXIT_OK;
}

/* ---- verify ------------------------------------------------------------- */

static int verify_run(struct jargs *a)
{
    struct journal_verify v;
    char head[2 * JOURNAL_HASH_LEN + 1];
    int ret, rc;

    if ((ret = open_db(a, false)) != CLI_EXIT_OK)
        return ret;
    if ((rc = journal_verify(a->db, &v)) < 0)
        return read_fail(a, rc);
    journal_hash_hex(head, v.chain.head_hash);
    if (a->json) {
        cJSON *o = cJSON_CreateObject();
        char *s = NULL;
        if (!o || !cJSON_AddBoolToObject(o, "ok", v.ok) ||
            !cJSON_AddNumberToObject(o, "checked", (double)v.checked) ||
            !cJSON_AddNumberToObject(o, "pruned", (double)v.chain.anchor_id) ||
            !cJSON_AddNumberToObject(o, "head_id", (double)v.chain.head_id) ||
            !cJSON_AddStringToObject(o, "head_hash", head) ||
            (!v.ok &&
             (!cJSON_AddNumberToObject(o, "first_bad", (double)v.first_bad) ||
              !cJSON_AddStringToObject(o, "problem", v.problem))) ||
            !(s = cJSON_Print(o))) {
            cJSON_Delete(o);
            cli_err("out of memory");
            return CLI_EXIT_FAIL;
        }
        printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else if (v.ok) {
        printf("journal of %s: intact, %lld event%s verified", a->state,
               (long long)v.checked, v.checked == 1 ? "" : "s");
        if (v.chain.anchor_id)
            printf(" (events 1 to %lld pruned)",
                   (long long)v.chain.anchor_id);
        printf("\nlast event %lld, hash %s\n", (long long)v.chain.head_id,
               head);
    } else {
        printf("journal of %s: BROKEN at event %lld: %s\n", a->state,
               (long long)v.first_bad, v.problem);
    }
    return v.ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

/* ---- stats -------------------------------------------------------------- */

static cJSON *stats_json(const struct journal_stats *s)
{
    char t[40];
    cJSON *o = cJSON_CreateObject(), *list;

    if (!o || !cJSON_AddNumberToObject(o, "events", (double)s->events) ||
        !cJSON_AddNumberToObject(o, "lost", (double)s->lost) ||
        !cJSON_AddNumberToObject(o, "pruned", (double)s->chain.anchor_id) ||
        !(list = cJSON_AddArrayToObject(o, "agents")))
        goto oom;
    for (size_t i = 0; i < s->n; i++) {
        const struct journal_agent_stats *g = &s->agents[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(list, e))
            goto oom_e;
        const struct { const char *k; int64_t v; } nums[] = {
            { "sessions", g->sessions }, { "events", g->events },
            { "opens", g->opens }, { "creates", g->creates },
            { "removes", g->removes }, { "bytes_read", g->bytes_read },
            { "bytes_written", g->bytes_written },
            { "copy_ups", g->copy_ups }, { "denials", g->denials },
            { "quota_hits", g->quota_hits }, { "io_errors", g->io_errors },
            { "lease_conflicts", g->lease_conflicts },
            { "lock_waits", g->lock_waits },
        };
        if (!(*g->agent ? cJSON_AddStringToObject(e, "agent", g->agent)
                        : cJSON_AddNullToObject(e, "agent")))
            goto oom;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
            if (!cJSON_AddNumberToObject(e, nums[k].k, (double)nums[k].v))
                goto oom;
        journal_time_format(t, sizeof(t), g->first_us);
        if (!cJSON_AddStringToObject(e, "first", t))
            goto oom;
        journal_time_format(t, sizeof(t), g->last_us);
        if (!cJSON_AddStringToObject(e, "last", t))
            goto oom;
        continue;
oom_e:
        cJSON_Delete(e);
        goto oom;
    }
    return o;
oom:
    cJSON_Delete(o);
    return NULL;
}

static int stats_human(struct jargs *a, const struct journal_stats *s)
{
    static const char *const head[] = {
        "AGENT", "SESSIONS", "EVENTS", "OPENS", "CREATED", "REMOVED", "READ",
        "WRITTEN", "COPY-UPS", "DENIED", "QUOTA", "ERRORS",
    };
    char first[40] = "-", last[40] = "-";
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    struct tbl t;

    for (size_t i = 0; i < s->n; i++) {
        lo = s->agents[i].first_us < lo ? s->agents[i].first_us : lo;
        hi = s->agents[i].last_us > hi ? s->agents[i].last_us : hi;
    }
    if (s->n) {
        journal_time_format(first, sizeof(first), lo);
        journal_time_format(last, sizeof(last), hi);
    }
    printf("journal of %s: %lld event%s", a->state, (long long)s->events,
           s->events == 1 ? "" : "s");
    if (s->n)
        printf(" from %s to %s", first, last);
    printf("; %lld pruned, %lld lost\n", (long long)s->chain.anchor_id,
           (long long)s->lost);
    if (!s->n)
        return CLI_EXIT_OK;
    if (tbl_init(&t, sizeof(head) / sizeof(head[0]), head) < 0)
        goto oom;
    for (size_t i = 0; i < s->n; i++) {
        const struct journal_agent_stats *g = &s->agents[i];
        char c[11][32];
        int64_t nums[] = {
            g->sessions, g->events, g->opens, g->creates, g->removes,
        };
        for (int k = 0; k < 5; k++)
            snprintf(c[k], sizeof(c[k]), "%lld", (long long)nums[k]);
        cli_fmt_size(c[5], sizeof(c[5]), (unsigned long long)g->bytes_read);
        cli_fmt_size(c[6], sizeof(c[6]),
                     (unsigned long long)g->bytes_written);
        snprintf(c[7], sizeof(c[7]), "%lld", (long long)g->copy_ups);
        snprintf(c[8], sizeof(c[8]), "%lld", (long long)g->denials);
        snprintf(c[9], sizeof(c[9]), "%lld", (long long)g->quota_hits);
        snprintf(c[10], sizeof(c[10]), "%lld", (long long)g->io_errors);
        const char *row[] = {
            *g->agent ? g->agent : "(volume)", c[0], c[1], c[2], c[3], c[4],
            c[5], c[6], c[7], c[8], c[9], c[10],
        };
        if (tbl_add(&t, row) < 0) {
            tbl_free(&t);
            goto oom;
        }
    }
    tbl_print(&t, stdout);
    tbl_free(&t);
    return CLI_EXIT_OK;
oom:
    cli_err("out of memory");
    return CLI_EXIT_FAIL;
}

static int stats_run(struct jargs *a)
{
    struct journal_stats s;
    int ret, rc;

    if ((ret = open_db(a, false)) != CLI_EXIT_OK)
        return ret;
    if ((rc = journal_stats(a->db, &a->f, &s)) < 0)
        return read_fail(a, rc);
    if (a->json) {
        cJSON *o = stats_json(&s);
        char *str = o ? cJSON_Print(o) : NULL;
        if (str)
            printf("%s\n", str);
        else
            cli_err("out of memory");
        ret = str ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        free(str);
        cJSON_Delete(o);
    } else {
        ret = stats_human(a, &s);
    }
    journal_stats_free(&s);
    return ret;
}

/* ---- leaks -------------------------------------------------------------- */

struct leak_out {
    bool json;
    cJSON *list;                /* json */
    struct tbl t;               /* text */
    int64_t n;
    bool oom;
};

/* Whether the daemon runs and serves session (STATE/sessions/N). */
struct liveness {
    const char *state;
    bool daemon;
};

static bool session_live(void *arg, uint64_t session)
{
    struct liveness *l = arg;
    char p[PATH_MAX];
    if (!l->daemon)
        return false;
    snprintf(p, sizeof(p), "%s/sessions/%llu", l->state,
             (unsigned long long)session);
    return access(p, F_OK) == 0;
}

/* s with control bytes shown as '?', for a table cell. */
static void cell(char *buf, size_t len, const char *s)
{
    snprintf(buf, len, "%s", s ? s : "-");
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static void leak_what(char *buf, size_t len, const struct journal_leak *l)
{
    const struct journal_row *r = l->ev;
    const char *detail = r && r->detail ? r->detail : NULL;
    char size[32];

    if (!r) {
        snprintf(buf, len, "no session ever");
    } else if (strcmp(l->kind, JOURNAL_LEAK_TEMP) == 0 && r->size >= 0) {
        cli_fmt_size(size, sizeof(size), (unsigned long long)r->size);
        snprintf(buf, len, "size %s", size);
    } else if ((strcmp(l->kind, JOURNAL_LEAK_HANDLE) == 0 ||
                strcmp(l->kind, JOURNAL_LEAK_OPEN) == 0) && r->handle >= 0) {
        snprintf(buf, len, "handle %lld%s", (long long)r->handle,
                 strcmp(r->op, "open") == 0 ? ", never closed" : "");
    } else if (strcmp(l->kind, JOURNAL_LEAK_SESSION) == 0) {
        snprintf(buf, len, "started, no end");
    } else if (strcmp(l->kind, JOURNAL_LEAK_CRASH) == 0) {
        snprintf(buf, len, "its daemon died");
    } else {
        cell(buf, len, detail ? detail : "");
    }
}

static int leak_add(void *arg, const struct journal_leak *l)
{
    struct leak_out *o = arg;
    const struct journal_row *r = l->ev;

    o->n++;
    if (o->json) {
        cJSON *e = r ? journal_row_json(r) : cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(o->list, e)) {
            cJSON_Delete(e);
            o->oom = true;
            return -ENOMEM;
        }
        /* the event's fields ("op" says which event showed it) */
        if (!cJSON_AddStringToObject(e, "kind", l->kind) ||
            (!r && !cJSON_AddStringToObject(e, "agent", l->agent))) {
            o->oom = true;
            return -ENOMEM;
        }
        return 0;
    }
    char session[32] = "-", pid[32] = "-", when[40] = "-", what[256];
    char agent[128], path[PATH_MAX], comm[64];
    cell(agent, sizeof(agent), l->agent);
    cell(path, sizeof(path), r ? r->path : NULL);
    cell(comm, sizeof(comm), r ? r->comm : NULL);
    if (r && r->session)
        snprintf(session, sizeof(session), "%llu",
                 (unsigned long long)r->session);
    if (r && r->pid >= 0)
        snprintf(pid, sizeof(pid), "%lld", (long long)r->pid);
    if (r)
        journal_time_format(when, sizeof(when), r->ts_us);
    leak_what(what, sizeof(what), l);
    const char *row[] = {
        l->kind, agent, session, path, pid, comm, what, when,
    };
    if (tbl_add(&o->t, row) < 0) {
        o->oom = true;
        return -ENOMEM;
    }
    return 0;
}

/* Events dropped from the journal: leaks may then be incomplete. */
static int64_t lost_events(struct jargs *a)
{
    struct journal_filter f = { .ops = { "events_lost" } };
    struct journal_stats s;
    int64_t lost = 0;
    if (journal_stats(a->db, &f, &s) == 0)
        lost = s.lost;
    journal_stats_free(&s);
    return lost;
}

static int leaks_run(struct jargs *a)
{
    static const char *const head[] = {
        "KIND", "AGENT", "SESSION", "PATH", "PID", "PROCESS", "WHAT", "TIME",
    };
    struct leak_out o = { .json = a->json };
    struct liveness live = { .state = a->state };
    char pidfile[PATH_MAX];
    cJSON *root = NULL;
    pid_t pid;
    int ret, rc;

    if ((ret = open_db(a, false)) != CLI_EXIT_OK)
        return ret;
    snprintf(pidfile, sizeof(pidfile), "%s/daemon.pid", a->state);
    live.daemon = cli_pid_read(pidfile, &pid) == 0 && cli_pid_lanefs_alive(pid);
    struct journal_leak_opts lo = {
        .state_dir = a->state, .agent = a->f.agent, .session = a->f.session,
        .now_us = a->now_us,
        .open_max_us = a->open_for_us ? a->open_for_us : OPEN_FOR_DEFAULT_US,
        .live = session_live, .live_arg = &live,
    };
    if (a->json) {
        if (!(root = cJSON_CreateObject()) ||
            !(o.list = cJSON_AddArrayToObject(root, "leaks")))
            goto oom;
    } else if (tbl_init(&o.t, sizeof(head) / sizeof(head[0]), head) < 0) {
        goto oom;
    }
    rc = journal_leaks(a->db, &lo, leak_add, &o);
    if (o.oom)
        goto oom;
    if (rc < 0) {
        ret = read_fail(a, rc);
        goto out;
    }
    int64_t lost = lost_events(a);
    if (a->json) {
        char *s;
        if (!cJSON_AddNumberToObject(root, "events_lost", (double)lost) ||
            !(s = cJSON_Print(root)))
            goto oom;
        printf("%s\n", s);
        free(s);
    } else if (o.n == 0) {
        printf("no leaks\n");
    } else {
        tbl_print(&o.t, stdout);
    }
    if (lost && !a->json)
        cli_err("note: %lld events were lost (the journal's queue was "
                "full), so this list may be incomplete", (long long)lost);
    ret = CLI_EXIT_OK;
    goto out;
oom:
    cli_err("out of memory");
    ret = CLI_EXIT_FAIL;
out:
    if (!a->json)
        tbl_free(&o.t);
    cJSON_Delete(root);
    return ret;
}

/* ---- the command -------------------------------------------------------- */

static int journal_run(int argc, char **argv)
{
    struct jargs a = { .lines = 10 };
    const struct jcmd *cmd = NULL;
    int ret;

    a.now_us = journal_now_us();
    ret = journal_args(argc, argv, &a, &cmd);
    if (ret != CLI_EXIT_OK) {
        ret = ret < 0 ? CLI_EXIT_OK : ret;
        goto out;
    }
    if ((ret = cli_volume_open(a.state_arg, &a.state, NULL)) != CLI_EXIT_OK)
        goto out;
    ret = cmd->run(&a);
out:
    journal_db_close(a.db);
    free(a.ops_buf);
    free(a.state);
    return ret;
}

const struct cli_cmd cli_cmd_journal = {
    .name = "journal",
    .summary = "query the volume's event journal: tail, leaks, verify...",
    .run = journal_run,
    .usage = journal_usage,
};
