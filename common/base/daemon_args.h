// Shared by manifold-coordinator and manifold-worker: flags over a config
// file (`--config FILE`, default /etc/manifold/<name>.toml when present),
// and SIGTERM/SIGINT turned into a stop flag.
#pragma once
#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "common/base/expected.h"

namespace manifold {

struct DaemonArgs {
  std::map<std::string, std::string> values;  ///< flag name (no dashes, '-' -> '_') -> value
  std::vector<std::string> positional;
};

/// Parses argv: `--name VALUE`, `--name=VALUE`, and `--flag` for names in
/// `booleans` ("true"). Values from the config file come first; flags
/// override them. Unknown names are refused. Errors: kInvalidInput
/// "cli.flag", and those of ReadFlatToml.
Expected<DaemonArgs> ParseDaemonArgs(int argc, char** argv, const std::string& default_config,
                                     const std::vector<std::string>& known,
                                     const std::vector<std::string>& booleans);

/// SIGTERM/SIGINT set the returned flag. Call before starting any thread:
/// the signals are blocked in the caller (and so in its later threads) and
/// taken by a sigwait thread.
const std::atomic<bool>& StopOnSignals();

}  // namespace manifold
