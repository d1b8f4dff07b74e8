#include "common/base/daemon_args.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <thread>

#include "common/base/flat_toml.h"

namespace manifold {
namespace {
std::atomic<bool> g_stop{false};
}  // namespace

Expected<DaemonArgs> ParseDaemonArgs(int argc, char** argv, const std::string& default_config,
                                     const std::vector<std::string>& known,
                                     const std::vector<std::string>& booleans) {
  auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  DaemonArgs flags;
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!a.starts_with("--")) {
      flags.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2), value;
    auto eq = name.find('=');
    bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    std::replace(name.begin(), name.end(), '-', '_');
    if (name == "config") {
      if (!inline_value) {
        if (i + 1 >= argc) return MakeError(ErrorKind::kInvalidInput, "cli.flag", "--config needs a file");
        value = argv[++i];
      }
      config = value;
      continue;
    }
    if (!has(known, name) && !has(booleans, name)) {
      std::string shown = name;
      std::replace(shown.begin(), shown.end(), '_', '-');
      return MakeError(ErrorKind::kInvalidInput, "cli.flag", "unknown flag --" + shown);
    }
    if (has(booleans, name)) {
      flags.values[name] = inline_value ? value : "true";
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc)
        return MakeError(ErrorKind::kInvalidInput, "cli.flag", "--" + a.substr(2) + " needs a value");
      value = argv[++i];
    }
    flags.values[name] = value;
  }
  DaemonArgs out;
  out.positional = flags.positional;
  struct stat st {};
  if (config.empty() && ::stat(default_config.c_str(), &st) == 0) config = default_config;
  if (!config.empty()) {
    MF_TRY(file, ReadFlatToml(config));
    for (auto& [k, v] : file) {
      std::string name = k;
      std::replace(name.begin(), name.end(), '-', '_');
      if (!has(known, name) && !has(booleans, name))
        return MakeError(ErrorKind::kInvalidInput, "config.syntax",
                         config + ": unknown key \"" + k + "\"");
      out.values[name] = v;
    }
  }
  for (auto& [k, v] : flags.values) out.values[k] = v;
  return out;
}

const std::atomic<bool>& StopOnSignals() {
  // Blocked here, so in every thread started later: no blocking call is
  // ever interrupted (EINTR); one thread waits for them instead.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int sig = 0;
    while (::sigwait(&set, &sig) == 0) g_stop = true;
  }).detach();
  return g_stop;
}

}  // namespace manifold
