#!/usr/bin/env bash
# The measurements behind deploy/README.md's sizing rule. For each scenario it starts a fresh
# `pixpress serve` (embedded backend, a temp dir, a plan without limits) with --workers N, keeps
# a fixed number of uploads in flight with curl, and reports images/s and the process's memory:
# RSS at rest before the load, peak RSS (VmHWM) after it.
#   bash deploy/sizing.sh            # PIXPRESS_BIN, else target/release/pixpress (built if missing)
# Scenarios: throughput vs workers on 4.9 MP photos (lossy, quality 75); memory vs workers on
# 8.3 MP photos, at fixed quality and with the auto-quality search (the costliest common request).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CORPUS=$ROOT/../shared/corpus
BIN=${PIXPRESS_BIN:-$ROOT/target/release/pixpress}
if [ ! -x "$BIN" ]; then (cd "$ROOT" && cargo build --release --locked --quiet); fi
IN_FLIGHT=${SIZING_IN_FLIGHT:-8}
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_server() { # workers
  rm -rf "$work/data"; mkdir -p "$work/data"
  printf '[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n' >"$work/plans.toml"
  "$BIN" --config "$work/plans.toml" --data-dir "$work/data" serve --listen 127.0.0.1:0 \
    --workers "$1" --max-queue 256 >"$work/serve.log" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/serve.log" && break; sleep 0.1; done
  base=$(sed -n 's/^pixpress listening on //p' "$work/serve.log")
  key=$(grep -m1 '^  pxk_' "$work/serve.log" | tr -d ' ')
}

stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
kib() { awk -v f="$1" '$1 == f":" {print $2}' "/proc/$pid/status"; }

# workers file options requests → "workers=… img/s=… rest_mib=… peak_mib=…"
scenario() {
  local workers=$1 file=$2 options=$3 requests=$4
  start_server "$workers"
  # One warm-up request: code pages and pools in place before "at rest" is read.
  curl -s -o /dev/null -H "Authorization: Bearer $key" -F "image=@$file" -F "data=$options" "$base/v1/upload"
  local rest
  rest=$(kib VmRSS)
  local t0 t1
  t0=$(date +%s.%N)
  seq "$requests" | xargs -P "$IN_FLIGHT" -I@@ curl -s -o /dev/null -w '%{http_code}\n' \
    -H "Authorization: Bearer $key" -F "image=@$file" -F "data=$options" "$base/v1/upload" \
    >"$work/codes"
  t1=$(date +%s.%N)
  local ok
  ok=$(grep -c '^200$' "$work/codes" || true)
  printf 'workers=%s in_flight=%s ok=%s/%s img_per_s=%.2f rest_mib=%.0f peak_mib=%.0f\n' \
    "$workers" "$IN_FLIGHT" "$ok" "$requests" "$(echo "$ok / ($t1 - $t0)" | bc -l)" \
    "$(echo "$rest / 1024" | bc -l)" "$(echo "$(kib VmHWM) / 1024" | bc -l)"
  stop_server
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); binary: $BIN"
echo "== throughput: photo_wood.jpg (2560x1920, 4.9 MP), lossy quality 75 =="
for w in 1 2 3 4; do scenario "$w" "$CORPUS/photo_wood.jpg" '{"lossy": true, "quality": 75}' 24; done
echo "== memory: photo_elephants_art.jpg (3840x2160, 8.3 MP), lossy quality 75 =="
for w in 1 2 4; do scenario "$w" "$CORPUS/photo_elephants_art.jpg" '{"lossy": true, "quality": 75}' 12; done
echo "== memory: photo_elephants_art.jpg (8.3 MP), lossy, auto quality (SSIMULACRA2 search) =="
for w in 1 2 4; do scenario "$w" "$CORPUS/photo_elephants_art.jpg" '{"lossy": true}' 12; done
echo "== memory: photo_elephants_art.jpg (8.3 MP), lossless =="
for w in 1 2; do scenario "$w" "$CORPUS/photo_elephants_art.jpg" '{}' 8; done
