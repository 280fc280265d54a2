#!/usr/bin/env bash
# One command for the speed benchmark: builds the release server and benchtool, installs the
# peer (sharp 0.35 from npm into bench/.peers, Pillow for the reference resize), then runs
# bench/thumbnail.py, which starts both servers on loopback and writes its section of
# bench/RESULTS.md. Run it on an otherwise idle machine. Arguments go to thumbnail.py
# (--seconds, --open-seconds, --no-auto, --no-oracle, --no-write).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
command -v node >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -qq; apt-get install -y -qq nodejs npm >/dev/null; }
mkdir -p bench/.peers
if [ "$(node -p "try{require('./bench/.peers/node_modules/sharp/package.json').version}catch(e){''}")" != 0.35.5 ]; then
  npm install --silent --no-audit --no-fund --prefix bench/.peers sharp@0.35.5
fi
python3 -c "import PIL" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pillow
cargo build --release --locked --quiet -p pixpress --bin pixpress
cargo build --release --locked --quiet -p pixpress-core --example benchtool
exec python3 bench/thumbnail.py --sharp-version 0.35.5 "$@"
