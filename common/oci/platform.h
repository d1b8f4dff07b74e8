// OCI platforms (`os/arch[/variant]`) with containerd's normalisation.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"

namespace manifold::oci {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;

  /// "linux/arm64", "linux/arm/v7".
  std::string ToString() const;
  bool operator==(const Platform&) const = default;
  bool operator<(const Platform& o) const { return ToString() < o.ToString(); }
};

/// Parses and normalises: `aarch64`→`arm64` (variant `v8` dropped),
/// `x86_64`/`x86-64`→`amd64`, `armhf`→`arm/v7`, `armel`→`arm/v6`, `i386`→`386`;
/// a bare architecture gets os `linux`. kInvalidInput with code
/// "platform.invalid" for anything else malformed ("../", empty parts).
Expected<Platform> ParsePlatform(std::string_view spec);

/// Parses a comma-separated list ("linux/amd64,linux/arm64"); duplicates removed,
/// order kept. At most `max_count` entries.
Expected<std::vector<Platform>> ParsePlatformList(std::string_view list, size_t max_count = 64);

/// The platform this process runs on, from uname(2).
Platform NativePlatform();

}  // namespace manifold::oci
