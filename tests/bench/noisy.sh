#!/usr/bin/env bash
# noisy.sh - noisy neighbour: read shaping of lanefs next to fuse-overlayfs
# and a plain bind mount, in one run, over the same lower data.
#
# Each system gets 4 mounts of the same lower:
#   lanefs          4 agents (heavy, l1, l2, l3) of one volume, one daemon
#   fuse-overlayfs  4 instances, lowerdir=the lower, own upper/work each
#   bind            4 `mount --bind` of the lower
#
# Phases (NOISY_SECS each; before each the disk is let settle (no write or
# discard for a second) and the page cache is dropped):
#   light-alone   l1..l3 do 4 KiB random reads at NOISY_LIGHT_RATE/s each
#   mixed         both at once: the light agents' latency next to the heavy
#                 These two are taken in NOISY_TURNS turns each, alone and
#                 mixed alternating (A M M A A M ...), after one turn alone
#                 that is not counted (a warm-up), and each light
#                 agent's samples of all turns of one kind are pooled: this
#                 virtual disk's small-read latency drifts by several times
#                 from one minute to the next, and two phases one after the
#                 other put that drift into the ratio of their p99s
#   heavy-alone   heavy reads sequentially flat out with NOISY_JOBS readers
#   jain          heavy, l1, l2 all stream (NOISY_JOBS readers each); on lanefs with
#                 weights 100/200/300 (`lanefs agent set`), the peers have
#                 no weights, so their index is over the same weights
#   limit         (lanefs) l1 with --read-rate NOISY_LIMIT streams next to
#                 the heavy agent, with NOISY_JOBS readers like it: a cap is
#                 measured on an agent that always has a read waiting, else
#                 its own round trips behind the heavy agent's reads, not
#                 the cap, set its rate
#   volume cap    (lanefs) heavy and l1 stream under `lanefs volume set
#                 --volume-read-rate NOISY_VOLCAP`; their sum against the cap
#   unshaped      (lanefs) the heavy agent alone on two fresh daemons side
#                 by side, one volume each over the same lower: one as
#                 shipped, one with LANEFS_READ_ENGINE=off (reads go straight
#                 to the lower), in NOISY_PAIRS pairs of turns, the order
#                 alternating from pair to pair; the figure is the median of
#                 the pairs' ratios (the lower middle one for an even count).
#                 One turn of each, minutes apart, put the disk's drift into
#                 the ratio.
#
# The data is cold: besides the drop before each phase, the load generator
# (noisy_load.c) drops every file it finished (sequential) and every 4 KiB
# block it read (random) from the page cache of the view and of the lower
# file with POSIX_FADV_DONTNEED, so every byte is read from the device once
# per pass whatever the RAM size (the data set, 2.4 GiB, is smaller than the
# RAM of the usual test machine; eviction is what keeps it cold); random
# readers also set POSIX_FADV_RANDOM. Whether the device is what limits a
# system shows in the "3 streams together" row: the bind mount's figure is
# what the device gives; a FUSE system below it is limited by its own
# round trips and the CPU, and then the agents share those, not the device.
#
# Environment:
#   LANEFS            path of the lanefs binary (default: build/lanefs)
#   NOISY_SECS        seconds per phase (default 20)
#   NOISY_TURNS       turns the light-alone and the mixed phase are taken in
#                     (default 4; NOISY_SECS / NOISY_TURNS seconds each, at
#                     least 2)
#   NOISY_JOBS        sequential readers of the heavy agent (default 4)
#   NOISY_PAIRS       pairs of turns of the unshaped comparison (default 3)
#   NOISY_LIGHT_RATE  reads/s of each light agent (default 50)
#   NOISY_LIMIT       --read-rate of the limited agent (default 20M)
#   NOISY_VOLCAP      --volume-read-rate of the volume cap phase (default 100M)
#   NOISY_FILE_MB     size of each of the 12 streamed files (default 192)
#   NOISY_OUT         markdown output (default: build/noisy.md)
#   NOISY_TMPDIR      where the scratch dir is made (default: build/; a real
#                     disk, not tmpfs)
#   NOISY_LOWER       an existing lower made by an earlier run (s/f0..f11 of
#                     NOISY_FILE_MB, r/l1..l3 of 64 MiB) to use instead of
#                     making one; it is not removed
#   NOISY_ONLY        systems to run, comma list (default
#                     lanefs,fuse-overlayfs,bind; lanefs includes the
#                     engine-off run)
#
# Must run as root. Everything lives under one mktemp dir that is removed at
# the end; every mount is unmounted and every process started is killed, also
# on error or Ctrl-C. Run time with the defaults: about 7 minutes.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

