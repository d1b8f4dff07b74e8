// This machine's job runner, set up alike by the embedded build and by
// manifold-worker: a private directory for cache mounts and secrets, the
// snapshotter, a runc root of the owner's own (held with a lock for the
// owner's life, RELIABILITY C5) and the runtime, and the WorkerEnv fields
// they give the job slots.
#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/base/expected.h"
#include "common/fs/unique_fd.h"
#include "worker/build/stage_executor.h"
#include "worker/executor/runc_runtime.h"
#include "worker/snapshot/snapshotter.h"

namespace manifold::worker {

struct RunDir {
  std::string path;   ///< <worker>/run/<owner>
  fs::UniqueFd lock;  ///< flock held until the owner ends
};

/// Reclaims the run dirs of dead owners (their lock is free: their
/// containers are killed and removed and the dir deleted, so their overlays
/// can be swept), then creates and locks <wstate>/run/<owner>. Builds and
/// workers running at the same time on one state dir never touch each
/// other's containers. Errors: kInternal "build.state".
Expected<RunDir> ClaimRunDir(const std::string& wstate, const std::string& owner);

class LocalWorker {
 public:
  /// Under `state_dir`: <state_dir>/worker (0700), the snapshotter, the run
  /// dir of `owner`, a runtime that permits `security=insecure` only when
  /// `allow_insecure`. Errors: those of the snapshotter, ClaimRunDir and the
  /// runtime.
  static Expected<std::unique_ptr<LocalWorker>> Open(const std::string& state_dir, const std::string& owner,
                                                     bool allow_insecure);
  /// Stops using the runtime and removes the run dir.
  ~LocalWorker();

  /// Points `env` at the snapshotter and the runtime, with their policy,
  /// the private directory and `step_timeout`; the store, cache and sessions
  /// are the owner's.
  void Fill(WorkerEnv& env, std::chrono::milliseconds step_timeout);

 private:
  LocalWorker() = default;
  std::string wstate_;
  std::optional<Snapshotter> snapshots_;
  RunDir run_dir_;
  std::unique_ptr<RuncRuntime> runtime_;
  ExecutorPolicy policy_;
};

}  // namespace manifold::worker
