// What a worker needs from the build's client besides the job message: the
// context and the secrets. In the embedded mode the coordinator and the
// worker share this process, so the session is handed over in memory; secrets
// never travel in a job message, a cache key or a log (issue 4, DESIGN.md
// "Security").
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/dockerfile/dockerignore.h"

namespace manifold::worker {

struct BuildSession {
  std::string context_dir;  ///< absolute host path of the build context
  std::optional<dockerfile::IgnoreMatcher> ignore;  ///< the context's .dockerignore
  std::map<std::string, std::string> secrets;       ///< id -> bytes
  /// Farm workers: the context entries materialized in context_dir so far
  /// (each job brings the ones its steps read).
  std::set<std::string> context_have;
};

/// Thread-safe map build id -> session.
class SessionRegistry {
 public:
  void Put(const std::string& build_id, std::shared_ptr<const BuildSession> s) {
    std::lock_guard lock(mu_);
    sessions_[build_id] = std::move(s);
  }
  std::shared_ptr<const BuildSession> Get(const std::string& build_id) const {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(build_id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  void Remove(const std::string& build_id) {
    std::lock_guard lock(mu_);
    sessions_.erase(build_id);
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const BuildSession>> sessions_;
};

}  // namespace manifold::worker
