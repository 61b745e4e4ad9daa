#!/usr/bin/env bash
# Replay of two builds interleaved on the same log: the current release build's
# `cartie replay inventory` against an earlier build's (its `cartie`, e.g. copied out of
# target/release before a change, with that build's `cartie-bench` beside it). Per backend,
# one log of LISTINGS listings × (created + price changed) is written by the earlier
# build's `cartie-bench seed` and copied, so that each build replays its own copy, migrated
# by itself (a build refuses a database that has migrations it does not know). Then each
# run replays with one build and then the other, timed from process start to exit as in
# ops/bench.sh. Prints medians and after / before.
#
# SQLITE_SEED=each: on SQLite the after build seeds a database of its own instead of
# replaying a copy (same shape, other ids), for changes to how a database is created.
#
# Usage: [SQLITE_SEED=each] ops/bench-replay-ab.sh BEFORE_CARTIE [RUNS] [LISTINGS]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

BEFORE_CARTIE=$(realpath "$1")
BEFORE_BENCH=$(dirname "$BEFORE_CARTIE")/cartie-bench
RUNS=${2:-5}
LISTINGS=${3:-50000}
RESULTS_NAME=replay-ab
SQLITE_SEED=${SQLITE_SEED:-copy}
source ops/bench-lib.sh
[ -x "$BEFORE_BENCH" ] || { log "no cartie-bench beside $BEFORE_CARTIE"; exit 1; }

declare -A CARTIE_OF=([before]=$BEFORE_CARTIE [after]=$CARTIE)
for backend in postgres sqlite; do
  url=$(fresh_database "$backend")
  log "$backend: seeding $LISTINGS listings ($((LISTINGS * 2)) events)"
  "$BEFORE_BENCH" seed --database-url "$url" --listings "$LISTINGS" >&2
  declare -A URL_OF=([before]=$url)
  case "$backend" in
    postgres)
      psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS ${PG_BENCH_DB}_after WITH (FORCE)" >/dev/null
      psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE ${PG_BENCH_DB}_after TEMPLATE $PG_BENCH_DB" >/dev/null
      URL_OF[after]=${url}_after
      ;;
    sqlite)
      mkdir -p "$WORK/after"
      if [ "$SQLITE_SEED" = each ]; then
        log "sqlite: seeding the after build's own database"
        "$BENCH" seed --database-url "sqlite:$WORK/after/cartie.db" --listings "$LISTINGS" >&2
      else
        cp "$WORK"/data/cartie.db* "$WORK/after/"
      fi
      URL_OF[after]=sqlite:$WORK/after/cartie.db
      ;;
  esac
  for run in $(seq 1 "$RUNS"); do
    for build in before after; do
      start=$(date +%s.%N)
      if ! CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=${URL_OF[$build]} RUST_LOG=warn \
        "${CARTIE_OF[$build]}" replay inventory >"$WORK/replay.log" 2>&1; then
        log "$backend run $run, $build: replay failed"
        cat "$WORK/replay.log" >&2
        exit 1
      fi
      end=$(date +%s.%N)
      seconds=$(python3 -c "print($end - $start)")
      log "$backend run $run, $build: ${seconds}s"
      record "{\"kind\":\"replay\",\"backend\":\"$backend\",\"build\":\"$build\",\"run\":$run,\"events\":$((LISTINGS * 2)),\"seconds\":$seconds}"
    done
  done
done

python3 ops/ab-summary.py "$RESULTS" build before after "replay:events_per_second:replay inventory, events/s"
