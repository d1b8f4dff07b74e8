#!/usr/bin/env bash
# The main job on the embedded default: install what is missing, build
# Manifold, register the QEMU binfmt handlers, make busybox:latest for amd64
# and arm64 from Debian's busybox-static packages, import them, and build
# examples/busybox-multistage for both platforms into an OCI archive.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/binfmt.sh
mf=build/bin/manifold
for arch in amd64 arm64; do
  bash tests/testdata/busybox-rootfs.sh "$arch" "build/busybox-$arch"
  "$mf" import --platform "linux/$arch" -t busybox:latest "build/busybox-$arch"
done
"$mf" build --platform linux/amd64,linux/arm64 -t manifold-example/busybox-multistage \
  -o type=oci,dest=build/busybox-multistage.oci.tar examples/busybox-multistage
echo "image index: build/busybox-multistage.oci.tar (also tagged manifold-example/busybox-multistage)"
