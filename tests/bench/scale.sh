#!/usr/bin/env bash
# scale.sh - many agents on one lanefs daemon, against one fuse-overlayfs
# process per agent.
#
# For every N in SCALE_NS, in one run:
#   lanefs          `lanefs serve STATE` (so the daemon stays between mounts),
#                   then N agents a1..aN mounted one after the other, each on
#                   its own mount point; all served by that one process
#   fuse-overlayfs  N separate fuse-overlayfs processes, one per mount, each
#                   with its own upper and work directory over the same lower
# and then, for both: the workload of scale_workload.sh in every view (read a
# 64 KiB lower file, write and read back a 4 KiB private file, create and
# delete a temp file, leave one temp file), SCALE_PAR views at a time;
# threads and RSS after mounting and after the workload; unmount of all.
#
# After lanefs has unmounted everything and its daemon has exited on SIGTERM,
# the run checks that nothing is left: no fuse.lanefs mount of the volume, no
# file in STATE/sessions/, nothing in any agents/*/temp, no daemon process,
# no control socket or pid file. Anything left is printed and makes the run
# fail (exit status 1), as does any failed mount, workload or unmount.
#
# Environment:
#   LANEFS               lanefs binary (default: build/lanefs)
#   SCALE_NS             agent counts (default: "1 10 100 500")
#   SCALE_ONLY           comma list of systems (default: lanefs,fuse-overlayfs)
#   SCALE_OUT            markdown table (default: build/scale.md)
#   SCALE_TMPDIR         where the scratch dir is made (default: build/)
#   SCALE_PAR            workloads run at once (default: 8)
#   SCALE_NOFILE         open-file limit to raise to (default: 65536)
#   SCALE_MOUNT_TIMEOUT  seconds per mount command (default: 30)
#   SCALE_UMOUNT_TIMEOUT seconds per unmount command (default: 70; lanefs
#                        umount itself waits up to 60 s for the session end)
#   SCALE_WORK_TIMEOUT   seconds for the workload of one agent (default: 60)
#                        and, times 5, for all N of them
#
# Must run as root. Everything lives under one mktemp dir that is removed at
# the end; every mount below it is unmounted and every process the run
# started is stopped, also on error or Ctrl-C.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

LANEFS=${LANEFS:-$ROOT/build/lanefs}
BUILD_DIR=$ROOT/build
SCALE_NS=${SCALE_NS:-1 10 100 500}
SCALE_ONLY=${SCALE_ONLY:-lanefs,fuse-overlayfs}
SCALE_OUT=${SCALE_OUT:-$BUILD_DIR/scale.md}
SCALE_TMPDIR=${SCALE_TMPDIR:-$BUILD_DIR}
PAR=${SCALE_PAR:-8}
NOFILE_WANT=${SCALE_NOFILE:-65536}
MOUNT_TIMEOUT=${SCALE_MOUNT_TIMEOUT:-30}
UMOUNT_TIMEOUT=${SCALE_UMOUNT_TIMEOUT:-70}
WORK_TIMEOUT=${SCALE_WORK_TIMEOUT:-60}
STOP_TIMEOUT=30     # seconds a daemon may take to exit after SIGTERM
WORKLOAD=$SCRIPT_DIR/scale_workload.sh

ALL_SYSTEMS=(lanefs fuse-overlayfs)
SYSTEMS=()
WORK=""             # the one scratch directory; everything goes below it
LOWER=""
STARTED_PIDS=()     # daemons this run started, stopped by cleanup if alive
NOFILE=""           # the open-file limit the run got (daemons inherit it)
FAILED=0            # set when any row failed or left something behind
ROWS=()             # one tab-separated main-table row per (N, system)
DETAILS=()          # one tab-separated detail row per (N, system)
NOTES=()            # failures in words, for the end of the report

log() { printf '%s\n' "$*" >&2; }
die() { log "scale: $*"; exit 1; }

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# div A B [FMT]: A/B, printed with FMT (default %.3f)
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { printf f, (b ? a / b : 0) }'; }

selected() { [[ ",$SCALE_ONLY," == *",$1,"* ]]; }

# --- processes and mounts ----------------------------------------------------

