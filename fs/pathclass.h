/* pathclass.h - which class (private, temp, shared) a path of an agent's view
 * belongs to. Pure functions over a vol_config; no I/O. */
#ifndef LANEFS_PATHCLASS_H
#define LANEFS_PATHCLASS_H

#include "fs/config.h"

enum pclass { PCLASS_PRIVATE = 0, PCLASS_TEMP, PCLASS_SHARED };

/* Class of relpath ("" is the root; "a/b" otherwise, normalised). Temp when
 * relpath equals or lies below a temp path, or when any of its components
 * matches a temp pattern; else shared when it equals or lies below a shared
 * path; else private. Temp wins over shared. The root is always private. */
enum pclass pclass_of(const struct vol_config *cfg, const char *relpath);

/* True when relpath is exactly one of the configured temp paths (a temp
 * root: it always exists in the view, empty at session start). */
bool pclass_is_temp_root(const struct vol_config *cfg, const char *relpath);

/* Name of a class, for messages: "private", "temp", "shared". */
const char *pclass_name(enum pclass c);

#endif
