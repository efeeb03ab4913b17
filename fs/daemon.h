/* daemon.h - the volume daemon: serves every agent mount of one volume.
 *
 * State directory layout (all on one filesystem, so renames between layers
 * and from the work dirs are atomic; daemon files: docs/control.md):
 *   STATE/volume.conf
 *   STATE/agents/NAME/upper/     private upper (copy-up target)
 *   STATE/agents/NAME/temp/      temp layer, emptied at session start and end
 *   STATE/agents/NAME/work/      scratch for atomic copy-up
 *   STATE/agents/NAME/index/     copies of hard-linked lower files
 *   STATE/agents/NAME/daemon.pid pid of the daemon serving NAME's mount
 *   STATE/shared/upper/          the layer of shared paths, common to all
 *   STATE/shared/work/, index/   its scratch dir and hard-link index
 *   STATE/lanefs.log             daemon log
 *
 * The mount's fsname is "lanefs@NAME:STATE" (STATE absolute), so tools can
 * map a mount point back to its volume and agent through /proc/self/mountinfo.
 */
#ifndef LANEFS_DAEMON_H
#define LANEFS_DAEMON_H

#include <stdbool.h>

#include "fs/sched.h"

/* Options of the volume daemon (docs/control.md). */
struct lanefsd_serve_opts {
    const char *state_dir;   /* absolute */
    bool foreground;         /* stay attached, log to stderr */
    bool debug;
    /* optional first mount, live before the call returns in the parent */
    const char *agent;       /* NULL: none */
    const char *mountpoint;
    bool ephemeral;
    unsigned long long quota_bytes, quota_inodes;   /* 0: none */
    struct sched_limits read;    /* shaping of its shared-data reads */
};

/* Serves the volume until SIGTERM/SIGINT or a "shutdown" request, and, when
 * it was started with a first mount, until its last session has ended.
 * Takes STATE/daemon.lock (returns -EBUSY at once when another daemon holds
 * it) and opens STATE/control.sock. Unless foreground, the parent returns 1
 * once the socket accepts requests and the first mount (if any) is live;
 * the child serves on. Errors before that are printed to stderr
 * ("lanefs: ...") and returned as -errno. */
int lanefsd_serve(const struct lanefsd_serve_opts *o);

#endif
