// manifold-coordinator: the farm's hub (issue 6, DESIGN.md "Wire protocol",
// "Membership and security"). One ROUTER socket on one port, CURVE-encrypted,
// serves workers and clients; a ZAP handler admits only the join key (the
// token), admitted workers and allowed clients. Workers heartbeat and are
// declared lost when silent; builds submitted by clients run side by side
// (up to --max-builds, the rest queue), each on a build thread that plans,
// keys and schedules it over the workers (coordinator::Build with a
// ClusterBackend), with the shared cache index in SQLite in the state dir.
// The reactor owns the job slots: a slot runs one lease at a time, offered
// to every build while free; a build's leases are cancelled on the workers
// when it ends.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/base/expected.h"
#include "common/registry/registry_options.h"

namespace manifold::coordinator {

struct CoordinatorConfig {
  std::string listen = "0.0.0.0:7600";  ///< ADDR:PORT for workers and clients
  std::string state_dir = "/var/lib/manifold/coordinator";
  /// A worker silent this long is lost; its jobs run elsewhere.
  std::chrono::milliseconds heartbeat_timeout{10'000};
  /// How long a job waits for a worker of its platform (RELIABILITY H4).
  std::chrono::milliseconds worker_wait{120'000};
  /// How long a worker that failed job after job stays out of rotation
  /// (RELIABILITY H5: quarantined for the build, then globally).
  std::chrono::milliseconds quarantine{600'000};
  /// Builds running at once (they share the slots); more wait in a queue.
  int max_builds = 4;
  /// UDP beacon target ("" = no beacon): a broadcast address, or 127.0.0.1.
  std::string beacon_address;
  std::uint16_t beacon_port = 7699;
  registry::RegistryOptions registry;  ///< for pulling bases and pushing results
};

/// Serves until `stop`. Errors: kInvalidInput for a bad address or state dir.
Expected<void> RunCoordinator(const CoordinatorConfig& config, const std::atomic<bool>& stop);

/// The join token of the coordinator whose state is `state_dir` (its keys are
/// created on first use).
Expected<std::string> CoordinatorToken(const std::string& state_dir);

/// Admits a client's CURVE public key (Z85). Errors: kInvalidInput
/// "coordinator.key" for a malformed key.
Expected<void> AllowClient(const std::string& state_dir, const std::string& public_key);

}  // namespace manifold::coordinator
