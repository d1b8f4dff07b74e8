// Parser throughput (MB/s) on a large generated Dockerfile: syntax layer
// alone, and syntax + instruction layers + plan for two platforms.
#include <benchmark/benchmark.h>

#include <string>

#include "common/dockerfile/instruction.h"
#include "common/dockerfile/parser.h"
#include "coordinator/plan/plan.h"

namespace {

// About 900 KiB: many stages mixing every common instruction shape,
// continuations, heredocs, JSON forms and ARG/ENV expansion.
std::string Generate() {
  std::string out = "# syntax=docker/dockerfile:1\nARG BASE=busybox\nARG VERSION=1.36\n";
  for (int s = 0; out.size() < 900 * 1024; ++s) {
    std::string n = std::to_string(s);
    out += "FROM ${BASE}:${VERSION} AS stage" + n + "\n";
    out += "ARG TARGETARCH\nENV APP_HOME=/opt/app" + n + " PATH=/usr/local/bin:/usr/bin:/bin\n";
    out += "WORKDIR $APP_HOME\nLABEL org.example.stage=\"" + n + "\" arch=$TARGETARCH\n";
    out += "RUN --mount=type=cache,target=/root/.cache,id=c" + n +
           " set -e; \\\n    for i in 1 2 3; do echo \"$i\"; done \\\n    && echo done > /tmp/out" + n + "\n";
    if (s > 0) out += "COPY --from=stage" + std::to_string(s - 1) + " --chmod=0644 /tmp/out" + std::to_string(s - 1) + " ./\n";
    out += "COPY <<EOF /etc/app.conf\nname=stage" + n + "\nhome=$APP_HOME\nEOF\n";
    out += "EXPOSE 8080/tcp\nCMD [\"/bin/sh\", \"-c\", \"cat /etc/app.conf\"]\n";
  }
  return out;
}

const std::string& Input() {
  static const std::string kInput = Generate();
  return kInput;
}

void BM_ParseSyntax(benchmark::State& state) {
  const std::string& in = Input();
  for (auto _ : state) {
    auto t = manifold::dockerfile::Parse(in, "Dockerfile");
    if (!t.ok()) state.SkipWithError(t.error().message.c_str());
    benchmark::DoNotOptimize(t);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}
BENCHMARK(BM_ParseSyntax)->Unit(benchmark::kMillisecond);

void BM_ParseAndPlanTwoPlatforms(benchmark::State& state) {
  const std::string& in = Input();
  manifold::plan::PlanOptions opts;
  opts.build_platform = {"linux", "amd64", ""};
  opts.platforms = {{"linux", "amd64", ""}, {"linux", "arm64", ""}};
  for (auto _ : state) {
    auto t = manifold::dockerfile::Parse(in, "Dockerfile");
    auto df = manifold::dockerfile::ParseInstructions(*t);
    if (!df.ok()) state.SkipWithError(df.error().message.c_str());
    auto p = manifold::plan::MakePlan(*df, t->escape, opts);
    if (!p.ok()) state.SkipWithError(p.error().message.c_str());
    benchmark::DoNotOptimize(p);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in.size()));
}
BENCHMARK(BM_ParseAndPlanTwoPlatforms)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
