// Image configuration (OCI image config / Docker container image config): the
// runtime defaults and the layer chain (diff_ids) of one image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/digest.h"

namespace manifold::oci {

/// Largest config ParseImageConfig() reads.
inline constexpr std::size_t kMaxConfigBytes = std::size_t{4} << 20;

/// Docker's "Healthcheck" (HEALTHCHECK); durations in nanoseconds, 0 = inherit/default.
struct HealthCheck {
  std::vector<std::string> test;  ///< "Test": ["CMD", ...], ["CMD-SHELL", "..."], ["NONE"]
  std::int64_t interval_ns = 0;
  std::int64_t timeout_ns = 0;
  std::int64_t start_period_ns = 0;
  std::int64_t start_interval_ns = 0;
  std::int64_t retries = 0;
  bool operator==(const HealthCheck&) const = default;
};

/// The "config" object: execution defaults. JSON keys are image-spec's/Docker's
/// ("User", "ExposedPorts", "Env", ...). Entrypoint and Cmd keep absent (nullopt)
/// apart from empty ([]): `CMD []` and "no CMD" mean different things.
struct ExecConfig {
  std::string user;
  std::set<std::string> exposed_ports;  ///< "80/tcp"; written as {"80/tcp":{}}
  std::vector<std::string> env;         ///< "KEY=value", order kept
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::set<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  bool args_escaped = false;  ///< Windows-only, deprecated; kept for round trips
  std::optional<HealthCheck> healthcheck;
  std::vector<std::string> on_build;
  std::vector<std::string> shell;
  bool operator==(const ExecConfig&) const = default;
};

struct RootFs {
  std::string type = "layers";  ///< the only type image-spec defines
  std::vector<Digest> diff_ids;  ///< uncompressed layer digests, bottom first
  bool operator==(const RootFs&) const = default;
};

struct HistoryEntry {
  std::optional<std::string> created;  ///< RFC 3339, kept verbatim
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
  bool operator==(const HistoryEntry&) const = default;
};

/// image-spec config.md plus Docker's Healthcheck/OnBuild/Shell (as BuildKit writes).
struct ImageConfig {
  std::optional<std::string> created;  ///< RFC 3339, kept verbatim (never "now": reproducible)
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  ExecConfig config;
  RootFs rootfs;
  std::vector<HistoryEntry> history;

  /// Canonical JSON, deterministic: created, author, architecture, os, variant,
  /// config, rootfs, history (image-spec's Go order); in "config": User, ExposedPorts,
  /// Env, Entrypoint, Cmd, Volumes, WorkingDir, Labels, StopSignal, ArgsEscaped,
  /// Healthcheck, OnBuild, Shell. Absent/empty fields omitted except "architecture",
  /// "os", "config" and "rootfs"; Entrypoint/Cmd written whenever set, even empty.
  /// Unknown fields of a parsed document (Docker's "container_config", ...) are not kept.
  std::string ToJson() const;
  bool operator==(const ImageConfig&) const = default;
};

/// The one door for config bytes (OCI and Docker use the same keys). JSON null
/// counts as absent. Errors: kInvalidInput "oci.too_large" (over kMaxConfigBytes),
/// "oci.invalid_json", "oci.too_deep", "oci.duplicate_key", "oci.invalid" (wrong
/// type; "rootfs" missing or its type not "layers"), "digest.invalid";
/// kUnimplemented "digest.algorithm".
Expected<ImageConfig> ParseImageConfig(std::string_view bytes);

}  // namespace manifold::oci
