#!/usr/bin/env bash
# bench.sh - lanefs side by side with the native filesystem and fuse-overlayfs.
#
# All three are measured in one run, on this machine, over the same lower
# data, so the ratios compare like with like:
#   native          the lower directory itself (plain directory, same disk)
#   lanefs          one agent's view of a volume whose lower is that directory
#   fuse-overlayfs  lowerdir=that directory, upperdir/workdir beside it
#
# Workloads (median of BENCH_RUNS runs each):
#   seq read   read a 1 GiB lower file start to end, cold and warm     MB/s
#   rand read  20,000 aligned 4 KiB preads of it, cold and warm        IOPS
#   small      create+write 4 KiB+close 10,000 files, then unlink all  files/s
#   find       find + stat over a lower tree of 20,000 files           seconds
#   append     append 1 byte to the 1 GiB lower file (copy-up)         seconds
#
# Environment:
#   LANEFS        path of the lanefs binary (default: build/lanefs)
#   BENCH_ONLY    comma list of systems to run (default: native,lanefs,fuse-overlayfs)
#   BENCH_OUT     markdown table output (default: build/bench.md)
#   BENCH_TMPDIR  where the scratch dir is made (default: build/; keep it on
#                 a real disk, not tmpfs, or "native" measures memory)
#   BENCH_RUNS, BENCH_BIG_MB, BENCH_RAND_COUNT, BENCH_SMALL_COUNT,
#   BENCH_TREE_DIRS, BENCH_TREE_FILES, BENCH_STEP_TIMEOUT: sizes and limits,
#   smaller values make a quick trial run.
#
# Must run as root (mounts, drop_caches). Everything lives under one mktemp
# dir that is removed at the end; every mount is unmounted, also on error or
# Ctrl-C.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

LANEFS=${LANEFS:-$ROOT/build/lanefs}
BUILD_DIR=$ROOT/build
BENCH_ONLY=${BENCH_ONLY:-native,lanefs,fuse-overlayfs}
BENCH_OUT=${BENCH_OUT:-$BUILD_DIR/bench.md}
BENCH_TMPDIR=${BENCH_TMPDIR:-$BUILD_DIR}
RUNS=${BENCH_RUNS:-3}
BIG_MB=${BENCH_BIG_MB:-1024}
RAND_COUNT=${BENCH_RAND_COUNT:-20000}
SMALL_COUNT=${BENCH_SMALL_COUNT:-10000}
TREE_DIRS=${BENCH_TREE_DIRS:-200}
TREE_FILES=${BENCH_TREE_FILES:-100}
STEP_TIMEOUT=${BENCH_STEP_TIMEOUT:-300}
MOUNT_TIMEOUT=30
RAND_SEED=42

ALL_SYSTEMS=(native lanefs fuse-overlayfs)
SYSTEMS=()          # the systems this run measures, in column order
WORK=""             # the one scratch directory; everything goes below it
LOWER="" STATE="" MNT_ROOT="" FO_ROOT=""
TOOL=""             # compiled benchtool
MOUNTED=()          # "system mountpoint" of every live mount, for cleanup
VIEW=""             # root of the view that mount_view set up last
declare -A RES      # "workload|system" -> space-separated samples

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
    sync
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
              else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

record() { RES["$1|$2"]+="$3 "; }

# Runs one timed step with a deadline, so a wedged filesystem costs at most
# STEP_TIMEOUT instead of the whole run.
step() { timeout "$STEP_TIMEOUT" "$@"; }

selected() { [[ ",$BENCH_ONLY," == *",$1,"* ]]; }

# --- setup -------------------------------------------------------------------

