// Image manifests (OCI and Docker schema2): one image for one platform.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/expected.h"
#include "common/oci/descriptor.h"
#include "common/oci/media_types.h"

namespace manifold::oci {

/// Largest manifest ParseManifest() reads (RELIABILITY.md 3.3; containerd caps near here).
inline constexpr std::size_t kMaxManifestBytes = std::size_t{4} << 20;

/// image-spec manifest.md. media_type keeps what the document said ("" if absent),
/// so a caller can compare it with the registry's Content-Type.
struct ImageManifest {
  int schema_version = 2;
  std::string media_type = std::string(kOciImageManifest);
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  /// Canonical JSON, deterministic so the digest of an unchanged manifest is stable:
  /// schemaVersion, mediaType, artifactType, config, layers, subject, annotations;
  /// empty optional fields omitted; "layers" always written; no whitespace.
  /// The media type is written as stored (a parsed Docker manifest stays Docker).
  /// Unknown fields of a parsed document are not kept: to copy an image, push the
  /// original bytes, never a re-serialisation.
  std::string ToJson() const;
  bool operator==(const ImageManifest&) const = default;
};

/// The one door for manifest bytes. Accepts OCI and Docker schema2 manifests, and
/// unknown fields and media types (artifacts: image-spec says MUST NOT error).
/// Errors (kInvalidInput unless noted):
///  - "oci.too_large": over kMaxManifestBytes, the message names the limit
///  - "oci.invalid_json", "oci.too_deep", "oci.duplicate_key"
///  - "oci.ambiguous": both "manifests" and "layers"/"config" (CVE-2021-41190)
///  - kUnimplemented "oci.schema1": Docker schema1, with rebuild guidance
///  - "oci.media_type": an index or manifest list
///  - "oci.invalid": a field missing or of the wrong type; schemaVersion not 2
///  - "digest.invalid", kUnimplemented "digest.algorithm": a bad descriptor digest
Expected<ImageManifest> ParseManifest(std::string_view bytes);

}  // namespace manifold::oci
