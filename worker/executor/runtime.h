// The seam between a RUN step and the container runtime (STYLE.md section 6):
// RuncRuntime runs real containers, testing/FakeRuntime records what would
// have run.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/base/expected.h"
#include "worker/executor/runtime_spec.h"
#include "worker/platform/platform_detect.h"

namespace manifold::worker {

/// Receives the step's stdout and stderr while it runs. Each stream keeps its
/// order; their interleaving is approximate (runc copies them separately).
/// Called on the thread that called Run().
using OutputSink = std::function<void(std::string_view chunk)>;

struct RunRequest {
  std::string id;  ///< container id, `[A-Za-z0-9_-]{1,64}`; unique among running steps
  RunSpec spec;
  /// The rootfs's platform. When set, a foreign one without a binfmt_misc
  /// emulator is refused before anything runs (RELIABILITY D7).
  std::optional<PlatformTriple> platform;
  std::chrono::milliseconds timeout{0};  ///< 0 = none
  OutputSink on_output;                  ///< may be empty
  /// Remove the empty files and directories the runtime created in the rootfs
  /// as mount points (/proc, /etc/hosts, mount targets), so they do not end
  /// up in the step's layer (BuildKit's mount stub cleaner).
  bool remove_mount_stubs = true;
  /// Asked a few times a second while the step runs; true stops it (the
  /// container is killed and removed). May be empty.
  std::function<bool()> cancelled;
};

struct RunResult {
  /// The process's exit status; 128+N when killed by signal N. Non-zero is
  /// the *step's* failure, which the caller reports as kInvalidInput with
  /// output_tail (RELIABILITY D5); it is not an error of Run().
  int exit_code = 0;
  std::string output_tail;    ///< the last bytes of output (64 KiB by default)
  std::string runtime_error;  ///< the runtime's own complaint ("exec: \"x\": not found"), if any
  std::chrono::milliseconds duration{0};
};

class Runtime {
 public:
  virtual ~Runtime() = default;

  /// Runs one step to completion. Validates the request at the point of use
  /// (BuildRuntimeSpec's errors; kUnimplemented "executor.platform" when
  /// request.platform cannot run here). Errors: kResourceExhausted
  /// "executor.timeout" when the step outlived request.timeout (the
  /// container is killed and removed first); kInternal "step.cancelled" when
  /// request.cancelled said so (likewise); kInternal for runtime failures.
  virtual Expected<RunResult> Run(const RunRequest& request) = 0;
};

}  // namespace manifold::worker