check_prereqs() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (mounts, drop_caches)"
    local s k known
    for s in ${BENCH_ONLY//,/ }; do
        known=0
        for k in "${ALL_SYSTEMS[@]}"; do [[ $s == "$k" ]] && known=1; done
        ((known)) || die "unknown system '$s' in BENCH_ONLY (known: ${ALL_SYSTEMS[*]})"
    done
    for s in "${ALL_SYSTEMS[@]}"; do
        selected "$s" && SYSTEMS+=("$s")
    done
    ((${#SYSTEMS[@]} > 0)) || die "BENCH_ONLY selects nothing"
    if selected lanefs || selected fuse-overlayfs; then
        [[ -c /dev/fuse ]] || die "/dev/fuse is missing"
    fi
    if selected lanefs; then
        [[ -x $LANEFS ]] || die "lanefs binary '$LANEFS' not found (run 'make all', or BENCH_ONLY=native,fuse-overlayfs)"
    fi
    if selected fuse-overlayfs; then
        command -v fuse-overlayfs >/dev/null || die "fuse-overlayfs is not installed (apt-get install fuse-overlayfs)"
    fi
    command -v cc >/dev/null || die "no C compiler (apt-get install build-essential)"
}

build_tool() {
    mkdir -p "$BUILD_DIR/bench"
    TOOL=$BUILD_DIR/bench/benchtool
    cc -O2 -std=c11 -Wall -Wextra -Werror -o "$TOOL" "$SCRIPT_DIR/benchtool.c"
}

make_lower() {
    log "creating lower data: ${BIG_MB} MiB file, tree of $((TREE_DIRS * TREE_FILES)) files"
    mkdir -p "$LOWER/tree"
    # Random content, so no layer can shortcut zero pages or compress.
    dd if=/dev/urandom of="$LOWER/big.bin" bs=1M count="$BIG_MB" status=none
    "$TOOL" mktree "$LOWER/tree" "$TREE_DIRS" "$TREE_FILES"
    BIG_SIZE=$(stat -c %s "$LOWER/big.bin")
    sync
}

# --- views -------------------------------------------------------------------

# mount_view SYSTEM TAG: makes a fresh view of the lower (fresh upper, fresh
# daemon) and sets VIEW to its root. TAG names the view; it is a valid agent
# name, so it doubles as the lanefs agent.
mount_view() {
    local sys=$1 tag=$2 mnt
    case $sys in
        native)
            VIEW=$LOWER
            return 0 ;;
        lanefs)
            mnt=$MNT_ROOT/lanefs-$tag
            mkdir -p "$mnt"
            MOUNTED+=("$sys $mnt")
            timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$STATE" --agent "$tag" "$mnt" >/dev/null ||
                die "lanefs mount of agent $tag failed"
            ;;
        fuse-overlayfs)
            mnt=$MNT_ROOT/fo-$tag
            mkdir -p "$mnt" "$FO_ROOT/$tag/upper" "$FO_ROOT/$tag/work"
            MOUNTED+=("$sys $mnt")
            # Its stderr goes to a log: it warns about every mount option
            # of the host it does not know, which is noise here.
            timeout "$MOUNT_TIMEOUT" fuse-overlayfs \
                -o "lowerdir=$LOWER,upperdir=$FO_ROOT/$tag/upper,workdir=$FO_ROOT/$tag/work" "$mnt" \
                2>>"$WORK/fuse-overlayfs.log" ||
                die "fuse-overlayfs mount $tag failed: $(tail -n 3 "$WORK/fuse-overlayfs.log")"
            ;;
    esac
    is_mounted "$mnt" || die "$sys view $tag is not mounted at $mnt"
    VIEW=$mnt
}

# umount_view SYSTEM TAG: unmounts the view and drops its private layers, so
# copied-up gigabytes do not pile up over the runs.
umount_view() {
    local sys=$1 tag=$2 mnt="" i
    case $sys in
        native) return 0 ;;
        lanefs) mnt=$MNT_ROOT/lanefs-$tag ;;
        fuse-overlayfs) mnt=$MNT_ROOT/fo-$tag ;;
    esac
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
    local sys=$1
    mount_view "$sys" verify
    [[ $(stat -c %s "$VIEW/big.bin") == "$BIG_SIZE" ]] || die "$sys: big.bin has the wrong size"
    cmp -s "$LOWER/big.bin" "$VIEW/big.bin" || die "$sys: big.bin differs from the lower"
    umount_view "$sys" verify
}

# --- workloads ---------------------------------------------------------------

