/* daemon.h - serving one agent's mount of a volume.
 *
 * State directory layout (all on one filesystem, so renames between layers
 * and from the work dir are atomic):
 *   STATE/volume.conf
 *   STATE/agents/NAME/upper/     private upper (copy-up target)
 *   STATE/agents/NAME/temp/      temp layer, emptied at session start and end
 *   STATE/agents/NAME/work/      scratch for atomic copy-up
 *   STATE/agents/NAME/index/     copies of hard-linked lower files
 *   STATE/agents/NAME/daemon.pid pid of the daemon serving NAME's mount
 *   STATE/lanefs.log             daemon log
 *
 * The mount's fsname is "lanefs@NAME:STATE" (STATE absolute), so tools can
 * map a mount point back to its volume and agent through /proc/self/mountinfo.
 */
#ifndef LANEFS_DAEMON_H
#define LANEFS_DAEMON_H

#include <stdbool.h>

struct lanefsd_opts {
    const char *state_dir;   /* absolute path of the volume's state dir */
    const char *agent;       /* validated agent name */
    const char *mountpoint;  /* absolute path of an existing directory */
    bool foreground;         /* -f: stay in the foreground, log to stderr */
    bool debug;              /* -d: libfuse debug output (implies foreground) */
};

/* Mounts the agent's view at o->mountpoint and serves it until it is
 * unmounted or the process gets SIGTERM/SIGINT; then removes the temp layer.
 * Unless o->foreground, the caller returns (exit 0) only once the mount is
 * live and the serving process runs on in the background. Errors before the
 * mount is live are printed to stderr with what was wrong. Returns 0 or
 * -errno. */
int lanefsd_run(const struct lanefsd_opts *o);

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
