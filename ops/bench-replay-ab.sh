#!/usr/bin/env bash
# Replay of two builds interleaved on the same log: the current release build's
# `cartie replay inventory` against an earlier build's (its `cartie`, e.g. copied out of
# target/release before a change). Per backend, one log of LISTINGS listings × (created +
# price changed) is written by `cartie-bench seed`; then each run replays it with one build
# and then the other, timed from process start to exit as in ops/bench.sh. Prints medians
# and after / before.
#
# Usage: ops/bench-replay-ab.sh BEFORE_CARTIE [RUNS] [LISTINGS]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

BEFORE_CARTIE=$(realpath "$1")
RUNS=${2:-5}
LISTINGS=${3:-50000}
RESULTS_NAME=replay-ab
source ops/bench-lib.sh

declare -A CARTIE_OF=([before]=$BEFORE_CARTIE [after]=$CARTIE)
for backend in postgres sqlite; do
  url=$(fresh_database "$backend")
  log "$backend: seeding $LISTINGS listings ($((LISTINGS * 2)) events)"
  "$BENCH" seed --database-url "$url" --listings "$LISTINGS" >&2
  for run in $(seq 1 "$RUNS"); do
    for build in before after; do
      start=$(date +%s.%N)
      CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url RUST_LOG=warn "${CARTIE_OF[$build]}" replay inventory >/dev/null 2>&1
      end=$(date +%s.%N)
      seconds=$(python3 -c "print($end - $start)")
      log "$backend run $run, $build: ${seconds}s"
      record "{\"kind\":\"replay\",\"backend\":\"$backend\",\"build\":\"$build\",\"run\":$run,\"events\":$((LISTINGS * 2)),\"seconds\":$seconds}"
    done
  done
done

python3 ops/ab-summary.py "$RESULTS" build before after "replay:events_per_second:replay inventory, events/s"
