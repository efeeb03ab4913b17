/* recover.h - cleaning up after a volume daemon that died without ending
 * its sessions (killed, crashed, machine reset).
 *
 * What a dead daemon leaves in STATE (see docs/control.md):
 *   sessions/N      one file per session that never ended:
 *                   "agent=NAME\nmountpoint=PATH\nstarted=UNIX_SECONDS\n"
 *   agents/NAME/temp, agents/NAME/work   that session's temp files and
 *                   half-built copies
 *   mounts          fuse.lanefs mounts with source "lanefs@NAME:STATE",
 *                   now dead (they answer ENOTCONN)
 *   control.sock, daemon.pid
 * Recovery ends each such session as the daemon would have, with reason
 * "crash" in STATE/sessions.log. */
#ifndef LANEFS_RECOVER_H
#define LANEFS_RECOVER_H

#include <stdarg.h>

/* Receives one human-readable line (no newline) per thing recovery did or
 * could not do. */
typedef void (*recover_note_fn)(void *arg, const char *fmt, va_list ap);

/* Recovers the volume in state_dir (an absolute path). The caller holds
 * STATE/daemon.lock, so no daemon serves the volume. For every session file
 * STATE/sessions/N: detaches its mount point (umount2 MNT_DETACH) when that
 * is still a fuse.lanefs mount of this volume and agent, empties
 * agents/NAME/temp and agents/NAME/work (symlinks are removed, never
 * followed; with "ephemeral=1" in the file also upper and index), appends
 * "N NAME STARTED ENDED crash" to STATE/sessions.log (ENDED: now), and
 * removes the file. Then detaches every other fuse.lanefs mount whose source
 * names this STATE, and removes STATE/control.sock and STATE/daemon.pid.
 * A session whose cleanup fails keeps its file, so a later run retries it.
 * Sets *n_recovered (may be NULL) to the number of sessions ended. Returns 0,
 * or the first -errno met (recovery still goes on past it). */
int lanefsd_recover(const char *state_dir, unsigned *n_recovered);

/* Same, reporting each step through note(arg, ...) (note may be NULL). */
int recover_run(const char *state_dir, recover_note_fn note, void *arg,
                unsigned *n_recovered);

/* Removes everything inside the directory dirfd (which stays), depth
 * first, with openat(O_NOFOLLOW) and unlinkat: a symlink is removed, never
 * followed, and nothing outside dirfd is touched. Returns 0 or the first
 * -errno met (removal goes on past it). */
int recover_empty_dir(int dirfd);

/* Opens STATE/agents/NAME/SUB as an O_PATH directory fd without following
 * a symlink at any of those components. Returns the fd or -errno. */
int recover_open_agent_dir(const char *state_dir, const char *agent,
                           const char *sub);

#endif
