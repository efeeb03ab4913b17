#!/usr/bin/env bash
# bench.sh - lanefs side by side with the native filesystem, fuse-overlayfs
# and mergerfs.
#
# All four are measured in one run, on this machine, over the same lower
# data, so the ratios compare like with like:
#   native          the lower directory itself (plain directory, same disk)
#   lanefs          agents' views of one volume whose lower is that directory
#   fuse-overlayfs  lowerdir=that directory, upperdir/workdir beside it
#   mergerfs        one branch: a copy of the lower made for it alone.
#                   mergerfs has no copy-on-write, so its writes modify the
#                   branch; the copy keeps them away from the others' lower.
#
# Workloads (each figure: median of BENCH_RUNS runs, with min-max):
#   1 seq read     read the 1 GiB lower file start to end, cold and warm   MB/s
#   2 rand read    4 KiB preads of it, 1 and 4 threads, cold and warm      IOPS
#   3 small files  create+write 4 KiB+close 10,000 files, then unlink
#                  them, in a new directory and in a lower directory       files/s
#   4 find         find + stat over a lower tree of 20,000 files, cold
#                  and warm                                                seconds
#   5 untar, rm    untar a source-like tree of 3,000 files into the view,
#                  then rm -rf it                                          seconds
#   6 first write  append 1 byte to the 1 GiB lower file, and overwrite
#                  4 KiB in its middle, each the first write after a fresh
#                  mount (for the overlays: the copy-up)                   seconds
#   7 agents       1 agent, then BENCH_AGENTS agents at once on one volume
#                  (lanefs: one daemon, one mount per agent; peers: one
#                  mount per agent), each doing 1-4 at a smaller size;
#                  aggregate figures and the spread between agents
#
# Environment:
#   LANEFS        path of the lanefs binary (default: build/lanefs)
#   BENCH_QUICK   1: small sizes and one run, for trying the harness out;
#                 the sizes below still override it
#   BENCH_ONLY    comma list of systems (default: native,lanefs,fuse-overlayfs,mergerfs)
#   BENCH_OUT     markdown table output (default: build/bench.md)
#   BENCH_PLOT    PNG plot of the ratios (default: BENCH_OUT with .png; needs gnuplot)
#   BENCH_TMPDIR  where the scratch dir is made (default: build/; keep it on
#                 a real disk, not tmpfs, or "native" measures memory)
#   BENCH_CMD     the command to name in the report (default: this script)
#   BENCH_RUNS, BENCH_BIG_MB, BENCH_RAND_COUNT, BENCH_SMALL_COUNT,
#   BENCH_LOWERDIR_FILES, BENCH_TREE_DIRS, BENCH_TREE_FILES, BENCH_SRC_DIRS,
#   BENCH_SRC_FILES, BENCH_AGENTS, BENCH_AGENT_RAND, BENCH_AGENT_SMALL,
#   BENCH_STEP_TIMEOUT: sizes and limits (see docs/benchmarks.md).
#
# Must run as root (mounts, drop_caches). Everything lives under one mktemp
# dir that is removed at the end; every mount is unmounted, also on error or
# Ctrl-C. Every step runs under a timeout, so a hung mount cannot hang the run.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

# The settings this run was given, for the command line in the report (taken
# before the defaults fill the variables in).
SETTINGS=""
for v in BENCH_QUICK BENCH_ONLY BENCH_RUNS BENCH_BIG_MB BENCH_RAND_COUNT BENCH_SMALL_COUNT \
         BENCH_LOWERDIR_FILES BENCH_TREE_DIRS BENCH_TREE_FILES BENCH_SRC_DIRS BENCH_SRC_FILES \
         BENCH_AGENTS BENCH_AGENT_RAND BENCH_AGENT_SMALL; do
    [[ -n ${!v:-} ]] && SETTINGS+="$v=${!v} "
done
unset v

LANEFS=${LANEFS:-$ROOT/build/lanefs}
BUILD_DIR=$ROOT/build
QUICK=${BENCH_QUICK:-0}
BENCH_ONLY=${BENCH_ONLY:-native,lanefs,fuse-overlayfs,mergerfs}
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench.md}
BENCH_PLOT=${BENCH_PLOT:-${BENCH_OUT%.md}.png}
BENCH_TMPDIR=${BENCH_TMPDIR:-$BUILD_DIR}
BENCH_CMD=${BENCH_CMD:-tests/bench/bench.sh}
if [[ $QUICK == 1 ]]; then
    d_runs=1 d_big=64 d_rand=2000 d_small=500 d_ldir=100 d_tdirs=20 d_tfiles=50
    d_sdirs=20 d_sfiles=300 d_arand=500 d_asmall=100
else
    d_runs=3 d_big=1024 d_rand=20000 d_small=10000 d_ldir=1000 d_tdirs=200 d_tfiles=100
    d_sdirs=150 d_sfiles=3000 d_arand=5000 d_asmall=2000
fi
RUNS=${BENCH_RUNS:-$d_runs}
BIG_MB=${BENCH_BIG_MB:-$d_big}
RAND_COUNT=${BENCH_RAND_COUNT:-$d_rand}
SMALL_COUNT=${BENCH_SMALL_COUNT:-$d_small}
LDIR_FILES=${BENCH_LOWERDIR_FILES:-$d_ldir}
TREE_DIRS=${BENCH_TREE_DIRS:-$d_tdirs}
TREE_FILES=${BENCH_TREE_FILES:-$d_tfiles}
SRC_DIRS=${BENCH_SRC_DIRS:-$d_sdirs}
SRC_FILES=${BENCH_SRC_FILES:-$d_sfiles}
AGENTS=${BENCH_AGENTS:-8}
AGENT_RAND=${BENCH_AGENT_RAND:-$d_arand}
AGENT_SMALL=${BENCH_AGENT_SMALL:-$d_asmall}
STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-300}
MOUNT_TIMEOUT=30
RAND_SEED=42
SRC_SEED=7
RAND_JOBS=4
# mergerfs: one branch, so the policies only matter for where a new file
# goes (ff: the first branch). cache.files=off keeps mergerfs out of the page
# cache of its mount (reads always reach the branch), as its documentation
# recommends unless mmap is needed; use_ino gives stable inode numbers.
MFS_OPTS=allow_other,use_ino,cache.files=off,dropcacheonclose=false,category.create=ff,fsname=mergerfs-bench

