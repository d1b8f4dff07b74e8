#!/usr/bin/env bash
# Makes a busybox rootfs for ARCH (amd64 or arm64) from Debian's busybox-static
# package: bin/busybox plus a symlink for every applet, etc/passwd, etc/group,
# tmp/. Output: OUT_DIR (replaced). The .deb is cached in CACHE_DIR.
# Usage: busybox-rootfs.sh ARCH OUT_DIR [CACHE_DIR]
set -euo pipefail
arch=${1:?arch}
out=${2:?out dir}
cache=${3:-${XDG_CACHE_HOME:-$HOME/.cache}/manifold-testdata}
mkdir -p "$cache"

deb=$(ls "$cache"/busybox-static_*_"$arch".deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
  if [ "$arch" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    dpkg --add-architecture "$arch"
    apt-get update -q >/dev/null
  fi
  (cd "$cache" && apt-get download -q "busybox-static:$arch" >/dev/null)
  deb=$(ls "$cache"/busybox-static_*_"$arch".deb | head -n1)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/x"
rm -rf "$out"
mkdir -p "$out/bin" "$out/etc" "$out/tmp" "$out/root" "$out/usr/bin" "$out/usr/sbin" "$out/sbin"
cp "$work/x/bin/busybox" "$out/bin/busybox"
chmod 0755 "$out/bin/busybox"

# The applet list is the same for both architectures (same package version and
# config); read it from whichever binary runs here.
lister=$work/x/bin/busybox
"$lister" true 2>/dev/null || lister=$(command -v busybox || true)
if [ -z "$lister" ] || ! "$lister" true 2>/dev/null; then
  native=$(ls "$cache"/busybox-static_*_"$(dpkg --print-architecture)".deb 2>/dev/null | head -n1 || true)
  if [ -z "$native" ]; then
    (cd "$cache" && apt-get download -q "busybox-static:$(dpkg --print-architecture)" >/dev/null)
    native=$(ls "$cache"/busybox-static_*_"$(dpkg --print-architecture)".deb | head -n1)
  fi
  dpkg-deb -x "$native" "$work/n"
  lister=$work/n/bin/busybox
fi
"$lister" --list-full | while read -r applet; do
  case "$applet" in bin/busybox|"") continue ;; esac
  mkdir -p "$out/$(dirname "$applet")"
  ln -sf /bin/busybox "$out/$applet"
done

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$out/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\n' > "$out/etc/group"
chmod 1777 "$out/tmp"
chmod 0700 "$out/root"
# Fixed times so imports of the same package are reproducible.
find "$out" -exec touch -h -d @1700000000 {} +
