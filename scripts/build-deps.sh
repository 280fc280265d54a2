#!/usr/bin/env bash
# Installs what building pixpress needs beyond a Rust toolchain, from Debian's packages, when it
# is missing: nasm (mozjpeg's and libaom's SIMD assembly), cmake (libaom, the AVIF codec, is
# built from the crate's vendored source), pkg-config and a C compiler for the -sys crates.
# Idempotent and quiet when everything is there. Sourced by scripts/serve.sh, scripts/test.sh
# and .ci/run, so neither README command needs anything installed by hand first.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

if ! command -v cargo >/dev/null; then
  echo "pixpress needs a Rust toolchain (1.91 or later): https://rustup.rs" >&2
  exit 1
fi

need=()
command -v nasm >/dev/null || need+=(nasm)
command -v cmake >/dev/null || need+=(cmake)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cc >/dev/null || need+=(build-essential)
command -v openssl >/dev/null || need+=(openssl)   # the TLS test drives openssl s_client
if [ ${#need[@]} -gt 0 ]; then
  echo "installing build tools from Debian's packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
