#!/usr/bin/env bash
# Cartie's single test entry point: finds (or starts) a PostgreSQL server for
# the integration tests, then runs the whole workspace test suite.
#
# PostgreSQL is chosen in this order:
#   1. $CARTIE_TEST_DATABASE_URL, if set (must answer and allow CREATE DATABASE);
#   2. a server on 127.0.0.1:5432 reachable as user "postgres" without password;
#   3. a throwaway cluster in a temp dir on a free port, installing the Debian
#      "postgresql" package first if needed; it is stopped and deleted on exit.
# Set CARTIE_TEST_FORCE_THROWAWAY_PG=1 to skip 1 and 2 and always use 3.
#
# Extra arguments are passed to the test runner (cargo nextest run / cargo test).
set -euo pipefail

cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."

readonly DEFAULT_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
readonly FIRST_THROWAWAY_PORT=55432

# Set by start_throwaway_cluster; PG_TMP_DIR/PG_BIN_DIR are read by the EXIT trap.
PG_TMP_DIR=""
PG_BIN_DIR=""
THROWAWAY_URL=""

log() { printf 'ops/test.sh: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

have() { command -v "$1" >/dev/null 2>&1; }

# Hide passwords (user:pass@ and ?password=) before printing a URL.
redact_url() {
  sed -E -e 's#(://[^:/@]*):[^@]*@#\1:***@#' -e 's#([?&]password=)[^&]*#\1***#' <<<"$1"
}

# Run a SQL query against a URL, never prompting for a password.
psql_query() {
  local url=$1 sql=$2
  PGCONNECT_TIMEOUT=5 psql -X -w -A -t -q -d "$url" -c "$sql"
}

# True if the server behind $1 answers and its user may CREATE DATABASE.
url_is_usable() {
  local url=$1
  have psql || return 1
  [[ "$(psql_query "$url" "select rolsuper or rolcreatedb from pg_roles where rolname = current_user" 2>/dev/null)" == "t" ]]
}

# --- 1. explicit URL --------------------------------------------------------

use_given_url() {
  local url=$CARTIE_TEST_DATABASE_URL shown
  shown=$(redact_url "$url")
  if ! have psql; then
    # Without a client we cannot check it; the tests will report a bad URL.
    log "warning: psql not found, cannot check CARTIE_TEST_DATABASE_URL ($shown)"
    return 0
  fi
  if ! psql_query "$url" "select 1" >/dev/null; then
    die "CARTIE_TEST_DATABASE_URL ($shown) does not answer (see the psql error above)."
  fi
  url_is_usable "$url" ||
    die "CARTIE_TEST_DATABASE_URL ($shown): its user may not CREATE DATABASE, which the tests need."
}

# --- 2. local default server --------------------------------------------------

local_default_is_usable() {
  have psql || return 1
  # pg_isready is a cheap first check; it ships with psql, so usually present.
  if have pg_isready && ! pg_isready -q -h 127.0.0.1 -p 5432 -t 3; then
    return 1
  fi
  url_is_usable "$DEFAULT_PG_URL"
}

# --- 3. throwaway cluster -----------------------------------------------------

# Run a command as root (directly or via sudo); fails if neither is possible.
as_root() {
  if is_root; then
    "$@"
  elif have sudo; then
    sudo -n "$@"
  else
    return 1
  fi
}

# Newest PostgreSQL server bin dir shipped by the Debian packages, if any.
find_pg_bin_dir() {
  local initdb
  initdb=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n 1 || true)
  [[ -n "$initdb" ]] && dirname -- "$initdb"
}

install_postgresql() {
  log "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin"
  have apt-get || { log "no apt-get: cannot install the 'postgresql' package"; return 1; }
  is_root || have sudo || { log "not root and no sudo: cannot install 'postgresql'"; return 1; }
  log "installing the 'postgresql' package"
  as_root apt-get update &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
}

# initdb/pg_ctl refuse to run as root, so root delegates to the postgres user.
as_cluster_owner() {
  if ! is_root; then
    "$@"
  elif have runuser; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
  fi
}

