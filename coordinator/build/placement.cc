#include "coordinator/build/placement.h"

#include <algorithm>

#include "common/oci/index.h"

#include <tuple>

namespace manifold::coordinator {

Placement Place(const PlacementRequest& job, const std::vector<SlotView>& slots) {
  Placement out;
  std::tuple<int, bool, int, int> best{99, false, 0, 0};  // (emulated, degraded, -held, load): smaller wins
  auto count = [](const std::map<std::string, int>* m, const std::string& w) {
    if (!m) return 0;
    auto it = m->find(w);
    return it == m->end() ? 0 : it->second;
  };
  // Thousands of slots offer a handful of distinct platforms: match each
  // once (PlatformMatches normalises both sides).
  std::vector<std::pair<const oci::Platform*, bool>> seen;
  auto matches = [&](const oci::Platform& p) {
    for (const auto& [q, m] : seen)
      if (*q == p) return m;
    bool m = p == job.platform || oci::PlatformMatches(job.platform, p);
    seen.emplace_back(&p, m);
    return m;
  };
  for (const auto& s : slots) {
    int rank = 99;
    if (s.platforms)
      for (const auto& [p, emulated] : *s.platforms)
        if (matches(p)) rank = std::min(rank, emulated ? 1 : 0);
    if (rank == 99 && !job.runs) rank = 1;  // COPY-only jobs run anywhere
    if (rank == 99) continue;
    out.capable = true;
    if (!s.idle) continue;
    std::tuple<int, bool, int, int> score{rank, s.degraded, -count(job.held, s.worker), count(job.load, s.worker)};
    if (out.slot.empty() || score < best) {
      out.slot = s.id;
      best = score;
    }
  }
  return out;
}

}  // namespace manifold::coordinator
