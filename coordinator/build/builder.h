// `manifold build` on one machine: the coordinator component (plan, cache
// keys, scheduling, the image index) and an embedded worker exchanging
// StageJob / Progress / StageResult messages over ZeroMQ inproc://, exactly
// as they would over tcp:// in a cluster (issue 4, DESIGN.md "A build, end
// to end").
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/platform.h"
#include "common/registry/registry_options.h"

namespace manifold::coordinator {

class ClusterBackend;

struct OutputSpec {
  enum class Type { kOci, kOciDir, kLocal, kImage };
  Type type = Type::kOci;
  std::string dest;  ///< kOci, kOciDir, kLocal
  std::string name;  ///< kImage: the reference
  bool push = false;  ///< kImage: push to the registry (type=registry, or push=true)
};

/// Parses buildx's `--output type=oci,dest=FILE` (also `type=oci-dir`,
/// `type=local`, `type=image,name=REF[,push=true]`, `type=registry,name=REF`,
/// and the short form `-o DIR` = type=local). Errors: kInvalidInput "cli.output".
Expected<OutputSpec> ParseOutputSpec(const std::string& spec);

/// `--secret id=X,src=FILE` / `id=X,env=VAR` (buildx syntax; `type=file|env`
/// accepted). Returns (id, contents). Errors: kInvalidInput "cli.secret".
Expected<std::pair<std::string, std::string>> ParseSecretSpec(const std::string& spec);

struct BuildRequest {
  std::string context_dir;
  std::string dockerfile;  ///< path; empty = <context>/Dockerfile
  std::vector<oci::Platform> platforms;  ///< empty = this machine's
  std::string target;
  std::map<std::string, std::string> build_args;
  std::vector<std::string> tags;
  std::vector<OutputSpec> outputs;
  bool no_cache = false;
  std::vector<std::string> no_cache_filter;  ///< stage names
  std::map<std::string, std::string> secrets;
  std::vector<std::string> volumes;  ///< HOST:CTR[:ro]
  std::vector<std::string> allow;    ///< entitlements: "security.insecure"
  std::optional<std::int64_t> source_date_epoch;
  std::string progress = "auto";  ///< auto, tty, plain, json, quiet
  std::string compression = "gzip";
  unsigned slots = 2;
  std::string state_dir;
  /// The worker permits security.insecure (its own setting).
  bool worker_allows_insecure = true;
  /// Registries: bases missing from the local store are pulled; with
  /// `pull`, every base is checked for a newer digest. `push` sends the
  /// result to every name in `tags`.
  registry::RegistryOptions registry;
  bool pull = false;
  bool push = false;
  std::chrono::milliseconds step_timeout{0};
  /// When set, the schedule as a Chrome/Perfetto trace (JSON): one track per
  /// worker slot, one slice per executed step.
  std::string trace_file;

  /// Cluster builds (manifold-coordinator): jobs go to the farm through this
  /// backend instead of an embedded worker; no local outputs.
  ClusterBackend* cluster = nullptr;
  /// Cluster builds: the client will not fetch the image (a --push build
  /// without outputs), so its layers stay on the workers, which push them.
  bool no_result = false;
  /// The Dockerfile's text when it does not come from a file, and the name
  /// errors show for it.
  std::optional<std::string> dockerfile_content;
  std::string dockerfile_name;
  /// The .dockerignore text, when it does not come from the context dir.
  std::optional<std::string> dockerignore_content;
  /// Cluster builds: the schedule as Chrome trace JSON, for the client.
  std::string* trace_out = nullptr;
};

struct BuildSummary {
  std::string index_digest;
  std::vector<std::pair<std::string, std::string>> manifests;  ///< (platform, digest)
  int steps_executed = 0;
  int steps_cached = 0;
  int jobs_run = 0;
  int jobs_cached = 0;
  double seconds = 0;
  std::vector<std::pair<std::string, std::string>> pushed;  ///< (reference, digest)
};

/// <state>/build-cache.lock: builds hold it shared for their whole run;
/// `manifold prune --build-cache` takes it exclusively.
std::string BuildCacheLockPath(const std::string& state_dir);

struct BuildCachePruneStats {
  std::uint64_t step_records = 0;
  std::uint64_t snapshots = 0;
  std::uint64_t cache_mounts = 0;
  std::uint64_t bytes = 0;  ///< of snapshots and cache mounts
};

/// Removes the build cache of `state_dir`: every step record, unpacked
/// snapshot and cache mount (blobs no image references go with the next
/// blob prune). Refuses while a build runs on the state dir. Errors:
/// kTransient "prune.busy"; kInternal "prune.io".
Expected<BuildCachePruneStats> PruneBuildCache(const std::string& state_dir);

/// A whole file of at most `max` bytes. Errors: kInvalidInput "build.file".
Expected<std::string> ReadWholeFile(const std::string& path, std::size_t max);

/// Runs the build. Progress goes to `out` as chosen by request.progress.
/// Errors: the planner's (with the Dockerfile line), kInvalidInput
/// "build.base.not_found" (a base image not in the local store),
/// kUnimplemented "build.platform" (no native or emulated support), kSecurity
/// "build.entitlement", and any job's error (with its stage and platform).
Expected<BuildSummary> RunBuild(const BuildRequest& request, std::ostream& out);

/// How a cancelled build fails (Ctrl-C on the client, the client gone, the
/// operator): kInvalidInput "build.cancelled", "build cancelled: <why>".
Error BuildCancelled(const std::string& why);

}  // namespace manifold::coordinator
