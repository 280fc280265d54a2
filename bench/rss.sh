#!/usr/bin/env bash
# Peak memory of the release server under 8 concurrent 12 MP uploads (issue: memory guard).
# Makes a 4000x3000 JPEG from a corpus photo (Pillow), starts `pixpress serve`, fires 8 uploads
# at once (lossy, and again with a resize), and reports the server's peak RSS (VmHWM).
# Usage: bash bench/rss.sh [extra serve flags, e.g. --memory-budget-mib 512]
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out; mkdir -p "$out"
python3 -c "import PIL" 2>/dev/null || pip install -q pillow
python3 - <<'PY'
from PIL import Image
Image.open("../shared/corpus/photo_wood.jpg").resize((4000, 3000), Image.LANCZOS).save("bench/out/12mp.jpg", quality=90)
PY
cargo build --release --quiet
data=$(mktemp -d)
# The benchmark measures memory, not plans: lift the free plan's rate limit and quota.
printf '[plans.free]\nrequests_per_second = 100000\nbytes_per_month = 1000000000000000\n' > "$out/unlimited.toml"
./target/release/pixpress serve --listen 127.0.0.1:0 --data-dir "$data" --config "$out/unlimited.toml" "$@" > "$out/serve.log" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out/serve.log" && break; sleep 0.2; done
base=$(sed -n 's/^pixpress listening on //p' "$out/serve.log")
key=$(grep -m1 '^  pxk_' "$out/serve.log" | tr -d ' ')
run_round() {
  local data_json=$1
  local start=$(date +%s.%N)
  for i in $(seq 8); do
    curl -s -o "$out/r$i.json" -w '%{http_code}\n' -F "image=@$out/12mp.jpg" -F "data=$data_json" "$base/v1/upload" > "$out/status-$i" &
  done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
  local end=$(date +%s.%N)
  echo "statuses: $(cat "$out"/status-* | sort | uniq -c | tr '\n' ' ')  wall: $(echo "$end - $start" | bc) s"
}
echo "input: $(stat -c %s "$out/12mp.jpg") bytes, 4000x3000"
echo "round 1: 8 concurrent lossy uploads"
run_round "{\"api_key\": \"$key\", \"lossy\": true}"
echo "round 2: 8 concurrent uploads with resize fit 800x600"
run_round "{\"api_key\": \"$key\", \"lossy\": true, \"resize\": {\"strategy\": \"fit\", \"width\": 800, \"height\": 600}}"
echo "peak RSS (VmHWM): $(grep VmHWM /proc/$pid/status | awk '{print $2/1024 " MiB"}')"
echo "current RSS (VmRSS): $(grep VmRSS /proc/$pid/status | awk '{print $2/1024 " MiB"}')"
