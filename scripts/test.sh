#!/usr/bin/env bash
# The test command named in the README: starts PostgreSQL and Redis on loopback (installing them
# from Debian's packages if needed), then runs the unit tests of every crate and the end-to-end
# tests in tests/, which start the real server binary on loopback ports against both the
# embedded (SQLite + in-memory) and the PostgreSQL + Redis backends.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
cargo test --workspace --locked "$@"
