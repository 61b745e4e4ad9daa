#!/usr/bin/env bash
# Benchmarks of the Inbox, on the release build:
#   - ingest: recordInboundMessage over HTTP at 8 and 32 concurrent integrations, across
#     1,000 conversations, on both backends: messages/s from the first call until the Inbox
#     shows every acknowledged message, and p50/p99 of the acknowledgement;
#   - growth: one conversation taking GROWTH_MESSAGES messages in a row, each answered once
#     the Inbox shows it: median latency of the first and the last 200, and their ratio
#     (flat means ≈ 1);
#   - query: p50/p99 of conversation lists on PostgreSQL with CONVERSATIONS conversations
#     and MESSAGES messages (read-model rows seeded in bulk by `cartie-bench seed-inbox`).
# Every figure is measured RUNS times; the summary prints medians. Raw results go to
# target/bench/inbox.jsonl. Record the summary in docs/BENCHMARKS.md.
#
# Usage: ops/bench-inbox.sh [RUNS] [SECONDS_PER_LOAD] [GROWTH_MESSAGES] [CONVERSATIONS] [MESSAGES]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

RUNS=${1:-3}
SECONDS_PER_LOAD=${2:-10}
GROWTH_MESSAGES=${3:-3000}
CONVERSATIONS=${4:-100000}
MESSAGES=${5:-2000000}
RESULTS_NAME=inbox
source ops/bench-lib.sh

for backend in sqlite postgres; do
  for run in $(seq 1 "$RUNS"); do
    url=$(fresh_database "$backend")
    port=$(free_port)
    start_server "$url" "$port"
    token=$(demo_token "$url")
    for clients in 8 32; do
      log "$backend run $run: ingest, $clients clients for ${SECONDS_PER_LOAD}s"
      line=$("$BENCH" ingest --url "http://127.0.0.1:$port" --token "$token" --database-url "$url" --clients "$clients" --seconds "$SECONDS_PER_LOAD")
      record "{\"kind\":\"ingest\",\"backend\":\"$backend\",\"run\":$run,\"result\":$line}"
    done
    log "$backend run $run: growth to $GROWTH_MESSAGES messages"
    line=$("$BENCH" growth --url "http://127.0.0.1:$port" --token "$token" --messages "$GROWTH_MESSAGES")
    record "{\"kind\":\"growth\",\"backend\":\"$backend\",\"run\":$run,\"result\":$line}"
    stop_server
  done
done

url=$(fresh_database postgres)
port=$(free_port)
start_server "$url" "$port"
token=$(demo_token "$url")
log "postgres: seeding $CONVERSATIONS conversations, $MESSAGES messages"
"$BENCH" seed-inbox --database-url "$url" --workspace-slug demo-motors --conversations "$CONVERSATIONS" --messages "$MESSAGES" >&2
for run in $(seq 1 "$RUNS"); do
  line=$("$BENCH" inbox-query --url "http://127.0.0.1:$port" --token "$token" --requests 300)
  record "{\"kind\":\"query\",\"backend\":\"postgres\",\"run\":$run,\"result\":$line}"
done
stop_server

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
for backend in ("sqlite", "postgres"):
    for clients in (8, 32):
        r = [x["result"] for x in rows if x["kind"] == "ingest" and x["backend"] == backend and x["result"]["clients"] == clients]
        if r:
            print(f"ingest {backend} {clients} clients: {med([x['messages_per_second'] for x in r]):.0f} msg/s, "
                  f"p50 {med([x['p50_ms'] for x in r]):.1f} ms, p99 {med([x['p99_ms'] for x in r]):.1f} ms (runs: {len(r)})")
    g = [x["result"] for x in rows if x["kind"] == "growth" and x["backend"] == backend]
    if g:
        print(f"growth {backend}: first 200 {med([x['first_window_median_ms'] for x in g]):.2f} ms, "
              f"last 200 {med([x['last_window_median_ms'] for x in g]):.2f} ms, ratio {med([x['last_over_first'] for x in g]):.2f} "
              f"(at {g[0]['messages']} messages; runs: {len(g)})")
q = [x["result"] for x in rows if x["kind"] == "query"]
if q:
    for name in q[0]:
        print(f"query {name}: p50 {med([x[name]['p50_ms'] for x in q]):.1f} ms, p99 {med([x[name]['p99_ms'] for x in q]):.1f} ms (runs: {len(q)})")
PY
