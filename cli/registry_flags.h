// The registry flags `pull`, `push`, `login` and `build` share, and the
// registry::RegistryOptions they make: Docker's daemon.json
// ($MANIFOLD_DAEMON_CONFIG or /etc/docker/daemon.json: insecure-registries,
// registry-mirrors), the flags, and credentials from Docker's config.json.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "common/base/expected.h"
#include "common/registry/registry_options.h"

namespace manifold::cli {

struct RegistryFlags {
  std::vector<std::string> insecure;
  std::vector<std::string> mirrors;
  std::string certs_dir;
};

void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags);
Expected<registry::RegistryOptions> MakeRegistryOptions(const RegistryFlags& flags);

}  // namespace manifold::cli
