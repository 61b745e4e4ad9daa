#!/usr/bin/env bash
# Benchmarks of the foundation, on the release build, for both backends:
#   - commands/s and p50/p99 latency of createListing + changeListingPrice over HTTP at
#     1, 8 and 32 concurrent clients (each mutation waits for the Inventory read model);
#   - replay (cartie replay inventory) of a 100k-event log, events/s;
#   - resident memory of an idle server.
# Every figure is measured RUNS times; the summary prints medians. Raw results go to
# target/bench/results.jsonl. Record the summary in docs/BENCHMARKS.md.
#
# Usage: ops/bench.sh [RUNS] [SECONDS_PER_LOAD] [REPLAY_LISTINGS]
# PostgreSQL: CARTIE_BENCH_DATABASE_URL (a server where databases may be created),
# default postgres://postgres@127.0.0.1:5432/postgres.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

RUNS=${1:-3}
SECONDS_PER_LOAD=${2:-10}
REPLAY_LISTINGS=${3:-50000}
source ops/bench-lib.sh

for backend in sqlite postgres; do
  for run in $(seq 1 "$RUNS"); do
    url=$(fresh_database "$backend")
    port=$(free_port)
    start_server "$url" "$port"
    sleep 2
    rss_kb=$(ps -o rss= -p "$SERVER_PID" | tr -d ' ')
    record "{\"kind\":\"idle_rss\",\"backend\":\"$backend\",\"run\":$run,\"rss_mb\":$((rss_kb / 1024))}"
    CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url CARTIE_ADMIN_EMAIL=bench@cartie.example \
      CARTIE_ADMIN_PASSWORD=bench-granite-lantern-42 RUST_LOG=warn "$CARTIE" seed --demo >/dev/null
    token=$(CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url RUST_LOG=warn "$CARTIE" token create --workspace demo-motors --name "bench run $run" --role admin)
    for clients in 1 8 32; do
      log "$backend run $run: $clients clients for ${SECONDS_PER_LOAD}s"
      line=$("$BENCH" load --url "http://127.0.0.1:$port" --token "$token" --clients "$clients" --seconds "$SECONDS_PER_LOAD")
      record "{\"kind\":\"load\",\"backend\":\"$backend\",\"run\":$run,\"result\":$line}"
    done
    stop_server
  done

  url=$(fresh_database "$backend")
  log "$backend: seeding $REPLAY_LISTINGS listings ($((REPLAY_LISTINGS * 2)) events)"
  "$BENCH" seed --database-url "$url" --listings "$REPLAY_LISTINGS" >&2
  for run in $(seq 1 "$RUNS"); do
    start=$(date +%s.%N)
    CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url RUST_LOG=warn "$CARTIE" replay inventory >/dev/null 2>&1
    end=$(date +%s.%N)
    record "{\"kind\":\"replay\",\"backend\":\"$backend\",\"run\":$run,\"events\":$((REPLAY_LISTINGS * 2)),\"seconds\":$(python3 -c "print($end - $start)")}"
  done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
print("| backend | clients | commands/s | p50 ms | p99 ms |")
print("|---|---|---|---|---|")
for backend in ("sqlite", "postgres"):
    for clients in (1, 8, 32):
        rs = [r["result"] for r in rows if r["kind"] == "load" and r["backend"] == backend and r["result"]["clients"] == clients]
        print(f"| {backend} | {clients} | {med(r['commands_per_second'] for r in rs):,.0f} | {med(r['p50_ms'] for r in rs):.1f} | {med(r['p99_ms'] for r in rs):.1f} |")
print()
print("| backend | replay events/s | idle RSS MB |")
print("|---|---|---|")
for backend in ("sqlite", "postgres"):
    rp = [r["events"] / r["seconds"] for r in rows if r["kind"] == "replay" and r["backend"] == backend]
    rss = [r["rss_mb"] for r in rows if r["kind"] == "idle_rss" and r["backend"] == backend]
    print(f"| {backend} | {med(rp):,.0f} | {med(rss)} |")
print()
print(f"runs per figure: {max(r['run'] for r in rows)}")
PY
