#!/usr/bin/env bash
# Installs and starts the real services the tests use, on 127.0.0.1: PostgreSQL on port 5439 (a
# private cluster under $PIXPRESS_PGDATA, trust auth) and Redis on port 6390 from Debian's
# packages, and the object-store emulators (S3, Azure Blob, GCS) from PyPI and npm, below.
# Idempotent: already running services are left alone. Source it to get the URLs:
#   source scripts/services.sh   # exports PIXPRESS_TEST_DATABASE_URL, PIXPRESS_TEST_REDIS_URL,
#                                # PIXPRESS_TEST_{S3,AZURITE,GCS}_ENDPOINT, PIXPRESS_TEST_PYTHON
#                                # (its venv also holds schemathesis, for tests/openapi.rs),
#                                # PIXPRESS_TEST_CHROMIUM, PIXPRESS_TEST_NODE_PATH,
#                                # PIXPRESS_TEST_TINIFY_NODE (Tinify's Node client)
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
as_postgres() {
  if [ "$(id -u)" = "0" ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

# The emulators' Python environment (moto, the SDKs the tests read back with), in a cache
# directory outside the repository. deploy/local.sh reuses it for its S3 store:
# `source scripts/services.sh --install-python-tools` installs it and returns.
PIXPRESS_TOOLS=${PIXPRESS_TOOLS:-$HOME/.cache/pixpress-test-tools}
PIXPRESS_PY="$PIXPRESS_TOOLS/venv/bin/python"
install_python_tools() {
  # schemathesis (tests/openapi.rs) generates requests from GET /v1/openapi.json and checks the answers.
  if ! "$PIXPRESS_PY" -c 'import moto, flask_cors, boto3, azure.storage.blob, gcp_storage_emulator, schemathesis' 2>/dev/null; then
    mkdir -p "$PIXPRESS_TOOLS"
    python3 -m venv "$PIXPRESS_TOOLS/venv"
    "$PIXPRESS_PY" -m pip install -q --disable-pip-version-check \
      'moto[s3]==5.2.5' 'flask<4' 'flask-cors<7' 'azure-storage-blob==12.31.1' 'gcp-storage-emulator==2026.7.19' \
      'schemathesis==4.32.5'
  fi
}
if [ "${1:-}" = "--install-python-tools" ]; then
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
  }
  install_python_tools
  return 0
fi

need=()
command -v redis-server >/dev/null || need+=(redis-server)
# The playground test runs the curl line the page shows.
command -v curl >/dev/null || need+=(curl)
# tests/deploy.rs runs deploy/local.sh: Debian's nginx in front of three instances.
command -v nginx >/dev/null || need+=(nginx)
# The emulators' virtualenv: a machine may have no Python, or one without its venv module.
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3 python3-venv)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# tests/inputs.rs makes its JPEG XL and animated AVIF inputs with Debian's encoders.
command -v cjxl >/dev/null || need+=(libjxl-tools)
command -v avifenc >/dev/null || need+=(libavif-bin)
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

# Object-store emulators for the storage tests, installed from PyPI and npm into a cache
# directory (not the repository) and started on loopback:
#   S3:    moto's server                          on $PIXPRESS_S3_PORT    (default 9390)
#   Azure: Azurite's blob service                 on $PIXPRESS_AZURE_PORT (default 10390)
#   GCS:   gcp-storage-emulator (JSON API subset) on $PIXPRESS_GCS_PORT   (default 9391)
# The same Python environment holds boto3 and azure-storage-blob, which the tests use (through
# tests/store_client.py) to read what pixpress wrote, independently of pixpress.
PIXPRESS_S3_PORT=${PIXPRESS_S3_PORT:-9390}
PIXPRESS_AZURE_PORT=${PIXPRESS_AZURE_PORT:-10390}
PIXPRESS_GCS_PORT=${PIXPRESS_GCS_PORT:-9391}
mkdir -p "$PIXPRESS_TOOLS"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_python_tools
# Kraken.io's own Python client, for tests/kraken.rs. It pins urllib3<2 although it only calls
# requests (already here for moto), so it is installed without its pins to leave the others be.
if ! "$PIXPRESS_PY" -c 'import krakenio, requests' 2>/dev/null; then
  "$PIXPRESS_PY" -m pip install -q --disable-pip-version-check requests
  "$PIXPRESS_PY" -m pip install -q --disable-pip-version-check --no-deps 'krakenio==0.2.0'
