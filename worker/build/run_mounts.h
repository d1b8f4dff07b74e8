// The extra mounts of one RUN step: `--mount=type=cache|bind|tmpfs|secret`,
// buildah-style `--volume`s and heredoc scripts, turned into runtime mounts
// whose host sides live in the worker's private state dir and are removed
// when the step ends (secrets included: never in a layer).
//
//   <state>/cache-mounts/<sha256(id)>   cache mount contents (persist)
//   <state>/cache-mounts/<sha256(id)>.lock
//   <state>/steps/<step id>/            per-step files: secrets, scripts, copies
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/dockerfile/mount.h"
#include "common/fs/unique_fd.h"
#include "common/wire/stage_job.h"
#include "worker/build/session.h"
#include "worker/executor/runtime_spec.h"
#include "worker/snapshot/step_snapshot.h"

namespace manifold::fs {
class RootDir;
}

namespace manifold::worker {

struct WorkerEnv;

/// Gives read-only views of a stage or image a mount names in `from=`.
class InputMounter {
 public:
  virtual ~InputMounter() = default;
  virtual Expected<StepSnapshot> MountFrom(const std::string& ref) = 0;
};

/// The host path of a cache mount's contents for `id` (hashed: ids never
/// name host paths, RELIABILITY A7).
std::string CacheMountDir(const std::string& state_dir, const std::string& id);

class RunMounts {
 public:
  RunMounts(WorkerEnv& env, const wire::StageJobData& job, const BuildSession* session, int step);
  ~RunMounts();
  RunMounts(const RunMounts&) = delete;
  RunMounts& operator=(const RunMounts&) = delete;

  /// A heredoc script, mounted read-only at /dev/pipes/<name> (as BuildKit);
  /// returns that path.
  Expected<std::string> AddScript(const std::string& name, const std::string& data);

  /// One `--mount` value (already expanded). Errors: those of ParseMount;
  /// kUnimplemented "step.mount.ssh"; kInvalidInput "step.secret.missing"
  /// (required secret not given), "step.mount.source" (a bind source that
  /// does not exist); kInternal "step.mount.io".
  Expected<void> AddMountSpec(const std::string& text, InputMounter& mounter);

  /// buildah's `--volume HOST:CTR[:ro|rw]`. Errors: kInvalidInput "step.volume".
  Expected<void> AddVolume(const std::string& spec);

  const std::vector<Mount>& mounts() const { return mounts_; }
  /// Secret environment variables (`type=secret,env=NAME`).
  const std::map<std::string, std::string>& env() const { return env_vars_; }

  /// After the process ended: releases locks and views, removes per-step
  /// files. Also run by the destructor.
  Expected<void> Finish(const fs::RootDir& rootfs);

 private:
  Expected<std::string> StepDir();
  Expected<void> AddCache(const dockerfile::MountSpec& m, InputMounter& mounter);
  Expected<void> AddBind(const dockerfile::MountSpec& m, InputMounter& mounter);
  Expected<void> AddSecret(const dockerfile::MountSpec& m);
  Expected<std::string> CopyInto(const fs::RootDir& src_root, bool keep_owners,
                                 const std::string& source, const std::string& dir);

  WorkerEnv& env_;
  const wire::StageJobData& job_;
  const BuildSession* session_;
  int step_;
  std::string step_dir_;
  std::vector<Mount> mounts_;
  std::map<std::string, std::string> env_vars_;
  std::vector<fs::UniqueFd> locks_;
  std::vector<StepSnapshot> views_;
  int counter_ = 0;
  bool finished_ = false;
};

}  // namespace manifold::worker
