#!/usr/bin/env bash
# Benchmarks of the Telegram adapter, on the release build, against the loopback fake Bot
# API of the tests (run inside cartie-bench, which starts `cartie serve` pointed at it):
#   - webhook: UPDATES text updates posted to a WEBHOOK bot by 8 and 32 concurrent
#     senders across 1,000 chats; updates/s until the Inbox read model shows them all,
#     and the webhook's p50/p99, on both backends;
#   - delivery: CHATS chats × PER_CHAT operator messages queued at once to one bot; the
#     bot's send rate, its busiest second, the shortest interval between two sends to one
#     chat and the longest a chat waited, on both backends.
# Every figure is measured RUNS times; the summary prints medians. Raw results go to
# target/bench/telegram.jsonl. Record the summary in docs/BENCHMARKS.md.
#
# Usage: ops/bench-telegram.sh [RUNS] [UPDATES] [CHATS] [PER_CHAT]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

RUNS=${1:-3}
UPDATES=${2:-20000}
CHATS=${3:-100}
PER_CHAT=${4:-10}
RESULTS_NAME=telegram
source ops/bench-lib.sh

target_args() {
  local url=$1 token=$2
  echo --cartie "$CARTIE" --database-url "$url" --data-dir "$WORK/data" --token "$token"
}

for backend in sqlite postgres; do
  for run in $(seq 1 "$RUNS"); do
    for clients in 8 32; do
      url=$(fresh_database "$backend")
      token=$(demo_token "$url")
      log "$backend run $run: webhook, $clients senders, $UPDATES updates"
      # shellcheck disable=SC2046 # the arguments are split on purpose
      line=$("$BENCH" telegram-webhook $(target_args "$url" "$token") --clients "$clients" --updates "$UPDATES")
      record "{\"kind\":\"webhook\",\"backend\":\"$backend\",\"run\":$run,\"result\":$line}"
    done
    url=$(fresh_database "$backend")
    token=$(demo_token "$url")
    log "$backend run $run: delivery, $CHATS chats x $PER_CHAT messages"
    # shellcheck disable=SC2046
    line=$("$BENCH" telegram-delivery $(target_args "$url" "$token") --chats "$CHATS" --messages-per-chat "$PER_CHAT")
    record "{\"kind\":\"delivery\",\"backend\":\"$backend\",\"run\":$run,\"result\":$line}"
  done
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = statistics.median
for backend in ("sqlite", "postgres"):
    for clients in (8, 32):
        r = [x["result"] for x in rows if x["kind"] == "webhook" and x["backend"] == backend and x["result"]["clients"] == clients]
        if r:
            print(f"webhook {backend} {clients} senders: {med([x['updates_per_second'] for x in r]):.0f} updates/s to the Inbox, "
                  f"p50 {med([x['p50_ms'] for x in r]):.1f} ms, p99 {med([x['p99_ms'] for x in r]):.1f} ms (runs: {len(r)})")
    d = [x["result"] for x in rows if x["kind"] == "delivery" and x["backend"] == backend]
    if d:
        print(f"delivery {backend}: {med([x['sends_per_second'] for x in d]):.1f} sends/s, busiest second {med([x['busiest_second'] for x in d]):.0f}, "
              f"shortest chat interval {med([x['shortest_chat_interval_ms'] for x in d]):.0f} ms, "
              f"longest chat wait {med([x['longest_chat_wait_ms'] for x in d]):.0f} ms, "
              f"latest first send {med([x['latest_first_send_ms'] for x in d]):.0f} ms, "
              f"all complete and in order: {all(x['every_chat_complete'] and x['in_order'] for x in d)} (runs: {len(d)})")
PY