# A pid counts as alive unless it is gone or a zombie: a zombie no longer
# serves anything, it only waits for its parent to reap it.
alive() {
    local st
    st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

# wait_gone PID SECONDS: 0 once PID has exited, 1 if it is still alive then.
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# Mount points below DIR, deepest first, from the kernel's table: touching a
# path could block on a FUSE daemon that no longer answers.
mounts_below() {
    awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Type of the mount at exactly MNT, or nothing.
mount_type() {
    awk -v m="$1" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' \
        /proc/self/mountinfo
}

# Every process whose command line names PATH, so a daemon is found by what
# it serves rather than by a broad name match.
pids_naming() {
    local p
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} == "$$" ]] && continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && alive "${p#/proc/}" &&
            printf '%s\n' "${p#/proc/}"
    done
    return 0
}

# Unmounts one mount point: the filesystem's own command first, a lazy
# unmount when that fails or hangs, so cleanup never blocks.
unmount_one() {
    local mnt=$1 type
    type=$(mount_type "$mnt")
    [[ -n $type ]] || return 0
    case $type in
        fuse.lanefs) timeout 15 "$LANEFS" umount "$mnt" >/dev/null 2>&1 ;;
        *)           timeout 15 fusermount3 -u "$mnt" >/dev/null 2>&1 ;;
    esac || umount -l "$mnt" 2>/dev/null || true
}

# Runs on every exit path; nothing in it may trip `set -e`.
cleanup() {
    local rc=$? mnt pid
    trap - EXIT INT TERM
    set +e
    if [[ -n $WORK && -d $WORK ]]; then
        for mnt in $(mounts_below "$WORK"); do
            log "scale: cleanup: unmounting $mnt"
            unmount_one "$mnt"
        done
    fi
    for pid in "${STARTED_PIDS[@]}"; do
        alive "$pid" || continue
        log "scale: cleanup: stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null
        wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
    done
    if [[ -n $WORK && -d $WORK ]]; then
        # Never recurse into a mount that is somehow still there: rm would
        # delete through the view into the layers or the lower.
        if [[ -n $(mounts_below "$WORK") ]]; then
            log "scale: mounts remain below $WORK; not removing it"
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    exit "$rc"
}

on_signal() { log "scale: interrupted"; exit 130; }

# --- measurements ------------------------------------------------------------

# proc_sum FIELD PID...: sum of a /proc/PID/status field (Threads, VmRSS in
# KiB) over the pids; a pid that has gone counts 0.
proc_sum() {
    local field=$1; shift
    local pid sum=0 v
    for pid in "$@"; do
        v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    printf '%s' "$sum"
}

# pss_sum PID...: proportional set size in KiB, summed. Unlike RSS it splits
# pages shared between processes (the C library, libfuse), so a sum over many
# processes does not count those pages many times.
pss_sum() {
    local pid sum=0 v
    for pid in "$@"; do
        v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    printf '%s' "$sum"
}

