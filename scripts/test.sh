#!/usr/bin/env bash
# The test command named in the README: unit tests of every crate and the end-to-end tests in
# tests/, which start the real server binary on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
