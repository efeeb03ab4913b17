#!/usr/bin/env bash
# engine_ab.sh - one agent's reads through the read engine against the read
# path before it (LANEFS_READ_ENGINE=off: the worker reads shared data
# itself), side by side in the same run. With AB_BASE_COMMIT the other side
# is instead lanefs as built at that commit (say, the last one before the
# engine), with its own read path.
#
# Each round mounts two fresh volumes at once, one with the engine on and
# one with it off, each over its own copy of the same 1 GiB lower file (the
# copies trade places every round, so where a copy lies on the disk favours
# neither side). Each workload then runs on a cold page cache against both
# mounts in turns, A B B A A B ... (benchtool pair), so that a drift of the
# virtual disk's speed, which moves single runs by tens of per cent from one
# minute to the next, falls on both sides alike:
#   rand1  4 KiB random preads of the lower file, 1 job           IOPS
#   rand4  the same with 4 jobs                                   IOPS
#   seq    sequential read of the whole file                      MB/s
# Both sides read the same offsets, each in its own copy. It prints, per
# workload, the median of the rounds with min-max for each side, the ratio
# of the medians, and the median of the per-round ratios.
#
# Environment:
#   LANEFS             lanefs binary (default: build/lanefs)
#   AB_ROUNDS          rounds (default 24)
#   AB_BIG_MB          size of the lower file in MiB (default 1024)
#   AB_RAND            random reads per side and run (default 20000)
#   AB_TURNS           turns per side and run (default 20)
#   AB_CONTROL         1: the "off" side runs with the engine on too, to show
#                      how far apart two identical sides come out
#   AB_BASE_COMMIT     a commit of this repository: the "off" side runs lanefs
#                      built from it (git archive into the scratch dir, make)
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
ROUNDS=${AB_ROUNDS:-24}
BIG_MB=${AB_BIG_MB:-1024}
RAND=${AB_RAND:-20000}
TURNS=${AB_TURNS:-20}
CONTROL=${AB_CONTROL:-0}
BASE_COMMIT=${AB_BASE_COMMIT:-}
OUT=${AB_OUT:-$ROOT/build/engine_ab.md}
TMPDIR_BASE=${AB_TMPDIR:-$ROOT/build}
TIMEOUT=60
WORK=""

die() { echo "engine_ab.sh: $*" >&2; exit 1; }

is_mounted() {
    awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts
}