LANEFS=${LANEFS:-$ROOT/build/lanefs}
BUILD_DIR=$ROOT/build
SECS=${NOISY_SECS:-20}
TURNS=${NOISY_TURNS:-4}
JOBS=${NOISY_JOBS:-4}
PAIRS=${NOISY_PAIRS:-3}
LIGHT_RATE=${NOISY_LIGHT_RATE:-50}
LIMIT=${NOISY_LIMIT:-20M}
VOLCAP=${NOISY_VOLCAP:-100M}
FILE_MB=${NOISY_FILE_MB:-192}
OUT=${NOISY_OUT:-$BUILD_DIR/noisy.md}
TMPBASE=${NOISY_TMPDIR:-$BUILD_DIR}
ONLY=${NOISY_ONLY:-lanefs,fuse-overlayfs,bind}
MOUNT_TIMEOUT=30
NFILES=12
AGENTS=(heavy l1 l2 l3)
WEIGHTS=(100 200 300)           # of heavy, l1, l2 in the jain phase

WORK="" LOWER="" STATE="" TOOL=""
MOUNTED=()          # "kind mountpoint" of every live mount, for cleanup
PIDS=()             # load generators running
declare -A VIEW     # agent -> root of its view for the system being run
declare -A R        # "system|metric" -> value

log() { printf '%s\n' "$*" >&2; }
die() { log "noisy: $*"; exit 1; }

# --- cleanup -----------------------------------------------------------------

# Looks the mount up in the kernel's table rather than touching the path,
# which could block on a FUSE daemon that no longer answers.
is_mounted() {
    awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/self/mounts
}

unmount_one() {
    local kind=$1 mnt=$2
    is_mounted "$mnt" || return 0
    case $kind in
        lanefs) timeout "$MOUNT_TIMEOUT" "$LANEFS" umount "$mnt" >/dev/null 2>&1 ||
                    umount -l "$mnt" 2>/dev/null || true ;;
        fuse)   timeout "$MOUNT_TIMEOUT" fusermount3 -u "$mnt" 2>/dev/null ||
                    umount -l "$mnt" 2>/dev/null || true ;;
        bind)   umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true ;;
    esac
}

unmount_all() {
    local e
    for e in "${MOUNTED[@]}"; do unmount_one "${e%% *}" "${e#* }"; done
    MOUNTED=()
}

# Runs on every exit path; nothing in it may trip `set -e`.
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    unmount_all
    if [[ -n $WORK && -d $WORK ]]; then
        if awk -v w="$WORK/" 'index($2, w) == 1 { f = 1 } END { exit !f }' /proc/self/mounts; then
            log "noisy: mounts remain below $WORK; not removing it"
        else
            rm -rf --one-file-system "$WORK"
        fi
    fi
    exit "$rc"
}

# --- setup -------------------------------------------------------------------

check_prereqs() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (mounts, drop_caches)"
    [[ -c /dev/fuse ]] || die "/dev/fuse is missing"
    [[ -x $LANEFS ]] || die "lanefs binary '$LANEFS' not found (run 'make all')"
    command -v fuse-overlayfs >/dev/null || die "fuse-overlayfs is not installed"
    command -v cc >/dev/null || die "no C compiler"
    [[ $SECS =~ ^[1-9][0-9]*$ ]] || die "NOISY_SECS must be a positive integer, not '$SECS'"
    [[ $TURNS =~ ^[1-9][0-9]*$ ]] || die "NOISY_TURNS must be a positive integer, not '$TURNS'"
    ((SECS / TURNS >= 2)) || die "NOISY_SECS / NOISY_TURNS must be at least 2 s (now $SECS / $TURNS)"
    [[ $PAIRS =~ ^[1-9][0-9]*$ ]] || die "NOISY_PAIRS must be a positive integer, not '$PAIRS'"
}

build_tool() {
    mkdir -p "$BUILD_DIR/bench"
    TOOL=$BUILD_DIR/bench/noisy_load
    cc -O2 -std=c11 -Wall -Wextra -Werror -pthread -o "$TOOL" "$SCRIPT_DIR/noisy_load.c"
}

