/* view.h - one agent's view of a volume: its layers and node table. */
#ifndef LANEFS_VIEW_H
#define LANEFS_VIEW_H

#include <stddef.h>

#include "fs/ovl_i.h"
#include "fs/volume.h"

/* Opens agent's layers in v (creating them on first use), empties its temp
 * layer and work dir (a session starts clean), creates the temp roots and
 * makes sure the shared roots exist, and adds the view to v's list.
 * On error err holds a one-line message; fs holds nothing. 0 or -errno. */
int  view_open(struct ovl_fs *fs, struct volume *v, const char *agent,
               char *err, size_t errlen);
/* Ends the session's layers: takes the view off its volume's list, empties
 * temp and work, frees the nodes and closes the view's descriptors (not the
 * volume's). */
void view_close(struct ovl_fs *fs);
/* Empties the agent's private upper and index (an ephemeral agent's end,
 * or a reset). 0 or -errno. */
int  view_wipe_private(const char *state_dir, const char *agent);

#endif
