#!/usr/bin/env bash
# The main job on the embedded default: set up, build Manifold, then plan the
# example for both platforms. (Once the build engine lands this builds it.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build/bin/manifold plan --platform linux/amd64,linux/arm64 examples/busybox-multistage
