// libFuzzer target for the Dockerfile door: syntax layer, instruction layer,
// JSON rendering, and planning for two platforms. Any input must parse or
// fail with a located kInvalidInput error; never crash or hang (RELIABILITY A2, A3).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/dockerfile/instruction.h"
#include "common/dockerfile/parse_json.h"
#include "common/dockerfile/parser.h"
#include "coordinator/plan/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace manifold;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tree = dockerfile::Parse(text, "Dockerfile");
  if (!tree.ok()) {
    if (tree.error().kind != ErrorKind::kInvalidInput) __builtin_trap();
    return 0;
  }
  (void)dockerfile::SyntaxTreeToJson(*tree);
  auto df = dockerfile::ParseInstructions(*tree);
  if (!df.ok()) {
    if (!df.error().where) __builtin_trap();
    return 0;
  }
  plan::PlanOptions opts;
  opts.build_platform = {"linux", "amd64", ""};
  opts.platforms = {{"linux", "amd64", ""}, {"linux", "arm64", ""}};
  opts.build_args = {{"A", "x"}};
  auto p = plan::MakePlan(*df, tree->escape, opts);
  if (p.ok()) (void)plan::PlanToJson(*p);
  return 0;
}
