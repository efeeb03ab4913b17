/* config.h - a volume's configuration (STATE/volume.conf) and the names and
 * paths it holds.
 *
 * volume.conf is an INI file (parsed with inih):
 *
 *   [volume]
 *   version = 1
 *   lower = /absolute/canonical/path
 *   journal = off           ; optional: no event journal (default on)
 *   journal_max = 268435456 ; optional: journal size cap in bytes (0: none)
 *   volume_read_rate = 0    ; optional: shared-data reads of all agents
 *                           ; together, bytes/s (0: no cap)
 *   read_guard = off        ; optional: no latency guard for small reads
 *                           ; next to streams (default on; fs/rguard.h)
 *   [temp]
 *   path = tmp              ; one line per --temp PATH, relative to the root
 *   pattern = *.tmp         ; one line per name pattern (fnmatch, one name)
 *   [shared]
 *   path = data/out         ; one line per --shared PATH
 *
 * Paths in the file are normalised: relative to the mount root, no leading or
 * trailing '/', no "." or ".." components, no empty components.
 */
#ifndef LANEFS_CONFIG_H
#define LANEFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define VOL_CONF_NAME    "volume.conf"
#define VOL_CONF_VERSION 1
#define VOL_AGENT_NAME_MAX 64

struct vol_config {
    char *lower;                 /* absolute canonical path of the lower dir */
    char **temp_paths;   size_t n_temp_paths;
    char **temp_patterns; size_t n_temp_patterns;
    char **shared_paths; size_t n_shared_paths;
    bool no_journal;             /* [volume] journal = off */
    unsigned long long journal_max;   /* [volume] journal_max, bytes; 0: none */
    unsigned long long volume_read_rate; /* [volume] volume_read_rate, bytes/s; 0: none */
    bool no_read_guard;          /* [volume] read_guard = off */
};

/* Loads STATE/volume.conf into *cfg (zeroed first). Returns 0, or -errno with
 * a one-line human message in err (size errlen): -ENOENT when there is no
 * volume.conf, -EINVAL when it is malformed (unknown key, bad version, a path
 * that does not normalise), -ENOMEM. On error *cfg holds nothing to free. */
int vol_config_load(const char *state_dir, struct vol_config *cfg,
                    char *err, size_t errlen);

/* Writes *cfg to STATE/volume.conf atomically (temp file, fsync, rename).
 * Returns 0 or -errno. */
int vol_config_save(const char *state_dir, const struct vol_config *cfg);

/* Frees everything *cfg owns and zeroes it. Safe on a zeroed config. */
void vol_config_free(struct vol_config *cfg);

/* Appends a copy of s to the string list (*list, *n). Returns 0 or -ENOMEM. */
int vol_list_add(char ***list, size_t *n, const char *s);

/* Fills the default temp paths ("tmp") and patterns ("*.tmp", "*.part",
 * "*.swp", ".~lock.*#") into lists that are still empty. Returns 0/-ENOMEM. */
int vol_config_defaults(struct vol_config *cfg);

/* True when name is a valid agent name: [a-z0-9][a-z0-9._-]{0,63}. */
bool vol_agent_name_valid(const char *name);

/* Normalises a path given for --temp/--shared ("/tmp/", "a//b") into a newly
 * allocated relative path ("tmp", "a/b") in *out. Returns -EINVAL for the
 * root itself, empty input, "." or ".." components, control characters, or a
 * result longer than PATH_MAX; -ENOMEM. */
int vol_path_normalize(const char *in, char **out);

#endif
