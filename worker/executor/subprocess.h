// Starting a helper process (runc) without leaking a single file descriptor:
// stdin is /dev/null, stdout and stderr share one pipe back to us, and every
// other descriptor is closed in the child before exec (CVE-2024-21626 class).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/fs/unique_fd.h"
#include "worker/executor/runtime.h"

namespace manifold::worker {

/// Keeps the last `max_bytes` of a stream.
class OutputTail {
 public:
  explicit OutputTail(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  void Append(std::string_view chunk);
  std::string Take() &&;
  const std::string& str();

 private:
  std::size_t max_bytes_;
  std::string buf_;
};

struct SpawnOptions {
  /// Raise RLIMIT_NOFILE (soft and hard) in the child to this before exec,
  /// so runc can give the container a limit above the worker's own (needs
  /// CAP_SYS_RESOURCE; silently kept otherwise).
  std::optional<std::uint64_t> nofile_limit;
};

/// A running child process. Not thread-safe; owned by one thread.
class Subprocess {
 public:
  using Clock = std::chrono::steady_clock;

  /// Starts `argv` (argv[0] an absolute path; no PATH search) with exactly
  /// `env`. Errors: kInternal "executor.spawn" (pipe/fork/exec failures,
  /// with errno text).
  static Expected<Subprocess> Start(const std::vector<std::string>& argv,
                                    const std::vector<std::string>& env,
                                    const SpawnOptions& options = {});

  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&&) = delete;
  Subprocess(const Subprocess&) = delete;
  /// SIGKILLs and reaps the child if it was not waited for.
  ~Subprocess();

  pid_t pid() const { return pid_; }

  /// Forwards output to `sink` until the child has exited (returns its
  /// status, 128+N for signal N) or `deadline` passes (returns nullopt; call
  /// again to keep waiting). Errors: kInternal "executor.io".
  Expected<std::optional<int>> Wait(Clock::time_point deadline, const OutputSink& sink);
  /// SIGKILL to the child (not to its descendants).
  void Kill();

 private:
  Subprocess(pid_t pid, fs::UniqueFd pidfd, fs::UniqueFd out)
      : pid_(pid), pidfd_(std::move(pidfd)), out_(std::move(out)) {}
  Expected<void> Drain(const OutputSink& sink, int timeout_ms);
  int Reap();

  pid_t pid_ = -1;
  fs::UniqueFd pidfd_;
  fs::UniqueFd out_;
  std::optional<int> status_;
};

struct CommandResult {
  int exit_code = 0;
  std::string output;  ///< at most the last 64 KiB
};

/// Runs a short command to completion. Errors: those of Start(); kTransient
/// "executor.command.timeout" if it runs past `timeout` (it is killed).
Expected<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                   const std::vector<std::string>& env,
                                   std::chrono::milliseconds timeout);

}  // namespace manifold::worker
