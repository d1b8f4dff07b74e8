// WWW-Authenticate challenges (RFC 9110 section 11.6.1) as registries send
// them: `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
// scope="repository:library/busybox:pull"` or `Basic realm="Registry"`. One
// header may carry several challenges; parameters may be quoted.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace manifold::registry {

struct Challenge {
  std::string scheme;                         ///< lowercased: "basic", "bearer"
  std::map<std::string, std::string> params;  ///< names lowercased, values unquoted
};

/// Parses one header value into its challenges. Malformed parts are skipped,
/// never fatal: the caller then finds no usable challenge.
std::vector<Challenge> ParseChallenges(std::string_view header);

}  // namespace manifold::registry