ALL_SYSTEMS=(native lanefs fuse-overlayfs mergerfs)
SYSTEMS=()          # the systems this run measures, in column order
WORK=""             # the one scratch directory; everything goes below it
LOWER="" STATE="" MNT_ROOT="" FO_ROOT="" MBRANCH=""
TOOL=""             # compiled benchtool
MOUNTED=()          # "system mountpoint" of every live mount, for cleanup
VIEW=""             # root of the view that mount_view set up last
BIG_SIZE=0 MID_BLK=0 TREE_ENTRIES=0 SLICE=0
declare -A RES      # "key|system" -> space-separated samples

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# --- cleanup -----------------------------------------------------------------

# Looks the mount up in the kernel's table instead of touching the path, which
# could block on a FUSE daemon that no longer answers.
is_mounted() {
    awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# Unmounts one mount point; a FUSE daemon that does not answer in time gets a
# lazy unmount so the benchmark never hangs on it.
unmount_one() {
    local sys=$1 mnt=$2
    is_mounted "$mnt" || return 0
    case $sys in
        lanefs) timeout "$MOUNT_TIMEOUT" "$LANEFS" umount "$mnt" >/dev/null 2>&1 ||
                    umount -l "$mnt" 2>/dev/null || true ;;
        *)      timeout "$MOUNT_TIMEOUT" fusermount3 -u "$mnt" 2>/dev/null ||
                    umount -l "$mnt" 2>/dev/null || true ;;
    esac
}

# Runs on every exit path. It must not fail half-way, so nothing in it is
# allowed to trip `set -e`.
cleanup() {
    local rc=$? entry
    trap - EXIT INT TERM
    set +e
    # Background agents of workload 7 that are still running.
    jobs -p | xargs -r kill 2>/dev/null
    for entry in "${MOUNTED[@]}"; do
        unmount_one "${entry%% *}" "${entry#* }"
    done
    if [[ -n $WORK && -d $WORK ]]; then
        # Never recurse into a mount that is somehow still there: that would
        # delete through the view (and, for native, nothing would stop it).
        if awk -v w="$WORK/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
            log "bench: mounts remain below $WORK; not removing it"
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    exit "$rc"
}

on_signal() { log "bench: interrupted"; exit 130; }

# --- helpers -----------------------------------------------------------------

# Cold runs start from an empty page cache (and, for FUSE, an empty kernel
# dentry/attr cache); sync first so dirty pages of the last step are written.
drop_caches() {
    step sync
    echo 3 >/proc/sys/vm/drop_caches
}