# unmount_view DIR [BINARY]
unmount_view() {
    is_mounted "$1" || return 0
    timeout "$TIMEOUT" "${2:-$LANEFS}" umount "$1" >/dev/null 2>&1 || umount -l "$1" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [[ -n $WORK && -d $WORK ]]; then
        unmount_view "$WORK/m-on"
        unmount_view "$WORK/m-off" "${BIN[off]:-}"
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
[[ $TURNS =~ ^[1-9][0-9]*$ ]] || die "AB_TURNS must be a positive integer, not '$TURNS'"
((RAND >= TURNS * 4)) || die "AB_RAND ($RAND) must be at least 4 reads per turn (AB_TURNS=$TURNS)"
[[ $CONTROL == 0 || $CONTROL == 1 ]] || die "AB_CONTROL must be 0 or 1, not '$CONTROL'"
if [[ -n $BASE_COMMIT ]]; then
    ((CONTROL == 0)) || die "AB_CONTROL=1 and AB_BASE_COMMIT exclude each other"
    BASE_COMMIT=$(git -C "$ROOT" rev-parse --verify --quiet "$BASE_COMMIT^{commit}") ||
        die "AB_BASE_COMMIT '${AB_BASE_COMMIT}' is not a commit of $ROOT"
fi

mkdir -p "$TMPDIR_BASE" "$(dirname "$TOOL")"
cc -O2 -std=c11 -Wall -Wextra -Werror -pthread -o "$TOOL" "$SCRIPT_DIR/benchtool.c"
WORK=$(mktemp -d "$TMPDIR_BASE/engine_ab.XXXXXX")
mkdir -p "$WORK/lower1" "$WORK/lower2" "$WORK/m-on" "$WORK/m-off"
echo "engine_ab.sh: creating two copies of a ${BIG_MB} MiB lower file" >&2
dd if=/dev/urandom of="$WORK/lower1/big.bin" bs=1M count="$BIG_MB" status=none
cp "$WORK/lower1/big.bin" "$WORK/lower2/big.bin"
sync

# The binary each side runs (and is unmounted with).
declare -A BIN=([on]=$LANEFS [off]=$LANEFS)
if [[ -n $BASE_COMMIT ]]; then
    echo "engine_ab.sh: building lanefs at ${BASE_COMMIT:0:7}" >&2
    mkdir "$WORK/base"
    git -C "$ROOT" archive "$BASE_COMMIT" | tar -x -C "$WORK/base"
    make -C "$WORK/base" -j"$(nproc)" all >"$WORK/base.log" 2>&1 ||
        die "building ${BASE_COMMIT:0:7} failed; the end of its log:$(printf '\n'; tail -n 20 "$WORK/base.log")"
    BIN[off]=$WORK/base/build/lanefs
fi

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# mount_side on|off LOWER: a fresh volume over LOWER, mounted at m-on|m-off.
mount_side() {
    local side=$1 lower=$2 engine=on bin=${BIN[$1]}
    [[ $side == off && $CONTROL == 0 && -z $BASE_COMMIT ]] && engine=off
    rm -rf "$WORK/state-$side"
    "$bin" init "$WORK/state-$side" --lower "$lower" >/dev/null
    LANEFS_READ_ENGINE=$engine timeout "$TIMEOUT" "$bin" mount "$WORK/state-$side" \
        --agent a "$WORK/m-$side" >/dev/null
    is_mounted "$WORK/m-$side" || die "mount of the $side side failed"
}

# run_round: both sides mounted at once, the three workloads in turns, each
# on a cold cache. Appends "workload side value" lines to $WORK/results.
run_round() {
    local a=$WORK/m-on/big.bin b=$WORK/m-off/big.bin v
    if ((round % 2)); then
        mount_side on "$WORK/lower1"; mount_side off "$WORK/lower2"
    else
        mount_side on "$WORK/lower2"; mount_side off "$WORK/lower1"
    fi
    drop_caches
    v=$("$TOOL" pair randread "$a" "$b" "$RAND" $((round * 7919 + 1)) 1 "$TURNS")
    echo "rand1 on ${v% *}" >>"$WORK/results"; echo "rand1 off ${v#* }" >>"$WORK/results"
    drop_caches
    v=$("$TOOL" pair randread "$a" "$b" "$RAND" $((round * 7919 + 2)) 4 "$TURNS")
    echo "rand4 on ${v% *}" >>"$WORK/results"; echo "rand4 off ${v#* }" >>"$WORK/results"
    drop_caches
    v=$("$TOOL" pair seqread "$a" "$b" "$TURNS")
    echo "seq on ${v% *}" >>"$WORK/results"; echo "seq off ${v#* }" >>"$WORK/results"
    for side in on off; do
        unmount_view "$WORK/m-$side" "${BIN[$side]}"
        is_mounted "$WORK/m-$side" && die "the mount at m-$side did not go"
    done
    return 0
}

: >"$WORK/results"
for ((round = 1; round <= ROUNDS; round++)); do
    echo "engine_ab.sh: round $round of $ROUNDS" >&2
    run_round
done

# Per workload: medians, min-max, ratio of medians, median per-round ratio.
{
    echo "One agent, cold cache, ${BIG_MB} MiB lower file, $ROUNDS rounds of $TURNS turns per side (A B B A ...);"
    if ((CONTROL)); then
        echo "CONTROL RUN: both sides are this build with the engine on; the table shows how far two identical sides come out."
    elif [[ -n $BASE_COMMIT ]]; then
        echo "engine on: this build; off: lanefs built at commit \`${BASE_COMMIT:0:7}\` (its own read path, AB_BASE_COMMIT)."
    else
        echo "engine on: this build; off: \`LANEFS_READ_ENGINE=off\` (the read path before the engine)."
    fi
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