# Random content, so nothing can shortcut zero pages.
make_lower() {
    local i
    log "creating lower data: $NFILES x $FILE_MB MiB streamed, 3 x 64 MiB random"
    mkdir -p "$LOWER/s" "$LOWER/r"
    for ((i = 0; i < NFILES; i++)); do
        dd if=/dev/urandom of="$LOWER/s/f$i" bs=1M count="$FILE_MB" status=none
    done
    for i in 1 2 3; do
        dd if=/dev/urandom of="$LOWER/r/l$i" bs=1M count=64 status=none
    done
    sync
}

# settle: waits (at most 60 s) until the scratch dir's disk has completed
# no write and no discard for a whole second. Files deleted shortly before
# (say the scratch data of a run just finished) are discarded for tens of
# seconds on a mount with `discard`: three light agents' p99 alone was
# 75 ms right after a 2 GiB file was deleted, and 0.6-0.7 ms ten seconds
# later (by hand, through lanefs). It did not bring the benchmark's own
# light-alone p99 down: see docs/benchmarks.md.
settle() {
    local st a b i
    st=/sys/class/block/$(basename "$(findmnt -no SOURCE -T "$WORK" 2>/dev/null)" 2>/dev/null)/stat
    [[ -r $st ]] || return 0
    a=$(awk '{ print $5, $12 }' "$st")
    for ((i = 0; i < 60; i++)); do
        sleep 1
        b=$(awk '{ print $5, $12 }' "$st")
        [[ $a == "$b" ]] && return 0
        a=$b
    done
}
drop_caches() { sync; settle; echo 3 >/proc/sys/vm/drop_caches; }

# settle_reads: after a few GiB were written (the lower data, made just
# before the first system's phases) this disk goes on serving small reads
# slowly for a while, though `sync` has returned and nothing is written:
# 4 KiB random reads of the lower, 50/s from each of three readers, had a
# p99 of 64-76 ms in the first 10 s after 2.5 GiB were written and under
# 1 ms from 15 s on. Whichever system ran first paid it in its light-alone
# phase (the lower read directly: 68 ms, lanefs right after: 2.6-3.0 ms;
# the other order: lanefs 72 ms). So before each system's phases the same
# light load probes the lower directly, 2 s at a time, until its p99 is
# under 5 ms (at most 60 s).
settle_reads() {
    local i p=""
    for ((i = 0; i < 30; i++)); do
        drop_caches
        p=$("$TOOL" rand 2 "$LIGHT_RATE" "$LOWER" "$LOWER" r/l1 r/l2 r/l3 |
            awk '$1 == "p99_us" { print $2 }')
        [[ -n $p ]] && ((p < 5000)) && return 0
    done
    log "small reads of the lower did not settle (p99 ${p:-?} us); measuring anyway"
}

# --- views -------------------------------------------------------------------

# mount_system SYS [ENV...]: 4 mounts of the lower for SYS; sets VIEW[agent].
mount_system() {
    local sys=$1 a mnt
    shift
    for a in "${AGENTS[@]}"; do
        mnt=$WORK/mnt/$sys-$a
        mkdir -p "$mnt"
        case $sys in
            lanefs*)
                MOUNTED+=("lanefs $mnt")
                env "$@" timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$STATE" --agent "$a" "$mnt" \
                    >/dev/null || die "lanefs mount of $a failed" ;;
            fuse-overlayfs)
                mkdir -p "$WORK/fo/$a/upper" "$WORK/fo/$a/work"
                MOUNTED+=("fuse $mnt")
                fuse-overlayfs -o "lowerdir=$LOWER,upperdir=$WORK/fo/$a/upper,workdir=$WORK/fo/$a/work" \
                    "$mnt" 2>>"$WORK/fo.log" || die "fuse-overlayfs mount failed" ;;
            bind)
                MOUNTED+=("bind $mnt")
                mount --bind "$LOWER" "$mnt" ;;
        esac
        VIEW[$a]=$mnt
    done
}

# --- load --------------------------------------------------------------------

# Files agent k (0..2) streams in the jain phase: every third, so no two
# agents share a file (and thus pages).
files_of() { local k=$1 i; for ((i = k; i < NFILES; i += 3)); do printf 's/f%d ' "$i"; done; }
all_files() { local i; for ((i = 0; i < NFILES; i++)); do printf 's/f%d ' "$i"; done; }

