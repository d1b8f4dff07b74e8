// manifold-worker: joins a Manifold farm and runs its jobs (worker_daemon.h).
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "common/base/daemon_args.h"
#include "common/base/log.h"
#include "common/registry/registry_options.h"
#include "worker/daemon/worker_daemon.h"

namespace {
constexpr const char* kUsage = R"(usage: manifold-worker (--join HOST:PORT | --discover) --token TOKEN [flags]

  --join HOST:PORT      the coordinator's address
  --discover            find the coordinator by its UDP beacon on the local network
  --token TOKEN         the join token (`manifold-coordinator token` prints it)
  --listen ADDR:PORT    blob server for peers (default 0.0.0.0:0, an ephemeral port)
  --advertise ADDR:PORT the address peers use (default: the listen address, or the
                        interface that reaches the coordinator)
  --state-dir DIR       default /var/lib/manifold/worker
  --slots N             jobs at once (default 2)
  --id ID               wanted worker id (default: the host name)
  --beacon-port N       UDP port of the beacon (default 7699)
  --min-free-disk MIB   below this free space the worker reports itself degraded
                        and gets jobs only when no healthy one is free (default 512)
  --allow-insecure      permit RUN --security=insecure
  --log-level LEVEL     trace, debug, info (default), warn, error
  --config FILE         default /etc/manifold/worker.toml when present
)";
}

int main(int argc, char** argv) {
  using namespace manifold;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << kUsage;
      return 0;
    }
  auto args = ParseDaemonArgs(argc, argv, "/etc/manifold/worker.toml",
                              {"join", "token", "listen", "advertise", "state_dir", "slots", "id",
                               "beacon_port", "log_level", "discover_timeout", "min_free_disk"},
                              {"discover", "allow_insecure"});
  if (!args.ok()) {
    std::cerr << "manifold-worker: " << args.error().message << "\n" << kUsage;
    return 2;
  }
  auto& v = args->values;
  if (!SetLogLevel(v.count("log_level") ? v["log_level"] : "info")) {
    std::cerr << "manifold-worker: unknown log level \"" << v["log_level"] << "\"\n";
    return 2;
  }
  worker::WorkerDaemonConfig c;
  c.join = v["join"];
  c.discover = v["discover"] == "true";
  c.token = v["token"];
  if (c.token.empty() && std::getenv("MANIFOLD_TOKEN")) c.token = std::getenv("MANIFOLD_TOKEN");
  if (v.count("listen")) c.listen = v["listen"];
  c.advertise = v["advertise"];
  if (v.count("state_dir")) c.state_dir = v["state_dir"];
  if (v.count("slots")) c.slots = static_cast<unsigned>(std::atoi(v["slots"].c_str()));
  c.id = v["id"];
  if (v.count("beacon_port")) c.beacon_port = static_cast<std::uint16_t>(std::atoi(v["beacon_port"].c_str()));
  if (v.count("discover_timeout"))
    c.discover_timeout = std::chrono::seconds(std::atoi(v["discover_timeout"].c_str()));
  c.allow_insecure = v["allow_insecure"] == "true";
  if (v.count("min_free_disk")) c.min_free_disk = std::strtoull(v["min_free_disk"].c_str(), nullptr, 10) << 20;
  if (c.token.empty()) {
    std::cerr << "manifold-worker: no --token (or MANIFOLD_TOKEN, or token in the config file)\n";
    return 2;
  }
  if (c.slots == 0 || c.slots > 256) {
    std::cerr << "manifold-worker: --slots must be 1..256\n";
    return 2;
  }
  // Its own registry settings and credentials: it pushes the layers it
  // built when a farm build pushes.
  const char* daemon_json = std::getenv("MANIFOLD_DAEMON_CONFIG");
  auto loaded = registry::LoadDaemonConfig(daemon_json ? daemon_json : "/etc/docker/daemon.json", &c.registry);
  if (!loaded.ok()) {
    std::cerr << "manifold-worker: " << loaded.error().ToString() << "\n";
    return 2;
  }
  const auto& stop = StopOnSignals();
  auto r = worker::RunWorkerDaemon(c, stop);
  if (!r.ok()) {
    std::cerr << "manifold-worker: " << r.error().ToString() << "\n";
    return 1;
  }
  return 0;
}
