// Runs RUN steps with runc: one bundle (config.json + generated /etc files)
// per step under the worker's private state dir, `runc run` in the
// foreground, output streamed back, and the container and bundle always
// removed afterwards.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "worker/executor/runc_binary.h"
#include "worker/executor/runtime.h"
#include "worker/executor/runtime_spec.h"
#include "worker/platform/platform_detect.h"

namespace manifold::worker {

struct RuncConfig {
  std::string runc_path;  ///< absolute; empty = first "runc" on PATH
  /// Absolute, worker-private (0700): runc's state in <state_dir>/runc,
  /// bundles in <state_dir>/bundles/<id>.
  std::string state_dir;
  ExecutorPolicy policy;
  std::string host_resolv_conf = "/etc/resolv.conf";  ///< copied into each bundle
  std::string binfmt_dir = std::string(kDefaultBinfmtDir);
  bool systemd_cgroup = false;  ///< false: cgroupfs (`--systemd-cgroup` not passed)
  std::size_t output_tail_bytes = 64 * 1024;
  /// After `runc kill KILL` on timeout, how long runc may take to exit before
  /// it is SIGKILLed itself.
  std::chrono::milliseconds kill_grace{5000};
};

/// Succeeds when `platform` can run here: it is `native`, or a binfmt_misc
/// handler in `binfmt_dir` emulates it. Errors: kUnimplemented
/// "executor.platform" ("no emulator for linux/arm64"; RELIABILITY D7).
Expected<void> CheckPlatformRunnable(const PlatformTriple& platform, const PlatformTriple& native,
                                     std::string_view binfmt_dir);

class RuncRuntime : public Runtime {
 public:
  /// Finds runc, checks that it is root-owned and not writable by others and
  /// that its version carries the CVE-2024-21626 fix (RELIABILITY D6), and
  /// creates the state directories. Errors: kUnimplemented
  /// "executor.runc.missing" / "executor.runc.version" (unreadable version);
  /// kSecurity "executor.runc.permissions" / "executor.runc.version" (too
  /// old); kInvalidInput "executor.state_dir"; kInternal for I/O failures.
  static Expected<std::unique_ptr<RuncRuntime>> Create(RuncConfig config);

  /// Runs one step; see Runtime::Run. Besides the spec's errors: kUnimplemented
  /// "executor.platform" (see CheckPlatformRunnable) when request.platform is set;
  /// kInvalidInput "executor.rootfs" when the rootfs is not a directory;
  /// kResourceExhausted "executor.timeout"; kInternal "executor.spawn",
  /// "executor.io", "executor.bundle". Blocks the calling thread; several
  /// threads may run steps with different ids at once.
  Expected<RunResult> Run(const RunRequest& request) override;

  /// Force-deletes every container in this worker's runc root and every
  /// bundle (left by a crashed worker). Call once at startup.
  Expected<void> RemoveStale();

  const std::string& runc_path() const { return runc_path_; }
  const RuncVersion& runc_version() const { return version_; }

 private:
  RuncRuntime(RuncConfig config, std::string runc_path, RuncVersion version, PlatformTriple native);
  std::vector<std::string> RuncArgs(std::initializer_list<std::string_view> args) const;
  std::string BundlePath(std::string_view id) const;
  /// `runc delete -f id`; logs and swallows failures (used by cleanup).
  void DeleteContainer(std::string_view id) const;
  friend class ContainerGuard;

  RuncConfig config_;
  std::string runc_path_;
  RuncVersion version_;
  PlatformTriple native_;
};

}  // namespace manifold::worker
