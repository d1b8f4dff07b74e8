// manifold-coordinator: the farm's hub (coordinator_daemon.h).
#include <sys/resource.h>

#include <cstdlib>
#include <iostream>

#include "common/base/daemon_args.h"
#include "common/base/log.h"
#include "common/registry/registry_options.h"
#include "coordinator/daemon/coordinator_daemon.h"

namespace {
constexpr const char* kUsage = R"(usage: manifold-coordinator [flags]
       manifold-coordinator token [--state-dir DIR]
       manifold-coordinator allow-client KEY [--state-dir DIR]

  --listen ADDR:PORT        workers and clients (default 0.0.0.0:7600)
  --state-dir DIR           default /var/lib/manifold/coordinator
  --heartbeat-timeout SEC   a worker silent this long is lost (default 10)
  --worker-wait SEC         how long a job waits for a worker of its platform (default 120)
  --quarantine SEC          how long a worker failing job after job takes no jobs (default 600)
  --max-builds N            builds running at once, sharing the workers; more wait (default 4)
  --beacon ADDR             announce on UDP to ADDR (a broadcast address) for --discover
  --beacon-port N           default 7699
  --log-level LEVEL         trace, debug, info (default), warn, error
  --config FILE             default /etc/manifold/coordinator.toml when present
)";
}

int main(int argc, char** argv) {
  using namespace manifold;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << kUsage;
      return 0;
    }
  auto args = ParseDaemonArgs(argc, argv, "/etc/manifold/coordinator.toml",
                              {"listen", "state_dir", "heartbeat_timeout", "worker_wait", "quarantine", "max_builds", "beacon",
                               "beacon_port", "log_level"},
                              {});
  if (!args.ok()) {
    std::cerr << "manifold-coordinator: " << args.error().message << "\n" << kUsage;
    return 2;
  }
  auto& v = args->values;
  if (!SetLogLevel(v.count("log_level") ? v["log_level"] : "info")) {
    std::cerr << "manifold-coordinator: unknown log level \"" << v["log_level"] << "\"\n";
    return 2;
  }
  coordinator::CoordinatorConfig c;
  if (v.count("state_dir")) c.state_dir = v["state_dir"];
  const auto& pos = args->positional;
  if (!pos.empty() && pos[0] == "token") {
    auto t = coordinator::CoordinatorToken(c.state_dir);
    if (!t.ok()) {
      std::cerr << "manifold-coordinator: " << t.error().ToString() << "\n";
      return 1;
    }
    std::cout << "Workers join with:\n  manifold-worker --join HOST:PORT --token " << *t << "\n"
              << *t << "\n";
    return 0;
  }
  if (!pos.empty() && pos[0] == "allow-client") {
    if (pos.size() != 2) {
      std::cerr << "manifold-coordinator: allow-client needs one KEY\n";
      return 2;
    }
    auto r = coordinator::AllowClient(c.state_dir, pos[1]);
    if (!r.ok()) {
      std::cerr << "manifold-coordinator: " << r.error().ToString() << "\n";
      return 1;
    }
    std::cout << "client key admitted\n";
    return 0;
  }
  if (!pos.empty()) {
    std::cerr << "manifold-coordinator: unknown command \"" << pos[0] << "\"\n" << kUsage;
    return 2;
  }
  if (v.count("listen")) c.listen = v["listen"];
  if (v.count("heartbeat_timeout"))
    c.heartbeat_timeout = std::chrono::milliseconds(static_cast<long>(std::atof(v["heartbeat_timeout"].c_str()) * 1000));
  if (v.count("worker_wait"))
    c.worker_wait = std::chrono::milliseconds(static_cast<long>(std::atof(v["worker_wait"].c_str()) * 1000));
  if (v.count("quarantine"))
    c.quarantine = std::chrono::milliseconds(static_cast<long>(std::atof(v["quarantine"].c_str()) * 1000));
  if (v.count("max_builds")) {
    const std::string& n = v["max_builds"];
    char* end = nullptr;
    long got = std::strtol(n.c_str(), &end, 10);
    if (n.empty() || *end != '\0' || got < 1 || got > 1000) {
      std::cerr << "manifold-coordinator: --max-builds \"" << n << "\" is not a number from 1 to 1000\n";
      return 2;
    }
    c.max_builds = static_cast<int>(got);
  }
  c.beacon_address = v["beacon"];
  if (v.count("beacon_port")) c.beacon_port = static_cast<std::uint16_t>(std::atoi(v["beacon_port"].c_str()));
  const char* daemon_json = std::getenv("MANIFOLD_DAEMON_CONFIG");
  auto loaded = registry::LoadDaemonConfig(daemon_json ? daemon_json : "/etc/docker/daemon.json", &c.registry);
  if (!loaded.ok()) {
    std::cerr << "manifold-coordinator: " << loaded.error().ToString() << "\n";
    return 2;
  }
  // One connection per worker and per job slot: a farm of hundreds of
  // workers needs more descriptors than the usual soft limit of 1024.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  const auto& stop = StopOnSignals();
  auto r = coordinator::RunCoordinator(c, stop);
  if (!r.ok()) {
    std::cerr << "manifold-coordinator: " << r.error().ToString() << "\n";
    return 1;
  }
  return 0;
}
