#!/usr/bin/env bash
# Installs the Debian packages Manifold needs to build and test, only those
# missing. Safe to run again; needs root (or sudo) on a fresh Debian 12.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config clang-14 libclang-rt-14-dev
  # libraries named in DESIGN.md
  libzmq3-dev cppzmq-dev capnproto libcapnp-dev libarchive-dev libssl-dev libboost-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libsqlite3-dev zlib1g-dev
  libisal-dev libzstd-dev
  # tests and benchmarks; skopeo and umoci check our images
  libgtest-dev libgmock-dev libbenchmark-dev skopeo umoci tar gzip zstd xz-utils bzip2
  # a real registry for the registry tests (htpasswd makes its bcrypt users)
  docker-registry apache2-utils
  # runtime: RUN steps (runc >= 1.1.12 or a distribution build with the
  # CVE-2024-21626 fix) and foreign platforms under emulation (scripts/binfmt.sh)
  runc qemu-user-static
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "deps: all ${#PACKAGES[@]} packages present"
fi
