#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR/bin for SECONDS each, seeded from the
# golden Dockerfiles and examples. A crash fails the run (and leaves the
# reproducer in the printed crash-* file).
set -euo pipefail
build=$(cd "${1:?build dir}" && pwd)
secs=${2:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed_dockerfiles() {
  local out=$1 i=0
  mkdir -p "$out"
  for f in "$root"/common/dockerfile/testdata/*/*/Dockerfile "$root"/examples/*/Dockerfile; do
    [ -f "$f" ] && cp "$f" "$out/seed$((i++))"
  done
}

run() {
  local name=$1 seeds=$2 log="$work/$1.log"
  mkdir -p "$work/$name"
  echo "fuzz: $name for ${secs}s"
  if ! (cd "$work" && "$build/bin/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
          -print_final_stats=1 "$work/$name" "$seeds" >"$log" 2>&1); then
    tail -n 60 "$log"
    mkdir -p "$root/build-fuzz/crashes" && cp "$work"/crash-* "$work"/timeout-* "$work"/oom-* \
      "$root/build-fuzz/crashes/" 2>/dev/null || true
    echo "fuzz: $name FAILED (reproducers in build-fuzz/crashes/)"
    return 1
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$log" | tr '\n' ' '
  echo
}

seed_dockerfiles "$work/seed-dockerfile"
mkdir -p "$work/seed-words"
printf '${a:-$b}\na=1\nb=two words\n' > "$work/seed-words/1"
printf '"$x"'"'"'$y'"'"'\\$z ${x%%%%.*} ${x/a/b} ${x#*/}\nx=a.b/c.d\n' > "$work/seed-words/2"
mkdir -p "$work/seed-ignore"
printf '*.md\n!README.md\n**/node_modules\n[a-c]?/x\nsrc/a/b.txt\n' > "$work/seed-ignore/1"

mkdir -p "$work/seed-oci" "$work/seed-tar"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%064d","size":3}]}' 1 2 > "$work/seed-oci/manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%064d","size":1,"platform":{"os":"linux","architecture":"arm64"}}]}' 3 > "$work/seed-oci/index"
printf '{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":[]},"history":[{"created_by":"x","empty_layer":true}]}' > "$work/seed-oci/config"
# Small tars that exercise links, whiteouts and odd names.
seedtree=$work/seedtree
mkdir -p "$seedtree/d/e" && echo hi > "$seedtree/d/f" && ln -s /etc "$seedtree/l" && ln "$seedtree/d/f" "$seedtree/d/h"
touch "$seedtree/d/.wh.gone" "$seedtree/.wh..wh..opq"
tar -C "$seedtree" -cf "$work/seed-tar/1.tar" .
tar -C "$seedtree" --format=pax -czf "$work/seed-tar/2.tar.gz" d l
tar -C "$seedtree" -cf "$work/seed-tar/3.tar" --transform 's,^d,../../escape,' d 2>/dev/null

run dockerfile_fuzz "$work/seed-dockerfile"
run shell_lexer_fuzz "$work/seed-words"
run dockerignore_fuzz "$work/seed-ignore"
run oci_fuzz "$work/seed-oci"
run apply_fuzz "$work/seed-tar"
echo "fuzz: 5 targets ran without a crash"