fi
if ! "$PIXPRESS_PY" -c 'import tinify' 2>/dev/null; then
  "$PIXPRESS_PY" -m pip install -q --disable-pip-version-check 'tinify==1.7.2'
fi
AZURITE="$PIXPRESS_TOOLS/node/node_modules/.bin/azurite-blob"
if [ ! -x "$AZURITE" ]; then
  if ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  npm install --silent --no-audit --no-fund --prefix "$PIXPRESS_TOOLS/node" azurite@3.37.0 >/dev/null
fi
TINIFY_NODE="$PIXPRESS_TOOLS/tinify-node/node_modules/tinify"
if [ ! -f "$TINIFY_NODE/package.json" ]; then
  npm install --silent --no-audit --no-fund --prefix "$PIXPRESS_TOOLS/tinify-node" tinify@1.8.3 >/dev/null
fi

if ! port_open "$PIXPRESS_S3_PORT"; then
  nohup "$PIXPRESS_TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$PIXPRESS_S3_PORT" \
    >"$PIXPRESS_TOOLS/moto.log" 2>&1 </dev/null &
fi
if ! port_open "$PIXPRESS_AZURE_PORT"; then
  nohup "$AZURITE" --blobHost 127.0.0.1 --blobPort "$PIXPRESS_AZURE_PORT" \
    --location "$PIXPRESS_TOOLS/azurite-data" --skipApiVersionCheck --silent \
    >"$PIXPRESS_TOOLS/azurite.log" 2>&1 </dev/null &
fi
if ! port_open "$PIXPRESS_GCS_PORT"; then
  nohup "$PIXPRESS_TOOLS/venv/bin/gcp-storage-emulator" start --host 127.0.0.1 \
    --port "$PIXPRESS_GCS_PORT" --in-memory >"$PIXPRESS_TOOLS/gcs.log" 2>&1 </dev/null &
fi
for port in "$PIXPRESS_S3_PORT" "$PIXPRESS_AZURE_PORT" "$PIXPRESS_GCS_PORT"; do
  for _ in $(seq 150); do port_open "$port" && break; sleep 0.2; done
  port_open "$port" || { echo "services: nothing listens on 127.0.0.1:$port (logs in $PIXPRESS_TOOLS)" >&2; exit 1; }
done
export PIXPRESS_TEST_S3_ENDPOINT="http://127.0.0.1:$PIXPRESS_S3_PORT"
export PIXPRESS_TEST_AZURITE_ENDPOINT="http://127.0.0.1:$PIXPRESS_AZURE_PORT/devstoreaccount1"
export PIXPRESS_TEST_GCS_ENDPOINT="http://127.0.0.1:$PIXPRESS_GCS_PORT"
export PIXPRESS_TEST_PYTHON="$PIXPRESS_PY"
export PIXPRESS_TEST_TINIFY_NODE="$TINIFY_NODE"
echo "services: S3 (moto) at $PIXPRESS_TEST_S3_ENDPOINT, Azurite at $PIXPRESS_TEST_AZURITE_ENDPOINT, GCS emulator at $PIXPRESS_TEST_GCS_ENDPOINT"

# The playground's browser test (tests/playground.rs): Debian's Chromium, driven headless by
# playwright-core from npm (no browser download of its own; it is pointed at /usr/bin/chromium).
PIXPRESS_CHROMIUM=${PIXPRESS_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$PIXPRESS_CHROMIUM" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
# 1.61 is the last playwright-core that runs on Debian bookworm's Node.js 18 (1.62 wants 20).
PLAYWRIGHT_VERSION=1.61.0
if ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" \
    "$PIXPRESS_TOOLS/playwright/node_modules/playwright-core/package.json" 2>/dev/null; then
  npm install --silent --no-audit --no-fund --prefix "$PIXPRESS_TOOLS/playwright" "playwright-core@$PLAYWRIGHT_VERSION" >/dev/null
fi
export PIXPRESS_TEST_CHROMIUM="$PIXPRESS_CHROMIUM"
export PIXPRESS_TEST_NODE_PATH="$PIXPRESS_TOOLS/playwright/node_modules"
echo "services: Chromium at $PIXPRESS_TEST_CHROMIUM, playwright-core in $PIXPRESS_TEST_NODE_PATH"
