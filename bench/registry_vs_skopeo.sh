#!/usr/bin/env bash
# Push and pull of a big multi-layer image to a loopback docker-registry
# (CNCF distribution), manifold against `skopeo copy` of the same image,
# measured in the same run. Not part of the test command (the default size
# takes a few minutes). Writes bench/results/registry_vs_skopeo.md.
#   bash bench/registry_vs_skopeo.sh [SIZE_MIB=1024] [ROUNDS=3] [LAYERS=4]
#
# - The image is made once: FROM scratch + one COPY per layer (so LAYERS
#   layers of SIZE_MIB/LAYERS each, linux/amd64, gzip), each layer half
#   incompressible random bytes, a quarter base64 text (compresses to ~3/4) and
#   a quarter `seq` text (compresses well). It is exported to an OCI archive,
#   which is what skopeo pushes from.
# - Every round starts two fresh registries (one per tool, own port, own
#   storage dir), so neither tool benefits from the other's blobs.
# - push:  manifold push NAME 127.0.0.1:P1/bench/mf:1
#          skopeo copy oci-archive:X.tar docker://127.0.0.1:P2/bench/sk:1
# - pull:  manifold pull 127.0.0.1:P1/bench/mf:1 into a fresh MANIFOLD_ROOT
#          skopeo copy docker://127.0.0.1:P2/bench/sk:1 oci:FRESH_DIR:1
# - Best (lowest) wall time of ROUNDS rounds. MB/s are over the bytes that
#   cross the wire (compressed layers + config), 1 MB = 10^6 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
rounds=${2:-3}
layers=${3:-4}
mf=$PWD/build/bin/manifold
[ -x "$mf" ] || { echo "missing $mf (build it first)" >&2; exit 1; }
for t in docker-registry skopeo jq python3; do
  command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }
done
(( size_mib >= layers )) || { echo "SIZE_MIB must be at least LAYERS" >&2; exit 1; }

work=$(mktemp -d /tmp/mf-regbench-XXXXXX)
# skopeo unpacks oci-archive sources into TMPDIR; keep that inside $work.
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
reg_pids=()
stop_registries() {
  local p
  for p in "${reg_pids[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  reg_pids=()
}
cleanup() {
  stop_registries
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_registry DIR -> prints the port; the PID goes into reg_pids.
start_registry() {
  local dir=$1 port
  port=$(free_port)
  mkdir -p "$dir/storage"
  cat > "$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: manifold-bench-secret
EOF
  docker-registry serve "$dir/config.yml" > "$dir/registry.log" 2>&1 < /dev/null &
  local pid=$!
  reg_pids+=("$pid")
  local i
  for i in $(seq 1 200); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
      REG_PORT=$port
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "docker-registry exited:" >&2; cat "$dir/registry.log" >&2; exit 1
    fi
    sleep 0.05
  done
  echo "docker-registry did not listen on 127.0.0.1:$port" >&2; cat "$dir/registry.log" >&2; exit 1
}

# Sum of the blob files a registry stores (layers + config + manifests).
reg_blob_bytes() { find "$1/storage/docker/registry/v2/blobs" -type f -name data -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
reg_blob_count() { find "$1/storage/docker/registry/v2/blobs" -type f -name data | wc -l; }

# run LOGFILE CMD... : time CMD (wall seconds into $ELAPSED); on failure print
# the exact command and its output, then stop.
run() {
  local log=$1; shift
  local t0=$EPOCHREALTIME rc=0
  "$@" > "$log" 2>&1 || rc=$?
  local t1=$EPOCHREALTIME
  if (( rc != 0 )); then
    echo "FAILED (exit $rc): $*" >&2
    cat "$log" >&2
    exit 1
  fi
  ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
}

declare -A best
record() {  # key seconds
  local cur=${best[$1]:-}
  if [ -z "$cur" ] || awk -v a="$2" -v b="$cur" 'BEGIN {exit !(a < b)}'; then best[$1]=$2; fi
}

# ---- the image, made once
echo "generating ${size_mib} MiB in $layers layers under $work ..." >&2
ctx=$work/ctx
mkdir -p "$ctx"
layer_bytes=$(( size_mib * 1024 * 1024 / layers ))
rand_bytes=$(( layer_bytes / 2 ))
b64_bytes=$(( layer_bytes / 4 ))
seq_bytes=$(( layer_bytes - rand_bytes - b64_bytes ))
{
  echo "FROM scratch"
  for i in $(seq 1 "$layers"); do
    d=$ctx/layer$i
    mkdir -p "$d/bin" "$d/share"
    # Incompressible: a few "binaries" of random bytes.
    per=$(( rand_bytes / 4 ))
    for j in 1 2 3; do head -c "$per" /dev/urandom > "$d/bin/blob$j"; done
    head -c $(( rand_bytes - 3 * per )) /dev/urandom > "$d/bin/blob4"
    # Somewhat compressible: base64 text of random bytes.
    head -c "$b64_bytes" /dev/urandom | base64 | head -c "$b64_bytes" > "$d/share/data.b64" || true
    # Very compressible: numbered lines.
    seq "$(( i * 1000000000 ))" inf | sed 's/$/ a line of generated benchmark text/' \
      | head -c "$seq_bytes" > "$d/share/lines.txt" || true
    echo "COPY layer$i /layer$i"
  done
} > "$ctx/Dockerfile"
[ "$(du -sb "$ctx" | cut -f1)" -ge $(( size_mib * 1024 * 1024 )) ] || { echo "context too small" >&2; exit 1; }

export MANIFOLD_ROOT=$work/mf-src
echo "building the image ..." >&2
run "$work/build.log" "$mf" build --progress quiet --platform linux/amd64 -t bench:1 "$ctx"
run "$work/export.log" "$mf" export bench:1 -o "$work/image.tar"
rm -rf "$ctx"  # the store and the archive hold it now

# Wire bytes: the platform manifest's layers + config, read from the archive.
tar -xf "$work/image.tar" -C "$work" index.json
desc=$(jq -c '.manifests[0]' "$work/index.json")
while :; do
  mt=$(jq -r '.mediaType' <<<"$desc")
  blob=$(tar -xOf "$work/image.tar" "blobs/sha256/$(jq -r '.digest' <<<"$desc" | cut -d: -f2)")
  case $mt in
    *index*|*manifest.list*) desc=$(jq -c '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == "amd64")][0]' <<<"$blob") ;;
    *) break ;;
  esac
