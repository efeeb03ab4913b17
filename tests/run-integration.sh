#!/bin/sh
# run-integration.sh BIN [criterion options...]
#
# Runs the integration test binary BIN against the lanefs binary named by
# $LANEFS (absolute path), under a deadline, then, as a last resort, lazily
# unmounts and kills whatever a killed or crashed test left behind. Exits
# with the test binary's status.
#
# Environment:
#   LANEFS             absolute path of the lanefs binary (required)
#   LANEFS_IT_TIMEOUT  deadline for the whole run in seconds (default 1200)
#   LANEFS_IT_JOBS     concurrent tests (default 2)
set -u

me=run-integration.sh
if [ $# -lt 1 ]; then
    echo "usage: LANEFS=/abs/path/lanefs $me BIN [criterion options]" >&2
    exit 2
fi
bin=$1
shift
case "${LANEFS:-}" in
    /*) ;;
    *) echo "$me: LANEFS must hold the absolute path of the lanefs binary" >&2; exit 2 ;;
esac
for f in "$LANEFS" "$bin"; do
    [ -x "$f" ] || { echo "$me: $f is not an executable file" >&2; exit 2; }
done
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
    echo "$me: the integration tests mount FUSE filesystems: run as root with /dev/fuse" >&2
    exit 2
fi

# Each run gets its own directory for the tests' temp roots, so the cleanup
# below can never touch the mounts of another run on the same machine.
run_tmp=$(mktemp -d /tmp/lanefs-it-run.XXXXXX) || exit 2
LANEFS_IT_TMP=$run_tmp
export LANEFS LANEFS_IT_TMP

limit=${LANEFS_IT_TIMEOUT:-1200}
timeout --kill-after=30 "$limit" "$bin" --jobs "${LANEFS_IT_JOBS:-2}" "$@"
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "$me: test binary did not finish within ${limit}s" >&2
fi

# Mount points of fuse.lanefs mounts below the run directory. Mountinfo
# fields: ... 5=mount point ... "-" fstype source options.
lanefs_mounts() {
    awk -v p="$run_tmp/" '{
        for (i = 7; i <= NF; i++)
            if ($i == "-") {
                if ($(i + 1) == "fuse.lanefs" && index($5, p) == 1)
                    print $5
                break
            }
    }' /proc/self/mountinfo
}

detach_all() {
    n=0
    while [ $n -lt 20 ]; do
        mps=$(lanefs_mounts)
        [ -n "$mps" ] || return 0
        for mp in $mps; do
            echo "$me: lazily unmounting leftover $mp" >&2
            umount -l "$mp" 2>/dev/null || fusermount3 -uz "$mp" 2>/dev/null
        done
        n=$((n + 1))
    done
}

# Tests whose process died hand their cleanup to a reaper; give the reapers a
# moment before cleaning up behind them.
sleep 1
detach_all
want_exe=$(readlink -f "$LANEFS")
for pidfile in "$run_tmp"/*/*/agents/*/daemon.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(head -n 1 "$pidfile" 2>/dev/null)
    case "$pid" in ''|*[!0-9]*) continue ;; esac
    # Only a process that still runs the lanefs binary: pids get reused.
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$want_exe" ]; then
        echo "$me: killing leftover daemon $pid ($pidfile)" >&2
        kill -9 "$pid" 2>/dev/null
    fi
done
detach_all
rm -rf --one-file-system "$run_tmp" 2>/dev/null
exit "$rc"
