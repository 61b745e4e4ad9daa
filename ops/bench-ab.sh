#!/usr/bin/env bash
# Two builds interleaved so both see the same machine: the current release build against
# an earlier one (its `cartie` and `cartie-bench`, e.g. copied out of target/release before
# a change). Per backend and run, each build takes the foundation's listing load (create +
# change price, 32 clients for SECONDS), the Inbox ingest (recordInboundMessage, 32 clients
# for SECONDS) and the Telegram webhook ingest (32 senders, UPDATES updates), each on a
# fresh database. Prints medians and after / before.
#
# Usage: [BACKENDS="postgres sqlite"] ops/bench-ab.sh BEFORE_CARTIE BEFORE_BENCH [RUNS] [SECONDS] [UPDATES]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

BEFORE_CARTIE=$(realpath "$1")
BEFORE_BENCH=$(realpath "$2")
RUNS=${3:-3}
SECONDS_PER_LOAD=${4:-10}
UPDATES=${5:-10000}
RESULTS_NAME=ab
source ops/bench-lib.sh

# A server of $CARTIE on a fresh database of the backend, and an admin token for it.
serve_fresh() {
  url=$(fresh_database "$1")
  port=$(free_port)
  start_server "$url" "$port"
  token=$(demo_token "$url")
}

declare -A CARTIE_OF=([before]=$BEFORE_CARTIE [after]=$CARTIE)
declare -A BENCH_OF=([before]=$BEFORE_BENCH [after]=$BENCH)
for backend in ${BACKENDS:-postgres sqlite}; do
  for run in $(seq 1 "$RUNS"); do
    for build in before after; do
      CARTIE=${CARTIE_OF[$build]}
      bench=${BENCH_OF[$build]}
      serve_fresh "$backend"
      log "$backend run $run, $build: listing load"
      line=$("$bench" load --url "http://127.0.0.1:$port" --token "$token" --clients 32 --seconds "$SECONDS_PER_LOAD")
      record "{\"kind\":\"load\",\"backend\":\"$backend\",\"build\":\"$build\",\"run\":$run,\"result\":$line}"
      stop_server
      serve_fresh "$backend"
      log "$backend run $run, $build: ingest"
      # Builds before the receipt's recordInboundMessage timed each call to its Inbox row.
      shown_by=()
      "$bench" ingest --help | grep -q -- --database-url && shown_by=(--database-url "$url")
      line=$("$bench" ingest --url "http://127.0.0.1:$port" --token "$token" "${shown_by[@]}" --clients 32 --seconds "$SECONDS_PER_LOAD")
      record "{\"kind\":\"ingest\",\"backend\":\"$backend\",\"build\":\"$build\",\"run\":$run,\"result\":$line}"
      stop_server
      url=$(fresh_database "$backend")
      token=$(demo_token "$url")
      log "$backend run $run, $build: webhook"
      line=$("$bench" telegram-webhook --cartie "$CARTIE" --database-url "$url" --data-dir "$WORK/data" \
        --token "$token" --clients 32 --updates "$UPDATES")
      record "{\"kind\":\"webhook\",\"backend\":\"$backend\",\"build\":\"$build\",\"run\":$run,\"result\":$line}"
    done
  done
done

python3 ops/ab-summary.py "$RESULTS" build before after \
  "load:commands_per_second:listing commands/s" "ingest:messages_per_second:recordInboundMessage, messages/s" "webhook:updates_per_second:webhook, updates/s"
