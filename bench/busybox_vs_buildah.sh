#!/usr/bin/env bash
# Side by side with buildah on examples/busybox-multistage for linux/amd64 and
# linux/arm64: cold build, unchanged rebuild, rebuild after a one-line edit of
# the report stage; plus per-step overheads from a 40-step Dockerfile. Same
# machine, same Dockerfile, same busybox bases (Debian's busybox-static),
# measured in one run. Not part of the test command (it takes a minute or
# two). Writes bench/results/busybox_vs_buildah.md.
#   bash bench/busybox_vs_buildah.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
mf=$PWD/build/bin/manifold
[ -x "$mf" ] || bash scripts/build.sh
command -v buildah >/dev/null || { apt-get update -q >/dev/null; apt-get install -y -q buildah >/dev/null; }
bash scripts/binfmt.sh >/dev/null

work=$(mktemp -d /tmp/mf-bench-XXXXXX)
export MANIFOLD_ROOT=$work/state
# buildah gets its own storage, so a cold build is cold and the machine's
# other buildah images are never touched.
bh() { buildah --root "$work/bh-root" --runroot "$work/bh-run" --storage-driver overlay "$@"; }
cs() { echo "containers-storage:[overlay@$work/bh-root+$work/bh-run]$1"; }
cleanup() {
  bh rm -a >/dev/null 2>&1 || true
  umount -R "$work/bh-root/overlay" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# ---- bases
for arch in amd64 arm64; do
  bash tests/testdata/busybox-rootfs.sh "$arch" "$work/bb-$arch" >/dev/null
done

reset_manifold() {
  rm -rf "$MANIFOLD_ROOT"
  for arch in amd64 arm64; do
    "$mf" import --platform "linux/$arch" -t busybox:latest "$work/bb-$arch" >/dev/null
  done
}
reset_buildah() {
  bh rm -a >/dev/null 2>&1 || true
  bh rmi -a -f >/dev/null 2>&1 || true
  "$mf" export busybox:latest -o "$work/bb.tar" >/dev/null
  for arch in amd64 arm64; do
    skopeo copy -q --override-arch "$arch" "oci-archive:$work/bb.tar" \
      "$(cs localhost/mfbench-busybox-$arch:latest)" >/dev/null 2>&1
  done
  bh manifest create docker.io/library/busybox:latest >/dev/null
  for arch in amd64 arm64; do
    bh manifest add docker.io/library/busybox:latest \
      "$(cs localhost/mfbench-busybox-$arch:latest)" >/dev/null
  done
}

mf_build() {  # context
  "$mf" build --progress quiet --platform linux/amd64,linux/arm64 "$1" >/dev/null
}
bh_build() {  # context tag
  bh build -q --pull=never --layers --isolation chroot --platform linux/amd64,linux/arm64 \
    --manifest "mfbench-$2-$RANDOM" -f "$1/Dockerfile" "$1" >/dev/null 2>&1
}

edit() { sed -i 's/echo "platform: $TARGETPLATFORM";/echo "platform: $TARGETPLATFORM"; echo edited;/' "$1/Dockerfile"; }

declare -A best
record() {  # key seconds
  local cur=${best[$1]:-}
  if [ -z "$cur" ] || [ "$(echo "$2 < $cur" | bc)" = 1 ]; then best[$1]=$2; fi
}

for r in $(seq 1 "$rounds"); do
  for tool in manifold buildah; do
    ctx=$work/ctx-$tool-$r
    rm -rf "$ctx"; cp -r examples/busybox-multistage "$ctx"
    if [ $tool = manifold ]; then reset_manifold; b=mf_build; else reset_buildah; b=bh_build; fi
    t=$(now); $b "$ctx" cold; record "$tool.cold" "$(since "$t")"
    t=$(now); $b "$ctx" again; record "$tool.unchanged" "$(since "$t")"
    edit "$ctx"
    t=$(now); $b "$ctx" edit; record "$tool.edit" "$(since "$t")"
  done
done

# ---- per-step overheads (amd64 only, manifold): 40 RUN true, then the same
# with the last step edited (39 cached + 1 executed).
reset_manifold
steps=$work/steps; mkdir -p "$steps"
{ echo "FROM busybox"; for i in $(seq 1 40); do echo "RUN true # $i"; done; } > "$steps/Dockerfile"
t=$(now); "$mf" build --progress quiet "$steps" >/dev/null; cold40=$(since "$t")
t=$(now); "$mf" build --progress quiet "$steps" >/dev/null; warm40=$(since "$t")
sed -i 's/RUN true # 40/RUN true # forty/' "$steps/Dockerfile"
t=$(now); "$mf" build --progress quiet "$steps" >/dev/null; one40=$(since "$t")
# The command alone: `true` under runc-less chroot is ~1 ms; the RUN overhead
# is the per-step cold time.
run_ms=$(printf '%.1f' "$(echo "scale=3; $cold40 * 1000 / 40" | bc)")
cached_ms=$(printf '%.2f' "$(echo "scale=4; ($one40 - $cold40 / 40) * 1000 / 39" | bc)")

ratio() { printf '%.3f' "$(echo "scale=4; $1 / $2" | bc)"; }
out=bench/results/busybox_vs_buildah.md
{
  echo "busybox-multistage, linux/amd64+linux/arm64, best of $rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "| build | manifold (s) | buildah (s) | manifold/buildah |"
  echo "|---|---|---|---|"
  for k in cold unchanged edit; do
    m=${best[manifold.$k]}; h=${best[buildah.$k]}
    printf '| %s | %.2f | %.2f | %s |\n' "$k" "$m" "$h" "$(ratio "$m" "$h")"
  done
  echo
  echo "40 x \`RUN true\` (amd64): executed RUN ${run_ms} ms each (command ~1 ms), cached step ${cached_ms} ms each, unchanged 40-step rebuild $(printf '%.3f' "$warm40") s"
} | tee "$out"
