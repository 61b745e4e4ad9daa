#!/usr/bin/env bash
# What the matching indexes of migration 0008 cost the listing commands and the Inventory
# replay: the foundation benchmark's 32-client load and its replay, on each backend, with
# the indexes and with them dropped after migrating, the two variants interleaved in each
# run so both see the same machine. Prints medians and the ratio without / with.
#
# Usage: ops/bench-index-cost.sh [RUNS] [SECONDS_PER_LOAD] [REPLAY_LISTINGS]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

RUNS=${1:-3}
SECONDS_PER_LOAD=${2:-10}
REPLAY_LISTINGS=${3:-50000}
RESULTS_NAME=index-cost
source ops/bench-lib.sh

INDEXES="inventory_available_by_brand_and_price inventory_available_by_price \
inventory_available_by_brand_and_recency inventory_available_by_recency"

drop_indexes() {
  local backend=$1 url=$2
  for index in $INDEXES; do
    case "$backend" in
      sqlite) sqlite3 "${url#sqlite:}" "DROP INDEX $index" ;;
      postgres) psql "$url" -qAtc "DROP INDEX $index" ;;
    esac
  done
}

for backend in sqlite postgres; do
  for run in $(seq 1 "$RUNS"); do
    for variant in with without; do
      url=$(fresh_database "$backend")
      port=$(free_port)
      start_server "$url" "$port"
      [ "$variant" = without ] && drop_indexes "$backend" "$url"
      token=$(demo_token "$url")
      log "$backend run $run, $variant the indexes: 32 clients for ${SECONDS_PER_LOAD}s"
      line=$("$BENCH" load --url "http://127.0.0.1:$port" --token "$token" --clients 32 --seconds "$SECONDS_PER_LOAD")
      record "{\"kind\":\"load\",\"backend\":\"$backend\",\"variant\":\"$variant\",\"run\":$run,\"result\":$line}"
      stop_server
    done
  done
  for variant in with without; do
    url=$(fresh_database "$backend")
    "$BENCH" seed --database-url "$url" --listings "$REPLAY_LISTINGS" >&2
    [ "$variant" = without ] && drop_indexes "$backend" "$url"
    for run in $(seq 1 "$RUNS"); do
      log "$backend replay run $run, $variant the indexes"
      start=$(date +%s.%N)
      CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url RUST_LOG=warn "$CARTIE" replay inventory >/dev/null 2>&1
      end=$(date +%s.%N)
      record "{\"kind\":\"replay\",\"backend\":\"$backend\",\"variant\":\"$variant\",\"run\":$run,\"events\":$((REPLAY_LISTINGS * 2)),\"seconds\":$(python3 -c "print($end - $start)")}"
    done
  done
done

python3 ops/ab-summary.py "$RESULTS" variant with without \
  "load:commands_per_second:commands/s, 32 clients" "replay:events_per_second:replay events/s"
