#!/usr/bin/env bash
# Installs the peers bench/compare.py measures pixpress against, into bench/.peers (gitignored)
# and from Debian: sharp (npm, libvips + mozjpeg), cjpeg (libjpeg-turbo), pngquant, and oxipng
# (the pyoxipng wheel from PyPI wraps the same oxipng crate pixpress uses).
set -euo pipefail
cd "$(dirname "$0")"
SUDO=""; [ "$(id -u)" != "0" ] && SUDO="sudo"
need=()
command -v cjpeg >/dev/null || need+=(libjpeg-turbo-progs)
command -v pngquant >/dev/null || need+=(pngquant)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
mkdir -p .peers
[ -d .peers/node_modules/sharp ] || npm install --silent --prefix .peers sharp@0.35.5
[ -d .peers/py/oxipng ] || python3 -m pip install -q --target .peers/py pyoxipng
echo "peers installed in bench/.peers"