now() { printf '%s' "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }

# Median of the numbers given as arguments (the middle one, or the mean of
# the two middle ones for an even count).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) exit 1
              if (NR % 2) print v[(NR + 1) / 2]
              else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
minof() { printf '%s\n' "$@" | sort -g | head -n 1; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }

record() { RES["$1|$2"]+="$3 "; }

# Runs one timed step with a deadline, so a wedged filesystem costs at most
# STEP_TIMEOUT instead of the whole run.
step() { timeout "$STEP_TIMEOUT" "$@"; }

selected() { [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

# The directory that holds the lower data a system's view shows: mergerfs
# has its own copy, because it writes into it.
lower_of() { if [[ $1 == mergerfs ]]; then printf '%s' "$MBRANCH"; else printf '%s' "$LOWER"; fi; }

# --- setup -------------------------------------------------------------------

check_prereqs() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (mounts, drop_caches)"
    local s k known v
    for s in ${BENCH_ONLY//,/ }; do
        known=0
        for k in "${ALL_SYSTEMS[@]}"; do [[ $s == "$k" ]] && known=1; done
        ((known)) || die "unknown system '$s' in BENCH_ONLY (known: ${ALL_SYSTEMS[*]})"
    done
    for s in "${ALL_SYSTEMS[@]}"; do
        selected "$s" && SYSTEMS+=("$s")
    done
    ((${#SYSTEMS[@]} > 0)) || die "BENCH_ONLY selects nothing"
    for v in RUNS BIG_MB RAND_COUNT SMALL_COUNT LDIR_FILES TREE_DIRS TREE_FILES SRC_DIRS \
             SRC_FILES AGENTS AGENT_RAND AGENT_SMALL STEP_TIMEOUT; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
    done
    ((AGENTS >= 2)) || die "BENCH_AGENTS must be at least 2"
    ((RAND_COUNT >= RAND_JOBS)) || die "BENCH_RAND_COUNT must be at least $RAND_JOBS"
    if selected lanefs || selected fuse-overlayfs || selected mergerfs; then
        [[ -c /dev/fuse ]] || die "/dev/fuse is missing"
        command -v fusermount3 >/dev/null || die "fusermount3 is not installed (apt-get install fuse3)"
    fi
    if selected lanefs; then
        [[ -x $LANEFS ]] || die "lanefs binary '$LANEFS' not found (run 'make all', or leave lanefs out of BENCH_ONLY)"
    fi
    if selected fuse-overlayfs; then
        command -v fuse-overlayfs >/dev/null || die "fuse-overlayfs is not installed (make bench-deps, or apt-get install fuse-overlayfs)"
    fi
    if selected mergerfs; then
        command -v mergerfs >/dev/null || die "mergerfs is not installed (make bench-deps, or apt-get install mergerfs)"
    fi
    command -v cc >/dev/null || die "no C compiler (apt-get install build-essential)"
    command -v gnuplot >/dev/null || log "bench: gnuplot is not installed; no plot will be drawn (make bench-deps)"
}

build_tool() {
    mkdir -p "$BUILD_DIR/bench"
    TOOL=$BUILD_DIR/bench/benchtool
    cc -O2 -std=c11 -Wall -Wextra -Werror -pthread -o "$TOOL" "$SCRIPT_DIR/benchtool.c"
}

# The lower: the big file, the tree for find, a directory with files in it
# for new files among existing ones. The source tree for the untar is packed
# once next to it (outside every view) and the unpacked tree removed.
make_lower() {
    log "creating lower data: ${BIG_MB} MiB file, tree of $((TREE_DIRS * TREE_FILES)) files," \
        "directory of $LDIR_FILES files, tar of $SRC_FILES files"
    mkdir -p "$LOWER/tree" "$LOWER/ldir"
    # Random content, so no layer can shortcut zero pages or compress.
    step dd if=/dev/urandom of="$LOWER/big.bin" bs=1M count="$BIG_MB" status=none
    step "$TOOL" mktree "$LOWER/tree" "$TREE_DIRS" "$TREE_FILES"
    # One directory (ldir/d0000) with LDIR_FILES existing files; the small
    # files workload adds f000000... among its f00000.txt...
    step "$TOOL" mktree "$LOWER/ldir" 1 "$LDIR_FILES"
    BIG_SIZE=$(stat -c %s "$LOWER/big.bin")
    MID_BLK=$((BIG_SIZE / 2 / 4096))
    TREE_ENTRIES=$((TREE_DIRS * TREE_FILES + TREE_DIRS + 1))
    # Workload 7: agent i reads the i-th of AGENTS equal slices of big.bin.
    SLICE=$((BIG_SIZE / AGENTS / 4096 * 4096))
    ((SLICE > 0)) || die "BENCH_BIG_MB is too small for $AGENTS agents"
    # The block the overwrite changes, to check and restore the lowers.
    dd if="$LOWER/big.bin" of="$WORK/midblock" bs=4096 skip="$MID_BLK" count=1 status=none
    mkdir -p "$WORK/srcgen/src"
    step "$TOOL" mksrc "$WORK/srcgen/src" "$SRC_DIRS" "$SRC_FILES" "$SRC_SEED"
    step tar -cf "$WORK/src.tar" -C "$WORK/srcgen" src
    SRC_ENTRIES=$(tar -tf "$WORK/src.tar" | wc -l)
    rm -rf "$WORK/srcgen"
    if selected mergerfs; then
        log "copying the lower for mergerfs's branch"
        step cp -a "$LOWER/." "$MBRANCH/"
    fi
    sync
}

# --- views -------------------------------------------------------------------

mnt_of() {
    case $1 in
        lanefs) printf '%s' "$MNT_ROOT/lanefs-$2" ;;
        fuse-overlayfs) printf '%s' "$MNT_ROOT/fo-$2" ;;
        mergerfs) printf '%s' "$MNT_ROOT/mfs-$2" ;;
    esac
}

# mount_view SYSTEM TAG: makes a fresh view of the lower (fresh upper, fresh
# daemon unless other views of the volume are mounted) and sets VIEW to its
# root. TAG names the view; it is a valid agent name, so it doubles as the
# lanefs agent.
mount_view() {
    local sys=$1 tag=$2 mnt
    if [[ $sys == native ]]; then
        VIEW=$LOWER
        return 0
    fi
    mnt=$(mnt_of "$sys" "$tag")
    mkdir -p "$mnt"
    MOUNTED+=("$sys $mnt")
    case $sys in
        lanefs)
            timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$STATE" --agent "$tag" "$mnt" >/dev/null ||
                die "lanefs mount of agent $tag failed"
            ;;
        fuse-overlayfs)
            mkdir -p "$FO_ROOT/$tag/upper" "$FO_ROOT/$tag/work"
            # Its stderr goes to a log: it warns about every mount option
            # of the host it does not know, which is noise here.
            timeout "$MOUNT_TIMEOUT" fuse-overlayfs \
                -o "lowerdir=$LOWER,upperdir=$FO_ROOT/$tag/upper,workdir=$FO_ROOT/$tag/work" "$mnt" \
                2>>"$WORK/fuse-overlayfs.log" ||
                die "fuse-overlayfs mount $tag failed: $(tail -n 3 "$WORK/fuse-overlayfs.log")"
            ;;
        mergerfs)
            timeout "$MOUNT_TIMEOUT" mergerfs -o "$MFS_OPTS" "$MBRANCH" "$mnt" \
                >>"$WORK/mergerfs.log" 2>&1 ||
                die "mergerfs mount $tag failed: $(tail -n 3 "$WORK/mergerfs.log")"
            ;;
    esac
    is_mounted "$mnt" || die "$sys view $tag is not mounted at $mnt"
    VIEW=$mnt
}

# umount_view SYSTEM TAG: unmounts the view and drops its private layers, so
# copied-up gigabytes do not pile up over the runs.
umount_view() {
    local sys=$1 tag=$2 mnt i
    [[ $sys == native ]] && return 0
    mnt=$(mnt_of "$sys" "$tag")
    unmount_one "$sys" "$mnt"
    is_mounted "$mnt" && die "$sys view $tag did not unmount"
    for i in "${!MOUNTED[@]}"; do
        [[ ${MOUNTED[$i]} == "$sys $mnt" ]] && unset 'MOUNTED[i]'
    done
    MOUNTED=("${MOUNTED[@]}")
    case $sys in
        lanefs) rm -rf --one-file-system "${STATE:?}/agents/$tag" ;;
        fuse-overlayfs) rm -rf --one-file-system "${FO_ROOT:?}/$tag" ;;
    esac
    rmdir "$mnt"
}

# A benchmark of a view that returns the wrong bytes is worthless, so each
# system's view is checked against the lower once before it is timed.
verify_view() {
    local sys=$1 n
    mount_view "$sys" verify
    [[ $(step stat -c %s "$VIEW/big.bin") == "$BIG_SIZE" ]] || die "$sys: big.bin has the wrong size"
    step cmp -s "$LOWER/big.bin" "$VIEW/big.bin" || die "$sys: big.bin differs from the lower"
    n=$(step find "$VIEW/tree" | wc -l)
    [[ $n -eq $TREE_ENTRIES ]] || die "$sys: the tree has $n entries, expected $TREE_ENTRIES"
    umount_view "$sys" verify
}

# The lower of SYSTEM must hold the original big.bin: same size and the
# original block in the middle. For native and mergerfs the caller has just
# undone its own write; for the overlays this checks that the lower was not
# touched.
check_lower_big() {
    local sys=$1 root
    root=$(lower_of "$sys")
    [[ $(stat -c %s "$root/big.bin") -eq $BIG_SIZE ]] || die "$sys: the lower file changed size"
    dd if="$root/big.bin" bs=4096 skip="$MID_BLK" count=1 status=none | cmp -s - "$WORK/midblock" ||
        die "$sys: the middle block of the lower file changed"
}

# --- workloads 1-3 and 5 -----------------------------------------------------