# start NAME AGENT MODE ARG FILES...: a load generator in the background
# for PHASE_SECS (default NOISY_SECS), its output in $WORK/out/NAME.
start() {
    local name=$1 agent=$2 mode=$3 arg=$4
    shift 4
    "$TOOL" "$mode" "${PHASE_SECS:-$SECS}" "$arg" "$LOWER" "${VIEW[$agent]}" "$@" \
        >"$WORK/out/$name" &
    PIDS+=($!)
}

# Waits for every load generator; one that fails fails the run.
wait_all() {
    local p rc=0
    for p in "${PIDS[@]}"; do wait "$p" || rc=1; done
    PIDS=()
    ((rc == 0)) || die "a load generator failed"
}

val() { awk -v k="$2" '$1 == k { print $2 }' "$WORK/out/$1"; }
mib_per_s() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / s / 1048576 }'; }
mbps() { mib_per_s "$(val "$1" bytes)" "$SECS"; }

light_start() { local i; for i in 1 2 3; do start "$1-l$i" "l$i" rand "$LIGHT_RATE" "r/l$i"; done; }

# light_turns SYS: the light-alone and mixed phases in TURNS turns each,
# A M M A A M ...; each turn's light samples go to $WORK/out/PH-lI.lat, the
# heavy agent's bytes of the mixed turns are summed. The stream and the
# light readers start together, as in one long phase: a stream that ran
# unguarded before the light readers came (a second's head start, tried)
# puts the guard's reaction, the first light reads waiting behind the
# stream's full device queue, into every turn.
light_turns() {
    local sys=$1 t ph i bytes=0
    local PHASE_SECS=$((SECS / TURNS))
    # Turn -1 is a turn alone whose samples are not counted: twice the
    # first turn after the lower was written stalled all three light agents
    # at once (p99 52-73 ms against 1-3 ms in the turns after), which lifts
    # the pooled p99 alone of whichever system runs first.
    for ((t = -1; t < 2 * TURNS; t++)); do
        if ((t < 0)); then ph=warmup
        elif (((t + 1) / 2 % 2 == 0)); then ph=light
        else ph=mixed; fi
        case $ph in
            warmup) log "[$sys] warm-up turn: light alone, not counted" ;;
            light)  log "[$sys] turn $((t + 1)) of $((2 * TURNS)): light alone" ;;
            mixed)  log "[$sys] turn $((t + 1)) of $((2 * TURNS)): heavy + light" ;;
        esac
        drop_caches
        if [[ $ph == mixed ]]; then start mixed-heavy heavy seq "$JOBS" $(all_files); fi
        light_start "$ph"
        wait_all
        log "[$sys]   p99 of l1/l2/l3 in this turn: $(val "$ph-l1" p99_us)/$(val "$ph-l2" p99_us)/$(val "$ph-l3" p99_us) us"
        [[ $ph == warmup ]] && continue
        for i in 1 2 3; do
            awk '$1 == "lat_us" { print $2 }' "$WORK/out/$ph-l$i" >>"$WORK/out/$ph-l$i.lat"
        done
        if [[ $ph == mixed ]]; then bytes=$((bytes + $(val mixed-heavy bytes))); fi
    done
    R["$sys|heavy-mixed"]=$(mib_per_s "$bytes" $((PHASE_SECS * TURNS)))
}

# pct FILE Q: the Q-quantile of the samples in FILE, as noisy_load takes it
# (the sample at floor((n - 1) * Q) in ascending order).
pct() { sort -n "$1" | awk -v q="$2" '{ v[NR] = $1 } END { if (NR) print v[int((NR - 1) * q) + 1] }'; }

# Records p50/p99 of the light agents' pooled samples of phase PH.
light_record() {
    local sys=$1 ph=$2 i
    for i in 1 2 3; do
        R["$sys|$ph-p50-l$i"]=$(pct "$WORK/out/$ph-l$i.lat" 0.5)
        R["$sys|$ph-p99-l$i"]=$(pct "$WORK/out/$ph-l$i.lat" 0.99)
        R["$sys|$ph-n-l$i"]=$(wc -l <"$WORK/out/$ph-l$i.lat")
    done
}

