#!/usr/bin/env bash
# End-to-end benchmark: examples/seed-app (Docker's multi-stage tutorial shape)
# built for linux/amd64,linux/arm64 by Manifold and by buildah on this machine,
# from the same Dockerfile, context and node:20 base images.
#
#   sudo bash bench/seed_app.sh
#
# Not part of the test suite: it takes many minutes (the arm64 RUN steps run
# under qemu-user-static, and the first run also makes the base images with
# mmdebstrap: ~5 min amd64, ~12 min arm64). Needs root, Debian's apt mirror and
# the npm registry.
#
# What it does:
#   1. installs mmdebstrap, buildah, qemu-user-static, skopeo, curl if missing,
#      and registers binfmt handlers (scripts/binfmt.sh);
#   2. makes node:20 base rootfs tarballs (Debian bookworm nodejs + yarnpkg, a
#      yarn -> yarnpkg link) for amd64 and arm64, cached in
#      ${MANIFOLD_BENCH_CACHE:-$HOME/.cache/manifold-bench};
#   3. copies /work/shared/examples/seed-app to examples/seed-app if missing, and
#      works on scratch copies of it;
#   4. Manifold (fresh MANIFOLD_ROOT): cold build, unchanged rebuild, rebuild after
#      a one-line edit of backend/src; then runs the final image of each platform
#      (chroot, private mount namespace, host loopback) and GETs / on port 3000;
#   5. buildah (its own storage root under the scratch dir, so the machine's
#      buildah images are untouched): the same three builds;
#   6. prints a Markdown table and writes it to bench/results/seed_app.md.
#
# Environment:
#   MANIFOLD              manifold binary (default: build/bin/manifold of this repo)
#   MANIFOLD_BENCH_CACHE  base tarball cache (default: ~/.cache/manifold-bench)
#   MANIFOLD_BENCH_KEEP   1 = keep the scratch directory (logs, outputs) afterwards
#   SEED_APP_SRC          where to copy the example from (default /work/shared/examples/seed-app)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MANIFOLD=${MANIFOLD:-$REPO/build/bin/manifold}
CACHE=${MANIFOLD_BENCH_CACHE:-$HOME/.cache/manifold-bench}
SEED_APP_SRC=${SEED_APP_SRC:-/work/shared/examples/seed-app}
EXAMPLE=$REPO/examples/seed-app
RESULTS=$REPO/bench/results/seed_app.md
KEEP=${MANIFOLD_BENCH_KEEP:-0}
CA=/etc/ssl/certs/ca-certificates.crt
PLATFORMS=linux/amd64,linux/arm64
ARCHES=(amd64 arm64)
PORT=3000

log() { echo "[seed_app $(date +%H:%M:%S)] $*" >&2; }
die() { echo "[seed_app] error: $*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -x "$MANIFOLD" ] || die "no manifold binary at $MANIFOLD (build the project first)"

########################################################################
# 1. Tools
########################################################################
need=()
for pkg in mmdebstrap buildah qemu-user-static skopeo curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi
bash "$REPO/scripts/binfmt.sh" aarch64
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] ||
  die "qemu-aarch64 binfmt handler is not registered; arm64 cannot run here"

