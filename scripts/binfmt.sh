#!/usr/bin/env bash
# Registers qemu-user-static's binfmt_misc handlers so RUN steps for foreign
# platforms (linux/arm64, linux/arm/v7, linux/riscv64) run under emulation.
# Idempotent: mounts binfmt_misc only if needed, installs qemu-user-static
# only if missing, registers only handlers that are not there yet. Prints what
# it did. When the machine does not allow it (not root, no binfmt_misc in the
# kernel, read-only /proc in a container), it warns and exits 0: the worker
# then simply offers no emulated platforms (worker/platform).
# Usage: binfmt.sh [ARCH...]   (default: aarch64 arm riscv64)
set -uo pipefail

BINFMT_DIR=/proc/sys/fs/binfmt_misc
CONF_DIR=/usr/lib/binfmt.d
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(aarch64 arm riscv64)

warn() { echo "binfmt: warning: $*" >&2; }
say() { echo "binfmt: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  warn "not root; cannot register handlers (foreign platforms stay unavailable)"
  exit 0
fi

if ! grep -qw binfmt_misc /proc/filesystems 2>/dev/null; then
  modprobe binfmt_misc 2>/dev/null || true
  if ! grep -qw binfmt_misc /proc/filesystems 2>/dev/null; then
    warn "kernel has no binfmt_misc support; emulation unavailable"
    exit 0
  fi
fi

if [ ! -e "$BINFMT_DIR/register" ]; then
  if mount -t binfmt_misc binfmt_misc "$BINFMT_DIR" 2>/dev/null; then
    say "mounted binfmt_misc at $BINFMT_DIR"
  else
    warn "cannot mount binfmt_misc at $BINFMT_DIR (not allowed here?); emulation unavailable"
    exit 0
  fi
fi

if [ ! -e "$CONF_DIR/qemu-aarch64.conf" ] || ! command -v qemu-aarch64-static >/dev/null 2>&1; then
  if ! dpkg-query -W -f='${Status}' qemu-user-static 2>/dev/null |
      grep -q "install ok installed"; then
    say "installing qemu-user-static"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        qemu-user-static >/dev/null 2>&1; then
      apt-get update -q >/dev/null 2>&1 || true
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
          qemu-user-static >/dev/null 2>&1; then
        warn "could not install qemu-user-static; emulation unavailable"
        exit 0
      fi
    fi
  fi
fi

registered=0
for arch in "${arches[@]}"; do
  name=qemu-$arch
  conf=$CONF_DIR/$name.conf
  if [ -e "$BINFMT_DIR/$name" ]; then
    if head -n1 "$BINFMT_DIR/$name" | grep -qx enabled; then
      say "$name already registered"
    else
      if echo 1 > "$BINFMT_DIR/$name" 2>/dev/null; then
        say "$name was disabled; enabled it"
      else
        warn "$name is registered but disabled and could not be enabled"
      fi
    fi
    continue
  fi
  if [ ! -r "$conf" ]; then
    warn "no $conf (qemu-user-static lacks $arch); skipped"
    continue
  fi
  # The .conf holds one registration line ":name:type:offset:magic:mask:interpreter:flags"
  # (comments aside). Its flags include F, so the kernel opens the interpreter
  # now and it need not exist inside the container's rootfs.
  line=$(grep -v '^[[:space:]]*#' "$conf" | grep -m1 "^:$name:")
  if [ -z "$line" ]; then
    warn "$conf has no registration line for $name; skipped"
    continue
  fi
  interp=$(echo "$line" | awk -F: '{print $7}')
  if [ ! -e "$interp" ]; then
    warn "interpreter $interp for $name is missing; skipped"
    continue
  fi
  if printf '%s' "$line" > "$BINFMT_DIR/register" 2>/dev/null; then
    say "registered $name ($interp)"
    registered=$((registered + 1))
  else
    warn "registering $name failed (not allowed here?)"
  fi
done
say "done ($registered newly registered)"
exit 0
