# Shared by the benchmark scripts: builds the release binaries, a scratch directory,
# fresh databases per backend, and a server to start and stop. Sourced, not run.
PG_ADMIN_URL=${CARTIE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PG_SERVER=${PG_ADMIN_URL%/*}
PG_BENCH_DB=cartie_bench

cargo build --release -q -p cartie-api -p cartie-bench
CARTIE=$PWD/target/release/cartie
BENCH=$PWD/target/release/cartie-bench
mkdir -p target/bench
RESULTS=$PWD/target/bench/${RESULTS_NAME:-results}.jsonl
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


# Seeds the demo workspace and prints an API token for it.
demo_token() {
  local url=$1
  CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url CARTIE_ADMIN_EMAIL=bench@cartie.example \
    CARTIE_ADMIN_PASSWORD=bench-granite-lantern-42 RUST_LOG=warn "$CARTIE" seed --demo >/dev/null
  CARTIE_DATA_DIR=$WORK/data CARTIE_DATABASE_URL=$url RUST_LOG=warn \
    "$CARTIE" token create --workspace demo-motors --name "bench" --role admin
}