port_is_free() {
  # A successful connect means something already listens there.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

find_free_port() {
  local port
  for ((port = FIRST_THROWAWAY_PORT; port < FIRST_THROWAWAY_PORT + 100; port++)); do
    if port_is_free "$port"; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

# EXIT trap: stop the throwaway cluster and delete its files. Every step
# tolerates failure so the script keeps the test runner's exit code.
# shellcheck disable=SC2317 # only called through the trap
stop_throwaway_cluster() {
  [[ -n "$PG_TMP_DIR" ]] || return 0
  if [[ -f "$PG_TMP_DIR/data/postmaster.pid" ]]; then
    as_cluster_owner "$PG_BIN_DIR/pg_ctl" stop -D "$PG_TMP_DIR/data" -m fast -s >/dev/null 2>&1 || true
  fi
  rm -rf -- "$PG_TMP_DIR" || true
}

wait_until_ready() {
  local port=$1 i
  for ((i = 0; i < 60; i++)); do
    "$PG_BIN_DIR/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0
    sleep 0.5
  done
  return 1
}

# Starts the cluster and sets THROWAWAY_URL. Runs in an `if`/`||` context,
# where set -e is off, so each step checks its own failure.
start_throwaway_cluster() {
  local port
  PG_BIN_DIR=$(find_pg_bin_dir) || { install_postgresql >&2 && PG_BIN_DIR=$(find_pg_bin_dir); } ||
    return 1
  if is_root; then
    id postgres >/dev/null 2>&1 || { log "no 'postgres' system user to run the cluster as"; return 1; }
  fi
  port=$(find_free_port) || { log "no free port from $FIRST_THROWAWAY_PORT upward"; return 1; }

  # Short path: the Unix socket lives here too and socket paths are length-limited.
  PG_TMP_DIR=$(mktemp -d /tmp/cartie-pg.XXXXXX) || return 1
  trap stop_throwaway_cluster EXIT
  if is_root; then
    chown postgres: "$PG_TMP_DIR" || return 1
  fi

  log "starting a throwaway PostgreSQL ($PG_BIN_DIR) on port $port in $PG_TMP_DIR"
  # Durability settings are off: the data is thrown away, speed matters.
  if ! as_cluster_owner "$PG_BIN_DIR/initdb" -D "$PG_TMP_DIR/data" -A trust -U postgres \
    -E UTF8 --no-locale >"$PG_TMP_DIR/initdb.log" 2>&1; then
    cat "$PG_TMP_DIR/initdb.log" >&2
    return 1
  fi
  if ! as_cluster_owner "$PG_BIN_DIR/pg_ctl" start -D "$PG_TMP_DIR/data" -l "$PG_TMP_DIR/server.log" \
    -w -t 30 -s -o "-p $port -k $PG_TMP_DIR -c listen_addresses=127.0.0.1 -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >&2 ||
    ! wait_until_ready "$port"; then
    tail -n 30 "$PG_TMP_DIR/server.log" >&2 || true
    return 1
  fi
  THROWAWAY_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# --- choice -------------------------------------------------------------------

no_postgres() {
  die "PostgreSQL is required to run the tests, but none was found or could be started.
  Point CARTIE_TEST_DATABASE_URL at a server whose user may CREATE DATABASE, e.g.
    CARTIE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres ops/test.sh
  or run a server on 127.0.0.1:5432 accepting user 'postgres' without password,
  or install the Debian 'postgresql' package (needs root or sudo) so a throwaway one can be started."
}

select_postgres() {
  local url source
  if [[ "${CARTIE_TEST_FORCE_THROWAWAY_PG:-}" != 1 && -n "${CARTIE_TEST_DATABASE_URL:-}" ]]; then
    use_given_url
    url=$CARTIE_TEST_DATABASE_URL source="from CARTIE_TEST_DATABASE_URL"
  elif [[ "${CARTIE_TEST_FORCE_THROWAWAY_PG:-}" != 1 ]] && local_default_is_usable; then
    url=$DEFAULT_PG_URL source="local server on 127.0.0.1:5432"
  else
    start_throwaway_cluster || no_postgres
    url=$THROWAWAY_URL source="throwaway cluster, removed on exit"
  fi
  export CARTIE_TEST_DATABASE_URL=$url
  log "using PostgreSQL $(redact_url "$url") ($source)"
}

# --- tests ----------------------------------------------------------------------

run_tests() {
  # CARGO_TERM_COLOR is left as the caller set it.
  export RUST_BACKTRACE=1
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
  else
    cargo test --workspace --no-fail-fast "$@"
  fi
}

main() {
  # Turn Ctrl-C / kill into a normal exit so the EXIT trap stops the cluster.
  trap 'exit 130' INT
  trap 'exit 143' TERM
  select_postgres
  local status=0
  run_tests "$@" || status=$?
  exit "$status"
}

main "$@"
