#!/usr/bin/env bash
# Benchmarks of the Requests read model on PostgreSQL, on the release build: with LISTINGS
# listings in the Inventory and REQUESTS requests of VARIANTS variants each (read-model
# rows seeded in bulk by `cartie-bench seed-requests`), p50/p99 over HTTP of
#   - the request lists (first page, a page deep in the list, and each filter),
#   - one request with its variants, over a sample of requests,
#   - requestMatches (the 20 best listings) over the same sample.
# Every figure is measured RUNS times; the summary prints medians. Raw results go to
# target/bench/requests.jsonl. Record the summary in docs/BENCHMARKS.md.
#
# Usage: ops/bench-requests.sh [RUNS] [LISTINGS] [REQUESTS] [VARIANTS_PER_REQUEST] [QUERIES_PER_CASE]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

RUNS=${1:-3}
LISTINGS=${2:-1000000}
REQUESTS=${3:-50000}
VARIANTS=${4:-10}
QUERIES=${5:-500}
RESULTS_NAME=requests
source ops/bench-lib.sh

url=$(fresh_database postgres)
port=$(free_port)
start_server "$url" "$port"
token=$(demo_token "$url")
log "postgres: seeding $LISTINGS listings, $REQUESTS requests × $VARIANTS variants"
"$BENCH" seed-requests --database-url "$url" --workspace-slug demo-motors --listings "$LISTINGS" \
  --requests "$REQUESTS" --variants-per-request "$VARIANTS" >&2
for run in $(seq 1 "$RUNS"); do
  log "postgres run $run: queries"
  line=$("$BENCH" requests-query --url "http://127.0.0.1:$port" --token "$token" --requests "$QUERIES")
  record "{\"kind\":\"query\",\"backend\":\"postgres\",\"run\":$run,\"result\":$line}"
done
stop_server

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
q = [x["result"] for x in rows if x["kind"] == "query"]
if q:
    print(f"sampled requests: {q[0]['sampled_requests']}")
    for name in q[0]:
        if isinstance(q[0][name], dict):
            print(f"{name}: p50 {med([x[name]['p50_ms'] for x in q]):.1f} ms, p99 {med([x[name]['p99_ms'] for x in q]):.1f} ms (runs: {len(q)})")
PY