# Reads and small files share one mount: none of them leaves private state
# behind that would change the next one.
run_io() {
    local sys=$1 r=$2 tag="r$2-io" v
    mount_view "$sys" "$tag"
    drop_caches
    v=$(step "$TOOL" seqread "$VIEW/big.bin");  record seq_cold "$sys" "$v"
    v=$(step "$TOOL" seqread "$VIEW/big.bin");  record seq_warm "$sys" "$v"
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$RAND_SEED"); record rand_warm "$sys" "$v"
    drop_caches
    v=$(step "$TOOL" randread "$VIEW/big.bin" "$RAND_COUNT" "$((RAND_SEED + r))"); record rand_cold "$sys" "$v"
    mkdir "$VIEW/small-$tag"
    v=$(step "$TOOL" smallfiles "$VIEW/small-$tag" "$SMALL_COUNT"); record small "$sys" "$v"
    rmdir "$VIEW/small-$tag"
    umount_view "$sys" "$tag"
}

# find with -printf %s needs a stat of every entry; the count check makes sure
# the view lists the whole tree.
time_find() {
    local t0 t1 n
    t0=$(now)
    n=$(step find "$VIEW/tree" -printf '%s %m\n' | wc -l)
    t1=$(now)
    [[ $n -eq $((TREE_DIRS * TREE_FILES + TREE_DIRS + 1)) ]] ||
        die "find saw $n entries, expected $((TREE_DIRS * TREE_FILES + TREE_DIRS + 1))"
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

# Copy-up of a big file: fresh mount and empty upper each time, cold cache so
# the copy reads from disk as it would the first time an agent touches it.
# Timed is open+write+close as the writer sees it; the natively appended byte
# is cut off again so the lower stays the same for the other systems.
run_append() {
    local sys=$1 r=$2 tag="r$2-app" v
    mount_view "$sys" "$tag"
    drop_caches
    v=$(step "$TOOL" append "$VIEW/big.bin"); record append "$sys" "$v"
    [[ $(stat -c %s "$VIEW/big.bin") -eq $((BIG_SIZE + 1)) ]] || die "$sys: append did not grow the file"
    [[ $sys == native ]] && truncate -s "$BIG_SIZE" "$LOWER/big.bin"
    umount_view "$sys" "$tag"
    [[ $(stat -c %s "$LOWER/big.bin") -eq $BIG_SIZE ]] || die "$sys: the lower file changed size"
}

# --- report ------------------------------------------------------------------

WORKLOADS=(seq_cold seq_warm rand_cold rand_warm small find_cold find_warm append)
declare -A LABEL=(
    [seq_cold]="sequential read ${BIG_MB} MiB, cold (MB/s)"
    [seq_warm]="sequential read ${BIG_MB} MiB, warm (MB/s)"
    [rand_cold]="4 KiB random read x${RAND_COUNT}, cold (IOPS)"
    [rand_warm]="4 KiB random read x${RAND_COUNT}, warm (IOPS)"
    [small]="create+write+close+unlink ${SMALL_COUNT} x 4 KiB (files/s)"
    [find_cold]="find+stat $((TREE_DIRS * TREE_FILES)) files, cold (s)"
    [find_warm]="find+stat $((TREE_DIRS * TREE_FILES)) files, warm (s)"
    [append]="append 1 byte to ${BIG_MB} MiB file, copy-up (s)"
)

# Numbers are shown with as many digits as they carry meaning.
fmt() {
    awk -v v="$1" 'BEGIN {
        if (v >= 100) printf "%.0f", v
        else if (v >= 10) printf "%.1f", v
        else if (v >= 1) printf "%.2f", v
        else if (v >= 0.001) printf "%.3f", v
        else printf "<0.001" }'
}

# ratio A B: A/B, or n/a when either is missing or B is too small to divide by.
ratio() {
    [[ $1 == n/a || $2 == n/a ]] && { printf 'n/a'; return; }
    awk -v a="$1" -v b="$2" 'BEGIN { if (b < 0.001 || a < 0.001) printf "n/a"; else printf "%.2f", a / b }'
}

# Fills ROWS with one tab-separated row per workload: label, three medians,
# two ratios.
build_rows() {
    local w s m
    ROWS=()
    for w in "${WORKLOADS[@]}"; do
        declare -A med=()
        for s in "${ALL_SYSTEMS[@]}"; do
            if [[ -n ${RES["$w|$s"]:-} ]]; then
                # shellcheck disable=SC2086
                m=$(median ${RES["$w|$s"]})
                med[$s]=$m
            else
                med[$s]=n/a
            fi
        done
        local cells=("${LABEL[$w]}")
        for s in "${ALL_SYSTEMS[@]}"; do
            if [[ ${med[$s]} == n/a ]]; then cells+=(n/a); else cells+=("$(fmt "${med[$s]}")"); fi
        done
        cells+=("$(ratio "${med[lanefs]}" "${med[native]}")")
        cells+=("$(ratio "${med[lanefs]}" "${med[fuse-overlayfs]}")")
        ROWS+=("$(IFS=$'\t'; printf '%s' "${cells[*]}")")
        unset med
    done
}