# Workloads 1 and 2 on one mount: reading leaves nothing behind.
run_reads() {
    local sys=$1 r=$2 tag="r$2-rd" v
    mount_view "$sys" "$tag"
    drop_caches
    v=$(step "$TOOL" seqread "$VIEW/big.bin");  record seq_cold "$sys" "$v"
    v=$(step "$TOOL" seqread "$VIEW/big.bin");  record seq_warm "$sys" "$v"
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$RAND_SEED"); record rand1_warm "$sys" "$v"
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$RAND_SEED" "$RAND_JOBS"); record rand4_warm "$sys" "$v"
    drop_caches
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$((RAND_SEED + r))"); record rand1_cold "$sys" "$v"
    drop_caches
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$((RAND_SEED + r))" "$RAND_JOBS"); record rand4_cold "$sys" "$v"
    umount_view "$sys" "$tag"
}

# Workloads 3 and 5 on one mount: none of them leaves private state behind
# that would change the next one.
run_files() {
    local sys=$1 r=$2 tag="r$2-io" d n t0 t1 v
    mount_view "$sys" "$tag"

    # Small files in a new directory of the view.
    d=$VIEW/small-$tag
    step mkdir "$d"
    v=$(step "$TOOL" smallfiles "$d" "$SMALL_COUNT"); record small_new "$sys" "$v"
    step rmdir "$d"
    # Small files among the existing files of a lower directory.
    d=$VIEW/ldir/d0000
    v=$(step "$TOOL" smallfiles "$d" "$SMALL_COUNT"); record small_lower "$sys" "$v"
    n=$(step find "$d" -maxdepth 1 -type f | wc -l)
    [[ $n -eq $LDIR_FILES ]] || die "$sys: ldir has $n files after the small files, expected $LDIR_FILES"

    # Untar into a new directory, then remove it. The tar file is read once
    # first, so the timed untar reads it from memory.
    d=$VIEW/untar-$tag
    step mkdir "$d"
    cat "$WORK/src.tar" >/dev/null
    t0=$(now); step tar -xf "$WORK/src.tar" -C "$d"; t1=$(now)
    record untar "$sys" "$(elapsed "$t0" "$t1")"
    n=$(step find "$d/src" | wc -l)
    # tar -t lists directories with a trailing slash, find lists them bare;
    # both list every file and directory once.
    [[ $n -eq $SRC_ENTRIES ]] || die "$sys: the untarred tree has $n entries, expected $SRC_ENTRIES"
    t0=$(now); step rm -rf "$d/src"; t1=$(now)
    record rmrf "$sys" "$(elapsed "$t0" "$t1")"
    step rmdir "$d"
    umount_view "$sys" "$tag"
}

# --- workload 4 ----------------------------------------------------------------

# find with -printf %s needs a stat of every entry; the count check makes sure
# the view lists the whole tree.
time_find() {
    local t0 t1 n
    t0=$(now)
    n=$(step find "$VIEW/tree" -printf '%s %m\n' | wc -l)
    t1=$(now)
    [[ $n -eq $TREE_ENTRIES ]] || die "find saw $n entries, expected $TREE_ENTRIES"
    elapsed "$t0" "$t1"
}

# A fresh mount, so no daemon-side inode cache is warm from earlier runs.
run_find() {
    local sys=$1 r=$2 tag="r$2-find" v
    mount_view "$sys" "$tag"
    drop_caches
    v=$(time_find); record find_cold "$sys" "$v"
    v=$(time_find); record find_warm "$sys" "$v"
    umount_view "$sys" "$tag"
}

# --- workload 6 ----------------------------------------------------------------

# The first write to the big lower file after a fresh mount, with an empty
# upper and a cold cache, so a copy-up reads from disk as it would the first
# time an agent touches the file. Timed is open+write+close as the writer
# sees it. native and mergerfs write the lower (their branch) itself; the
# write is undone afterwards so every system starts from the same file.
run_append() {
    local sys=$1 r=$2 tag="r$2-app" v
    mount_view "$sys" "$tag"
    drop_caches
    v=$(step "$TOOL" append "$VIEW/big.bin"); record append "$sys" "$v"
    [[ $(step stat -c %s "$VIEW/big.bin") -eq $((BIG_SIZE + 1)) ]] || die "$sys: append did not grow the file"
    case $sys in native | mergerfs) truncate -s "$BIG_SIZE" "$(lower_of "$sys")/big.bin" ;; esac
    umount_view "$sys" "$tag"
    check_lower_big "$sys"
}

run_overwrite() {
    local sys=$1 r=$2 tag="r$2-ovw" v n
    mount_view "$sys" "$tag"
    drop_caches
    v=$(step "$TOOL" overwrite "$VIEW/big.bin"); record overwrite "$sys" "$v"
    n=$(step dd if="$VIEW/big.bin" bs=4096 skip="$MID_BLK" count=1 status=none | tr -d x | wc -c)
    [[ $n -eq 0 ]] || die "$sys: the view does not show the overwritten block"
    [[ $(step stat -c %s "$VIEW/big.bin") -eq $BIG_SIZE ]] || die "$sys: the overwrite changed the size"
    case $sys in
        native | mergerfs)
            dd if="$WORK/midblock" of="$(lower_of "$sys")/big.bin" bs=4096 seek="$MID_BLK" \
                count=1 conv=notrunc status=none ;;
    esac
    umount_view "$sys" "$tag"
    check_lower_big "$sys"
}

# --- workload 7 ----------------------------------------------------------------

# agent_job KIND VIEW I OUT: agent I's part of one phase in VIEW; writes its
# start and end time to OUT. Run in the background, one per agent.
agent_job() {
    local kind=$1 view=$2 i=$3 out=$4 t0 t1 n
    case $kind in
        small) step mkdir "$view/agent-$i" ;;
    esac
    t0=$(now)
    case $kind in
        seq) step "$TOOL" seqread "$view/big.bin" "$((i * SLICE))" "$SLICE" >/dev/null ;;
        rand) step "$TOOL" randread "$view/big.bin" "$AGENT_RAND" "$((RAND_SEED + 100 + i))" >/dev/null ;;
        small) step "$TOOL" smallfiles "$view/agent-$i" "$AGENT_SMALL" >/dev/null ;;
        find)
            n=$(step find "$view/tree" -printf '%s %m\n' | wc -l)
            [[ $n -eq $TREE_ENTRIES ]] || { log "bench: agent $i: find saw $n entries, expected $TREE_ENTRIES"; return 1; }
            ;;
    esac
    t1=$(now)
    case $kind in
        small) step rmdir "$view/agent-$i" ;;
    esac
    printf '%s %s\n' "$t0" "$t1" >"$out"
}

