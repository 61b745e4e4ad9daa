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
PG_ADMIN_URL=${CARTIE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_SERVER=${PG_ADMIN_URL%/*}
PG_BENCH_DB=cartie_bench

cargo build --release -q -p cartie-api -p cartie-bench
CARTIE=$PWD/target/release/cartie
BENCH=$PWD/target/release/cartie-bench
mkdir -p target/bench
RESULTS=$PWD/target/bench/results.jsonl
: >"$RESULTS"
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { printf 'bench: %s\n' "$*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Prints the URL of a fresh, empty database for the backend.
fresh_database() {
  case "$1" in
    sqlite)
      rm -rf "$WORK/data"
      mkdir -p "$WORK/data"
      echo "sqlite:$WORK/data/cartie.db"
      ;;
    postgres)
      psql "$PG_ADMIN_URL" -qAtc "DROP DATABASE IF EXISTS $PG_BENCH_DB WITH (FORCE)" >/dev/null
      psql "$PG_ADMIN_URL" -qAtc "CREATE DATABASE $PG_BENCH_DB" >/dev/null
      echo "$PG_SERVER/$PG_BENCH_DB"
      ;;
  esac
}

start_server() {
  local url=$1 port=$2
  mkdir -p "$WORK/data"
  CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url CARTIE_BIND=127.0.0.1:$port \
    RUST_LOG=warn "$CARTIE" serve &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "server did not start"
  exit 1
}

stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
}

record() { echo "$1" >>"$RESULTS"; }

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
