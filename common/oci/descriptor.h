// Content descriptors: what a manifest or index says about a blob it points to.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/digest.h"
#include "common/oci/platform.h"

namespace manifold::oci {

/// image-spec descriptor.md. Fields keep what the document said (platform values
/// are not normalised; SelectManifest() normalises when comparing).
struct Descriptor {
  std::string media_type;
  Digest digest;
  std::int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::string data;  ///< "data": embedded base64 content, kept verbatim (not decoded or checked)
  std::optional<Platform> platform;
  std::string platform_os_version;                ///< platform "os.version" (Windows)
  std::vector<std::string> platform_os_features;  ///< platform "os.features" (Windows)
  std::string artifact_type;

  /// Canonical JSON: keys in the order above (as image-spec's Go types write them),
  /// empty fields omitted, no whitespace.
  std::string ToJson() const;
  bool operator==(const Descriptor&) const = default;
};

/// The descriptor of `content`: its sha256 digest and size.
Descriptor DescribeBytes(std::string media_type, std::string_view content);

/// Parses a standalone descriptor document (4 MiB cap). Unknown fields and unknown
/// media types are accepted. Errors: kInvalidInput ("oci.invalid", "oci.invalid_json",
/// "oci.too_large", "digest.invalid", ...), kUnimplemented "digest.algorithm".
Expected<Descriptor> ParseDescriptor(std::string_view json);

}  // namespace manifold::oci
