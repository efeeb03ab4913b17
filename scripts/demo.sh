#!/usr/bin/env bash
# demo.sh - a five-minute tour of lanefs, and a smoke test at the same time.
#
# Two agents, alpha and beta, mount their own views of one shared volume.
# alpha writes temp files and edits a shared document; the tour shows that
# beta sees none of it, that the shared data on disk is untouched, and that
# alpha's temp files end with its session while its private edit stays.
# Every property shown is also checked: the script exits non-zero if one
# does not hold.
#
# Run as root on a machine with /dev/fuse (`make demo` does that). LANEFS is
# the lanefs binary (default: build/lanefs next to this repository).
# Everything happens in one fresh mktemp dir that is removed at the end; all
# mounts are unmounted on every exit path, Ctrl-C included.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
LANEFS=${LANEFS:-$ROOT/build/lanefs}
STEP_TIMEOUT=${DEMO_STEP_TIMEOUT:-30}   # no single step may take longer

DEMO=""             # the demo's scratch dir; the tour runs with it as cwd
MOUNTS=()           # mount points to take down on exit
FAILED=0            # number of checks that did not hold

# --- output ------------------------------------------------------------------

if [[ -t 1 ]]; then
    B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' D=$'\e[2m' N=$'\e[0m'
else
    B="" G="" R="" D="" N=""
fi

say()  { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '    %s\n' "$*"; }

# run CMD: shows a shell command as the reader would type it, then runs it
# with a deadline, so a stuck mount can stall the tour but never hang it.
# A failing step ends the tour (set -e): what follows would make no sense.
run() {
    local rc=0
    exec_shown "$1" || rc=$?
    ((rc == 0)) && return 0
    if ((rc == 124)); then
        printf '%sdemo: step timed out after %ss%s\n' "$R" "$STEP_TIMEOUT" "$N" >&2
    else
        printf '%sdemo: step failed (exit %s)%s\n' "$R" "$rc" "$N" >&2
    fi
    return "$rc"
}

exec_shown() {
    printf '%s$ %s%s\n' "$D" "$1" "$N"
    timeout "$STEP_TIMEOUT" bash -c "set -o pipefail; $1" 2>&1 | sed 's/^/    /'
}

# show CMD: like run, for commands that only display; their failure is left
# to the checks that follow, so the tour still reports every property.
show() { exec_shown "$1" || true; }

# check DESCRIPTION CMD: one property of the tour; prints ok or FAIL.
check() {
    if timeout "$STEP_TIMEOUT" bash -c "$2" >/dev/null 2>&1; then
        printf '    %sok%s   %s\n' "$G" "$N" "$1"
    else
        printf '    %sFAIL%s %s\n' "$R" "$N" "$1"
        FAILED=$((FAILED + 1))
    fi
}

die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

# The shown commands say `lanefs ...`; this runs the real binary behind it,
# always with a deadline. Exported so that `run` and `check` can use it.
lanefs() { timeout "$STEP_TIMEOUT" "$LANEFS" "$@"; }
export -f lanefs
export LANEFS STEP_TIMEOUT

# --- mounts and cleanup ------------------------------------------------------

# Looks the mount up in the kernel's table instead of touching the path, which
# could block on a daemon that no longer answers.
is_mounted() {
    awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# Unmounts politely, then lazily if the daemon does not answer in time.
unmount_one() {
    local mnt=$1
    is_mounted "$mnt" || return 0
    timeout "$STEP_TIMEOUT" "$LANEFS" umount "$mnt" >/dev/null 2>&1 && return 0
    umount -l "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
}

# Runs on every exit. Nothing in it may stop it half-way.
cleanup() {
    local rc=$? mnt
    trap - EXIT INT TERM
    set +e
    for mnt in "${MOUNTS[@]}"; do
        unmount_one "$mnt"
    done
    if [[ -n $DEMO && -d $DEMO ]]; then
        cd / || true
        # Deleting through a live view would be wrong; leave it for a human.
        if awk -v d="$DEMO/" 'index($2, d) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
            printf 'demo: something is still mounted below %s; left in place\n' "$DEMO" >&2
            rc=1
        else
            rm -rf --one-file-system "$DEMO"
        fi
    fi
    if ((rc == 0)); then
        printf '\n%sdemo finished: every property held, everything unmounted and removed.%s\n' "$G" "$N"
    else
        printf '\n%sdemo failed (exit %s); everything unmounted and removed.%s\n' "$R" "$rc" "$N" >&2
    fi
    exit "$rc"
}

on_signal() { printf '\ndemo: interrupted\n' >&2; exit 130; }

# mount_agent NAME: mounts NAME's view at mnt/NAME.
mount_agent() {
    local name=$1 mnt=$DEMO/mnt/$1
    mkdir -p "$mnt"
    MOUNTS+=("$mnt")
    run "lanefs mount state --agent $name mnt/$name"
    is_mounted "$mnt" || die "agent $name is not mounted"
}

umount_agent() {
    local name=$1
    run "lanefs umount mnt/$name"
    ! is_mounted "$DEMO/mnt/$name" || die "agent $name is still mounted"
}

# A fingerprint of the lower: every entry with its type and mode, and the
# sha256 of every file. Any write, create, delete or chmod changes it.
lower_fingerprint() {
    (cd "$DEMO/lower" &&
        find . -printf '%y %m %p\n' | LC_ALL=C sort &&
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}

# --- the tour ----------------------------------------------------------------

preflight() {
    [[ $(id -u) -eq 0 ]] || die "run as root (mounting FUSE filesystems needs it)"
    [[ -c /dev/fuse ]] || die "/dev/fuse is missing"
    [[ -x $LANEFS ]] || die "lanefs binary '$LANEFS' not found; run 'make all' first"
}

make_lower() {
    say "A shared read-only volume: a few documents in a plain directory"
    mkdir -p lower/docs lower/data
    printf '# Quarterly report\n\nRevenue grew in every region.\n' >lower/docs/report.md
    printf 'Meeting notes: ship lanefs to the agent fleet.\n' >lower/docs/notes.txt
    printf 'id,region,amount\n1,north,120\n2,south,95\n3,east,140\n' >lower/data/sales.csv
    printf 'Input documents for the agents. Do not edit.\n' >lower/README.txt
    show "find lower -type f | sort"
    lower_fingerprint >lower.before
    note "sha256 listing of the lower saved for later ($(grep -c '^[0-9a-f]\{64\} ' lower.before) files)"
}

init_and_mount() {
    say "Create a volume over it (temp: /tmp and *.tmp, *.part, *.swp, .~lock.*# by default)"
    run "lanefs init state --lower lower"
    check "state/volume.conf written" "test -f state/volume.conf"

    say "Mount a view for agent alpha and one for agent beta"
    mount_agent alpha
    mount_agent beta
    show "ls mnt/alpha mnt/beta"
    check "alpha sees the shared documents" "cmp -s lower/docs/report.md mnt/alpha/docs/report.md"
    check "beta sees the shared documents" "cmp -s lower/docs/report.md mnt/beta/docs/report.md"
}

alpha_works() {
    say "alpha works: a scratch file in /tmp, a half-written download, an edit"
    run "echo 'intermediate result' > mnt/alpha/tmp/scratch.txt"
    run "echo 'partial export' > mnt/alpha/docs/report.part"
    run "echo 'Reviewed by alpha.' >> mnt/alpha/docs/report.md"
    show "ls mnt/alpha/tmp mnt/alpha/docs"
    show "tail -n 2 mnt/alpha/docs/report.md"
    check "alpha sees its temp file" "test -f mnt/alpha/tmp/scratch.txt"
    check "alpha sees its .part file" "test -f mnt/alpha/docs/report.part"
    check "alpha sees its edit" "grep -q 'Reviewed by alpha' mnt/alpha/docs/report.md"
}

beta_sees_nothing() {
    say "beta sees none of it"
    show "ls -A mnt/beta/tmp mnt/beta/docs"
    show "tail -n 2 mnt/beta/docs/report.md"
    check "alpha's /tmp file is invisible to beta" "! test -e mnt/beta/tmp/scratch.txt"
    check "alpha's .part file is invisible to beta" "! test -e mnt/beta/docs/report.part"
    check "beta reads the original report" "cmp -s lower/docs/report.md mnt/beta/docs/report.md"
    check "beta's /tmp is empty" "test -z \"\$(ls -A mnt/beta/tmp)\""

    say "beta's temp files are just as private: both use the same name"
    run "echo 'beta scratch' > mnt/beta/tmp/scratch.txt"
    show "cat mnt/alpha/tmp/scratch.txt mnt/beta/tmp/scratch.txt"
    check "alpha's scratch.txt is still alpha's" "grep -qx 'intermediate result' mnt/alpha/tmp/scratch.txt"
    check "beta's scratch.txt is beta's" "grep -qx 'beta scratch' mnt/beta/tmp/scratch.txt"
}

lower_untouched() {
    say "The lower on disk is untouched"
    lower_fingerprint >lower.after
    show "diff lower.before lower.after && echo 'sha256 listing of the lower: identical'"
    check "lower unchanged (same entries, modes and sha256 of every file)" "cmp -s lower.before lower.after"
    note "alpha's edit went to its private upper layer, copied up on first write:"
    show "cat state/agents/alpha/upper/docs/report.md | tail -n 1"
}

session_end() {
    say "alpha's session ends: its temp files go, its private edit stays"
    umount_agent alpha
    show "find state/agents/alpha/temp -mindepth 1 | wc -l"
    check "alpha's temp layer is empty after unmount" \
        "test -z \"\$(find state/agents/alpha/temp -mindepth 1 2>/dev/null)\""

    say "Mount alpha again: a new session"
    mount_agent alpha
    show "ls -A mnt/alpha/tmp mnt/alpha/docs"
    show "tail -n 1 mnt/alpha/docs/report.md"
    check "alpha's /tmp file is gone" "! test -e mnt/alpha/tmp/scratch.txt"
    check "alpha's .part file is gone" "! test -e mnt/alpha/docs/report.part"
    check "alpha's edit persists" "grep -q 'Reviewed by alpha' mnt/alpha/docs/report.md"
    check "beta still reads the original" "cmp -s lower/docs/report.md mnt/beta/docs/report.md"
}

show_layers() {
    say "The layers in the state directory"
    show "find state -not -name '*.log' | sort"
    note "agents/NAME/upper  private writes (copy-up), kept across sessions"
    note "agents/NAME/temp   temp files, emptied when the session ends"
    note "agents/NAME/work   scratch for atomic copy-up"
}

finish() {
    say "Unmount everything"
    umount_agent alpha
    umount_agent beta
    lower_fingerprint >lower.final
    check "lower still unchanged at the end" "cmp -s lower.before lower.final"
}

main() {
    preflight
    trap cleanup EXIT
    trap on_signal INT TERM
    # Physical path: it must match the kernel's mount table exactly.
    DEMO=$(cd "$(mktemp -d -t lanefs-demo.XXXXXX)" && pwd -P)
    cd "$DEMO"
    printf '%slanefs tour%s in %s\n' "$B" "$N" "$DEMO"

    make_lower
    init_and_mount
    alpha_works
    beta_sees_nothing
    lower_untouched
    session_end
    show_layers
    finish

    ((FAILED == 0)) || die "$FAILED check(s) did not hold"
}

main "$@"