fd_count() { { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l; }

# --- the workload over all views -------------------------------------------

# run_workloads N VIEWROOT UPPERFMT: runs scale_workload.sh in views
# VIEWROOT/a1..aN, PAR at a time. UPPERFMT is the upper directory with %s for
# the agent. Sets WL_SECONDS; returns 1 with the failures in WL_ERR.
run_workloads() {
    local n=$1 root=$2 upperfmt=$3 t0 t1 errf=$WORK/workload.err rc=0 i
    : >"$errf"
    t0=$(now)
    # Each line is one agent's arguments; xargs keeps PAR of them running.
    for ((i = 1; i <= n; i++)); do
        # shellcheck disable=SC2059
        printf '%s %s %s a%s\n' "$root/a$i" "$LOWER" "$(printf "$upperfmt" "a$i")" "$i"
    done | timeout "$((WORK_TIMEOUT * 5))" xargs -P "$PAR" -L 1 \
        timeout "$WORK_TIMEOUT" bash "$WORKLOAD" 2>>"$errf" || rc=$?
    t1=$(now)
    WL_SECONDS=$(elapsed "$t0" "$t1")
    WL_ERR=""
    if ((rc != 0)); then
        WL_ERR="workload failed (exit $rc): $(head -n 3 "$errf" | tr '\n' ';') $(($(wc -l <"$errf"))) error line(s)"
        return 1
    fi
}

# --- one row -------------------------------------------------------------------

# The figures of the row being measured; reset by begin_row.
begin_row() {
    R_N=$1 R_SYS=$2
    R_MOUNT_TOTAL=n/a R_MOUNT_MEAN=n/a R_MOUNT_MAX=n/a
    R_THR_M=n/a R_THR_W=n/a R_RSS_M=n/a R_RSS_W=n/a R_PSS_W=n/a R_FDS=n/a
    R_WL=n/a R_UMOUNT=n/a R_STOP=n/a R_CLEAN=n/a
    R_PROBLEMS=()
    R_MOUNTED=0
}

# Records a failure of the row. The scratch dir is shown as SCRATCH, so the
# table stays readable and carries no path of this machine.
problem() {
    local msg=$*
    msg=${msg//"$WORK"/SCRATCH}
    R_PROBLEMS+=("$msg")
    log "scale: N=$R_N $R_SYS: $*"
}

# mount_all N CMD...: mounts a1..aN one after the other with CMD AGENT MNT
# (a function), timing each. Stops at the first failure: every later mount
# would most likely fail the same way and cost a timeout each.
mount_all() {
    local n=$1 root=$2; shift 2
    local i t0 t1 dt total=0 max=0 errf=$WORK/mount.err
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$root/a$i"
        t0=$(now)
        # Output to a file, not $(...): a daemon that inherited the pipe
        # would keep the substitution waiting until it exits.
        if ! "$@" "a$i" "$root/a$i" >"$errf" 2>&1; then
            problem "mount $i of $n (agent a$i) failed: $(tr '\n' ' ' <"$errf")"
            return 1
        fi
        t1=$(now)
        R_MOUNTED=$i
        dt=$(elapsed "$t0" "$t1")
        total=$(awk -v a="$total" -v b="$dt" 'BEGIN { print a + b }')
        max=$(awk -v a="$max" -v b="$dt" 'BEGIN { print (b > a ? b : a) }')
    done
    R_MOUNT_TOTAL=$(printf '%.2f' "$total")
    R_MOUNT_MEAN=$(div "$total" "$n" '%.4f')
    R_MOUNT_MAX=$(printf '%.3f' "$max")
    local got
    got=$(awk -v d="$root/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l)
    ((got == n)) || { problem "$got of $n mounts in /proc/self/mountinfo after mounting"; return 1; }
}

# unmount_all ROOT CMD...: unmounts every mount below ROOT with CMD MNT,
# timed. After three failures the rest get a lazy unmount, so one hung
# daemon does not cost a timeout per mount.
unmount_all() {
    local root=$1; shift
    local mnt t0 t1 errf=$WORK/umount.err fails=0
    t0=$(now)
    for mnt in $(mounts_below "$root"); do
        if ((fails >= 3)); then
            umount -l "$mnt" 2>/dev/null || true
            continue
        fi
        if ! "$@" "$mnt" >"$errf" 2>&1; then
            fails=$((fails + 1))
            problem "unmount of $mnt failed: $(tr '\n' ' ' <"$errf")"
            umount -l "$mnt" 2>/dev/null || true
        fi
    done
    t1=$(now)
    R_UMOUNT=$(elapsed "$t0" "$t1")
    ((fails == 0))
}

finish_row() {
    local left=none
    if ((${#R_PROBLEMS[@]})); then
        left=$(IFS=';'; printf '%s' "${R_PROBLEMS[*]}")
        left=${left//;/; }
        FAILED=1
        NOTES+=("N=$R_N, $R_SYS: $left")
    fi
    ROWS+=("$(printf '%s\t%s\t%s\t%s\t%s / %s\t%s / %s\t%s / %s\t%s\t%s' \
        "$R_N" "$R_SYS" "$R_MOUNT_MEAN" "$R_MOUNT_TOTAL" "$R_THR_M" "$R_THR_W" \
        "$(kib_to_mib "$R_RSS_M")" "$(kib_to_mib "$R_RSS_W")" \
        "$(per_agent "$R_RSS_M")" "$(per_agent "$R_RSS_W")" "$R_CLEAN" "$left")")
    DETAILS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$R_N" "$R_SYS" "$R_MOUNT_MAX" \
        "$R_WL" "$R_UMOUNT" "$R_STOP" "$(kib_to_mib "$R_PSS_W")" "$R_FDS")")
}

kib_to_mib() { [[ $1 == n/a ]] && { printf n/a; return; }; div "$1" 1024 '%.1f'; }
per_agent() { [[ $1 == n/a ]] && { printf n/a; return; }; div "$1" "$R_N" '%.0f'; }

# --- lanefs --------------------------------------------------------------------

lanefs_mount_one() { timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$L_STATE" --agent "$1" "$2"; }
lanefs_umount_one() { timeout "$UMOUNT_TIMEOUT" "$LANEFS" umount "$1"; }

# The volume's record of what is left: the checks the brief of this
# benchmark asks for, each turned into a problem of the row.
lanefs_leftovers() {
    local n=$1 pid=$2 m left ended others
    m=$(awk -v d="$WORK/" -v s=":$L_STATE" '
        { for (i = 7; i <= NF; i++) if ($i == "-") break
          if ($(i + 1) == "fuse.lanefs" && (index($5, d) == 1 || index($(i + 2), s) > 0)) c++ }
        END { print c + 0 }' /proc/self/mountinfo)
    ((m == 0)) || problem "$m fuse.lanefs mount(s) of the volume left in /proc/self/mountinfo"
    left=$({ find "$L_STATE/sessions" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
    ((left == 0)) || problem "$left file(s) left in STATE/sessions/"
    left=$({ find "$L_STATE"/agents/*/temp -mindepth 1 2>/dev/null || true; } | wc -l)
    ((left == 0)) || problem "$left path(s) left in agents/*/temp, e.g. $({ find "$L_STATE"/agents/*/temp -mindepth 1 2>/dev/null || true; } | head -n 3 | tr '\n' ' ')"
    if alive "$pid"; then problem "daemon pid $pid still alive"; fi
    left=$(pids_naming "$L_STATE" | tr '\n' ' ')
    [[ -z $left ]] || problem "process(es) naming the state dir still alive: $left"
    [[ ! -e $L_STATE/control.sock ]] || problem "STATE/control.sock left behind"
    [[ ! -e $L_STATE/daemon.pid ]] || problem "STATE/daemon.pid left behind"
    # Every session must have ended by its own umount, not by the shutdown.
    # n is the number of sessions that were mounted, which is less than N
    # when a mount failed.
    ended=$({ awk '$5 == "umount"' "$L_STATE/sessions.log" 2>/dev/null || true; } | wc -l)
    others=$({ awk '$5 != "umount" { print $5 }' "$L_STATE/sessions.log" 2>/dev/null || true; } | sort | uniq -c | tr -s ' \n' ' ')
    ((ended == n)) || problem "sessions.log records $ended of $n mounted sessions ended by umount${others:+ (others:$others)}"
}

# Keeps the daemon log of a failed N next to the table, as the scratch dir is
# removed at the end.
keep_log() {
    local dst
    dst=$(dirname "$SCALE_OUT")/scale-lanefs-N$1.log
    mkdir -p "$(dirname "$dst")"
    cp "$L_STATE/lanefs.log" "$dst" 2>/dev/null && log "scale: daemon log kept in $dst"
    # The lines that say what went wrong are seldom the last ones: the
    # unmount of every session follows them.
    log "scale: STATE/lanefs.log, lines that report a failure (last 10):"
    grep -iE 'error|fail|cannot|refus|too many|crash|abort' "$L_STATE/lanefs.log" 2>/dev/null | tail -n 10 >&2 || true
    log "scale: tail of STATE/lanefs.log:"
    tail -n 10 "$L_STATE/lanefs.log" >&2 2>/dev/null || true
}

run_lanefs() {
    local n=$1 base=$WORK/lanefs-N$1 pid="" t0 t1 out
    begin_row "$n" lanefs
    L_STATE=$base/state
    local mroot=$base/mnt
    mkdir -p "$mroot"
    "$LANEFS" init "$L_STATE" --lower "$LOWER" >/dev/null
    if ! timeout "$MOUNT_TIMEOUT" "$LANEFS" serve "$L_STATE" >"$WORK/serve.err" 2>&1; then
        problem "lanefs serve failed: $(tr '\n' ' ' <"$WORK/serve.err")"
        finish_row; keep_log "$n"; return 0
    fi
    pid=$(cat "$L_STATE/daemon.pid")
    STARTED_PIDS+=("$pid")
    log "N=$n lanefs: daemon pid $pid, mounting $n agents"

    if mount_all "$n" "$mroot" lanefs_mount_one; then
        R_THR_M=$(proc_sum Threads "$pid") R_RSS_M=$(proc_sum VmRSS "$pid")
        # The control socket must list every agent: at N=500 its reply is the
        # largest message the daemon sends.
        local listed
        if ! out=$(timeout 30 "$LANEFS" status "$L_STATE" --json 2>&1); then
            problem "lanefs status --json failed: ${out//$'\n'/ }"
        else
            listed=$(grep -c '"agent":' <<<"$out" || true)
            ((listed == n)) || problem "lanefs status --json lists $listed of $n agents"
        fi
        log "N=$n lanefs: workload"
        run_workloads "$n" "$mroot" "$L_STATE/agents/%s/upper" || problem "$WL_ERR"
        R_WL=$WL_SECONDS
        R_THR_W=$(proc_sum Threads "$pid") R_RSS_W=$(proc_sum VmRSS "$pid")
        R_PSS_W=$(pss_sum "$pid") R_FDS=$(fd_count "$pid")
        # The temp file each agent left must be in its temp layer until the
        # session ends; otherwise the leftover check proves nothing.
        local kept
        kept=$({ find "$L_STATE"/agents/*/temp -name 'left-*.part' 2>/dev/null || true; } | wc -l)
        ((kept == n)) || problem "$kept of $n agents' temp files in agents/*/temp before unmount"
    fi

    log "N=$n lanefs: unmounting"
    unmount_all "$mroot" lanefs_umount_one || true
    t0=$(now)
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$STOP_TIMEOUT" || problem "daemon pid $pid did not exit within $STOP_TIMEOUT s of SIGTERM"
    t1=$(now)
    R_STOP=$(elapsed "$t0" "$t1")
    R_CLEAN=$(awk -v a="$R_UMOUNT" -v b="$R_STOP" 'BEGIN { printf "%.2f", a + b }')
    lanefs_leftovers "$R_MOUNTED" "$pid"
    ((${#R_PROBLEMS[@]} == 0)) || keep_log "$n"
    finish_row
    # The layers of this N are not needed any more; the disk should not
    # carry N agents' directories into the next N.
    [[ -n $(mounts_below "$base") ]] || rm -rf --one-file-system "$base"
}

# --- fuse-overlayfs ------------------------------------------------------------

fo_mount_one() {
    mkdir -p "$F_ROOT/$1/upper" "$F_ROOT/$1/work"
    # Its stderr goes to a log: it warns about every host mount option it
    # does not know, which is noise here.
    timeout "$MOUNT_TIMEOUT" fuse-overlayfs \
        -o "lowerdir=$LOWER,upperdir=$F_ROOT/$1/upper,workdir=$F_ROOT/$1/work" "$2" \
        >>"$WORK/fuse-overlayfs.log" 2>&1 || { tail -n 2 "$WORK/fuse-overlayfs.log"; return 1; }
}
fo_umount_one() { timeout "$UMOUNT_TIMEOUT" fusermount3 -u "$1"; }

# The fuse-overlayfs processes of this N: each names its own upper dir.
fo_pids() {
    local p
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == fuse-overlayfs ]] || continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$F_ROOT/" && printf '%s\n' "${p#/proc/}"
    done
    return 0
}

run_fo() {
    local n=$1 base=$WORK/fo-N$1 t0 t1 pid pids=() left
    begin_row "$n" fuse-overlayfs
    F_ROOT=$base/layers
    local mroot=$base/mnt
    mkdir -p "$mroot" "$F_ROOT"
    log "N=$n fuse-overlayfs: mounting $n views"
    if mount_all "$n" "$mroot" fo_mount_one; then
        mapfile -t pids < <(fo_pids)
        STARTED_PIDS+=("${pids[@]}")
        ((${#pids[@]} == n)) || problem "${#pids[@]} fuse-overlayfs processes for $n mounts"
        R_THR_M=$(proc_sum Threads "${pids[@]}") R_RSS_M=$(proc_sum VmRSS "${pids[@]}")
        log "N=$n fuse-overlayfs: workload"
        run_workloads "$n" "$mroot" "$F_ROOT/%s/upper" || problem "$WL_ERR"
        R_WL=$WL_SECONDS
        R_THR_W=$(proc_sum Threads "${pids[@]}") R_RSS_W=$(proc_sum VmRSS "${pids[@]}")
        R_PSS_W=$(pss_sum "${pids[@]}")
        local fds=0
        for pid in "${pids[@]}"; do fds=$((fds + $(fd_count "$pid"))); done
        R_FDS=$fds
    else
        mapfile -t pids < <(fo_pids)
        STARTED_PIDS+=("${pids[@]}")
    fi

    log "N=$n fuse-overlayfs: unmounting"
    unmount_all "$mroot" fo_umount_one || true
    # fusermount3 -u returns once the kernel has dropped the mount; the
    # processes exit on their own shortly after, and that belongs to the
    # cost of tearing the views down.
    t0=$(now)
    for pid in "${pids[@]}"; do
        wait_gone "$pid" "$STOP_TIMEOUT" || problem "fuse-overlayfs pid $pid did not exit"
    done
    t1=$(now)
    R_STOP=$(elapsed "$t0" "$t1")
    R_CLEAN=$(awk -v a="$R_UMOUNT" -v b="$R_STOP" 'BEGIN { printf "%.2f", a + b }')
    left=$(mounts_below "$base" | wc -l)
    ((left == 0)) || problem "$left mount(s) left below the scratch dir"
    left=$(fo_pids | tr '\n' ' ')
    [[ -z $left ]] || problem "fuse-overlayfs process(es) left: $left"
    finish_row
    [[ -n $(mounts_below "$base") ]] || rm -rf --one-file-system "$base"
}

# --- setup -------------------------------------------------------------------

check_prereqs() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (mounts)"
    [[ -c /dev/fuse ]] || die "/dev/fuse is missing"
    local s k known n
    for s in ${SCALE_ONLY//,/ }; do
        known=0
        for k in "${ALL_SYSTEMS[@]}"; do [[ $s == "$k" ]] && known=1; done
        ((known)) || die "unknown system '$s' in SCALE_ONLY (known: ${ALL_SYSTEMS[*]})"
    done
    for s in "${ALL_SYSTEMS[@]}"; do selected "$s" && SYSTEMS+=("$s"); done
    ((${#SYSTEMS[@]} > 0)) || die "SCALE_ONLY selects nothing"
    for n in $SCALE_NS; do
        [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad N '$n' in SCALE_NS (positive integers)"
    done
    if selected lanefs; then
        [[ -x $LANEFS ]] || die "lanefs binary '$LANEFS' not found (run 'make all')"
    fi
    if selected fuse-overlayfs; then
        command -v fuse-overlayfs >/dev/null || die "fuse-overlayfs is not installed (apt-get install fuse-overlayfs)"
        command -v fusermount3 >/dev/null || die "fusermount3 is not installed (apt-get install fuse3)"
    fi
}

# One daemon holds a /dev/fuse descriptor and a few layer directories per
# agent, plus what the agents have open. It inherits this shell's limit, and
# the common default of 1024 would run out at a few hundred agents. Raise the
# soft limit, and the hard one too if root may; report what was obtained.
raise_limits() {
    local soft hard
    soft=$(ulimit -Sn) hard=$(ulimit -Hn)
    if [[ $soft != unlimited && $soft -lt $NOFILE_WANT ]]; then
        if [[ $hard == unlimited || $hard -ge $NOFILE_WANT ]]; then
            ulimit -Sn "$NOFILE_WANT"
        elif ! ulimit -n "$NOFILE_WANT" 2>/dev/null; then
            ulimit -Sn "$hard"
            log "scale: could not raise the open-file limit to $NOFILE_WANT; using the hard limit $hard"
        fi
    fi
    NOFILE=$(ulimit -Sn)
    log "scale: open-file limit (ulimit -n) $NOFILE (was $soft)"
}

make_lower() {
    mkdir -p "$LOWER/tmp"
    # Random content, so a layer that returned zeros or stale pages fails
    # the comparison in the workload.
    head -c 65536 /dev/urandom >"$LOWER/in.bin"
}

# --- report --------------------------------------------------------------------

HEADER=$'N\tsystem\tmount s/agent\ttotal mount s\tthreads (mounted / after workload)\tRSS MiB total (mounted / after workload)\tRSS KiB per agent (mounted / after workload)\tunmount+cleanup s\tleftovers'
DHEADER=$'N\tsystem\tslowest mount s\tworkload s\tunmount s\tdaemon(s) exit s\tPSS MiB after workload\topen fds after workload'

print_tables() {
    printf '%s\n' "$HEADER" "${ROWS[@]}" | column -t -s $'\t'
    printf '\n'
    printf '%s\n' "$DHEADER" "${DETAILS[@]}" | column -t -s $'\t'
}

md_table() {
    local header=$1 align=$2 row; shift 2
    printf '| %s |\n' "${header//$'\t'/ | }"
    printf '%s\n' "$align"
    for row in "$@"; do printf '| %s |\n' "${row//$'\t'/ | }"; done
}

fo_version() {
    local out
    out=$(fuse-overlayfs --version 2>&1 || true)
    grep -m1 '^fuse-overlayfs' <<<"$out" || echo n/a
}

# The commit, marked when fs/ or tools/ differ from it: then the binary was
# built from a working tree that no commit names.
lanefs_commit() {
    local c
    c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
    [[ -z $(git -C "$ROOT" status --porcelain -- fs tools 2>/dev/null) ]] || c+=" (fs/ or tools/ modified)"
    printf '%s' "$c"
}

write_markdown() {
    local note
    mkdir -p "$(dirname "$SCALE_OUT")"
    {
        printf '<!-- written by tests/bench/scale.sh -->\n'
        printf 'Date: %s  \n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'Machine: %s cores, %s memory, kernel %s, scratch dir on %s  \n' "$(nproc)" \
            "$(free -h | awk '/^Mem:/ { print $2 }')" "$(uname -r)" \
            "$(df -T "$WORK" | awk 'NR == 2 { print $2 }')"
        printf 'lanefs: commit %s; %s  \n' "$(lanefs_commit)" "$(fo_version)"
        printf 'N: %s; workloads %s at a time; open-file limit (ulimit -n) %s\n\n' \
            "$SCALE_NS" "$PAR" "$NOFILE"
        md_table "$HEADER" '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |' "${ROWS[@]}"
        printf '\n'
        md_table "$DHEADER" '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |' "${DETAILS[@]}"
        if ((${#NOTES[@]})); then
            printf '\nFailures and leftovers:\n\n'
            for note in "${NOTES[@]}"; do printf -- '- %s\n' "$note"; done
        fi
    } >"$SCALE_OUT"
}

# --- main --------------------------------------------------------------------

main() {
    check_prereqs
    trap cleanup EXIT
    trap on_signal INT TERM
    raise_limits

    mkdir -p "$SCALE_TMPDIR"
    # Physical path: mount points are compared with the kernel's table.
    WORK=$(cd "$(mktemp -d "$SCALE_TMPDIR/lanefs-scale.XXXXXX")" && pwd -P)
    # /proc/self/mountinfo escapes blanks, so such a path would never match.
    [[ $WORK != *[[:space:]]* ]] || die "scratch dir '$WORK' contains a blank; set SCALE_TMPDIR"
    LOWER=$WORK/lower
    make_lower

    if selected lanefs; then
        # Measure one fixed binary: a rebuild of build/lanefs during the run
        # would otherwise change (or, mid-link, break) the system under test.
        mkdir -p "$WORK/bin"
        cp "$LANEFS" "$WORK/bin/lanefs"
        LANEFS=$WORK/bin/lanefs
    fi

    local n s t0=$SECONDS
    for n in $SCALE_NS; do
        for s in "${SYSTEMS[@]}"; do
            case $s in
                lanefs) run_lanefs "$n" ;;
                fuse-overlayfs) run_fo "$n" ;;
            esac
        done
    done
    log "measured in $((SECONDS - t0)) s"

    print_tables
    write_markdown
    log "table written to $SCALE_OUT"
    if ((FAILED)); then
        log "scale: FAILED: something failed or was left behind:"
        printf '  %s\n' "${NOTES[@]}" >&2
        exit 1
    fi
}

main "$@"
