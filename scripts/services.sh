#!/usr/bin/env bash
# Installs (from Debian's packages) and starts the real services the tests use, on 127.0.0.1:
# PostgreSQL on port 5439 (a private cluster under $PIXPRESS_PGDATA, trust auth) and Redis on
# port 6390. Idempotent: already running services are left alone. Source it to get the URLs:
#   source scripts/services.sh   # exports PIXPRESS_TEST_DATABASE_URL and PIXPRESS_TEST_REDIS_URL
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

need=()
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PIXPRESS_REDIS_PORT=${PIXPRESS_REDIS_PORT:-6390}
if ! redis-cli -h 127.0.0.1 -p "$PIXPRESS_REDIS_PORT" ping >/dev/null 2>&1; then
  redis-server --port "$PIXPRESS_REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
fi

PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PIXPRESS_PG_PORT=${PIXPRESS_PG_PORT:-5439}
PIXPRESS_PGDATA=${PIXPRESS_PGDATA:-/tmp/pixpress-pg}
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PIXPRESS_PG_PORT"; then
  if [ ! -f "$PIXPRESS_PGDATA/PG_VERSION" ]; then
    $SUDO mkdir -p "$PIXPRESS_PGDATA"
    $SUDO chown postgres "$PIXPRESS_PGDATA"
    as_postgres "$PGBIN/initdb" -D "$PIXPRESS_PGDATA" -A trust -U postgres >/dev/null
  fi
  as_postgres "$PGBIN/pg_ctl" -D "$PIXPRESS_PGDATA" -l "$PIXPRESS_PGDATA/server.log" -w \
    -o "-p $PIXPRESS_PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
fi

for _ in $(seq 50); do
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PIXPRESS_PG_PORT" && break
  sleep 0.2
done
export PIXPRESS_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PIXPRESS_PG_PORT/postgres"
export PIXPRESS_TEST_REDIS_URL="redis://127.0.0.1:$PIXPRESS_REDIS_PORT/"
echo "services: PostgreSQL at $PIXPRESS_TEST_DATABASE_URL, Redis at $PIXPRESS_TEST_REDIS_URL"
