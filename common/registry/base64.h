// Standard base64 (RFC 4648 section 4, with padding): config.json's "auth"
// field and Basic credentials. Internal to common/registry.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace manifold::registry {

std::string Base64Encode(std::string_view bytes);

/// nullopt for anything but canonical padded (or unpadded) base64.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace manifold::registry
