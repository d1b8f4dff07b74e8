// Runs one StageJob on this worker: resolves the base (an image in the local
// store, scratch, or an earlier stage's result), then walks the instructions.
// Each step with a planned key is looked up in the step cache first; a miss
// executes it: RUN in runc over an overlay of the layer chain, COPY/ADD into
// such an overlay, metadata instructions into the image config. A step that
// changes files becomes a layer in the content store; every step's resulting
// config is stored and recorded under its key, so a later build resumes after
// the last step it shares with this one.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/base/expected.h"
#include "common/cache/step_cache.h"
#include "common/image/image_store.h"
#include "common/wire/stage_job.h"
#include "worker/build/session.h"
#include "worker/executor/runtime.h"
#include "worker/snapshot/snapshotter.h"

namespace manifold::worker {

/// A worker's long-lived parts, shared by its job slots (each is thread-safe).
struct WorkerEnv {
  image::ImageStore* store = nullptr;
  Snapshotter* snapshots = nullptr;
  Runtime* runtime = nullptr;
  cache::StepCache* cache = nullptr;
  SessionRegistry* sessions = nullptr;
  ExecutorPolicy policy;  ///< allow_insecure etc.: the worker's own settings
  /// Worker-private directory (0700): cache mounts, secrets, bind copies.
  std::string state_dir;
  std::chrono::milliseconds step_timeout{0};  ///< 0 = none
  /// Set by the coordinator side to stop the build's jobs (embedded mode).
  const std::atomic<bool>* cancel = nullptr;
  /// Set to stop the one job this env runs (a slot's copy; the farm's
  /// cancel of one lease).
  const std::atomic<bool>* job_cancel = nullptr;
  /// A RUN in progress is killed; no further step starts.
  bool Cancelled() const {
    return (cancel && cancel->load()) || (job_cancel && job_cancel->load());
  }
};

using ProgressFn = std::function<void(const wire::ProgressData&)>;

/// Executes `job`. On success the result has the config digest, the full
/// layer chain and one StepResult per instruction. Errors: kInvalidInput
/// "step.run.failed" (a RUN exited non-zero: exit code and the output's tail,
/// RELIABILITY D5), "step.base.not_found", "step.input.missing",
/// "step.secret.missing", "step.mount.*"; kSecurity "step.entitlement"
/// (`--security=insecure` not granted, RELIABILITY A6), "executor.*" from the
/// runtime; kUnimplemented "step.mount.ssh", "executor.platform" (D7); and
/// those of the snapshotter, the copy step and the content store. Errors
/// carry the Dockerfile line of the failing step.
Expected<wire::StageResultData> ExecuteStage(const wire::StageJobData& job, WorkerEnv& env,
                                             const ProgressFn& progress);

/// A RUN step's argv for the image's shell (`shell`, default /bin/sh -c), as
/// BuildKit builds it: shell form joins args and appends heredocs (one that is
/// the whole command becomes a script file, see RunScriptFile).
std::vector<std::string> RunArgv(const dockerfile::Instruction& in,
                                 const std::vector<std::string>& shell);

}  // namespace manifold::worker
