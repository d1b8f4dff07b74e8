#!/usr/bin/env bash
# The farm on examples/busybox-multistage for linux/amd64 and linux/arm64,
# cold: two workers against one worker (each a separate manifold-worker
# process with one job slot, a coordinator, all on 127.0.0.1), against
# buildah on the same machine, measured in one run (best of ROUNDS). Plus
# bench/farm_bench: blob transfer between nodes against cat, and the
# scheduler's placement over 1,000 simulated workers.
# Writes bench/results/farm.md. Not part of the test command.
#   bash bench/farm_vs_buildah.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=$PWD/build/bin
[ -x "$bin/manifold-coordinator" ] || bash scripts/build.sh
command -v buildah >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q buildah >/dev/null; }
bash scripts/binfmt.sh >/dev/null

work=$(mktemp -d /tmp/mf-farm-bench-XXXXXX)
pids=()
bh() { buildah --root "$work/bh-root" --runroot "$work/bh-run" --storage-driver overlay "$@"; }
cs() { echo "containers-storage:[overlay@$work/bh-root+$work/bh-run]$1"; }
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  bh rm -a >/dev/null 2>&1 || true
  umount -R "$work/bh-root/overlay" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

for arch in amd64 arm64; do bash tests/testdata/busybox-rootfs.sh "$arch" "$work/bb-$arch" >/dev/null; done
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

farm() {  # workers -> seconds of a cold build
  local n=$1
  local st=$work/farm-$n
  rm -rf "$st"; mkdir -p "$st"
  for arch in amd64 arm64; do
    MANIFOLD_ROOT=$st/client "$bin/manifold" import --platform "linux/$arch" -t busybox:latest "$work/bb-$arch" >/dev/null
  done
  local token; token=$("$bin/manifold-coordinator" token --state-dir "$st/coord" | tail -1)
  "$bin/manifold-coordinator" --listen 127.0.0.1:$port --state-dir "$st/coord" >"$st/coord.log" 2>&1 & pids+=($!)
  for i in $(seq 1 "$n"); do
    "$bin/manifold-worker" --join 127.0.0.1:$port --token "$token" --listen 127.0.0.1:0 \
      --state-dir "$st/w$i" --id "w$i" --slots 1 >"$st/w$i.log" 2>&1 & pids+=($!)
  done
  for i in $(seq 1 100); do
    [ "$(grep -c ' ready: ' "$st/coord.log" || true)" -ge "$n" ] && break; sleep 0.1
  done
  local t; t=$(now)
  MANIFOLD_ROOT=$st/client "$bin/manifold" build --progress quiet --coordinator 127.0.0.1:$port \
    --token "$token" --platform linux/amd64,linux/arm64 examples/busybox-multistage >/dev/null
  since "$t"
  stop_all
}

buildah_cold() {
  bh rm -a >/dev/null 2>&1 || true
  bh rmi -a -f >/dev/null 2>&1 || true
  MANIFOLD_ROOT=$work/export "$bin/manifold" import --platform linux/amd64 -t busybox:latest "$work/bb-amd64" >/dev/null
  MANIFOLD_ROOT=$work/export "$bin/manifold" import --platform linux/arm64 -t busybox:latest "$work/bb-arm64" >/dev/null
  MANIFOLD_ROOT=$work/export "$bin/manifold" export busybox:latest -o "$work/bb.tar" >/dev/null
  for arch in amd64 arm64; do
    skopeo copy -q --override-arch "$arch" "oci-archive:$work/bb.tar" "$(cs localhost/mfbench-busybox-$arch:latest)" >/dev/null 2>&1
  done
  bh manifest create docker.io/library/busybox:latest >/dev/null
  for arch in amd64 arm64; do
    bh manifest add docker.io/library/busybox:latest "$(cs localhost/mfbench-busybox-$arch:latest)" >/dev/null
  done
  local t; t=$(now)
  bh build -q --pull=never --layers --isolation chroot --platform linux/amd64,linux/arm64 \
    --manifest "mfbench-$RANDOM" -f examples/busybox-multistage/Dockerfile examples/busybox-multistage >/dev/null 2>&1
  since "$t"
}

best2=; best1=; bestb=
min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc)" = 1 ]; then echo "$2"; else echo "$1"; fi; }
for r in $(seq 1 "$rounds"); do
  best2=$(min "$best2" "$(farm 2)")
  best1=$(min "$best1" "$(farm 1)")
  bestb=$(min "$bestb" "$(buildah_cold)")
done
ratio() { echo "scale=2; $1 / $2" | bc; }
bench_out=$("$bin/farm_bench" all 1024)
mkdir -p bench/results
{
  echo "# Farm benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "examples/busybox-multistage, linux/amd64 + linux/arm64, cold, best of $rounds:"
  echo
  echo "| setup | seconds | vs 2 workers |"
  echo "|---|---|---|"
  printf '| farm, 2 workers (1 slot each) | %.2f | 1.00 |\n' "$best2"
  printf '| farm, 1 worker (1 slot) | %.2f | %s |\n' "$best1" "$(ratio "$best1" "$best2")"
  printf '| buildah | %.2f | %s |\n' "$bestb" "$(ratio "$bestb" "$best2")"
  echo
  echo '```'
  echo "$bench_out"
  echo '```'
} | tee bench/results/farm.md
