#!/usr/bin/env bash
# scale_workload.sh - the small read/write workload that tests/bench/scale.sh
# runs in every agent's view, many of them side by side.
#
# usage: scale_workload.sh VIEW LOWER UPPER AGENT
#   VIEW   root of the agent's mounted view
#   LOWER  the lower directory under the view (to check what was read)
#   UPPER  the agent's private upper (to check where the write went)
#   AGENT  the agent's name, used in file names so agents never collide
#
# What it does, each step checked so a broken view cannot pass as fast:
#   1. reads the 64 KiB lower file in.bin and compares it with the lower
#   2. writes a 4 KiB private file, reads it back and compares; the file
#      must be in the agent's upper and not in the lower
#   3. creates and deletes a temp file in tmp/, then leaves one more temp
#      file behind for the end of the session to remove
# Prints one line "AGENT: what failed" on stderr and exits 1 on a failure.
set -euo pipefail

VIEW=$1 LOWER=$2 UPPER=$3 AGENT=$4

fail() { printf '%s: %s\n' "$AGENT" "$*" >&2; exit 1; }

# 1. Read through the view. cat is the reader (not cmp on the view) so the
# bytes come through a plain open+read+close as an agent's tools would do.
cat "$VIEW/in.bin" >/dev/null || fail "cannot read in.bin"
cmp -s "$VIEW/in.bin" "$LOWER/in.bin" || fail "in.bin differs from the lower"

# 2. Private write. The first 4 KiB of in.bin are a known reference, so no
# scratch file outside the view is needed to check the read-back.
out=out-$AGENT.bin
head -c 4096 "$LOWER/in.bin" >"$VIEW/$out" || fail "cannot write $out"
cmp -s "$VIEW/$out" <(head -c 4096 "$LOWER/in.bin") || fail "$out reads back wrong"
[[ -f $UPPER/$out ]] || fail "$out is not in the private upper $UPPER"
[[ ! -e $LOWER/$out ]] || fail "$out leaked into the lower"

# 3. Temp files: one that the agent removes itself, one that it leaves for
# the end of its session (lanefs must remove it; fuse-overlayfs keeps it in
# its upper, which is that system's normal behaviour).
printf 'scratch of %s\n' "$AGENT" >"$VIEW/tmp/scratch-$AGENT.tmp" || fail "cannot create a temp file"
[[ -s $VIEW/tmp/scratch-$AGENT.tmp ]] || fail "temp file is empty after write"
rm "$VIEW/tmp/scratch-$AGENT.tmp" || fail "cannot delete the temp file"
[[ ! -e $VIEW/tmp/scratch-$AGENT.tmp ]] || fail "temp file still there after rm"
printf 'left for session end\n' >"$VIEW/tmp/left-$AGENT.part" || fail "cannot create the second temp file"
