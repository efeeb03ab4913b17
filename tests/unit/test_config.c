/* Unit tests for fs/config.c: volume.conf load and save, the loader's
 * refusals, path normalisation and agent names. */
#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/config.h"

static char tdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void setup(void)
{
    strcpy(tdir, "/tmp/lanefs-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
}

static void teardown(void)
{
    nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_conf(const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/volume.conf", tdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Loads text as volume.conf; on failure checks that cfg holds nothing. */
static int load_text(const char *text, struct vol_config *cfg, char *err,
                     size_t errlen)
{
    write_conf(text);
    int rc = vol_config_load(tdir, cfg, err, errlen);
    if (rc < 0) {
        cr_assert_null(cfg->lower);
        cr_assert_eq(cfg->n_temp_paths, 0);
        cr_assert_eq(cfg->n_temp_patterns, 0);
        cr_assert_eq(cfg->n_shared_paths, 0);
        cr_assert_null(cfg->temp_paths);
    }
    return rc;
}

/* Asserts that text is refused with -EINVAL and a message holding both
 * "line N:" (N = line, unless 0) and fragment. */
static void assert_refused(const char *text, int line, const char *fragment)
{
    struct vol_config cfg;
    char err[512], want[32];
    int rc = load_text(text, &cfg, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL, "rc %d for:\n%s", rc, text);
    if (line) {
        snprintf(want, sizeof(want), "line %d:", line);
        cr_assert_not_null(strstr(err, want), "'%s' lacks '%s'", err, want);
    }
    cr_assert_not_null(strstr(err, fragment), "'%s' lacks '%s'", err,
                       fragment);
}

#define HEAD "[volume]\nversion = 1\nlower = /srv/data\n"

TestSuite(config, .init = setup, .fini = teardown);

Test(config, round_trip)
{
    struct vol_config cfg = { 0 }, back;
    char err[256] = "";

    cfg.lower = strdup("/srv/data set");
    cr_assert_eq(vol_list_add(&cfg.temp_paths, &cfg.n_temp_paths, "tmp"), 0);
    cr_assert_eq(vol_list_add(&cfg.temp_paths, &cfg.n_temp_paths,
                              "build/cache"), 0);
    cr_assert_eq(vol_list_add(&cfg.temp_patterns, &cfg.n_temp_patterns,
                              ".~lock.*#"), 0);
    cr_assert_eq(vol_list_add(&cfg.temp_patterns, &cfg.n_temp_patterns,
                              "*.part"), 0);
    cr_assert_eq(vol_list_add(&cfg.shared_paths, &cfg.n_shared_paths,
                              "out:put"), 0);
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);

    cr_assert_eq(vol_config_load(tdir, &back, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_str_eq(back.lower, "/srv/data set");
    cr_assert_eq(back.n_temp_paths, 2);
    cr_assert_str_eq(back.temp_paths[0], "tmp");
    cr_assert_str_eq(back.temp_paths[1], "build/cache");
    cr_assert_eq(back.n_temp_patterns, 2);
    cr_assert_str_eq(back.temp_patterns[0], ".~lock.*#");
    cr_assert_str_eq(back.temp_patterns[1], "*.part");
    cr_assert_eq(back.n_shared_paths, 1);
    cr_assert_str_eq(back.shared_paths[0], "out:put");

    /* Atomic save leaves no temp file, and the file is private. */
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/volume.conf.tmp", tdir);
    cr_assert_eq(access(path, F_OK), -1);
    snprintf(path, sizeof(path), "%s/volume.conf", tdir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600);

    vol_config_free(&cfg);
    vol_config_free(&back);
    cr_assert_null(back.lower);
    cr_assert_eq(back.n_shared_paths, 0);
}

Test(config, save_replaces_existing)
{
    struct vol_config cfg = { 0 }, back;
    char err[256];

    write_conf("garbage\n");
    cfg.lower = strdup("/a");
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);
    cr_assert_eq(vol_config_load(tdir, &back, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_str_eq(back.lower, "/a");
    cr_assert_eq(back.n_temp_paths, 0);
    cr_assert_eq(back.n_shared_paths, 0);
    vol_config_free(&cfg);
    vol_config_free(&back);
}

Test(config, save_refuses_unstorable)
{
    struct vol_config cfg = { 0 };

    cr_assert_eq(vol_config_save(tdir, &cfg), -EINVAL);   /* no lower */
    cfg.lower = strdup("relative");
    cr_assert_eq(vol_config_save(tdir, &cfg), -EINVAL);
    free(cfg.lower);
    cfg.lower = strdup("/ok");
    vol_list_add(&cfg.temp_paths, &cfg.n_temp_paths, "trailing ");
    cr_assert_eq(vol_config_save(tdir, &cfg), -EINVAL);
    free(cfg.temp_paths[0]);
    cfg.temp_paths[0] = strdup("a ;comment");
    cr_assert_eq(vol_config_save(tdir, &cfg), -EINVAL);
    free(cfg.temp_paths[0]);
    cfg.temp_paths[0] = strdup(";x");
    cr_assert_eq(vol_config_save(tdir, &cfg), -EINVAL);
    free(cfg.temp_paths[0]);
    cfg.temp_paths[0] = strdup("a;b");              /* no blank before ';' */
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);
    char path[128];
    snprintf(path, sizeof(path), "%s/nodir", tdir);
    cr_assert_eq(vol_config_save(path, &cfg), -ENOENT);
    vol_config_free(&cfg);
}

Test(config, load_minimal_and_comments)
{
    struct vol_config cfg;
    char err[256];
    int rc = load_text("; comment\n# another\n\n[volume]\n"
                       "version = 1 ; inline\nlower=/srv/x\n[temp]\n"
                       "path = /scratch/\npath = a//b\npath = scratch\n"
                       "pattern = *.tmp\n[shared]\n", &cfg, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(cfg.lower, "/srv/x");
    cr_assert_eq(cfg.n_temp_paths, 2);     /* normalised, repeat dropped */
    cr_assert_str_eq(cfg.temp_paths[0], "scratch");
    cr_assert_str_eq(cfg.temp_paths[1], "a/b");
    cr_assert_eq(cfg.n_temp_patterns, 1);
    cr_assert_str_eq(cfg.temp_patterns[0], "*.tmp");
    cr_assert_eq(cfg.n_shared_paths, 0);
    vol_config_free(&cfg);
}

Test(config, load_long_lower)
{
    struct vol_config cfg;
    char err[256], lower[1100], *text;

    /* Longer than inih's default 200-byte line. */
    strcpy(lower, "/");
    for (int i = 0; i < 100; i++)
        strcat(lower, "component/");
    strcat(lower, "end");
    cr_assert_eq(asprintf(&text, "[volume]\nversion = 1\nlower = %s\n",
                          lower) > 0, 1);
    cr_assert_eq(load_text(text, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(cfg.lower, lower);
    free(text);
    vol_config_free(&cfg);
}

Test(config, missing_file)
{
    struct vol_config cfg;
    char err[256];
    cr_assert_eq(vol_config_load(tdir, &cfg, err, sizeof(err)), -ENOENT);
    cr_assert_not_null(strstr(err, "volume.conf does not exist"), "%s", err);
    cr_assert_null(cfg.lower);
}

Test(config, refuses_unknown_key)
{
    assert_refused(HEAD "bogus = 1\n", 4, "unknown key 'bogus' in [volume]");
    assert_refused(HEAD "[temp]\npaths = x\n", 5,
                   "unknown key 'paths' in [temp]");
    assert_refused(HEAD "[shared]\npattern = *.x\n", 5,
                   "unknown key 'pattern' in [shared]");
    assert_refused("stray = 1\n" HEAD, 1, "key 'stray' outside any section");
}

Test(config, refuses_unknown_section)
{
    assert_refused(HEAD "[extra]\n", 4, "unknown section [extra]");
    assert_refused(HEAD "[extra]\nkey = v\n", 4, "unknown section [extra]");
    assert_refused("[Volume]\nversion = 1\n", 1, "unknown section [Volume]");
}

Test(config, refuses_malformed_lines)
{
    assert_refused(HEAD "just words\n", 4, "cannot parse line");
    assert_refused(HEAD "[temp\n", 4, "cannot parse line");
    /* The first error wins, whichever kind comes first. */
    assert_refused("[volume]\nnonsense\nbogus = 1\n", 2, "cannot parse line");
    assert_refused("[volume]\nbogus = 1\nnonsense\n", 2,
                   "unknown key 'bogus'");
}

Test(config, refuses_overlong_line)
{
    char *text = malloc(PATH_MAX * 2);
    cr_assert_not_null(text);
    strcpy(text, HEAD "[temp]\npath = ");
    size_t n = strlen(text);
    memset(text + n, 'x', PATH_MAX + 100);
    strcpy(text + n + PATH_MAX + 100, "\n[shared]\npath = ok\n");
    assert_refused(text, 5, "line longer than");
    free(text);
}

Test(config, refuses_bad_version)
{
    assert_refused("[volume]\nversion = 2\nlower = /a\n", 2,
                   "unsupported version '2'");
    assert_refused("[volume]\nversion = one\nlower = /a\n", 2,
                   "unsupported version 'one'");
    assert_refused("[volume]\nversion =\nlower = /a\n", 2,
                   "unsupported version ''");
    assert_refused("[volume]\nversion = 1x\nlower = /a\n", 2,
                   "unsupported version");
    assert_refused("[volume]\nversion = 1\nversion = 1\nlower = /a\n", 3,
                   "version given twice");
    assert_refused("[volume]\nlower = /a\n", 0, "missing 'version'");
}

Test(config, refuses_bad_lower)
{
    assert_refused("[volume]\nversion = 1\n", 0, "missing 'lower'");
    assert_refused("[volume]\nversion = 1\nlower = rel/dir\n", 3, "bad lower");
    assert_refused("[volume]\nversion = 1\nlower = /\n", 3, "bad lower");
    assert_refused("[volume]\nversion = 1\nlower = /a/../b\n", 3, "bad lower");
    assert_refused("[volume]\nversion = 1\nlower = /a//b\n", 3, "bad lower");
    assert_refused("[volume]\nversion = 1\nlower = /a/\n", 3, "bad lower");
    assert_refused("[volume]\nversion = 1\nlower = /a\nlower = /b\n", 4,
                   "lower given twice");
}

Test(config, refuses_bad_paths)
{
    assert_refused(HEAD "[temp]\npath = /\n", 5, "bad temp path '/'");
    assert_refused(HEAD "[temp]\npath = a/../b\n", 5, "bad temp path");
    assert_refused(HEAD "[temp]\npath = ./a\n", 5, "bad temp path");
    assert_refused(HEAD "[temp]\npath =\n", 5, "bad temp path ''");
    assert_refused(HEAD "[temp]\npath = a\tb\n", 5, "bad temp path");
    assert_refused(HEAD "[shared]\npath = ..\n", 5, "bad shared path '..'");
    assert_refused(HEAD "[temp]\npattern = a/b\n", 5, "bad temp pattern");
    assert_refused(HEAD "[temp]\npattern =\n", 5, "bad temp pattern");
    assert_refused(HEAD "[temp]\npath = x\n[shared]\npath = /x\n", 7,
                   "path 'x' is both temp and shared");
    assert_refused(HEAD "[shared]\npath = x\n[temp]\npath = x/\n", 7,
                   "path 'x' is both temp and shared");
}

Test(config, err_buffer_optional)
{
    struct vol_config cfg;
    write_conf("[volume]\nversion = 3\n");
    cr_assert_eq(vol_config_load(tdir, &cfg, NULL, 0), -EINVAL);
    char tiny[8];
    cr_assert_eq(vol_config_load(tdir, &cfg, tiny, sizeof(tiny)), -EINVAL);
    cr_assert_eq(strlen(tiny), sizeof(tiny) - 1);
}

Test(config, defaults)
{
    struct vol_config cfg = { 0 };
    cr_assert_eq(vol_config_defaults(&cfg), 0);
    cr_assert_eq(cfg.n_temp_paths, 1);
    cr_assert_str_eq(cfg.temp_paths[0], "tmp");
    cr_assert_eq(cfg.n_temp_patterns, 4);
    cr_assert_str_eq(cfg.temp_patterns[0], "*.tmp");
    cr_assert_str_eq(cfg.temp_patterns[1], "*.part");
    cr_assert_str_eq(cfg.temp_patterns[2], "*.swp");
    cr_assert_str_eq(cfg.temp_patterns[3], ".~lock.*#");
    cr_assert_eq(cfg.n_shared_paths, 0);
    vol_config_free(&cfg);

    /* Lists that are already set are left alone. */
    vol_list_add(&cfg.temp_paths, &cfg.n_temp_paths, "scratch");
    cr_assert_eq(vol_config_defaults(&cfg), 0);
    cr_assert_eq(cfg.n_temp_paths, 1);
    cr_assert_str_eq(cfg.temp_paths[0], "scratch");
    cr_assert_eq(cfg.n_temp_patterns, 4);
    vol_config_free(&cfg);
    vol_config_free(&cfg);          /* safe on a zeroed config */
}

Test(config, list_add_copies)
{
    char **list = NULL, buf[8] = "abc";
    size_t n = 0;
    cr_assert_eq(vol_list_add(&list, &n, buf), 0);
    buf[0] = 'z';
    cr_assert_eq(vol_list_add(&list, &n, "def"), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(list[0], "abc");
    cr_assert_str_eq(list[1], "def");
    free(list[0]);
    free(list[1]);
    free(list);
}

/* vol_path_normalize */

static void assert_norm(const char *in, const char *want)
{
    char *out = (char *)"untouched";
    cr_assert_eq(vol_path_normalize(in, &out), 0, "'%s' refused", in);
    cr_assert_str_eq(out, want);
    free(out);
}

static void assert_norm_bad(const char *in)
{
    char *out = (char *)"untouched";
    cr_assert_eq(vol_path_normalize(in, &out), -EINVAL, "'%s' accepted", in);
    cr_assert_null(out);
}

Test(normalize, good)
{
    assert_norm("tmp", "tmp");
    assert_norm("/tmp/", "tmp");
    assert_norm("a//b", "a/b");
    assert_norm("///x///y///", "x/y");
    assert_norm(".hidden/..dots/a..b/...", ".hidden/..dots/a..b/...");
    assert_norm("with space/ä", "with space/ä");
}

Test(normalize, bad)
{
    assert_norm_bad("");
    assert_norm_bad("/");
    assert_norm_bad("///");
    assert_norm_bad(".");
    assert_norm_bad("..");
    assert_norm_bad("/a/./b");
    assert_norm_bad("a/..");
    assert_norm_bad("../a");
    assert_norm_bad("a\nb");
    assert_norm_bad("a\tb");
    assert_norm_bad("a\x7f");
    assert_norm_bad(NULL);
}

Test(normalize, length_limit)
{
    char *in = malloc(PATH_MAX + 2), *out = NULL;
    cr_assert_not_null(in);
    memset(in, 'a', PATH_MAX - 1);            /* PATH_MAX - 1 chars: fits */
    in[PATH_MAX - 1] = '\0';
    cr_assert_eq(vol_path_normalize(in, &out), 0);
    cr_assert_eq(strlen(out), PATH_MAX - 1);
    free(out);
    in[PATH_MAX - 1] = 'a';                   /* PATH_MAX chars: too long */
    in[PATH_MAX] = '\0';
    cr_assert_eq(vol_path_normalize(in, &out), -EINVAL);
    /* Slashes that collapse do not count. */
    in[0] = '/';
    in[1] = '/';
    cr_assert_eq(vol_path_normalize(in, &out), 0);
    cr_assert_eq(strlen(out), PATH_MAX - 2);
    free(out);
    free(in);
}

/* vol_agent_name_valid */

Test(agent_name, boundaries)
{
    char name[VOL_AGENT_NAME_MAX + 2];

    memset(name, 'a', VOL_AGENT_NAME_MAX);
    name[VOL_AGENT_NAME_MAX] = '\0';
    cr_assert(vol_agent_name_valid(name), "64 chars must be valid");
    name[VOL_AGENT_NAME_MAX] = 'a';
    name[VOL_AGENT_NAME_MAX + 1] = '\0';
    cr_assert_not(vol_agent_name_valid(name), "65 chars must be invalid");

    cr_assert(vol_agent_name_valid("a"));
    cr_assert(vol_agent_name_valid("0"));
    cr_assert(vol_agent_name_valid("9-x"));
    cr_assert(vol_agent_name_valid("agent-01.worker_b"));
    cr_assert(vol_agent_name_valid("a."));
    cr_assert(vol_agent_name_valid("a-"));
}

Test(agent_name, invalid)
{
    cr_assert_not(vol_agent_name_valid(""));
    cr_assert_not(vol_agent_name_valid(NULL));
    cr_assert_not(vol_agent_name_valid("Agent"));
    cr_assert_not(vol_agent_name_valid("aB"));
    cr_assert_not(vol_agent_name_valid(".a"));
    cr_assert_not(vol_agent_name_valid("-a"));
    cr_assert_not(vol_agent_name_valid("_a"));
    cr_assert_not(vol_agent_name_valid("a b"));
    cr_assert_not(vol_agent_name_valid("a/b"));
    cr_assert_not(vol_agent_name_valid("a:b"));
    cr_assert_not(vol_agent_name_valid("a@b"));
    cr_assert_not(vol_agent_name_valid("é"));
}

Test(config, journal_switch)
{
    struct vol_config cfg;
    char err[256];
    cr_assert_eq(load_text(HEAD, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert(!cfg.no_journal, "the journal is on by default");
    cfg.no_journal = true;
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);
    vol_config_free(&cfg);
    cr_assert_eq(vol_config_load(tdir, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert(cfg.no_journal, "journal = off did not survive a save and load");
    vol_config_free(&cfg);
    assert_refused(HEAD "journal = maybe\n", 4, "journal must be on or off");
}

Test(config, journal_max)
{
    struct vol_config cfg;
    char err[256];
    cr_assert_eq(load_text(HEAD "journal_max = 1048576\n", &cfg, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(cfg.journal_max, 1048576);
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);
    vol_config_free(&cfg);
    cr_assert_eq(vol_config_load(tdir, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.journal_max, 1048576);
    vol_config_free(&cfg);
    assert_refused(HEAD "journal_max = -5\n", 4, "journal_max must be a number");
    assert_refused(HEAD "journal_max = 1G\n", 4, "journal_max must be a number");
}

Test(config, volume_read_rate)
{
    struct vol_config cfg;
    char err[256];
    cr_assert_eq(load_text(HEAD "volume_read_rate = 52428800\n", &cfg, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(cfg.volume_read_rate, 52428800);
    cr_assert_eq(vol_config_save(tdir, &cfg), 0);
    vol_config_free(&cfg);
    cr_assert_eq(vol_config_load(tdir, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.volume_read_rate, 52428800);
    vol_config_free(&cfg);
    cr_assert_eq(load_text(HEAD, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(cfg.volume_read_rate, 0, "no key: no cap");
    vol_config_free(&cfg);
    assert_refused(HEAD "volume_read_rate = -5\n", 4, "volume_read_rate must be a number");
    assert_refused(HEAD "volume_read_rate = 50M\n", 4, "volume_read_rate must be a number");
}
