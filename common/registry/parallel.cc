#include "common/registry/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace manifold::registry {

Expected<void> ParallelFor(std::size_t count, int threads,
                           const std::function<Expected<void>(std::size_t)>& work) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::optional<Error> first;
  auto fail = [&](Error e) {
    std::lock_guard<std::mutex> lock(mu);
    if (!first) first = std::move(e);
    failed = true;
  };
  auto run = [&] {
    for (;;) {
      if (failed) return;
      std::size_t i = next++;
      if (i >= count) return;
      try {
        auto r = work(i);
        if (!r.ok()) fail(std::move(r).error());
      } catch (const std::exception& e) {  // MF_ASSERT must not take the process down
        fail(MakeError(ErrorKind::kInternal, "registry.internal", e.what()));
      }
    }
  };
  std::size_t n = std::min<std::size_t>(count, static_cast<std::size_t>(std::max(threads, 1)));
  if (n <= 1) {
    run();
  } else {
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t < n; ++t) pool.emplace_back(run);
    for (auto& t : pool) t.join();
  }
  if (first) return *first;
  return Ok();
}

}  // namespace manifold::registry
