#!/usr/bin/env bash
# Fuzzing on the stable toolchain: builds the libFuzzer targets in fuzz/ with plain
# `cargo build --release` and the sanitizer-coverage flags libFuzzer reads (stable -C flags; no
# nightly, no cargo-fuzz, no RUSTC_BOOTSTRAP), into fuzz/target, then runs each target for a
# fixed time from a seed corpus read out of ../shared/corpus. A target stops at its first crash
# (any panic in the parsers; in the pipeline, a panic outside a dependency even when a panic
# boundary would catch it), timeout or out-of-memory; the others still run, the script exits
# non-zero, and the input that did it is kept under fuzz/artifacts/<target>/ and printed in hex.
#
#   bash scripts/fuzz.sh [seconds-per-target] [target...]     (default: 60 s; all three targets)
#
# Needs what the main build needs (scripts/build-deps.sh) plus a C++ compiler (libFuzzer itself
# is C++, built by libfuzzer-sys). Set PIXPRESS_FUZZ_BUILD_ONLY=1 to build without running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh

if ! command -v c++ >/dev/null; then
  echo "installing a C++ compiler from Debian's packages (libFuzzer is C++): g++" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq g++ >/dev/null
fi

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(pipeline options multipart); fi
for target in "${targets[@]}"; do
  case "$target" in
    pipeline | options | multipart) ;;
    *) echo "no fuzz target \"$target\" (there are pipeline, options, multipart)" >&2; exit 2 ;;
  esac
done

corpus_src=../shared/corpus
if [ ! -d "$corpus_src" ]; then
  echo "the seed corpus is read from ../shared/corpus (see README)" >&2
  exit 1
fi

export RUST_BACKTRACE=1   # a panic prints where it came from (there is no sanitizer to do it)

# Coverage instrumentation for libFuzzer's feedback, the way cargo-fuzz sets it up minus the
# nightly-only parts (-Zsanitizer): edge counters, the PC table and comparison tracing. The
# explicit --target keeps these flags off build scripts and proc macros, which run on the host
# and must not need libFuzzer's symbols.
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares"
build_start=$SECONDS
# The fuzz crate builds with the workspace's locked versions: its lock file is derived from
# Cargo.lock on every run (cargo drops what the fuzz crate does not use and adds the crate
# itself), so a dependency added to the workspace never leaves the fuzz build behind.
cp Cargo.lock fuzz/Cargo.lock
cargo metadata --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
cargo build --locked --release --manifest-path fuzz/Cargo.toml --target-dir fuzz/target \
  --target "$host" --bins
echo "fuzz build: $((SECONDS - build_start)) s" >&2
if [ "${PIXPRESS_FUZZ_BUILD_ONLY:-0}" = "1" ]; then exit 0; fi

bin_dir="fuzz/target/$host/release"
work="fuzz/target/fuzz-work"   # seeds and what the runs add to them: never in git

# Seeds: the small images of the corpus (header-heavy edge files, PngSuite), the JSON option
# examples in fuzz/seeds, and multipart uploads built from both.
seed() {
  local name="$1"
  rm -rf "$work/seeds/$name"
  mkdir -p "$work/seeds/$name" "$work/corpus/$name" "fuzz/artifacts/$name"
}

seed pipeline
find "$corpus_src/edge" "$corpus_src/pngsuite" -type f -size -64k ! -name '*.md' \
  -exec cp {} "$work/seeds/pipeline/" \;

seed options
cp fuzz/seeds/options/*.json "$work/seeds/options/"

seed multipart
i=0
for json in fuzz/seeds/options/*.json; do
  for image in "$corpus_src/edge/png_palette_trns.png" "$corpus_src/edge/gray.jpg"; do
    i=$((i + 1))
    {
      printf 'multipart/form-data; boundary=XyZ\r\n'
      printf -- '--XyZ\r\nContent-Disposition: form-data; name="data"\r\n'
      printf 'Content-Type: application/json\r\n\r\n'
      cat "$json"
      printf '\r\n--XyZ\r\nContent-Disposition: form-data; name="%s"; filename="a.img"\r\n' \
        "$([ $((i % 2)) = 0 ] && echo image || echo file)"
      printf 'Content-Type: application/octet-stream\r\n\r\n'
      head -c 3000 "$image"
      printf '\r\n--XyZ--\r\n'
    } >"$work/seeds/multipart/upload-$i"
  done
done

# Per target: the longest input and the slowest single run allowed. The pipeline decodes and
# re-encodes (up to 4 MP, the target's own limit); the parsers answer in microseconds.
max_len() { case "$1" in pipeline) echo 65536 ;; *) echo 16384 ;; esac; }
timeout_s() { case "$1" in pipeline) echo 90 ;; *) echo 5 ;; esac; }

# libFuzzer's progress lines (each new input, each pulse) and its suggested dictionary: left
# out of the log; the start, the final stats and any failure with its stack trace stay.
quiet() {
  grep --line-buffered -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|^[[:space:]]+NEW_FUNC|Uses: [0-9]+$' || true
}

status=0
for target in "${targets[@]}"; do
  echo "fuzzing $target for $seconds s" >&2
  dict=()
  if [ -f "fuzz/dict/$target.dict" ]; then dict=("-dict=fuzz/dict/$target.dict"); fi
  touch "$work/started-$target"
  set +e
  "$bin_dir/$target" \
    -max_total_time="$seconds" \
    -max_len="$(max_len "$target")" \
    -timeout="$(timeout_s "$target")" \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$target/" \
    "${dict[@]}" \
    "$work/corpus/$target" "$work/seeds/$target" 2>&1 | quiet >&2
  result=${PIPESTATUS[0]}
  set -e
  if [ "$result" != 0 ]; then
    status=1
    echo "fuzz target $target failed; the input that did it:" >&2
    find "fuzz/artifacts/$target" -type f -newer "$work/started-$target" 2>/dev/null | while read -r artifact; do
      echo "$artifact ($(wc -c <"$artifact") bytes):" >&2
      od -A x -t x1z "$artifact" | head -40 >&2
    done
  fi
done
exit "$status"
