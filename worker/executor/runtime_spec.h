// The OCI runtime spec (a bundle's config.json) for one RUN step: what the
// process sees (namespaces, /proc, a minimal /dev, /etc/hosts and friends,
// capabilities, masked paths, cgroup limits). Pure: no I/O, so every field is
// unit-tested; RuncRuntime writes the result and FakeRuntime records it.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::worker {

/// One extra mount for a RUN step (`--mount`, buildah's `--volume`).
struct Mount {
  enum class Type { kBind, kTmpfs };
  Type type = Type::kBind;
  std::string source;       ///< absolute host path (kBind only)
  std::string destination;  ///< absolute path in the container
  bool readonly = false;
  std::uint64_t tmpfs_size_bytes = 0;  ///< kTmpfs only; 0 = the kernel's default (half of RAM)
};

/// Everything about the process of one RUN step.
struct RunSpec {
  enum class Network { kHost, kNone };

  std::vector<std::string> args;  ///< argv, already shell-wrapped by the caller
  std::vector<std::string> env;   ///< "KEY=value"
  std::string cwd = "/";          ///< absolute; cleaned; never inside /proc
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::uint32_t> additional_gids;
  std::string hostname;              ///< empty = kDefaultHostname
  Network network = Network::kHost;  ///< host, like buildah and the classic docker build
  bool insecure = false;  ///< `--security=insecure`: needs ExecutorPolicy::allow_insecure
  std::vector<Mount> mounts;
  std::string rootfs;  ///< absolute host path of the (overlay) root
  bool readonly_rootfs = false;
};

/// Worker-level settings, from the worker's configuration, never from a job.
struct ExecutorPolicy {
  /// The worker permits `security.insecure` (all capabilities, no masked
  /// paths). The build must also have asked for it; both are checked at plan
  /// time and again here (CVE-2024-23653).
  bool allow_insecure = false;
  std::int64_t pids_limit = 4096;                  ///< 0 = unlimited
  std::optional<std::int64_t> memory_limit_bytes;  ///< unset = unlimited
  std::uint64_t nofile_limit = 1048576;
  /// The worker's own capability bounding set (bit N = capability N): a
  /// container cannot get what its runtime lacks, so `insecure` gets all of
  /// these and the default set is cut to them. Unset = no limit (tests).
  std::optional<std::uint64_t> capability_bounding_set;
  /// cgroupfs parent: each step's cgroup is /<cgroup_parent>/<id>.
  std::string cgroup_parent = "manifold";
};

/// Host paths of the files the executor generated for the container's
/// /etc/resolv.conf, /etc/hosts and /etc/hostname (bind-mounted read-only).
struct EtcFiles {
  std::string resolv_conf;
  std::string hosts;
  std::string hostname;
};

inline constexpr std::string_view kDefaultHostname = "manifold";

/// Docker's default capability set, in Docker's order.
const std::vector<std::string>& DefaultCapabilities();
/// Every capability this spec version knows (CAP_CHOWN .. CAP_CHECKPOINT_RESTORE),
/// granted to `insecure` steps.
const std::vector<std::string>& AllCapabilities();
/// Docker's default masked and read-only paths.
const std::vector<std::string>& DefaultMaskedPaths();
const std::vector<std::string>& DefaultReadonlyPaths();

/// Checks a container/step id before it names a path or a runc container:
/// `[A-Za-z0-9_-]{1,64}` (BuildKit `ValidContainerID`).
/// Errors: kSecurity "executor.id".
Expected<void> ValidateContainerId(std::string_view id);

/// Cleans `cwd` lexically and checks it. Errors: kInvalidInput
/// "executor.cwd.relative" (not absolute, or NUL); kSecurity
/// "executor.cwd.proc" when it is /proc or below (CVE-2024-21626; re-checked
/// here although the planner checks WORKDIR too).
Expected<std::string> ValidateCwd(std::string_view cwd);

/// /etc/hosts for a step: localhost (v4 and v6) plus `hostname` on 127.0.0.1.
std::string HostsFileContent(std::string_view hostname);

/// The config.json for step `id`. Validates at the point of use: the id
/// (kSecurity "executor.id"), cwd (see ValidateCwd), `insecure` without
/// policy.allow_insecure (kSecurity "executor.entitlement"), args (kInvalidInput
/// "executor.args"), env, hostname and rootfs (kInvalidInput "executor.env",
/// "executor.hostname", "executor.rootfs"), mounts (kInvalidInput
/// "executor.mount.source" / "executor.mount.destination"; kSecurity
/// "executor.mount.proc" for a destination in /proc).
Expected<nlohmann::json> BuildRuntimeSpec(std::string_view id, const RunSpec& spec,
                                          const ExecutorPolicy& policy, const EtcFiles& etc);

}  // namespace manifold::worker
