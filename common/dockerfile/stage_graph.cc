#include "common/dockerfile/stage_graph.h"

#include "common/base/ascii.h"

#include <cctype>
#include <functional>

#include "common/dockerfile/source_error.h"

namespace manifold::dockerfile {

Expected<std::optional<int>> ResolveStageRef(const Dockerfile& df, const std::string& ref) {
  if (ref.empty()) return std::optional<int>();
  bool numeric = ref.size() <= 9;
  for (char c : ref) numeric = numeric && std::isdigit(static_cast<unsigned char>(c));
  if (numeric) {
    int idx = std::stoi(ref);
    if (idx >= static_cast<int>(df.stages.size()))
      return MakeError(ErrorKind::kInvalidInput, "dockerfile.stage.index",
                       "invalid stage index " + ref);
    return std::optional<int>(idx);
  }
  std::string lower = AsciiLower(ref);
  auto it = df.stage_by_name.find(lower);
  if (it != df.stage_by_name.end()) return std::optional<int>(it->second);
  return std::optional<int>();
}

Expected<int> ResolveTarget(const Dockerfile& df, const std::string& target) {
  if (target.empty()) return static_cast<int>(df.stages.size()) - 1;
  std::string lower = AsciiLower(target);
  auto it = df.stage_by_name.find(lower);
  if (it != df.stage_by_name.end()) return it->second;
  return MakeError(ErrorKind::kInvalidInput, "dockerfile.target",
                   "target stage \"" + target + "\" could not be found");
}

Expected<std::vector<int>> StagesNeeded(const Dockerfile& df, const std::vector<std::vector<int>>& deps,
                                        int target) {
  enum Color { kWhite, kGrey, kBlack };
  std::vector<Color> color(df.stages.size(), kWhite);
  std::vector<int> order;
  std::optional<Error> err;
  // Iterative DFS keeps deep chains from exhausting the stack.
  std::vector<std::pair<int, size_t>> stack{{target, 0}};
  color[static_cast<size_t>(target)] = kGrey;
  while (!stack.empty() && !err) {
    auto& [s, next] = stack.back();
    const auto& d = deps[static_cast<size_t>(s)];
    if (next < d.size()) {
      int n = d[next++];
      auto& c = color[static_cast<size_t>(n)];
      if (c == kGrey) {
        const Stage& st = df.stages[static_cast<size_t>(n)];
        err = SourceError(df.file, df.lines, st.from.line, 0, "dockerfile.stage.cycle",
                          "circular dependency detected on stage: " + st.DisplayName());
      } else if (c == kWhite) {
        c = kGrey;
        stack.push_back({n, 0});
      }
    } else {
      color[static_cast<size_t>(s)] = kBlack;
      order.push_back(s);
      stack.pop_back();
    }
  }
  if (err) return *err;
  return order;
}

}  // namespace manifold::dockerfile
