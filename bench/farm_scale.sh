#!/usr/bin/env bash
# Scheduler scale: a real manifold-coordinator with WORKERS simulated workers
# (bench/farm_scale.cc) and a build of about 2 x STAGES queued jobs.
# Prints placement latency p50/p99 and the coordinator's RSS (also to
# bench/results/farm_scale.md). Not part of the test command.
#   bash bench/farm_scale.sh [WORKERS] [STAGES] [SLOTS] [JOB_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$PWD/build/bin
[ -x "$bin/farm_scale" ] || bash scripts/build.sh
work=$(mktemp -d /tmp/mf-farm-scale-XXXXXX)
trap 'rm -rf "$work"' EXIT
for arch in amd64 arm64; do
  bash tests/testdata/busybox-rootfs.sh "$arch" "$work/bb-$arch" >/dev/null
  MANIFOLD_ROOT=$work/coordinator "$bin/manifold" import --platform "linux/$arch" -t busybox:latest "$work/bb-$arch" >/dev/null
done
mkdir -p bench/results
{
  echo "# Scheduler scale ($(date -u +%Y-%m-%d), $(nproc) cores, simulator on the same cores)"
  echo
  echo '```'
  "$bin/farm_scale" "$bin/manifold-coordinator" "$bin/manifold" "$work/coordinator" "${1:-1000}" "${2:-5000}" "${3:-2}" "${4:-20000}"
  echo '```'
} | tee bench/results/farm_scale.md
