#!/usr/bin/env bash
# The test command named in the README: installs the build tools if missing (build-deps.sh),
# starts PostgreSQL, Redis and the object-store emulators on loopback (installing them from
# Debian's packages, PyPI and npm if needed), then runs the
# unit tests of every crate and the end-to-end tests in tests/, which start the real server
# binary on loopback ports against both the embedded (SQLite + in-memory) and the PostgreSQL +
# Redis backends, and against the S3 / Azure Blob / GCS emulators.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
source scripts/services.sh
# services.sh has installed every tool the end-to-end tests drive (the clients, Chromium): a
# test that cannot find one fails rather than skips.
export PIXPRESS_REQUIRE_TOOLS=1
cargo test --workspace --locked "$@"