# Jain's index of bytes/weight: over the totals, and the worst whole second.
jain() {
    awk -v w="${WEIGHTS[*]}" -v secs="$SECS" '
        BEGIN { n = split(w, W, " ") }
        FNR == 1 { k++ }
        $1 == "bytes" { tot[k] = $2 / W[k] }
        $1 == "sec" { s[k, $2] = $3 / W[k] }
        function idx(v, m,   i, a, b) { a = b = 0
            for (i = 1; i <= m; i++) { a += v[i]; b += v[i] * v[i] }
            return b > 0 ? a * a / (m * b) : 0 }
        END { o = idx(tot, n); worst = 1; at = "none"
              for (t = 0; t < secs; t++) {
                  for (i = 1; i <= n; i++) x[i] = s[i, t]
                  j = idx(x, n)
                  if (j < worst) {
                      worst = j; at = "second " t ":"
                      for (i = 1; i <= n; i++) at = at sprintf(" %.1f", x[i] * W[i] / 1048576)
                      at = at " MiB"
                  } }
              printf "%.3f %.3f %s\n", o, worst, at }' "$@"
}

run_phases() {
    local sys=$1 i k
    mkdir -p "$WORK/out"
    settle_reads
    light_turns "$sys"
    light_record "$sys" light
    light_record "$sys" mixed
    log "[$sys] heavy alone"
    drop_caches; start heavy heavy seq "$JOBS" $(all_files); wait_all
    R["$sys|heavy-alone"]=$(mbps heavy)
    log "[$sys] three streaming agents, weights ${WEIGHTS[*]}"
    local agents3=(heavy l1 l2)
    if [[ $sys == lanefs ]]; then
        for k in 0 1 2; do
            "$LANEFS" agent set "$STATE" "${agents3[$k]}" --weight "${WEIGHTS[$k]}" >/dev/null
        done
    fi
    drop_caches
    for k in 0 1 2; do start "jain$k" "${agents3[$k]}" seq "$JOBS" $(files_of "$k"); done
    wait_all
    local jo jw jat
    read -r jo jw jat < <(jain "$WORK/out/jain0" "$WORK/out/jain1" "$WORK/out/jain2")
    log "[$sys] Jain $jo overall, worst window $jw ($jat)"
    R["$sys|jain"]=$jo
    R["$sys|jain-worst"]=$jw
    R["$sys|jain-mb"]="$(mbps jain0)/$(mbps jain1)/$(mbps jain2)"
    R["$sys|jain-sum"]=$(awk -v a="$(mbps jain0)" -v b="$(mbps jain1)" -v c="$(mbps jain2)" \
        'BEGIN { printf "%.1f", a + b + c }')
    if [[ $sys == lanefs ]]; then
        for a in heavy l1 l2; do "$LANEFS" agent set "$STATE" "$a" --weight 100 >/dev/null; done
        log "[$sys] l1 limited to $LIMIT next to the heavy agent"
        "$LANEFS" agent set "$STATE" l1 --read-rate "$LIMIT" >/dev/null
        drop_caches
        start lim-heavy heavy seq "$JOBS" $(files_of 0); start lim l1 seq "$JOBS" $(files_of 1)
        wait_all
        "$LANEFS" agent set "$STATE" l1 --read-rate 0 >/dev/null
        # The first second holds the bucket's burst (one second of the
        # rate), so the steady rate is measured over the seconds after it.
        local lim_bytes
        lim_bytes=$(numfmt --from=iec "$LIMIT")
        R["$sys|limit-ratio"]=$(awk -v l="$lim_bytes" -v s="$SECS" '
            $1 == "sec" && $2 >= 1 { b += $3 } END { printf "%.3f", b / (s - 1) / l }' "$WORK/out/lim")
        R["$sys|limit-all"]=$(awk -v l="$lim_bytes" -v s="$SECS" '
            $1 == "bytes" { printf "%.3f", $2 / s / l }' "$WORK/out/lim")
        log "[$sys] heavy and l1 under a volume cap of $VOLCAP"
        "$LANEFS" volume set "$STATE" --volume-read-rate "$VOLCAP" >/dev/null
        drop_caches
        start cap-heavy heavy seq "$JOBS" $(files_of 0); start cap-l1 l1 seq "$JOBS" $(files_of 1)
        wait_all
        "$LANEFS" volume set "$STATE" --volume-read-rate 0 >/dev/null
        local cap_bytes
        cap_bytes=$(numfmt --from=iec "$VOLCAP")
        R["$sys|cap-ratio"]=$(awk -v l="$cap_bytes" -v s="$SECS" '
            $1 == "sec" && $2 >= 1 { b += $3 } END { printf "%.3f", b / (s - 1) / l }' \
            "$WORK/out/cap-heavy" "$WORK/out/cap-l1")
        R["$sys|cap-split"]="$(mbps cap-heavy)/$(mbps cap-l1)"
    fi
    rm -rf "$WORK/out"
}

# --- report ------------------------------------------------------------------

# The unshaped comparison: the heavy agent alone on a fresh daemon as
# shipped and on one with the read engine off (the first mount starts a
# daemon, which inherits the environment), a volume each over the same
# lower, mounted side by side and read in alternating turns.
unshaped_pairs() {
    local k first second ron roff ratios=() ons=() offs=()
    "$LANEFS" init "$WORK/state-off" --lower "$LOWER" >/dev/null
    mkdir -p "$WORK/mnt/on" "$WORK/mnt/off" "$WORK/out"
    MOUNTED+=("lanefs $WORK/mnt/on" "lanefs $WORK/mnt/off")
    timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$STATE" --agent heavy "$WORK/mnt/on" >/dev/null ||
        die "lanefs mount (engine on) failed"
    env LANEFS_READ_ENGINE=off timeout "$MOUNT_TIMEOUT" "$LANEFS" mount "$WORK/state-off" \
        --agent heavy "$WORK/mnt/off" >/dev/null || die "lanefs mount (engine off) failed"
    VIEW[on]=$WORK/mnt/on VIEW[off]=$WORK/mnt/off
    for ((k = 1; k <= PAIRS; k++)); do
        if ((k % 2)); then first=on second=off; else first=off second=on; fi
        log "[lanefs] heavy alone, pair $k of $PAIRS: engine $first, then $second"
        drop_caches; start "un-$first" "$first" seq "$JOBS" $(all_files); wait_all
        drop_caches; start "un-$second" "$second" seq "$JOBS" $(all_files); wait_all
        ron=$(mbps un-on) roff=$(mbps un-off)
        ons+=("$ron") offs+=("$roff") ratios+=("$(ratio "$ron" "$roff")")
        log "[lanefs]   engine on $ron MiB/s, off $roff MiB/s"
    done
    R["lanefs|unshaped-ratio"]=$(printf '%s\n' "${ratios[@]}" | pct /dev/stdin 0.5)
    R["lanefs|unshaped-ratios"]=${ratios[*]}
    R["lanefs|unshaped-on"]=${ons[*]} R["lanefs|unshaped-off"]=${offs[*]}
    rm -rf "$WORK/out"
    unmount_all
}

get() { printf '%s' "${R[$1]:-n/a}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "" && a != "n/a") printf "%.2f", a / b; else print "n/a" }'; }
met() { awk -v c="$1" 'BEGIN { print (c ? "met" : "not met") }'; }

report() {
    local s i worst_ratio
    {
        echo "NOISY_SECS=$SECS, heavy jobs $JOBS, light $LIGHT_RATE reads/s each, limit $LIMIT, $NFILES x $FILE_MB MiB streamed files"
        echo "Light agents alone and next to the heavy one: $TURNS turns of $((SECS / TURNS)) s each, alternating (A M M A ...), samples pooled per agent (lanefs l1: $(get "lanefs|light-n-l1") samples alone, $(get "lanefs|mixed-n-l1") next to heavy)"
        echo
        echo "| measure | lanefs | fuse-overlayfs | bind |"
        echo "|---|---|---|---|"
        for i in 1 2 3; do
            printf '| l%d p50 / p99 alone (µs) |' "$i"
            for s in lanefs fuse-overlayfs bind; do printf ' %s / %s |' "$(get "$s|light-p50-l$i")" "$(get "$s|light-p99-l$i")"; done
            echo
            printf '| l%d p50 / p99 next to heavy (µs) |' "$i"
            for s in lanefs fuse-overlayfs bind; do printf ' %s / %s |' "$(get "$s|mixed-p50-l$i")" "$(get "$s|mixed-p99-l$i")"; done
            echo
        done
        printf '| worst light p99 next to heavy / alone |'
        for s in lanefs fuse-overlayfs bind; do
            worst_ratio=0
            for i in 1 2 3; do
                worst_ratio=$(awk -v w="$worst_ratio" -v r="$(ratio "$(get "$s|mixed-p99-l$i")" "$(get "$s|light-p99-l$i")")" \
                    'BEGIN { print (r != "n/a" && r + 0 > w + 0) ? r : w }')
            done
            R["$s|p99-ratio"]=$worst_ratio
            printf ' %s |' "$worst_ratio"
        done
        echo
        printf '| heavy MiB/s alone / next to light |'
        for s in lanefs fuse-overlayfs bind; do printf ' %s / %s |' "$(get "$s|heavy-alone")" "$(get "$s|heavy-mixed")"; done
        echo
        printf '| 3 streams MiB/s (weights %s) |' "${WEIGHTS[*]// //}"
        for s in lanefs fuse-overlayfs bind; do printf ' %s |' "$(get "$s|jain-mb")"; done
        echo
        printf '| 3 streams together, MiB/s |'
        for s in lanefs fuse-overlayfs bind; do printf ' %s |' "$(get "$s|jain-sum")"; done
        echo
        printf '| Jain of MiB/s/weight overall / worst 1 s |'
        for s in lanefs fuse-overlayfs bind; do printf ' %s / %s |' "$(get "$s|jain")" "$(get "$s|jain-worst")"; done
        echo
        echo "| limited agent rate / limit (after 1st s / whole run) | $(get "lanefs|limit-ratio") / $(get "lanefs|limit-all") | n/a | n/a |"
        echo "| volume cap $VOLCAP: two streams' sum / cap (after 1st s); MiB/s each | $(get "lanefs|cap-ratio"); $(get "lanefs|cap-split") | n/a | n/a |"
        echo "| heavy alone, $PAIRS pairs of turns: engine on / off (MiB/s); ratio per pair | $(get "lanefs|unshaped-on") / $(get "lanefs|unshaped-off"); $(get "lanefs|unshaped-ratios") | | |"
        echo
        local p99r=${R[lanefs|p99-ratio]} j=${R[lanefs|jain]:-0} jw=${R[lanefs|jain-worst]:-0}
        local lr=${R[lanefs|limit-ratio]:-0}
        local wc
        wc=$(get "lanefs|unshaped-ratio")
        echo "| target (lanefs) | measured | |"
        echo "|---|---|---|"
        echo "| light p99 next to heavy ≤ 2× alone | ${p99r}× | $(met "$(awk -v r="$p99r" 'BEGIN { print (r <= 2) }')") |"
        echo "| Jain ≥ 0.95 overall | $j | $(met "$(awk -v r="$j" 'BEGIN { print (r >= 0.95) }')") |"
        echo "| Jain ≥ 0.90 every 1 s window | $jw (worst) | $(met "$(awk -v r="$jw" 'BEGIN { print (r >= 0.90) }')") |"
        echo "| limit held within 5% | $lr of the limit | $(met "$(awk -v r="$lr" 'BEGIN { print (r >= 0.95 && r <= 1.05) }')") |"
        echo "| heavy alone ≥ 90% of unshaped | $wc (median of the pairs) | $(met "$(awk -v r="$wc" 'BEGIN { print (r >= 0.90) }')") |"
    } >"$OUT"
    cat "$OUT"
}

want() { [[ ",$ONLY," == *",$1,"* ]]; }

main() {
    check_prereqs
    trap cleanup EXIT
    trap 'log "noisy: interrupted"; exit 130' INT TERM
    mkdir -p "$TMPBASE"
    WORK=$(mktemp -d "$TMPBASE/noisy.XXXXXX")
    STATE=$WORK/state
    build_tool
    if [[ -n ${NOISY_LOWER:-} ]]; then
        LOWER=$(cd "$NOISY_LOWER" && pwd)
        [[ -f $LOWER/s/f$((NFILES - 1)) && -f $LOWER/r/l3 ]] || die "NOISY_LOWER: $LOWER lacks s/ or r/ files"
    else
        LOWER=$WORK/lower
        make_lower
    fi
    "$LANEFS" init "$STATE" --lower "$LOWER" >/dev/null

    if want lanefs; then
        mount_system lanefs; run_phases lanefs; unmount_all
        unshaped_pairs
    fi
    if want fuse-overlayfs; then
        mount_system fuse-overlayfs; run_phases fuse-overlayfs; unmount_all
    fi
    if want bind; then
        mount_system bind; run_phases bind; unmount_all
    fi
    report
}

main "$@"
