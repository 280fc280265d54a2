#!/usr/bin/env bash
# The README's first command: installs the build tools if missing (scripts/build-deps.sh), builds
# the release binary and serves the API (default http://127.0.0.1:8080, state in ./pixpress-data/).
# Any arguments go to `pixpress serve`, e.g. `bash scripts/serve.sh --listen 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
exec cargo run --release --locked -- serve "$@"
