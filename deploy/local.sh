#!/usr/bin/env bash
# A whole pixpress deployment on one machine, on 127.0.0.1: PostgreSQL (Debian's, a private
# cluster), Redis (a private instance), an S3-compatible store (moto's server, as
# scripts/services.sh installs it) with its bucket, three `pixpress serve` instances sharing them,
# and Debian's nginx in front. Everything lives in one run directory; nothing shared is touched.
#
#   bash deploy/local.sh start    # starts what is not running (idempotent), prints the URL and a key
#   bash deploy/local.sh status   # one line per component
#   bash deploy/local.sh stop     # stops everything it started (idempotent)
#
# `start` after an instance died restarts only that instance. Settings (env vars, defaults):
#   PIXPRESS_DEPLOY_DIR        run directory (data, logs, pids, configs)   deploy/.run
#   PIXPRESS_DEPLOY_PG_PORT    PostgreSQL                                  5449
#   PIXPRESS_DEPLOY_REDIS_PORT Redis                                       6399
#   PIXPRESS_DEPLOY_S3_PORT    moto's S3 server                            9399
#   PIXPRESS_DEPLOY_PORTS      the three instances, space-separated        "8081 8082 8083"
#   PIXPRESS_DEPLOY_PORT       nginx (the base URL)                        8090
#   PIXPRESS_DEPLOY_PLAN       plan of the key `start` creates             business
#   PIXPRESS_BIN               the pixpress binary (default: cargo build --release --locked)
#   PIXPRESS_MAX_INPUT_BYTES   pixpress's upload limit; nginx's client_max_body_size follows it
# The ports differ from the test services' (5439, 6390, 9390), so both can run side by side.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=${PIXPRESS_DEPLOY_DIR:-$ROOT/deploy/.run}
PG_PORT=${PIXPRESS_DEPLOY_PG_PORT:-5449}
REDIS_PORT=${PIXPRESS_DEPLOY_REDIS_PORT:-6399}
S3_PORT=${PIXPRESS_DEPLOY_S3_PORT:-9399}
read -r -a PORTS <<<"${PIXPRESS_DEPLOY_PORTS:-8081 8082 8083}"
NGINX_PORT=${PIXPRESS_DEPLOY_PORT:-8090}
PLAN=${PIXPRESS_DEPLOY_PLAN:-business}
BUCKET=pixpress
MAX_INPUT_BYTES=${PIXPRESS_MAX_INPUT_BYTES:-33554432}
BASE_URL="http://127.0.0.1:$NGINX_PORT"
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/pixpress"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
# PostgreSQL refuses to run as root: as root the cluster belongs to Debian's postgres user,
# otherwise to the user running this script.
as_pg_owner() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
say() { echo "deploy: $*"; }
die() { echo "deploy: $*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# A pid file names a live process (a SIGKILLed instance leaves its file behind).
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() { # seconds, command…: polls every 0.1 s
  local tries=$(($1 * 10)); shift
  for _ in $(seq "$tries"); do "$@" && return 0; sleep 0.1; done
  return 1
}

install_packages() {
  local need=()
  command -v nginx >/dev/null || need+=(nginx)
  command -v redis-server >/dev/null || need+=(redis-server)
  command -v curl >/dev/null || need+=(curl)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
  if [ ${#need[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # moto comes from the same installer (and cache directory) the test services use.
  # shellcheck source=../scripts/services.sh
  source "$ROOT/scripts/services.sh" --install-python-tools
  MOTO="$PIXPRESS_TOOLS/venv/bin/moto_server"
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
}

pixpress_bin() {
  if [ -n "${PIXPRESS_BIN:-}" ]; then
    BIN=$PIXPRESS_BIN
  else
    (cd "$ROOT" && cargo build --release --locked --quiet)
    BIN=$ROOT/target/release/pixpress
  fi
  [ -x "$BIN" ] || die "no pixpress binary at $BIN"
}

start_postgres() {
  local data=$RUN/pg
  if ! [ -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    if [ "$(id -u)" = "0" ]; then chown postgres "$data"; fi
    chmod 700 "$data"
    as_pg_owner "$PGBIN/initdb" -D "$data" -A trust -U postgres >/dev/null
    # Loopback TCP only: no Unix socket to collide with another cluster's.
    printf "listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 200\n" \
      >>"$data/postgresql.conf"
  fi
  if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    as_pg_owner "$PGBIN/pg_ctl" -D "$data" -l "$data/server.log" -w -o "-p $PG_PORT" start >/dev/null
  fi
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = 'pixpress'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE pixpress"
  fi
}

start_redis() {
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$RUN" --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" --daemonize yes
    wait_for 10 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null || die "Redis did not start"
  fi
}

start_s3() {
  if ! port_open "$S3_PORT"; then
    nohup "$MOTO" -H 127.0.0.1 -p "$S3_PORT" >"$RUN/moto.log" 2>&1 </dev/null &
    echo $! >"$RUN/moto.pid"
    wait_for 30 port_open "$S3_PORT" || die "moto did not start (see $RUN/moto.log)"
  fi
  # moto accepts unsigned requests: PUT creates the bucket (200 again if it is already ours).
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET" || die "could not create bucket $BUCKET"
}

write_pixpress_config() {
  # Plan limits stay the defaults; the store's credentials are moto's (any key works there).
  cat >"$RUN/pixpress.toml" <<EOF
[storage]
url = "s3://$BUCKET/results"
endpoint = "http://127.0.0.1:$S3_PORT"
region = "us-east-1"
access_key_id = "deploy"
secret_access_key = "deploy-secret"
EOF
}

pixpress() { "$BIN" --database "$DATABASE_URL" --data-dir "$RUN/keys-cli" "$@"; }

instance_ready() { curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$1/readyz"; }

start_instance() { # index (1-based)
  local n=$1 port=${PORTS[$(($1 - 1))]}
  local pidfile=$RUN/pixpress-$n.pid
  if alive "$pidfile" && instance_ready "$port"; then return 0; fi
  port_open "$port" && die "127.0.0.1:$port is taken by something else"
  mkdir -p "$RUN/pixpress-$n"
  # Hosted URLs name the balancer, not the instance: any instance serves any result. No
  # transparent huge pages, as the other manifests here (README "Sizing").
  MIMALLOC_ALLOW_THP=0 nohup "$BIN" --config "$RUN/pixpress.toml" --data-dir "$RUN/pixpress-$n" --database "$DATABASE_URL" \
    serve --listen "127.0.0.1:$port" --redis "redis://127.0.0.1:$REDIS_PORT/" \
    --public-url "$BASE_URL" --max-input-bytes "$MAX_INPUT_BYTES" \
    >>"$RUN/pixpress-$n.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_for 60 instance_ready "$port" || die "instance $n did not become ready (see $RUN/pixpress-$n.log)"
  say "instance $n ready on 127.0.0.1:$port (pid $(cat "$pidfile"))"
}

write_nginx_config() {
  local dir=$RUN/nginx servers="" port
  mkdir -p "$dir/tmp"
  for port in "${PORTS[@]}"; do
    servers+="    server 127.0.0.1:$port max_fails=1 fail_timeout=3s;"$'\n'
  done
  # pixpress accepts an upload of max_input_bytes plus 1 MiB for the options part.
  local body_limit=$(((MAX_INPUT_BYTES + 1048576 + 1048575) / 1048576))m
  local user=""
  if [ "$(id -u)" = "0" ]; then
    # Started as root, the workers drop to Debian's www-data; they write request bodies there.
    user="user www-data;"
    chown www-data "$dir/tmp"
  fi
  cat >"$dir/nginx.conf.new" <<EOF
# Generated by deploy/local.sh: nginx in front of the pixpress instances.
$user
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  log_format upstream '\$remote_addr "\$request" \$status \$body_bytes_sent '
                      'upstream=\$upstream_addr upstream_status=\$upstream_status rt=\$request_time';
  access_log $dir/access.log upstream;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;

  # No upstream keepalive: a POST on a pooled connection the instance has just closed would be
  # answered 502 (nginx never re-sends a non-idempotent request), although the instance is fine.
  upstream pixpress {
$servers  }

  server {
    listen 127.0.0.1:$NGINX_PORT;
    client_max_body_size $body_limit;
    # Retry on the next instance when one cannot be reached or times out. nginx retries a POST
    # only if it was not yet sent (connection refused): a POST in flight on an instance that
    # dies is answered 502 and is not repeated, so it is never processed or metered twice.
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 3;
    proxy_connect_timeout 2s;
    proxy_read_timeout 120s;
    proxy_send_timeout 120s;
    proxy_request_buffering on;

    location / {
      proxy_pass http://pixpress;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      # Which instance answered (a list when nginx moved on to another one).
      add_header X-Upstream \$upstream_addr always;
    }
  }
}
EOF
}

start_nginx() {
  local dir=$RUN/nginx
  if alive "$dir/nginx.pid" && cmp -s "$dir/nginx.conf.new" "$dir/nginx.conf"; then
    rm -f "$dir/nginx.conf.new"
    return 0
  fi
  mv "$dir/nginx.conf.new" "$dir/nginx.conf"
  if alive "$dir/nginx.pid"; then
    # A changed config (other ports): nginx's graceful reload; requests in flight finish.
    nginx -e "$dir/error.log" -c "$dir/nginx.conf" -t -q || die "nginx config refused (see $dir/error.log)"
    nginx -e "$dir/error.log" -c "$dir/nginx.conf" -s reload
    return 0
  fi
  nginx -e "$dir/error.log" -c "$dir/nginx.conf" -t -q || die "nginx config refused (see $dir/error.log)"
  nginx -e "$dir/error.log" -c "$dir/nginx.conf"
  wait_for 10 port_open "$NGINX_PORT" || die "nginx did not start (see $dir/error.log)"
}

ensure_key() {
  local keyfile=$RUN/api-key
  if ! [ -s "$keyfile" ]; then
    pixpress keys create --plan "$PLAN" --label deploy >"$keyfile.new" 2>/dev/null
    mv "$keyfile.new" "$keyfile"
  fi
  KEY=$(cat "$keyfile")
}

cmd_start() {
  mkdir -p "$RUN"
  # PostgreSQL runs as the postgres user, which must be able to reach its data dir.
  if [ "$(id -u)" = "0" ]; then chmod 755 "$RUN"; fi
  install_packages
  pixpress_bin
  start_postgres
  start_redis
  start_s3
  write_pixpress_config
  # The first instance runs the migrations alone; the others find the schema in place.
  local n
  for n in $(seq ${#PORTS[@]}); do start_instance "$n"; done
  write_nginx_config
  start_nginx
  ensure_key
  curl -fsS -o /dev/null "$BASE_URL/readyz" || die "nginx does not reach the instances"
  say "up: $BASE_URL (nginx → ${PORTS[*]}), PostgreSQL :$PG_PORT, Redis :$REDIS_PORT, S3 :$S3_PORT"
  say "run dir: $RUN"
  echo "PIXPRESS_URL=$BASE_URL"
  echo "PIXPRESS_KEY=$KEY"
  echo "try: curl -F 'image=@photo.jpg' -F 'data={\"lossy\": true}' -H 'Authorization: Bearer $KEY' $BASE_URL/v1/upload"
}

stop_pid() { # pidfile name: SIGTERM (in-flight requests finish), SIGKILL after 20 s
  local pidfile=$1 name=$2 pid
  if alive "$pidfile"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    wait_for 20 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
    say "stopped $name"
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  [ -d "$RUN" ] || { say "nothing to stop ($RUN does not exist)"; return 0; }
  if alive "$RUN/nginx/nginx.pid"; then
    local pid
    pid=$(cat "$RUN/nginx/nginx.pid")
    # QUIT: nginx finishes the requests in flight, then exits.
    kill -QUIT "$pid" 2>/dev/null || true
    wait_for 10 bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid" 2>/dev/null || true
    say "stopped nginx"
  fi
  local f
  for f in "$RUN"/pixpress-*.pid; do
    [ -e "$f" ] && stop_pid "$f" "$(basename "$f" .pid)"
  done
  stop_pid "$RUN/moto.pid" "moto"
  stop_pid "$RUN/redis.pid" "Redis"
  if [ -f "$RUN/pg/postmaster.pid" ]; then
    local pgbin
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
    as_pg_owner "$pgbin/pg_ctl" -D "$RUN/pg" -m fast -w stop >/dev/null 2>&1 || true
    say "stopped PostgreSQL"
  fi
}

cmd_status() {
  local up=0 n
  show() { if "${@:2}"; then echo "$1: up"; else echo "$1: down"; up=1; fi; }
  show "postgresql 127.0.0.1:$PG_PORT" port_open "$PG_PORT"
  show "redis 127.0.0.1:$REDIS_PORT" port_open "$REDIS_PORT"
  show "s3 (moto) 127.0.0.1:$S3_PORT" port_open "$S3_PORT"
  for n in $(seq ${#PORTS[@]}); do
    show "pixpress-$n 127.0.0.1:${PORTS[$((n - 1))]}" instance_ready "${PORTS[$((n - 1))]}"
  done
  show "nginx $BASE_URL" port_open "$NGINX_PORT"
  return $up
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
