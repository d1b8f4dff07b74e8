// manifold-worker: a farm node (issue 6). It joins the coordinator with the
// token (or finds it by its UDP beacon), heartbeats with its platforms and
// load, runs jobs in its slots exactly as the embedded worker does, fetches
// the inputs each job lacks (blobs from the coordinator or a peer, the
// context, the secrets) and serves its own blobs to peers on its own port.
// SIGTERM drains: running jobs finish, no new ones are taken, then it exits.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/base/expected.h"
#include "common/registry/registry_options.h"

namespace manifold::worker {

struct WorkerDaemonConfig {
  std::string join;   ///< HOST:PORT of the coordinator; empty with `discover`
  bool discover = false;
  std::uint16_t beacon_port = 7699;
  std::chrono::milliseconds discover_timeout{30'000};
  std::string token;  ///< the coordinator's join token
  std::string listen = "0.0.0.0:0";  ///< the blob server: ADDR:PORT (0 = ephemeral)
  std::string advertise;             ///< ADDR:PORT peers use; default from `listen`
  std::string state_dir = "/var/lib/manifold/worker";
  std::string id;     ///< wanted worker id; default: the host name
  unsigned slots = 2;
  bool allow_insecure = false;  ///< permits RUN --security=insecure
  std::chrono::milliseconds step_timeout{0};
  /// Below this much free space in the state dir the worker reports itself
  /// degraded and gets jobs only when no healthy worker is free (H8).
  std::uint64_t min_free_disk = 512ull << 20;
  /// Where and how it pushes layers when the coordinator asks (its own
  /// daemon.json and credentials).
  registry::RegistryOptions registry;
};

/// Runs until `stop` becomes true (SIGTERM/SIGINT in main) and every running
/// job has finished. Errors: kInvalidInput for a bad token, address or state
/// dir; kSecurity "worker.join.refused" when the coordinator refuses the
/// join; kTransient "worker.join.timeout" when it does not answer.
Expected<void> RunWorkerDaemon(const WorkerDaemonConfig& config, const std::atomic<bool>& stop);

}  // namespace manifold::worker