done
n_layers=$(jq '.layers | length' <<<"$blob")
wire_bytes=$(jq '([.layers[].size] | add) + .config.size' <<<"$blob")
layer_mt=$(jq -r '.layers[0].mediaType' <<<"$blob")
layer_digests=$(jq -r '.layers[].digest | sub("^sha256:"; "")' <<<"$blob")
mkdir -p "$work/image-dir"
tar -xf "$work/image.tar" -C "$work/image-dir"
raw_bytes=$(( layer_bytes * layers ))
echo "image: $n_layers layers ($layer_mt), $raw_bytes bytes of files, $wire_bytes bytes on the wire" >&2
(( n_layers == layers )) || { echo "expected $layers layers, got $n_layers" >&2; exit 1; }

# ---- rounds
for r in $(seq 1 "$rounds"); do
  rd=$work/round$r
  mkdir -p "$rd"
  start_registry "$rd/reg-mf"; p_mf=$REG_PORT
  start_registry "$rd/reg-sk"; p_sk=$REG_PORT

  # push
  export MANIFOLD_ROOT=$work/mf-src
  run "$rd/mf-push.log" "$mf" push bench:1 "127.0.0.1:$p_mf/bench/mf:1"
  record push.manifold "$ELAPSED"; t_mf_push=$ELAPSED
  run "$rd/sk-push.log" skopeo copy -q --dest-tls-verify=false \
    "oci-archive:$work/image.tar" "docker://127.0.0.1:$p_sk/bench/sk:1"
  record push.skopeo "$ELAPSED"; t_sk_push=$ELAPSED
  # The same push from an oci: layout directory (no archive to unpack first).
  start_registry "$rd/reg-sk-dir"; p_skd=$REG_PORT
  run "$rd/sk-push-dir.log" skopeo copy -q --dest-tls-verify=false \
    "oci:$work/image-dir" "docker://127.0.0.1:$p_skd/bench/sk:1"
  record push-dir.skopeo "$ELAPSED"; t_skd_push=$ELAPSED
  for d in $layer_digests; do
    for reg in reg-mf reg-sk reg-sk-dir; do
      [ -f "$rd/$reg/storage/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data" ] || {
        echo "layer sha256:$d missing from $reg after push" >&2; exit 1; }
    done
  done
  b_mf=$(reg_blob_bytes "$rd/reg-mf"); b_sk=$(reg_blob_bytes "$rd/reg-sk")
  (( b_mf >= wire_bytes && b_sk >= wire_bytes )) || {
    echo "registry holds too little: manifold $b_mf, skopeo $b_sk, want >= $wire_bytes" >&2; exit 1; }

  # pull
  export MANIFOLD_ROOT=$rd/mf-pull
  run "$rd/mf-pull.log" "$mf" pull "127.0.0.1:$p_mf/bench/mf:1"
  record pull.manifold "$ELAPSED"; t_mf_pull=$ELAPSED
  run "$rd/sk-pull.log" skopeo copy -q --src-tls-verify=false \
    "docker://127.0.0.1:$p_sk/bench/sk:1" "oci:$rd/sk-pull:1"
  record pull.skopeo "$ELAPSED"; t_sk_pull=$ELAPSED
  pulled_mf=$(du -sb "$MANIFOLD_ROOT" | cut -f1); pulled_sk=$(du -sb "$rd/sk-pull" | cut -f1)
  (( pulled_mf >= wire_bytes && pulled_sk >= wire_bytes )) || {
    echo "pulled too little: manifold $pulled_mf, skopeo $pulled_sk, want >= $wire_bytes" >&2; exit 1; }

  echo "round $r: push manifold ${t_mf_push}s skopeo ${t_sk_push}s (from dir ${t_skd_push}s); pull manifold ${t_mf_pull}s skopeo ${t_sk_pull}s" \
       "(registry blobs: manifold $(reg_blob_count "$rd/reg-mf") / $b_mf B, skopeo $(reg_blob_count "$rd/reg-sk") / $b_sk B)" >&2
  stop_registries
  rm -rf "$rd"