########################################################################
# 2. node:20 base rootfs tarballs (cached)
########################################################################
# The Debian mirror this machine's apt uses (deb822 or one-line sources).
debian_mirror() {
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
          /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -v '^[[:space:]]*#' |
        grep -oE '(https?|file)://[^[:space:]]+' |
        grep -E '/debian/?$' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

mkdir -p "$CACHE"
MIRROR=$(debian_mirror)
for arch in "${ARCHES[@]}"; do
  tarball=$CACHE/node20-bookworm-$arch.tar
  if [ -s "$tarball" ]; then
    log "base $arch: cached ($tarball)"
    continue
  fi
  log "base $arch: mmdebstrap from $MIRROR (amd64 ~5 min, arm64 ~12 min under emulation)"
  t0=$(now)
  rm -f "$tarball.tmp"
  # stdin from /dev/null: mmdebstrap reads sources from a non-tty stdin.
  mmdebstrap --variant=minbase --include=ca-certificates,nodejs,yarnpkg \
    --architectures="$arch" \
    --customize-hook='ln -sf /usr/bin/yarnpkg "$1/usr/local/bin/yarn"' \
    --format=tar bookworm "$tarball.tmp" "$MIRROR" </dev/null
  mv "$tarball.tmp" "$tarball"
  log "base $arch: made in $(elapsed "$t0" "$(now)") s"
done

########################################################################
# 3. The example and scratch copies
########################################################################
if [ ! -e "$EXAMPLE" ]; then
  [ -d "$SEED_APP_SRC" ] || die "no $EXAMPLE and no $SEED_APP_SRC to copy it from"
  log "copying $SEED_APP_SRC to $EXAMPLE"
  mkdir -p "$REPO/examples"
  cp -a "$SEED_APP_SRC" "$EXAMPLE"
fi
[ -f "$EXAMPLE/Dockerfile" ] || die "$EXAMPLE has no Dockerfile"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/manifold-seed-bench.XXXXXX")
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/out"
export MANIFOLD_ROOT=$WORK/manifold-root
BROOT=$WORK/buildah/root
BRUN=$WORK/buildah/run
BTMP=$WORK/buildah/tmp   # buildah keeps RUN --mount=type=cache under $TMPDIR
mkdir -p "$BROOT" "$BRUN" "$BTMP"
B=(buildah --root "$BROOT" --runroot "$BRUN" --storage-driver overlay)
SERVER_PID=
BUILDAH_USED=0

cleanup() {
  local rc=$?
  set +e
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "$BUILDAH_USED" = 1 ]; then
    TMPDIR=$BTMP "${B[@]}" rm --all >/dev/null 2>&1
    TMPDIR=$BTMP "${B[@]}" rmi --all --force >/dev/null 2>&1
  fi
  # Anything still mounted below the scratch dir (buildah's overlay, a chroot's
  # /proc) goes before the tree is removed.
  awk -v w="$WORK" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m"; done
  if [ "$KEEP" = 1 ] || [ "$rc" -ne 0 ]; then
    log "scratch directory kept: $WORK (logs in $LOGS)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT

scratch() {  # scratch DIR: a writable copy of the example
  cp -a "$EXAMPLE" "$1"
  chmod -R u+w "$1"
}
one_line_edit() {  # the same edit for both tools
  echo "// bench edit $(date +%s)" >> "$1/backend/src/index.js"
}

########################################################################
# 4. Manifold
########################################################################
declare -A MF BU
MF_STEPS=()

mf_build() {  # mf_build LABEL CONTEXT [extra args...]
  local label=$1 ctx=$2; shift 2
  local t0 t1
  log "manifold: $label build"
  t0=$(now)
  if ! "$MANIFOLD" build --platform "$PLATFORMS" -v "$CA:$CA:ro" --progress plain \
       "$@" "$ctx" >"$LOGS/manifold-$label.out" 2>"$LOGS/manifold-$label.err"; then
    tail -n 40 "$LOGS/manifold-$label.err" >&2
    die "manifold build ($label) failed: $MANIFOLD build --platform $PLATFORMS -v $CA:$CA:ro $* $ctx (log: $LOGS/manifold-$label.err)"
  fi
  t1=$(now)
  MF[$label]=$(elapsed "$t0" "$t1")
  local summary
  summary=$(grep -E '^built ' "$LOGS/manifold-$label.err" | tail -n1 || true)
  MF_STEPS+=("$label: ${summary:-(no summary line)}")
  log "manifold: $label ${MF[$label]} s; ${summary}"
}

MCTX=$WORK/ctx-manifold
scratch "$MCTX"
for arch in "${ARCHES[@]}"; do
  log "manifold: import node:20 linux/$arch"
  "$MANIFOLD" import --platform "linux/$arch" -t node:20 "$CACHE/node20-bookworm-$arch.tar" \
    >"$LOGS/import-$arch.out" 2>&1 || { cat "$LOGS/import-$arch.out" >&2; die "manifold import linux/$arch failed"; }
done
"$MANIFOLD" images >&2

mf_build cold "$MCTX" -o "type=oci,dest=$WORK/out/manifold-cold.tar"
mf_build unchanged "$MCTX" -o "type=oci,dest=$WORK/out/manifold-unchanged.tar"
one_line_edit "$MCTX"
mf_build edit "$MCTX" -o "type=oci,dest=$WORK/out/manifold-edit.tar"

# The final images' root filesystems (every step cached by now; not timed).
mf_build local "$MCTX" -o "type=local,dest=$WORK/out/rootfs"

declare -A SERVED
run_server() {  # run_server ARCH: start the image's CMD, GET /, stop it
  local arch=$1 root=$WORK/out/rootfs/linux_$1 body=$WORK/out/get-$1.html i
  SERVED[$arch]="no"
  [ -x "$root/usr/bin/node" ] || { log "no usr/bin/node in $root"; SERVED[$arch]="no (no rootfs)"; return; }
  [ -f "$root/usr/local/app/src/index.js" ] || { SERVED[$arch]="no (no src/index.js)"; return; }
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then
    SERVED[$arch]="no (port $PORT already in use)"; return
  fi
  # A private mount namespace (gone with the process) for /proc and /dev; exec
  # all the way down so $! is node itself. Host network, loopback only.
  unshare --mount --propagation private -- /bin/sh -c '
      root=$1
      mount -t proc proc "$root/proc" || exit 1
      mount --rbind /dev "$root/dev" || exit 1
      exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root NODE_ENV=production HOSTNAME=localhost \
        /bin/sh -c "cd /usr/local/app && exec node src/index.js"
    ' sh "$root" >"$LOGS/server-$arch.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 120); do
    if curl -s -o "$body" --max-time 5 "http://127.0.0.1:$PORT/"; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.5
  done
  if [ -s "$body" ] && grep -q '<div id="root">' "$body" && grep -q '<title>Seed app</title>' "$body"; then
    SERVED[$arch]="yes"
  elif [ -s "$body" ]; then
    SERVED[$arch]="no (unexpected page: $(head -c 120 "$body" | tr '\n' ' '))"
  else
    SERVED[$arch]="no (no answer; see $LOGS/server-$arch.log)"
  fi
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  log "linux/$arch: GET / served the client page: ${SERVED[$arch]}"
  sed 's/^/  server: /' "$LOGS/server-$arch.log" >&2 || true
}
for arch in "${ARCHES[@]}"; do run_server "$arch"; done

########################################################################
# 5. buildah
########################################################################
BUILDAH_USED=1
log "buildah: loading node:20 (both platforms) into $BROOT"
"$MANIFOLD" export node:20 -o "$WORK/node20.tar" 2>&1 >&2
# skopeo 1.9 cannot copy a whole index into containers-storage ("does not
# support copying multiple images as a group"): copy each platform's image, then
# make node:20 a local manifest list of the two, which buildah's FROM resolves
# per --platform.
for arch in "${ARCHES[@]}"; do
  skopeo copy --override-os linux --override-arch "$arch" "oci-archive:$WORK/node20.tar" \
    "containers-storage:[overlay@$BROOT+$BRUN]localhost/node-base:20-$arch" >>"$LOGS/skopeo.log" 2>&1 ||
    { cat "$LOGS/skopeo.log" >&2; die "skopeo copy of node:20 linux/$arch into buildah's storage failed"; }
done
"${B[@]}" manifest create docker.io/library/node:20 >/dev/null
for arch in "${ARCHES[@]}"; do
  "${B[@]}" manifest add docker.io/library/node:20 "containers-storage:localhost/node-base:20-$arch" >/dev/null
done
"${B[@]}" images >&2

bu_build() {  # bu_build LABEL CONTEXT
  local label=$1 ctx=$2 t0 t1
  log "buildah: $label build"
  t0=$(now)
  if ! TMPDIR=$BTMP "${B[@]}" build --layers --isolation chroot --platform "$PLATFORMS" \
       --manifest seed-out --volume "$CA:$CA:ro" -f "$ctx/Dockerfile" "$ctx" \
       >"$LOGS/buildah-$label.log" 2>&1; then
    tail -n 40 "$LOGS/buildah-$label.log" >&2
    die "buildah build ($label) failed (log: $LOGS/buildah-$label.log)"
  fi
  t1=$(now)
  BU[$label]=$(elapsed "$t0" "$t1")
  log "buildah: $label ${BU[$label]} s"
}

BCTX=$WORK/ctx-buildah
scratch "$BCTX"
bu_build cold "$BCTX"
bu_build unchanged "$BCTX"
one_line_edit "$BCTX"
bu_build edit "$BCTX"

########################################################################
# 6. Report
########################################################################
ratio() { awk -v m="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", m / b; else print "n/a" }'; }
{
  echo "# seed-app: Manifold vs buildah"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, platforms $PLATFORMS (arm64 under qemu-user-static)."
  echo "manifold $("$MANIFOLD" --version 2>/dev/null | head -n1); $(buildah --version)."
  echo "Manifold: \`manifold build --platform $PLATFORMS -v $CA:$CA:ro -o type=oci,dest=X.tar\`."
  echo "buildah: \`buildah build --layers --isolation chroot --platform $PLATFORMS --manifest seed-out --volume $CA:$CA:ro\` (overlay storage)."
  echo "Same Dockerfile, context and node:20 bases (Debian bookworm nodejs + yarnpkg); each tool starts with only the base images and an empty cache."
  echo "\"one edit\" appends a comment line to backend/src/index.js."
  echo
  echo "| step | manifold (s) | buildah (s) | ratio |"
  echo "| --- | ---: | ---: | ---: |"
  for label in cold unchanged edit; do
    name=$label; [ "$label" = edit ] && name="one edit"
    echo "| $name | ${MF[$label]} | ${BU[$label]} | $(ratio "${MF[$label]}" "${BU[$label]}") |"
  done
  echo
  echo "ratio = manifold / buildah (below 1: Manifold is faster)."
  echo
  echo "Manifold step counts:"
  echo
  for s in "${MF_STEPS[@]}"; do echo "- $s"; done
  echo
  echo "Final image run (\`node src/index.js\` in /usr/local/app, GET http://127.0.0.1:$PORT/ must serve the client's index.html):"
  echo
  for arch in "${ARCHES[@]}"; do echo "- linux/$arch: ${SERVED[$arch]}"; done
} > "$WORK/report.md"
mkdir -p "$(dirname "$RESULTS")"
cp "$WORK/report.md" "$RESULTS"
cat "$WORK/report.md"
log "written to $RESULTS"
