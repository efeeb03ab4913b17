/* pathclass.c - classify a path of an agent's view as private, temp or
 * shared. Called on every lookup, so it allocates nothing. */
#include "fs/pathclass.h"

#include <fnmatch.h>
#include <limits.h>
#include <string.h>

/* True when relpath is prefix itself or lies below it. Matching stops at a
 * component boundary: "tmp" covers "tmp/x" but not "tmpx". */
static bool pc_below(const char *relpath, const char *prefix)
{
    size_t n = strlen(prefix);
    return n && strncmp(relpath, prefix, n) == 0 &&
           (relpath[n] == '\0' || relpath[n] == '/');
}

static bool pc_below_any(const char *relpath, char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pc_below(relpath, list[i]))
            return true;
    return false;
}

/* fnmatch(pat, name, 0) for a component name of len bytes. The usual
 * patterns (a literal with at most one '*', such as "*.tmp") are matched
 * here directly: fnmatch was about 7% of the daemon's CPU in a find over a
 * lower tree, since every component of every path looked up is matched
 * against every pattern. Without flags a '*' also matches a leading '.',
 * and a component holds no '/', so both ways agree. */
static bool pc_match(const char *pat, const char *name, size_t len)
{
    const char *star = NULL;
    for (const char *p = pat; *p; p++) {
        if (*p == '?' || *p == '[' || *p == '\\' || (*p == '*' && star))
            return fnmatch(pat, name, 0) == 0;
        if (*p == '*')
            star = p;
    }
    if (!star)
        return strcmp(pat, name) == 0;
    size_t pre = (size_t)(star - pat), suf = strlen(star + 1);
    return len >= pre + suf && memcmp(name, pat, pre) == 0 &&
           memcmp(name + len - suf, star + 1, suf) == 0;
}

/* True when one component of relpath matches one of the patterns. A
 * component longer than NAME_MAX cannot exist, so it is not matched. */
static bool pc_component_matches(const char *relpath, char **pats, size_t n)
{
    char name[NAME_MAX + 1];

    if (n == 0)
        return false;
    for (const char *s = relpath; *s;) {
        size_t len = strcspn(s, "/");
        if (len > 0 && len < sizeof(name)) {
            memcpy(name, s, len);
            name[len] = '\0';
            for (size_t i = 0; i < n; i++)
                if (pc_match(pats[i], name, len))
                    return true;
        }
        s += len;
        if (*s == '/')
            s++;
    }
    return false;
}

enum pclass pclass_of(const struct vol_config *cfg, const char *relpath)
{
    if (!relpath || !*relpath)
        return PCLASS_PRIVATE;
    if (pc_below_any(relpath, cfg->temp_paths, cfg->n_temp_paths) ||
        pc_component_matches(relpath, cfg->temp_patterns,
                             cfg->n_temp_patterns))
        return PCLASS_TEMP;
    if (pc_below_any(relpath, cfg->shared_paths, cfg->n_shared_paths))
        return PCLASS_SHARED;
    return PCLASS_PRIVATE;
}

bool pclass_is_temp_root(const struct vol_config *cfg, const char *relpath)
{
    if (!relpath || !*relpath)
        return false;
    for (size_t i = 0; i < cfg->n_temp_paths; i++)
        if (strcmp(relpath, cfg->temp_paths[i]) == 0)
            return true;
    return false;
}

const char *pclass_name(enum pclass c)
{
    switch (c) {
    case PCLASS_PRIVATE: return "private";
    case PCLASS_TEMP:    return "temp";
    case PCLASS_SHARED:  return "shared";
    }
    return "unknown";
}
