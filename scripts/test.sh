#!/usr/bin/env bash
# Sets up and runs every test: unit tests (ctest), the same tests under
# AddressSanitizer + UBSan, and each fuzz target for FUZZ_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
JOBS=$(nproc)

step() { printf '\n=== %s\n' "$*"; }

step "build (RelWithDebInfo)"
bash scripts/build.sh

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
count() { sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$1" | tail -n1; }

step "binfmt_misc: qemu handlers for foreign platforms (when the machine allows)"
bash scripts/binfmt.sh || echo "binfmt: not available here; emulated-platform tests will skip"

step "test data: Debian busybox-static for amd64 and arm64 (cached)"
# Fetched once here so parallel tests never race for apt.
for arch in amd64 arm64; do
  bash tests/testdata/busybox-rootfs.sh "$arch" "$logs/busybox-$arch" && rm -rf "$logs/busybox-$arch"
done

step "unit tests"
ctest --test-dir build --output-on-failure -j"$JOBS" | tee "$logs/unit"

step "unit tests under ASan+UBSan (the farm's multi-process tests run once, above)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMF_SANITIZE=ON -DMF_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E '^(Netns)?ClusterTest[.]' | tee "$logs/asan"

step "fuzz targets (clang-14 libFuzzer, ${FUZZ_SECONDS}s each)"
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMF_FUZZ=ON >/dev/null
cmake --build build-fuzz
bash tests/fuzz/run.sh build-fuzz "$FUZZ_SECONDS"

total=$(( $(count "$logs/unit") + $(count "$logs/asan") + 5 ))
step "all tests passed"
echo "tests: $total passed, 0 failed"
