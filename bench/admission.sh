#!/usr/bin/env bash
# Admission figures (issue 20), on a release build with nothing else running:
#  1. one request of each kind on a fresh server (12 MP JPEG: lossless re-code, lossy searched,
#     lossy q80, thumbnail, WebP; 90 MP PNG: re-code, thumbnail, JPEG): peak RSS over idle per
#     source pixel beside what pixpress_core::predicted_memory charges for it;
#  2. the pressure test: 16 concurrent 12 MP JPEG uploads and a 90 MP PNG under a 1024 MiB
#     budget: statuses, peak RSS against the budget, RSS afterwards against idle.
# Usage: bash bench/admission.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
cargo test --release --locked --test admission -- --ignored --nocapture memory_per_pixel_by_kind
cargo test --release --locked --test admission -- --nocapture sixteen_12mp