# The work one agent does in a phase, in the unit of its figure.
agent_work() {
    case $1 in
        seq) awk -v b="$SLICE" 'BEGIN { printf "%.6f", b / 1e6 }' ;;   # MB
        rand) printf '%s' "$AGENT_RAND" ;;                             # reads
        small) printf '%s' "$AGENT_SMALL" ;;                           # files
        find) printf '%s' "$TREE_ENTRIES" ;;                           # entries
    esac
}

# phase SYS KIND N: all N agents (views VIEWS[0..N-1]) do KIND at once.
# Records the aggregate (all agents' work over the time from the first start
# to the last end) and, for more than one agent, the slowest agent's rate and
# the mean of the agents' rates.
phase() {
    local sys=$1 kind=$2 n=$3 i pids=() fail=0 dir=$WORK/phase
    rm -rf "$dir"; mkdir -p "$dir"
    case $kind in seq | rand | find) drop_caches ;; esac
    for ((i = 0; i < n; i++)); do
        agent_job "$kind" "${VIEWS[$i]}" "$i" "$dir/$i" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail=1; done
    ((fail == 0)) || die "$sys: workload 7, $kind with $n agents failed"
    local stats agg mn mean
    stats=$(cat "$dir"/* | awk -v w="$(agent_work "$kind")" '
        { if (NR == 1 || $1 < t0) t0 = $1; if (NR == 1 || $2 > t1) t1 = $2
          r = w / ($2 - $1); sum += r; if (NR == 1 || r < mn) mn = r }
        END { printf "%.6g %.6g %.6g", NR * w / (t1 - t0), mn, sum / NR }')
    read -r agg mn mean <<<"$stats"
    record "w7_${kind}_$n" "$sys" "$agg"
    if ((n > 1)); then
        record "w7min_$kind" "$sys" "$mn"
        record "w7mean_$kind" "$sys" "$mean"
        record "w7fair_$kind" "$sys" "$(awk -v a="$mn" -v b="$mean" 'BEGIN { printf "%.3f", a / b }')"
    fi
}

# One agent, then AGENTS agents, each set on fresh mounts: for lanefs the
# agents of one volume (the first mount starts the daemon, the others join
# it), for the peers one mount each over the same lower (branch).
run_agents() {
    local sys=$1 r=$2 n i kind listed
    for n in 1 "$AGENTS"; do
        log "run $r/$RUNS: $sys, $n agent(s) at once"
        VIEWS=()
        for ((i = 0; i < n; i++)); do
            mount_view "$sys" "r$r-n$n-a$i"
            VIEWS+=("$VIEW")
        done
        if [[ $sys == lanefs ]]; then
            listed=$(timeout 30 "$LANEFS" status "$STATE" --json | grep -c '"agent":' || true)
            [[ $listed -eq $n ]] || die "lanefs: the daemon serves $listed agents, expected $n"
        fi
        for kind in seq rand small find; do
            phase "$sys" "$kind" "$n"
        done
        for ((i = 0; i < n; i++)); do
            umount_view "$sys" "r$r-n$n-a$i"
        done
    done
}

# --- report ------------------------------------------------------------------

# Rows of the main table, in order (dir_of below says which way is better).
WORKLOADS=(seq_cold seq_warm rand1_cold rand1_warm rand4_cold rand4_warm small_new small_lower
           find_cold find_warm untar rmrf append overwrite
           w7_seq_1 "w7_seq_$AGENTS" w7_rand_1 "w7_rand_$AGENTS" w7_small_1 "w7_small_$AGENTS"
           w7_find_1 "w7_find_$AGENTS")
TREE_N=$((TREE_DIRS * TREE_FILES))
SLICE_MB_LABEL="$((BIG_MB / AGENTS)) MiB"
declare -A LABEL=(
    [seq_cold]="1 sequential read ${BIG_MB} MiB, cold (MB/s)"
    [seq_warm]="1 sequential read ${BIG_MB} MiB, warm (MB/s)"
    [rand1_cold]="2 4 KiB random read x${RAND_COUNT}, 1 job, cold (IOPS)"
    [rand1_warm]="2 4 KiB random read x${RAND_COUNT}, 1 job, warm (IOPS)"
    [rand4_cold]="2 4 KiB random read x${RAND_COUNT}, ${RAND_JOBS} jobs, cold (IOPS)"
    [rand4_warm]="2 4 KiB random read x${RAND_COUNT}, ${RAND_JOBS} jobs, warm (IOPS)"
    [small_new]="3 create+write+close+unlink ${SMALL_COUNT} x 4 KiB, new dir (files/s)"
    [small_lower]="3 create+write+close+unlink ${SMALL_COUNT} x 4 KiB, lower dir (files/s)"
    [find_cold]="4 find+stat ${TREE_N} files, cold (s)"
    [find_warm]="4 find+stat ${TREE_N} files, warm (s)"
    [untar]="5 untar ${SRC_FILES} files (s)"
    [rmrf]="5 rm -rf of them (s)"
    [append]="6 append 1 byte to ${BIG_MB} MiB lower file (s)"
    [overwrite]="6 overwrite 4 KiB in its middle (s)"
    [w7_seq_1]="7 1 agent: seq read ${SLICE_MB_LABEL}, cold (MB/s)"
    [w7_seq_$AGENTS]="7 ${AGENTS} agents: seq read ${SLICE_MB_LABEL} each, cold (MB/s)"
    [w7_rand_1]="7 1 agent: random read x${AGENT_RAND}, cold (IOPS)"
    [w7_rand_$AGENTS]="7 ${AGENTS} agents: random read x${AGENT_RAND} each, cold (IOPS)"
    [w7_small_1]="7 1 agent: small files x${AGENT_SMALL} (files/s)"
    [w7_small_$AGENTS]="7 ${AGENTS} agents: small files x${AGENT_SMALL} each (files/s)"
    [w7_find_1]="7 1 agent: find+stat ${TREE_N} files, cold (entries/s)"
    [w7_find_$AGENTS]="7 ${AGENTS} agents: find+stat ${TREE_N} files each, cold (entries/s)"
)
# Short names for the plot.
declare -A SHORT=(
    [seq_cold]="seq cold" [seq_warm]="seq warm" [rand1_cold]="rand1 cold" [rand1_warm]="rand1 warm"
    [rand4_cold]="rand${RAND_JOBS} cold" [rand4_warm]="rand${RAND_JOBS} warm" [small_new]="small new dir"
    [small_lower]="small lower dir" [find_cold]="find cold" [find_warm]="find warm" [untar]="untar"
    [rmrf]="rm -rf" [append]="append 1 B" [overwrite]="overwrite 4K"
    [w7_seq_1]="1 ag seq" [w7_seq_$AGENTS]="${AGENTS} ag seq" [w7_rand_1]="1 ag rand"
    [w7_rand_$AGENTS]="${AGENTS} ag rand" [w7_small_1]="1 ag small" [w7_small_$AGENTS]="${AGENTS} ag small"
    [w7_find_1]="1 ag find" [w7_find_$AGENTS]="${AGENTS} ag find"
)
dir_of() { case $1 in find_* | untar | rmrf | append | overwrite) echo lo ;; *) echo hi ;; esac; }
# mergerfs writes into existing lower data in place in these rows (where the
# overlays copy up first): its figures there carry the marker.
BRANCH_ROWS=" small_lower append overwrite "
MARK="†"

# Numbers are shown with as many digits as they carry meaning.
fmt() {
    awk -v v="$1" 'BEGIN {
        if (v >= 100) printf "%.0f", v
        else if (v >= 10) printf "%.1f", v
        else if (v >= 1) printf "%.2f", v
        else if (v >= 0.001) printf "%.3f", v
        else printf "%.2g", v }'
}

# med KEY SYS: the median of the figure, or n/a.
med() {
    local s=${RES["$1|$2"]:-}
    # shellcheck disable=SC2086
    if [[ -n $s ]]; then median $s; else printf 'n/a'; fi
}

# cell KEY SYS: "median (min-max)", or the median alone for one run.
cell() {
    local s=${RES["$1|$2"]:-} m lo hi
    [[ -n $s ]] || { printf 'n/a'; return; }
    # shellcheck disable=SC2086
    m=$(median $s); lo=$(minof $s); hi=$(maxof $s)
    if [[ $(wc -w <<<"$s") -gt 1 ]]; then
        printf '%s (%s–%s)' "$(fmt "$m")" "$(fmt "$lo")" "$(fmt "$hi")"
    else
        fmt "$m"
    fi
}

# speed KEY A B: how much faster A is than B on the row's figure: A/B for
# rates, B/A for seconds. n/a when a figure is missing or zero.
speed() {
    local a=$2 b=$3 d
    d=$(dir_of "$1")
    [[ $a == n/a || $b == n/a ]] && { printf 'n/a'; return; }
    awk -v a="$a" -v b="$b" -v d="$d" 'BEGIN {
        if (a <= 0 || b <= 0) { printf "n/a"; exit }
        r = (d == "hi") ? a / b : b / a
        if (r >= 100) printf "%.0f", r; else if (r >= 0.01) printf "%.2f", r; else printf "%.2g", r }'
}

# ge X T: X >= T; le X T: X <= T (X may be n/a, which fails).
ge() { [[ $1 != n/a ]] && awk -v x="$1" -v t="$2" 'BEGIN { exit !(x >= t) }'; }
le() { [[ $1 != n/a ]] && awk -v x="$1" -v t="$2" 'BEGIN { exit !(x <= t) }'; }
metword() { if "$@"; then printf 'met'; else printf 'NOT met'; fi; }

# The issue's targets for lanefs. TARGETS collects "what<TAB>measured<TAB>met".
TARGETS=()
target() { TARGETS+=("$1"$'\t'"$2"$'\t'"$3"); }

# Fills ROWS with one tab-separated row per workload: label, the cells of the
# systems, the ratios, the targets of the row.
build_rows() {
    local w s m fo_min
    ROWS=()
    TARGETS=()
    for w in "${WORKLOADS[@]}"; do
        declare -A md=()
        for s in "${ALL_SYSTEMS[@]}"; do md[$s]=$(med "$w" "$s"); done
        local cells=("${LABEL[$w]}") c
        for s in "${SYSTEMS[@]}"; do
            c=$(cell "$w" "$s")
            [[ $s == mergerfs && $BRANCH_ROWS == *" $w "* && $c != n/a ]] && c+=" $MARK"
            cells+=("$c")
        done
        local r_ln r_lf r_mn
        r_ln=$(speed "$w" "${md[lanefs]}" "${md[native]}")
        r_lf=$(speed "$w" "${md[lanefs]}" "${md[fuse-overlayfs]}")
        r_mn=$(speed "$w" "${md[mergerfs]}" "${md[native]}")
        cells+=("$r_ln" "$r_lf" "$r_mn")
        # Targets of this row.
        local t=()
        case $w in
            small_new | small_lower | find_cold | untar | rmrf) fo_min=1.5 ;;
            append) fo_min=50 ;;
            *) fo_min=1 ;;
        esac
        if selected lanefs && selected fuse-overlayfs; then
            t+=("vs fuse-overlayfs ≥ $fo_min: $(metword ge "$r_lf" "$fo_min")")
            target "${SHORT[$w]}: lanefs ≥ ${fo_min}× fuse-overlayfs" "$r_lf" "$(metword ge "$r_lf" "$fo_min")"
        fi
        if selected lanefs && selected native; then
            case $w in
                seq_cold)
                    t+=("vs native ≥ 0.8: $(metword ge "$r_ln" 0.8)")
                    target "seq cold: lanefs ≥ 0.8× native" "$r_ln" "$(metword ge "$r_ln" 0.8)" ;;
                seq_warm)
                    t+=("vs native ≥ 0.9: $(metword ge "$r_ln" 0.9)")
                    target "seq warm: lanefs ≥ 0.9× native" "$r_ln" "$(metword ge "$r_ln" 0.9)" ;;
            esac
        fi
        if [[ $w == overwrite ]] && selected lanefs; then
            m=${md[lanefs]}
            t+=("≤ 10 ms: $(metword le "$m" 0.010)")
            [[ $m == n/a ]] || m="$(fmt "$m") s"
            target "overwrite 4 KiB: lanefs ≤ 10 ms" "$m" "$(metword le "${md[lanefs]}" 0.010)"
        fi
        cells+=("$(IFS=';'; printf '%s' "${t[*]:-}" | sed 's/;/; /g')")
        ROWS+=("$(IFS=$'\t'; printf '%s' "${cells[*]}")")
        unset md
    done
    build_agent_rows
}

# Workload 7 per system: scaling of the aggregate from 1 to AGENTS agents,
# and the slowest agent against the mean.
build_agent_rows() {
    local kind s one many sc mn mean fair
    AROWS=()
    for kind in seq rand small find; do
        for s in "${SYSTEMS[@]}"; do
            one=$(med "w7_${kind}_1" "$s") many=$(med "w7_${kind}_$AGENTS" "$s")
            sc=$(speed "w7_${kind}_1" "$many" "$one")
            mn=$(med "w7min_$kind" "$s") mean=$(med "w7mean_$kind" "$s") fair=$(med "w7fair_$kind" "$s")
            local t=""
            if [[ $s == lanefs ]]; then
                t="min/mean ≥ 0.7: $(metword ge "$fair" 0.7)"
                target "${AGENTS} agents, $kind: slowest lanefs agent ≥ 0.7× the mean" \
                    "$(awk -v v="$fair" 'BEGIN { if (v == "n/a") print v; else printf "%.2f", v }')" "$(metword ge "$fair" 0.7)"
                if [[ $kind == small || $kind == find ]]; then
                    t="${AGENTS}/1 ≥ 1.5: $(metword ge "$sc" 1.5); $t"
                    target "${AGENTS} agents, $kind (metadata): lanefs aggregate ≥ 1.5× one agent's" "$sc" "$(metword ge "$sc" 1.5)"
                fi
            fi
            [[ $fair == n/a ]] || fair=$(awk -v v="$fair" 'BEGIN { printf "%.2f", v }')
            [[ $mn == n/a ]] || mn=$(fmt "$mn")
            [[ $mean == n/a ]] || mean=$(fmt "$mean")
            AROWS+=("$(printf '%s\t%s\t%s\t%s\t%s\t%s\t%s' "$kind" "$s" "$sc" "$mn" "$mean" "$fair" "$t")")
        done
    done
}

ratio_names() {
    printf 'lanefs/native\tlanefs/fuse-overlayfs\tmergerfs/native'
}
header() {
    local h="workload" s
    for s in "${SYSTEMS[@]}"; do h+=$'\t'"$s"; done
    printf '%s\t%s\t%s' "$h" "$(ratio_names)" "targets (lanefs)"
}
AHEADER="phase"$'\t'"system"$'\t'"aggregate $AGENTS agents / 1 agent"$'\t'"slowest agent"$'\t'"mean agent"$'\t'"slowest/mean"$'\t'"targets"

print_table() {
    printf '%s\n' "$(header)" "${ROWS[@]}" | column -t -s $'\t'
    printf '\nWorkload 7, %s agents:\n' "$AGENTS"
    printf '%s\n' "$AHEADER" "${AROWS[@]}" | column -t -s $'\t'
    printf '\nTargets:\n'
    printf '%s\n' "${TARGETS[@]}" | column -t -s $'\t'
}

machine_line() {
    local fstype cpu
    fstype=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    printf '%s cores (%s), %s memory, kernel %s, scratch dir on %s' "$(nproc)" "${cpu:-unknown CPU}" \
        "$(free -h | awk '/^Mem:/ { print $2 }')" "$(uname -r)" "$fstype"
}

# The recorded samples of one figure, formatted, comma separated.
samples() {
    local v out=()
    for v in ${RES["$1|$2"]:-}; do out+=("$(fmt "$v")"); done
    (IFS=,; printf '%s' "${out[*]:-}") | sed 's/,/, /g'
}

version_of() {
    local out
    case $1 in
        fuse-overlayfs) out=$(fuse-overlayfs --version 2>&1 || true); grep -m1 '^fuse-overlayfs' <<<"$out" || echo n/a ;;
        mergerfs) out=$(mergerfs --version 2>&1 || true); grep -m1 '^mergerfs' <<<"$out" || echo n/a ;;
    esac
}

# The commit, marked when fs/, tools/, locks/ or journal/ differ from it:
# then the binary was built from a working tree that no commit names.
lanefs_commit() {
    local c
    c=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
    [[ -z $(git -C "$ROOT" status --porcelain -- fs tools locks journal 2>/dev/null) ]] ||
        c+=" (sources modified)"
    printf '%s' "$c"
}

md_row() { local r=$1; printf '| %s |\n' "${r//$'\t'/ | }"; }

write_markdown() {
    local row w s n ncols
    mkdir -p "$(dirname "$BENCH_OUT")"
    ncols=$((1 + ${#SYSTEMS[@]}))
    {
        printf '<!-- written by tests/bench/bench.sh -->\n'
        printf 'Command: `%s%s`  \n' "$SETTINGS" "$BENCH_CMD"
        printf 'Date: %s  \n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'Machine: %s  \n' "$(machine_line)"
        printf 'lanefs: commit %s; %s; %s (`-o %s`)  \n' "$LANEFS_COMMIT" \
            "$(version_of fuse-overlayfs)" "$(version_of mergerfs)" "$MFS_OPTS"
        printf 'Median of %s run(s), min–max in brackets; whole run %s s\n\n' "$RUNS" "$RUN_SECONDS"
        md_row "$(header)"
        printf '| --- |'; for ((n = 1; n < ncols + 3; n++)); do printf ' ---: |'; done; printf ' --- |\n'
        for row in "${ROWS[@]}"; do md_row "$row"; done
        printf '\nThe first number of a workload is its number in the issue. MB/s, IOPS,\n'
        printf 'files/s and entries/s: higher is better. Seconds: lower is better.\n'
        printf 'Ratios are of speed: above 1 means the first system is faster (for rows in\n'
        printf 'seconds the ratio is the time of the second divided by the time of the first).\n\n'
        printf '%s modifies branch: mergerfs has no copy-on-write. Its writes go into its branch (a\n' "$MARK"
        printf 'copy of the lower made for it alone); in the rows marked, they change existing\n'
        printf 'lower data in place (a directory of the lower, the big file), where the\n'
        printf 'overlays copy up first. In the other write rows it creates new files in the branch.\n'
        if [[ -f $BENCH_PLOT ]]; then
            printf '\n![speed ratios per workload](%s)\n' "$(basename "$BENCH_PLOT")"
        fi
        printf '\nWorkload 7 with %s agents (figures per agent in the unit of the phase):\n\n' "$AGENTS"
        md_row "$AHEADER"
        printf '| --- | --- | ---: | ---: | ---: | ---: | --- |\n'
        for row in "${AROWS[@]}"; do md_row "$row"; done
        printf '\nTargets (lanefs):\n\n| target | measured | |\n| --- | ---: | --- |\n'
        for row in "${TARGETS[@]}"; do md_row "$row"; done
        printf '\n%s of %s targets met.\n' "$(printf '%s\n' "${TARGETS[@]}" | grep -c $'\tmet$' || true)" "${#TARGETS[@]}"
        # The single runs behind each median, so the spread can be judged.
        printf '\nAll runs, in order:\n\n'
        printf '| workload | system | runs |\n| --- | --- | --- |\n'
        for w in "${WORKLOADS[@]}"; do
            for s in "${SYSTEMS[@]}"; do
                printf '| %s | %s | %s |\n' "${LABEL[$w]}" "$s" "$(samples "$w" "$s")"
            done
        done
    } >"$BENCH_OUT"
}

# A bar chart of the speed ratios per workload, log scale, with the line at
# 1 (as fast as the other).
write_plot() {
    command -v gnuplot >/dev/null || return 0
    local dat=$WORK/plot.dat w v1 v2 v3 title name
    : >"$dat"
    for w in "${WORKLOADS[@]}"; do
        v1=$(speed "$w" "$(med "$w" lanefs)" "$(med "$w" native)")
        v2=$(speed "$w" "$(med "$w" lanefs)" "$(med "$w" fuse-overlayfs)")
        v3=$(speed "$w" "$(med "$w" mergerfs)" "$(med "$w" native)")
        name=${SHORT[$w]}
        [[ $BRANCH_ROWS == *" $w "* ]] && name+=" $MARK"
        printf '"%s"\t%s\t%s\t%s\n' "$name" "${v1/n\/a/NaN}" "${v2/n\/a/NaN}" "${v3/n\/a/NaN}" >>"$dat"
    done
    # Without native or fuse-overlayfs there is no ratio to draw.
    if ! awk -F'\t' '$2 != "NaN" || $3 != "NaN" || $4 != "NaN" { found = 1 } END { exit !found }' "$dat"; then
        log "bench: no ratio to plot (the run measured neither native nor fuse-overlayfs)"
        return 0
    fi
    title="${SETTINGS}${BENCH_CMD}, $(date -u '+%Y-%m-%d %H:%M UTC'), median of $RUNS run(s)\\n$(machine_line)"
    title=${title//\"/\'}
    mkdir -p "$(dirname "$BENCH_PLOT")"
    step gnuplot <<EOF || log "bench: gnuplot failed; no plot"
set terminal pngcairo size 1400,650 font "sans,10"
set output "$BENCH_PLOT"
set title "$title" noenhanced
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set ylabel "speed ratio (above 1: first system faster)"
set xtics rotate by -40 scale 0 noenhanced
set grid ytics
set key top left
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 dt 2 lc rgb "black"
set label "$MARK mergerfs modifies its branch (no copy-on-write)" at graph 0.99, graph 0.97 right
plot "$dat" using 2:xtic(1) title "lanefs / native" lc rgb "#1f77b4", \
     "" using 3 title "lanefs / fuse-overlayfs" lc rgb "#ff7f0e", \
     "" using 4 title "mergerfs / native" lc rgb "#2ca02c"
EOF
}

# --- main --------------------------------------------------------------------

main() {
    check_prereqs
    trap cleanup EXIT
    trap on_signal INT TERM

    mkdir -p "$BENCH_TMPDIR"
    # Physical path: mount points are compared with the kernel's table.
    WORK=$(cd "$(mktemp -d "$BENCH_TMPDIR/lanefs-bench.XXXXXX")" && pwd -P)
    [[ $WORK != *[[:space:]]* ]] || die "scratch dir '$WORK' contains a blank; set BENCH_TMPDIR"
    LOWER=$WORK/lower STATE=$WORK/state MNT_ROOT=$WORK/mnt FO_ROOT=$WORK/fo MBRANCH=$WORK/mbranch
    mkdir -p "$LOWER" "$MNT_ROOT" "$FO_ROOT" "$MBRANCH"
    if [[ $(df -T "$WORK" | awk 'NR == 2 { print $2 }') == tmpfs ]]; then
        log "bench: warning: $WORK is on tmpfs; set BENCH_TMPDIR to a directory on disk"
    fi
    # Eight views with a few descriptors each, and the tar and find children.
    ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

    local t_all=$SECONDS
    # Taken now: the report is written at the end, and the tree may have
    # moved on by then.
    LANEFS_COMMIT=$(lanefs_commit)
    build_tool
    if selected lanefs; then
        # Measure one fixed binary: a rebuild of build/lanefs during the run
        # would otherwise change (or, mid-link, break) the system under test.
        mkdir -p "$WORK/bin"
        cp "$LANEFS" "$WORK/bin/lanefs"
        LANEFS=$WORK/bin/lanefs
    fi
    make_lower
    if selected lanefs; then
        "$LANEFS" init "$STATE" --lower "$LOWER" >/dev/null || die "lanefs init failed"
    fi

    local s r t0
    for s in "${SYSTEMS[@]}"; do
        log "checking the $s view"
        verify_view "$s"
    done

    t0=$SECONDS
    # Each workload is taken by every system in turn before the next one,
    # and the order of the systems rotates from run to run: this disk's speed
    # drifts by a factor of two within minutes, so a system measured a minute
    # later than another, or always second, would carry that drift in its
    # ratios. Taken in turns, neighbouring columns of a row are seconds
    # apart, and no system is always first.
    local w n=${#SYSTEMS[@]} k
    for ((r = 1; r <= RUNS; r++)); do
        for w in reads files find append overwrite agents; do
            for ((k = 0; k < n; k++)); do
                s=${SYSTEMS[$(((k + r - 1) % n))]}
                log "run $r/$RUNS: $w, $s ($((SECONDS - t0)) s)"
                "run_$w" "$s" "$r"
            done
        done
    done
    log "measured in $((SECONDS - t0)) s"
    RUN_SECONDS=$((SECONDS - t_all))

    build_rows
    print_table
    rm -f "$BENCH_PLOT"
    write_plot
    write_markdown
    log "table written to $BENCH_OUT"
    [[ ! -f $BENCH_PLOT ]] || log "plot written to $BENCH_PLOT"
}

main "$@"