done

# ---- report
mbs() { awk -v b="$wire_bytes" -v s="$1" 'BEGIN {printf "%.0f", b / 1e6 / s}'; }
out=bench/results/registry_vs_skopeo.md
mkdir -p bench/results
{
  echo "Loopback docker-registry push/pull, manifold vs skopeo copy, best of $rounds, $(nproc) cores, $(date -u +%Y-%m-%d)"
  echo
  echo "Image: linux/amd64, $layers layers of $(( layer_bytes / 1048576 )) MiB of files" \
       "($(( raw_bytes / 1048576 )) MiB; per layer 1/2 random bytes, 1/4 base64, 1/4 seq text)," \
       "$(awk -v b="$wire_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB compressed ($layer_mt) on the wire." \
       "MB/s = compressed bytes / wall time (10^6 B). ratio = manifold / skopeo time (< 1: manifold faster)." \
       "skopeo pushes from the OCI archive that \`manifold export\` wrote (which it first unpacks to a temp dir; the last row is the same push from that archive already unpacked to an oci: layout dir); pulls go to a fresh MANIFOLD_ROOT / fresh oci: dir." \
       "One fresh registry per tool per round."
  echo
  echo "| operation | manifold (s) | skopeo (s) | manifold MB/s | skopeo MB/s | ratio |"
  echo "|---|---|---|---|---|---|"
  for k in push pull; do
    m=${best[$k.manifold]}; s=${best[$k.skopeo]}
    printf '| %s | %.2f | %.2f | %s | %s | %s |\n' "$k" "$m" "$s" "$(mbs "$m")" "$(mbs "$s")" \
      "$(awk -v a="$m" -v b="$s" 'BEGIN {printf "%.2f", a / b}')"
  done
  m=${best[push.manifold]}; s=${best[push-dir.skopeo]}
  printf '| %s | %.2f | %.2f | %s | %s | %s |\n' "push, skopeo from oci: dir" "$m" "$s" "$(mbs "$m")" "$(mbs "$s")" \
    "$(awk -v a="$m" -v b="$s" 'BEGIN {printf "%.2f", a / b}')"
  echo
  echo "Versions: $("$mf" --version), $(skopeo --version), $(docker-registry --version 2>&1 | head -1), kernel $(uname -r)"
} | tee "$out"