HEADER=$'workload\tnative\tlanefs\tfuse-overlayfs\tlanefs/native\tlanefs/fuse-overlayfs'

print_table() {
    printf '%s\n' "$HEADER" "${ROWS[@]}" | column -t -s $'\t'
}

machine_line() {
    local fstype
    fstype=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
    printf '%s cores, %s memory, kernel %s, scratch dir on %s' "$(nproc)" \
        "$(free -h | awk '/^Mem:/ { print $2 }')" "$(uname -r)" "$fstype"
}

# The recorded samples of one figure, formatted, comma separated.
samples() {
    local v out=()
    for v in ${RES["$1|$2"]:-}; do out+=("$(fmt "$v")"); done
    (IFS=,; printf '%s' "${out[*]}") | sed 's/,/, /g'
}

fo_version() {
    local out
    out=$(fuse-overlayfs --version 2>&1 || true)
    grep -m1 '^fuse-overlayfs' <<<"$out" || echo n/a
}

write_markdown() {
    local row
    mkdir -p "$(dirname "$BENCH_OUT")"
    {
        printf '<!-- written by tests/bench/bench.sh -->\n'
        printf 'Date: %s  \n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'Machine: %s  \n' "$(machine_line)"
        printf 'fuse-overlayfs: %s  \n' "$(fo_version)"
        printf 'Median of %s runs; systems measured: %s\n\n' "$RUNS" "${SYSTEMS[*]}"
        printf '| %s |\n' "${HEADER//$'\t'/ | }"
        printf '| --- | ---: | ---: | ---: | ---: | ---: |\n'
        for row in "${ROWS[@]}"; do
            printf '| %s |\n' "${row//$'\t'/ | }"
        done
        printf '\nMB/s, IOPS and files/s: higher is better. Seconds: lower is better.\n'
        printf 'Ratios divide the figures as shown, so for seconds a ratio above 1 means lanefs is slower.\n'
        # The single runs behind each median, so the spread can be judged.
        printf '\nAll runs, in order:\n\n'
        printf '| workload | system | runs |\n| --- | --- | --- |\n'
        local w s
        for w in "${WORKLOADS[@]}"; do
            for s in "${SYSTEMS[@]}"; do
                printf '| %s | %s | %s |\n' "${LABEL[$w]}" "$s" "$(samples "$w" "$s")"
            done
        done
    } >"$BENCH_OUT"
}

# --- main --------------------------------------------------------------------

main() {
    check_prereqs
    trap cleanup EXIT
    trap on_signal INT TERM

    mkdir -p "$BENCH_TMPDIR"
    # Physical path: mount points are compared with the kernel's table.
    WORK=$(cd "$(mktemp -d "$BENCH_TMPDIR/lanefs-bench.XXXXXX")" && pwd -P)
    LOWER=$WORK/lower STATE=$WORK/state MNT_ROOT=$WORK/mnt FO_ROOT=$WORK/fo
    mkdir -p "$LOWER" "$MNT_ROOT" "$FO_ROOT"
    if [[ $(df -T "$WORK" | awk 'NR == 2 { print $2 }') == tmpfs ]]; then
        log "bench: warning: $WORK is on tmpfs; set BENCH_TMPDIR to a directory on disk"
    fi

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
    # Runs are interleaved across systems, so a drift of the machine over the
    # run (other load, disk state) spreads over all columns alike.
    for ((r = 1; r <= RUNS; r++)); do
        for s in "${SYSTEMS[@]}"; do
            log "run $r/$RUNS: $s"
            run_io "$s" "$r"
            run_find "$s" "$r"
            run_append "$s" "$r"
        done
    done
    log "measured in $((SECONDS - t0)) s"

    build_rows
    print_table
    write_markdown
    log "table written to $BENCH_OUT"
}

main "$@"
