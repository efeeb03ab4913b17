#!/usr/bin/env bash
# engine_ab.sh - one agent's reads through the read engine against the read
# path before it (LANEFS_READ_ENGINE=off: the worker reads shared data
# itself), on the same lower file, in alternating runs.
#
# Each round mounts a fresh volume twice, once with the engine on and once
# off (the order alternates between rounds, so neither always goes first),
# and runs on a cold page cache, with the benchmark tool of `make bench`:
#   rand1  4 KiB random preads of the 1 GiB lower file, 1 job     IOPS
#   rand4  the same with 4 jobs                                   IOPS
#   seq    sequential read of the whole file                      MB/s
# It prints, per workload, the median of the rounds with min-max for each
# side, the ratio of the medians, and the median of the per-round ratios
# (on / off of the same round, the measure least moved by the disk's drift).
#
# Environment:
#   LANEFS             lanefs binary (default: build/lanefs)
#   AB_ROUNDS          rounds (default 8)
#   AB_BIG_MB          size of the lower file in MiB (default 1024)
#   AB_RAND            random reads per run (default 20000)
#   AB_OUT             markdown table (default: build/engine_ab.md)
#   AB_TMPDIR          where the scratch dir is made (default: build/)
#
# Must run as root (it drops the page cache and mounts). Everything lives in
# one mktemp dir, removed at the end; mounts are undone on every exit path.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
LANEFS=${LANEFS:-$ROOT/build/lanefs}
TOOL=$ROOT/build/bench/benchtool
ROUNDS=${AB_ROUNDS:-8}
BIG_MB=${AB_BIG_MB:-1024}
RAND=${AB_RAND:-20000}
OUT=${AB_OUT:-$ROOT/build/engine_ab.md}
TMPDIR_BASE=${AB_TMPDIR:-$ROOT/build}
TIMEOUT=60
WORK=""
MNT=""

die() { echo "engine_ab.sh: $*" >&2; exit 1; }

is_mounted() {
    awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

unmount_view() {
    [[ -n $MNT ]] && is_mounted "$MNT" || return 0
    timeout "$TIMEOUT" "$LANEFS" umount "$MNT" >/dev/null 2>&1 || umount -l "$MNT" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    unmount_view
    if [[ -n $WORK && -d $WORK ]]; then
        if awk -v w="$WORK/" 'index($2, w) == 1 { found = 1 } END { exit !found }' /proc/self/mounts; then
            echo "engine_ab.sh: a mount below $WORK is still there; leaving it" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(id -u) -eq 0 ]] || die "run as root (it drops the page cache and mounts)"
[[ -x $LANEFS ]] || die "$LANEFS is not an executable (make all)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "AB_ROUNDS must be a positive integer, not '$ROUNDS'"
[[ $BIG_MB =~ ^[1-9][0-9]*$ ]] || die "AB_BIG_MB must be a positive integer, not '$BIG_MB'"
[[ $RAND =~ ^[1-9][0-9]*$ ]] || die "AB_RAND must be a positive integer, not '$RAND'"

mkdir -p "$TMPDIR_BASE" "$(dirname "$TOOL")"
cc -O2 -std=c11 -Wall -Wextra -Werror -pthread -o "$TOOL" "$SCRIPT_DIR/benchtool.c"
WORK=$(mktemp -d "$TMPDIR_BASE/engine_ab.XXXXXX")
mkdir -p "$WORK/lower" "$WORK/m"
MNT=$WORK/m
echo "engine_ab.sh: creating a ${BIG_MB} MiB lower file" >&2
dd if=/dev/urandom of="$WORK/lower/big.bin" bs=1M count="$BIG_MB" status=none
sync

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# run_side on|off: a fresh volume and mount, then the three workloads, each
# on a cold cache. Appends "workload side value" lines to $WORK/results.
run_side() {
    local side=$1 v
    rm -rf "$WORK/state"
    "$LANEFS" init "$WORK/state" --lower "$WORK/lower" >/dev/null
    if [[ $side == off ]]; then
        LANEFS_READ_ENGINE=off timeout "$TIMEOUT" "$LANEFS" mount "$WORK/state" --agent a "$MNT" >/dev/null
    else
        env -u LANEFS_READ_ENGINE timeout "$TIMEOUT" "$LANEFS" mount "$WORK/state" --agent a "$MNT" >/dev/null
    fi
    is_mounted "$MNT" || die "mount with the engine $side failed"
    drop_caches
    v=$("$TOOL" randread "$MNT/big.bin" "$RAND" $((round * 7 + 1)) 1); echo "rand1 $side $v" >>"$WORK/results"
    drop_caches
    v=$("$TOOL" randread "$MNT/big.bin" "$RAND" $((round * 7 + 2)) 4); echo "rand4 $side $v" >>"$WORK/results"
    drop_caches
    v=$("$TOOL" seqread "$MNT/big.bin"); echo "seq $side $v" >>"$WORK/results"
    unmount_view
    is_mounted "$MNT" && die "the mount with the engine $side did not go"
    return 0
}

: >"$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    echo "engine_ab.sh: round $round of $ROUNDS" >&2
    if ((round % 2)); then run_side on; run_side off; else run_side off; run_side on; fi
done

# Per workload: medians, min-max, ratio of medians, median per-round ratio.
{
    echo "One agent, cold cache, ${BIG_MB} MiB lower file, $ROUNDS alternating rounds;"
    echo "engine on: this build; off: \`LANEFS_READ_ENGINE=off\` (the read path before the engine)."
    echo "Command: \`make bench-engine\`; $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r)."
    echo
    echo "| workload | engine on: median (min–max) | off: median (min–max) | on/off of medians | median of per-round on/off |"
    echo "|---|---|---|---|---|"
    awk -v rounds="$ROUNDS" '
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        { k = $1 SUBSEP $2; n[k]++; v[k, n[k]] = $3 }
        END {
            split("rand1 rand4 seq", ws, " ")
            split("IOPS IOPS MB/s", us, " ")
            for (w = 1; w <= 3; w++) {
                on = ws[w] SUBSEP "on"; off = ws[w] SUBSEP "off"
                delete a; delete b; delete r
                for (i = 1; i <= n[on]; i++) a[i] = v[on, i]
                for (i = 1; i <= n[off]; i++) b[i] = v[off, i]
                for (i = 1; i <= n[on] && i <= n[off]; i++) r[i] = v[on, i] / v[off, i]
                mo = median(a, n[on]); mf = median(b, n[off]); mr = median(r, n[on] < n[off] ? n[on] : n[off])
                printf "| %s (%s) | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) | %.2f | %.2f |\n",
                       ws[w], us[w], mo, a[1], a[n[on]], mf, b[1], b[n[off]], mo / mf, mr
            }
        }' "$WORK/results"
} >"$OUT"
cat "$OUT"
